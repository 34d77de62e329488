//! Sessions end to end, on a manual clock: the store API, lifetimes, the write budget, ids and
//! keys, rotation, log-out-everywhere, bad cookies and bad stored values, and the middleware's
//! decisions.
//!
//! Every test takes a [`Harness`] and is instantiated per backend by `suite!` at the bottom, so
//! another backend (the KV simulator) only needs a harness constructor and a line there.

mod common;

use std::{
    sync::{
        atomic::{AtomicBool, AtomicU64, Ordering},
        Arc, Mutex,
    },
    time::Duration,
};

use kv_envelope::{
    backend::{KvBackend, ListPage, OpCounts, Stored, WriteOptions},
    background::Deferred,
    decode_value,
    envelope::{self, Header},
    session::{
        device_label, Admission, CookieConfig, DenyCause, DeviceHandle, Lookup, NewSession,
        NoSession, PlainResponse, Refresh, RefreshPlan, RequestParts, Revocation, SessionData,
        SessionGate, SessionId, SessionIndexEntry, SessionIndexEntryV1, SessionInit, SessionRecord,
        SessionRecordV1, SessionTimes, Sessions,
    },
    testing::{SimConfig, SimKv},
    Codec, Error, KeyRing, Kv, ManualClock, MemoryKv, Result, SealingKey, TypedStore,
};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::json;
use sha2::{Digest, Sha256};

use common::CountingIds;
use common::NOW;
const SECOND: Duration = Duration::from_secs(1);
const HOUR: Duration = Duration::from_secs(3600);
const DAY: Duration = Duration::from_secs(24 * 3600);
const DAY_MS: u64 = 24 * 3600 * 1000;
const EMAIL: &str = "ada@example.com";

// ---------------------------------------------------------------------------------------------
// Harness

/// A backend under test: the raw backend, a clock, and raw access to plant and dump bytes.
struct Harness {
    clock: ManualClock,
    backend: Arc<dyn KvBackend>,
    raw: Arc<dyn RawAccess>,
    /// A new, empty harness of the same kind.
    fresh: fn() -> Harness,
    /// Shared by every store of the harness, so two stores never draw the same id.
    ids: Arc<CountingIds>,
    /// Seal every store's sessions with this ring (the sealed runs of the suite).
    ring: Option<KeyRing>,
}

/// Test-only access to a backend's bytes, bypassing envelopes and limits.
trait RawAccess: Send + Sync {
    /// Every key and value.
    fn dump(&self) -> Vec<(String, Vec<u8>)>;
    /// Write bytes with no KV expiration: a value KV has not deleted yet.
    fn plant(&self, key: &str, value: Vec<u8>);
}

impl RawAccess for MemoryKv {
    fn dump(&self) -> Vec<(String, Vec<u8>)> {
        MemoryKv::dump(self)
    }
    fn plant(&self, key: &str, value: Vec<u8>) {
        self.insert_raw(key, value, None);
    }
}

fn memory() -> Harness {
    let clock = ManualClock::new(NOW);
    let mem = Arc::new(MemoryKv::new(Arc::new(clock.clone())));
    Harness {
        clock,
        backend: mem.clone(),
        raw: mem,
        ids: Arc::new(CountingIds::new(0x5a)),
        fresh: memory,
        ring: None,
    }
}

impl RawAccess for SimKv {
    fn dump(&self) -> Vec<(String, Vec<u8>)> {
        // Keys from a list at location 0 (it sees its own writes at once), values from the
        // central store.
        let keys = futures::executor::block_on(self.kv(0).list_all("", 1000)).unwrap();
        keys.into_iter()
            .filter_map(|k| self.central(&k.name).map(|s| (k.name, s.value)))
            .collect()
    }
    fn plant(&self, key: &str, value: Vec<u8>) {
        self.insert_raw(key, value, None);
    }
}

/// The simulator at one location: KV's 1 write/s per key, 60 s expiration floor, values served
/// up to 10 s past their KV expiration, expired keys listed up to 60 s late, empty list pages.
fn sim_one_location() -> Harness {
    let clock = ManualClock::new(NOW);
    let sim = SimKv::new(
        42,
        SimConfig::default().with_locations(1),
        Arc::new(clock.clone()),
    );
    Harness {
        clock,
        backend: Arc::new(sim.location(0)),
        raw: Arc::new(sim),
        ids: Arc::new(CountingIds::new(0x5a)),
        fresh: sim_one_location,
        ring: None,
    }
}

/// A ring of two test keys, `k2` the primary. It reads clear values too (the migration
/// window, `requiring_sealed(false)`): the suite plants clear sessions (legacy versions, bad
/// times) and checks what the store does with them. The default refusal of clear values is
/// tested in tests/sealed.rs.
fn test_ring() -> KeyRing {
    KeyRing::new(vec![
        SealingKey::from_bytes("k2", &[2; 32]).unwrap(),
        SealingKey::from_bytes("k1", &[1; 32]).unwrap(),
    ])
    .unwrap()
    .requiring_sealed(false)
}

/// [`memory`] with every store sealing its sessions.
fn sealed_memory() -> Harness {
    Harness {
        ring: Some(test_ring()),
        fresh: sealed_memory,
        ..memory()
    }
}

/// [`sim_one_location`] with every store sealing its sessions.
fn sealed_sim() -> Harness {
    Harness {
        ring: Some(test_ring()),
        fresh: sealed_sim,
        ..sim_one_location()
    }
}

impl Harness {
    fn kv(&self) -> Kv {
        Kv::from_arc(self.backend.clone()).with_clock(Arc::new(self.clock.clone()))
    }

    fn store(&self) -> Sessions {
        self.sealing(Sessions::new(self.kv()).with_id_source(self.ids.clone()))
    }

    /// `store` with the harness's key ring, if it has one.
    fn sealing<D: SessionData>(&self, store: Sessions<D>) -> Sessions<D> {
        match &self.ring {
            Some(ring) => store.with_sealing(ring.clone()),
            None => store,
        }
    }

    fn keys(&self) -> Vec<String> {
        self.raw.dump().into_iter().map(|(k, _)| k).collect()
    }

    fn advance(&self, by: Duration) {
        self.clock.advance(by);
    }
}

fn counts(store: &Sessions<impl SessionData>) -> OpCounts {
    store.kv().counters().snapshot()
}

/// Writes and deletes since `before` (both cost a write and count against 1 write/s/key).
fn mutations(store: &Sessions<impl SessionData>, before: OpCounts) -> u64 {
    let now = counts(store);
    (now.kv_writes - before.kv_writes) + (now.kv_deletes - before.kv_deletes)
}

fn sha256_hex(s: &str) -> String {
    Sha256::digest(s.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn some_id(c: char) -> SessionId {
    SessionId::parse(&c.to_string().repeat(64)).unwrap()
}

fn page(cookie: Option<&str>) -> RequestParts<'_> {
    RequestParts {
        method: "GET",
        path: "/account",
        query: Some("tab=keys"),
        accept: Some("text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"),
        cookie,
        ..RequestParts::default()
    }
}

fn api(cookie: Option<&str>) -> RequestParts<'_> {
    RequestParts {
        method: "GET",
        path: "/me",
        query: None,
        accept: Some("application/json"),
        cookie,
        ..RequestParts::default()
    }
}

fn request<'a>(method: &'a str, path: &'a str, accept: Option<&'a str>) -> RequestParts<'a> {
    RequestParts {
        method,
        path,
        query: None,
        accept,
        ..RequestParts::default()
    }
}

async fn denied_response(gate: &SessionGate, req: RequestParts<'_>) -> PlainResponse {
    match gate.check(&req).await {
        Admission::Denied(d) => d.response,
        Admission::Admitted(_) => panic!("admitted"),
    }
}

/// A gate reading the bare cookie name `session`, which most of these tests write by hand (the
/// default is `__Host-session`; `host_prefix_is_the_default` covers it).
fn plain_gate<D: SessionData>(store: Sessions<D>) -> SessionGate<D> {
    SessionGate::new(store).with_cookie(CookieConfig::default().with_host_prefix(false))
}

fn cookie_of(id: &SessionId) -> String {
    format!("theme=dark; session={}", id.expose())
}

/// A KV backend that answers 429 to writes while `limited` is set.
struct RateLimitedWrites {
    inner: Arc<dyn KvBackend>,
    limited: AtomicBool,
}

#[async_trait::async_trait]
impl KvBackend for RateLimitedWrites {
    async fn get(&self, key: &str) -> Result<Option<Stored>> {
        self.inner.get(key).await
    }
    async fn put(&self, key: &str, value: &[u8], options: &WriteOptions) -> Result<()> {
        if self.limited.load(Ordering::SeqCst) {
            return Err(Error::RateLimited);
        }
        self.inner.put(key, value, options).await
    }
    async fn delete(&self, key: &str) -> Result<()> {
        if self.limited.load(Ordering::SeqCst) {
            return Err(Error::RateLimited);
        }
        self.inner.delete(key).await
    }
    async fn list(&self, prefix: &str, cursor: Option<&str>, limit: u32) -> Result<ListPage> {
        self.inner.list(prefix, cursor, limit).await
    }
}

// ---------------------------------------------------------------------------------------------
// Store API

async fn create_get_delete(h: Harness) {
    let store = h.store();
    let (id, created) = store.create("u1", EMAIL).await.unwrap();
    assert_eq!(created.user_id, "u1");
    assert_eq!(created.email, EMAIL);
    assert_eq!(created.created_at, NOW);
    assert_eq!(created.expires_at, NOW + 7 * DAY_MS);
    assert_eq!(created.absolute_expires_at, NOW + 30 * DAY_MS);
    assert_eq!(created.refreshed_at, NOW);
    assert_eq!(store.get(&id).await.unwrap(), Some(created.clone()));
    // The session and its index entry.
    assert_eq!(h.keys().len(), 2, "{:?}", h.keys());

    store.delete(&id).await.unwrap();
    assert_eq!(
        store.lookup(&id).await.unwrap(),
        Lookup::NoSession(NoSession::NotFound)
    );
    assert!(h.keys().is_empty(), "logout leaves {:?}", h.keys());
    store.delete(&id).await.unwrap();
}

