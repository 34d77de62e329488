//! How a cache entry is stored: the user's value in an ordinary envelope, cache bookkeeping in
//! KV metadata.
//!
//! * value: `encode_value(T)` with `expires_at` = the end of the stale grace window (the last
//!   instant the value may be served at all), so any envelope reader sees an honest expiry;
//! * metadata: the usual compact header (`t`, `v`, `c`, `e`) plus `cf` (fresh until, ms),
//!   `ca` (computed at, ms) and `cd` (computation time, ms, for XFetch). Metadata is written in
//!   the same KV `put` as the value, so the two never disagree. An entry without it (written
//!   by a [`TypedStore`](crate::TypedStore), say) is fresh until its envelope expiry and never
//!   refreshed early; without an expiry either nothing bounds its age, and it is a miss
//!   (replaced by the next write), never fresh forever;
//! * "not found" is an envelope of type `kv-envelope.cache-absent` (payload `null`), so the
//!   bytes say what they are without the metadata.

use serde::{Deserialize, Serialize};

use super::{
    passthrough::{json_payload_in, JsonText},
    policy::CachePolicy,
};
use crate::{
    backend::Stored,
    envelope::{self, Codec},
    error::{Error, Result},
    seal::KeyRing,
    versioned::{decode_value_in, encode_value_in, Versioned},
};

/// Type name of a negative ("not found") entry.
pub(crate) const ABSENT_TYPE: &str = "kv-envelope.cache-absent";

/// The header's metadata keys (`t`, `v`, `c`, `e`, defined once in `envelope`) followed by the
/// cache's own.
#[derive(Serialize)]
struct WriteMeta<'a> {
    #[serde(flatten)]
    header: envelope::Metadata<'a>,
    cf: u64,
    ca: u64,
    cd: u64,
}

#[derive(Deserialize, Default)]
struct ReadMeta {
    #[serde(default)]
    cf: Option<u64>,
    #[serde(default)]
    ca: Option<u64>,
    #[serde(default)]
    cd: Option<u64>,
}

/// When an entry was computed and until when it may be served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Timing {
    pub(crate) computed_at: Option<u64>,
    pub(crate) fresh_until: Option<u64>,
    pub(crate) expires_at: Option<u64>,
    pub(crate) delta_ms: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Freshness {
    Fresh,
    Stale,
    Expired,
}

impl Timing {
    pub(crate) fn read(expires_at: Option<u64>, metadata: Option<&str>) -> Self {
        let meta: ReadMeta = metadata
            .and_then(|m| serde_json::from_str(m).ok())
            .unwrap_or_default();
        // Never fresh past the envelope's own expiry, whatever the metadata says.
        let fresh_until = match (meta.cf, expires_at) {
            (Some(f), Some(e)) => Some(f.min(e)),
            (Some(f), None) => Some(f),
            (None, e) => e,
        };
        Self {
            computed_at: meta.ca,
            fresh_until,
            expires_at,
            delta_ms: meta.cd.unwrap_or(0),
        }
    }

    /// Shorten to what `policy` allows for a value computed at `computed_at`.
    pub(crate) fn capped(mut self, policy: &CachePolicy) -> Self {
        if let Some(at) = self.computed_at {
            let fresh = at.saturating_add(policy.ttl_ms());
            let hard = fresh.saturating_add(policy.grace_ms());
            self.fresh_until = Some(self.fresh_until.map_or(fresh, |f| f.min(fresh)));
            self.expires_at = Some(self.expires_at.map_or(hard, |e| e.min(hard)));
        }
        self
    }

    pub(crate) fn freshness(&self, now: u64) -> Freshness {
        // Neither a computation time nor an expiry: nothing bounds the entry's age, so it is
        // never served (a miss, replaced by the next write) instead of fresh forever.
        if self.computed_at.is_none() && self.expires_at.is_none() {
            return Freshness::Expired;
        }
        if self.expires_at.is_some_and(|e| now >= e) {
            Freshness::Expired
        } else if self.fresh_until.is_none_or(|f| now < f) {
            Freshness::Fresh
        } else {
            Freshness::Stale
        }
    }
}

