//! Random interleavings of cache get / get-or-compute / put / invalidate / namespace
//! invalidation across three simulated KV locations (one isolate each) and time.
//!
//! Invariants:
//! * `try_get_or_compute` never fails because of KV (faults included);
//! * a value is served fresh only within its TTL, stale only within TTL + grace, and a miss
//!   serves what was just computed;
//! * after `invalidate(key)` at a location, nothing computed before it is served from the
//!   generation that isolate knew — there at once, everywhere once the propagation window has
//!   passed (an isolate that has not yet seen another's namespace bump deletes the key of the
//!   old generation: `invalidate_during_a_namespace_bump_elsewhere_can_miss_the_new_generation`
//!   in `tests/sim_races.rs`); after `invalidate_namespace`, nothing computed before it is
//!   served there at once, nor anywhere after the window plus the generation TTL;
//! * an entry written by newer code is never replaced (only deleted by an invalidation);
//! * nothing panics.

mod common;

use std::{
    collections::BTreeMap,
    convert::Infallible,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc,
    },
    time::Duration,
};

use futures::executor::block_on;
use kv_envelope::{
    cache::{
        CachePolicy, CacheState, CacheStatus, Cached, KvCache, MemoryTier, NamespaceGeneration,
    },
    decode_value, envelope,
    testing::{SimConfig, SimKv},
    Clock, Error, ManualClock,
};
use proptest::{prelude::*, test_runner::TestCaseResult};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use common::NOW as T0;
const LOCATIONS: usize = 3;
const WINDOW_MS: u64 = 60_000;
const TTL: Duration = Duration::from_secs(300);
const GRACE: Duration = Duration::from_secs(60);
/// How long an isolate trusts the namespace generation it read.
const GENERATION_TTL: Duration = Duration::from_secs(10);
/// The isolate-memory tier's TTL in the worlds that have one.
const L1_TTL: Duration = Duration::from_secs(5);

/// A cached value that says when and for which key it was computed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
struct Quote {
    key: u8,
    computed_at: u64,
    n: u64,
}

kv_envelope::versioned! { name: "quote", versions: [Quote] }

#[derive(Debug, Clone)]
enum Op {
    GetOrCompute { loc: usize, key: u8 },
    Get { loc: usize, key: u8 },
    Put { loc: usize, key: u8 },
    Invalidate { loc: usize, key: u8 },
    InvalidateNamespace { loc: usize },
    PlantFuture { key: u8 },
    Advance { ms: u64 },
}

fn op() -> impl Strategy<Value = Op> {
    let loc = 0..LOCATIONS;
    let key = 0..4u8;
    prop_oneof![
        6 => (loc.clone(), key.clone()).prop_map(|(loc, key)| Op::GetOrCompute { loc, key }),
        3 => (loc.clone(), key.clone()).prop_map(|(loc, key)| Op::Get { loc, key }),
        2 => (loc.clone(), key.clone()).prop_map(|(loc, key)| Op::Put { loc, key }),
        2 => (loc.clone(), key.clone()).prop_map(|(loc, key)| Op::Invalidate { loc, key }),
        1 => loc.prop_map(|loc| Op::InvalidateNamespace { loc }),
        1 => key.prop_map(|key| Op::PlantFuture { key }),
        3 => (0..3_000u64).prop_map(|ms| Op::Advance { ms }),
        3 => (0..90_000u64).prop_map(|ms| Op::Advance { ms }),
        1 => (0..600_000u64).prop_map(|ms| Op::Advance { ms }),
    ]
}

fn policy() -> CachePolicy {
    CachePolicy::new(TTL).with_stale_while_revalidate(GRACE)
}

fn ms(d: Duration) -> u64 {
    d.as_millis() as u64
}

struct World {
    clock: ManualClock,
    sim: SimKv,
    stores: Vec<KvCache<Quote>>,
    counter: Arc<AtomicU64>,
    faults: bool,
    /// Per full KV key (the generation the invalidating isolate knew): invalidations
    /// (time, location).
    invalidations: BTreeMap<String, Vec<(u64, usize)>>,
    /// Namespace invalidations (time, location).
    bumps: Vec<(u64, usize)>,
    /// Full KV key → newer-code bytes planted there.
    planted: BTreeMap<String, Vec<u8>>,
    served: u64,
    stale_served: u64,
    /// L1 TTL in ms when each isolate has a memory tier, else 0.
    l1_ms: u64,
    from_memory: u64,
}

fn world(seed: u64, faults: bool) -> World {
    world_with(seed, faults, None)
}

