//! The simulator models what it claims: staleness bounded by the propagation window, own writes
//! visible at once, negative caching, the per-key rate limit, the expiration floor, lazy expiry,
//! empty list pages, faults — deterministically per seed.

mod common;

use std::{collections::BTreeMap, sync::Arc, time::Duration};

use futures::executor::block_on;
use kv_envelope::{
    __internal::MAX_VALUE_BYTES,
    backend::{KvBackend, Stored, WriteOptions},
    session::SessionRecord,
    testing::{SimConfig, SimKv, SimLocation},
    Error, LimitError, ManualClock, TypedStore,
};
use proptest::prelude::*;

use common::NOW as T0;
const WINDOW: Duration = Duration::from_secs(60);

fn sim(seed: u64, config: SimConfig) -> (SimKv, ManualClock) {
    let clock = ManualClock::new(T0);
    (SimKv::new(seed, config, Arc::new(clock.clone())), clock)
}

fn get(loc: &SimLocation, key: &str) -> Option<Vec<u8>> {
    block_on(loc.get(key)).expect("get").map(|s| s.value)
}

fn put(loc: &SimLocation, key: &str, value: &[u8]) {
    block_on(loc.put(key, value, &WriteOptions::default())).expect("put");
}

fn del(loc: &SimLocation, key: &str) {
    block_on(loc.delete(key)).expect("delete");
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

#[test]
fn writer_sees_own_write_at_once_others_within_window() {
    let mut saw_stale = false;
    for seed in 0..20 {
        let (sim, clock) = sim(seed, SimConfig::default());
        let (a, b, c) = (sim.location(0), sim.location(1), sim.location(2));
        put(&a, "k", b"v1");
        clock.advance(WINDOW);
        for loc in [&a, &b, &c] {
            assert_eq!(get(loc, "k").as_deref(), Some(&b"v1"[..]), "settled");
        }
        put(&a, "k", b"v2");
        assert_eq!(
            get(&a, "k").as_deref(),
            Some(&b"v2"[..]),
            "own write at once"
        );
        // Step through the window: others serve v1 then v2, never going back.
        for other in [&b, &c] {
            let mut seen_new = false;
            for _ in 0..60 {
                let v = get(other, "k").expect("never a miss: the key always existed");
                match v.as_slice() {
                    b"v1" => {
                        assert!(!seen_new, "went back to an older value");
                        saw_stale = true;
                    }
                    b"v2" => seen_new = true,
                    other => panic!("invented value {other:?}"),
                }
            }
        }
        clock.advance(WINDOW);
        for loc in [&a, &b, &c] {
            assert_eq!(
                get(loc, "k").as_deref(),
                Some(&b"v2"[..]),
                "after the window"
            );
        }
    }
    assert!(
        saw_stale,
        "the default config must serve stale reads at some seed"
    );
}

#[test]
fn stale_reads_are_counted() {
    let (sim, _clock) = sim(3, SimConfig::default());
    put(&sim.location(0), "k", b"v");
    let before = sim.stats().stale_reads;
    // Location 1 has not seen the write yet unless its delay was drawn as 0.
    let seen = get(&sim.location(1), "k").is_some();
    let after = sim.stats().stale_reads;
    assert_eq!(after - before, u64::from(!seen));
}

#[test]
fn deleted_value_may_be_served_elsewhere_until_the_window_passes() {
    let mut served_deleted = false;
    for seed in 0..20 {
        let (sim, clock) = sim(seed, SimConfig::default());
        let (a, b) = (sim.location(0), sim.location(1));
        put(&a, "k", b"v");
        clock.advance(WINDOW);
        assert!(get(&b, "k").is_some());
        del(&a, "k");
        assert_eq!(get(&a, "k"), None, "own delete at once");
        let mut gone = false;
        for _ in 0..59 {
            clock.advance(secs(1));
            match get(&b, "k") {
                Some(_) => {
                    assert!(!gone, "a deleted value came back");
                    served_deleted = true;
                }
                None => gone = true,
            }
        }
        clock.advance(secs(1));
        assert_eq!(get(&b, "k"), None, "deleted everywhere after the window");
        assert_eq!(sim.central("k"), None);
    }
    assert!(served_deleted);
}

#[test]
fn negative_lookup_hides_a_new_key_until_the_window() {
    for seed in 0..20 {
        let (sim, clock) = sim(seed, SimConfig::default());
        let (a, b) = (sim.location(0), sim.location(1));
        assert_eq!(get(&b, "k"), None, "cache the miss at b");
        clock.advance(secs(1));
        put(&a, "k", b"v");
        clock.advance(secs(58));
        // Whatever the drawn delay, b remembers its miss for the whole window.
        assert_eq!(get(&b, "k"), None, "seed {seed}");
        clock.advance(secs(2));
        assert_eq!(get(&b, "k").as_deref(), Some(&b"v"[..]), "seed {seed}");
    }
    let (sim, _) = sim(0, SimConfig::default());
    let _ = sim;
}

#[test]
fn without_negative_cache_a_new_key_can_appear_earlier() {
    let mut early = false;
    for seed in 0..20 {
        let mut config = SimConfig::default();
        config.negative_cache = false;
        let (sim, clock) = sim(seed, config);
        let (a, b) = (sim.location(0), sim.location(1));
        assert_eq!(get(&b, "k"), None);
        clock.advance(secs(1));
        put(&a, "k", b"v");
        clock.advance(secs(58));
        early |= get(&b, "k").is_some();
    }
    assert!(
        early,
        "the negative cache, not the delay, hid the key above"
    );
}

#[test]
fn negative_cache_never_hides_own_writes() {
    let (sim, _clock) = sim(1, SimConfig::default());
    let a = sim.location(0);
    assert_eq!(get(&a, "k"), None);
    put(&a, "k", b"v");
    assert_eq!(get(&a, "k").as_deref(), Some(&b"v"[..]));
}

#[test]
fn without_read_your_writes_even_the_writer_may_lag() {
    let mut lagged = false;
    for seed in 0..20 {
        let mut config = SimConfig::default();
        config.read_your_writes = false;
        let (sim, clock) = sim(seed, config);
        let a = sim.location(0);
        put(&a, "k", b"v");
        lagged |= get(&a, "k").is_none();
        clock.advance(WINDOW);
        assert!(get(&a, "k").is_some());
    }
    assert!(lagged);
}

#[test]
fn second_write_within_a_second_is_429_and_changes_nothing() {
    let (sim, clock) = sim(0, SimConfig::default());
    let (a, b) = (sim.location(0), sim.location(1));
    put(&a, "k", b"one");
    clock.advance(Duration::from_millis(999));
    assert_eq!(
        block_on(a.put("k", b"two", &WriteOptions::default())),
        Err(Error::RateLimited)
    );
    // The limit is per key in the central store, not per location.
    assert_eq!(
        block_on(b.put("k", b"two", &WriteOptions::default())),
        Err(Error::RateLimited)
    );
    assert_eq!(sim.central("k").map(|s| s.value), Some(b"one".to_vec()));
    // Other keys are unaffected.
    put(&a, "other", b"x");
    clock.advance(Duration::from_millis(1));
    put(&b, "k", b"two");
    assert_eq!(sim.central("k").map(|s| s.value), Some(b"two".to_vec()));
    assert_eq!(sim.stats().rate_limited, 2);
}

#[test]
fn kv_counts_rate_limited_writes() {
    let (sim, _clock) = sim(0, SimConfig::default());
    let kv = sim.kv(0);
    block_on(kv.put("k", b"1", None, None)).expect("first write");
    assert_eq!(
        block_on(kv.put("k", b"2", None, None)),
        Err(Error::RateLimited)
    );
    assert_eq!(kv.counters().snapshot().kv_rate_limited, 1);
}

#[test]
fn deletes_are_rate_limited_only_when_configured() {
    let (sim, _clock) = sim(0, SimConfig::default());
    let a = sim.location(0);
    put(&a, "k", b"v");
    del(&a, "k");
    let mut config = SimConfig::default();
    config.rate_limit_deletes = true;
    let (sim, _clock) = self::sim(0, config);
    let a = sim.location(0);
    put(&a, "k", b"v");
    assert_eq!(block_on(a.delete("k")), Err(Error::RateLimited));
    assert!(sim.central("k").is_some());
}

#[test]
fn raw_put_with_expiration_under_60s_is_refused_like_kv() {
    let (sim, _clock) = sim(0, SimConfig::default());
    let a = sim.location(0);
    let now_s = T0 / 1000;
    for exp in [0, now_s, now_s + 1, now_s + 59] {
        let r = block_on(a.put(
            "k",
            b"v",
            &WriteOptions {
                expiration: Some(exp),
                metadata: None,
            },
        ));
        assert!(
            matches!(
                r,
                Err(Error::Backend {
                    op: "put",
                    retryable: false,
                    ..
                })
            ),
            "{exp}: {r:?}"
        );
    }
    assert_eq!(sim.central("k"), None);
    assert_eq!(sim.stats().rejected_expirations, 4);
    // Exactly 60 s is accepted, and so is anything `Kv` sends (it clamps to 65 s).
    block_on(a.put(
        "k",
        b"v",
        &WriteOptions {
            expiration: Some(now_s + 60),
            metadata: None,
        },
    ))
    .expect("60 s is the floor");
    let kv = sim.kv(0);
    block_on(kv.put("via-kv", b"v", Some(T0 + 1), None)).expect("Kv clamps");
}

#[test]
fn raw_backend_enforces_kv_limits_too() {
    let (sim, _clock) = sim(0, SimConfig::default());
    let a = sim.location(0);
    let long = "k".repeat(513);
    for (key, want) in [
        ("", LimitError::EmptyKey),
        (".", LimitError::ReservedKey),
        ("..", LimitError::ReservedKey),
        (long.as_str(), LimitError::KeyTooLong { len: 513, max: 512 }),
    ] {
        assert_eq!(block_on(a.get(key)), Err(Error::Limit(want.clone())));
        assert_eq!(
            block_on(a.put(key, b"v", &WriteOptions::default())),
            Err(Error::Limit(want.clone()))
        );
        assert_eq!(block_on(a.delete(key)), Err(Error::Limit(want)));
    }
    let meta = Some("m".repeat(1025));
    assert_eq!(
        block_on(a.put(
            "k",
            b"v",
            &WriteOptions {
                expiration: None,
                metadata: meta
            }
        )),
        Err(Error::Limit(LimitError::MetadataTooLarge {
            len: 1025,
            max: 1024
        }))
    );
    let big = vec![0u8; MAX_VALUE_BYTES + 1];
    assert_eq!(
        block_on(a.put("k", &big, &WriteOptions::default())),
        Err(Error::Limit(LimitError::ValueTooLarge {
            len: MAX_VALUE_BYTES + 1,
            max: MAX_VALUE_BYTES
        }))
    );
    assert_eq!(sim.writes_accepted(), 0);
}

#[test]
fn expired_values_are_served_late_within_the_lag_and_listed_within_the_linger() {
    let config = SimConfig::default();
    let (lag, linger) = (config.expiry_lag, config.list_linger);
    let mut served_late = false;
    let mut listed_late = false;
    for seed in 0..20 {
        let (sim, clock) = sim(seed, config.clone().with_empty_page_rate(0.0));
        let a = sim.location(0);
        let exp_s = T0 / 1000 + 120;
        block_on(a.put(
            "e",
            b"v",
            &WriteOptions {
                expiration: Some(exp_s),
                metadata: None,
            },
        ))
        .expect("put");
        clock.set(exp_s * 1000 - 1);
        assert!(get(&a, "e").is_some(), "readable until its expiration");
        clock.set(exp_s * 1000 + 5_000);
        served_late |= get(&a, "e").is_some();
        listed_late |= !block_on(a.list("", None, 10))
            .expect("list")
            .keys
            .is_empty();
        clock.set(exp_s * 1000 + lag.as_millis() as u64);
        assert_eq!(get(&a, "e"), None, "never later than the lag");
        clock.set(exp_s * 1000 + linger.as_millis() as u64);
        assert!(block_on(a.list("", None, 10))
            .expect("list")
            .keys
            .is_empty());
    }
    assert!(served_late && listed_late);
}

#[test]
fn typed_store_never_serves_an_envelope_past_its_expires_at() {
    // KV keeps the value at least 65 s (the clamp) and maybe 10 s more (lazy expiry); the
    // envelope says 1 s. The store must go by the envelope.
    let (sim, clock) = sim(5, SimConfig::default());
    let store = TypedStore::<SessionRecord>::new(sim.kv(0));
    let s = SessionRecord {
        user_id: "u".into(),
        email: "u@example.com".into(),
        created_at: T0,
        expires_at: T0 + 1000,
        absolute_expires_at: T0 + 1000,
        refreshed_at: T0,
        roles: vec![],
    };
    block_on(store.put("id", &s, Some(secs(1)))).expect("put");
    assert!(block_on(store.get("id")).expect("get").is_some());
    clock.advance(secs(1));
    assert!(
        block_on(sim.location(0).get("session:id"))
            .expect("raw get")
            .is_some(),
        "KV still has it"
    );
    assert_eq!(block_on(store.get("id")).expect("get"), None);
}

#[test]
fn empty_pages_do_not_end_a_listing() {
    let (sim, _clock) = sim(9, SimConfig::default().with_empty_page_rate(0.9));
    let a = sim.location(0);
    for i in 0..10 {
        put(&a, &format!("p:{i}"), b"v");
    }
    // Keys on both sides of the prefix: a cursor must never lead outside it.
    put(&a, "a:0", b"v");
    put(&a, "q:0", b"v");
    let keys = block_on(sim.kv(0).list_all("p:", 10_000)).expect("list_all");
    assert_eq!(keys.len(), 10);
    let mut names = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let page = block_on(a.list("p:", cursor.as_deref(), 2)).expect("list");
        names.extend(page.keys.into_iter().map(|k| k.name));
        if page.list_complete {
            break;
        }
        cursor = page.cursor;
    }
    assert_eq!(names, (0..10).map(|i| format!("p:{i}")).collect::<Vec<_>>());
    assert!(sim.stats().empty_pages > 0);
}

