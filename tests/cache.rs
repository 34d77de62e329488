//! Cache store: cache-aside, single-flight, stale-while-revalidate, XFetch early refresh,
//! negative caching, invalidation, unusable entries and KV failures. Time only moves through a
//! `ManualClock`; background work runs when a test drains a `Deferred` queue.

mod common;

use std::{
    convert::Infallible,
    sync::{
        atomic::{AtomicBool, AtomicUsize, Ordering},
        Arc,
    },
    time::Duration,
};

use kv_envelope::{
    backend::{KvBackend, ListPage, Stored, WriteOptions},
    background::Deferred,
    cache::{CachePolicy, CacheState, CacheStatus, KvCache, NamespaceGeneration},
    envelope, Codec, Error, Kv, ManualClock, MemoryKv, Versioned,
};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use common::NOW as T0;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
struct ProductV1 {
    name: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
struct Product {
    name: String,
    price_cents: u64,
}

impl From<ProductV1> for Product {
    fn from(v1: ProductV1) -> Self {
        Product {
            name: v1.name,
            price_cents: 0,
        }
    }
}

kv_envelope::versioned! {
    name: "product",
    versions: [ProductV1, Product],
}

fn product(name: &str) -> Product {
    Product {
        name: name.into(),
        price_cents: 100,
    }
}

struct Env {
    clock: ManualClock,
    mem: Arc<MemoryKv>,
    kv: Kv,
}

fn env() -> Env {
    let clock = ManualClock::new(T0);
    let mem = Arc::new(MemoryKv::new(Arc::new(clock.clone())));
    let kv = Kv::from_arc(mem.clone()).with_clock(Arc::new(clock.clone()));
    Env { clock, mem, kv }
}

/// A computation that counts its runs and returns `product(name)`.
fn load(
    calls: &Arc<AtomicUsize>,
    name: &'static str,
) -> impl FnOnce() -> futures::future::Ready<Result<Product, Infallible>> + Send + 'static {
    let calls = Arc::clone(calls);
    move || {
        calls.fetch_add(1, Ordering::SeqCst);
        futures::future::ready(Ok(product(name)))
    }
}

/// A computation that takes `ms` of (manual) clock time, for XFetch's delta.
fn load_taking(
    calls: &Arc<AtomicUsize>,
    clock: &ManualClock,
    ms: u64,
    name: &'static str,
) -> impl FnOnce() -> futures::future::Ready<Result<Product, Infallible>> + Send + 'static {
    let calls = Arc::clone(calls);
    let clock = clock.clone();
    move || {
        calls.fetch_add(1, Ordering::SeqCst);
        clock.advance(Duration::from_millis(ms));
        futures::future::ready(Ok(product(name)))
    }
}

fn minutes(n: u64) -> Duration {
    Duration::from_secs(60 * n)
}

#[tokio::test]
async fn miss_then_hit_writes_an_envelope_with_cache_metadata() {
    let e = env();
    let cache = KvCache::<Product>::new(e.kv.clone());
    let calls = Arc::new(AtomicUsize::new(0));
    let policy = CachePolicy::QUERY_CACHE;

    let first = cache
        .try_get_or_compute("42", &policy, load(&calls, "lamp"))
        .await
        .unwrap();
    assert_eq!(first.status, CacheStatus::Miss);
    assert_eq!(first.value, product("lamp"));
    assert_eq!(first.cache_error, None);

    let raw = e.mem.raw("cache:product:g0:42").expect("written");
    let header = envelope::peek_header(&raw).unwrap();
    assert_eq!(header.type_name, "product");
    assert_eq!(header.version, 2);
    assert_eq!(header.expires_at, Some(T0 + 300_000));

    let second = cache
        .try_get_or_compute("42", &policy, load(&calls, "other"))
        .await
        .unwrap();
    assert_eq!(second.status, CacheStatus::Hit);
    assert_eq!(second.value, product("lamp"));
    assert_eq!(second.computed_at, Some(T0));
    assert_eq!(calls.load(Ordering::SeqCst), 1);

    let stats = cache.stats();
    assert_eq!((stats.hits, stats.misses, stats.computations), (1, 1, 1));
    // Generation read once (then trusted), one read per lookup, one write.
    assert_eq!(stats.kv.kv_reads, 3);
    assert_eq!(stats.kv.kv_writes, 1);
    assert_eq!(stats.in_flight, 0);
}

#[tokio::test]
async fn an_infallible_computation_gets_the_value_without_a_result() {
    let e = env();
    let cache = KvCache::<Product>::new(e.kv.clone());
    let policy = CachePolicy::QUERY_CACHE;
    let runs = Arc::new(AtomicUsize::new(0));
    let compute = |runs: &Arc<AtomicUsize>, name: &'static str| {
        let runs = Arc::clone(runs);
        move || async move {
            runs.fetch_add(1, Ordering::SeqCst);
            product(name)
        }
    };
    // `Cached<Product>`, not a `Result`: nothing to unwrap when the computation cannot fail.
    let first: kv_envelope::cache::Cached<Product> = cache
        .get_or_compute("7", &policy, compute(&runs, "desk"))
        .await;
    assert_eq!(
        (first.status, &first.value),
        (CacheStatus::Miss, &product("desk"))
    );
    let second = cache
        .get_or_compute("7", &policy, compute(&runs, "other"))
        .await;
    assert_eq!(
        (second.status, &second.value),
        (CacheStatus::Hit, &product("desk"))
    );
    assert_eq!(runs.load(Ordering::SeqCst), 1);

    // KV failing still answers: the value computed, the problem reported.
    let broken = KvCache::<Product>::new(Kv::new(Flaky {
        inner: MemoryKv::default(),
        fail_reads: AtomicBool::new(true),
        rate_limit_writes: AtomicBool::new(false),
        fail_writes: AtomicBool::new(true),
    }));
    let third = broken
        .get_or_compute("7", &policy, compute(&runs, "chair"))
        .await;
    assert_eq!(
        (third.status, &third.value),
        (CacheStatus::Miss, &product("chair"))
    );
    assert!(third.cache_error.is_some());
}

