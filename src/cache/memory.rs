//! The isolate-memory tier (L1): decoded, validated values (and their JSON text) kept in this
//! isolate for a short time in front of KV.
//!
//! A small LRU of our own rather than a crate: it must bound entries *and* bytes, give every
//! entry its own deadline (the L1 TTL, never past the envelope's fresh-until or expiry), drop a
//! whole namespace by prefix, hold values of any type behind one table (the table is shared by
//! every store of a [`CacheState`](super::CacheState)), and refuse fills that raced an
//! invalidation. `lru` bounds only entry counts and `quick_cache` is a sharded concurrent cache
//! with weights but no prefix removal; either would still need the rest around it, and an
//! isolate is single-threaded, so one mutex is uncontended. The LRU order is a queue with lazy
//! deletion: a hit pushes the key again (amortised O(1)), stale queue slots are skipped when
//! evicting and compacted when the queue outgrows the table.

use std::{
    any::Any,
    collections::{HashMap, VecDeque},
    fmt,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc, Mutex, MutexGuard, PoisonError,
    },
    time::Duration,
};

use super::{entry::Timing, passthrough::JsonText, policy::millis};

/// Default L1 TTL: how long an isolate serves a value from memory before asking KV again.
pub(crate) const DEFAULT_MEMORY_TTL: Duration = Duration::from_secs(5);

/// Bounds and TTL of the isolate-memory tier of a [`CacheState`](super::CacheState)
/// ([`CacheState::with_memory_tier`](super::CacheState::with_memory_tier)).
///
/// A value is served from memory for at most `ttl` after it was read from KV (or computed and
/// written by this isolate), and never once its envelope is no longer fresh. Other isolates'
/// invalidations reach this one within `ttl` on top of KV's own bounds (see `docs/cache.md`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryTier {
    max_entries: usize,
    max_bytes: usize,
    ttl_ms: u64,
}

impl MemoryTier {
    /// At most `max_entries` values and `max_bytes` bytes (the stored size of each value plus
    /// its key and its JSON text when held), each kept for at most `ttl`.
    pub fn new(max_entries: usize, max_bytes: usize, ttl: Duration) -> Self {
        Self {
            max_entries,
            max_bytes,
            ttl_ms: millis(ttl),
        }
    }

    /// The L1 TTL.
    pub fn ttl(&self) -> Duration {
        Duration::from_millis(self.ttl_ms)
    }

    /// The entry bound.
    pub fn max_entries(&self) -> usize {
        self.max_entries
    }

    /// The byte bound.
    pub fn max_bytes(&self) -> usize {
        self.max_bytes
    }
}

impl Default for MemoryTier {
    /// 1,000 entries, 8 MiB, 5 s.
    fn default() -> Self {
        Self::new(1_000, 8 << 20, DEFAULT_MEMORY_TTL)
    }
}

/// What one entry holds: the typed value, its JSON text, or both (filled by whichever read
/// came first; both stem from the same KV entry, see [`Tier::insert`]).
struct Slot {
    value: Option<Arc<dyn Any + Send + Sync>>,
    json: Option<JsonText>,
    timing: Timing,
    /// Last instant (exclusive) it may be served from memory.
    until: u64,
    /// Total bytes charged (key + stored size + JSON text when held).
    bytes: usize,
    tick: u64,
}

#[derive(Default)]
struct Table {
    map: HashMap<Arc<str>, Slot>,
    order: VecDeque<(u64, Arc<str>)>,
    tick: u64,
    bytes: usize,
}

