//! KV I/O. A small async trait ([`KvBackend`]) that raw stores implement — in memory, Workers
//! KV, the simulator — and [`Kv`], the one place where KV's limits are enforced, expirations
//! are clamped to KV's 60-second floor and operations are counted.

use std::sync::{
    atomic::{AtomicU64, Ordering},
    Arc,
};

use serde::{Deserialize, Serialize};

use crate::{
    clock::{system_clock, SharedClock},
    error::{Error, LimitError, Result},
};

#[cfg(feature = "conformance")]
pub mod conformance;
#[cfg(all(feature = "worker", target_arch = "wasm32"))]
mod durable;
mod memory;
// The object protocol is used by the Workers client (wasm32) and the simulated objects
// (testing); other builds keep only its limit.
#[cfg_attr(
    not(any(feature = "testing", all(feature = "worker", target_arch = "wasm32"))),
    allow(dead_code, unused_imports, unused_macros)
)]
mod object;
#[cfg(feature = "testing")]
pub mod object_sim;
pub mod placement;
#[cfg(feature = "testing")]
pub mod sim;
#[cfg(all(feature = "worker", target_arch = "wasm32"))]
mod workers;

#[cfg(all(feature = "worker", target_arch = "wasm32"))]
pub use durable::{DurableKv, DurableKvObject};
pub use memory::MemoryKv;
pub use object::MAX_OBJECT_ENTRY_BYTES;
#[cfg(all(feature = "worker", target_arch = "wasm32"))]
pub use workers::WorkersKv;

/// Longest key KV accepts, in bytes.
pub const MAX_KEY_BYTES: usize = 512;
/// Largest value KV accepts, in bytes (25 MiB).
pub const MAX_VALUE_BYTES: usize = 25 * 1024 * 1024;
/// Largest serialized metadata KV accepts, in bytes.
pub const MAX_METADATA_BYTES: usize = 1024;
/// KV rejects expirations less than 60 s in the future.
pub const MIN_EXPIRATION_SECS: u64 = 60;
/// Margin added to the floor so clock skew between us and KV never turns into a 400.
pub const EXPIRATION_SKEW_SECS: u64 = 5;
/// Shortest `cacheTtl` KV takes on a read, in seconds (30 since early 2026; it was 60).
#[cfg_attr(not(all(feature = "worker", target_arch = "wasm32")), allow(dead_code))]
pub(crate) const MIN_CACHE_TTL_SECS: u64 = 30;
/// Most keys one `list` call returns.
pub const MAX_LIST_LIMIT: u32 = 1000;
/// Most keys one bulk get reads (KV's `get` with an array of keys; billed as one operation).
/// [`Kv::get_many`] splits longer lists into chunks of this size.
pub const MAX_BULK_KEYS: usize = 100;
/// How long a write can take to be seen at every other location ("60 seconds or more" in
/// KV's docs; the simulator's default window). The bound the stores' staleness promises use.
pub const PROPAGATION_MS: u64 = 60_000;
/// Latest expiry (ms since the epoch) handed to KV or written into an envelope: JavaScript's
/// largest exact integer. Beyond it the Workers runtime cannot represent the expiration (the
/// call throws), and other languages' JSON readers lose precision.
pub const MAX_EXPIRES_AT_MS: u64 = (1 << 53) - 1;

#[doc(inline)]
pub use crate::send::MaybeSendSync;

/// A value read from KV with its metadata (serialized JSON, if any).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    /// The value bytes.
    pub value: Vec<u8>,
    /// The metadata as serialized JSON.
    pub metadata: Option<String>,
}

/// Options of a raw write. `expiration` is already clamped by [`Kv`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WriteOptions {
    /// Absolute expiration in seconds since the epoch (KV's `expiration`).
    pub expiration: Option<u64>,
    /// Metadata as serialized JSON (≤ 1024 bytes).
    pub metadata: Option<String>,
}