#[tokio::test]
async fn ttl_below_kv_floor_is_enforced_by_the_envelope() {
    let e = env();
    let cache = KvCache::<Product>::new(e.kv.clone());
    let calls = Arc::new(AtomicUsize::new(0));
    let policy = CachePolicy::new(Duration::from_secs(5)).without_early_refresh();

    cache
        .try_get_or_compute("k", &policy, load(&calls, "a"))
        .await
        .unwrap();
    e.clock.advance(Duration::from_secs(4));
    let hit = cache
        .try_get_or_compute("k", &policy, load(&calls, "b"))
        .await
        .unwrap();
    assert_eq!(hit.status, CacheStatus::Hit);
    e.clock.advance(Duration::from_secs(2));
    // KV still holds the bytes (its expiration was raised to the 60 s floor)...
    assert!(e.mem.raw("cache:product:g0:k").is_some());
    // ...but the value is past its 5 s and is not served.
    let miss = cache
        .try_get_or_compute("k", &policy, load(&calls, "b"))
        .await
        .unwrap();
    assert_eq!(miss.status, CacheStatus::Miss);
    assert_eq!(miss.value.name, "b");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_misses_share_one_computation_across_threads() {
    const N: usize = 16;
    let e = env();
    let cache = KvCache::<Product>::new(e.kv.clone());
    let calls = Arc::new(AtomicUsize::new(0));
    let gate = Arc::new(tokio::sync::Semaphore::new(0));

    let mut tasks = Vec::new();
    for _ in 0..N {
        let cache = cache.clone();
        let calls = Arc::clone(&calls);
        let gate = Arc::clone(&gate);
        tasks.push(tokio::spawn(async move {
            cache
                .try_get_or_compute("hot", &CachePolicy::QUERY_CACHE, move || async move {
                    calls.fetch_add(1, Ordering::SeqCst);
                    // Hold the computation until every other caller is waiting on it.
                    let _permit = gate.acquire().await.map_err(|_| "gate closed")?;
                    Ok::<_, &'static str>(product("hot"))
                })
                .await
        }));
    }
    // Not a timing assertion: a safety net so a broken single-flight fails instead of hanging.
    tokio::time::timeout(Duration::from_secs(30), async {
        while cache.stats().waiting < (N - 1) as u64 {
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("all callers but the leader should end up waiting");
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    gate.add_permits(N);

    let mut statuses = Vec::new();
    for t in tasks {
        let c = t.await.unwrap().unwrap();
        assert_eq!(c.value, product("hot"));
        statuses.push(c.status);
    }
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    let misses = statuses.iter().filter(|s| **s == CacheStatus::Miss).count();
    let coalesced = statuses
        .iter()
        .filter(|s| **s == CacheStatus::Coalesced)
        .count();
    assert_eq!((misses, coalesced), (1, N - 1));
    let stats = cache.stats();
    assert_eq!(stats.computations, 1);
    assert_eq!(stats.coalesced_waits, (N - 1) as u64);
    assert_eq!((stats.in_flight, stats.waiting), (0, 0));
    assert_eq!(stats.kv.kv_writes, 1);
}

#[tokio::test]
async fn concurrent_misses_share_one_computation_on_one_thread() {
    const N: usize = 10;
    let e = env();
    let cache = KvCache::<Product>::new(e.kv.clone());
    let calls = Arc::new(AtomicUsize::new(0));

    // join_all polls every future once before any is polled again, so all N read KV (miss)
    // while the first one's computation is suspended at its yield.
    let lookups = (0..N).map(|_| {
        let calls = Arc::clone(&calls);
        cache.try_get_or_compute("hot", &CachePolicy::QUERY_CACHE, move || async move {
            calls.fetch_add(1, Ordering::SeqCst);
            tokio::task::yield_now().await;
            Ok::<_, Infallible>(product("hot"))
        })
    });
    let results = futures::future::join_all(lookups).await;

    assert_eq!(calls.load(Ordering::SeqCst), 1);
    let statuses: Vec<_> = results.into_iter().map(|r| r.unwrap().status).collect();
    assert_eq!(statuses[0], CacheStatus::Miss);
    assert!(statuses[1..].iter().all(|s| *s == CacheStatus::Coalesced));
    assert_eq!(cache.stats().in_flight, 0);
}

#[tokio::test]
async fn a_failed_leader_hands_over_to_a_waiting_caller() {
    let e = env();
    let cache = KvCache::<Product>::new(e.kv.clone());
    let calls = Arc::new(AtomicUsize::new(0));
    let make = |fail: bool| {
        let calls = Arc::clone(&calls);
        move || async move {
            calls.fetch_add(1, Ordering::SeqCst);
            tokio::task::yield_now().await;
            if fail {
                Err("database down")
            } else {
                Ok(product("second try"))
            }
        }
    };
    let (a, b) = futures::future::join(
        cache.try_get_or_compute("k", &CachePolicy::QUERY_CACHE, make(true)),
        cache.try_get_or_compute("k", &CachePolicy::QUERY_CACHE, make(false)),
    )
    .await;
    assert_eq!(a.unwrap_err(), "database down");
    let b = b.unwrap();
    assert_eq!(b.status, CacheStatus::Miss);
    assert_eq!(b.value.name, "second try");
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    let stats = cache.stats();
    assert_eq!((stats.compute_errors, stats.in_flight), (1, 0));
    assert!(e.mem.raw("cache:product:g0:k").is_some());
}

#[tokio::test]
async fn a_cancelled_leader_does_not_strand_waiters() {
    let e = env();
    let cache = KvCache::<Product>::new(e.kv.clone());
    let calls = Arc::new(AtomicUsize::new(0));
    let never = {
        let calls = Arc::clone(&calls);
        move || async move {
            calls.fetch_add(1, Ordering::SeqCst);
            futures::future::pending::<Result<Product, Infallible>>().await
        }
    };
    let mut leader = Box::pin(cache.try_get_or_compute("k", &CachePolicy::QUERY_CACHE, never));
    assert!(futures::poll!(leader.as_mut()).is_pending());
    let mut waiter = Box::pin(cache.try_get_or_compute(
        "k",
        &CachePolicy::QUERY_CACHE,
        load(&calls, "after cancel"),
    ));
    assert!(futures::poll!(waiter.as_mut()).is_pending());
    assert_eq!(cache.stats().waiting, 1);
    // The request holding the leader goes away (client disconnect, timeout).
    drop(leader);
    let c = waiter.await.unwrap();
    assert_eq!(c.status, CacheStatus::Miss);
    assert_eq!(c.value.name, "after cancel");
    assert_eq!((cache.stats().in_flight, cache.stats().waiting), (0, 0));
}

#[tokio::test]
async fn stale_is_served_at_once_and_refreshed_in_the_background() {
    let e = env();
    let bg = Arc::new(Deferred::new());
    let cache = KvCache::<Product>::new(e.kv.clone()).with_background(Arc::clone(&bg));
    let calls = Arc::new(AtomicUsize::new(0));
    let policy = CachePolicy::new(minutes(1))
        .without_early_refresh()
        .with_stale_while_revalidate(Duration::from_secs(30));

    let miss = cache
        .try_get_or_compute("k", &policy, load(&calls, "v1"))
        .await
        .unwrap();
    assert_eq!(miss.status, CacheStatus::Miss);
    // The write after a miss runs in the background too.
    assert!(e.mem.raw("cache:product:g0:k").is_none());
    bg.run_all().await;
    assert!(e.mem.raw("cache:product:g0:k").is_some());

    e.clock.advance(Duration::from_secs(70));
    let stale = cache
        .try_get_or_compute("k", &policy, load(&calls, "v2"))
        .await
        .unwrap();
    assert_eq!(stale.status, CacheStatus::Stale);
    assert_eq!(stale.value.name, "v1");
    assert!(stale.refreshing);
    assert_eq!(calls.load(Ordering::SeqCst), 1, "refresh has not run yet");

    // A second request while the refresh is pending does not start another.
    let again = cache
        .try_get_or_compute("k", &policy, load(&calls, "v3"))
        .await
        .unwrap();
    assert_eq!(again.status, CacheStatus::Stale);
    assert!(!again.refreshing);
    assert_eq!(bg.pending(), 1);

    bg.run_all().await;
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    let hit = cache
        .try_get_or_compute("k", &policy, load(&calls, "v4"))
        .await
        .unwrap();
    assert_eq!(hit.status, CacheStatus::Hit);
    assert_eq!(hit.value.name, "v2");
    assert_eq!(hit.computed_at, Some(T0 + 70_000));

    // Past the grace window the stale value is gone.
    e.clock.advance(Duration::from_secs(95));
    let miss = cache
        .try_get_or_compute("k", &policy, load(&calls, "v5"))
        .await
        .unwrap();
    assert_eq!(miss.status, CacheStatus::Miss);
    assert_eq!(miss.value.name, "v5");

    let stats = cache.stats();
    assert_eq!(stats.stale_served, 2);
    assert_eq!(stats.background_refreshes, 1);
}

#[tokio::test]
async fn without_background_stale_refreshes_inline_and_survives_a_failed_refresh() {
    let e = env();
    let cache = KvCache::<Product>::new(e.kv.clone());
    let calls = Arc::new(AtomicUsize::new(0));
    let policy = CachePolicy::new(minutes(1))
        .without_early_refresh()
        .with_stale_while_revalidate(minutes(1));
    cache
        .try_get_or_compute("k", &policy, load(&calls, "v1"))
        .await
        .unwrap();
    e.clock.advance(Duration::from_secs(90));

    let failed = cache
        .try_get_or_compute("k", &policy, || async { Err::<Product, _>("upstream 503") })
        .await
        .expect("a servable stale value beats an error");
    assert_eq!(failed.status, CacheStatus::Stale);
    assert_eq!(failed.value.name, "v1");

    let refreshed = cache
        .try_get_or_compute("k", &policy, load(&calls, "v2"))
        .await
        .unwrap();
    assert_eq!(refreshed.status, CacheStatus::Miss);
    assert_eq!(refreshed.value.name, "v2");
    assert_eq!(cache.stats().compute_errors, 1);
}

#[tokio::test]
async fn a_miss_during_a_pending_write_joins_the_flight() {
    let e = env();
    let bg = Arc::new(Deferred::new());
    let cache = KvCache::<Product>::new(e.kv.clone()).with_background(Arc::clone(&bg));
    let calls = Arc::new(AtomicUsize::new(0));
    cache
        .try_get_or_compute("k", &CachePolicy::QUERY_CACHE, load(&calls, "v1"))
        .await
        .unwrap();
    // KV has nothing yet; the flight is still open until the write lands.
    let second = cache
        .try_get_or_compute("k", &CachePolicy::QUERY_CACHE, load(&calls, "v2"))
        .await
        .unwrap();
    assert_eq!(second.status, CacheStatus::Coalesced);
    assert_eq!(second.value.name, "v1");
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    bg.run_all().await;
    assert_eq!(cache.stats().in_flight, 0);
}

#[tokio::test]
async fn early_refresh_happens_before_expiry() {
    let e = env();
    let bg = Arc::new(Deferred::new());
    let coin = Arc::new(std::sync::Mutex::new(1.0_f64));
    let random = {
        let coin = Arc::clone(&coin);
        move || *coin.lock().unwrap()
    };
    let cache = KvCache::<Product>::new(e.kv.clone())
        .with_background(Arc::clone(&bg))
        .with_random(Arc::new(random));
    let calls = Arc::new(AtomicUsize::new(0));
    let policy = CachePolicy::new(minutes(1)); // XFetch on, β = 1

    // The computation takes 2 s: computed at T0 + 2 s, fresh until T0 + 62 s, delta 2000 ms.
    cache
        .try_get_or_compute("k", &policy, load_taking(&calls, &e.clock, 2_000, "v1"))
        .await
        .unwrap();
    bg.run_all().await;
    let fresh_until = T0 + 62_000;

    // r = 1 (ln r = 0) never refreshes early, even 1 ms before expiry.
    e.clock.set(fresh_until - 1);
    let c = cache
        .try_get_or_compute("k", &policy, load(&calls, "never"))
        .await
        .unwrap();
    assert_eq!((c.status, c.refreshing), (CacheStatus::Hit, false));

    // r = 0.5: the gap is 2000 · ln 2 ≈ 1386 ms. 5 s before expiry: no refresh.
    *coin.lock().unwrap() = 0.5;
    e.clock.set(fresh_until - 5_000);
    let c = cache
        .try_get_or_compute("k", &policy, load(&calls, "too early"))
        .await
        .unwrap();
    assert_eq!((c.status, c.refreshing), (CacheStatus::Hit, false));

    // 1 s before expiry: refresh, while still serving the fresh value.
    e.clock.set(fresh_until - 1_000);
    let c = cache
        .try_get_or_compute("k", &policy, load(&calls, "v2"))
        .await
        .unwrap();
    assert_eq!((c.status, c.refreshing), (CacheStatus::Hit, true));
    assert_eq!(c.value.name, "v1");
    bg.run_all().await;
    assert_eq!(calls.load(Ordering::SeqCst), 2);

    let c = cache
        .try_get_or_compute("k", &policy, load(&calls, "unused"))
        .await
        .unwrap();
    assert_eq!(c.status, CacheStatus::Hit);
    assert_eq!(c.value.name, "v2");
    assert!(
        e.clock_now() < fresh_until,
        "refreshed before the old value expired"
    );
    assert_eq!(cache.stats().early_refreshes, 1);
}

trait ClockNow {
    fn clock_now(&self) -> u64;
}

impl ClockNow for Env {
    fn clock_now(&self) -> u64 {
        self.kv.now_ms()
    }
}

#[tokio::test]
async fn early_refresh_without_background_recomputes_inline() {
    let e = env();
    let cache = KvCache::<Product>::new(e.kv.clone()).with_random(Arc::new(|| 0.01));
    let calls = Arc::new(AtomicUsize::new(0));
    let policy = CachePolicy::new(minutes(1)).with_early_refresh(1.0);
    cache
        .try_get_or_compute("k", &policy, load_taking(&calls, &e.clock, 1_000, "v1"))
        .await
        .unwrap();
    // -ln(0.01) · 1000 ms ≈ 4.6 s of head start.
    e.clock.advance(Duration::from_secs(57));
    let c = cache
        .try_get_or_compute("k", &policy, load(&calls, "v2"))
        .await
        .unwrap();
    assert_eq!(c.status, CacheStatus::Miss);
    assert_eq!(c.value.name, "v2");
    // Disabled early refresh never does it.
    let off = CachePolicy::new(minutes(1)).without_early_refresh();
    let c = cache
        .try_get_or_compute("k", &off, load(&calls, "v3"))
        .await
        .unwrap();
    assert_eq!(c.status, CacheStatus::Hit);
}

#[tokio::test]
async fn not_found_is_remembered_for_the_negative_ttl() {
    let e = env();
    let cache = KvCache::<Product>::new(e.kv.clone());
    let calls = Arc::new(AtomicUsize::new(0));
    let policy = CachePolicy::QUERY_CACHE.with_negative_ttl(Duration::from_secs(30));
    let nothing = || {
        let calls = Arc::clone(&calls);
        move || async move {
            calls.fetch_add(1, Ordering::SeqCst);
            Ok::<Option<Product>, Infallible>(None)
        }
    };

    let first = cache
        .try_get_or_compute_optional("ghost", &policy, nothing())
        .await
        .unwrap();
    assert_eq!(
        (first.status, first.value.clone()),
        (CacheStatus::Miss, None)
    );
    let raw = e.mem.raw("cache:product:g0:ghost").unwrap();
    assert_eq!(
        envelope::peek_header(&raw).unwrap().type_name,
        "kv-envelope.cache-absent"
    );

    let second = cache
        .try_get_or_compute_optional("ghost", &policy, nothing())
        .await
        .unwrap();
    assert_eq!((second.status, second.value), (CacheStatus::Hit, None));
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    assert_eq!(cache.stats().negative_hits, 1);

    // A caller that needs a value does not take "not found" for one.
    let needs_value = cache
        .try_get_or_compute("ghost", &policy, load(&calls, "appeared"))
        .await
        .unwrap();
    assert_eq!(needs_value.status, CacheStatus::Miss);
    // And plain `get` does not report the marker as a value.
    cache.invalidate("ghost").await.unwrap();
    cache
        .try_get_or_compute_optional("ghost", &policy, nothing())
        .await
        .unwrap();
    assert!(cache.get("ghost").await.unwrap().is_none());

    e.clock.advance(Duration::from_secs(31));
    let expired = cache
        .try_get_or_compute_optional("ghost", &policy, nothing())
        .await
        .unwrap();
    assert_eq!(expired.status, CacheStatus::Miss);
}

#[tokio::test]
async fn not_found_is_not_written_without_a_negative_ttl() {
    let e = env();
    let cache = KvCache::<Product>::new(e.kv.clone());
    let c = cache
        .try_get_or_compute_optional("ghost", &CachePolicy::QUERY_CACHE, || async {
            Ok::<Option<Product>, Infallible>(None)
        })
        .await
        .unwrap();
    assert_eq!(c.value, None);
    assert!(e.mem.dump().is_empty());
}

#[tokio::test]
async fn invalidate_deletes_one_key() {
    let e = env();
    let cache = KvCache::<Product>::new(e.kv.clone());
    let calls = Arc::new(AtomicUsize::new(0));
    let policy = CachePolicy::QUERY_CACHE;
    for key in ["a", "b"] {
        cache
            .try_get_or_compute(key, &policy, load(&calls, "v1"))
            .await
            .unwrap();
    }
    cache.invalidate("a").await.unwrap();
    let a = cache
        .try_get_or_compute("a", &policy, load(&calls, "v2"))
        .await
        .unwrap();
    let b = cache
        .try_get_or_compute("b", &policy, load(&calls, "v2"))
        .await
        .unwrap();
    assert_eq!((a.status, b.status), (CacheStatus::Miss, CacheStatus::Hit));
}

#[tokio::test]
async fn namespace_invalidation_moves_every_key_to_a_new_generation() {
    let e = env();
    let state_a = CacheState::new();
    let isolate_a = KvCache::<Product>::new(e.kv.clone()).with_state(state_a);
    // Another isolate: its own state, same KV.
    let isolate_b = KvCache::<Product>::new(e.kv.clone()).with_state(CacheState::new());
    let other_ns = KvCache::<Product>::new(e.kv.clone()).with_namespace("archive");
    let calls = Arc::new(AtomicUsize::new(0));
    let policy = CachePolicy::QUERY_CACHE;

    for key in ["a", "b"] {
        isolate_a
            .try_get_or_compute(key, &policy, load(&calls, "old"))
            .await
            .unwrap();
    }
    other_ns
        .try_get_or_compute("a", &policy, load(&calls, "archived"))
        .await
        .unwrap();
    // Isolate B has read the generation (0) and trusts it for 10 s.
    let b_before = isolate_b
        .try_get_or_compute("a", &policy, load(&calls, "unused"))
        .await
        .unwrap();
    assert_eq!(b_before.status, CacheStatus::Hit);

    e.clock.advance(Duration::from_secs(1));
    let generation = isolate_a.invalidate_namespace().await.unwrap();
    assert_eq!(generation, T0 + 1_000);
    let stored = e.mem.raw("cache:product:generation").unwrap();
    let decoded = kv_envelope::decode_value::<NamespaceGeneration>(&stored, T0, true)
        .unwrap()
        .unwrap();
    assert_eq!(decoded.value.generation, generation);

    // The invalidating isolate sees it at once, for every key, without listing anything.
    for key in ["a", "b"] {
        let c = isolate_a
            .try_get_or_compute(key, &policy, load(&calls, "new"))
            .await
            .unwrap();
        assert_eq!(
            (c.status, c.value.name.as_str()),
            (CacheStatus::Miss, "new")
        );
    }
    assert_eq!(
        isolate_a.key_for("a").await.unwrap(),
        format!("cache:product:g{generation}:a")
    );
    // Old entries are left to expire, not deleted.
    assert!(e.mem.raw("cache:product:g0:a").is_some());
    // Another namespace is untouched.
    let archived = other_ns
        .try_get_or_compute("a", &policy, load(&calls, "unused"))
        .await
        .unwrap();
    assert_eq!(archived.status, CacheStatus::Hit);

    // Isolate B serves the old generation until its generation TTL runs out...
    let b_window = isolate_b
        .try_get_or_compute("a", &policy, load(&calls, "unused"))
        .await
        .unwrap();
    assert_eq!(
        (b_window.status, b_window.value.name.as_str()),
        (CacheStatus::Hit, "old")
    );
    // ...then reads the new generation.
    e.clock.advance(Duration::from_secs(10));
    let b_after = isolate_b
        .try_get_or_compute("a", &policy, load(&calls, "unused"))
        .await
        .unwrap();
    assert_eq!(
        (b_after.status, b_after.value.name.as_str()),
        (CacheStatus::Hit, "new")
    );
}

#[tokio::test]
async fn generations_only_move_forward() {
    let e = env();
    let cache = KvCache::<Product>::new(e.kv.clone());
    let g1 = cache.invalidate_namespace().await.unwrap();
    // Same millisecond: still a new generation.
    e.clock.advance(Duration::from_secs(2));
    let g2 = cache.invalidate_namespace().await.unwrap();
    assert!(g2 > g1);
    // A stale KV read (the old record reappearing) does not take this isolate back.
    let old = kv_envelope::encode_value(&NamespaceGeneration { generation: g1 }, Codec::Json, None)
        .unwrap();
    e.mem.insert_raw("cache:product:generation", old, None);
    let cache = cache.with_generation_ttl(Duration::ZERO);
    assert_eq!(
        cache.key_for("x").await.unwrap(),
        format!("cache:product:g{g2}:x")
    );
    // And the next bump starts above what this isolate knew.
    e.clock.set(T0);
    let g3 = cache.invalidate_namespace().await.unwrap();
    assert_eq!(g3, g2 + 1);
}

#[tokio::test]
async fn invalidating_during_a_computation_drops_its_write() {
    let e = env();
    let cache = KvCache::<Product>::new(e.kv.clone());
    let gate = Arc::new(tokio::sync::Semaphore::new(0));
    let compute = {
        let gate = Arc::clone(&gate);
        move || async move {
            let _permit = gate.acquire().await.map_err(|_| "gate closed")?;
            Ok::<_, &'static str>(product("built from old data"))
        }
    };
    let mut lookup = Box::pin(cache.try_get_or_compute("k", &CachePolicy::QUERY_CACHE, compute));
    assert!(futures::poll!(lookup.as_mut()).is_pending());
    cache.invalidate("k").await.unwrap();
    gate.add_permits(1);
    let c = lookup.await.unwrap();
    assert_eq!(c.status, CacheStatus::Miss);
    assert!(e.mem.raw("cache:product:g0:k").is_none());
    assert_eq!(cache.stats().writes_skipped_invalidated, 1);
}

#[tokio::test]
async fn corrupt_entries_are_a_miss_and_are_replaced() {
    let e = env();
    let cache = KvCache::<Product>::new(e.kv.clone());
    let calls = Arc::new(AtomicUsize::new(0));
    let policy = CachePolicy::QUERY_CACHE;
    let exp = Some(T0 / 1000 + 3600);
    let garbage: [(&str, Vec<u8>); 4] = [
        ("bytes", b"\x00\x01not an envelope".to_vec()),
        (
            "truncated",
            b"{\"kv\":1,\"type\":\"product\",\"v\":2,".to_vec(),
        ),
        (
            "invalid",
            envelope::encode(
                Codec::Json,
                "product",
                2,
                None,
                &serde_json::json!({"name": 7}),
            )
            .unwrap(),
        ),
        (
            "other-type",
            envelope::encode(Codec::Json, "session", 1, None, &serde_json::json!({})).unwrap(),
        ),
    ];
    for (key, bytes) in &garbage {
        e.mem
            .insert_raw(&format!("cache:product:g0:{key}"), bytes.clone(), exp);
    }
    for (key, _) in &garbage {
        let c = cache
            .try_get_or_compute(key, &policy, load(&calls, "fresh"))
            .await
            .unwrap();
        assert_eq!(c.status, CacheStatus::Miss, "{key}");
        let err = c.cache_error.expect("reported");
        assert!(err.is_corrupt(), "{key}: {err}");
        // Replaced by a readable value.
        let hit = cache
            .try_get_or_compute(key, &policy, load(&calls, "unused"))
            .await
            .unwrap();
        assert_eq!(
            (hit.status, hit.value.name.as_str()),
            (CacheStatus::Hit, "fresh")
        );
    }
    assert_eq!(cache.stats().corrupt_entries, 4);
    assert_eq!(calls.load(Ordering::SeqCst), 4);
}

#[tokio::test]
async fn future_version_entries_are_computed_around_and_never_overwritten() {
    let e = env();
    let cache = KvCache::<Product>::new(e.kv.clone());
    let calls = Arc::new(AtomicUsize::new(0));
    let policy = CachePolicy::QUERY_CACHE;
    let newer = envelope::encode(
        Codec::Json,
        "product",
        3,
        None,
        &serde_json::json!({"name": "x", "priceCents": 1, "sku": "n"}),
    )
    .unwrap();
    e.mem.insert_raw("cache:product:g0:k", newer.clone(), None);

    for _ in 0..2 {
        let c = cache
            .try_get_or_compute("k", &policy, load(&calls, "computed"))
            .await
            .unwrap();
        assert_eq!(c.status, CacheStatus::Miss);
        assert_eq!(c.value.name, "computed");
        assert!(matches!(
            c.cache_error,
            Some(Error::FutureVersion {
                found: 3,
                known: 2,
                ..
            })
        ));
    }
    assert_eq!(e.mem.raw("cache:product:g0:k"), Some(newer.clone()));
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    assert_eq!(cache.stats().future_version_entries, 2);
    assert_eq!(cache.stats().kv.kv_writes, 0);

    assert!(cache.get("k").await.unwrap().is_none());
    let put = cache.put("k", &product("mine"), &policy).await;
    assert!(matches!(put, Err(Error::FutureVersion { .. })));
    assert_eq!(e.mem.raw("cache:product:g0:k"), Some(newer));
}

#[tokio::test]
async fn older_versions_are_migrated_on_read() {
    let e = env();
    let cache = KvCache::<Product>::new(e.kv.clone()).with_codec(Codec::Postcard);
    let v1 = envelope::encode(
        Codec::Postcard,
        "product",
        1,
        Some(T0 + 60_000),
        &ProductV1 { name: "old".into() },
    )
    .unwrap();
    e.mem.insert_raw("cache:product:g0:k", v1, None);
    let calls = Arc::new(AtomicUsize::new(0));
    let c = cache
        .try_get_or_compute("k", &CachePolicy::QUERY_CACHE, load(&calls, "unused"))
        .await
        .unwrap();
    assert_eq!(c.status, CacheStatus::Hit);
    assert_eq!(
        c.value,
        Product {
            name: "old".into(),
            price_cents: 0
        }
    );
    // No metadata: fresh until the envelope's expiry, computation time unknown.
    assert_eq!(c.computed_at, None);
    assert_eq!(calls.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn get_and_put() {
    let e = env();
    let cache = KvCache::<Product>::new(e.kv.clone());
    let policy = CachePolicy::new(minutes(1)).with_stale_while_revalidate(minutes(1));
    assert!(cache.get("k").await.unwrap().is_none());
    cache.put("k", &product("put"), &policy).await.unwrap();
    let c = cache.get("k").await.unwrap().unwrap();
    assert_eq!((c.status, c.value.name.as_str()), (CacheStatus::Hit, "put"));
    e.clock.advance(Duration::from_secs(90));
    let c = cache.get("k").await.unwrap().unwrap();
    assert_eq!(c.status, CacheStatus::Stale);
    assert_eq!(c.age_ms(e.kv.now_ms()), Some(90_000));
    e.clock.advance(Duration::from_secs(31));
    assert!(cache.get("k").await.unwrap().is_none());
    let stats = cache.stats();
    assert_eq!((stats.hits, stats.stale_served, stats.misses), (1, 1, 2));
}

/// MemoryKv with switchable failures.
struct Flaky {
    inner: MemoryKv,
    fail_reads: AtomicBool,
    rate_limit_writes: AtomicBool,
    fail_writes: AtomicBool,
}

#[async_trait::async_trait]
impl KvBackend for Flaky {
    async fn get(&self, key: &str) -> kv_envelope::Result<Option<Stored>> {
        if self.fail_reads.load(Ordering::SeqCst) {
            return Err(Error::Backend {
                op: "get",
                message: "503".into(),
                retryable: true,
            });
        }
        self.inner.get(key).await
    }
    async fn put(&self, key: &str, value: &[u8], o: &WriteOptions) -> kv_envelope::Result<()> {
        if self.rate_limit_writes.load(Ordering::SeqCst) {
            return Err(Error::RateLimited);
        }
        if self.fail_writes.load(Ordering::SeqCst) {
            return Err(Error::Backend {
                op: "put",
                message: "500".into(),
                retryable: true,
            });
        }
        self.inner.put(key, value, o).await
    }
    async fn delete(&self, key: &str) -> kv_envelope::Result<()> {
        self.inner.delete(key).await
    }
    async fn list(
        &self,
        prefix: &str,
        cursor: Option<&str>,
        limit: u32,
    ) -> kv_envelope::Result<ListPage> {
        self.inner.list(prefix, cursor, limit).await
    }
}

fn flaky() -> (ManualClock, Arc<Flaky>, Kv) {
    let clock = ManualClock::new(T0);
    let flaky = Arc::new(Flaky {
        inner: MemoryKv::new(Arc::new(clock.clone())),
        fail_reads: AtomicBool::new(false),
        rate_limit_writes: AtomicBool::new(false),
        fail_writes: AtomicBool::new(false),
    });
    let kv = Kv::from_arc(flaky.clone()).with_clock(Arc::new(clock.clone()));
    (clock, flaky, kv)
}

#[tokio::test]
async fn kv_failures_never_fail_the_request() {
    let (_clock, flaky, kv) = flaky();
    let cache = KvCache::<Product>::new(kv);
    let calls = Arc::new(AtomicUsize::new(0));
    let policy = CachePolicy::QUERY_CACHE;

    // 429 on the write: the computed value is returned, and it is not an error.
    flaky.rate_limit_writes.store(true, Ordering::SeqCst);
    let c = cache
        .try_get_or_compute("k", &policy, load(&calls, "v1"))
        .await
        .unwrap();
    assert_eq!((c.status, c.cache_error), (CacheStatus::Miss, None));
    assert_eq!(cache.stats().writes_rate_limited, 1);
    assert_eq!(cache.stats().errors, 0);
    flaky.rate_limit_writes.store(false, Ordering::SeqCst);

    // Another write failure: value returned, problem reported.
    flaky.fail_writes.store(true, Ordering::SeqCst);
    let c = cache
        .try_get_or_compute("k", &policy, load(&calls, "v2"))
        .await
        .unwrap();
    assert_eq!(c.value.name, "v2");
    assert_eq!(c.cache_error.map(|e| e.kind()), Some("backend"));
    flaky.fail_writes.store(false, Ordering::SeqCst);

    // Read failure: compute, and do not write (what is stored is unknown).
    flaky.fail_reads.store(true, Ordering::SeqCst);
    let c = cache
        .try_get_or_compute("k", &policy, load(&calls, "v3"))
        .await
        .unwrap();
    assert_eq!(c.value.name, "v3");
    assert_eq!(c.cache_error.map(|e| e.kind()), Some("backend"));
    assert!(flaky.inner.dump().is_empty());
    assert_eq!(cache.stats().errors, 2);
    // `get` reports the failure instead.
    assert!(cache.get("k").await.is_err());
}

#[tokio::test]
async fn an_oversized_key_bypasses_the_cache() {
    let e = env();
    let cache = KvCache::<Product>::new(e.kv.clone());
    let calls = Arc::new(AtomicUsize::new(0));
    let key = "x".repeat(600);
    let c = cache
        .try_get_or_compute(&key, &CachePolicy::QUERY_CACHE, load(&calls, "v"))
        .await
        .unwrap();
    assert_eq!(c.status, CacheStatus::Miss);
    assert_eq!(c.cache_error.map(|e| e.kind()), Some("limit"));
    assert!(e.mem.dump().is_empty());
    // The error names lengths, never the key.
    let err = cache.get(&key).await.unwrap_err().to_string();
    assert!(!err.contains("xxxx"), "{err}");
}

#[tokio::test]
async fn a_shorter_ttl_in_code_applies_to_entries_already_stored() {
    let e = env();
    let cache = KvCache::<Product>::new(e.kv.clone());
    let calls = Arc::new(AtomicUsize::new(0));
    cache
        .try_get_or_compute("k", &CachePolicy::STATIC_CONFIG, load(&calls, "v1"))
        .await
        .unwrap();
    e.clock.advance(minutes(10));
    let c = cache
        .try_get_or_compute("k", &CachePolicy::QUERY_CACHE, load(&calls, "v2"))
        .await
        .unwrap();
    assert_eq!((c.status, c.value.name.as_str()), (CacheStatus::Miss, "v2"));
}

/// Review 2: a generation record this code cannot use took every route that builds an entry
/// key down (500 on `get_many`, `invalidate`) for as long as it existed. Now: every read path
/// bypasses the cache (computes, serves, reads and writes no entry), the write paths answer
/// `Error::CacheBypassed`, and the record is never overwritten.
#[tokio::test]
async fn an_unusable_generation_record_bypasses_the_cache_and_is_never_overwritten() {
    let newer = envelope::encode(
        Codec::Json,
        NamespaceGeneration::NAME,
        NamespaceGeneration::VERSION + 1,
        None,
        &serde_json::json!({ "generation": 7, "epoch": "x" }),
    )
    .unwrap();
    let foreign = envelope::encode(
        Codec::Json,
        "product",
        2,
        None,
        &product("not a generation"),
    )
    .unwrap();
    let invalid = envelope::encode(
        Codec::Json,
        NamespaceGeneration::NAME,
        NamespaceGeneration::VERSION,
        None,
        &serde_json::json!({ "generation": "seven" }),
    )
    .unwrap();
    let planted: [(&str, Vec<u8>, &str); 4] = [
        ("garbage", b"{\"kv\":1,garbage".to_vec(), "envelope"),
        ("newer", newer, "future_version"),
        ("another type", foreign, "type_mismatch"),
        ("schema-invalid", invalid, "validation"),
    ];
    for (what, bytes, cause) in planted {
        let e = env();
        e.mem
            .insert_raw("cache:product:generation", bytes.clone(), None);
        // Trusted generations would hide the record; a known one must not be used either.
        let cache = KvCache::<Product>::new(e.kv.clone()).with_generation_ttl(Duration::ZERO);
        let calls = Arc::new(AtomicUsize::new(0));
        let bypassed =
            |err: &Error| matches!(err, Error::CacheBypassed { cause: c, .. } if *c == cause);
        for _ in 0..2 {
            let c = cache
                .try_get_or_compute("k", &CachePolicy::QUERY_CACHE, load(&calls, "v"))
                .await
                .unwrap();
            assert_eq!(c.status, CacheStatus::Miss, "{what}");
            assert!(
                c.cache_error.as_ref().is_some_and(bypassed),
                "{what}: {c:?}"
            );
            let json = cache
                .try_get_or_compute_json("k", &CachePolicy::QUERY_CACHE, load(&calls, "v"))
                .await
                .unwrap();
            assert_eq!(json.status, CacheStatus::Miss, "{what}");
        }
        assert_eq!(
            calls.load(Ordering::SeqCst),
            4,
            "{what}: computed every time"
        );
        // Reads without a computation miss; they do not fail.
        assert!(cache.get("k").await.unwrap().is_none(), "{what}");
        assert!(cache.get_json("k").await.unwrap().is_none(), "{what}");
        let many = cache.get_many(&["a", "b", "c"]).await.unwrap();
        assert!(many.iter().all(Option::is_none), "{what}");
        let many = cache.get_many_json(&["a", "b"]).await.unwrap();
        assert!(many.iter().all(Option::is_none), "{what}");
        // A key KV would refuse is still refused.
        let long = "k".repeat(600);
        assert!(matches!(
            cache.get_many(&[long.as_str()]).await,
            Err(Error::Limit(_))
        ));
        // Writes and invalidations answer a typed error, and write nothing.
        for err in [
            cache.invalidate("k").await.unwrap_err(),
            cache.invalidate_namespace().await.unwrap_err(),
            cache
                .put("k", &product("p"), &CachePolicy::QUERY_CACHE)
                .await
                .unwrap_err(),
            cache.key_for("k").await.unwrap_err(),
        ] {
            assert!(bypassed(&err), "{what}: {err:?}");
            assert_eq!(err.http_status(), 409, "{what}");
        }
        let stored = e.mem.dump();
        assert_eq!(stored.len(), 1, "{what}: only the record, untouched");
        assert_eq!(
            e.mem.raw("cache:product:generation").unwrap(),
            bytes,
            "{what}: never overwritten"
        );
        let stats = cache.stats();
        assert!(stats.bypassed >= 4, "{what}: {stats:?}");
        assert_eq!(stats.errors, 0, "{what}: a bypass is not a KV failure");
        assert_eq!(stats.kv.kv_writes + stats.kv.kv_deletes, 0, "{what}");

        // Deleting the record by hand (or a deploy that can read it) brings the cache back.
        e.kv.delete("cache:product:generation").await.unwrap();
        cache
            .try_get_or_compute("k", &CachePolicy::QUERY_CACHE, load(&calls, "v"))
            .await
            .unwrap();
        let hit = cache
            .try_get_or_compute("k", &CachePolicy::QUERY_CACHE, load(&calls, "v"))
            .await
            .unwrap();
        assert_eq!(hit.status, CacheStatus::Hit, "{what}");
    }
}

/// Review 2: an entry with neither cache bookkeeping nor an expiry (a `TypedStore` write, a
/// planted value) was fresh forever. It is a miss now, replaced by the next computation.
#[tokio::test]
async fn an_undated_entry_without_expiry_is_not_fresh_forever() {
    let e = env();
    let cache = KvCache::<Product>::new(e.kv.clone());
    let calls = Arc::new(AtomicUsize::new(0));
    let bytes = envelope::encode(Codec::Json, "product", 2, None, &product("ancient")).unwrap();
    e.mem.insert_raw("cache:product:g0:k", bytes, None);
    assert!(cache.get("k").await.unwrap().is_none());
    let c = cache
        .try_get_or_compute("k", &CachePolicy::QUERY_CACHE, load(&calls, "fresh"))
        .await
        .unwrap();
    assert_eq!(
        (c.status, c.value.name.as_str()),
        (CacheStatus::Miss, "fresh")
    );
    let hit = cache.get("k").await.unwrap().unwrap();
    assert_eq!(hit.value.name, "fresh");
}
