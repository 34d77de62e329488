//! `KvSessionStore` against the contract tower-sessions' own stores are held to (create, save,
//! load, delete, expiry, id collisions), on `MemoryKv`, on the simulator and on simulated
//! Durable Objects (where `create` takes ids with a conditional write); plus what KV
//! asks of it: hashed keys, bad stored bytes as fresh sessions, newer records never replaced,
//! the write budget, and errors without ids or values.

mod common;

use std::{
    collections::HashMap,
    panic::{catch_unwind, AssertUnwindSafe},
    path::Path,
    sync::Arc,
    time::Duration,
};

use futures::executor::block_on;
use kv_envelope::{
    backend::{Consistency, Expected, KvBackend, ListPage, Placement, Stored, WriteOptions},
    decode_value, encode_value,
    testing::{SimConfig, SimKv, SimObjects},
    tower_sessions::{KvSessionStore, SaveBudget, TowerSessionRecord},
    Clock, Codec, Kv, ManualClock, MemoryKv, Versioned,
};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use tower_sessions_core::{
    session::{Id, Record},
    session_store::Error as StoreError,
    SessionStore,
};

use common::NOW;

const SECOND_MS: u64 = 1000;
const HOUR_MS: u64 = 3600 * SECOND_MS;
const DAY_MS: u64 = 24 * HOUR_MS;
/// Planted in session data and in stored bytes; must never come back in an error.
const SECRET: &str = "hunter2-SECRET";

// ---------------------------------------------------------------------------------------------
// Harness: one store per backend, with raw access to plant and dump bytes.

/// Writes bytes under a key, bypassing envelopes and limits.
type Plant = Box<dyn Fn(&str, Vec<u8>)>;

struct Harness {
    name: &'static str,
    clock: ManualClock,
    store: KvSessionStore,
    dump: Box<dyn Fn() -> Vec<(String, Vec<u8>)>>,
    plant: Plant,
    /// The simulator, to inject faults.
    sim: Option<SimKv>,
}

fn memory() -> Harness {
    let clock = ManualClock::new(NOW);
    let mem = Arc::new(MemoryKv::new(Arc::new(clock.clone())));
    let kv = Kv::from_arc(mem.clone()).with_clock(Arc::new(clock.clone()));
    let (d, p) = (mem.clone(), mem);
    Harness {
        name: "memory",
        clock,
        store: KvSessionStore::new(kv),
        dump: Box::new(move || d.dump()),
        plant: Box::new(move |k, v| p.insert_raw(k, v, None)),
        sim: None,
    }
}

/// The simulator at one location: KV's 1 write/s per key, its 60 s expiration floor, expired
/// values served up to 10 s late.
fn sim() -> Harness {
    let clock = ManualClock::new(NOW);
    let sim = SimKv::new(
        17,
        SimConfig::default().with_locations(1),
        Arc::new(clock.clone()),
    );
    let kv = Kv::new(sim.location(0)).with_clock(Arc::new(clock.clone()));
    let (d, p) = (sim.clone(), sim.clone());
    Harness {
        name: "sim",
        clock,
        store: KvSessionStore::new(kv),
        dump: Box::new(move || {
            let keys = block_on(d.kv(0).list_all("", 100)).unwrap();
            keys.into_iter()
                .filter_map(|k| d.central(&k.name).map(|s| (k.name, s.value)))
                .collect()
        }),
        plant: Box::new(move |k, v| p.insert_raw(k, v, None)),
        sim: Some(sim),
    }
}

/// Simulated Durable Objects (one object, so a test can list everything): a conditional write,
/// so `create` takes ids with `put_if`.
fn durable() -> Harness {
    let clock = ManualClock::new(NOW);
    let objects = SimObjects::new(Placement::Single("tower".into()), Arc::new(clock.clone()));
    let kv = objects.kv(0);
    let (d, p) = (kv.clone(), kv.clone());
    Harness {
        name: "durable",
        clock,
        store: KvSessionStore::new(kv),
        dump: Box::new(move || {
            let keys = block_on(d.list_all("", 100)).unwrap();
            keys.into_iter()
                .filter_map(|k| block_on(d.get(&k.name)).unwrap().map(|s| (k.name, s.value)))
                .collect()
        }),
        plant: Box::new(move |k, v| block_on(p.put(k, &v, None, None)).unwrap()),
        sim: None,
    }
}