/// One key of a `list` page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListKey {
    /// Key name.
    pub name: String,
    /// Absolute KV expiration in seconds, if any.
    pub expiration: Option<u64>,
    /// Metadata as serialized JSON.
    pub metadata: Option<String>,
}

/// One page of a `list`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListPage {
    /// Keys of this page (may be empty even when more follow).
    pub keys: Vec<ListKey>,
    /// Cursor for the next page.
    pub cursor: Option<String>,
    /// True when there is nothing more.
    pub list_complete: bool,
}

/// What one [`KvBackend::get_bulk`] call read and what it cost.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BulkRead {
    /// One entry per key asked for, in the same order.
    pub values: Vec<Option<Stored>>,
    /// Bulk operations the backend made (billed by KV as one operation each): 0 when it read
    /// every key singly (the default implementation), 1 for a real bulk get.
    pub bulk_ops: u64,
    /// Keys it had to read with single gets (all of them in the default implementation; on
    /// Workers KV, the binary frames a text bulk get cannot return).
    pub single_reads: u64,
}

/// How a backend orders operations on a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Consistency {
    /// Workers KV: last write wins, no compare-and-swap, other locations see a write up to
    /// [`PROPAGATION_MS`] (or more) later.
    Eventual,
    /// Every operation on a key sees every earlier one, everywhere (a Durable Object), and
    /// [`KvBackend::put_if`] compares and writes in one step.
    Linearizable,
}

/// The stamp of a stored value: SHA-256 of its bytes. A conditional write
/// ([`KvBackend::put_if`]) compares it with what is stored, so it needs no knowledge of the
/// envelope, and a value re-encoded to the same bytes has the same stamp.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Stamp([u8; 32]);

impl Stamp {
    /// The stamp of `value`.
    pub fn of(value: &[u8]) -> Self {
        use sha2::Digest;
        Self(sha2::Sha256::digest(value).into())
    }

    /// Lowercase hex (64 characters), as it travels to a Durable Object.
    pub fn to_hex(&self) -> String {
        hex(&self.0)
    }
}

/// Lowercase hex of `bytes`.
pub(crate) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    out
}

impl std::fmt::Debug for Stamp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Stamp({}…)", &self.to_hex()[..12])
    }
}

/// What a conditional write ([`KvBackend::put_if`]) requires of the key before it writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Expected {
    /// Nothing live is stored under the key (missing or past its expiration).
    Absent,
    /// The live value under the key is exactly the one with this stamp.
    Stamp(Stamp),
}

/// `keys` read one [`get`](KvBackend::get) at a time: the default
/// [`get_bulk`](KvBackend::get_bulk), and what a backend that cannot bulk-read falls back to.
pub(crate) async fn read_singly<B: KvBackend + ?Sized>(
    backend: &B,
    keys: &[&str],
) -> Result<BulkRead> {
    let mut values = Vec::with_capacity(keys.len());
    for key in keys {
        values.push(backend.get(key).await?);
    }
    Ok(BulkRead {
        values,
        bulk_ops: 0,
        single_reads: keys.len() as u64,
    })
}