/// What a KV read found.
pub(crate) enum Found<T> {
    /// Nothing, or an expired entry.
    Missing,
    /// A value (fresh or stale: see its timing).
    Value { value: T, timing: Timing },
    /// A remembered "not found".
    Absent,
    /// Unusable bytes: a miss that may be overwritten.
    Corrupt(Error),
    /// Written by newer code, or sealed with a key this store cannot open it with: a miss that
    /// must not be overwritten.
    Protected(Error),
}

pub(crate) fn classify<T: Versioned>(
    key: &str,
    stored: &Stored,
    ring: Option<&KeyRing>,
    now: u64,
    validate: bool,
) -> Found<T> {
    classify_as(stored, now, || {
        decode_value_in::<T>(&stored.value, ring, key, now, validate)
            .map(|d| d.map(|d| (d.value, d.expires_at)))
    })
}

/// [`classify`] for a pass-through read: the value's validated JSON text instead of the value,
/// with the same verdicts (absent, missing, corrupt, protected).
pub(crate) fn classify_json<T: Versioned>(
    key: &str,
    stored: &Stored,
    ring: Option<&KeyRing>,
    now: u64,
    validate: bool,
) -> Found<JsonText> {
    classify_as(stored, now, || {
        json_payload_in::<T>(&stored.value, ring, key, now, validate)
    })
}

/// The verdict on what was read, given how to decode it (`Ok(None)`: expired).
fn classify_as<V>(
    stored: &Stored,
    now: u64,
    decode: impl FnOnce() -> Result<Option<(V, Option<u64>)>>,
) -> Found<V> {
    match envelope::peek_header(&stored.value) {
        Ok(h) if h.type_name == ABSENT_TYPE => {
            return if h.is_expired(now) {
                Found::Missing
            } else {
                Found::Absent
            };
        }
        Ok(_) => {}
        Err(e) => return Found::Corrupt(e),
    }
    match decode() {
        Ok(None) => Found::Missing,
        Ok(Some((value, expires_at))) => Found::Value {
            timing: Timing::read(expires_at, stored.metadata.as_deref()),
            value,
        },
        Err(e) if e.protects_stored_value() && !e.is_corrupt() => Found::Protected(e),
        // Anything else that stops us reading the bytes (corrupt, invalid, another type, or our
        // own schema failing to compile) is a miss; the recomputed value replaces it.
        Err(e) => Found::Corrupt(e),
    }
}

/// An encoded entry, ready for `Kv::put`.
pub(crate) struct PreparedWrite {
    pub(crate) key: String,
    pub(crate) bytes: Vec<u8>,
    pub(crate) expires_at: u64,
    pub(crate) metadata: String,
}

