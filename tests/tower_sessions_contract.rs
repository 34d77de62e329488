//! tower-sessions' store contract, as tower-sessions' own tests and the shared tests of the
//! tower-sessions-stores repository check it (tower-sessions v0.15.0, 92ad026; stores 75cb757;
//! both MIT), written here from a catalogue of what they check (not copied): every behaviour,
//! driven through tower-sessions' real `SessionManagerLayer` in an axum router, on three
//! backends — `MemoryKv`, the KV simulator with KV's real rules (one write per second per key,
//! the 60-second expiration floor) and simulated Durable Objects — and through tower-sessions'
//! `CachingSessionStore` with its `MemoryStore` as the cache.
//!
//! | tower-sessions' tests | here |
//! |---|---|
//! | `no_session_set`, `no_set_cookie_test` | `an_untouched_session_sets_no_cookie_and_writes_nothing` |
//! | `bogus_session_cookie`, `bogus_cookie_test`, `malformed_session_cookie` | `bogus_and_malformed_cookies` |
//! | `insert_session`, `session_max_age`, `name_test`, `http_only_test`, `same_site_*`, `secure_test`, `path_test`, `domain_test`, `signed_test`, `private_test` | `cookie_attributes_follow_the_layer` |
//! | `get_session`, `get_no_value`, `basic_service_test` | `insert_then_get_and_equal_inserts_write_nothing` |
//! | `remove_last_value` | `removing_the_last_value_keeps_an_empty_session` |
//! | `cycle_session_id`, core `test_cycle_id` | `cycle_id_moves_the_data_to_a_new_id` |
//! | `flush_session`, `flush_with_domain` | `flush_deletes_the_record_and_clears_the_cookie` |
//! | `set_expiry`, `change_expiry_type`, `expiry_on_*_test` | `expiry_kinds_and_changing_them` |
//! | `expiry_*_always_save_test` | `always_save_writes_every_request_with_exact_expiries` |
//! | stores' `expired` | `an_expired_record_is_no_session` |
//! | memory-store `test_create`, `test_save`, `test_load`, `test_delete`, `test_create_id_collision` | `the_store_calls_directly` |
//! | core `test_caching_store_*`, stores' `caching_store_tests` | `caching_session_store_over_kv` |
//!
//! On the KV simulator several of these write one session twice within a second (a login then
//! an insert, `always_save`, `cycle_id`, `flush`): KV answers 429, which tower-sessions turns
//! into a 500 without a cookie. `KvSessionStore` paces its writes instead (src/tower_sessions/
//! pacing.rs), on the store's clock: here a manual clock, so the tests never sleep. Every
//! response is checked for a 5xx, and the simulator for a 429.

use std::{str::FromStr, sync::Arc, time::Duration as StdDuration};

use axum::{
    body::{to_bytes, Body},
    http::{header, Request, StatusCode},
    routing::get,
    Router,
};
use kv_envelope::{
    backend::Placement,
    testing::{SimConfig, SimKv, SimObjects},
    tower_sessions::KvSessionStore,
    Clock, Kv, ManualClock, MemoryKv, SystemClock,
};
use tower::ServiceExt;
use tower_sessions::{
    cookie::{
        time::{Duration, OffsetDateTime},
        Key, SameSite,
    },
    session::{Id, Record},
    session_store::{CachingSessionStore, SessionStore},
    Expiry, MemoryStore, Session, SessionManagerLayer,
};

// ---------------------------------------------------------------------------------------------
// Backends

/// One backend under test: the store, its manual clock, and the simulator to ask about 429s.
struct Backend {
    name: &'static str,
    clock: ManualClock,
    store: KvSessionStore,
    sim: Option<SimKv>,
}

/// The store's clock starts at real time: tower-sessions computes expiry dates from the
/// system clock, the store judges them on its own.
fn clock() -> ManualClock {
    ManualClock::new(SystemClock.now_ms())
}

fn memory() -> Backend {
    let clock = clock();
    let kv = Kv::new(MemoryKv::new(Arc::new(clock.clone()))).with_clock(Arc::new(clock.clone()));
    Backend {
        name: "memory",
        store: KvSessionStore::new(kv),
        clock,
        sim: None,
    }
}