/// A raw KV store. Implementations do I/O only; limits, clamping and counting live in [`Kv`].
#[cfg_attr(target_arch = "wasm32", async_trait::async_trait(?Send))]
#[cfg_attr(not(target_arch = "wasm32"), async_trait::async_trait)]
pub trait KvBackend: MaybeSendSync {
    /// Read a value and its metadata.
    async fn get(&self, key: &str) -> Result<Option<Stored>>;
    /// Read several distinct keys (at most [`MAX_BULK_KEYS`], already checked by [`Kv`]) in
    /// one call where the store can, each key with the same semantics as [`get`](Self::get).
    /// The default reads them one by one, so every backend supports it; say what it cost in
    /// [`BulkRead`].
    async fn get_bulk(&self, keys: &[&str]) -> Result<BulkRead> {
        read_singly(self, keys).await
    }
    /// Write a value.
    async fn put(&self, key: &str, value: &[u8], options: &WriteOptions) -> Result<()>;
    /// How this backend orders operations. The default is KV's: [`Consistency::Eventual`].
    fn consistency(&self) -> Consistency {
        Consistency::Eventual
    }
    /// Write a value only when the key holds what `expected` says, in one step: `Ok(true)`
    /// when written, `Ok(false)` when the key held something else (nothing written). Backends
    /// that say [`Consistency::Linearizable`] must implement it; the default (KV has no
    /// compare-and-swap) refuses with a non-retryable [`Error::Backend`].
    async fn put_if(
        &self,
        key: &str,
        value: &[u8],
        options: &WriteOptions,
        expected: &Expected,
    ) -> Result<bool> {
        let _ = (key, value, options, expected);
        Err(Error::Backend {
            op: "put_if",
            message: "this backend has no conditional write (Workers KV has no compare-and-swap)"
                .into(),
            retryable: false,
        })
    }
    /// Delete a key (no error when missing).
    async fn delete(&self, key: &str) -> Result<()>;
    /// Delete a key only when its live value has `stamp`, in one step: `Ok(true)` when
    /// deleted, `Ok(false)` when it held something else or nothing. Like
    /// [`put_if`](Self::put_if), backends that say [`Consistency::Linearizable`] must
    /// implement it; the default refuses with a non-retryable [`Error::Backend`].
    async fn delete_if(&self, key: &str, stamp: &Stamp) -> Result<bool> {
        let _ = (key, stamp);
        Err(Error::Backend {
            op: "delete_if",
            message: "this backend has no conditional delete (Workers KV has no compare-and-swap)"
                .into(),
            retryable: false,
        })
    }
    /// List keys starting with `prefix`, `limit` ≤ 1000, continuing from `cursor`.
    async fn list(&self, prefix: &str, cursor: Option<&str>, limit: u32) -> Result<ListPage>;
}

/// Counts of KV operations, shared by every [`Kv`] handle cloned from one another (or handed the
/// same counters).
#[derive(Debug, Default)]
pub struct OpCounters {
    reads: AtomicU64,
    bulk_gets: AtomicU64,
    bulk_keys: AtomicU64,
    writes: AtomicU64,
    deletes: AtomicU64,
    lists: AtomicU64,
    rate_limited: AtomicU64,
    conditional_refused: AtomicU64,
}

/// A snapshot of [`OpCounters`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct OpCounts {
    /// Single `get` operations (also the ones [`Kv::get_many`] falls back to).
    pub kv_reads: u64,
    /// Bulk get operations ([`Kv::get_many`]): each is one operation KV bills, for up to
    /// [`MAX_BULK_KEYS`] keys. Operations billed = `kv_reads + kv_bulk_gets + kv_writes +
    /// kv_deletes + kv_lists`.
    pub kv_bulk_gets: u64,
    /// Keys sent in those bulk gets.
    pub kv_bulk_keys: u64,
    /// `put` calls.
    pub kv_writes: u64,
    /// `delete` calls.
    pub kv_deletes: u64,
    /// `list` calls (pages).
    pub kv_lists: u64,
    /// Writes refused with 429.
    pub kv_rate_limited: u64,
    /// Conditional writes and deletes ([`Kv::put_if`], [`Kv::delete_if`]) that found the key
    /// changed and did nothing (counted among the writes or deletes too): each is a race the
    /// backend's compare-and-set decided.
    pub kv_conditional_refused: u64,
}

impl OpCounters {
    /// Current counts.
    pub fn snapshot(&self) -> OpCounts {
        OpCounts {
            kv_reads: self.reads.load(Ordering::Relaxed),
            kv_bulk_gets: self.bulk_gets.load(Ordering::Relaxed),
            kv_bulk_keys: self.bulk_keys.load(Ordering::Relaxed),
            kv_writes: self.writes.load(Ordering::Relaxed),
            kv_deletes: self.deletes.load(Ordering::Relaxed),
            kv_lists: self.lists.load(Ordering::Relaxed),
            kv_rate_limited: self.rate_limited.load(Ordering::Relaxed),
            kv_conditional_refused: self.conditional_refused.load(Ordering::Relaxed),
        }
    }
}

