//! Races that KV's eventual consistency allows (no compare-and-swap, stale reads for up to the
//! propagation window), found by the property tests on the simulator. Each is pinned twice: that
//! it can happen inside the window (so the documentation stays honest), and that it cannot once
//! the window has passed (the bound the stores promise).

mod common;

use std::{convert::Infallible, sync::Arc, time::Duration};

use futures::executor::block_on;
use kv_envelope::{
    backend::sim::{SimConfig, SimKv},
    cache::{CachePolicy, CacheState, CacheStore},
    session::{IdSource, Refresh, SessionStore},
    ManualClock, Result,
};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use common::CountingIds;
use common::NOW as T0;
const WINDOW: Duration = Duration::from_secs(60);
const SEEDS: u64 = 20;

fn sessions(seed: u64) -> (ManualClock, Vec<SessionStore>) {
    let clock = ManualClock::new(T0);
    let sim = SimKv::new(seed, SimConfig::default(), Arc::new(clock.clone()));
    let ids: Arc<dyn IdSource> = Arc::new(CountingIds::new(0x3c));
    let stores = (0..3)
        .map(|i| {
            SessionStore::new(sim.kv(i))
                .with_idle_timeout(Duration::from_secs(600))
                .with_absolute_lifetime(Duration::from_secs(3600))
                .with_id_source(ids.clone())
        })
        .collect();
    (clock, stores)
}

/// Logged out at location 0, the session is refreshed at location 1 whose view still holds it:
/// the refresh writes it back (last write wins). The write-back's check of the index entry
/// then undoes the write wherever location 1 already sees the entry's delete; where its view
/// of the entry is stale too, the session lives again everywhere — without its index entry, so
/// "log out everywhere" cannot find it — until its next refresh write after the window, which
/// finds no entry and deletes it (or its idle expiry). Only a strongly consistent revocation
/// closes the window itself (see docs/sessions.md and issue 18).
///
/// Measured here (figures in RELIABILITY.md): of `TRIALS` logouts raced by a stale refresh,
/// how many writes landed on a deleted session (every one a resurrection before the check),
/// how many the check undid, and how many remained until the next refresh.
#[test]
fn stale_refresh_elsewhere_can_resurrect_a_logged_out_session() {
    const TRIALS: u64 = 400;
    let (mut stale_writes, mut undone, mut remaining) = (0, 0, 0);
    for seed in 0..TRIALS {
        let (clock, stores) = sessions(seed);
        let (id, _) = block_on(stores[0].create("u", "u@example.com")).expect("create");
        clock.advance(WINDOW);
        // Past the refresh threshold (6/7 of the idle timeout remaining), so a refresh writes.
        clock.advance(Duration::from_secs(120));
        block_on(stores[0].delete(&id)).expect("logout");
        assert_eq!(block_on(stores[0].get(&id)).expect("get"), None);
        // A few seconds later, at another location.
        clock.advance(Duration::from_millis(seed % 30 * 1000));
        match block_on(stores[1].refresh(&id)).expect("refresh") {
            Refresh::Extended { .. } => {
                stale_writes += 1;
                remaining += 1;
                clock.advance(WINDOW);
                for store in &stores {
                    assert!(block_on(store.get(&id)).expect("get").is_some());
                }
                let out = block_on(stores[0].delete_all_for_user("u")).expect("logout all");
                assert_eq!(out.deleted, 0, "the resurrected session has no index entry");
                // Its next refresh write, once due, finds no entry and deletes it.
                clock.advance(Duration::from_secs(30));
                assert!(matches!(
                    block_on(stores[2].refresh(&id)).expect("refresh"),
                    Refresh::NoSession(_)
                ));
                clock.advance(WINDOW);
                for store in &stores {
                    assert_eq!(block_on(store.get(&id)).expect("get"), None);
                }
            }
            Refresh::NoSession(_) if stores[1].kv().counters().snapshot().kv_writes > 0 => {
                // The refresh wrote and its check found the entry gone: undone at once.
                stale_writes += 1;
                undone += 1;
                clock.advance(WINDOW);
                for store in &stores {
                    assert_eq!(block_on(store.get(&id)).expect("get"), None);
                }
            }
            _ => {}
        }
    }
    eprintln!(
        "stale refresh after logout: {TRIALS} trials, {stale_writes} writes over the delete \
         (resurrections without the check), {undone} undone by the check, {remaining} remained \
         until the next refresh"
    );
    assert!(stale_writes > 0, "the race is real in the model");
    assert!(undone > 0, "the check undoes some");
    assert!(
        remaining > 0,
        "and cannot undo all: the window stays documented"
    );
}