/// KV's real rules: one write per second per key (else 429), the 60-second expiration floor.
fn kv_sim() -> Backend {
    let clock = clock();
    let sim = SimKv::new(
        27,
        SimConfig::default().with_locations(1),
        Arc::new(clock.clone()),
    );
    let kv = Kv::new(sim.location(0)).with_clock(Arc::new(clock.clone()));
    Backend {
        name: "kv-sim",
        store: KvSessionStore::new(kv),
        clock,
        sim: Some(sim),
    }
}

fn durable() -> Backend {
    let clock = clock();
    let objects = SimObjects::new(Placement::ByGroup, Arc::new(clock.clone()));
    Backend {
        name: "durable",
        store: KvSessionStore::new(objects.kv(0)),
        clock,
        sim: None,
    }
}

impl Backend {
    fn rate_limited(&self) -> u64 {
        self.sim.as_ref().map_or(0, |s| s.stats().rate_limited)
    }

    fn writes(&self) -> u64 {
        let c = self.store.kv().counters().snapshot();
        c.kv_writes + c.kv_deletes
    }

    fn advance(&self, ms: u64) {
        self.clock.advance(StdDuration::from_millis(ms));
    }
}

// ---------------------------------------------------------------------------------------------
// The app: the routes tower-sessions' tests use, written here

fn routes() -> Router {
    Router::new()
        .route("/", get(|_: Session| async { "hello" }))
        .route(
            "/insert",
            get(|s: Session| async move { s.insert("foo", 42).await.expect("insert") }),
        )
        .route(
            "/get",
            get(|s: Session| async move {
                let v: Option<usize> = s.get("foo").await.expect("get");
                v.map_or("absent".to_string(), |v| v.to_string())
            }),
        )
        .route(
            "/get_value",
            get(
                |s: Session| async move { format!("{:?}", s.get_value("foo").await.expect("get")) },
            ),
        )
        .route(
            "/remove_value",
            get(|s: Session| async move {
                s.remove_value("foo").await.expect("remove");
            }),
        )
        .route(
            "/cycle_id",
            get(|s: Session| async move { s.cycle_id().await.expect("cycle") }),
        )
        .route(
            "/flush",
            get(|s: Session| async move { s.flush().await.expect("flush") }),
        )
        .route(
            "/set_expiry",
            get(|s: Session| async move {
                let at = OffsetDateTime::now_utc() + Duration::days(1);
                s.set_expiry(Some(Expiry::AtDateTime(at)));
            }),
        )
        .route(
            "/remove_expiry",
            get(|s: Session| async move { s.set_expiry(Some(Expiry::OnSessionEnd)) }),
        )
        .route(
            "/fail",
            get(|s: Session| async move {
                s.insert("foo", 7).await.expect("insert");
                StatusCode::INTERNAL_SERVER_ERROR
            }),
        )
}

fn app<S: SessionStore + Clone>(layer: SessionManagerLayer<S>) -> Router {
    routes().layer(layer)
}

/// The layer the route tests use: secure cookies, one hour of inactivity.
fn layer(store: &KvSessionStore) -> SessionManagerLayer<KvSessionStore> {
    SessionManagerLayer::new(store.clone())
        .with_secure(true)
        .with_expiry(Expiry::OnInactivity(Duration::hours(1)))
}

/// A response, reduced to what the tests look at.
#[derive(Debug)]
struct Answer {
    status: StatusCode,
    set_cookie: Option<String>,
    body: String,
}

impl Answer {
    /// `name=value` of the Set-Cookie (the part a browser sends back).
    fn pair(&self) -> String {
        let c = self.set_cookie.as_deref().expect("a Set-Cookie");
        c.split(';').next().unwrap().to_string()
    }

    fn value(&self) -> String {
        self.pair().split_once('=').unwrap().1.to_string()
    }

    fn attr(&self, name: &str) -> Option<String> {
        let c = self.set_cookie.as_deref()?;
        c.split(';').skip(1).find_map(|a| {
            let a = a.trim();
            match a.split_once('=') {
                Some((k, v)) if k.eq_ignore_ascii_case(name) => Some(v.to_string()),
                None if a.eq_ignore_ascii_case(name) => Some(String::new()),
                _ => None,
            }
        })
    }

    fn max_age(&self) -> Option<i64> {
        self.attr("Max-Age")
            .map(|v| v.parse().expect("Max-Age is a number"))
    }

    fn id(&self) -> Id {
        Id::from_str(&self.value()).expect("a session id")
    }
}