/// A fill: what a read found, to keep in memory.
pub(crate) enum Fill<'a, T> {
    Value(&'a T),
    Json(&'a JsonText),
}

/// The tier itself, in a [`CacheState`](super::CacheState).
pub(crate) struct Tier {
    config: MemoryTier,
    table: Mutex<Table>,
    /// Bumped by every invalidation in this isolate: a fill whose read started before one is
    /// dropped (it may hold the invalidated value).
    epoch: AtomicU64,
    hits: AtomicU64,
    evictions: AtomicU64,
    bytes: AtomicU64,
    entries: AtomicU64,
}

impl fmt::Debug for Tier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tier")
            .field("config", &self.config)
            .field("entries", &self.entries.load(Ordering::Relaxed))
            .field("bytes", &self.bytes.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

/// A snapshot of the tier's gauges and counters.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct TierCounts {
    pub(crate) hits: u64,
    pub(crate) evictions: u64,
    pub(crate) bytes: u64,
    pub(crate) entries: u64,
}

impl Tier {
    pub(crate) fn new(config: MemoryTier) -> Self {
        Self {
            config,
            table: Mutex::new(Table::default()),
            epoch: AtomicU64::new(0),
            hits: AtomicU64::new(0),
            evictions: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            entries: AtomicU64::new(0),
        }
    }

    pub(crate) fn config(&self) -> MemoryTier {
        self.config
    }

    fn lock(&self) -> MutexGuard<'_, Table> {
        // Short, non-panicking sections: a poisoned table is still consistent.
        self.table.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The epoch to hand back to [`insert`](Self::insert): read it before the KV read.
    pub(crate) fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::SeqCst)
    }

    /// The typed value of `key`, while it may be served at `now` (the caller counts the hit
    /// with [`count_hit`](Self::count_hit) if it serves it).
    pub(crate) fn get_value<T: Clone + 'static>(&self, key: &str, now: u64) -> Option<(T, Timing)> {
        let mut table = self.lock();
        let slot = table.live(key, now)?;
        let value = slot.value.as_ref()?.downcast_ref::<T>()?.clone();
        let timing = slot.timing;
        table.touch(key);
        Some((value, timing))
    }

    /// The JSON text of `key`, while it may be served at `now`. An entry holding only the
    /// typed value gets its JSON text from it (serialized once, then kept).
    pub(crate) fn get_json<T: serde::Serialize + 'static>(
        &self,
        key: &str,
        now: u64,
    ) -> Option<(JsonText, Timing)> {
        let mut table = self.lock();
        let slot = table.live(key, now)?;
        let timing = slot.timing;
        let json = match &slot.json {
            Some(json) => json.clone(),
            None => {
                let value = slot.value.as_ref()?.downcast_ref::<T>()?;
                let json = JsonText::from_value(value).ok()?;
                slot.json = Some(json.clone());
                slot.bytes += json.len();
                table.bytes += json.len();
                json
            }
        };
        table.touch(key);
        self.evict(&mut table);
        Some((json, timing))
    }

    /// Count a value served from memory.
    pub(crate) fn count_hit(&self) {
        self.hits.fetch_add(1, Ordering::Relaxed);
    }

    /// Keep what a read of `key` found (stored size `stored_bytes`, `timing` as read), unless
    /// an invalidation happened since `epoch` or it cannot be served anyway.
    pub(crate) fn insert<T: Send + Sync + Clone + 'static>(
        &self,
        key: &str,
        fill: Fill<'_, T>,
        timing: Timing,
        stored_bytes: usize,
        now: u64,
        epoch: u64,
    ) {
        let mut until = now.saturating_add(self.config.ttl_ms);
        for bound in [timing.fresh_until, timing.expires_at]
            .into_iter()
            .flatten()
        {
            until = until.min(bound);
        }
        if until <= now || self.config.max_entries == 0 {
            return;
        }
        let mut table = self.lock();
        // Checked under the lock: invalidations bump the epoch under it too.
        if self.epoch.load(Ordering::SeqCst) != epoch {
            return;
        }
        let (value, json) = match fill {
            Fill::Value(v) => (
                Some(Arc::new(v.clone()) as Arc<dyn Any + Send + Sync>),
                None,
            ),
            Fill::Json(j) => (None, Some(j.clone())),
        };
        // Merge with what is held when both come from the same KV entry (same timing).
        let (value, json) = match table.map.get(key) {
            Some(old) if old.timing == timing && old.until > now => (
                value.or_else(|| old.value.clone()),
                json.or_else(|| old.json.clone()),
            ),
            _ => (value, json),
        };
        let bytes = key.len() + stored_bytes + json.as_ref().map_or(0, JsonText::len);
        table.remove(key);
        if bytes > self.config.max_bytes {
            self.publish(&table);
            return;
        }
        table.tick += 1;
        let tick = table.tick;
        let key: Arc<str> = Arc::from(key);
        table.order.push_back((tick, Arc::clone(&key)));
        table.bytes += bytes;
        table.map.insert(
            key,
            Slot {
                value,
                json,
                timing,
                until,
                bytes,
                tick,
            },
        );
        self.evict(&mut table);
    }

    /// Forget `key` in this isolate now.
    pub(crate) fn invalidate(&self, key: &str) {
        let mut table = self.lock();
        self.epoch.fetch_add(1, Ordering::SeqCst);
        table.remove(key);
        self.publish(&table);
    }

    /// Forget every key starting with `prefix` (a namespace, every generation) now.
    pub(crate) fn invalidate_prefix(&self, prefix: &str) {
        let mut table = self.lock();
        self.epoch.fetch_add(1, Ordering::SeqCst);
        let doomed: Vec<Arc<str>> = table
            .map
            .keys()
            .filter(|k| k.starts_with(prefix))
            .cloned()
            .collect();
        for key in doomed {
            table.remove(&key);
        }
        self.publish(&table);
    }

    pub(crate) fn counts(&self) -> TierCounts {
        TierCounts {
            hits: self.hits.load(Ordering::Relaxed),
            evictions: self.evictions.load(Ordering::Relaxed),
            bytes: self.bytes.load(Ordering::Relaxed),
            entries: self.entries.load(Ordering::Relaxed),
        }
    }

    /// Drop least recently used entries until both bounds hold; publish the gauges.
    fn evict(&self, table: &mut Table) {
        while table.map.len() > self.config.max_entries || table.bytes > self.config.max_bytes {
            let Some((tick, key)) = table.order.pop_front() else {
                break;
            };
            if table.map.get(&key).is_some_and(|s| s.tick == tick) {
                table.remove(&key);
                self.evictions.fetch_add(1, Ordering::Relaxed);
            }
        }
        table.compact();
        self.publish(table);
    }

    fn publish(&self, table: &Table) {
        self.bytes.store(table.bytes as u64, Ordering::Relaxed);
        self.entries
            .store(table.map.len() as u64, Ordering::Relaxed);
    }
}

