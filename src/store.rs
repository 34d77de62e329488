//! A typed handle over a KV namespace for one [`Versioned`] type.

use std::{marker::PhantomData, time::Duration};

use kv_envelope_validator::Document;

use crate::{
    backend::{Consistency, Expected, Kv, Stamp, MAX_VALUE_BYTES},
    envelope::{Codec, Header},
    error::{Error, LimitError, Result},
    seal::KeyRing,
    versioned::{decode_value_in, encode_value_in, Decoded, Versioned},
};

/// The one rule on replacing a stored value, given why reading it failed: a value written by
/// newer code (`Error::FutureVersion`) is never replaced; a value this code cannot read is
/// replaced only where `overwrite` allows it (caches, whose data can be recomputed); any other
/// error is no verdict on the stored value and is returned as it is. Every writer that reads
/// first (the typed store, the cache's writes and generation bumps) decides through this.
pub(crate) fn may_replace(read_error: Error, overwrite: Overwrite) -> Result<()> {
    match overwrite {
        Overwrite::AllowCorrupt if read_error.is_corrupt() => Ok(()),
        _ => Err(read_error),
    }
}

/// Whether a write may replace what is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Overwrite {
    /// Refuse to replace a value with a newer schema version or one that does not decode
    /// (the default: never lose data).
    Safe,
    /// Replace corrupt values (caches, whose data can be recomputed) but still never a value
    /// with a newer schema version.
    AllowCorrupt,
}

/// Typed store: `put`, `get`, `delete` of `T` values under `<prefix>:<id>` keys.
#[derive(Debug, Clone)]
pub struct TypedStore<T> {
    kv: Kv,
    prefix: String,
    codec: Codec,
    validate: bool,
    write_back: bool,
    max_bytes: usize,
    seal: Option<KeyRing>,
    _type: PhantomData<fn() -> T>,
}

impl<T: Versioned> TypedStore<T> {
    /// A store on `kv` with prefix `T::NAME`, the JSON codec, validation on, write-back off.
    pub fn new(kv: Kv) -> Self {
        Self {
            kv,
            prefix: T::NAME.to_string(),
            codec: Codec::Json,
            validate: true,
            write_back: false,
            max_bytes: MAX_VALUE_BYTES,
            seal: None,
            _type: PhantomData,
        }
    }

    /// Use `prefix` instead of the type name (keys are `<prefix>:<id>`).
    #[must_use]
    pub fn with_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// Write with `codec` (reads accept both).
    #[must_use]
    pub fn with_codec(mut self, codec: Codec) -> Self {
        self.codec = codec;
        self
    }

    /// Write migrated values back on read (keeps their expiry; never over a newer version).
    #[must_use]
    pub fn with_write_back(mut self, on: bool) -> Self {
        self.write_back = on;
        self
    }

    /// Refuse writes whose stored form exceeds `max` bytes (default and ceiling: KV's 25 MiB),
    /// with [`Error::Limit`] before any I/O.
    #[must_use]
    pub fn with_max_value_bytes(mut self, max: usize) -> Self {
        self.max_bytes = max.min(MAX_VALUE_BYTES);
        self
    }

    /// Seal every value written with `ring`'s primary key, and open sealed values with any key
    /// of the ring. Clear values already stored are refused, unless the ring opts into reading
    /// them ([`requiring_sealed(false)`](KeyRing::requiring_sealed), the migration path);
    /// then they are written back sealed when write-back is on, as are values sealed with an
    /// older key of the ring.
    #[must_use]
    pub fn with_sealing(mut self, ring: KeyRing) -> Self {
        self.seal = Some(ring);
        self
    }

    /// The key ring, when the store seals.
    pub fn key_ring(&self) -> Option<&KeyRing> {
        self.seal.as_ref()
    }

    /// Skip schema validation on read (for measurements; not recommended).
    #[must_use]
    pub fn with_validation(mut self, on: bool) -> Self {
        self.validate = on;
        self
    }

    /// The underlying KV handle.
    pub fn kv(&self) -> &Kv {
        &self.kv
    }