fn harnesses() -> Vec<Harness> {
    vec![memory(), sim(), durable()]
}

impl Harness {
    fn now(&self) -> u64 {
        self.clock.now_ms()
    }

    /// Past KV's one write per second per key.
    fn tick(&self) {
        self.clock.advance(Duration::from_millis(1100));
    }

    fn writes(&self) -> u64 {
        self.store.kv().counters().snapshot().kv_writes
    }

    fn raw(&self, key: &str) -> Option<Vec<u8>> {
        (self.dump)()
            .into_iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v)
    }
}

fn at_ms(ms: u64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).unwrap()
}

fn record(id: i128, data: &[(&str, Value)], expiry_ms: u64) -> Record {
    Record {
        id: Id(id),
        data: data
            .iter()
            .map(|(k, v)| ((*k).to_string(), v.clone()))
            .collect::<HashMap<_, _>>(),
        expiry_date: at_ms(expiry_ms),
    }
}

/// Every text form an id could leak in.
fn id_forms(id: &Id) -> Vec<String> {
    let le: String =
        id.0.to_le_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
    vec![id.to_string(), id.0.to_string(), le]
}

fn assert_clean(what: &str, e: &StoreError, id: &Id) {
    let text = format!("{e} {e:?}");
    for form in id_forms(id) {
        assert!(!text.contains(&form), "{what}: error names the id: {text}");
    }
    assert!(
        !text.contains(SECRET),
        "{what}: error echoes a value: {text}"
    );
    assert!(
        !text.contains("tower-session:"),
        "{what}: error names the key: {text}"
    );
}

/// The envelope of a tower-session record at `version`, as another writer would store it.
fn envelope_at_version(version: u32, data: Value, expiry_ms: u64) -> Vec<u8> {
    let value = TowerSessionRecord {
        data: serde_json::from_value(data).unwrap(),
        expiry_date: expiry_ms,
        expiry_nanos: 0,
    };
    let text =
        String::from_utf8(encode_value(&value, Codec::Json, Some(expiry_ms)).unwrap()).unwrap();
    let mut v: Value = serde_json::from_str(&text).unwrap();
    v["v"] = json!(version);
    v.to_string().into_bytes()
}

// ---------------------------------------------------------------------------------------------
// The store contract (tower-sessions' MemoryStore behaviour)

#[test]
fn create_save_load_delete_round_trip() {
    for h in harnesses() {
        let mut r = record(7, &[("counter", json!(1))], h.now() + DAY_MS);
        block_on(h.store.create(&mut r)).unwrap();
        assert_eq!(r.id, Id(7), "{}: a free id is kept", h.name);
        assert_eq!(
            block_on(h.store.load(&r.id)).unwrap().as_ref(),
            Some(&r),
            "{}",
            h.name
        );

        h.tick();
        r.data.insert("counter".into(), json!(2));
        r.expiry_date = at_ms(h.now() + DAY_MS);
        block_on(h.store.save(&r)).unwrap();
        assert_eq!(
            block_on(h.store.load(&r.id)).unwrap(),
            Some(r.clone()),
            "{}",
            h.name
        );

        block_on(h.store.delete(&r.id)).unwrap();
        assert_eq!(block_on(h.store.load(&r.id)).unwrap(), None, "{}", h.name);
        // A delete of what is not there is fine, as in tower-sessions' stores.
        block_on(h.store.delete(&r.id)).unwrap();
        block_on(h.store.delete(&Id(12345))).unwrap();
        assert_eq!(
            block_on(h.store.load(&Id(12345))).unwrap(),
            None,
            "{}",
            h.name
        );
    }
}

#[test]
fn save_of_an_unknown_id_stores_it() {
    for h in harnesses() {
        let r = record(8, &[("a", json!("b"))], h.now() + HOUR_MS);
        block_on(h.store.save(&r)).unwrap();
        assert_eq!(
            block_on(h.store.load(&r.id)).unwrap(),
            Some(r),
            "{}",
            h.name
        );
    }
}