fn world_with(seed: u64, faults: bool, memory: Option<Duration>) -> World {
    let clock = ManualClock::new(T0);
    let config = SimConfig::default().with_fault_rate(if faults { 0.05 } else { 0.0 });
    let sim = SimKv::new(seed, config, Arc::new(clock.clone()));
    let stores = (0..LOCATIONS)
        .map(|i| {
            KvCache::<Quote>::new(sim.kv(i))
                .with_state(match memory {
                    Some(ttl) => CacheState::with_memory_tier(MemoryTier::new(3, 1 << 20, ttl)),
                    None => CacheState::new(),
                })
                .with_generation_ttl(GENERATION_TTL)
                // No early refresh: computations happen only where the model expects them.
                .with_random(Arc::new(|| 1.0))
        })
        .collect();
    World {
        clock,
        sim,
        stores,
        counter: Arc::new(AtomicU64::new(0)),
        faults,
        invalidations: BTreeMap::new(),
        bumps: Vec::new(),
        planted: BTreeMap::new(),
        served: 0,
        stale_served: 0,
        l1_ms: memory.map_or(0, ms),
        from_memory: 0,
    }
}

impl World {
    fn now(&self) -> u64 {
        self.clock.now_ms()
    }

    fn quote(&self, key: u8) -> Quote {
        Quote {
            key,
            computed_at: self.now(),
            n: self.counter.fetch_add(1, Ordering::SeqCst),
        }
    }

    fn allowed(&self, e: &Error, also: &[&str]) -> TestCaseResult {
        prop_assert!(
            (self.faults && matches!(e, Error::Backend { .. })) || also.contains(&e.kind()),
            "unexpected error {e:?}"
        );
        Ok(())
    }

    /// The oldest computation time `loc` may still serve at `now` from full key `full`.
    fn floor(&self, full: Option<&str>, loc: usize, now: u64) -> u64 {
        let mut floor = 0;
        let invalidations = full.and_then(|f| self.invalidations.get(f));
        for &(t, l) in invalidations.into_iter().flatten() {
            // Elsewhere: the propagation window, plus the L1 TTL when isolates keep values in
            // memory (the docs/cache.md bound).
            if l == loc || now >= t + WINDOW_MS + self.l1_ms {
                floor = floor.max(t);
            }
        }
        for &(t, l) in &self.bumps {
            if l == loc || now >= t + WINDOW_MS + ms(GENERATION_TTL) {
                floor = floor.max(t);
            }
        }
        floor
    }

    fn check_served(&mut self, key: u8, loc: usize, c: &Cached<Quote>) -> TestCaseResult {
        let now = self.now();
        let q = &c.value;
        prop_assert_eq!(q.key, key, "served another key's value");
        prop_assert!(q.computed_at <= now);
        match c.status {
            CacheStatus::Hit => prop_assert!(
                now < q.computed_at + ms(TTL),
                "served past its TTL as fresh"
            ),
            CacheStatus::Stale => {
                self.stale_served += 1;
                prop_assert!(
                    now < q.computed_at + ms(TTL) + ms(GRACE),
                    "served past its grace window"
                );
            }
            CacheStatus::Miss | CacheStatus::Coalesced => {
                prop_assert_eq!(q.computed_at, now, "a miss serves a fresh computation")
            }
        }
        // The generation this isolate reads now (the one it just served from).
        let full = block_on(self.stores[loc].key_for(&key.to_string())).ok();
        let floor = self.floor(full.as_deref(), loc, now);
        prop_assert!(
            q.computed_at >= floor,
            "location {loc} served a value computed at {} after an invalidation at {floor}",
            q.computed_at
        );
        self.served += 1;
        self.from_memory += u64::from(c.from_memory);
        Ok(())
    }