#[test]
fn a_bad_cursor_is_an_error_not_a_panic() {
    let (sim, _clock) = sim(0, SimConfig::strong());
    let a = sim.location(0);
    for c in ["", "garbage", "s1zz", "s1f", "s1ff", "\u{0}"] {
        assert!(
            matches!(
                block_on(a.list("", Some(c), 10)),
                Err(Error::Backend { op: "list", .. })
            ),
            "{c:?}"
        );
    }
}

#[test]
fn faults_fail_calls_without_side_effects() {
    let (sim, clock) = sim(1, SimConfig::default().with_fault_rate(0.5));
    let a = sim.location(0);
    let mut ok = 0;
    let mut failed = 0;
    for i in 0..100 {
        match block_on(a.put(&format!("k{i}"), b"v", &WriteOptions::default())) {
            Ok(()) => ok += 1,
            Err(Error::Backend {
                retryable: true, ..
            }) => {
                failed += 1;
                assert_eq!(sim.central(&format!("k{i}")), None);
            }
            Err(e) => panic!("unexpected {e:?}"),
        }
        clock.advance(secs(1));
    }
    assert!(ok > 20 && failed > 20, "{ok} ok, {failed} failed");
    assert_eq!(sim.stats().faults, failed);
    sim.set_fault_rate(0.0);
    put(&a, "after", b"v");
}

