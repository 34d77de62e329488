//! Per-isolate cache state shared by the stores of an isolate: flights, generations, counters.

use std::{
    collections::HashMap,
    fmt,
    sync::{Arc, Mutex, MutexGuard, PoisonError},
};

use super::{
    flight::Flights,
    memory::{MemoryTier, Tier},
    stats::Counters,
    CacheStats,
};
use crate::backend::OpCounts;

/// Per-isolate cache state: the single-flight table, the generations last read and the
/// counters. Cheap to clone (clones share). Keep one per isolate and KV namespace — in a
/// `static` (it is `Send + Sync`) — and hand it to each request's store with
/// [`KvCache::with_state`], so concurrent requests coalesce and counters accumulate.
///
/// [`KvCache::with_state`]: super::KvCache::with_state
#[derive(Clone, Default)]
pub struct CacheState {
    pub(super) inner: Arc<StateInner>,
}

#[derive(Default)]
pub(super) struct StateInner {
    pub(super) flights: Arc<Flights>,
    generations: Mutex<HashMap<String, KnownGeneration>>,
    pub(super) counters: Counters,
    /// The isolate-memory tier, when this state has one.
    pub(super) memory: Option<Tier>,
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

    /// Fresh state with an isolate-memory tier (L1) bounded by `tier`: every store on this
    /// state keeps the fresh values it reads from KV, or computes and writes, in this
    /// isolate's memory for the tier's TTL, and serves them from there without a KV read
    /// (status `Hit`, [`Cached::from_memory`](super::Cached::from_memory)).
    /// [`invalidate`](super::KvCache::invalidate), [`put`](super::KvCache::put) and
    /// [`invalidate_namespace`](super::KvCache::invalidate_namespace) clear it here at once;
    /// other isolates see them up to the tier's TTL later than without it (`docs/cache.md`).
    /// A store opts out with [`KvCache::with_memory_tier(false)`](super::KvCache::with_memory_tier).
    pub fn with_memory_tier(tier: MemoryTier) -> Self {
        Self {
            inner: Arc::new(StateInner {
                memory: Some(Tier::new(tier)),
                ..StateInner::default()
            }),
        }
    }

    /// The memory tier's bounds and TTL, when this state has one.
    pub fn memory_tier(&self) -> Option<MemoryTier> {
        self.inner.memory.as_ref().map(Tier::config)
    }

    /// The counters of every store on this state, without building a store (for a `/metrics`
    /// route). `kv` is all zeros: KV operation counts belong to a [`Kv`] handle — pass them
    /// with [`stats_with_kv`](Self::stats_with_kv), or use [`KvCache::stats`].
    ///
    /// [`Kv`]: crate::Kv
    /// [`KvCache::stats`]: super::KvCache::stats
    pub fn stats(&self) -> CacheStats {
        self.stats_with_kv(OpCounts::default())
    }

    /// [`stats`](Self::stats) with `kv` as the KV operation counts, e.g. the snapshot of the
    /// `OpCounters` the cache's `Kv` handles share ([`Kv::with_counters`]).
    ///
    /// [`Kv::with_counters`]: crate::Kv::with_counters
    pub fn stats_with_kv(&self, kv: OpCounts) -> CacheStats {
        self.inner.counters.snapshot(
            self.inner.flights.len(),
            kv,
            self.inner.memory.as_ref().map(Tier::counts),
        )
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