/// Whether a value that a text bulk get returned (KV returns bulk values only as text or JSON)
/// is exactly the stored bytes. Our JSON envelopes start with `{`; our binary frames start with
/// `0xC5` (postcard) or `0xC6` (sealed), which are no ASCII and which the runtime's lossy UTF-8
/// decoding turns into text that never starts with `{` (`0xC5`/`0xC6` decode to a two-byte
/// character or to U+FFFD). Any lossy decoding leaves U+FFFD in the text. So: text that starts
/// with `{` (after JSON whitespace) and has no U+FFFD is exact; anything else must be read
/// again with a single get (an exact text with a literal U+FFFD only costs that extra read).
pub fn bulk_text_is_exact(text: &str) -> bool {
    text.trim_start_matches([' ', '\n', '\r', '\t'])
        .starts_with('{')
        && !text.contains('\u{FFFD}')
}

/// Check a key against KV's rules. The single place where keys are judged.
pub fn check_key(key: &str) -> Result<(), LimitError> {
    if key.is_empty() {
        return Err(LimitError::EmptyKey);
    }
    if key == "." || key == ".." {
        return Err(LimitError::ReservedKey);
    }
    if key.len() > MAX_KEY_BYTES {
        return Err(LimitError::KeyTooLong {
            len: key.len(),
            max: MAX_KEY_BYTES,
        });
    }
    Ok(())
}

/// The KV `expiration` (seconds) for an envelope expiring at `expires_at_ms`, raised to KV's
/// floor of 60 s (+ skew margin) from `now_ms`. The envelope keeps the exact time; reads enforce
/// it, so a value that KV keeps a little longer is still never served late.
pub fn clamp_expiration(expires_at_ms: u64, now_ms: u64) -> Result<u64, LimitError> {
    if expires_at_ms <= now_ms {
        return Err(LimitError::AlreadyExpired);
    }
    if expires_at_ms > MAX_EXPIRES_AT_MS {
        return Err(LimitError::ExpiryOutOfRange {
            expires_at_ms,
            max: MAX_EXPIRES_AT_MS,
        });
    }
    let wanted = expires_at_ms.div_ceil(1000);
    let floor = now_ms.div_ceil(1000) + MIN_EXPIRATION_SECS + EXPIRATION_SKEW_SECS;
    Ok(wanted.max(floor))
}

/// A KV namespace handle: a backend plus the rules every call must obey. Cheap to clone.
#[derive(Clone)]
pub struct Kv {
    backend: Arc<dyn KvBackend>,
    clock: SharedClock,
    counters: Arc<OpCounters>,
}

impl std::fmt::Debug for Kv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Kv")
            .field("counters", &self.counters.snapshot())
            .finish()
    }
}

impl Kv {
    /// Wrap a backend, with the system clock and fresh counters.
    pub fn new(backend: impl KvBackend + 'static) -> Self {
        Self::from_arc(Arc::new(backend))
    }

    /// Wrap a shared backend.
    pub fn from_arc(backend: Arc<dyn KvBackend>) -> Self {
        Self {
            backend,
            clock: system_clock(),
            counters: Arc::new(OpCounters::default()),
        }
    }

    /// Use this clock for expiration clamping.
    #[must_use]
    pub fn with_clock(mut self, clock: SharedClock) -> Self {
        self.clock = clock;
        self
    }

    /// Count into these counters (e.g. isolate-wide ones).
    #[must_use]
    pub fn with_counters(mut self, counters: Arc<OpCounters>) -> Self {
        self.counters = counters;
        self
    }