#[test]
fn no_location_can_resurrect_a_session_once_the_window_has_passed() {
    for seed in 0..SEEDS {
        let (clock, stores) = sessions(seed);
        let (id, _) = block_on(stores[0].create("u", "u@example.com")).expect("create");
        clock.advance(WINDOW);
        clock.advance(Duration::from_secs(120));
        block_on(stores[0].delete(&id)).expect("logout");
        clock.advance(WINDOW);
        for store in &stores {
            assert!(matches!(
                block_on(store.refresh(&id)).expect("refresh"),
                Refresh::NoSession(_)
            ));
            assert_eq!(block_on(store.get(&id)).expect("get"), None);
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
struct Quote {
    computed_at: u64,
}

kv_envelope::versioned! { name: "quote", versions: [Quote] }

fn caches(seed: u64) -> (ManualClock, Vec<CacheStore<Quote>>) {
    let clock = ManualClock::new(T0);
    let sim = SimKv::new(seed, SimConfig::default(), Arc::new(clock.clone()));
    let stores = (0..3)
        .map(|i| {
            CacheStore::<Quote>::new(sim.kv(i))
                .with_state(CacheState::new())
                .with_generation_ttl(Duration::from_secs(10))
                .with_random(Arc::new(|| 1.0))
        })
        .collect();
    (clock, stores)
}

fn compute_at(
    clock: &ManualClock,
) -> impl FnOnce() -> std::future::Ready<Result<Quote, Infallible>> {
    let at = kv_envelope::Clock::now_ms(clock);
    move || std::future::ready(Ok(Quote { computed_at: at }))
}

const POLICY: CachePolicy = CachePolicy::new(Duration::from_secs(300));

/// Location 2 bumps the namespace and caches a value in the new generation; location 0, which
/// has not seen the bump yet, invalidates the key — in the old generation. The new entry
/// survives until its TTL.
#[test]
fn invalidate_during_a_namespace_bump_elsewhere_can_miss_the_new_generation() {
    let mut missed = 0;
    for seed in 0..SEEDS {
        let (clock, stores) = caches(seed);
        block_on(stores[2].invalidate_namespace()).expect("bump");
        block_on(stores[2].get_or_compute("k", &POLICY, compute_at(&clock))).expect("compute");
        clock.advance(Duration::from_millis(1));
        block_on(stores[0].invalidate("k")).expect("invalidate");
        clock.advance(WINDOW + Duration::from_secs(10));
        if let Some(c) = block_on(stores[0].get("k")).expect("get") {
            assert_eq!(
                c.value.computed_at, T0,
                "the entry computed before the invalidation"
            );
            missed += 1;
        }
    }
    assert!(missed > 0, "the race is real in the model");
}

#[test]
fn invalidate_after_the_bump_has_propagated_removes_the_entry_everywhere() {
    for seed in 0..SEEDS {
        let (clock, stores) = caches(seed);
        block_on(stores[2].invalidate_namespace()).expect("bump");
        block_on(stores[2].get_or_compute("k", &POLICY, compute_at(&clock))).expect("compute");
        clock.advance(WINDOW + Duration::from_secs(10));
        block_on(stores[0].invalidate("k")).expect("invalidate");
        clock.advance(WINDOW + Duration::from_secs(10));
        for store in &stores {
            assert!(
                block_on(store.get("k")).expect("get").is_none(),
                "seed {seed}"
            );
        }
    }
}