    /// The largest stored form a write accepts ([`with_max_value_bytes`](Self::with_max_value_bytes)).
    pub fn max_value_bytes(&self) -> usize {
        self.max_bytes
    }

    /// The codec used for writes.
    pub fn codec(&self) -> Codec {
        self.codec
    }

    /// The full KV key of `id`.
    pub fn key(&self, id: &str) -> String {
        let mut k = String::with_capacity(self.prefix.len() + 1 + id.len());
        k.push_str(&self.prefix);
        k.push(':');
        k.push_str(id);
        k
    }

    /// Read `id`: decode, check expiry, validate, migrate. Expired or missing → `None`.
    pub async fn get(&self, id: &str) -> Result<Option<T>> {
        Ok(self.get_entry(id).await?.map(|d| d.value))
    }

    /// Like [`get`](Self::get), with the stored version, codec and expiry.
    pub async fn get_entry(&self, id: &str) -> Result<Option<Decoded<T>>> {
        let key = self.key(id);
        let Some(stored) = self.kv.get(&key).await? else {
            return Ok(None);
        };
        let now = self.kv.now_ms();
        let Some(decoded) = self.decode(&key, &stored.value, now)? else {
            return Ok(None);
        };
        if self.write_back && decoded.needs_rewrite(self.seal.as_ref()) {
            // Best effort: a failed write-back (429, quota, a writer or a delete in between on
            // a Durable Object) leaves what is stored, still readable.
            let expected = self.expecting(Some(&stored.value));
            let _ = self
                .write(&key, &decoded.value, decoded.expires_at, expected.as_ref())
                .await;
        }
        Ok(Some(decoded))
    }

    /// Read many ids at once: one entry per id, in order, each as [`get`](Self::get) reads it.
    /// On Workers KV the JSON values come in bulk gets of up to 100 keys, each billed as one
    /// operation; binary frames (postcard, sealed) cannot be bulk-read and cost a single read
    /// each (see [`Kv::get_many`]). Fails, like `get`, on a KV error, an invalid key, or the
    /// first value that does not decode; [`get_many_entries`](Self::get_many_entries) reports
    /// those per id instead.
    pub async fn get_many(&self, ids: &[&str]) -> Result<Vec<Option<T>>> {
        self.get_many_entries(ids)
            .await?
            .into_iter()
            .map(|r| r.map(|d| d.map(|d| d.value)))
            .collect()
    }

    /// Like [`get_many`](Self::get_many), with each value's stored version, codec and expiry,
    /// and each id's decode error on its own: the outer error is KV's (or a key's).
    /// Migrated values are written back when write-back is on, one by one, best effort.
    pub async fn get_many_entries(&self, ids: &[&str]) -> Result<Vec<Result<Option<Decoded<T>>>>> {
        let keys: Vec<String> = ids.iter().map(|id| self.key(id)).collect();
        let refs: Vec<&str> = keys.iter().map(String::as_str).collect();
        let stored = self.kv.get_many(&refs).await?;
        let now = self.kv.now_ms();
        let mut out = Vec::with_capacity(ids.len());
        for (key, stored) in keys.iter().zip(stored) {
            let decoded = match &stored {
                None => Ok(None),
                Some(s) => self.decode(key, &s.value, now),
            };
            if let (Ok(Some(d)), Some(s)) = (&decoded, &stored) {
                if self.write_back && d.needs_rewrite(self.seal.as_ref()) {
                    let expected = self.expecting(Some(&s.value));
                    let _ = self
                        .write(key, &d.value, d.expires_at, expected.as_ref())
                        .await;
                }
            }
            out.push(decoded);
        }
        Ok(out)
    }

    /// Write `value` under `id` for `ttl` (`None`: never expires). Refuses to replace a stored
    /// value with a newer schema version or one that does not decode ([`Overwrite::Safe`]).
    pub async fn put(&self, id: &str, value: &T, ttl: Option<Duration>) -> Result<()> {
        let expires_at = ttl.map(|t| self.expires_in(t));
        self.put_until(id, value, expires_at, Overwrite::Safe).await
    }

