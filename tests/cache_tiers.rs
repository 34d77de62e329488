//! Issue 16 on the library side: `get_many` on the typed store and the cache, the validated
//! JSON pass-through, and the isolate-memory tier (L1), on `MemoryKv` and the simulator.

mod common;

use std::{convert::Infallible, sync::Arc, time::Duration};

use kv_envelope::{
    cache::{CachePolicy, CacheState, CacheStatus, KvCache, MemoryTier},
    envelope,
    testing::{SimConfig, SimKv},
    Codec, KeyRing, Kv, ManualClock, MemoryKv, SealingKey, TypedStore,
};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use common::NOW;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
struct ItemV1 {
    name: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
struct Item {
    name: String,
    stock: u32,
}

impl From<ItemV1> for Item {
    fn from(v1: ItemV1) -> Self {
        Item {
            name: v1.name,
            stock: 0,
        }
    }
}

kv_envelope::versioned! { name: "item", versions: [ItemV1, Item] }

fn item(name: &str, stock: u32) -> Item {
    Item {
        name: name.into(),
        stock,
    }
}

struct Env {
    clock: ManualClock,
    mem: Arc<MemoryKv>,
    kv: Kv,
}

fn env() -> Env {
    let clock = ManualClock::new(NOW);
    let mem = Arc::new(MemoryKv::new(Arc::new(clock.clone())));
    let kv = Kv::from_arc(mem.clone()).with_clock(Arc::new(clock.clone()));
    Env { clock, mem, kv }
}

fn ring() -> KeyRing {
    KeyRing::new(vec![SealingKey::from_bytes("k1", &[9; 32]).unwrap()]).unwrap()
}

fn tier(ttl_secs: u64) -> MemoryTier {
    MemoryTier::new(100, 1 << 20, Duration::from_secs(ttl_secs))
}

const POLICY: CachePolicy = CachePolicy::new(Duration::from_secs(300));

// ---- TypedStore::get_many --------------------------------------------------------------------

#[tokio::test]
async fn typed_get_many_keeps_order_and_costs_one_bulk_get() {
    let e = env();
    let store = TypedStore::<Item>::new(e.kv.clone());
    for i in 0..5 {
        store
            .put(&i.to_string(), &item(&format!("n{i}"), i), None)
            .await
            .unwrap();
    }
    // An older version and a postcard value read as current ones.
    e.mem.insert_raw(
        "item:old",
        envelope::encode(Codec::Json, "item", 1, None, &ItemV1 { name: "old".into() }).unwrap(),
        None,
    );
    TypedStore::<Item>::new(e.kv.clone())
        .with_codec(Codec::Postcard)
        .put("pc", &item("pc", 7), None)
        .await
        .unwrap();
    let before = e.kv.counters().snapshot();
    let got = store
        .get_many(&["4", "missing", "old", "0", "pc", "4"])
        .await
        .unwrap();
    assert_eq!(
        got,
        vec![
            Some(item("n4", 4)),
            None,
            Some(item("old", 0)),
            Some(item("n0", 0)),
            Some(item("pc", 7)),
            Some(item("n4", 4)),
        ]
    );
    let after = e.kv.counters().snapshot();
    assert_eq!(after.kv_bulk_gets - before.kv_bulk_gets, 1);
    assert_eq!(
        after.kv_bulk_keys - before.kv_bulk_keys,
        5,
        "duplicates read once"
    );
    assert_eq!(after.kv_reads, before.kv_reads, "no single reads");
}

#[tokio::test]
async fn typed_get_many_reports_a_bad_value_per_id_or_fails_like_get() {
    let e = env();
    let store = TypedStore::<Item>::new(e.kv.clone());
    store.put("good", &item("g", 1), None).await.unwrap();
    e.mem.insert_raw(
        "item:bad",
        b"{\"kv\":1,\"type\":\"item\",\"v\":2,\"exp\":null,\"data\":{\"name\":3}}".to_vec(),
        None,
    );
    let entries = store.get_many_entries(&["good", "bad"]).await.unwrap();
    assert_eq!(
        entries[0].as_ref().unwrap().as_ref().unwrap().value,
        item("g", 1)
    );
    let err = entries[1].as_ref().unwrap_err();
    assert_eq!(err.kind(), store.get("bad").await.unwrap_err().kind());
    assert_eq!(
        store.get_many(&["good", "bad"]).await.unwrap_err().kind(),
        err.kind()
    );
    // An id that makes an invalid key fails before any read.
    let long = "x".repeat(600);
    assert!(store.get_many(&["good", &long]).await.is_err());
}

// ---- KvCache::get_many / get_json --------------------------------------------------------

#[tokio::test]
async fn cache_get_many_reads_without_computing_in_order() {
    let e = env();
    let cache = KvCache::<Item>::new(e.kv.clone());
    for (k, stock) in [("a", 1), ("b", 2)] {
        cache.put(k, &item(k, stock), &POLICY).await.unwrap();
    }
    let got = cache.get_many(&["b", "nope", "a"]).await.unwrap();
    let values: Vec<Option<Item>> = got
        .iter()
        .map(|c| c.as_ref().map(|c| c.value.clone()))
        .collect();
    assert_eq!(values, vec![Some(item("b", 2)), None, Some(item("a", 1))]);
    assert!(got[0]
        .as_ref()
        .is_some_and(|c| c.status == CacheStatus::Hit && !c.from_memory));
    let stats = cache.stats();
    assert_eq!((stats.hits, stats.misses), (2, 1));
    assert_eq!(stats.kv.kv_bulk_gets, 1);
    // Stale inside the grace window, gone after it: the `get` rules.
    let graceful = CachePolicy::new(Duration::from_secs(10))
        .with_stale_while_revalidate(Duration::from_secs(10));
    cache.put("s", &item("s", 0), &graceful).await.unwrap();
    e.clock.advance(Duration::from_secs(15));
    let got = cache.get_many(&["s"]).await.unwrap();
    assert_eq!(got[0].as_ref().unwrap().status, CacheStatus::Stale);
    e.clock.advance(Duration::from_secs(10));
    assert!(cache.get_many(&["s"]).await.unwrap()[0].is_none());
}

#[tokio::test]
async fn get_json_passes_current_json_through_and_re_encodes_the_rest() {
    let e = env();
    let cache = KvCache::<Item>::new(e.kv.clone());
    cache.put("cur", &item("cur", 3), &POLICY).await.unwrap();
    let json = cache.get_json("cur").await.unwrap().unwrap();
    assert_eq!(json.status, CacheStatus::Hit);
    assert_eq!(json.value.as_str(), r#"{"name":"cur","stock":3}"#);
    // An older version: migrated, then serialized.
    let full = cache.key_for("old").await.unwrap();
    e.mem.insert_raw(
        &full,
        envelope::encode(
            Codec::Json,
            "item",
            1,
            Some(NOW + 60_000),
            &ItemV1 { name: "o".into() },
        )
        .unwrap(),
        None,
    );
    let old = cache.get_json("old").await.unwrap().unwrap();
    assert_eq!(old.value.as_str(), r#"{"name":"o","stock":0}"#);
    // Postcard: decoded and serialized as JSON.
    let pc = KvCache::<Item>::new(e.kv.clone()).with_codec(Codec::Postcard);
    pc.put("pc", &item("p", 1), &POLICY).await.unwrap();
    let got = cache.get_json("pc").await.unwrap().unwrap();
    assert_eq!(got.value.as_str(), r#"{"name":"p","stock":1}"#);
    // Stored text with spacing stays as stored (it is forwarded, not rebuilt).
    let full = cache.key_for("spaced").await.unwrap();
    e.mem.insert_raw(
        &full,
        format!(
            r#"{{"kv":1,"type":"item","v":2,"exp":{},"data":{{ "name" : "s", "stock" : 1 }}}}"#,
            NOW + 60_000
        )
        .into_bytes(),
        None,
    );
    assert_eq!(
        cache
            .get_json("spaced")
            .await
            .unwrap()
            .unwrap()
            .value
            .as_str(),
        r#"{ "name" : "s", "stock" : 1 }"#
    );
    // Invalid against the schema: a miss counted as corrupt, like `get`.
    let full = cache.key_for("bad").await.unwrap();
    e.mem.insert_raw(
        &full,
        format!(
            r#"{{"kv":1,"type":"item","v":2,"exp":{},"data":{{"name":"b","stock":-1}}}}"#,
            NOW + 60_000
        )
        .into_bytes(),
        None,
    );
    assert!(cache.get_json("bad").await.unwrap().is_none());
    assert!(cache.get("bad").await.unwrap().is_none());
    assert_eq!(cache.stats().corrupt_entries, 2);
    // A duplicated field: refused, as the typed read refuses it.
    let full = cache.key_for("dup").await.unwrap();
    e.mem.insert_raw(
        &full,
        format!(
            r#"{{"kv":1,"type":"item","v":2,"exp":{},"data":{{"name":"a","name":"b","stock":1}}}}"#,
            NOW + 60_000
        )
        .into_bytes(),
        None,
    );
    assert_eq!(
        cache.get_json("dup").await.unwrap().is_some(),
        cache.get("dup").await.unwrap().is_some()
    );
    // Newer code's entry: a miss, never overwritten by a later put.
    let full = cache.key_for("future").await.unwrap();
    let future =
        envelope::encode(Codec::Json, "item", 3, None, &serde_json::json!({"x": 1})).unwrap();
    e.mem.insert_raw(&full, future.clone(), None);
    assert!(cache.get_json("future").await.unwrap().is_none());
    assert_eq!(cache.stats().future_version_entries, 1);
    assert!(cache.put("future", &item("f", 1), &POLICY).await.is_err());
    assert_eq!(e.mem.raw(&full), Some(future));
    // JsonText serializes as the value it holds.
    let wrapped = serde_json::to_string(&serde_json::json!({"item": json.value})).unwrap();
    assert_eq!(wrapped, r#"{"item":{"name":"cur","stock":3}}"#);
    let many = cache.get_many_json(&["cur", "old", "none"]).await.unwrap();
    assert_eq!(
        many[1].as_ref().unwrap().value.as_str(),
        r#"{"name":"o","stock":0}"#
    );
    assert!(many[2].is_none());
}

#[tokio::test]
async fn sealed_entries_pass_through_opened_and_need_single_reads_in_bulk() {
    let e = env();
    let cache = KvCache::<Item>::new(e.kv.clone()).with_sealing(ring());
    cache.put("s", &item("secret", 1), &POLICY).await.unwrap();
    let full = cache.key_for("s").await.unwrap();
    assert_eq!(e.mem.raw(&full).unwrap()[0], envelope::SEALED_MAGIC);
    let got = cache.get_json("s").await.unwrap().unwrap();
    assert_eq!(got.value.as_str(), r#"{"name":"secret","stock":1}"#);
    // Without the ring: protected (a miss that is never overwritten).
    let plain = KvCache::<Item>::new(e.kv.clone());
    assert!(plain.get_json("s").await.unwrap().is_none());
    assert_eq!(plain.stats().future_version_entries, 1);
    let got = cache.get_many(&["s"]).await.unwrap();
    assert_eq!(got[0].as_ref().unwrap().value, item("secret", 1));
}

// ---- the memory tier --------------------------------------------------------------------------

#[tokio::test]
async fn memory_tier_serves_hits_without_kv_until_its_ttl() {
    let e = env();
    let state = CacheState::with_memory_tier(tier(5));
    let cache = KvCache::<Item>::new(e.kv.clone()).with_state(state.clone());
    let calls = Arc::new(std::sync::atomic::AtomicU32::new(0));
    let load = |calls: Arc<std::sync::atomic::AtomicU32>| {
        move || async move {
            calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            Ok::<_, Infallible>(item("m", 1))
        }
    };
    let first = cache
        .try_get_or_compute("k", &POLICY, load(calls.clone()))
        .await
        .unwrap();
    assert_eq!(first.status, CacheStatus::Miss);
    let reads = e.kv.counters().snapshot().kv_reads;
    for _ in 0..10 {
        let hit = cache
            .try_get_or_compute("k", &POLICY, load(calls.clone()))
            .await
            .unwrap();
        assert!(hit.status == CacheStatus::Hit && hit.from_memory);
        assert!(cache.get("k").await.unwrap().unwrap().from_memory);
        let json = cache.get_json("k").await.unwrap().unwrap();
        assert!(json.from_memory);
        assert_eq!(json.value.as_str(), r#"{"name":"m","stock":1}"#);
    }
    assert_eq!(
        e.kv.counters().snapshot().kv_reads,
        reads,
        "no KV read while in memory"
    );
    let stats = cache.stats();
    assert_eq!(stats.l1_hits, 30);
    assert_eq!(stats.l1_entries, 1);
    assert!(stats.l1_bytes > 0);
    // Another store on the same state shares the tier (isolate-wide)...
    let other = KvCache::<Item>::new(e.kv.clone()).with_state(state.clone());
    assert!(other.get("k").await.unwrap().unwrap().from_memory);
    // ...unless it opts out.
    let opted_out = other.clone().with_memory_tier(false);
    assert!(!opted_out.get("k").await.unwrap().unwrap().from_memory);
    // After the L1 TTL, KV again (and back in memory).
    e.clock.advance(Duration::from_secs(5));
    let again = cache.get("k").await.unwrap().unwrap();
    assert!(!again.from_memory);
    assert!(cache.get("k").await.unwrap().unwrap().from_memory);
    assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 1);
}

#[tokio::test]
async fn memory_tier_never_serves_past_freshness_and_respects_the_read_policy() {
    let e = env();
    let cache =
        KvCache::<Item>::new(e.kv.clone()).with_state(CacheState::with_memory_tier(tier(60)));
    let short = CachePolicy::new(Duration::from_secs(2))
        .with_stale_while_revalidate(Duration::from_secs(30));
    cache.put("k", &item("a", 1), &short).await.unwrap();
    assert!(!cache.get("k").await.unwrap().unwrap().from_memory);
    assert!(cache.get("k").await.unwrap().unwrap().from_memory);
    e.clock.advance(Duration::from_secs(2));
    let stale = cache.get("k").await.unwrap().unwrap();
    assert_eq!(
        stale.status,
        CacheStatus::Stale,
        "past fresh-until: from KV, stale"
    );
    assert!(!stale.from_memory);
    // A shorter read policy cuts an entry held in memory too.
    cache.put("p", &item("p", 1), &POLICY).await.unwrap();
    assert!(
        cache.get("p").await.unwrap().unwrap().from_memory
            || cache.get("p").await.unwrap().unwrap().from_memory
    );
    e.clock.advance(Duration::from_secs(3));
    let tight = CachePolicy::new(Duration::from_secs(1));
    let got = cache
        .try_get_or_compute("p", &tight, || async { Ok::<_, Infallible>(item("p", 2)) })
        .await
        .unwrap();
    assert_eq!(
        got.status,
        CacheStatus::Miss,
        "1 s policy: the 3 s old value is not fresh"
    );
}

#[tokio::test]
async fn invalidations_clear_the_memory_tier_of_this_isolate_at_once() {
    let e = env();
    let cache =
        KvCache::<Item>::new(e.kv.clone()).with_state(CacheState::with_memory_tier(tier(60)));
    for k in ["a", "b"] {
        cache
            .try_get_or_compute(k, &POLICY, move || async move {
                Ok::<_, Infallible>(item(k, 1))
            })
            .await
            .unwrap();
        assert!(cache.get(k).await.unwrap().unwrap().from_memory);
    }
    cache.invalidate("a").await.unwrap();
    assert!(cache.get("a").await.unwrap().is_none());
    cache.put("b", &item("b", 2), &POLICY).await.unwrap();
    assert_eq!(cache.get("b").await.unwrap().unwrap().value, item("b", 2));
    assert!(cache.get("b").await.unwrap().unwrap().from_memory);
    cache.invalidate_namespace().await.unwrap();
    assert_eq!(cache.stats().l1_entries, 0);
    assert!(cache.get("b").await.unwrap().is_none());
}

#[tokio::test]
async fn memory_tier_is_bounded_and_counts_evictions() {
    let e = env();
    let cache = KvCache::<Item>::new(e.kv.clone()).with_state(CacheState::with_memory_tier(
        MemoryTier::new(3, 1 << 20, Duration::from_secs(5)),
    ));
    for i in 0..10 {
        let k = i.to_string();
        cache.put(&k, &item(&k, i), &POLICY).await.unwrap();
        cache.get(&k).await.unwrap();
    }
    let stats = cache.stats();
    assert_eq!(stats.l1_entries, 3);
    assert_eq!(stats.l1_evictions, 7);
    // Bytes: a tier too small for one entry keeps nothing.
    let tiny = KvCache::<Item>::new(e.kv.clone()).with_state(CacheState::with_memory_tier(
        MemoryTier::new(10, 8, Duration::from_secs(5)),
    ));
    tiny.get("1").await.unwrap();
    assert!(!tiny.get("1").await.unwrap().unwrap().from_memory);
    assert_eq!(tiny.stats().l1_bytes, 0);
}

#[tokio::test]
async fn get_many_serves_what_memory_holds_and_bulk_reads_the_rest() {
    let e = env();
    let cache =
        KvCache::<Item>::new(e.kv.clone()).with_state(CacheState::with_memory_tier(tier(5)));
    for i in 0..4 {
        let k = i.to_string();
        cache.put(&k, &item(&k, i), &POLICY).await.unwrap();
    }
    cache.get("0").await.unwrap();
    cache.get("1").await.unwrap();
    let before = e.kv.counters().snapshot();
    let got = cache.get_many(&["0", "1", "2", "3"]).await.unwrap();
    let from_memory: Vec<bool> = got
        .iter()
        .map(|c| c.as_ref().unwrap().from_memory)
        .collect();
    assert_eq!(from_memory, vec![true, true, false, false]);
    let after = e.kv.counters().snapshot();
    assert_eq!(after.kv_bulk_keys - before.kv_bulk_keys, 2);
    assert_eq!(after.kv_bulk_gets - before.kv_bulk_gets, 1);
    let again = cache.get_many_json(&["0", "1", "2", "3"]).await.unwrap();
    assert!(again.iter().all(|c| c.as_ref().unwrap().from_memory));
    assert_eq!(e.kv.counters().snapshot().kv_bulk_gets, after.kv_bulk_gets);
}

/// The staleness bound across isolates on the simulator: another isolate's invalidation
/// reaches an isolate whose memory holds the value within the propagation window plus the L1
/// TTL, never later; and an isolate's own invalidation at once.
#[tokio::test]
async fn other_isolates_see_an_invalidation_within_window_plus_l1_ttl() {
    const L1: u64 = 5_000;
    // Seeds where the memory tier served the old value after the KV window had passed: the
    // L1 allowance of the bound is really used (the bound is reached, not just respected).
    let mut past_window = 0;
    for seed in 0..100 {
        let clock = ManualClock::new(NOW);
        let sim = SimKv::new(seed, SimConfig::default(), Arc::new(clock.clone()));
        let window = sim.propagation().as_millis() as u64;
        let store = |i: usize| {
            KvCache::<Item>::new(sim.kv(i))
                .with_state(CacheState::with_memory_tier(tier(L1 / 1000)))
        };
        let (a, b) = (store(0), store(1));
        a.put("k", &item("old", 1), &POLICY).await.unwrap();
        clock.advance(Duration::from_millis(window));
        assert!(b.get("k").await.unwrap().is_some());
        let t = clock.now();
        a.invalidate("k").await.unwrap();
        assert!(
            a.get("k").await.unwrap().is_none(),
            "at once where it was made"
        );
        let mut last_seen = None;
        while clock.now() <= t + window + L1 + 1_000 {
            if b.get("k").await.unwrap().is_some() {
                last_seen = Some(clock.now());
            }
            clock.advance(Duration::from_millis(700));
        }
        if let Some(seen) = last_seen {
            assert!(
                seen < t + window + L1,
                "seed {seed}: served at {} after {t}",
                seen
            );
            past_window += usize::from(seen >= t + window);
        }
    }
    assert!(past_window > 0, "the L1 allowance was never needed");
}

trait Now {
    fn now(&self) -> u64;
}

impl Now for ManualClock {
    fn now(&self) -> u64 {
        kv_envelope::Clock::now_ms(self)
    }
}

// ---- try_get_or_compute_json ----------------------------------------------------------------------

#[tokio::test]
async fn get_or_compute_json_serves_text_with_one_read_and_the_typed_rules_otherwise() {
    use kv_envelope::cache::ComputeJsonError;
    let e = env();
    let state = CacheState::with_memory_tier(tier(5));
    let cache = KvCache::<Item>::new(e.kv.clone()).with_state(state.clone());
    let calls = Arc::new(std::sync::atomic::AtomicU32::new(0));
    let load = |calls: &Arc<std::sync::atomic::AtomicU32>, stock: u32| {
        let calls = calls.clone();
        move || async move {
            calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            Ok::<_, Infallible>(item("j", stock))
        }
    };
    let reads = |e: &Env| e.kv.counters().snapshot().kv_reads;
    // Miss: generation + entry read once each, computed, written; the text of the value.
    let before = reads(&e);
    let miss = cache
        .try_get_or_compute_json("k", &POLICY, load(&calls, 1))
        .await
        .unwrap();
    assert_eq!(miss.status, CacheStatus::Miss);
    assert_eq!(miss.value.as_str(), r#"{"name":"j","stock":1}"#);
    assert_eq!(
        reads(&e) - before,
        2,
        "generation and entry, each read once"
    );
    // Memory hits: no KV read at all.
    let before = reads(&e);
    for _ in 0..5 {
        let hit = cache
            .try_get_or_compute_json("k", &POLICY, load(&calls, 9))
            .await
            .unwrap();
        assert!(hit.status == CacheStatus::Hit && hit.from_memory);
        assert_eq!(hit.value.as_str(), r#"{"name":"j","stock":1}"#);
    }
    assert_eq!(reads(&e), before);
    // Past the L1 TTL: one KV read, the stored text as stored (spacing kept), back in memory.
    let full = cache.key_for("k").await.unwrap();
    e.mem.insert_raw(
        &full,
        format!(
            r#"{{"kv":1,"type":"item","v":2,"exp":{},"data":{{ "name" : "s", "stock" : 2 }}}}"#,
            NOW + 200_000
        )
        .into_bytes(),
        None,
    );
    e.clock.advance(Duration::from_secs(6));
    let before = reads(&e);
    let kv_hit = cache
        .try_get_or_compute_json("k", &POLICY, load(&calls, 9))
        .await
        .unwrap();
    assert!(kv_hit.status == CacheStatus::Hit && !kv_hit.from_memory);
    assert_eq!(kv_hit.value.as_str(), r#"{ "name" : "s", "stock" : 2 }"#);
    assert_eq!(
        reads(&e) - before,
        1,
        "the entry only (the generation is trusted 10 s)"
    );
    let again = cache
        .try_get_or_compute_json("k", &POLICY, load(&calls, 9))
        .await
        .unwrap();
    assert!(again.from_memory);
    assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 1);
    // An older version: a hit, migrated and serialized (the cache does not write it back).
    let old_full = cache.key_for("old").await.unwrap();
    e.mem.insert_raw(
        &old_full,
        envelope::encode(
            Codec::Json,
            "item",
            1,
            Some(NOW + 400_000),
            &ItemV1 { name: "o".into() },
        )
        .unwrap(),
        None,
    );
    let old = cache
        .try_get_or_compute_json("old", &POLICY, load(&calls, 9))
        .await
        .unwrap();
    assert_eq!(old.status, CacheStatus::Hit);
    assert_eq!(old.value.as_str(), r#"{"name":"o","stock":0}"#);
    // A corrupt entry: the typed path on the same read (one entry read), recomputed, replaced.
    let bad_full = cache.key_for("bad").await.unwrap();
    e.mem.insert_raw(&bad_full, b"\xff garbage".to_vec(), None);
    let before = reads(&e);
    let fixed = cache
        .try_get_or_compute_json("bad", &POLICY, load(&calls, 5))
        .await
        .unwrap();
    assert_eq!(fixed.status, CacheStatus::Miss);
    assert!(fixed.cache_error.is_some());
    assert_eq!(fixed.value.as_str(), r#"{"name":"j","stock":5}"#);
    assert_eq!(reads(&e) - before, 1, "the entry is read once, not twice");
    assert_eq!(
        cache.get("bad").await.unwrap().unwrap().value,
        item("j", 5),
        "replaced"
    );
    // A newer version's entry: computed, served, never overwritten.
    let future_full = cache.key_for("future").await.unwrap();
    let future =
        envelope::encode(Codec::Json, "item", 3, None, &serde_json::json!({"x": 1})).unwrap();
    e.mem.insert_raw(&future_full, future.clone(), None);
    let served = cache
        .try_get_or_compute_json("future", &POLICY, load(&calls, 6))
        .await
        .unwrap();
    assert_eq!(served.status, CacheStatus::Miss);
    assert_eq!(e.mem.raw(&future_full), Some(future));
    // Stale: served stale (text) and refreshed inline without a background.
    let stale_full = cache.key_for("stale").await.unwrap();
    let swr = POLICY.with_stale_while_revalidate(Duration::from_secs(60));
    cache.put("stale", &item("old-s", 1), &swr).await.unwrap();
    e.clock.advance(Duration::from_secs(301));
    assert!(e.mem.raw(&stale_full).is_some(), "still in KV, stale");
    let refreshed = cache
        .try_get_or_compute_json("stale", &swr, load(&calls, 7))
        .await
        .unwrap();
    // Without a background the refresh runs inline and its result is served.
    assert_eq!(refreshed.status, CacheStatus::Miss);
    assert_eq!(refreshed.value.as_str(), r#"{"name":"j","stock":7}"#);
    // The computation's error comes back as `Compute`.
    let failed = cache
        .try_get_or_compute_json("err", &POLICY, || async { Err::<Item, _>("upstream down") })
        .await;
    assert!(matches!(
        failed,
        Err(ComputeJsonError::Compute("upstream down"))
    ));
    // Counters: every call counted once.
    let stats = cache.stats();
    assert_eq!(
        stats.hits,
        5 + 1 + 1 + 1 + 1,
        "memory 5, kv 1, memory 1, old 1, get(bad) 1"
    );
    assert_eq!(
        stats.misses,
        1 + 1 + 1 + 1 + 1,
        "k, bad, future, stale-refresh, err"
    );
}