async fn ids_are_hashed_in_keys_and_values(h: Harness) {
    // OS randomness here: the real ids.
    let store = Sessions::new(h.kv());
    let mut ids = Vec::new();
    for user in ["u1", "u1", "u2"] {
        let (id, _) = store.create(user, EMAIL).await.unwrap();
        ids.push(id);
        h.advance(SECOND);
    }
    let (rotated, _) = store.rotate(&ids[0]).await.unwrap().found().unwrap();
    ids.push(rotated);
    let dump = h.raw.dump();
    assert_eq!(dump.len(), 6, "3 live sessions + 3 index entries");
    for id in &ids {
        assert_eq!(id.expose().len(), 64);
        for (key, value) in &dump {
            assert!(!key.contains(id.expose()), "raw id in key {key}");
            let text = String::from_utf8_lossy(value);
            assert!(!text.contains(id.expose()), "raw id in the value of {key}");
        }
    }
    for (key, _) in &dump {
        assert!(
            !key.contains("u1") && !key.contains("u2"),
            "user id in key {key}"
        );
    }
    let key = store.key_of(&ids[3]);
    assert_eq!(key, format!("session:{}", sha256_hex(ids[3].expose())));
    assert!(dump.iter().any(|(k, _)| *k == key));
    // The index entry is an envelope value of its own type, keyed by both hashes.
    let entry_key = format!(
        "session-user:{}:{}",
        sha256_hex("u1"),
        sha256_hex(ids[3].expose())
    );
    let (_, bytes) = dump.iter().find(|(k, _)| *k == entry_key).unwrap();
    let entry = decode_value::<SessionIndexEntry>(bytes, NOW, true)
        .unwrap()
        .unwrap();
    assert_eq!(entry.value.absolute_expires_at, NOW + 30 * DAY_MS);
}

async fn configurable_prefix_and_lifetimes(h: Harness) {
    let store = h
        .store()
        .with_prefix("app1/sess")
        .with_idle_timeout(HOUR)
        .with_absolute_lifetime(DAY);
    let (id, s) = store.create("u1", EMAIL).await.unwrap();
    assert_eq!(s.expires_at, NOW + 3_600_000);
    assert_eq!(s.absolute_expires_at, NOW + DAY_MS);
    let mut keys = h.keys();
    keys.sort();
    assert!(keys[0].starts_with("app1/sess-user:"), "{keys:?}");
    assert_eq!(keys[1], format!("app1/sess:{}", id.hashed()));
    assert_eq!(store.prefix(), "app1/sess");
    // Default threshold: 6/7 of the idle window.
    assert_eq!(store.refresh_threshold_ms(), 3_600_000 / 7 * 6);
}

async fn postcard_codec(h: Harness) {
    let store = h.store().with_codec(Codec::Postcard);
    let (id, s) = store.create("u1", EMAIL).await.unwrap();
    let raw = h
        .raw
        .dump()
        .into_iter()
        .find(|(k, _)| *k == store.key_of(&id))
        .unwrap()
        .1;
    assert_eq!(envelope::peek_header(&raw).unwrap().codec, Codec::Postcard);
    assert_eq!(store.get(&id).await.unwrap(), Some(s));
}

async fn create_refuses_what_could_not_be_read_back(h: Harness) {
    let store = h.store();
    let before = counts(&store);
    let err = store.create("u1", "not an email").await.unwrap_err();
    assert!(matches!(err, Error::InvalidValue { .. }), "{err:?}");
    assert!(!err.to_string().contains("not an email"), "{err}");
    let err = store.create("", EMAIL).await.unwrap_err();
    assert!(matches!(err, Error::InvalidValue { .. }), "{err:?}");
    assert_eq!(mutations(&store, before), 0);
    assert!(h.keys().is_empty());
}

async fn update_changes_data_and_slides(h: Harness) {
    let store = h.store();
    let (id, _) = store.create("u1", EMAIL).await.unwrap();
    h.advance(HOUR);
    let updated = store
        .update(&id, |s| {
            s.roles = vec!["admin".into()];
            // Times are the store's: this is discarded.
            s.absolute_expires_at = u64::MAX;
        })
        .await
        .unwrap()
        .found()
        .unwrap();
    assert_eq!(updated.roles, vec!["admin".to_string()]);
    assert_eq!(updated.absolute_expires_at, NOW + 30 * DAY_MS);
    assert_eq!(updated.expires_at, NOW + 3_600_000 + 7 * DAY_MS);
    assert_eq!(store.get(&id).await.unwrap(), Some(updated));

    // Moving the session to another user moves its index entry.
    h.advance(SECOND);
    store
        .update(&id, |s| s.user_id = "u2".into())
        .await
        .unwrap();
    assert_eq!(store.delete_all_for_user("u1").await.unwrap().deleted, 0);
    assert!(store.get(&id).await.unwrap().is_some());
    assert_eq!(store.delete_all_for_user("u2").await.unwrap().deleted, 1);
    assert_eq!(store.get(&id).await.unwrap(), None);

    let err = store.update(&some_id('e'), |_| {}).await.unwrap();
    assert_eq!(err, Lookup::NoSession(NoSession::NotFound));
}

// ---------------------------------------------------------------------------------------------
// Lifetimes

async fn idle_expiry(h: Harness) {
    let store = h.store();
    let (id, _) = store.create("u1", EMAIL).await.unwrap();
    h.clock.set(NOW + 7 * DAY_MS - 1);
    assert!(store.get(&id).await.unwrap().is_some());
    h.clock.set(NOW + 7 * DAY_MS);
    // Expired on our clock; the backend may still hold it (KV rounds expirations up).
    let lookup = store.lookup(&id).await.unwrap();
    assert!(
        matches!(
            lookup,
            Lookup::NoSession(NoSession::Expired | NoSession::NotFound)
        ),
        "{lookup:?}"
    );
    assert!(matches!(
        store.refresh(&id).await.unwrap(),
        Refresh::NoSession(_)
    ));
}

async fn sliding_refresh_stops_at_the_absolute_cap(h: Harness) {
    let store = h.store();
    let (id, _) = store.create("u1", EMAIL).await.unwrap();
    let cap = NOW + 30 * DAY_MS;
    let mut extended = 0;
    let mut at_cap = 0;
    // A request every 25 hours: always within the idle window, refreshed every time.
    loop {
        h.advance(25 * HOUR);
        let now = store.now_ms();
        match store.refresh(&id).await.unwrap() {
            Refresh::Extended { expires_at } => {
                extended += 1;
                assert_eq!(expires_at, (now + 7 * DAY_MS).min(cap));
                let s = store.get(&id).await.unwrap().unwrap();
                assert_eq!((s.expires_at, s.refreshed_at), (expires_at, now));
            }
            Refresh::Skipped(RefreshPlan::AtCap) => {
                at_cap += 1;
                assert!(now < cap);
                assert_eq!(store.get(&id).await.unwrap().unwrap().expires_at, cap);
            }
            Refresh::NoSession(NoSession::Expired | NoSession::NotFound) => {
                assert!(now >= cap, "ended early at day {}", (now - NOW) / DAY_MS);
                break;
            }
            other => panic!("unexpected {other:?} at day {}", (now - NOW) / DAY_MS),
        }
    }
    assert!(extended >= 20, "{extended}");
    assert!(at_cap >= 1, "{at_cap}");
    assert_eq!(store.get(&id).await.unwrap(), None);
}