    /// Write with an absolute expiry and an overwrite policy. On a backend with a conditional
    /// write ([`Consistency::Linearizable`], a Durable Object) the write happens only over
    /// what the guard read judged: a writer or a delete in between makes it fail with
    /// [`Error::Conflict`], nothing written.
    pub async fn put_until(
        &self,
        id: &str,
        value: &T,
        expires_at: Option<u64>,
        overwrite: Overwrite,
    ) -> Result<()> {
        let key = self.key(id);
        let expected = self.guard(&key, overwrite).await?;
        if self
            .write(&key, value, expires_at, expected.as_ref())
            .await?
        {
            Ok(())
        } else {
            Err(Error::Conflict { op: "put" })
        }
    }

    /// Write without reading first. Only for keys that cannot hold anything yet, such as ids the
    /// caller just drew from a CSPRNG: it skips the newer-version guard.
    pub async fn insert_new(&self, id: &str, value: &T, expires_at: Option<u64>) -> Result<()> {
        self.write(&self.key(id), value, expires_at, None)
            .await
            .map(|_| ())
    }

    /// Read `id` to replace it: the value (decoded and checked as [`get`](Self::get) does,
    /// without a write-back) and what the replacing write must still find there
    /// ([`put_after_read`](Self::put_after_read); `None` on KV).
    #[cfg_attr(not(feature = "tower-sessions"), allow(dead_code))]
    pub(crate) async fn read_for_write(&self, id: &str) -> Result<(Option<T>, Option<Expected>)> {
        let key = self.key(id);
        let stored = self.kv.get(&key).await?;
        let expected = self.expecting(stored.as_ref().map(|s| s.value.as_slice()));
        let value = match &stored {
            Some(s) => self
                .decode(&key, &s.value, self.kv.now_ms())?
                .map(|d| d.value),
            None => None,
        };
        Ok((value, expected))
    }

    /// Write `value` over what the caller has just read with
    /// [`read_for_write`](Self::read_for_write) and judged replaceable: a writer that reads
    /// first anyway, to compare, need not pay for [`put_until`](Self::put_until)'s second
    /// read. `Ok(false)`: the key no longer held what was read (a Durable Object only).
    #[cfg_attr(not(feature = "tower-sessions"), allow(dead_code))]
    pub(crate) async fn put_after_read(
        &self,
        id: &str,
        value: &T,
        expires_at: Option<u64>,
        expected: Option<&Expected>,
    ) -> Result<bool> {
        self.write(&self.key(id), value, expires_at, expected).await
    }

    /// [`insert_new`](Self::insert_new) of a value the caller has just passed through
    /// [`check_value`](Self::check_value): a store that checks before the first write of an
    /// operation (the session store writes an index entry first) need not pay for it twice.
    pub(crate) async fn insert_checked(
        &self,
        id: &str,
        value: &T,
        expires_at: Option<u64>,
    ) -> Result<()> {
        self.write_checked(&self.key(id), value, expires_at).await
    }

    /// [`insert_checked`](Self::insert_checked) only when the key holds what `expected` says
    /// ([`Kv::put_if`]): `Ok(false)` when it held something else.
    pub(crate) async fn insert_checked_if(
        &self,
        id: &str,
        value: &T,
        expires_at: Option<u64>,
        expected: &Expected,
    ) -> Result<bool> {
        let key = self.key(id);
        let (bytes, metadata) = self.encode_checked(&key, value, expires_at)?;
        self.kv
            .put_if(&key, &bytes, expires_at, Some(metadata), expected)
            .await
    }

    /// Delete `id`.
    pub async fn delete(&self, id: &str) -> Result<()> {
        self.kv.delete(&self.key(id)).await
    }