#[test]
fn same_seed_same_story() {
    fn story(seed: u64) -> Vec<Option<Stored>> {
        let (sim, clock) = sim(seed, SimConfig::default());
        let mut out = Vec::new();
        for i in 0..40u64 {
            let loc = sim.location((i % 3) as usize);
            if i % 4 == 0 {
                put(&loc, "k", &i.to_le_bytes());
            }
            out.push(block_on(sim.location(((i + 1) % 3) as usize).get("k")).expect("get"));
            clock.advance(Duration::from_millis(1700));
        }
        out
    }
    assert_eq!(story(42), story(42));
    assert!(
        (0..10).any(|s| story(s) != story(42)),
        "the seed drives the story"
    );
}

#[test]
fn zero_locations_means_one() {
    let (sim, _clock) = sim(0, SimConfig::default().with_locations(0));
    assert_eq!(sim.locations(), 1);
}

#[test]
#[should_panic(expected = "SimKv has 3 locations, asked for 3")]
fn asking_for_a_missing_location_is_a_test_bug() {
    let (sim, _clock) = sim(0, SimConfig::default());
    let _ = sim.location(3);
}

// ---- the model's promise, under random histories --------------------------------------------

#[derive(Debug, Clone)]
enum Op {
    Put { loc: usize, key: u8 },
    Delete { loc: usize, key: u8 },
    Get { loc: usize, key: u8 },
    Advance { ms: u64 },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (0..3usize, 0..3u8).prop_map(|(loc, key)| Op::Put { loc, key }),
        1 => (0..3usize, 0..3u8).prop_map(|(loc, key)| Op::Delete { loc, key }),
        4 => (0..3usize, 0..3u8).prop_map(|(loc, key)| Op::Get { loc, key }),
        2 => (0..20_000u64).prop_map(|ms| Op::Advance { ms }),
    ]
}