impl Table {
    /// The slot of `key` if it may still be served at `now` (an expired one is dropped).
    fn live(&mut self, key: &str, now: u64) -> Option<&mut Slot> {
        if self.map.get(key)?.until <= now {
            self.remove(key);
            return None;
        }
        self.map.get_mut(key)
    }

    fn touch(&mut self, key: &str) {
        self.tick += 1;
        let tick = self.tick;
        if let Some((k, _)) = self.map.get_key_value(key) {
            let k = Arc::clone(k);
            self.order.push_back((tick, k));
        }
        if let Some(slot) = self.map.get_mut(key) {
            slot.tick = tick;
        }
        self.compact();
    }

    /// Drop queue slots of keys used again since (amortised: only once the queue has grown
    /// past twice the table).
    fn compact(&mut self) {
        if self.order.len() > 2 * self.map.len() + 64 {
            let Table { map, order, .. } = self;
            order.retain(|(tick, key)| map.get(key).is_some_and(|s| s.tick == *tick));
        }
    }

    fn remove(&mut self, key: &str) {
        if let Some(slot) = self.map.remove(key) {
            self.bytes -= slot.bytes;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn timing(fresh_until: u64, expires_at: u64) -> Timing {
        Timing {
            computed_at: Some(0),
            fresh_until: Some(fresh_until),
            expires_at: Some(expires_at),
            delta_ms: 0,
        }
    }

    fn tier(entries: usize, bytes: usize) -> Tier {
        Tier::new(MemoryTier::new(entries, bytes, Duration::from_secs(5)))
    }

    #[test]
    fn serves_until_the_ttl_or_freshness_ends() {
        let t = tier(10, 10_000);
        t.insert(
            "a",
            Fill::Value(&1u32),
            timing(100_000, 200_000),
            10,
            0,
            t.epoch(),
        );
        assert_eq!(t.get_value::<u32>("a", 4_999).map(|v| v.0), Some(1));
        assert_eq!(t.get_value::<u32>("a", 5_000), None, "L1 TTL");
        t.insert(
            "b",
            Fill::Value(&2u32),
            timing(3_000, 200_000),
            10,
            0,
            t.epoch(),
        );
        assert_eq!(t.get_value::<u32>("b", 2_999).map(|v| v.0), Some(2));
        assert_eq!(t.get_value::<u32>("b", 3_000), None, "fresh-until");
        t.insert(
            "c",
            Fill::Value(&3u32),
            timing(1_000, 1_000),
            10,
            1_000,
            t.epoch(),
        );
        assert_eq!(
            t.get_value::<u32>("c", 1_000),
            None,
            "never kept past expiry"
        );
        assert_eq!(
            t.get_value::<String>("a", 0),
            None,
            "another type is a miss"
        );
    }

    #[test]
    fn bounds_entries_and_bytes_least_recently_used_first() {
        let t = tier(3, 1_000);
        let e = t.epoch();
        for k in ["a", "b", "c"] {
            t.insert(k, Fill::Value(&0u8), timing(9_999, 9_999), 99, 0, e);
        }
        assert!(t.get_value::<u8>("a", 1).is_some());
        t.insert("d", Fill::Value(&0u8), timing(9_999, 9_999), 99, 0, e);
        assert!(
            t.get_value::<u8>("b", 1).is_none(),
            "b was least recently used"
        );
        assert!(t.get_value::<u8>("a", 1).is_some());
        assert_eq!(t.counts().entries, 3);
        assert_eq!(t.counts().bytes, 300);
        // 700 + 3 bytes of key push out the least recently used 100-byte entry (c).
        t.insert("big", Fill::Value(&0u8), timing(9_999, 9_999), 700, 0, e);
        assert_eq!(t.counts().entries, 3);
        assert_eq!(t.counts().bytes, 903);
        assert_eq!(t.counts().evictions, 2);
        assert!(t.get_value::<u8>("c", 1).is_none());
        t.insert("huge", Fill::Value(&0u8), timing(9_999, 9_999), 5_000, 0, e);
        assert!(
            t.get_value::<u8>("huge", 1).is_none(),
            "larger than the tier: not kept"
        );
        for i in 0..10_000 {
            assert!(t.get_value::<u8>("big", 1 + i % 4_000).is_some());
        }
        assert!(t.lock().order.len() < 200, "the LRU queue is compacted");
    }

    #[test]
    fn invalidation_drops_entries_and_racing_fills() {
        let t = tier(10, 10_000);
        let before = t.epoch();
        t.insert(
            "ns:g1:a",
            Fill::Value(&1u8),
            timing(9_999, 9_999),
            1,
            0,
            before,
        );
        t.insert(
            "ns:g2:b",
            Fill::Value(&1u8),
            timing(9_999, 9_999),
            1,
            0,
            before,
        );
        t.insert(
            "other:a",
            Fill::Value(&1u8),
            timing(9_999, 9_999),
            1,
            0,
            before,
        );
        t.invalidate("other:a");
        assert!(t.get_value::<u8>("other:a", 1).is_none());
        // A read that started before the invalidation does not land.
        t.insert(
            "other:a",
            Fill::Value(&1u8),
            timing(9_999, 9_999),
            1,
            0,
            before,
        );
        assert!(t.get_value::<u8>("other:a", 1).is_none());
        t.invalidate_prefix("ns:");
        assert_eq!(t.counts().entries, 0);
        assert_eq!(t.counts().bytes, 0);
    }
}
