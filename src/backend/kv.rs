//! [`Kv`]: a KV namespace handle, a backend plus the rules every call obeys — KV's limits
//! ([`limits`](super::limits)), the clamped expiration, the operation counters.

use std::sync::{
    atomic::{AtomicU64, Ordering},
    Arc,
};

use serde::Serialize;

use super::{
    limits::{
        check_key, clamp_expiration, MAX_BULK_KEYS, MAX_LIST_LIMIT, MAX_METADATA_BYTES,
        MAX_VALUE_BYTES,
    },
    Consistency, Expected, KvBackend, ListKey, ListPage, Stamp, Stored, WriteOptions,
};
use crate::{
    clock::{system_clock, SharedClock},
    error::{Error, LimitError, Result},
};

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