    /// The clock.
    pub fn clock(&self) -> &SharedClock {
        &self.clock
    }

    /// Operation counters.
    pub fn counters(&self) -> &Arc<OpCounters> {
        &self.counters
    }

    /// Current time from the clock.
    pub fn now_ms(&self) -> u64 {
        self.clock.now_ms()
    }

    /// Read a key. An invalid key is a [`LimitError`], checked before any I/O.
    pub async fn get(&self, key: &str) -> Result<Option<Stored>> {
        check_key(key)?;
        self.counters.reads.fetch_add(1, Ordering::Relaxed);
        self.backend.get(key).await
    }

    /// Read many keys: one entry per key of `keys`, in order (a key listed twice is read once
    /// and answered twice). Every key is checked first ([`LimitError`] before any I/O, as in
    /// [`get`](Self::get)); distinct keys are read in chunks of [`MAX_BULK_KEYS`] through the
    /// backend's [`get_bulk`](KvBackend::get_bulk) — on Workers KV one billed operation per
    /// chunk. Counted as `kv_bulk_gets` (operations) and `kv_bulk_keys` (keys sent), plus
    /// `kv_reads` for keys the backend had to read singly.
    pub async fn get_many(&self, keys: &[&str]) -> Result<Vec<Option<Stored>>> {
        for key in keys {
            check_key(key)?;
        }
        let mut distinct: Vec<&str> = Vec::with_capacity(keys.len());
        let mut slot_of: std::collections::HashMap<&str, usize> =
            std::collections::HashMap::with_capacity(keys.len());
        let slots: Vec<usize> = keys
            .iter()
            .map(|k| {
                *slot_of.entry(k).or_insert_with(|| {
                    distinct.push(k);
                    distinct.len() - 1
                })
            })
            .collect();
        let mut read: Vec<Option<Stored>> = Vec::with_capacity(distinct.len());
        for chunk in distinct.chunks(MAX_BULK_KEYS) {
            let got = self.backend.get_bulk(chunk).await?;
            self.counters
                .bulk_gets
                .fetch_add(got.bulk_ops, Ordering::Relaxed);
            if got.bulk_ops > 0 {
                self.counters
                    .bulk_keys
                    .fetch_add(chunk.len() as u64, Ordering::Relaxed);
            }
            self.counters
                .reads
                .fetch_add(got.single_reads, Ordering::Relaxed);
            if got.values.len() != chunk.len() {
                return Err(Error::Backend {
                    op: "get_bulk",
                    message: format!(
                        "backend answered {} of {} keys",
                        got.values.len(),
                        chunk.len()
                    ),
                    retryable: false,
                });
            }
            read.extend(got.values);
        }
        // Hand each slot its value; a key asked for twice gets a clone.
        let mut counts = vec![0usize; read.len()];
        for &s in &slots {
            counts[s] += 1;
        }
        let mut read: Vec<Option<Option<Stored>>> = read.into_iter().map(Some).collect();
        Ok(slots
            .into_iter()
            .map(|s| {
                counts[s] -= 1;
                if counts[s] == 0 {
                    read[s].take().flatten()
                } else {
                    read[s].clone().flatten()
                }
            })
            .collect())
    }

    /// How the backend orders operations ([`KvBackend::consistency`]).
    pub fn consistency(&self) -> Consistency {
        self.backend.consistency()
    }

    /// Write a key. `expires_at_ms` is the exact envelope expiry; KV gets it clamped to its
    /// 60-second floor. `metadata` is serialized JSON.
    pub async fn put(
        &self,
        key: &str,
        value: &[u8],
        expires_at_ms: Option<u64>,
        metadata: Option<String>,
    ) -> Result<()> {
        let options = self.write_options(key, value, expires_at_ms, metadata)?;
        self.counters.writes.fetch_add(1, Ordering::Relaxed);
        let result = self.backend.put(key, value, &options).await;
        self.count_rate_limit(&result);
        result
    }