#[test]
fn expiry_is_exact_on_read_though_kv_keeps_the_key_a_minute() {
    for h in harnesses() {
        let mut r = record(9, &[("x", json!(true))], h.now() + 10 * SECOND_MS);
        block_on(h.store.create(&mut r)).unwrap();
        let key = h.store.key(&r.id);
        h.clock.advance(Duration::from_secs(9));
        assert!(
            block_on(h.store.load(&r.id)).unwrap().is_some(),
            "{}",
            h.name
        );
        h.clock.advance(Duration::from_secs(2));
        // KV got the 60 s floor (+ skew margin), so the bytes are still there; the read says no.
        assert!(h.raw(&key).is_some(), "{}: KV kept it (floor)", h.name);
        assert_eq!(block_on(h.store.load(&r.id)).unwrap(), None, "{}", h.name);
    }
}

#[test]
fn a_record_saved_already_expired_is_gone() {
    for h in harnesses() {
        let mut r = record(10, &[("x", json!(1))], h.now() + DAY_MS);
        block_on(h.store.create(&mut r)).unwrap();
        h.tick();
        r.expiry_date = at_ms(h.now() - SECOND_MS);
        block_on(h.store.save(&r)).unwrap();
        assert_eq!(block_on(h.store.load(&r.id)).unwrap(), None, "{}", h.name);
        assert_eq!(h.raw(&h.store.key(&r.id)), None, "{}: deleted", h.name);

        // Created in the past (an expiry before the epoch included): nothing is written.
        let before = h.writes();
        let mut old = record(11, &[], 0);
        old.expiry_date = OffsetDateTime::UNIX_EPOCH - time::Duration::days(1);
        block_on(h.store.create(&mut old)).unwrap();
        assert_eq!(h.writes(), before, "{}", h.name);
        assert_eq!(block_on(h.store.load(&old.id)).unwrap(), None, "{}", h.name);
    }
}

/// On Durable Objects `create` takes the id with one conditional write: no read first, and no
/// window in which another create could take the same id.
#[test]
fn create_on_durable_objects_is_one_conditional_write() {
    let h = durable();
    let kv_ops = || h.store.kv().counters().snapshot();
    let before = kv_ops();
    let mut r = record(0x51, &[("n", json!(1))], h.now() + DAY_MS);
    block_on(h.store.create(&mut r)).unwrap();
    let after = kv_ops();
    assert_eq!(after.kv_reads - before.kv_reads, 0, "no read");
    assert_eq!(after.kv_writes - before.kv_writes, 1, "one write");
    // The same id again: refused by the object, a new id drawn, the first record untouched.
    let mut same = record(0x51, &[("n", json!(2))], h.now() + DAY_MS);
    block_on(h.store.create(&mut same)).unwrap();
    assert_ne!(same.id, r.id);
    assert_eq!(block_on(h.store.load(&r.id)).unwrap(), Some(r));
}

/// Runs `hook` once, just before the first conditional write reaches the objects: another
/// request completing between a save's read and its write.
struct BeforeFirstPutIf {
    inner: SimObjects,
    hook: std::sync::Mutex<Option<Box<dyn FnOnce() + Send>>>,
}

