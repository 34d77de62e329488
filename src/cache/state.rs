//! Per-isolate cache state shared by the stores of an isolate: flights, generations, counters.

use std::{
    collections::HashMap,
    fmt,
    sync::{Arc, Mutex, MutexGuard, PoisonError},
};

use super::{flight::Flights, stats::Counters, CacheStats};
use crate::backend::OpCounts;

/// Per-isolate cache state: the single-flight table, the generations last read and the
/// counters. Cheap to clone (clones share). Keep one per isolate and KV namespace — in a
/// `static` (it is `Send + Sync`) — and hand it to each request's store with
/// [`CacheStore::with_state`], so concurrent requests coalesce and counters accumulate.
///
/// [`CacheStore::with_state`]: super::CacheStore::with_state
#[derive(Clone, Default)]
pub struct CacheState {
    pub(super) inner: Arc<StateInner>,
}

#[derive(Default)]
pub(super) struct StateInner {
    pub(super) flights: Arc<Flights>,
    generations: Mutex<HashMap<String, KnownGeneration>>,
    pub(super) counters: Counters,
}

#[derive(Debug, Clone, Copy)]
struct KnownGeneration {
    generation: u64,
    checked_at: u64,
}

impl fmt::Debug for CacheState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CacheState")
            .field("in_flight", &self.inner.flights.len())
            .finish_non_exhaustive()
    }
}

impl CacheState {
    /// Fresh state.
    pub fn new() -> Self {
        Self::default()
    }

    /// The counters of every store on this state, without building a store (for a `/metrics`
    /// route). `kv` is all zeros: KV operation counts belong to a [`Kv`] handle — pass them
    /// with [`stats_with_kv`](Self::stats_with_kv), or use [`CacheStore::stats`].
    ///
    /// [`Kv`]: crate::backend::Kv
    /// [`CacheStore::stats`]: super::CacheStore::stats
    pub fn stats(&self) -> CacheStats {
        self.stats_with_kv(OpCounts::default())
    }

    /// [`stats`](Self::stats) with `kv` as the KV operation counts, e.g. the snapshot of the
    /// `OpCounters` the cache's `Kv` handles share ([`Kv::with_counters`]).
    ///
    /// [`Kv::with_counters`]: crate::backend::Kv::with_counters
    pub fn stats_with_kv(&self, kv: OpCounts) -> CacheStats {
        self.inner.counters.snapshot(self.inner.flights.len(), kv)
    }

    fn generations(&self) -> MutexGuard<'_, HashMap<String, KnownGeneration>> {
        // Short, non-panicking critical sections: a poisoned map is still consistent.
        self.inner
            .generations
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    pub(super) fn cached_generation(&self, key: &str, now: u64, ttl_ms: u64) -> Option<u64> {
        let known = *self.generations().get(key)?;
        let age = now.checked_sub(known.checked_at)?;
        (age < ttl_ms).then_some(known.generation)
    }

    pub(super) fn known_generation(&self, key: &str) -> Option<u64> {
        self.generations().get(key).map(|k| k.generation)
    }

    /// Record `generation` as read at `now`. Generations only grow, so a stale KV read never
    /// takes this isolate back to a generation it already knows was invalidated.
    pub(super) fn remember_generation(&self, key: &str, generation: u64, now: u64) -> u64 {
        let mut map = self.generations();
        let known = map.entry(key.to_string()).or_insert(KnownGeneration {
            generation,
            checked_at: now,
        });
        known.generation = known.generation.max(generation);
        known.checked_at = now;
        known.generation
    }
}