    /// Write a key only when it holds what `expected` says ([`KvBackend::put_if`]), with the
    /// same checks and clamping as [`put`](Self::put): `Ok(false)` when it held something
    /// else. Counted as a write. Only backends with [`Consistency::Linearizable`] have it.
    pub async fn put_if(
        &self,
        key: &str,
        value: &[u8],
        expires_at_ms: Option<u64>,
        metadata: Option<String>,
        expected: &Expected,
    ) -> Result<bool> {
        let options = self.write_options(key, value, expires_at_ms, metadata)?;
        self.counters.writes.fetch_add(1, Ordering::Relaxed);
        let result = self.backend.put_if(key, value, &options, expected).await;
        self.count_rate_limit(&result);
        self.count_refused(&result);
        result
    }

    fn count_refused(&self, result: &Result<bool>) {
        if matches!(result, Ok(false)) {
            self.counters
                .conditional_refused
                .fetch_add(1, Ordering::Relaxed);
        }
    }

    fn count_rate_limit<T>(&self, result: &Result<T>) {
        if matches!(result, Err(Error::RateLimited)) {
            self.counters.rate_limited.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// KV's limits on a write, checked before any I/O, and its expiration clamped: the one
    /// place writes are judged.
    fn write_options(
        &self,
        key: &str,
        value: &[u8],
        expires_at_ms: Option<u64>,
        metadata: Option<String>,
    ) -> Result<WriteOptions> {
        check_key(key)?;
        if value.len() > MAX_VALUE_BYTES {
            return Err(LimitError::ValueTooLarge {
                len: value.len(),
                max: MAX_VALUE_BYTES,
            }
            .into());
        }
        if let Some(m) = &metadata {
            if m.len() > MAX_METADATA_BYTES {
                return Err(LimitError::MetadataTooLarge {
                    len: m.len(),
                    max: MAX_METADATA_BYTES,
                }
                .into());
            }
        }
        let expiration = match expires_at_ms {
            Some(ms) => Some(clamp_expiration(ms, self.clock.now_ms())?),
            None => None,
        };
        Ok(WriteOptions {
            expiration,
            metadata,
        })
    }

    /// Delete a key.
    pub async fn delete(&self, key: &str) -> Result<()> {
        check_key(key)?;
        self.counters.deletes.fetch_add(1, Ordering::Relaxed);
        self.backend.delete(key).await
    }

    /// Delete a key only when its live value has `stamp` ([`KvBackend::delete_if`]):
    /// `Ok(false)` when it held something else or nothing. Counted as a delete. Only backends
    /// with [`Consistency::Linearizable`] have it.
    pub async fn delete_if(&self, key: &str, stamp: &Stamp) -> Result<bool> {
        check_key(key)?;
        self.counters.deletes.fetch_add(1, Ordering::Relaxed);
        let result = self.backend.delete_if(key, stamp).await;
        self.count_refused(&result);
        result
    }

    /// One page of keys under `prefix`.
    pub async fn list(&self, prefix: &str, cursor: Option<&str>, limit: u32) -> Result<ListPage> {
        self.counters.lists.fetch_add(1, Ordering::Relaxed);
        self.backend
            .list(prefix, cursor, limit.clamp(1, MAX_LIST_LIMIT))
            .await
    }

    /// Every key under `prefix`, following cursors until KV says the list is complete (KV can
    /// return empty pages before that). Stops after `max_pages` pages as a safety net.
    pub async fn list_all(&self, prefix: &str, max_pages: usize) -> Result<Vec<ListKey>> {
        let mut keys = Vec::new();
        let mut cursor: Option<String> = None;
        for _ in 0..max_pages {
            let page = self.list(prefix, cursor.as_deref(), MAX_LIST_LIMIT).await?;
            keys.extend(page.keys);
            if page.list_complete || page.cursor.is_none() {
                return Ok(keys);
            }
            cursor = page.cursor;
        }
        Ok(keys)
    }
}