/// One accepted write in the reference history. `value` is `None` for a delete.
#[derive(Debug, Clone)]
struct Accepted {
    seq: u64,
    at: u64,
    loc: usize,
    value: Option<Vec<u8>>,
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Every read is explained by the history: the value comes from a write to that key, no
    /// older than (a) the newest write made at least a window ago, (b) the reader's own newest
    /// write, (c) anything the reader already saw. After a final window, all locations agree
    /// with the central store, in `get` and in `list`.
    #[test]
    fn reads_are_bounded_stale(seed in any::<u64>(), ops in prop::collection::vec(op(), 1..120)) {
        let (sim, clock) = sim(seed, SimConfig::default());
        let window = WINDOW.as_millis() as u64;
        let mut history: BTreeMap<u8, Vec<Accepted>> = BTreeMap::new();
        let mut seen: BTreeMap<(usize, u8), u64> = BTreeMap::new();
        let mut seq = 0u64;
        for op in ops {
            let now = kv_envelope::Clock::now_ms(&clock);
            match op {
                Op::Advance { ms } => clock.advance(Duration::from_millis(ms)),
                Op::Put { loc, key } | Op::Delete { loc, key } => {
                    seq += 1;
                    let is_put = matches!(op, Op::Put { .. });
                    let name = format!("k{key}");
                    let value = is_put.then(|| seq.to_le_bytes().to_vec());
                    let r = if is_put {
                        block_on(sim.location(loc).put(&name, &seq.to_le_bytes(), &WriteOptions::default()))
                    } else {
                        block_on(sim.location(loc).delete(&name))
                    };
                    match r {
                        Ok(()) => history.entry(key).or_default().push(Accepted { seq, at: now, loc, value }),
                        Err(Error::RateLimited) => {
                            let last = history.get(&key).and_then(|h| h.iter().rev().find(|w| w.value.is_some()));
                            prop_assert!(is_put);
                            prop_assert!(last.is_some_and(|w| now < w.at + 1000), "429 only within a second");
                        }
                        Err(e) => prop_assert!(false, "unexpected {e:?}"),
                    }
                }
                Op::Get { loc, key } => {
                    let got = block_on(sim.location(loc).get(&format!("k{key}"))).expect("get");
                    let h = history.get(&key).cloned().unwrap_or_default();
                    let settled = h.iter().rposition(|w| w.at + window <= now);
                    let own = h.iter().rposition(|w| w.loc == loc);
                    let seen_i = seen.get(&(loc, key)).and_then(|s| h.iter().position(|w| w.seq == *s));
                    let floor = [settled, own, seen_i].into_iter().flatten().max();
                    let candidates = &h[floor.unwrap_or(0)..];
                    match got {
                        Some(stored) => {
                            let i = candidates.iter().position(|w| w.value.as_deref() == Some(&stored.value[..]));
                            prop_assert!(i.is_some(), "served a value outside the admissible history");
                            let w = &candidates[i.unwrap()];
                            seen.insert((loc, key), w.seq);
                        }
                        None => {
                            let explained = floor.is_none() || candidates.iter().any(|w| w.value.is_none());
                            prop_assert!(explained, "a miss with only live writes admissible");
                        }
                    }
                }
            }
        }
        clock.advance(WINDOW);
        for (key, h) in &history {
            let want = h.last().and_then(|w| w.value.clone());
            for loc in 0..3 {
                let got = block_on(sim.location(loc).get(&format!("k{key}"))).expect("get").map(|s| s.value);
                prop_assert_eq!(&got, &want);
            }
        }
        let want: Vec<String> = history
            .iter()
            .filter(|(_, h)| h.last().is_some_and(|w| w.value.is_some()))
            .map(|(k, _)| format!("k{k}"))
            .collect();
        for loc in 0..3 {
            let got: Vec<String> = block_on(sim.kv(loc).list_all("", 1000)).expect("list").into_iter().map(|k| k.name).collect();
            prop_assert_eq!(&got, &want);
        }
    }
}