    /// `now + ttl` in ms on the store's clock.
    pub fn expires_in(&self, ttl: Duration) -> u64 {
        let ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX);
        self.kv.now_ms().saturating_add(ms)
    }

    /// Check what is stored under `key` before replacing it; returns what the write must
    /// then still find there ([`expecting`](Self::expecting)).
    async fn guard(&self, key: &str, overwrite: Overwrite) -> Result<Option<Expected>> {
        let Some(stored) = self.kv.get(key).await? else {
            return Ok(self.expecting(None));
        };
        let now = self.kv.now_ms();
        if let Err(e) = self.decode(key, &stored.value, now) {
            may_replace(e, overwrite)?;
        }
        Ok(self.expecting(Some(&stored.value)))
    }

    /// What a write over `stored` (the bytes a read of the key just found, or nothing) must
    /// still find there, on a backend with a conditional write ([`Consistency::Linearizable`]),
    /// so that nothing written or deleted in between is undone; `None` on KV, whose writes
    /// are unconditional.
    fn expecting(&self, stored: Option<&[u8]>) -> Option<Expected> {
        (self.kv.consistency() == Consistency::Linearizable)
            .then(|| stored.map_or(Expected::Absent, |b| Expected::Stamp(Stamp::of(b))))
    }

    /// Decode what was read from `key` with this store's key ring and validation setting.
    pub(crate) fn decode(
        &self,
        key: &str,
        bytes: &[u8],
        now_ms: u64,
    ) -> Result<Option<Decoded<T>>> {
        decode_value_in::<T>(bytes, self.seal.as_ref(), key, now_ms, self.validate)
    }

    /// Check `value` against its current version's schema, as the next read would (when
    /// validation is on): [`Error::InvalidValue`] for a value no read could accept. Every write
    /// runs it first, so the store never writes what it would refuse to read.
    pub fn check_value(&self, value: &T) -> Result<()> {
        if !self.validate {
            return Ok(());
        }
        // Validated as reads validate (the parsed document), without a serde_json::Value.
        let doc = Document::from_serialize(value).map_err(|e| Error::Encode {
            type_name: T::NAME,
            reason: e.to_string(),
        })?;
        crate::schema::validate_document(T::validator(T::VERSION)?, T::NAME, T::VERSION, &doc)
            .map_err(|e| match e {
                Error::Validation {
                    type_name,
                    version,
                    issues,
                } => Error::InvalidValue {
                    type_name,
                    version,
                    issues,
                },
                other => other,
            })
    }

    /// Check and write `value`, conditionally when `expected` says so: `Ok(false)` when the
    /// key no longer held it (nothing written).
    async fn write(
        &self,
        key: &str,
        value: &T,
        expires_at: Option<u64>,
        expected: Option<&Expected>,
    ) -> Result<bool> {
        self.check_value(value)?;
        let Some(expected) = expected else {
            self.write_checked(key, value, expires_at).await?;
            return Ok(true);
        };
        let (bytes, metadata) = self.encode_checked(key, value, expires_at)?;
        self.kv
            .put_if(key, &bytes, expires_at, Some(metadata), expected)
            .await
    }

    async fn write_checked(&self, key: &str, value: &T, expires_at: Option<u64>) -> Result<()> {
        let (bytes, metadata) = self.encode_checked(key, value, expires_at)?;
        self.kv.put(key, &bytes, expires_at, Some(metadata)).await
    }

    /// The bytes and metadata of a value already checked against its schema, within the
    /// store's size cap.
    fn encode_checked(
        &self,
        key: &str,
        value: &T,
        expires_at: Option<u64>,
    ) -> Result<(Vec<u8>, String)> {
        let bytes = encode_value_in(value, self.codec, expires_at, self.seal.as_ref(), key)?;
        if bytes.len() > self.max_bytes {
            return Err(LimitError::ValueTooLarge {
                len: bytes.len(),
                max: self.max_bytes,
            }
            .into());
        }
        let header = Header {
            codec: self.codec,
            type_name: T::NAME.into(),
            version: T::VERSION,
            expires_at,
            key_id: self.seal.as_ref().map(|r| r.primary_id().into()),
        };
        Ok((bytes, header.to_metadata()))
    }
}