#[async_trait::async_trait]
impl KvBackend for BeforeFirstPutIf {
    async fn get(&self, key: &str) -> kv_envelope::Result<Option<Stored>> {
        self.inner.get(key).await
    }
    async fn put(&self, key: &str, value: &[u8], o: &WriteOptions) -> kv_envelope::Result<()> {
        self.inner.put(key, value, o).await
    }
    fn consistency(&self) -> Consistency {
        self.inner.consistency()
    }
    async fn put_if(
        &self,
        key: &str,
        value: &[u8],
        o: &WriteOptions,
        expected: &Expected,
    ) -> kv_envelope::Result<bool> {
        let hook = self.hook.lock().unwrap().take();
        if let Some(hook) = hook {
            std::thread::spawn(hook).join().unwrap();
        }
        self.inner.put_if(key, value, o, expected).await
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

/// On Durable Objects a logout (delete) that lands between a save's read and its write wins:
/// the save is dropped and the session stays gone (before the fix the save wrote it back).
#[test]
fn on_durable_objects_a_delete_between_a_saves_read_and_write_wins() {
    let clock = ManualClock::new(NOW);
    let objects = SimObjects::new(Placement::Single("tower".into()), Arc::new(clock.clone()));
    let other = KvSessionStore::new(objects.kv(1));
    let mut r = record(0x77, &[("n", json!(1))], NOW + DAY_MS);
    block_on(other.create(&mut r)).unwrap();
    let id = r.id;
    let backend = BeforeFirstPutIf {
        inner: objects.clone(),
        hook: std::sync::Mutex::new(Some(Box::new(move || {
            block_on(other.delete(&id)).unwrap();
        }))),
    };
    let store = KvSessionStore::new(Kv::new(backend).with_clock(Arc::new(clock.clone())));
    block_on(store.save(&record(0x77, &[("n", json!(2))], NOW + DAY_MS))).unwrap();
    assert_eq!(
        block_on(store.load(&id)).unwrap(),
        None,
        "the logout stands"
    );
    // A save with no delete in between still writes (an upsert, as tower-sessions' stores do).
    block_on(store.save(&record(0x77, &[("n", json!(3))], NOW + DAY_MS))).unwrap();
    assert!(block_on(store.load(&id)).unwrap().is_some());
}

#[test]
fn create_draws_a_new_id_when_the_id_is_taken() {
    for h in harnesses() {
        let taken = Id(0x7a4e);
        // Whatever is under the key (here bytes no reader accepts) makes the id taken.
        (h.plant)(&h.store.key(&taken), b"not yours".to_vec());
        let mut r = record(taken.0, &[("n", json!(1))], h.now() + DAY_MS);
        block_on(h.store.create(&mut r)).unwrap();
        assert_ne!(r.id, taken, "{}: a new id was drawn", h.name);
        assert_eq!(
            block_on(h.store.load(&r.id)).unwrap(),
            Some(r.clone()),
            "{}",
            h.name
        );
        assert_eq!(
            h.raw(&h.store.key(&taken)).as_deref(),
            Some(&b"not yours"[..]),
            "{}: the holder of the id is untouched",
            h.name
        );

        // A live session's id is taken too.
        let mut again = record(r.id.0, &[("n", json!(2))], h.now() + DAY_MS);
        block_on(h.store.create(&mut again)).unwrap();
        assert_ne!(again.id, r.id, "{}", h.name);
        assert_eq!(
            block_on(h.store.load(&r.id)).unwrap(),
            Some(r),
            "{}",
            h.name
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Keys and values

#[test]
fn kv_sees_only_the_hash_of_the_id() {
    for h in harnesses() {
        let mut r = record(
            0x0123_4567_89ab_cdef_fedc_ba98_7654_3210,
            &[("user", json!("ada"))],
            h.now() + DAY_MS,
        );
        block_on(h.store.create(&mut r)).unwrap();
        h.tick();
        r.data.insert("user".into(), json!("grace"));
        block_on(h.store.save(&r)).unwrap();

        let hash: String = Sha256::digest(r.id.0.to_le_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let expected = format!("tower-session:{hash}");
        assert_eq!(h.store.key(&r.id), expected, "{}", h.name);
        let dump = (h.dump)();
        assert_eq!(
            dump.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>(),
            [expected.as_str()],
            "{}",
            h.name
        );
        for (key, value) in &dump {
            let value = String::from_utf8_lossy(value);
            for form in id_forms(&r.id) {
                assert!(!key.contains(&form), "{}: key holds the id", h.name);
                assert!(
                    !value.contains(&form),
                    "{}: value holds the id: {value}",
                    h.name
                );
            }
        }
    }
}

#[test]
fn the_stored_value_is_a_validated_tower_session_envelope() {
    let h = memory();
    let mut r = record(21, &[("cart", json!([1, 2, 3]))], h.now() + DAY_MS);
    block_on(h.store.create(&mut r)).unwrap();
    let bytes = h.raw(&h.store.key(&r.id)).unwrap();
    let v: Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(v["type"], json!(TowerSessionRecord::NAME));
    assert_eq!(v["v"], json!(2));
    assert_eq!(v["exp"], json!(NOW + DAY_MS));
    assert_eq!(
        v["data"],
        json!({"data": {"cart": [1, 2, 3]}, "expiryDate": NOW + DAY_MS, "expiryNanos": 0})
    );
    let decoded = decode_value::<TowerSessionRecord>(&bytes, NOW, true)
        .unwrap()
        .unwrap();
    assert_eq!(decoded.value.expiry_date, NOW + DAY_MS);
}

// ---------------------------------------------------------------------------------------------
// Bad stored bytes

/// Every envelope of the hostile corpus as it is (other types' values), its JSON cases
/// relabelled as tower-session values, and hand-made bad tower-session records.
fn hostile_values() -> Vec<(String, Vec<u8>)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus/envelope");
    let mut out = Vec::new();
    for entry in std::fs::read_dir(&root).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let bytes = std::fs::read(&path).unwrap();
        if name.ends_with(".json") {
            let text = String::from_utf8_lossy(&bytes).replace("\"session\"", "\"tower-session\"");
            out.push((format!("{name} (as tower-session)"), text.into_bytes()));
        }
        out.push((name, bytes));
    }
    let exp = NOW + DAY_MS;
    let good = envelope_at_version(2, json!({"k": SECRET}), exp);
    let good_text = String::from_utf8(good.clone()).unwrap();
    let edit = |f: &dyn Fn(&mut Value)| {
        let mut v: Value = serde_json::from_str(&good_text).unwrap();
        f(&mut v);
        v.to_string().into_bytes()
    };
    out.extend([
        (
            "future version 3".to_string(),
            envelope_at_version(3, json!({"k": SECRET}), exp),
        ),
        ("version 0".into(), envelope_at_version(0, json!({}), exp)),
        (
            "data is a list".into(),
            edit(&|v| v["data"]["data"] = json!([SECRET])),
        ),
        (
            "expiry as text".into(),
            edit(&|v| v["data"]["expiryDate"] = json!("soon")),
        ),
        (
            "negative expiry".into(),
            edit(&|v| v["data"]["expiryDate"] = json!(-1)),
        ),
        (
            "an unknown field".into(),
            edit(&|v| v["data"]["id"] = json!(SECRET)),
        ),
        (
            "no data".into(),
            edit(&|v| v["data"] = json!({"expiryDate": exp})),
        ),
        ("truncated".into(), good[..good.len() / 2].to_vec()),
        (
            "not an envelope".into(),
            format!("{{\"k\":\"{SECRET}\"}}").into_bytes(),
        ),
        ("binary noise".into(), vec![0xc5, 0xff, 0x00, 0x13, 0x37]),
        ("empty".into(), Vec::new()),
    ]);
    out
}

#[test]
fn hostile_stored_bytes_load_as_a_fresh_session_and_are_never_replaced() {
    let mut failures = Vec::new();
    let mut refused = 0;
    for (what, bytes) in hostile_values() {
        for h in harnesses() {
            let id = Id(0x0bad);
            let key = h.store.key(&id);
            (h.plant)(&key, bytes.clone());
            let outcome = catch_unwind(AssertUnwindSafe(|| {
                let loaded = block_on(h.store.load(&id));
                let readable = decode_value::<TowerSessionRecord>(&bytes, h.now(), true);
                let save = block_on(h.store.save(&record(
                    id.0,
                    &[("n", json!(1))],
                    h.now() + DAY_MS,
                )));
                (loaded, readable.is_ok(), save)
            }));
            match outcome {
                Err(_) => failures.push(format!("{what} on {}: panic", h.name)),
                Ok((loaded, readable, save)) => {
                    match &loaded {
                        Ok(None) => {}
                        Ok(Some(_)) if readable => {} // a control the corpus keeps (none here)
                        other => {
                            failures.push(format!("{what} on {}: load gave {other:?}", h.name))
                        }
                    }
                    match (readable, save) {
                        // Readable (an expired value counts): a save may replace it.
                        (true, Ok(())) => {}
                        (false, Err(e @ StoreError::Decode(_))) => {
                            refused += 1;
                            assert_clean(&what, &e, &id);
                            if h.raw(&key).as_deref() != Some(&bytes[..]) {
                                failures.push(format!("{what} on {}: bytes changed", h.name));
                            }
                        }
                        (r, s) => failures.push(format!(
                            "{what} on {}: readable {r}, save gave {s:?}",
                            h.name
                        )),
                    }
                }
            }
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
    assert!(
        refused > 100,
        "the corpus exercised the refusal ({refused})"
    );
}

#[test]
fn a_record_from_newer_code_is_never_overwritten_nor_deleted_by_a_save() {
    for h in harnesses() {
        let id = Id(0xf00d);
        let key = h.store.key(&id);
        let newer = envelope_at_version(3, json!({"k": "v"}), h.now() + DAY_MS);
        (h.plant)(&key, newer.clone());
        assert_eq!(block_on(h.store.load(&id)).unwrap(), None, "{}", h.name);
        for expiry in [h.now() + DAY_MS, h.now() - SECOND_MS] {
            let e = block_on(h.store.save(&record(id.0, &[], expiry))).unwrap_err();
            assert!(matches!(e, StoreError::Decode(_)), "{}: {e:?}", h.name);
            assert!(e.to_string().contains("future_version"), "{}: {e}", h.name);
        }
        let mut r = record(id.0, &[], h.now() + DAY_MS);
        block_on(h.store.create(&mut r)).unwrap();
        assert_ne!(r.id, id, "{}", h.name);
        assert_eq!(h.raw(&key), Some(newer), "{}", h.name);
    }
}

// ---------------------------------------------------------------------------------------------
// The write budget

/// 1,000 requests over one hour, each extending an inactivity expiry of a day (what
/// `Expiry::OnInactivity` with `always_save` does): with a one-hour refresh window, at most
/// one KV write; and the session stays loadable throughout.
#[test]
fn a_thousand_inactivity_saves_in_an_hour_cost_at_most_one_write() {
    for h in harnesses() {
        let store = h
            .store
            .clone()
            .with_refresh_window(Duration::from_secs(3600));
        assert_eq!(
            store.save_budget(),
            SaveBudget::refresh_window(Duration::from_secs(3600))
        );
        let start = h.now();
        let mut r = record(31, &[("user", json!("ada"))], start + DAY_MS);
        block_on(store.create(&mut r)).unwrap();
        let before = h.writes();
        for i in 0..1000u64 {
            // Spread over the hour: the last request is 3.6 s before its end.
            h.clock.set(start + i * 3600);
            r.expiry_date = at_ms(h.now() + DAY_MS);
            block_on(store.save(&r)).unwrap();
            assert!(block_on(store.load(&r.id)).unwrap().is_some());
        }
        let writes = h.writes() - before;
        assert!(
            writes <= 1,
            "{}: {writes} KV writes for 1,000 requests",
            h.name
        );

        // Past the window the extension is written, once.
        h.clock.set(start + HOUR_MS + SECOND_MS);
        r.expiry_date = at_ms(h.now() + DAY_MS);
        let before = h.writes();
        block_on(store.save(&r)).unwrap();
        block_on(store.save(&r)).unwrap();
        assert_eq!(h.writes() - before, 1, "{}", h.name);
        let stored = block_on(store.load(&r.id)).unwrap().unwrap();
        assert_eq!(stored.expiry_date, r.expiry_date, "{}", h.name);
    }
}

#[test]
fn a_change_of_data_is_always_written() {
    for h in harnesses() {
        let store = h
            .store
            .clone()
            .with_refresh_window(Duration::from_secs(3600));
        let mut r = record(32, &[("n", json!(0))], h.now() + DAY_MS);
        block_on(store.create(&mut r)).unwrap();
        let before = h.writes();
        for n in 1..=20 {
            h.tick();
            r.data.insert("n".into(), json!(n));
            block_on(store.save(&r)).unwrap();
            assert_eq!(
                block_on(store.load(&r.id)).unwrap(),
                Some(r.clone()),
                "{}",
                h.name
            );
        }
        // A key removed, then an earlier expiry: written too.
        h.tick();
        r.data.remove("n");
        block_on(store.save(&r)).unwrap();
        h.tick();
        r.expiry_date = at_ms(h.now() + HOUR_MS);
        block_on(store.save(&r)).unwrap();
        assert_eq!(
            block_on(store.load(&r.id)).unwrap(),
            Some(r.clone()),
            "{}",
            h.name
        );
        assert_eq!(h.writes() - before, 22, "{}", h.name);
    }
}

#[test]
fn without_a_budget_every_save_is_a_write() {
    let h = memory();
    let mut r = record(33, &[], h.now() + DAY_MS);
    block_on(h.store.create(&mut r)).unwrap();
    let before = h.writes();
    for i in 0..1000u64 {
        h.clock.set(NOW + i * 3600);
        r.expiry_date = at_ms(h.now() + DAY_MS);
        block_on(h.store.save(&r)).unwrap();
    }
    assert_eq!(h.writes() - before, 1000);
}

// ---------------------------------------------------------------------------------------------
// Errors

#[test]
fn kv_failures_are_backend_errors_without_ids_or_values() {
    let h = sim();
    let id = Id(0x5ec2e7);
    let r = record(id.0, &[("password", json!(SECRET))], h.now() + DAY_MS);
    h.sim.as_ref().unwrap().set_fault_rate(1.0);
    let mut created = r.clone();
    let errors = [
        (
            "create",
            block_on(h.store.create(&mut created)).unwrap_err(),
        ),
        ("save", block_on(h.store.save(&r)).unwrap_err()),
        ("load", block_on(h.store.load(&id)).unwrap_err()),
        ("delete", block_on(h.store.delete(&id)).unwrap_err()),
    ];
    for (what, e) in &errors {
        assert!(matches!(e, StoreError::Backend(_)), "{what}: {e:?}");
        assert_clean(what, e, &id);
    }
}

/// Issue 27: a second write of one session within a second (a login then an insert) got KV's
/// 429, which tower-sessions answers with a 500 and no cookie. The store waits the second out
/// (on the store's clock) and the write lands.
#[test]
fn a_second_write_within_a_second_waits_and_lands() {
    let h = sim();
    let id = Id(0x429);
    let mut r = record(id.0, &[("n", json!(1))], h.now() + DAY_MS);
    block_on(h.store.create(&mut r)).unwrap();
    let created_at = h.now();
    let mut changed = r.clone();
    changed.data.insert("n".into(), json!(2));
    block_on(h.store.save(&changed)).unwrap();
    assert!(
        h.now() >= created_at + SECOND_MS,
        "waited the second out on the store's clock"
    );
    assert!(h.now() < created_at + 2 * SECOND_MS, "and no longer");
    assert_eq!(block_on(h.store.load(&id)).unwrap(), Some(changed.clone()));
    // A delete right after is paced too (KV counts deletes as writes).
    block_on(h.store.delete(&id)).unwrap();
    assert_eq!(block_on(h.store.load(&id)).unwrap(), None);
    assert_eq!(
        h.sim.as_ref().unwrap().stats().rate_limited,
        0,
        "no 429 at all"
    );
}

/// A 429 that still comes (another isolate wrote the key in that second) is retried once a
/// second later; one that persists is a backend error without an id or a value, and the stored
/// session stays.
#[test]
fn a_429_from_another_writer_is_retried_once_then_is_a_backend_error() {
    let h = sim();
    let id = Id(0x430);
    let mut r = record(id.0, &[("n", json!(SECRET))], h.now() + DAY_MS);
    block_on(h.store.create(&mut r)).unwrap();
    h.tick();
    // Another isolate writes the key now: this store's save meets a 429, waits, and lands.
    let other = KvSessionStore::new(
        Kv::new(h.sim.as_ref().unwrap().location(0)).with_clock(Arc::new(h.clock.clone())),
    );
    let mut theirs = r.clone();
    theirs.data.insert("n".into(), json!("theirs"));
    block_on(other.save(&theirs)).unwrap();
    let mut mine = r.clone();
    mine.data.insert("n".into(), json!("mine"));
    block_on(h.store.save(&mine)).unwrap();
    assert_eq!(
        block_on(h.store.load(&id)).unwrap(),
        Some(mine.clone()),
        "last write wins"
    );

    // A backend that keeps answering 429: one retry, then a clean backend error.
    let limited = KvSessionStore::new(
        Kv::new(AlwaysRateLimited(h.sim.as_ref().unwrap().location(0)))
            .with_clock(Arc::new(h.clock.clone())),
    );
    let before = h.now();
    let e = block_on(limited.save(&r)).unwrap_err();
    assert!(matches!(e, StoreError::Backend(_)), "{e:?}");
    assert!(e.to_string().contains("rate limit"), "{e}");
    assert_clean("429", &e, &id);
    assert!(h.now() >= before + SECOND_MS, "retried a second later");
    assert_eq!(block_on(h.store.load(&id)).unwrap(), Some(mine));
}

/// Reads pass through; every write answers KV's 429.
struct AlwaysRateLimited(kv_envelope::testing::SimLocation);

#[async_trait::async_trait]
impl KvBackend for AlwaysRateLimited {
    async fn get(&self, key: &str) -> kv_envelope::Result<Option<Stored>> {
        self.0.get(key).await
    }
    async fn put(
        &self,
        _key: &str,
        _value: &[u8],
        _options: &WriteOptions,
    ) -> kv_envelope::Result<()> {
        Err(kv_envelope::Error::RateLimited)
    }
    async fn delete(&self, _key: &str) -> kv_envelope::Result<()> {
        Err(kv_envelope::Error::RateLimited)
    }
    async fn list(
        &self,
        prefix: &str,
        cursor: Option<&str>,
        limit: u32,
    ) -> kv_envelope::Result<ListPage> {
        self.0.list(prefix, cursor, limit).await
    }
}

#[test]
fn a_record_too_large_to_store_is_an_encode_error_without_its_value() {
    let h = memory();
    let store = h.store.clone().with_max_record_bytes(1024);
    let id = Id(0xb16);
    let mut r = record(
        id.0,
        &[("blob", json!(SECRET.repeat(200)))],
        h.now() + DAY_MS,
    );
    let e = block_on(store.create(&mut r)).unwrap_err();
    assert!(matches!(e, StoreError::Encode(_)), "{e:?}");
    assert_clean("too large", &e, &id);
    assert!(h.raw(&store.key(&id)).is_none());
}

/// Review 2: data that no longer fits the app's type (`"n": "str"` where the app reads a u64)
/// made `Session::get` fail with a serde error quoting the stored value, which the example
/// answered with 503 (until the record expired) and logged. `get_or_flush` treats it as no
/// session: flushed, `None`, and no error that could carry the value.
#[test]
fn data_that_no_longer_fits_the_type_is_no_session() {
    for h in harnesses() {
        let store = Arc::new(h.store.clone());
        let mut r = record(
            41,
            &[("n", json!(SECRET)), ("user", json!("ada"))],
            h.now() + DAY_MS,
        );
        block_on(store.create(&mut r)).unwrap();
        let session = tower_sessions::Session::new(Some(r.id), store.clone(), None);
        // The problem: tower-sessions' own typed read quotes the stored value.
        let raw = block_on(session.get::<u64>("n")).unwrap_err();
        assert!(raw.to_string().contains(SECRET), "{}: {raw}", h.name);

        let fits = block_on(kv_envelope::tower_sessions::get_or_flush::<String>(
            &session, "user",
        ));
        assert_eq!(fits.unwrap().as_deref(), Some("ada"), "{}", h.name);
        let n = block_on(kv_envelope::tower_sessions::get_or_flush::<u64>(
            &session, "n",
        ));
        assert_eq!(n.unwrap(), None, "{}", h.name);
        assert_eq!(
            block_on(store.load(&r.id)).unwrap(),
            None,
            "{}: flushed",
            h.name
        );
        assert!(block_on(session.is_empty()), "{}", h.name);
        let absent = block_on(kv_envelope::tower_sessions::get_or_flush::<u64>(
            &session, "n",
        ));
        assert_eq!(absent.unwrap(), None, "{}", h.name);
    }
}