/// Send `GET path` with `cookie` (a whole `Cookie` header) and check no 5xx came back.
async fn send(app: &Router, path: &str, cookie: Option<&str>) -> Answer {
    let mut req = Request::builder().uri(path);
    if let Some(c) = cookie {
        req = req.header(header::COOKIE, c);
    }
    let res = app
        .clone()
        .oneshot(req.body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = res.status();
    let set_cookie = res
        .headers()
        .get(header::SET_COOKIE)
        .map(|v| v.to_str().unwrap().to_string());
    let body =
        String::from_utf8(to_bytes(res.into_body(), 1 << 16).await.unwrap().to_vec()).unwrap();
    if path != "/fail" {
        assert!(!status.is_server_error(), "{path}: {status} {body}");
    }
    Answer {
        status,
        set_cookie,
        body,
    }
}

/// No 429 ever reached tower-sessions (the simulator counts every one it answered).
fn assert_no_429(b: &Backend) {
    assert_eq!(b.rate_limited(), 0, "{}: a 429 reached the store", b.name);
}

// ---------------------------------------------------------------------------------------------
// The behaviours

async fn an_untouched_session_sets_no_cookie_and_writes_nothing(b: Backend) {
    let app = app(layer(&b.store));
    let res = send(&app, "/", None).await;
    assert_eq!(res.status, StatusCode::OK);
    assert_eq!(res.set_cookie, None, "{}", b.name);
    let res = send(&app, "/get_value", None).await;
    assert_eq!((res.body.as_str(), res.set_cookie), ("None", None));
    assert_eq!(b.writes(), 0, "{}", b.name);
}

async fn bogus_and_malformed_cookies(b: Backend) {
    let app = app(layer(&b.store));
    // A well-formed id nothing is stored under: a new session under a new id.
    let bogus = "AAAAAAAAAAAAAAAAAAAAAA";
    let res = send(&app, "/insert", Some(&format!("id={bogus}"))).await;
    assert_eq!(res.status, StatusCode::OK);
    assert_ne!(res.value(), bogus, "{}", b.name);
    // A cookie that is no id: nothing loaded; the cookie is removed.
    let res = send(&app, "/", Some("id=malformed")).await;
    assert_eq!(res.value(), "", "{}: a removal cookie", b.name);
    assert_eq!(res.max_age(), Some(0));
    // ...and with data inserted, a new session.
    let res = send(&app, "/insert", Some("id=bogus")).await;
    assert!(
        !res.value().is_empty() && res.value() != "bogus",
        "{}",
        b.name
    );
    assert_no_429(&b);
}

async fn cookie_attributes_follow_the_layer(b: Backend) {
    let store = &b.store;
    let res = send(&app(layer(store)), "/insert", None).await;
    assert!(res.pair().starts_with("id="));
    assert_eq!(res.attr("HttpOnly"), Some(String::new()));
    assert_eq!(res.attr("SameSite").as_deref(), Some("Strict"));
    assert_eq!(res.attr("Secure"), Some(String::new()));
    assert_eq!(res.attr("Path").as_deref(), Some("/"));
    assert_eq!(res.max_age(), Some(3600));
    // No expiry configured: a session cookie (no Max-Age, no Expires).
    let res = send(
        &app(SessionManagerLayer::new(store.clone())),
        "/insert",
        None,
    )
    .await;
    assert_eq!((res.max_age(), res.attr("Expires")), (None, None));
    let custom = SessionManagerLayer::new(store.clone())
        .with_name("my.sid")
        .with_http_only(false)
        .with_same_site(SameSite::Lax)
        .with_secure(false)
        .with_path("/foo/bar")
        .with_domain("example.com");
    let res = send(&app(custom), "/insert", None).await;
    assert!(res.pair().starts_with("my.sid="), "{res:?}");
    assert_eq!(res.attr("HttpOnly"), None);
    assert_eq!(res.attr("SameSite").as_deref(), Some("Lax"));
    assert_eq!(res.attr("Secure"), None);
    assert_eq!(res.attr("Path").as_deref(), Some("/foo/bar"));
    assert_eq!(res.attr("Domain").as_deref(), Some("example.com"));
    let none = SessionManagerLayer::new(store.clone()).with_same_site(SameSite::None);
    let res = send(&app(none), "/insert", None).await;
    assert_eq!(res.attr("SameSite").as_deref(), Some("None"));
    // Signed and private cookies carry the same sessions.
    let signed =
        routes().layer(SessionManagerLayer::new(store.clone()).with_signed(Key::generate()));
    let private =
        routes().layer(SessionManagerLayer::new(store.clone()).with_private(Key::generate()));
    for web in [signed, private] {
        let res = send(&web, "/insert", None).await;
        assert!(res.set_cookie.is_some(), "{}", b.name);
        let again = send(&web, "/get", Some(&res.pair())).await;
        assert_eq!(again.body, "42", "{}", b.name);
    }
    assert_no_429(&b);
}

async fn insert_then_get_and_equal_inserts_write_nothing(b: Backend) {
    let app = app(layer(&b.store));
    let first = send(&app, "/insert", None).await;
    let writes = b.writes();
    // The whole Set-Cookie text sent back as the Cookie header (tower-sessions' tests do).
    let cookie = first.set_cookie.clone().unwrap();
    let res = send(&app, "/get", Some(&cookie)).await;
    assert_eq!(res.body, "42", "{}", b.name);
    // Inserting an equal value is no change: no write, no cookie.
    let res = send(&app, "/insert", Some(&first.pair())).await;
    assert_eq!(res.set_cookie, None, "{}", b.name);
    assert_eq!(b.writes(), writes, "{}", b.name);
    // A 5xx answer saves nothing.
    send(&app, "/fail", Some(&first.pair())).await;
    assert_eq!(send(&app, "/get", Some(&first.pair())).await.body, "42");
    assert_eq!(
        b.writes(),
        writes,
        "{}: the 500's insert was not saved",
        b.name
    );
}

async fn removing_the_last_value_keeps_an_empty_session(b: Backend) {
    let app = app(layer(&b.store));
    let first = send(&app, "/insert", None).await;
    // At once: a second write of the session within the second (KV: 429 unless paced).
    let res = send(&app, "/remove_value", Some(&first.pair())).await;
    assert_eq!(res.value(), first.value(), "{}: the same session", b.name);
    let res = send(&app, "/get_value", Some(&first.pair())).await;
    assert_eq!(res.body, "None", "{}", b.name);
    // The record is an empty session, not gone.
    let stored = b
        .store
        .load(&first.id())
        .await
        .unwrap()
        .expect("still stored");
    assert!(stored.data.is_empty(), "{}", b.name);
    assert_no_429(&b);
}

async fn cycle_id_moves_the_data_to_a_new_id(b: Backend) {
    let app = app(layer(&b.store));
    let first = send(&app, "/insert", None).await;
    let cycled = send(&app, "/cycle_id", Some(&first.pair())).await;
    assert_ne!(cycled.value(), first.value(), "{}", b.name);
    assert_eq!(send(&app, "/get", Some(&cycled.pair())).await.body, "42");
    assert_eq!(
        b.store.load(&first.id()).await.unwrap(),
        None,
        "{}: the old id is gone",
        b.name
    );
    assert_eq!(send(&app, "/get", Some(&first.pair())).await.body, "absent");
    // cycle_id and an insert right after, on the new id.
    let again = send(&app, "/remove_value", Some(&cycled.pair())).await;
    assert_eq!(again.value(), cycled.value());
    assert_no_429(&b);
}

async fn flush_deletes_the_record_and_clears_the_cookie(b: Backend) {
    for domain in [None, Some("localhost")] {
        let mut l = layer(&b.store);
        if let Some(d) = domain {
            l = l.with_domain(d);
        }
        let app = app(l);
        let first = send(&app, "/insert", None).await;
        let res = send(&app, "/flush", Some(&first.pair())).await;
        assert_eq!(res.value(), "", "{}", b.name);
        assert_eq!(res.max_age(), Some(0));
        assert_eq!(res.attr("Path").as_deref(), Some("/"));
        assert_eq!(res.attr("Domain").as_deref(), domain);
        assert_eq!(b.store.load(&first.id()).await.unwrap(), None, "{}", b.name);
    }
    assert_no_429(&b);
}

async fn expiry_kinds_and_changing_them(b: Backend) {
    // OnInactivity → AtDateTime (a day).
    let app1 = app(layer(&b.store).with_domain("localhost"));
    let first = send(&app1, "/insert", None).await;
    assert!((3599..=3600).contains(&first.max_age().unwrap()));
    let res = send(&app1, "/set_expiry", Some(&first.pair())).await;
    assert!(
        (86_399..=86_400).contains(&res.max_age().unwrap()),
        "{res:?}"
    );
    let stored = b.store.load(&first.id()).await.unwrap().unwrap();
    let left = stored.expiry_date - OffsetDateTime::now_utc();
    assert!(
        left > Duration::hours(23),
        "{}: the store has the new expiry",
        b.name
    );
    // No expiry → AtDateTime.
    let app2 = app(SessionManagerLayer::new(b.store.clone()));
    let first = send(&app2, "/insert", None).await;
    assert_eq!(first.max_age(), None);
    let res = send(&app2, "/set_expiry", Some(&first.pair())).await;
    assert!((86_399..=86_400).contains(&res.max_age().unwrap()));
    // OnInactivity → OnSessionEnd (two weeks in the store, no Max-Age on the cookie).
    let app3 = app(layer(&b.store));
    let first = send(&app3, "/insert", None).await;
    let res = send(&app3, "/remove_expiry", Some(&first.pair())).await;
    assert_eq!(res.max_age(), None, "{}", b.name);
    let stored = b.store.load(&first.id()).await.unwrap().unwrap();
    assert!(stored.expiry_date - OffsetDateTime::now_utc() > Duration::days(13));
    // A date given by the layer.
    let at = OffsetDateTime::now_utc() + Duration::weeks(1);
    let app4 = app(SessionManagerLayer::new(b.store.clone()).with_expiry(Expiry::AtDateTime(at)));
    let res = send(&app4, "/insert", None).await;
    let expect = (at - OffsetDateTime::now_utc()).whole_seconds();
    assert!((res.max_age().unwrap() - expect).abs() <= 1);
    assert_no_429(&b);
}

async fn always_save_writes_every_request_with_exact_expiries(b: Backend) {
    let at = OffsetDateTime::now_utc() + Duration::weeks(1);
    for (expiry, grows) in [
        (Expiry::OnSessionEnd, true),
        (Expiry::OnInactivity(Duration::hours(2)), true),
        (Expiry::AtDateTime(at), false),
    ] {
        let app = app(SessionManagerLayer::new(b.store.clone())
            .with_expiry(expiry)
            .with_always_save(true));
        let first = send(&app, "/insert", None).await;
        let rec1 = b.store.load(&first.id()).await.unwrap().unwrap();
        let writes = b.writes();
        // The same value again: no change, but always_save writes, at once.
        let second = send(&app, "/insert", Some(&first.pair())).await;
        assert_eq!(second.value(), first.value(), "{}", b.name);
        assert_eq!(b.writes(), writes + 1, "{}: one write per request", b.name);
        let rec2 = b.store.load(&second.id()).await.unwrap().unwrap();
        if grows {
            assert!(
                rec1.expiry_date < rec2.expiry_date,
                "{}: {expiry:?}",
                b.name
            );
        } else {
            assert_eq!(rec1.expiry_date, rec2.expiry_date, "{}", b.name);
        }
        match expiry {
            Expiry::OnSessionEnd => assert_eq!(second.max_age(), None),
            Expiry::OnInactivity(_) => assert!((7199..=7200).contains(&second.max_age().unwrap())),
            Expiry::AtDateTime(at) => {
                let expect = (at - OffsetDateTime::now_utc()).whole_seconds();
                assert!((second.max_age().unwrap() - expect).abs() <= 1);
            }
        }
    }
    assert_no_429(&b);
}

async fn an_expired_record_is_no_session(b: Backend) {
    let app = app(SessionManagerLayer::new(b.store.clone())
        .with_expiry(Expiry::OnInactivity(Duration::seconds(1))));
    let first = send(&app, "/insert", None).await;
    assert_eq!(first.max_age(), Some(1));
    // 1.1 s later on the store's clock (tower-sessions' own time is the system clock).
    b.advance(1_100);
    let res = send(&app, "/get_value", Some(&first.pair())).await;
    assert_eq!(res.body, "None", "{}", b.name);
}

async fn the_store_calls_directly(b: Backend) {
    let store = &b.store;
    let now = OffsetDateTime::now_utc();
    let record = |id: Id| Record {
        id,
        data: Default::default(),
        expiry_date: now + Duration::minutes(30),
    };
    // create, then load: the very record, to the nanosecond.
    let mut created = record(Id::default());
    store.create(&mut created).await.unwrap();
    assert_eq!(
        store.load(&created.id).await.unwrap(),
        Some(created.clone()),
        "{}",
        b.name
    );
    // save of a record never created: an upsert.
    let saved = record(Id::default());
    store.save(&saved).await.unwrap();
    assert_eq!(store.load(&saved.id).await.unwrap(), Some(saved.clone()));
    // delete, at once after the create: gone.
    store.delete(&created.id).await.unwrap();
    assert_eq!(store.load(&created.id).await.unwrap(), None, "{}", b.name);
    // An id that is taken is not overwritten: create draws another.
    let mut taken = record(saved.id);
    store.create(&mut taken).await.unwrap();
    assert_ne!(taken.id, saved.id, "{}", b.name);
    assert_eq!(
        store.load(&saved.id).await.unwrap(),
        Some(saved),
        "{}",
        b.name
    );
    assert_no_429(&b);
}

async fn caching_session_store_over_kv(b: Backend) {
    let cache = MemoryStore::default();
    let caching = CachingSessionStore::new(cache.clone(), b.store.clone());
    let web = app(SessionManagerLayer::new(caching.clone())
        .with_secure(true)
        .with_expiry(Expiry::OnInactivity(Duration::hours(1))));
    let first = send(&web, "/insert", None).await;
    // Both hold it.
    assert!(cache.load(&first.id()).await.unwrap().is_some());
    assert!(b.store.load(&first.id()).await.unwrap().is_some());
    // A hit in the cache reads nothing from KV.
    let reads = b.store.kv().counters().snapshot().kv_reads;
    assert_eq!(send(&web, "/get", Some(&first.pair())).await.body, "42");
    assert_eq!(
        b.store.kv().counters().snapshot().kv_reads,
        reads,
        "{}",
        b.name
    );
    // A miss (a fresh isolate's empty cache) reads KV and fills the cache.
    let cold = MemoryStore::default();
    let cold_app = app(SessionManagerLayer::new(CachingSessionStore::new(
        cold.clone(),
        b.store.clone(),
    ))
    .with_expiry(Expiry::OnInactivity(Duration::hours(1))));
    assert_eq!(
        send(&cold_app, "/get", Some(&first.pair())).await.body,
        "42"
    );
    assert!(
        cold.load(&first.id()).await.unwrap().is_some(),
        "{}: hydrated",
        b.name
    );
    // Changes, cycle and flush reach both, at once after each other.
    let cycled = send(&web, "/cycle_id", Some(&first.pair())).await;
    assert_eq!(cache.load(&first.id()).await.unwrap(), None);
    assert_eq!(b.store.load(&first.id()).await.unwrap(), None);
    send(&web, "/flush", Some(&cycled.pair())).await;
    assert_eq!(cache.load(&cycled.id()).await.unwrap(), None);
    assert_eq!(
        b.store.load(&cycled.id()).await.unwrap(),
        None,
        "{}",
        b.name
    );
    // An expired record, through the cache too.
    let short = app(SessionManagerLayer::new(CachingSessionStore::new(
        MemoryStore::default(),
        b.store.clone(),
    ))
    .with_expiry(Expiry::OnInactivity(Duration::seconds(1))));
    let res = send(&short, "/insert", None).await;
    b.advance(1_100);
    assert_eq!(b.store.load(&res.id()).await.unwrap(), None, "{}", b.name);
    assert_no_429(&b);
}

// ---------------------------------------------------------------------------------------------

macro_rules! contract {
    ($($test:ident),+ $(,)?) => {
        mod memory {
            $(#[tokio::test] async fn $test() { super::$test(super::memory()).await })+
        }
        mod kv_sim {
            $(#[tokio::test] async fn $test() { super::$test(super::kv_sim()).await })+
        }
        mod durable {
            $(#[tokio::test] async fn $test() { super::$test(super::durable()).await })+
        }
    };
}

contract!(
    an_untouched_session_sets_no_cookie_and_writes_nothing,
    bogus_and_malformed_cookies,
    cookie_attributes_follow_the_layer,
    insert_then_get_and_equal_inserts_write_nothing,
    removing_the_last_value_keeps_an_empty_session,
    cycle_id_moves_the_data_to_a_new_id,
    flush_deletes_the_record_and_clears_the_cookie,
    expiry_kinds_and_changing_them,
    always_save_writes_every_request_with_exact_expiries,
    an_expired_record_is_no_session,
    the_store_calls_directly,
    caching_session_store_over_kv,
);