    fn apply(&mut self, op: &Op) -> TestCaseResult {
        let now = self.now();
        match *op {
            Op::Advance { ms } => self.clock.advance(Duration::from_millis(ms)),
            Op::GetOrCompute { loc, key } => {
                let q = self.quote(key);
                let r = block_on(self.stores[loc].try_get_or_compute(
                    &key.to_string(),
                    &policy(),
                    move || async move { Ok::<_, Infallible>(q) },
                ));
                match r {
                    Ok(c) => self.check_served(key, loc, &c)?,
                    Err(never) => match never {},
                }
            }
            Op::Get { loc, key } => match block_on(self.stores[loc].get(&key.to_string())) {
                Ok(Some(c)) => self.check_served(key, loc, &c)?,
                Ok(None) => {}
                Err(e) => self.allowed(&e, &[])?,
            },
            Op::Put { loc, key } => {
                let q = self.quote(key);
                if let Err(e) = block_on(self.stores[loc].put(&key.to_string(), &q, &policy())) {
                    self.allowed(&e, &["rate_limited", "future_version"])?;
                }
            }
            Op::Invalidate { loc, key } => {
                // Which generation's key this isolate deletes: one it has not seen a bump
                // for yet is missed (see `tests/sim_races.rs`).
                let full = match block_on(self.stores[loc].key_for(&key.to_string())) {
                    Ok(full) => full,
                    Err(e) => return self.allowed(&e, &[]),
                };
                match block_on(self.stores[loc].invalidate(&key.to_string())) {
                    Ok(()) => self.invalidations.entry(full).or_default().push((now, loc)),
                    Err(e) => self.allowed(&e, &[])?,
                }
            }
            Op::InvalidateNamespace { loc } => {
                match block_on(self.stores[loc].invalidate_namespace()) {
                    Ok(_) => self.bumps.push((now, loc)),
                    Err(e) => self.allowed(&e, &["rate_limited"])?,
                }
            }
            Op::PlantFuture { key } => {
                // Under the namespace's newest generation, as newer code would write it.
                let keys = self.stores[0].keys().clone();
                let generation = self
                    .sim
                    .central(&keys.generation())
                    .and_then(|s| decode_value::<NamespaceGeneration>(&s.value, now, false).ok())
                    .flatten()
                    .map_or(0, |d| d.value.generation);
                let full = keys.entry(generation, &key.to_string());
                let bytes = envelope::encode(
                    kv_envelope::Codec::Json,
                    "quote",
                    2,
                    None,
                    &serde_json::json!({"key": key, "from": "the future"}),
                )
                .expect("encode");
                self.sim.insert_raw(&full, bytes.clone(), None);
                self.planted.insert(full, bytes);
            }
        }
        // Newer-code entries are never replaced; an invalidation may delete them.
        let planted: Vec<(String, Vec<u8>)> = self
            .planted
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        for (full, bytes) in planted {
            match self.sim.central(&full).map(|s| s.value) {
                Some(now_stored) => prop_assert_eq!(
                    &now_stored,
                    &bytes,
                    "a newer-version cache entry was overwritten"
                ),
                None => {
                    self.planted.remove(&full);
                }
            }
        }
        Ok(())
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(192))]

    #[test]
    fn cache_invariants_hold_across_locations_and_time(
        seed in any::<u64>(),
        ops in prop::collection::vec(op(), 1..80),
    ) {
        let mut w = world(seed, false);
        for op in &ops {
            w.apply(op)?;
        }
    }

    /// The same invariants with an isolate-memory tier (3 entries, so evictions happen) in
    /// every isolate: nothing served past its TTL or grace, and other isolates' invalidations
    /// bounded by the window plus the L1 TTL (namespace bumps: unchanged, the generation is
    /// part of the key).
    #[test]
    fn cache_invariants_hold_with_a_memory_tier(
        seed in any::<u64>(),
        ops in prop::collection::vec(op(), 1..80),
        faults in any::<bool>(),
    ) {
        let mut w = world_with(seed, faults, Some(L1_TTL));
        for op in &ops {
            w.apply(op)?;
        }
    }

    #[test]
    fn cache_invariants_hold_with_faults(
        seed in any::<u64>(),
        ops in prop::collection::vec(op(), 1..80),
    ) {
        let mut w = world(seed, true);
        for op in &ops {
            w.apply(op)?;
        }
    }
}

/// The generator reaches hits, stale serves and invalidations, so the invariants above are
/// not vacuous.
#[test]
fn the_model_is_exercised() {
    use proptest::strategy::ValueTree;
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let strategy = (any::<u64>(), prop::collection::vec(op(), 40..80));
    let (mut served, mut stale, mut invalidations) = (0, 0, 0);
    for _ in 0..100 {
        let (seed, ops) = strategy.new_tree(&mut runner).expect("tree").current();
        let mut w = world(seed, false);
        for op in &ops {
            w.apply(op).expect("invariants");
        }
        served += w.served;
        stale += w.stale_served;
        invalidations += w.invalidations.values().map(Vec::len).sum::<usize>() + w.bumps.len();
    }
    assert!(served > 1000, "{served} served");
    assert!(stale > 0, "no stale value was ever served");
    assert!(invalidations > 100, "{invalidations} invalidations");
}

/// With memory tiers, hits really come from memory (the L1 run above is not vacuous).
#[test]
fn the_memory_tier_is_exercised() {
    use proptest::strategy::ValueTree;
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let strategy = (any::<u64>(), prop::collection::vec(op(), 40..80));
    let (mut served, mut from_memory) = (0, 0);
    for _ in 0..100 {
        let (seed, ops) = strategy.new_tree(&mut runner).expect("tree").current();
        let mut w = world_with(seed, false, Some(L1_TTL));
        for op in &ops {
            w.apply(op).expect("invariants");
        }
        served += w.served;
        from_memory += w.from_memory;
    }
    assert!(
        from_memory > 100,
        "{from_memory} of {served} served from memory"
    );
}
