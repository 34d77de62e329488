//! Cache counters, readable from code so an app can expose them.

use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;

use super::memory::TierCounts;
use crate::backend::OpCounts;

#[derive(Debug, Default)]
pub(crate) struct Counter(AtomicU64);

impl Counter {
    pub(crate) fn inc(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }

    fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) hits: Counter,
    pub(crate) negative_hits: Counter,
    pub(crate) stale_served: Counter,
    pub(crate) misses: Counter,
    pub(crate) coalesced_waits: Counter,
    pub(crate) computations: Counter,
    pub(crate) compute_errors: Counter,
    pub(crate) background_refreshes: Counter,
    pub(crate) early_refreshes: Counter,
    pub(crate) corrupt_entries: Counter,
    pub(crate) future_version_entries: Counter,
    pub(crate) writes_rate_limited: Counter,
    pub(crate) writes_skipped_invalidated: Counter,
    pub(crate) errors: Counter,
    pub(crate) bypassed: Counter,
    /// A gauge, not a counter: see [`Waiting`].
    waiting: AtomicU64,
}

/// Counts a caller as waiting for another's computation while it lives (dropped on return or
/// cancellation alike).
pub(crate) struct Waiting<'a>(&'a Counters);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.waiting.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A snapshot of a cache's counters and of its KV handle's operation counts.
///
/// `hits + stale_served + misses + coalesced_waits` is the number of lookups: each call
/// counts once, under the [`CacheStatus`](super::CacheStatus) it returned.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct CacheStats {
    /// Fresh values served (negative hits included).
    pub hits: u64,
    /// Of `hits`, remembered "not found" answers.
    pub negative_hits: u64,
    /// Stale values served inside the grace window.
    pub stale_served: u64,
    /// Lookups answered by running the computation.
    pub misses: u64,
    /// Lookups answered by another caller's computation in this isolate.
    pub coalesced_waits: u64,
    /// Computations run (misses, early and background refreshes).
    pub computations: u64,
    /// Computations that returned an error.
    pub compute_errors: u64,
    /// Refreshes started in the background (stale-while-revalidate or early).
    pub background_refreshes: u64,
    /// Hits that triggered an XFetch early refresh.
    pub early_refreshes: u64,
    /// Entries that failed decoding, validation or migration (recomputed and replaced).
    pub corrupt_entries: u64,
    /// Entries written by newer code (recomputed, never replaced).
    pub future_version_entries: u64,
    /// Cache writes refused by KV's one-write-per-second limit (the value was still served).
    pub writes_rate_limited: u64,
    /// Writes dropped because the key was invalidated while its value was being computed.
    pub writes_skipped_invalidated: u64,
    /// KV failures absorbed by the cache (reads, writes, generation lookups).
    pub errors: u64,
    /// Generation reads that found a record this code cannot use
    /// ([`Error::CacheBypassed`](crate::Error::CacheBypassed)): each such lookup bypassed the
    /// cache (a miss, computed and not written).
    pub bypassed: u64,
    /// Computations in flight in this isolate right now.
    pub in_flight: u64,
    /// Callers waiting for another caller's computation right now.
    pub waiting: u64,
    /// Of `hits`, values served from the isolate-memory tier (no KV read).
    pub l1_hits: u64,
    /// Entries the memory tier dropped to stay within its entry and byte bounds.
    pub l1_evictions: u64,
    /// Bytes the memory tier holds right now (stored size of each value, its key, and its JSON
    /// text when held).
    pub l1_bytes: u64,
    /// Entries the memory tier holds right now.
    pub l1_entries: u64,
    /// KV operations of the store's [`Kv`](crate::Kv) handle.
    pub kv: OpCounts,
}

impl Counters {
    pub(crate) fn start_waiting(&self) -> Waiting<'_> {
        self.waiting.fetch_add(1, Ordering::Relaxed);
        Waiting(self)
    }

    pub(crate) fn snapshot(
        &self,
        in_flight: usize,
        kv: OpCounts,
        memory: Option<TierCounts>,
    ) -> CacheStats {
        let memory = memory.unwrap_or_default();
        CacheStats {
            l1_hits: memory.hits,
            l1_evictions: memory.evictions,
            l1_bytes: memory.bytes,
            l1_entries: memory.entries,
            hits: self.hits.get(),
            negative_hits: self.negative_hits.get(),
            stale_served: self.stale_served.get(),
            misses: self.misses.get(),
            coalesced_waits: self.coalesced_waits.get(),
            computations: self.computations.get(),
            compute_errors: self.compute_errors.get(),
            background_refreshes: self.background_refreshes.get(),
            early_refreshes: self.early_refreshes.get(),
            corrupt_entries: self.corrupt_entries.get(),
            future_version_entries: self.future_version_entries.get(),
            writes_rate_limited: self.writes_rate_limited.get(),
            writes_skipped_invalidated: self.writes_skipped_invalidated.get(),
            errors: self.errors.get(),
            bypassed: self.bypassed.get(),
            in_flight: u64::try_from(in_flight).unwrap_or(u64::MAX),
            waiting: self.waiting.load(Ordering::Relaxed),
            kv,
        }
    }
}