async fn expired_values_still_in_kv_are_never_served(h: Harness) {
    let store = h.store();
    let session = |exp: u64, abs: u64| SessionRecord {
        user_id: "u1".into(),
        email: EMAIL.into(),
        created_at: NOW - 10 * DAY_MS,
        expires_at: exp,
        absolute_expires_at: abs,
        refreshed_at: NOW - DAY_MS,
        roles: vec![],
    };
    let cases = [
        // Envelope expiry passed (KV has not deleted it yet).
        ('1', Some(NOW - 1), session(NOW - 1, NOW + DAY_MS)),
        // Envelope without expiry, payload's idle expiry passed.
        ('2', None, session(NOW, NOW + DAY_MS)),
        // Absolute cap passed.
        ('3', None, session(NOW + DAY_MS, NOW - 5)),
    ];
    for (c, exp, value) in cases {
        let id = some_id(c);
        let bytes = envelope::encode(Codec::Json, "session", 3, exp, &value).unwrap();
        h.raw.plant(&store.key_of(&id), bytes);
        assert_eq!(
            store.lookup(&id).await.unwrap(),
            Lookup::NoSession(NoSession::Expired),
            "case {c}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Write budget

/// The reference pattern (`KVSessionStore.refresh`): read, push `expiresAt` 7 days out, write.
async fn reference_refresh(store: &TypedStore<SessionRecord>, key: &str, now: u64) {
    if let Some(mut s) = store.get(key).await.unwrap() {
        s.expires_at = now + 7 * DAY_MS;
        store.insert_new(key, &s, Some(s.expires_at)).await.unwrap();
    }
}

async fn write_budget_1000_requests_in_an_hour(h: Harness) {
    // SessionRecord age when the hour starts → refresh writes expected in the hour (the budget
    // allows one when less than 6 of 7 days remain, i.e. once the session is a day old).
    for (age, expected) in [
        (Duration::ZERO, 0),
        (DAY - HOUR / 2, 1),
        (3 * DAY + HOUR / 2, 1),
    ] {
        let h = (h.fresh)();
        let gate = plain_gate(h.store());
        let bg = Deferred::new();
        let NewSession { id, .. } = gate
            .login(None, SessionInit::new("u1", EMAIL))
            .await
            .unwrap();
        let cookie = cookie_of(&id);
        h.advance(age);
        let before = counts(gate.store());
        let mut cookies_sent = 0;
        for _ in 0..1000 {
            match gate.check(&page(Some(&cookie))).await {
                Admission::Admitted(a) => {
                    // The handler ran and set no cookie of its own.
                    let extra = gate.finish(a.ticket(), [], &bg);
                    cookies_sent += usize::from(extra.is_some());
                }
                Admission::Denied(d) => panic!("denied: {:?}", d.cause),
            }
            bg.run_all().await;
            h.advance(Duration::from_millis(3600));
        }
        let after = counts(gate.store());
        let writes = after.kv_writes - before.kv_writes;
        assert_eq!(writes, expected, "age {age:?}");
        assert!(writes <= 1);
        assert_eq!(
            cookies_sent as u64, expected,
            "extended cookie only with the write"
        );
        // One read per request, plus the background refresh's re-read and its check of the
        // index entry after the write (the guard against resurrecting a logged-out session).
        assert_eq!(after.kv_reads - before.kv_reads, 1000 + 2 * expected);
        assert_eq!(after.kv_deletes - before.kv_deletes, 0);
    }

    // The reference pattern on the same traffic: one write per request.
    let h = (h.fresh)();
    let reference = TypedStore::<SessionRecord>::new(h.kv());
    let reference = match &h.ring {
        Some(ring) => reference.with_sealing(ring.clone()),
        None => reference,
    };
    let store = h.store();
    let (id, _) = store.create("u1", EMAIL).await.unwrap();
    let key = id.hashed();
    let before = reference.kv().counters().snapshot();
    for _ in 0..1000 {
        // Advance first: KV refuses a second write to the key within a second of the create.
        h.advance(Duration::from_millis(3600));
        reference_refresh(&reference, &key, reference.kv().now_ms()).await;
    }
    let after = reference.kv().counters().snapshot();
    assert_eq!(after.kv_writes - before.kv_writes, 1000);
}

async fn at_most_one_write_per_second_per_key(h: Harness) {
    // Threshold = idle window: every refresh is due, so only the 1 s spacing limits writes.
    let store = h.store().with_refresh_threshold(DAY * 7);
    let (id, _) = store.create("u1", EMAIL).await.unwrap();
    h.advance(Duration::from_millis(500));
    assert_eq!(
        store.refresh(&id).await.unwrap(),
        Refresh::Skipped(RefreshPlan::TooSoon)
    );
    h.advance(SECOND);
    let before = counts(&store);
    let mut outcomes = Vec::new();
    for _ in 0..10 {
        outcomes.push(store.refresh(&id).await.unwrap());
        h.advance(Duration::from_millis(99));
    }
    assert!(matches!(outcomes[0], Refresh::Extended { .. }));
    assert!(outcomes[1..]
        .iter()
        .all(|o| *o == Refresh::Skipped(RefreshPlan::TooSoon)));
    assert_eq!(mutations(&store, before), 1);
    h.advance(Duration::from_millis(110));
    assert!(matches!(
        store.refresh(&id).await.unwrap(),
        Refresh::Extended { .. }
    ));
}

async fn rate_limited_refresh_loses_nothing(h: Harness) {
    let limited = Arc::new(RateLimitedWrites {
        inner: h.backend.clone(),
        limited: AtomicBool::new(false),
    });
    let kv = Kv::from_arc(limited.clone()).with_clock(Arc::new(h.clock.clone()));
    let store = Sessions::<SessionRecord>::new(kv).with_id_source(h.ids.clone());
    let (id, created) = store.create("u1", EMAIL).await.unwrap();
    h.advance(2 * DAY);
    let raw_before = h.raw.dump();
    limited.limited.store(true, Ordering::SeqCst);
    assert_eq!(store.refresh(&id).await.unwrap(), Refresh::RateLimited);
    assert_eq!(h.raw.dump(), raw_before, "a 429 changed what is stored");
    assert_eq!(store.get(&id).await.unwrap(), Some(created.clone()));
    assert_eq!(store.kv().counters().snapshot().kv_rate_limited, 1);
    // Later requests retry and succeed.
    limited.limited.store(false, Ordering::SeqCst);
    h.advance(SECOND);
    assert!(matches!(
        store.refresh(&id).await.unwrap(),
        Refresh::Extended { .. }
    ));
    // A rotation refused by a 429 changes nothing either: the old id still works.
    limited.limited.store(true, Ordering::SeqCst);
    h.advance(SECOND);
    assert!(matches!(store.rotate(&id).await, Err(Error::RateLimited)));
    assert!(store.get(&id).await.unwrap().is_some());
}

// ---------------------------------------------------------------------------------------------
// Rotation and log-out-everywhere

async fn rotate_replaces_the_id(h: Harness) {
    let store = h.store();
    let (old, created) = store.create("u1", EMAIL).await.unwrap();
    h.advance(HOUR);
    let (new, rotated) = store
        .rotate_with(&old, |s| s.roles = vec!["admin".into()])
        .await
        .unwrap()
        .found()
        .unwrap();
    assert_ne!(new, old);
    assert_eq!(
        store.lookup(&old).await.unwrap(),
        Lookup::NoSession(NoSession::NotFound)
    );
    assert_eq!(store.get(&new).await.unwrap(), Some(rotated.clone()));
    // Same session, new id: creation and absolute cap kept, idle expiry slid.
    assert_eq!(rotated.created_at, created.created_at);
    assert_eq!(rotated.absolute_expires_at, created.absolute_expires_at);
    assert_eq!(rotated.expires_at, NOW + 3_600_000 + 7 * DAY_MS);
    assert_eq!(rotated.roles, vec!["admin".to_string()]);
    assert!(
        !h.keys().iter().any(|k| k.contains(&old.hashed())),
        "{:?}",
        h.keys()
    );
    // The index follows the new id.
    assert_eq!(store.delete_all_for_user("u1").await.unwrap().deleted, 1);
    assert_eq!(store.get(&new).await.unwrap(), None);
    assert!(h.keys().is_empty(), "{:?}", h.keys());
    // Nothing to rotate.
    assert_eq!(
        store.rotate(&old).await.unwrap(),
        Lookup::NoSession(NoSession::NotFound)
    );
}

async fn log_out_everywhere(h: Harness) {
    let store = h.store();
    let mut mine = Vec::new();
    for _ in 0..3 {
        mine.push(store.create("u1", EMAIL).await.unwrap().0);
        h.advance(SECOND);
    }
    let (other, _) = store.create("u2", "bob@example.com").await.unwrap();

    let kept = store
        .delete_all_for_user_except("u1", &mine[2])
        .await
        .unwrap();
    assert_eq!((kept.deleted, kept.complete), (2, true));
    assert_eq!(store.get(&mine[0]).await.unwrap(), None);
    assert_eq!(store.get(&mine[1]).await.unwrap(), None);
    assert!(store.get(&mine[2]).await.unwrap().is_some());

    let all = store.delete_all_for_user("u1").await.unwrap();
    assert_eq!((all.deleted, all.complete), (1, true));
    assert_eq!(store.get(&mine[2]).await.unwrap(), None);
    assert!(
        store.get(&other).await.unwrap().is_some(),
        "another user's session survives"
    );
    let u1_index = store.index_prefix_of("u1");
    assert!(
        !h.keys().iter().any(|k| k.starts_with(&u1_index)),
        "index pruned"
    );
    assert_eq!(store.delete_all_for_user("u1").await.unwrap().deleted, 0);
}

async fn log_out_everywhere_in_batches(h: Harness) {
    let store = h.store().with_logout_batch(2);
    let mut ids = Vec::new();
    for _ in 0..5 {
        ids.push(store.create("u1", EMAIL).await.unwrap().0);
    }
    let mut rounds = Vec::new();
    loop {
        let r = store.delete_all_for_user("u1").await.unwrap();
        rounds.push(r.deleted);
        if r.complete {
            break;
        }
        assert!(rounds.len() < 10);
    }
    assert_eq!(rounds, vec![2, 2, 1]);
    for id in &ids {
        assert_eq!(store.get(id).await.unwrap(), None);
    }
}

/// Review 2: a user could pile up sessions without bound, and "log out everywhere" stopped at
/// its batch (400) with the rest alive. Logins past the cap revoke the oldest sessions.
async fn a_user_keeps_at_most_the_cap_the_oldest_go_first(h: Harness) {
    let store = h.store().with_max_sessions_per_user(3);
    let mut ids = Vec::new();
    for _ in 0..5 {
        let before = counts(&store);
        ids.push(store.create("u1", EMAIL).await.unwrap().0);
        // One list per login (the simulator, like KV, may answer an empty page first).
        assert!(
            counts(&store).kv_lists > before.kv_lists,
            "a list per login"
        );
        h.advance(SECOND);
    }
    let (other, _) = store.create("u2", "bob@example.com").await.unwrap();
    for (i, id) in ids.iter().enumerate() {
        let alive = store.get(id).await.unwrap().is_some();
        assert_eq!(alive, i >= 2, "session {i}: the two oldest were evicted");
    }
    assert!(
        store.get(&other).await.unwrap().is_some(),
        "other users untouched"
    );
    // A rotated session keeps its place (its first login) in the order.
    let (rotated, _) = store.rotate(&ids[2]).await.unwrap().found().unwrap();
    h.advance(SECOND);
    let (newest, _) = store.create("u1", EMAIL).await.unwrap();
    assert_eq!(store.get(&rotated).await.unwrap(), None, "the oldest went");
    assert!(store.get(&ids[3]).await.unwrap().is_some());
    assert!(store.get(&newest).await.unwrap().is_some());
}

/// With the default cap (32) below the default batch (400), one call always revokes every
/// session of a user, the caller's last.
async fn logout_everywhere_completes_in_one_call_with_the_defaults(h: Harness) {
    let store = h.store();
    let mut ids = Vec::new();
    for _ in 0..40 {
        ids.push(store.create("u1", EMAIL).await.unwrap().0);
    }
    let alive = {
        let mut n = 0;
        for id in &ids {
            n += usize::from(store.get(id).await.unwrap().is_some());
        }
        n
    };
    assert_eq!(alive, 32, "the default cap");
    let caller = ids.last().unwrap();
    let before = counts(&store);
    let out = store
        .logout_everywhere(caller)
        .await
        .unwrap()
        .found()
        .unwrap();
    assert_eq!((out.deleted, out.complete), (32, true));
    let cost = counts(&store);
    // One read (the caller), one list, two deletes per session.
    assert_eq!(cost.kv_lists - before.kv_lists, 1);
    assert_eq!(cost.kv_deletes - before.kv_deletes, 64);
    for id in &ids {
        assert_eq!(store.get(id).await.unwrap(), None);
    }
}

/// Review 2: with more sessions than one call revokes (from before the cap), the caller's own
/// session was deleted first and its cookie cleared, so it could not call again. Now it keeps
/// its session, gets an honest partial answer, and is logged out by the call that finishes.
async fn logout_everywhere_keeps_the_caller_until_the_rest_are_gone(h: Harness) {
    let planted = h.store().with_max_sessions_per_user(100);
    let mut ids = Vec::new();
    for _ in 0..5 {
        ids.push(planted.create("u1", EMAIL).await.unwrap().0);
    }
    let gate = SessionGate::new(h.store().with_logout_batch(2));
    let caller = ids[4].clone();
    let cookie = format!("__Host-session={}", caller.expose());
    let first = gate
        .logout_everywhere(Some(&cookie))
        .await
        .unwrap()
        .found()
        .unwrap();
    assert_eq!((first.outcome.deleted, first.outcome.complete), (2, false));
    assert_eq!(first.set_cookie, None, "the caller keeps its cookie");
    assert!(gate.store().get(&caller).await.unwrap().is_some());
    let second = gate
        .logout_everywhere(Some(&cookie))
        .await
        .unwrap()
        .found()
        .unwrap();
    assert_eq!((second.outcome.deleted, second.outcome.complete), (3, true));
    assert!(second
        .set_cookie
        .as_deref()
        .is_some_and(|c| c.starts_with("__Host-session=;")));
    for id in &ids {
        assert_eq!(gate.store().get(id).await.unwrap(), None);
    }
    // Without a session: no session, nothing deleted.
    let again = gate.logout_everywhere(Some(&cookie)).await.unwrap();
    assert_eq!(again.reason(), Some(&NoSession::NotFound));
}

/// Review 2: a logout carrying made-up ids cost a read and a delete (billed as a write) for
/// each. Only what is found is deleted now, but for the first id on KV (a session created
/// at another location may not be visible yet): at most one write per request.
async fn logout_of_unknown_ids_costs_at_most_one_write(h: Harness) {
    let gate = SessionGate::new(h.store());
    let cookie: Vec<String> = ('a'..='h')
        .map(|c| format!("__Host-session={}", c.to_string().repeat(64)))
        .collect();
    let cookie = cookie.join("; ");
    let before = counts(gate.store());
    gate.logout(Some(&cookie)).await.unwrap();
    gate.login(Some(&cookie), SessionInit::new("u1", EMAIL))
        .await
        .unwrap();
    let cost = counts(gate.store());
    assert_eq!(
        cost.kv_deletes - before.kv_deletes,
        2,
        "one blind delete per request"
    );
    assert!(
        cost.kv_reads - before.kv_reads <= 16,
        "one read per carried id"
    );
}

async fn index_skips_dead_entries(h: Harness) {
    let store = h.store();
    store.create("u1", EMAIL).await.unwrap();
    h.advance(31 * DAY);
    // An entry past its cap that KV has not dropped yet (no KV expiration at all).
    let dead = SessionIndexEntry {
        created_at: NOW,
        absolute_expires_at: NOW + DAY_MS,
        handle: None,
        device: None,
    };
    let exp = Some(dead.absolute_expires_at);
    let header = Header {
        codec: Codec::Json,
        type_name: "session-index".into(),
        version: 1,
        expires_at: exp,
        key_id: None,
    };
    let key = format!("{}{}", store.index_prefix_of("u1"), some_id('9').hashed());
    let bytes = envelope::encode(Codec::Json, "session-index", 1, exp, &dead).unwrap();
    h.kv()
        .put(&key, &bytes, None, Some(header.to_metadata()))
        .await
        .unwrap();
    let (fresh, _) = store.create("u1", EMAIL).await.unwrap();
    let before = counts(&store);
    let r = store.delete_all_for_user("u1").await.unwrap();
    assert_eq!((r.deleted, r.complete), (1, true));
    // The dead entry cost nothing: one list, two deletes.
    assert_eq!(mutations(&store, before), 2);
    assert_eq!(store.get(&fresh).await.unwrap(), None);
}

// ---------------------------------------------------------------------------------------------
// Bad stored values: no session, never overwritten

async fn unreadable_and_future_values_survive(h: Harness) {
    let store = h.store();
    let exp = Some(NOW + DAY_MS);
    let good = json!({
        "userId": "u1", "email": EMAIL, "createdAt": NOW, "expiresAt": NOW + DAY_MS,
        "absoluteExpiresAt": NOW + 2 * DAY_MS, "refreshedAt": NOW - 2 * DAY_MS, "roles": []
    });
    let mut bad_email = good.clone();
    bad_email["email"] = json!("hunter2-not-an-email");
    let cases: Vec<(char, Vec<u8>, &str)> = vec![
        ('1', b"\x00\xffgarbage".to_vec(), "unreadable"),
        (
            '2',
            b"{\"kv\":1,\"type\":\"session\",\"v\":3,\"exp\":null,\"data\":{".to_vec(),
            "unreadable",
        ),
        (
            '3',
            envelope::encode(Codec::Json, "session", 3, exp, &bad_email).unwrap(),
            "unreadable",
        ),
        (
            '4',
            envelope::encode(Codec::Json, "cache-entry", 1, exp, &good).unwrap(),
            "unreadable",
        ),
        (
            '5',
            envelope::encode(Codec::Json, "session", 4, exp, &good).unwrap(),
            "future_version",
        ),
        (
            '6',
            envelope::encode(Codec::Postcard, "session", 9, exp, &1u8).unwrap(),
            "future_version",
        ),
    ];
    let gate = plain_gate(store.clone());
    for (c, bytes, code) in cases {
        let id = some_id(c);
        let key = store.key_of(&id);
        h.raw.plant(&key, bytes.clone());
        let before = counts(&store);

        let lookup = store.lookup(&id).await.unwrap();
        assert_eq!(lookup.reason().map(NoSession::code), Some(code), "case {c}");
        let shown = lookup.reason().unwrap().to_string();
        assert!(
            !shown.contains("hunter2") && !shown.contains(id.expose()),
            "{shown}"
        );
        assert!(
            matches!(store.refresh(&id).await.unwrap(), Refresh::NoSession(_)),
            "case {c}"
        );
        assert!(
            matches!(store.rotate(&id).await.unwrap(), Lookup::NoSession(_)),
            "case {c}"
        );
        assert!(matches!(
            store.update(&id, |s| s.roles.clear()).await.unwrap(),
            Lookup::NoSession(_)
        ));

        let cookie = cookie_of(&id);
        let Admission::Denied(denied) = gate.check(&page(Some(&cookie))).await else {
            panic!("case {c} admitted");
        };
        assert_eq!(denied.response.status, 302, "case {c}");
        // A session newer code can read keeps its cookie (rolling deploys); a dead one is cleared.
        let clears = denied.response.header("Set-Cookie").is_some();
        assert_eq!(clears, code != "future_version", "case {c}");

        assert_eq!(mutations(&store, before), 0, "case {c} wrote");
        let stored = h
            .raw
            .dump()
            .into_iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v);
        assert_eq!(stored, Some(bytes), "case {c} was overwritten");
    }
}

async fn old_versions_are_served_and_upgraded_by_refresh(h: Harness) {
    let store = h.store();
    let id = some_id('7');
    let v1 = SessionRecordV1 {
        user_id: "u1".into(),
        email: EMAIL.into(),
        created_at: NOW - 3 * DAY_MS,
        expires_at: NOW + 4 * DAY_MS,
    };
    let bytes = envelope::encode(Codec::Json, "session", 1, Some(v1.expires_at), &v1).unwrap();
    h.raw.plant(&store.key_of(&id), bytes);
    let s = store.get(&id).await.unwrap().unwrap();
    assert_eq!(s.absolute_expires_at, NOW + 27 * DAY_MS);
    assert_eq!(s.refreshed_at, v1.created_at);
    let Refresh::Extended { expires_at } = store.refresh(&id).await.unwrap() else {
        panic!("4 of 7 days left: refresh is due");
    };
    assert_eq!(expires_at, NOW + 7 * DAY_MS);
    let raw = h
        .raw
        .dump()
        .into_iter()
        .find(|(k, _)| *k == store.key_of(&id))
        .unwrap()
        .1;
    assert_eq!(envelope::peek_header(&raw).unwrap().version, 3);
}

// ---------------------------------------------------------------------------------------------
// Gate: cookies, redirects, 401s

async fn bad_cookies_are_no_session_before_any_kv_call(h: Harness) {
    let hook_log = Arc::new(Mutex::new(Vec::<String>::new()));
    let log = hook_log.clone();
    let store = h.store().on_reject(Arc::new(move |r: &NoSession| {
        log.lock().unwrap().push(r.to_string());
    }));
    let gate = plain_gate(store);
    let NewSession { id, .. } = gate
        .login(None, SessionInit::new("u1", EMAIL))
        .await
        .unwrap();
    let live = id.expose().to_string();
    let NewSession { id: other, .. } = gate
        .login(None, SessionInit::new("u2", EMAIL))
        .await
        .unwrap();

    let cases: Vec<(String, &str)> = vec![
        (String::new(), "no_cookie"),
        (";;; ;".into(), "no_cookie"),
        ("session=".into(), "malformed_id"),
        (
            format!("session={}", "a".repeat(10 * 1024 - 8)),
            "header_too_large",
        ),
        (format!("session={}", &live[..63]), "malformed_id"),
        (format!("session={live}0"), "malformed_id"),
        (format!("session={}", live.to_uppercase()), "malformed_id"),
        (format!("session=\"{live}\""), "malformed_id"),
        (format!("session={}", "zz".repeat(32)), "malformed_id"),
        (format!("session={live}%00"), "malformed_id"),
        (format!("xsession={live}"), "no_cookie"),
        (format!("SessionRecord={live}"), "no_cookie"),
        (format!("session_={live}"), "no_cookie"),
        (format!("a=1,session={live}"), "no_cookie"),
        (
            format!("session={live}; session={}", other.expose()),
            "ambiguous_cookie",
        ),
        (
            format!("pad={}; session={live}", "x".repeat(20 * 1024)),
            "header_too_large",
        ),
        ("session=\u{0}\u{7f}é; =; ==".into(), "malformed_id"),
    ];
    let before = counts(gate.store());
    for (header, code) in &cases {
        for req in [page(Some(header)), api(Some(header))] {
            let Admission::Denied(denied) = gate.check(&req).await else {
                panic!("admitted {code}");
            };
            let DenyCause::NoSession(reason) = &denied.cause else {
                panic!("{:?}", denied.cause);
            };
            assert_eq!(reason.code(), *code, "{}", &header[..header.len().min(60)]);
            let expected_status = if req.accept == Some("application/json") {
                401
            } else {
                302
            };
            assert_eq!(denied.response.status, expected_status);
        }
    }
    assert_eq!(counts(gate.store()), before, "a bad cookie reached KV");
    let logged = hook_log.lock().unwrap().clone();
    assert_eq!(logged.len(), cases.len() * 2);
    for line in &logged {
        assert!(
            !line.contains(&live) && !line.contains(other.expose()),
            "{line}"
        );
    }

    // The valid cookie among the noise still works; duplicates of one value are fine.
    for header in [
        cookie_of(&id),
        format!("session={live}; session={live}"),
        format!("session=junk; session={live}"),
    ] {
        assert!(
            matches!(
                gate.check(&page(Some(&header))).await,
                Admission::Admitted(_)
            ),
            "{header}"
        );
    }
}

async fn pages_redirect_apis_get_401(h: Harness) {
    let gate = plain_gate(h.store()).with_api_prefix("/api");
    let deny = |req| denied_response(&gate, req);

    let r = deny(page(None)).await;
    assert_eq!(r.status, 302);
    assert_eq!(
        r.header("Location"),
        Some("/login?next=/account%3Ftab%3Dkeys")
    );
    assert_eq!(r.header("Cache-Control"), Some("no-store"));
    assert_eq!(r.header("Set-Cookie"), None, "no cookie sent, none cleared");

    let r = deny(api(None)).await;
    assert_eq!(r.status, 401);
    assert_eq!(r.header("Content-Type"), Some("application/json"));
    let body: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(body, json!({"error": "unauthenticated", "login": "/login"}));

    let with = request;
    let html = Some("text/html");
    assert_eq!(deny(with("GET", "/api", html)).await.status, 401);
    assert_eq!(deny(with("GET", "/api/v1/me", html)).await.status, 401);
    assert_eq!(deny(with("GET", "/apiary", html)).await.status, 302);
    assert_eq!(
        deny(with("GET", "/x", Some("application/problem+json")))
            .await
            .status,
        401
    );
    assert_eq!(
        deny(with("GET", "/x", Some("application/json;q=0, text/plain")))
            .await
            .status,
        302
    );
    assert_eq!(
        deny(with("GET", "/x", Some("text/html, application/json")))
            .await
            .status,
        302
    );
    assert_eq!(deny(with("GET", "/x", Some("*/*"))).await.status, 302);
    assert_eq!(deny(with("GET", "/x", None)).await.status, 302);

    // Return-to: only same-site paths of GET/HEAD, always encoded.
    let loc = |r: PlainResponse| r.header("Location").unwrap().to_string();
    assert_eq!(loc(deny(with("POST", "/account", html)).await), "/login");
    assert_eq!(
        loc(deny(with("GET", "//evil.example", html)).await),
        "/login"
    );
    assert_eq!(
        loc(deny(with("GET", "/\\evil.example", html)).await),
        "/login"
    );
    assert_eq!(
        loc(deny(with("GET", "/a b\r\nX: y", html)).await),
        "/login?next=/a%20b%0D%0AX%3A%20y"
    );
    let long = format!("/{}", "a".repeat(2000));
    assert_eq!(loc(deny(with("GET", &long, html)).await), "/login");

    let custom = plain_gate(h.store())
        .with_login_path("https://auth.example.com/login?app=1")
        .with_return_to(None);
    let r = denied_response(&custom, page(None)).await;
    assert_eq!(
        r.header("Location"),
        Some("https://auth.example.com/login?app=1")
    );
    let custom = custom.with_return_to(Some("to"));
    let r = denied_response(&custom, page(None)).await;
    assert_eq!(
        r.header("Location"),
        Some("https://auth.example.com/login?app=1&to=/account%3Ftab%3Dkeys")
    );
}

async fn gate_admits_refreshes_in_background_and_extends_the_cookie(h: Harness) {
    let gate = plain_gate(h.store());
    let bg = Deferred::new();
    let NewSession {
        id,
        session,
        set_cookie,
    } = gate
        .login(None, SessionInit::new("u1", EMAIL))
        .await
        .unwrap();
    assert!(
        set_cookie.starts_with(&format!("session={}; Max-Age=604800; ", id.expose())),
        "{set_cookie}"
    );
    let cookie = cookie_of(&id);

    let Admission::Admitted(a) = gate.check(&page(Some(&cookie))).await else {
        panic!()
    };
    let ticket = a.ticket();
    assert_eq!(
        (a.session, a.set_cookie, a.refresh),
        (session, None, RefreshPlan::NotDue)
    );
    assert_eq!(gate.finish(ticket, [], &bg), None);
    assert_eq!(bg.pending(), 0);

    h.advance(DAY + HOUR);
    let before = counts(gate.store());
    let Admission::Admitted(a) = gate.check(&page(Some(&cookie))).await else {
        panic!()
    };
    let now = gate.store().now_ms();
    assert_eq!(
        a.refresh,
        RefreshPlan::Due {
            expires_at: now + 7 * DAY_MS
        }
    );
    assert!(a.set_cookie.as_ref().unwrap().contains("Max-Age=604800;"));
    // Nothing written on the request path: after the handler the write waits in the
    // background queue, and the extended cookie goes on the response.
    assert_eq!(mutations(gate.store(), before), 0);
    let extra = gate.finish(a.ticket(), ["theme=dark; Path=/"], &bg);
    assert_eq!(extra, a.set_cookie);
    assert_eq!(bg.pending(), 1);
    bg.run_all().await;
    assert_eq!(mutations(gate.store(), before), 1);
    assert_eq!(
        gate.store().get(&id).await.unwrap().unwrap().expires_at,
        now + 7 * DAY_MS
    );
}

async fn background_refresh_does_not_resurrect_a_logged_out_session(h: Harness) {
    let gate = plain_gate(h.store());
    let bg = Deferred::new();
    let NewSession { id, .. } = gate
        .login(None, SessionInit::new("u1", EMAIL))
        .await
        .unwrap();
    let cookie = cookie_of(&id);
    h.advance(2 * DAY);
    let Admission::Admitted(a) = gate.check(&page(Some(&cookie))).await else {
        panic!()
    };
    assert!(gate.finish(a.ticket(), [], &bg).is_some());
    assert_eq!(bg.pending(), 1);
    // Another request logs out (or rotates) before the background refresh runs.
    let clear = gate.logout(Some(&cookie)).await.unwrap();
    assert!(clear.starts_with("session=; Max-Age=0;"), "{clear}");
    bg.run_all().await;
    assert_eq!(gate.store().get(&id).await.unwrap(), None);
    assert!(h.keys().is_empty(), "{:?}", h.keys());
}

async fn a_handler_that_rotates_or_logs_out_is_not_undone(h: Harness) {
    let gate = plain_gate(h.store());
    let bg = Deferred::new();
    let NewSession { id, .. } = gate
        .login(None, SessionInit::new("u1", EMAIL))
        .await
        .unwrap();
    let cookie = cookie_of(&id);
    h.advance(2 * DAY);

    // Refresh due, and the handler rotates: the old id's refresh must neither run (it would
    // write the old session back) nor override the handler's new cookie.
    let Admission::Admitted(a) = gate.check(&page(Some(&cookie))).await else {
        panic!()
    };
    assert!(matches!(a.refresh, RefreshPlan::Due { .. }));
    let ticket = a.ticket();
    let NewSession {
        id: new_id,
        set_cookie: new_cookie,
        ..
    } = gate.rotate(&a.id).await.unwrap().found().unwrap();
    assert_eq!(gate.finish(ticket, [new_cookie.as_str()], &bg), None);
    assert_eq!(bg.pending(), 0);
    assert_eq!(gate.store().get(&id).await.unwrap(), None);

    // Same when the handler logs out.
    h.advance(2 * DAY);
    let cookie = cookie_of(&new_id);
    let Admission::Admitted(a) = gate.check(&page(Some(&cookie))).await else {
        panic!()
    };
    let ticket = a.ticket();
    let clear = gate.logout(Some(&cookie)).await.unwrap();
    assert_eq!(gate.finish(ticket, ["a=1", clear.as_str()], &bg), None);
    assert_eq!(bg.pending(), 0);
    assert!(h.keys().is_empty(), "{:?}", h.keys());

    // Without a session, a dead cookie is cleared unless the handler logged in.
    let reason = NoSession::NotFound;
    assert_eq!(
        gate.finish_without_session(&reason, []),
        Some(gate.cookie().clear_cookie())
    );
    let NewSession {
        set_cookie: login_cookie,
        ..
    } = gate
        .login(None, SessionInit::new("u1", EMAIL))
        .await
        .unwrap();
    assert_eq!(
        gate.finish_without_session(&reason, [login_cookie.as_str()]),
        None
    );
    assert_eq!(gate.finish_without_session(&NoSession::NoCookie, []), None);
}

async fn login_replaces_the_session_the_request_carries(h: Harness) {
    let gate = plain_gate(h.store());
    let NewSession { id: old, .. } = gate
        .login(None, SessionInit::new("u1", EMAIL))
        .await
        .unwrap();
    h.advance(SECOND);
    let NewSession {
        id: new,
        session: s,
        ..
    } = gate
        .login(
            Some(&cookie_of(&old)),
            SessionInit::new("u1", EMAIL).with_roles(["admin"]),
        )
        .await
        .unwrap();
    assert_ne!(old, new);
    assert_eq!(s.roles, vec!["admin".to_string()]);
    assert_eq!(gate.store().get(&old).await.unwrap(), None);
    assert_eq!(h.keys().len(), 2, "one session and its index entry");
    // Rotation through the gate hands back the new cookie.
    h.advance(SECOND);
    let NewSession {
        id: rotated,
        set_cookie,
        ..
    } = gate.rotate(&new).await.unwrap().found().unwrap();
    assert!(set_cookie.starts_with(&format!("session={};", rotated.expose())));
}

async fn host_prefix_is_the_default(h: Harness) {
    let gate = SessionGate::new(h.store());
    let NewSession { id, set_cookie, .. } = gate
        .login(None, SessionInit::new("u1", EMAIL))
        .await
        .unwrap();
    assert!(set_cookie.starts_with("__Host-session="));
    assert!(
        set_cookie.ends_with("; Path=/; HttpOnly; Secure; SameSite=Lax"),
        "{set_cookie}"
    );
    let plain = format!("session={}", id.expose());
    assert!(matches!(
        gate.check(&page(Some(&plain))).await,
        Admission::Denied(_)
    ));
    let prefixed = format!("__Host-session={}", id.expose());
    assert!(matches!(
        gate.check(&page(Some(&prefixed))).await,
        Admission::Admitted(_)
    ));
    assert!(gate
        .logout(Some(&prefixed))
        .await
        .unwrap()
        .starts_with("__Host-session=; Max-Age=0;"));
}

async fn kv_failure_is_503_not_a_login_redirect(h: Harness) {
    struct Down;
    #[async_trait::async_trait]
    impl KvBackend for Down {
        async fn get(&self, _: &str) -> Result<Option<Stored>> {
            Err(Error::Backend {
                op: "get",
                message: "unavailable".into(),
                retryable: true,
            })
        }
        async fn put(&self, _: &str, _: &[u8], _: &WriteOptions) -> Result<()> {
            unreachable!()
        }
        async fn delete(&self, _: &str) -> Result<()> {
            unreachable!()
        }
        async fn list(&self, _: &str, _: Option<&str>, _: u32) -> Result<ListPage> {
            unreachable!()
        }
    }
    let kv = Kv::new(Down).with_clock(Arc::new(h.clock.clone()));
    let gate = plain_gate(Sessions::<SessionRecord>::new(kv));
    let cookie = cookie_of(&some_id('d'));
    for (req, body) in [(page(Some(&cookie)), "Service"), (api(Some(&cookie)), "{")] {
        let Admission::Denied(d) = gate.check(&req).await else {
            panic!()
        };
        assert!(matches!(
            d.cause,
            DenyCause::Unavailable(Error::Backend { .. })
        ));
        assert_eq!(d.response.status, 503);
        assert!(d.response.body.starts_with(body));
        assert_eq!(
            d.response.header("Set-Cookie"),
            None,
            "an outage must not log users out"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// A user-defined session type with its own migrations

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct CartV1 {
    user_id: String,
    skus: Vec<String>,
    created_at: u64,
    expires_at: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct CartItem {
    sku: String,
    qty: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Cart {
    user_id: String,
    items: Vec<CartItem>,
    created_at: u64,
    expires_at: u64,
    absolute_expires_at: u64,
    refreshed_at: u64,
}

impl From<CartV1> for Cart {
    fn from(v1: CartV1) -> Self {
        Cart {
            user_id: v1.user_id,
            items: v1
                .skus
                .into_iter()
                .map(|sku| CartItem { sku, qty: 1 })
                .collect(),
            created_at: v1.created_at,
            expires_at: v1.expires_at,
            absolute_expires_at: v1.created_at + 2 * DAY_MS,
            refreshed_at: v1.created_at,
        }
    }
}

kv_envelope::versioned! { name: "cart-session", versions: [CartV1, Cart] }

impl SessionData for Cart {
    type Init = String;
    fn user_id(&self) -> &str {
        &self.user_id
    }
    fn times(&self) -> SessionTimes {
        SessionTimes {
            created_at: self.created_at,
            expires_at: self.expires_at,
            absolute_expires_at: self.absolute_expires_at,
            refreshed_at: self.refreshed_at,
        }
    }
    fn set_times(&mut self, t: SessionTimes) {
        self.created_at = t.created_at;
        self.expires_at = t.expires_at;
        self.absolute_expires_at = t.absolute_expires_at;
        self.refreshed_at = t.refreshed_at;
    }
    fn from_init(user_id: String, t: SessionTimes) -> Self {
        let mut cart = Cart {
            user_id,
            items: Vec::new(),
            created_at: 0,
            expires_at: 0,
            absolute_expires_at: 0,
            refreshed_at: 0,
        };
        cart.set_times(t);
        cart
    }
}

async fn custom_session_type_with_its_own_migrations(h: Harness) {
    let store = Sessions::<Cart>::typed(h.kv())
        .with_prefix("cart")
        .with_id_source(h.ids.clone());
    let (id, cart) = store.create_with("u1".to_string()).await.unwrap();
    assert_eq!(cart.expires_at, NOW + 7 * DAY_MS);
    h.advance(SECOND);
    let cart = store
        .update(&id, |c| {
            c.items.push(CartItem {
                sku: "A-1".into(),
                qty: 2,
            })
        })
        .await
        .unwrap()
        .found()
        .unwrap();
    assert_eq!(store.get(&id).await.unwrap(), Some(cart));

    // A v1 cart written by older code is migrated on read.
    let old = some_id('c');
    let v1 = CartV1 {
        user_id: "u2".into(),
        skus: vec!["B-2".into()],
        created_at: NOW - DAY_MS,
        expires_at: NOW + DAY_MS,
    };
    let bytes = envelope::encode(Codec::Json, "cart-session", 1, Some(v1.expires_at), &v1).unwrap();
    h.raw.plant(&store.key_of(&old), bytes);
    let migrated = store.get(&old).await.unwrap().unwrap();
    assert_eq!(
        migrated.items,
        vec![CartItem {
            sku: "B-2".into(),
            qty: 1
        }]
    );
    assert_eq!(migrated.absolute_expires_at, NOW + DAY_MS);
    // A shipped-`SessionRecord` store on the same keys would see another type: no session.
    let sessions = Sessions::<SessionRecord>::new(h.kv()).with_prefix("cart");
    assert_eq!(
        sessions
            .lookup(&id)
            .await
            .unwrap()
            .reason()
            .map(NoSession::code),
        Some("unreadable")
    );
}

// ---------------------------------------------------------------------------------------------
// Several KV locations: what eventual consistency does to sessions, and its bounds

/// A KV-like simulator with three locations (60 s propagation, negative caching) and one
/// store per location, sharing the id source.
fn three_locations(seed: u64) -> (ManualClock, SimKv, Vec<Sessions>) {
    let clock = ManualClock::new(NOW);
    let sim = SimKv::new(seed, SimConfig::default(), Arc::new(clock.clone()));
    let ids = Arc::new(CountingIds::new(0x5a));
    let stores = (0..3)
        .map(|i| Sessions::new(sim.kv(i)).with_id_source(ids.clone()))
        .collect();
    (clock, sim, stores)
}

/// Past the propagation window every location has seen every write.
const PROPAGATED: Duration = Duration::from_secs(61);

#[tokio::test]
async fn sim_write_budget_across_locations() {
    // Requests of one session spread over three locations: a location that has not yet seen
    // another's refresh may refresh too, so the bound is one write per location per refresh
    // window (KV serves a user from its nearest location, so in practice one).
    let (clock, sim, stores) = three_locations(11);
    let gates: Vec<SessionGate> = stores.into_iter().map(plain_gate).collect();
    let bg = Deferred::new();
    let NewSession { id, .. } = gates[0]
        .login(None, SessionInit::new("u1", EMAIL))
        .await
        .unwrap();
    let cookie = cookie_of(&id);
    clock.advance(DAY - HOUR / 2);
    let before = sim.writes_accepted();
    for n in 0..1000 {
        let gate = &gates[n % 3];
        match gate.check(&page(Some(&cookie))).await {
            Admission::Admitted(a) => {
                gate.finish(a.ticket(), [], &bg);
            }
            Admission::Denied(d) => panic!("request {n} denied: {:?}", d.cause),
        }
        bg.run_all().await;
        clock.advance(Duration::from_millis(3600));
    }
    let writes = sim.writes_accepted() - before;
    assert!((1..=3).contains(&writes), "{writes} writes");
    assert!(
        sim.stats().stale_reads > 0,
        "the run never saw a stale read"
    );
}

#[tokio::test]
async fn sim_concurrent_refreshes_one_wins_the_other_is_a_harmless_429() {
    let (clock, sim, stores) = three_locations(5);
    let (id, created) = stores[0].create("u1", EMAIL).await.unwrap();
    clock.advance(2 * DAY);
    let first = stores[0].refresh(&id).await.unwrap();
    let Refresh::Extended { expires_at } = first else {
        panic!("{first:?}")
    };
    // Location 1 has not seen that write yet, decides the same, and KV refuses the write.
    assert_eq!(stores[1].refresh(&id).await.unwrap(), Refresh::RateLimited);
    assert_eq!(sim.stats().rate_limited, 1);
    // Nothing lost: location 1 still serves the (valid) session it sees.
    let seen = stores[1].get(&id).await.unwrap().unwrap();
    assert!(seen.expires_at == created.expires_at || seen.expires_at == expires_at);
    clock.advance(PROPAGATED);
    for store in &stores {
        assert_eq!(
            store.get(&id).await.unwrap().unwrap().expires_at,
            expires_at
        );
    }
}

#[tokio::test]
async fn sim_rotation_and_logout_reach_every_location_within_the_window() {
    let (clock, sim, stores) = three_locations(3);
    let (id, _) = stores[0].create("u1", EMAIL).await.unwrap();
    // Right after login, another location may not know the session yet: no session, no error.
    assert_eq!(
        stores[1].lookup(&id).await.unwrap(),
        Lookup::NoSession(NoSession::NotFound)
    );
    clock.advance(PROPAGATED);
    assert!(stores[1].get(&id).await.unwrap().is_some());

    let (new_id, _) = stores[0].rotate(&id).await.unwrap().found().unwrap();
    assert_eq!(
        stores[0].get(&id).await.unwrap(),
        None,
        "dead at once where it rotated"
    );
    let stale_before = sim.stats().stale_reads;
    let old_elsewhere = stores[2].get(&id).await.unwrap();
    assert!(old_elsewhere.is_some() && sim.stats().stale_reads > stale_before);
    clock.advance(PROPAGATED);
    for store in &stores {
        assert_eq!(store.get(&id).await.unwrap(), None);
        assert!(store.get(&new_id).await.unwrap().is_some());
    }

    stores[1].delete(&new_id).await.unwrap();
    assert_eq!(stores[1].get(&new_id).await.unwrap(), None);
    clock.advance(PROPAGATED);
    for store in &stores {
        assert_eq!(store.get(&new_id).await.unwrap(), None);
    }
}

#[tokio::test]
async fn sim_log_out_everywhere_catches_sessions_listed_late_on_a_second_call() {
    let (clock, _sim, stores) = three_locations(9);
    let (old, _) = stores[2].create("u1", EMAIL).await.unwrap();
    clock.advance(PROPAGATED);
    // Two logins at another location a moment before "log out everywhere".
    let (a, _) = stores[1].create("u1", EMAIL).await.unwrap();
    let (b, _) = stores[1].create("u1", EMAIL).await.unwrap();
    let first = stores[0].delete_all_for_user("u1").await.unwrap();
    assert!(first.complete);
    assert!(first.deleted < 3, "the list at location 0 was not stale");
    // As documented: call again once the list has caught up.
    clock.advance(PROPAGATED);
    let second = stores[0].delete_all_for_user("u1").await.unwrap();
    assert_eq!(first.deleted + second.deleted, 3);
    clock.advance(PROPAGATED);
    for store in &stores {
        for id in [&old, &a, &b] {
            assert_eq!(store.get(id).await.unwrap(), None);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Hardening (issue 12): each test failed before its fix.

/// A backend that runs `hook` once, right before the first `put` to a key starting with
/// `prefix` reaches the inner backend: another request's deletes landing between a refresh's
/// read and its write (the interleaving a single isolate produced on workerd).
struct BeforePut {
    inner: Arc<dyn KvBackend>,
    prefix: String,
    hook: Mutex<Option<RawHook>>,
}

/// What [`BeforePut`] runs, with the inner backend.
type RawHook = Box<dyn FnOnce(&dyn KvBackend) + Send>;

#[async_trait::async_trait]
impl KvBackend for BeforePut {
    async fn get(&self, key: &str) -> Result<Option<Stored>> {
        self.inner.get(key).await
    }
    async fn put(&self, key: &str, value: &[u8], options: &WriteOptions) -> Result<()> {
        if key.starts_with(&self.prefix) {
            let hook = self.hook.lock().unwrap().take();
            if let Some(hook) = hook {
                hook(&*self.inner);
            }
        }
        self.inner.put(key, value, options).await
    }
    async fn delete(&self, key: &str) -> Result<()> {
        self.inner.delete(key).await
    }
    async fn list(&self, prefix: &str, cursor: Option<&str>, limit: u32) -> Result<ListPage> {
        self.inner.list(prefix, cursor, limit).await
    }
}

/// Delete raw keys on a backend whose futures are ready at once (memory, simulator).
fn delete_now(kv: &dyn KvBackend, keys: &[String]) {
    for key in keys {
        futures::FutureExt::now_or_never(kv.delete(key))
            .expect("ready at once")
            .unwrap();
    }
}

fn index_key_of(store: &Sessions, user: &str, id: &SessionId) -> String {
    format!("{}{}", store.index_prefix_of(user), id.hashed())
}

/// Regression (issue 12.3): `GET /me` with a refresh due, racing `POST /logout` (or a
/// rotation) in one isolate, brought the logged-out id back half a second later.
async fn a_refresh_racing_a_logout_or_rotation_does_not_resurrect(h: Harness) {
    for race in ["logout", "rotation"] {
        let setup = h.store();
        let (id, _) = setup.create("u1", EMAIL).await.unwrap();
        h.advance(2 * DAY); // refresh due
        let keys = vec![index_key_of(&setup, "u1", &id), setup.key_of(&id)];
        // What logout (and the end of a rotation) does, in its order: entry, then session.
        let racing = BeforePut {
            inner: h.backend.clone(),
            prefix: setup.key_of(&id),
            hook: Mutex::new(Some(Box::new(move |kv: &dyn KvBackend| {
                delete_now(kv, &keys);
            }))),
        };
        let store: Sessions = h.sealing(
            Sessions::new(Kv::new(racing).with_clock(Arc::new(h.clock.clone())))
                .with_id_source(h.ids.clone()),
        );
        let outcome = store.refresh(&id).await.unwrap();
        assert_eq!(
            outcome,
            Refresh::NoSession(NoSession::NotFound),
            "{race}: the refresh must notice it wrote over a delete"
        );
        assert_eq!(setup.get(&id).await.unwrap(), None, "{race}: resurrected");
        assert!(
            !h.keys().contains(&setup.key_of(&id)),
            "{race}: the session key is back in KV"
        );
    }
}

/// A session stored before this store kept an index (the reference pattern's v1 shape) has no
/// index entry: its refresh writes one instead of treating it as logged out, so "log out
/// everywhere" covers it from then on.
async fn a_refresh_indexes_a_legacy_session(h: Harness) {
    let store = h.store();
    let id = some_id('7');
    let v1 = json!({ "userId": "u1", "email": EMAIL, "createdAt": NOW, "expiresAt": NOW + DAY_MS });
    let exp = Some(NOW + DAY_MS);
    h.raw.plant(
        &store.key_of(&id),
        envelope::encode(Codec::Json, "session", 1, exp, &v1).unwrap(),
    );
    h.advance(HOUR);
    assert!(matches!(
        store.refresh(&id).await.unwrap(),
        Refresh::Extended { .. }
    ));
    assert!(h.keys().contains(&index_key_of(&store, "u1", &id)));
    let out = store.delete_all_for_user("u1").await.unwrap();
    assert_eq!(out.deleted, 1);
    assert_eq!(store.get(&id).await.unwrap(), None);
}

/// Regression (issue 12.1): `Cookie: session=<victim>; session=<attacker>` got a clearing
/// `Set-Cookie` without `Domain`, which deletes only the host-only (victim's) cookie and leaves
/// a tossed domain cookie as the next request's session.
async fn an_ambiguous_cookie_clears_nothing(h: Harness) {
    let gate = plain_gate(h.store());
    let NewSession { id: a, .. } = gate
        .login(None, SessionInit::new("u1", EMAIL))
        .await
        .unwrap();
    let NewSession { id: b, .. } = gate
        .login(None, SessionInit::new("u2", EMAIL))
        .await
        .unwrap();
    let header = format!("session={}; session={}", a.expose(), b.expose());
    for req in [page(Some(&header)), api(Some(&header))] {
        let response = denied_response(&gate, req).await;
        assert_eq!(response.header("set-cookie"), None, "{response:?}");
    }
    let reason = NoSession::AmbiguousCookie { count: 2 };
    assert!(!reason.clears_cookie());
    assert_eq!(gate.finish_without_session(&reason, []), None);
    // Dead and malformed cookies are still cleared.
    assert!(NoSession::NotFound.clears_cookie());
    assert!(NoSession::MalformedId { len: 3 }.clears_cookie());
}

/// Regression (issue 12.2): logout and login with two well-formed session cookies deleted
/// nothing on the server (the ambiguous id resolved to "no session").
async fn logout_and_login_delete_every_carried_id(h: Harness) {
    let gate = plain_gate(h.store());
    for action in ["logout", "login"] {
        let NewSession { id: a, .. } = gate
            .login(None, SessionInit::new("u1", EMAIL))
            .await
            .unwrap();
        let NewSession { id: b, .. } = gate
            .login(None, SessionInit::new("u2", EMAIL))
            .await
            .unwrap();
        let header = format!("session={}; theme=dark; session={}", a.expose(), b.expose());
        let new = if action == "logout" {
            gate.logout(Some(&header)).await.unwrap();
            None
        } else {
            Some(
                gate.login(Some(&header), SessionInit::new("u3", EMAIL))
                    .await
                    .unwrap()
                    .id,
            )
        };
        assert_eq!(
            gate.store().get(&a).await.unwrap(),
            None,
            "{action}: first id"
        );
        assert_eq!(
            gate.store().get(&b).await.unwrap(),
            None,
            "{action}: second id"
        );
        let expected_keys = if new.is_some() { 2 } else { 0 };
        assert_eq!(h.keys().len(), expected_keys, "{action}: {:?}", h.keys());
        if let Some(new) = new {
            gate.logout(Some(&cookie_of(&new))).await.unwrap();
        }
    }
}

fn planted_v3(h: &Harness, store: &Sessions, c: char, times: [u64; 4]) -> SessionId {
    let id = some_id(c);
    let [created, expires, absolute, refreshed] = times;
    let value = json!({
        "userId": "u1", "email": EMAIL, "createdAt": created, "expiresAt": expires,
        "absoluteExpiresAt": absolute, "refreshedAt": refreshed, "roles": []
    });
    let bytes = envelope::encode(Codec::Json, "session", 3, Some(expires), &value).unwrap();
    h.raw.plant(&store.key_of(&id), bytes);
    let entry = json!({ "createdAt": created, "absoluteExpiresAt": absolute });
    let entry_bytes =
        envelope::encode(Codec::Json, "session-index", 1, Some(expires), &entry).unwrap();
    h.raw.plant(&index_key_of(store, "u1", &id), entry_bytes);
    id
}

/// Regression (issue 12.4): planted times were trusted: `absoluteExpiresAt = u64::MAX` was
/// served, and rotating it answered 503 after deleting the old key; ten years out was kept by
/// rotation; a future `createdAt` and `expiresAt > absoluteExpiresAt` were accepted.
async fn stored_times_are_held_to_the_store_invariants(h: Harness) {
    let store = h.store();
    let cap = NOW + 30 * DAY_MS;
    let far = NOW + 3650 * DAY_MS;
    for (c, absolute) in [('a', u64::MAX), ('b', far)] {
        let id = planted_v3(&h, &store, c, [NOW, NOW + DAY_MS, absolute, NOW]);
        let s = store.get(&id).await.unwrap().expect("served, clamped");
        assert_eq!(s.absolute_expires_at, cap, "absolute {absolute}");
        let (new, rotated) = store.rotate(&id).await.unwrap().found().expect("rotated");
        assert_eq!(rotated.absolute_expires_at, cap);
        assert_eq!(store.get(&id).await.unwrap(), None, "old id is gone");
        assert_eq!(store.get(&new).await.unwrap(), Some(rotated));
    }
    // The idle expiry never past the cap, nor past now + the idle timeout.
    let id = planted_v3(
        &h,
        &store,
        'c',
        [NOW, NOW + 400 * DAY_MS, NOW + 2 * DAY_MS, NOW],
    );
    assert_eq!(
        store.get(&id).await.unwrap().unwrap().expires_at,
        NOW + 2 * DAY_MS
    );
    let id = planted_v3(&h, &store, 'd', [NOW, NOW + 20 * DAY_MS, cap, NOW]);
    assert_eq!(
        store.get(&id).await.unwrap().unwrap().expires_at,
        NOW + 7 * DAY_MS
    );
    // Created or written in the future: impossible, refused (and left in KV).
    for (c, times, what) in [
        (
            'e',
            [NOW + DAY_MS, NOW + DAY_MS, cap, NOW],
            "created in the future",
        ),
        (
            'f',
            [NOW, NOW + DAY_MS, cap, NOW + DAY_MS],
            "written in the future",
        ),
    ] {
        let id = planted_v3(&h, &store, c, times);
        assert_eq!(
            store.lookup(&id).await.unwrap(),
            Lookup::NoSession(NoSession::InvalidTimes { what })
        );
        assert!(h.keys().contains(&store.key_of(&id)));
    }
    // A v1 value whose idle expiry is a year out migrates to `createdAt` + 30 days.
    let id = some_id('9');
    let v1 = json!({ "userId": "u1", "email": EMAIL, "createdAt": NOW, "expiresAt": NOW + 365 * DAY_MS });
    let exp = Some(NOW + 365 * DAY_MS);
    h.raw.plant(
        &store.key_of(&id),
        envelope::encode(Codec::Json, "session", 1, exp, &v1).unwrap(),
    );
    let s = store.get(&id).await.unwrap().unwrap();
    assert_eq!(
        (s.absolute_expires_at, s.expires_at),
        (cap, NOW + 7 * DAY_MS)
    );
}

/// Regression (issue 12.7): a planted 20 MiB session was served and rewritten whole by
/// rotation. Stored sessions over the cap are "no session" and left alone; writes over it
/// are refused before any I/O.
async fn oversized_sessions_are_refused(h: Harness) {
    let store = h.store().with_max_session_bytes(4096);
    let id = some_id('8');
    let value = json!({
        "userId": "u1", "email": EMAIL, "createdAt": NOW, "expiresAt": NOW + DAY_MS,
        "absoluteExpiresAt": NOW + 2 * DAY_MS, "refreshedAt": NOW,
        "roles": vec!["r".repeat(100); 60],
    });
    let bytes = envelope::encode(Codec::Json, "session", 3, Some(NOW + DAY_MS), &value).unwrap();
    let len = bytes.len();
    h.raw.plant(&store.key_of(&id), bytes.clone());
    let too_large = NoSession::TooLarge { len, max: 4096 };
    assert_eq!(
        store.lookup(&id).await.unwrap(),
        Lookup::NoSession(too_large.clone())
    );
    assert_eq!(
        store.rotate(&id).await.unwrap(),
        Lookup::NoSession(too_large.clone())
    );
    assert!(
        h.raw.dump().contains(&(store.key_of(&id), bytes)),
        "left as it was"
    );
    let (small, _) = store.create("u2", EMAIL).await.unwrap();
    let before = counts(&store);
    let grown = store
        .update(&small, |s| s.roles = vec!["r".repeat(100); 60])
        .await;
    assert!(
        matches!(
            grown,
            Err(Error::Limit(kv_envelope::LimitError::ValueTooLarge {
                max: 4096,
                ..
            }))
        ),
        "{grown:?}"
    );
    assert_eq!(mutations(&store, before), 0, "refused before any write");
    assert_eq!(
        store.get(&small).await.unwrap().unwrap().roles,
        Vec::<String>::new()
    );
    assert_eq!(
        kv_envelope::__internal::DEFAULT_MAX_SESSION_BYTES,
        64 * 1024
    );
}

/// A backend whose `n`-th put or delete (counted together) fails with a retryable error.
struct FailNth {
    inner: Arc<dyn KvBackend>,
    n: u64,
    seen: AtomicU64,
}

impl FailNth {
    fn strike(&self) -> Result<()> {
        if self.seen.fetch_add(1, Ordering::SeqCst) + 1 == self.n {
            return Err(Error::Backend {
                op: "injected",
                message: "injected".into(),
                retryable: true,
            });
        }
        Ok(())
    }
}

#[async_trait::async_trait]
impl KvBackend for FailNth {
    async fn get(&self, key: &str) -> Result<Option<Stored>> {
        self.inner.get(key).await
    }
    async fn put(&self, key: &str, value: &[u8], options: &WriteOptions) -> Result<()> {
        self.strike()?;
        self.inner.put(key, value, options).await
    }
    async fn delete(&self, key: &str) -> Result<()> {
        self.strike()?;
        self.inner.delete(key).await
    }
    async fn list(&self, prefix: &str, cursor: Option<&str>, limit: u32) -> Result<ListPage> {
        self.inner.list(prefix, cursor, limit).await
    }
}

/// Regression (issue 12.4): rotation deleted the old session first, so a failure of a later
/// step logged the user out. Now, whichever of its four mutations fails, the old id still
/// works when it returns `Err`.
async fn a_failed_rotation_keeps_the_old_session(h: Harness) {
    // Mutations: new entry, new session, old entry, old session.
    for n in 1..=4 {
        let h = (h.fresh)();
        let setup = h.store();
        let (id, _) = setup.create("u1", EMAIL).await.unwrap();
        h.advance(HOUR);
        let failing = FailNth {
            inner: h.backend.clone(),
            n,
            seen: AtomicU64::new(0),
        };
        let store: Sessions = h.sealing(
            Sessions::new(Kv::new(failing).with_clock(Arc::new(h.clock.clone())))
                .with_id_source(h.ids.clone()),
        );
        assert!(store.rotate(&id).await.is_err(), "mutation {n} failed");
        assert!(
            setup.get(&id).await.unwrap().is_some(),
            "mutation {n}: old id lost"
        );
        let out = setup.delete_all_for_user("u1").await.unwrap();
        assert!(out.deleted >= 1, "mutation {n}: old session not indexed");
    }
}

/// Regression (issue 12.4): an expiry past 2^53 ms reached the Workers runtime, which threw
/// ("can't be represented as a JavaScript number"); now a typed error before any I/O.
async fn an_unrepresentable_expiry_is_refused_before_io(h: Harness) {
    let kv = h.kv();
    let before = kv.counters().snapshot();
    for exp in [u64::MAX, kv_envelope::__internal::MAX_EXPIRES_AT_MS + 1] {
        let err = kv.put("k", b"v", Some(exp), None).await.unwrap_err();
        assert!(
            matches!(
                err,
                Error::Limit(kv_envelope::LimitError::ExpiryOutOfRange { .. })
            ),
            "{err:?}"
        );
    }
    assert_eq!(kv.counters().snapshot(), before, "no KV call was made");
    assert!(h.keys().is_empty());
}

// ---------------------------------------------------------------------------------------------

async fn devices_list_the_users_sessions_and_revoke_one(h: Harness) {
    let store = h.store();
    let firefox = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0";
    let (laptop, _) = store
        .create_on_device(SessionInit::new("u1", EMAIL), Some(&device_label(firefox)))
        .await
        .unwrap();
    h.advance(HOUR);
    let (phone, _) = store
        .create_on_device(SessionInit::new("u1", EMAIL), Some("  My\tphone\u{7} "))
        .await
        .unwrap();
    let (other_user, _) = store.create("u2", "bob@example.com").await.unwrap();

    let seen = store.list_devices(&laptop).await.unwrap().found().unwrap();
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert!(seen[0].current, "the asking session comes first: {seen:?}");
    assert_eq!(seen[0].label.as_deref(), Some("Firefox on Linux"));
    assert_eq!(seen[1].label.as_deref(), Some("My phone"), "cleaned label");
    assert_eq!(seen[0].created_at, NOW);
    assert_eq!(seen[1].created_at, NOW + 3_600_000);
    let phone_handle = seen[1].handle.clone();
    // A handle is neither the id nor the hash the session is stored under, nor part of them.
    for id in [&laptop, &phone] {
        for d in &seen {
            assert!(!id.expose().contains(d.handle.as_str()));
            assert!(!id.hashed().contains(d.handle.as_str()));
        }
    }
    assert!(h.keys().iter().all(|k| !k.contains(phone_handle.as_str())));
    // The same list from the other device, marked from there.
    let from_phone = store.list_devices(&phone).await.unwrap().found().unwrap();
    assert!(from_phone[0].current && from_phone[0].handle == phone_handle);

    // Another user cannot revoke it, nor can a made-up handle; the owner can.
    assert_eq!(
        store
            .revoke_device(&other_user, &phone_handle)
            .await
            .unwrap(),
        Lookup::Found(Revocation::NotFound)
    );
    let made_up = DeviceHandle::parse(&"0".repeat(32)).unwrap();
    assert_eq!(
        store.revoke_device(&laptop, &made_up).await.unwrap(),
        Lookup::Found(Revocation::NotFound)
    );
    assert!(store.get(&phone).await.unwrap().is_some());
    assert_eq!(
        store.revoke_device(&laptop, &phone_handle).await.unwrap(),
        Lookup::Found(Revocation::Revoked)
    );
    assert_eq!(
        store.get(&phone).await.unwrap(),
        None,
        "the revoked device is logged out"
    );
    let left = store.list_devices(&laptop).await.unwrap().found().unwrap();
    assert_eq!(left.len(), 1);
    // A revoked session asks nothing.
    assert_eq!(
        store.list_devices(&phone).await.unwrap(),
        Lookup::NoSession(NoSession::NotFound)
    );
    // Revoking one's own device is a logout.
    assert_eq!(
        store.revoke_device(&laptop, &left[0].handle).await.unwrap(),
        Lookup::Found(Revocation::RevokedCurrent)
    );
    assert_eq!(store.get(&laptop).await.unwrap(), None);
    assert!(store.get(&other_user).await.unwrap().is_some());
}

async fn a_device_keeps_its_handle_and_label_across_rotation(h: Harness) {
    let store = h.store();
    let (id, _) = store
        .create_on_device(SessionInit::new("u1", EMAIL), Some("Work laptop"))
        .await
        .unwrap();
    let before = store.list_devices(&id).await.unwrap().found().unwrap();
    h.advance(SECOND);
    let (rotated, _) = store.rotate(&id).await.unwrap().found().unwrap();
    let after = store.list_devices(&rotated).await.unwrap().found().unwrap();
    assert_eq!(after.len(), 1, "{after:?}");
    assert_eq!(after[0].handle, before[0].handle);
    assert_eq!(after[0].label.as_deref(), Some("Work laptop"));
    assert_eq!(after[0].created_at, before[0].created_at);
}

async fn a_device_from_before_devices_is_listed_and_revocable(h: Harness) {
    let store = h.store();
    let (mine, _) = store.create("u1", EMAIL).await.unwrap();
    let (legacy, _) = store.create("u1", EMAIL).await.unwrap();
    // Its index entry as version 1 wrote it: no handle, no label (a second later: KV's one
    // write per second per key).
    h.advance(SECOND);
    let v1 = SessionIndexEntryV1 {
        created_at: NOW,
        absolute_expires_at: NOW + 30 * DAY_MS,
    };
    let entries: TypedStore<SessionIndexEntry> =
        TypedStore::new(h.kv()).with_prefix("session-user");
    let entries = match &h.ring {
        Some(ring) => entries.with_sealing(ring.clone()),
        None => entries,
    };
    let id = format!("{}:{}", sha256_hex("u1"), legacy.hashed());
    kv_envelope::testing::plant_version(&entries, &id, 1, &v1, Some(30 * DAY))
        .await
        .unwrap();
    let seen = store.list_devices(&mine).await.unwrap().found().unwrap();
    assert_eq!(seen.len(), 2, "{seen:?}");
    let old = seen.iter().find(|d| !d.current).unwrap();
    assert_eq!(old.label, None);
    assert!(DeviceHandle::parse(old.handle.as_str()).is_some());
    assert!(!legacy.hashed().contains(old.handle.as_str()));
    let handle = old.handle.clone();
    // Listed the same way twice, and revocable by that handle.
    let again = store.list_devices(&mine).await.unwrap().found().unwrap();
    assert!(again.iter().any(|d| d.handle == handle));
    assert_eq!(
        store.revoke_device(&mine, &handle).await.unwrap(),
        Lookup::Found(Revocation::Revoked)
    );
    assert_eq!(store.get(&legacy).await.unwrap(), None);
}

macro_rules! suite {
    ($($test:ident),+ $(,)?) => {
        mod memory {
            $(
                #[tokio::test]
                async fn $test() {
                    super::$test(super::memory()).await
                }
            )+
        }
        mod sim_one_location {
            $(
                #[tokio::test]
                async fn $test() {
                    super::$test(super::sim_one_location()).await
                }
            )+
        }
        mod sealed_memory {
            $(
                #[tokio::test]
                async fn $test() {
                    super::$test(super::sealed_memory()).await
                }
            )+
        }
        mod sealed_sim {
            $(
                #[tokio::test]
                async fn $test() {
                    super::$test(super::sealed_sim()).await
                }
            )+
        }
    };
}

suite!(
    devices_list_the_users_sessions_and_revoke_one,
    a_device_keeps_its_handle_and_label_across_rotation,
    a_device_from_before_devices_is_listed_and_revocable,
    a_user_keeps_at_most_the_cap_the_oldest_go_first,
    logout_everywhere_completes_in_one_call_with_the_defaults,
    logout_everywhere_keeps_the_caller_until_the_rest_are_gone,
    logout_of_unknown_ids_costs_at_most_one_write,
    a_refresh_racing_a_logout_or_rotation_does_not_resurrect,
    a_refresh_indexes_a_legacy_session,
    an_ambiguous_cookie_clears_nothing,
    logout_and_login_delete_every_carried_id,
    stored_times_are_held_to_the_store_invariants,
    oversized_sessions_are_refused,
    a_failed_rotation_keeps_the_old_session,
    an_unrepresentable_expiry_is_refused_before_io,
    create_get_delete,
    ids_are_hashed_in_keys_and_values,
    configurable_prefix_and_lifetimes,
    postcard_codec,
    create_refuses_what_could_not_be_read_back,
    update_changes_data_and_slides,
    idle_expiry,
    sliding_refresh_stops_at_the_absolute_cap,
    expired_values_still_in_kv_are_never_served,
    write_budget_1000_requests_in_an_hour,
    at_most_one_write_per_second_per_key,
    rate_limited_refresh_loses_nothing,
    rotate_replaces_the_id,
    log_out_everywhere,
    log_out_everywhere_in_batches,
    index_skips_dead_entries,
    unreadable_and_future_values_survive,
    old_versions_are_served_and_upgraded_by_refresh,
    bad_cookies_are_no_session_before_any_kv_call,
    pages_redirect_apis_get_401,
    gate_admits_refreshes_in_background_and_extends_the_cookie,
    background_refresh_does_not_resurrect_a_logged_out_session,
    a_handler_that_rotates_or_logs_out_is_not_undone,
    login_replaces_the_session_the_request_carries,
    host_prefix_is_the_default,
    kv_failure_is_503_not_a_login_redirect,
    custom_session_type_with_its_own_migrations,
);