/// Encode `value` (or "not found") computed at `computed_at` in `delta_ms`. `Ok(None)` when
/// there is nothing to write: "not found" without a negative TTL, or a zero TTL.
pub(crate) fn prepare<T: Versioned>(
    key: String,
    value: Option<&T>,
    policy: &CachePolicy,
    codec: Codec,
    ring: Option<&KeyRing>,
    computed_at: u64,
    delta_ms: u64,
) -> Result<Option<PreparedWrite>> {
    let (type_name, version, fresh_until, expires_at, bytes) = match value {
        Some(v) => {
            let fresh = computed_at.saturating_add(policy.ttl_ms());
            let hard = fresh.saturating_add(policy.grace_ms());
            if hard <= computed_at {
                return Ok(None);
            }
            let bytes = encode_value_in(v, codec, Some(hard), ring, &key)?;
            (T::NAME, T::VERSION, fresh, hard, bytes)
        }
        None => {
            let Some(ttl) = policy.negative_ttl_ms().filter(|t| *t > 0) else {
                return Ok(None);
            };
            let exp = computed_at.saturating_add(ttl);
            // A remembered "not found" holds nothing to hide: never sealed.
            let bytes = envelope::encode(codec, ABSENT_TYPE, 1, Some(exp), &())?;
            (ABSENT_TYPE, 1, exp, exp, bytes)
        }
    };
    let header = envelope::Header {
        codec,
        type_name: type_name.into(),
        version,
        expires_at: Some(expires_at),
        key_id: match (value, ring) {
            (Some(_), Some(r)) => Some(r.primary_id().into()),
            _ => None,
        },
    };
    let meta = WriteMeta {
        header: header.metadata(),
        cf: fresh_until,
        ca: computed_at,
        cd: delta_ms,
    };
    let metadata = serde_json::to_string(&meta).map_err(|_| Error::Encode {
        type_name,
        reason: "cache metadata does not serialize".into(),
    })?;
    Ok(Some(PreparedWrite {
        key,
        bytes,
        expires_at,
        metadata,
    }))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    /// A generation record computed at 1 s in 30 ms, prepared under `policy`.
    fn generation_entry(policy: CachePolicy) -> PreparedWrite {
        prepare::<super::super::NamespaceGeneration>(
            "k".into(),
            Some(&super::super::NamespaceGeneration { generation: 1 }),
            &policy,
            Codec::Json,
            None,
            1_000,
            30,
        )
        .unwrap()
        .unwrap()
    }

    #[test]
    fn metadata_round_trips_and_stays_a_header() {
        let w = generation_entry(
            CachePolicy::new(Duration::from_secs(10))
                .with_stale_while_revalidate(Duration::from_secs(5)),
        );
        assert_eq!(w.expires_at, 16_000);
        let t = Timing::read(Some(w.expires_at), Some(&w.metadata));
        assert_eq!(t.fresh_until, Some(11_000));
        assert_eq!(t.computed_at, Some(1_000));
        assert_eq!(t.delta_ms, 30);
        // Tools reading the plain header still understand it.
        let h = crate::envelope::Header::from_metadata(&w.metadata).unwrap();
        assert_eq!(h.expires_at, Some(16_000));
        assert_eq!(t.freshness(10_999), Freshness::Fresh);
        assert_eq!(t.freshness(11_000), Freshness::Stale);
        assert_eq!(t.freshness(16_000), Freshness::Expired);
    }

    /// The metadata keeps its exact layout now that the header keys come from `envelope`.
    #[test]
    fn metadata_layout_is_the_header_then_the_cache_keys() {
        let w = generation_entry(CachePolicy::new(Duration::from_secs(10)));
        assert_eq!(
            w.metadata,
            r#"{"t":"kv-envelope.cache-generation","v":1,"c":"json","e":11000,"cf":11000,"ca":1000,"cd":30}"#
        );
    }

    #[test]
    fn read_policy_can_only_shorten() {
        let t = Timing {
            computed_at: Some(0),
            fresh_until: Some(10_000),
            expires_at: Some(20_000),
            delta_ms: 0,
        };
        let shorter = t.capped(&CachePolicy::new(Duration::from_secs(2)));
        assert_eq!(shorter.fresh_until, Some(2_000));
        assert_eq!(shorter.expires_at, Some(2_000));
        let longer = t.capped(
            &CachePolicy::new(Duration::from_secs(60))
                .with_stale_while_revalidate(Duration::from_secs(60)),
        );
        assert_eq!(longer, t);
    }

    #[test]
    fn missing_metadata_means_fresh_until_envelope_expiry() {
        let t = Timing::read(Some(5_000), None);
        assert_eq!(t.fresh_until, Some(5_000));
        assert_eq!(t.freshness(4_999), Freshness::Fresh);
        assert_eq!(t.freshness(5_000), Freshness::Expired);
        let garbage = Timing::read(Some(5_000), Some("{not json"));
        assert_eq!(garbage, t);
    }

    /// Review 2: an entry with neither bookkeeping nor an expiry was fresh forever.
    #[test]
    fn an_undated_entry_without_expiry_is_never_served() {
        let t = Timing::read(None, None);
        assert_eq!(t.freshness(0), Freshness::Expired);
        assert_eq!(t.freshness(u64::MAX), Freshness::Expired);
        let capped = t.capped(&CachePolicy::new(Duration::from_secs(60)));
        assert_eq!(capped.freshness(0), Freshness::Expired);
    }
}
