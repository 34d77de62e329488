//! One suite of behaviours every [`KvBackend`] must have, run against each backend: the
//! in-memory map, the simulator in a strongly consistent configuration, and the simulator with
//! KV's lazy expiry and empty list pages at a single location.
//!
//! Writes to one key are spaced by a second of simulated time because KV (and the simulator)
//! refuse more than one write per second per key; the suite describes what works on real KV.

mod common;

use std::{sync::Arc, time::Duration};

use futures::executor::block_on;
use kv_envelope::{
    __internal::{
        bulk_text_is_exact, MAX_BULK_KEYS, MAX_KEY_BYTES, MAX_METADATA_BYTES, MAX_VALUE_BYTES,
    },
    backend::{
        conformance, Consistency, Expected, KvBackend, ListKey, ListPage, Placement, Stamp, Stored,
        WriteOptions,
    },
    testing::{SimConfig, SimKv, SimObjects},
    Error, Kv, LimitError, ManualClock, MemoryKv,
};

use common::NOW as T0;

/// A backend under test and the clock that drives it.
struct Fixture {
    backend: Arc<dyn KvBackend>,
    clock: ManualClock,
    /// Longest time after its KV expiration that a value may still be listed.
    list_linger: Duration,
}

impl Fixture {
    fn kv(&self) -> Kv {
        Kv::from_arc(self.backend.clone()).with_clock(Arc::new(self.clock.clone()))
    }

    fn put(&self, key: &str, value: &[u8], options: WriteOptions) {
        block_on(self.backend.put(key, value, &options)).expect("put");
        // Next write to any key is legal under KV's one-write-per-second rule.
        self.clock.advance(Duration::from_secs(1));
    }

    fn get(&self, key: &str) -> Option<Stored> {
        block_on(self.backend.get(key)).expect("get")
    }

    /// Every key under `prefix`, following cursors through empty pages.
    fn list_all(&self, prefix: &str, limit: u32) -> Vec<ListKey> {
        let mut out = Vec::new();
        let mut cursor: Option<String> = None;
        for _ in 0..10_000 {
            let page = block_on(self.backend.list(prefix, cursor.as_deref(), limit)).expect("list");
            assert!(page.keys.len() <= limit as usize, "page over limit");
            out.extend(page.keys);
            if page.list_complete {
                return out;
            }
            cursor = Some(page.cursor.expect("an incomplete page carries a cursor"));
        }
        panic!("list never completed");
    }

    fn names(&self, prefix: &str, limit: u32) -> Vec<String> {
        self.list_all(prefix, limit)
            .into_iter()
            .map(|k| k.name)
            .collect()
    }
}

fn plain() -> WriteOptions {
    WriteOptions::default()
}

fn secs(ms: u64) -> u64 {
    ms / 1000
}

// ---- the suite -------------------------------------------------------------------------------

fn get_missing_is_none(f: Fixture) {
    assert_eq!(f.get("nothing-here"), None);
}

fn put_then_get_round_trips_value_and_metadata(f: Fixture) {
    let meta = r#"{"t":"session","v":3,"c":"json"}"#.to_string();
    f.put(
        "k",
        b"\x00\xffbytes",
        WriteOptions {
            expiration: None,
            metadata: Some(meta.clone()),
        },
    );
    assert_eq!(
        f.get("k"),
        Some(Stored {
            value: b"\x00\xffbytes".to_vec(),
            metadata: Some(meta),
        })
    );
}

fn put_without_metadata_reads_none(f: Fixture) {
    f.put("k", b"v", plain());
    assert_eq!(f.get("k").expect("present").metadata, None);
}

fn overwrite_last_write_wins(f: Fixture) {
    f.put("k", b"one", plain());
    f.put("k", b"two", plain());
    assert_eq!(f.get("k").expect("present").value, b"two");
}

fn delete_removes_and_is_idempotent(f: Fixture) {
    f.put("k", b"v", plain());
    block_on(f.backend.delete("k")).expect("delete");
    assert_eq!(f.get("k"), None);
    block_on(f.backend.delete("k")).expect("second delete");
    block_on(f.backend.delete("never-written")).expect("delete of a missing key");
    assert!(f.names("", 1000).is_empty());
}

fn empty_value_round_trips(f: Fixture) {
    f.put("k", b"", plain());
    assert_eq!(f.get("k").expect("present").value, b"");
}

fn unicode_keys_round_trip(f: Fixture) {
    let key = "sessión:ключ:🔑";
    f.put(key, b"v", plain());
    assert_eq!(f.get(key).expect("present").value, b"v");
    assert_eq!(f.names("sessión:", 1000), vec![key.to_string()]);
}

fn list_filters_by_prefix_in_key_order(f: Fixture) {
    for k in ["b:2", "a:1", "b:1", "ba", "c", "b:10"] {
        f.put(k, b"v", plain());
    }
    assert_eq!(f.names("b:", 1000), vec!["b:1", "b:10", "b:2"]);
    assert_eq!(f.names("b", 1000), vec!["b:1", "b:10", "b:2", "ba"]);
    assert_eq!(f.names("", 1000).len(), 6);
    assert!(f.names("zzz", 1000).is_empty());
}

fn list_pages_with_cursors_cover_everything_once(f: Fixture) {
    let mut expected: Vec<String> = (0..25).map(|i| format!("p:{i:03}")).collect();
    for k in &expected {
        f.put(k, b"v", plain());
    }
    f.put("q:0", b"v", plain());
    expected.sort();
    for limit in [1, 7, 25, 1000] {
        assert_eq!(f.names("p:", limit), expected, "limit {limit}");
    }
}

fn list_limit_is_respected_per_page(f: Fixture) {
    for i in 0..10 {
        f.put(&format!("k{i}"), b"v", plain());
    }
    let page = block_on(f.backend.list("k", None, 3)).expect("list");
    assert!(page.keys.len() <= 3);
    assert!(!page.list_complete);
    assert!(page.cursor.is_some());
}

fn list_of_nothing_is_complete(f: Fixture) {
    let page = block_on(f.backend.list("none:", None, 10)).expect("list");
    assert!(page.keys.is_empty());
    assert!(page.list_complete);
}

fn list_reports_metadata_and_expiration(f: Fixture) {
    let exp = secs(T0) + 3600;
    f.put(
        "m:1",
        b"v",
        WriteOptions {
            expiration: Some(exp),
            metadata: Some(r#"{"v":2}"#.into()),
        },
    );
    f.put("m:2", b"v", plain());
    let keys = f.list_all("m:", 1000);
    assert_eq!(keys.len(), 2);
    assert_eq!(keys[0].expiration, Some(exp));
    assert_eq!(keys[0].metadata.as_deref(), Some(r#"{"v":2}"#));
    assert_eq!(keys[1].expiration, None);
    assert_eq!(keys[1].metadata, None);
}

fn list_skips_deleted_keys(f: Fixture) {
    f.put("d:1", b"v", plain());
    f.put("d:2", b"v", plain());
    block_on(f.backend.delete("d:1")).expect("delete");
    assert_eq!(f.names("d:", 1000), vec!["d:2"]);
}

fn expiration_hides_value_after_it_passes(f: Fixture) {
    let exp = secs(T0) + 120;
    f.put(
        "e",
        b"v",
        WriteOptions {
            expiration: Some(exp),
            metadata: None,
        },
    );
    f.put("forever", b"v", plain());
    assert!(f.get("e").is_some(), "readable before its expiration");
    // Well past the expiration and any lazy-deletion delay a backend may have.
    f.clock
        .set(exp * 1000 + f.list_linger.as_millis() as u64 + 1);
    assert_eq!(f.get("e"), None);
    assert_eq!(f.names("", 1000), vec!["forever"]);
    assert!(f.get("forever").is_some());
}

fn rewrite_without_expiration_makes_value_permanent(f: Fixture) {
    let exp = secs(T0) + 120;
    f.put(
        "e",
        b"old",
        WriteOptions {
            expiration: Some(exp),
            metadata: None,
        },
    );
    f.put("e", b"new", plain());
    f.clock.set(exp * 1000 + 3_600_000);
    assert_eq!(f.get("e").expect("permanent now").value, b"new");
}

// ---- `Kv`'s limits, identical whatever the backend ------------------------------------------

fn kv_rejects_bad_keys_before_io(f: Fixture) {
    let kv = f.kv();
    let long = "k".repeat(MAX_KEY_BYTES + 1);
    let cases: [(&str, LimitError); 4] = [
        (
            &long,
            LimitError::KeyTooLong {
                len: 513,
                max: MAX_KEY_BYTES,
            },
        ),
        ("", LimitError::EmptyKey),
        (".", LimitError::ReservedKey),
        ("..", LimitError::ReservedKey),
    ];
    for (key, want) in cases {
        assert_eq!(
            block_on(kv.get(key)),
            Err(Error::Limit(want.clone())),
            "get"
        );
        assert_eq!(
            block_on(kv.put(key, b"v", None, None)),
            Err(Error::Limit(want.clone())),
            "put"
        );
        assert_eq!(block_on(kv.delete(key)), Err(Error::Limit(want)), "delete");
    }
    let counts = kv.counters().snapshot();
    assert_eq!(
        (counts.kv_reads, counts.kv_writes, counts.kv_deletes),
        (0, 0, 0),
        "refused calls never reach the backend"
    );
}

fn kv_accepts_limit_sized_key_and_metadata(f: Fixture) {
    let kv = f.kv();
    // Multi-byte characters: the limit is in bytes, not characters.
    let key = "é".repeat(MAX_KEY_BYTES / 2);
    assert_eq!(key.len(), MAX_KEY_BYTES);
    let meta = format!("\"{}\"", "m".repeat(MAX_METADATA_BYTES - 2));
    block_on(kv.put(&key, b"v", None, Some(meta.clone()))).expect("limit-sized put");
    let got = block_on(kv.get(&key)).expect("get").expect("present");
    assert_eq!(got.metadata, Some(meta));
}

fn kv_rejects_multibyte_key_over_limit(f: Fixture) {
    let kv = f.kv();
    let key = format!("{}x", "é".repeat(MAX_KEY_BYTES / 2));
    assert_eq!(
        block_on(kv.get(&key)),
        Err(Error::Limit(LimitError::KeyTooLong {
            len: MAX_KEY_BYTES + 1,
            max: MAX_KEY_BYTES
        }))
    );
}

fn kv_rejects_oversize_metadata(f: Fixture) {
    let kv = f.kv();
    let meta = "m".repeat(MAX_METADATA_BYTES + 1);
    assert_eq!(
        block_on(kv.put("k", b"v", None, Some(meta))),
        Err(Error::Limit(LimitError::MetadataTooLarge {
            len: 1025,
            max: MAX_METADATA_BYTES
        }))
    );
    assert_eq!(f.get("k"), None, "nothing written");
}

fn kv_rejects_oversize_value(f: Fixture) {
    let kv = f.kv();
    let value = vec![0u8; MAX_VALUE_BYTES + 1];
    assert_eq!(
        block_on(kv.put("k", &value, None, None)),
        Err(Error::Limit(LimitError::ValueTooLarge {
            len: MAX_VALUE_BYTES + 1,
            max: MAX_VALUE_BYTES
        }))
    );
    assert_eq!(f.get("k"), None, "nothing written");
}

fn kv_clamps_short_expiration_to_floor(f: Fixture) {
    let kv = f.kv();
    let now = f.clock.now();
    // The envelope wants 1 s; KV refuses < 60 s, so Kv asks for 60 s + 5 s skew margin.
    block_on(kv.put("short", b"v", Some(now + 1000), None)).expect("clamped put");
    let keys = f.list_all("short", 1000);
    assert_eq!(keys.len(), 1);
    assert_eq!(keys[0].expiration, Some(now.div_ceil(1000) + 65));
    f.clock.advance(Duration::from_secs(2));
    assert!(
        f.get("short").is_some(),
        "KV keeps the value past the envelope's expiry; readers check expires_at"
    );
}

fn kv_keeps_long_expiration_exact(f: Fixture) {
    let kv = f.kv();
    let exp_ms = f.clock.now() + 3_600_500;
    block_on(kv.put("long", b"v", Some(exp_ms), None)).expect("put");
    let keys = f.list_all("long", 1000);
    assert_eq!(keys[0].expiration, Some(exp_ms.div_ceil(1000)));
}

fn kv_refuses_past_expiration(f: Fixture) {
    let kv = f.kv();
    let now = f.clock.now();
    assert_eq!(
        block_on(kv.put("k", b"v", Some(now), None)),
        Err(Error::Limit(LimitError::AlreadyExpired))
    );
    assert_eq!(
        block_on(kv.put("k", b"v", Some(now - 1), None)),
        Err(Error::Limit(LimitError::AlreadyExpired))
    );
    assert_eq!(f.get("k"), None);
}

fn kv_list_all_follows_cursors(f: Fixture) {
    for i in 0..30 {
        f.put(&format!("la:{i:02}"), b"v", plain());
    }
    let kv = f.kv();
    let keys = block_on(kv.list_all("la:", 10_000)).expect("list_all");
    assert_eq!(keys.len(), 30);
    assert!(keys.windows(2).all(|w| w[0].name < w[1].name));
}

// ---- bulk reads ------------------------------------------------------------------------------

/// `Kv::get_many` answers every key as a single `get` would, in order, duplicates included,
/// across chunk boundaries; it costs one billed operation per 100 distinct keys on a backend
/// with a real bulk get, and one read per key on one without.
fn get_many_matches_single_gets(f: Fixture) {
    f.put(
        "bm:meta",
        b"with metadata",
        WriteOptions {
            expiration: None,
            metadata: Some(r#"{"t":"x"}"#.into()),
        },
    );
    let exp = secs(f.clock.now()) + 120;
    f.put(
        "bm:expiring",
        b"soon gone",
        WriteOptions {
            expiration: Some(exp),
            metadata: None,
        },
    );
    for i in 0..150 {
        f.put(&format!("bm:{i:03}"), format!("v{i}").as_bytes(), plain());
    }
    f.clock.set(exp * 1000 + 60_000);
    let mut keys: Vec<String> = (0..250).map(|i| format!("bm:{i:03}")).collect();
    keys.extend(["bm:meta", "bm:expiring", "bm:001", "bm:meta"].map(String::from));
    let refs: Vec<&str> = keys.iter().map(String::as_str).collect();
    let kv = f.kv();
    let many = block_on(kv.get_many(&refs)).expect("get_many");
    let counts = kv.counters().snapshot();
    let single: Vec<Option<Stored>> = refs.iter().map(|k| f.get(k)).collect();
    assert_eq!(many.len(), refs.len());
    assert_eq!(many, single, "bulk and single reads agree key by key");
    assert_eq!(many[1].as_ref().unwrap().value, b"v1");
    assert_eq!(many[200], None);
    assert_eq!(
        many[250].as_ref().unwrap().metadata.as_deref(),
        Some(r#"{"t":"x"}"#)
    );
    assert_eq!(many[251], None, "expired");
    assert_eq!(many[252], many[1]);
    assert_eq!(many[253], many[250]);
    // 252 distinct keys: three chunks of at most 100.
    let distinct: u64 = 252;
    if counts.kv_bulk_gets > 0 {
        assert_eq!(counts.kv_bulk_gets, distinct.div_ceil(MAX_BULK_KEYS as u64));
        assert_eq!(counts.kv_bulk_keys, distinct);
        assert_eq!(counts.kv_reads, 0);
    } else {
        assert_eq!(counts.kv_reads, distinct, "no bulk get: one read per key");
    }
    assert_eq!(block_on(kv.get_many(&[])).expect("empty"), Vec::new());
    assert_eq!(
        kv.counters().snapshot(),
        counts,
        "nothing to read costs nothing"
    );
}

fn kv_get_many_rejects_bad_keys_before_io(f: Fixture) {
    let kv = f.kv();
    let long = "k".repeat(MAX_KEY_BYTES + 1);
    assert_eq!(
        block_on(kv.get_many(&["fine", &long])),
        Err(Error::Limit(LimitError::KeyTooLong {
            len: 513,
            max: MAX_KEY_BYTES
        }))
    );
    assert_eq!(
        block_on(kv.get_many(&["fine", ".."])),
        Err(Error::Limit(LimitError::ReservedKey))
    );
    let counts = kv.counters().snapshot();
    assert_eq!((counts.kv_reads, counts.kv_bulk_gets), (0, 0));
}

/// A backend that only has the four required methods: `get_bulk` is the trait's default.
struct SingleGetsOnly(Arc<dyn KvBackend>);

#[async_trait::async_trait]
impl KvBackend for SingleGetsOnly {
    async fn get(&self, key: &str) -> kv_envelope::Result<Option<Stored>> {
        self.0.get(key).await
    }
    async fn put(
        &self,
        key: &str,
        value: &[u8],
        options: &WriteOptions,
    ) -> kv_envelope::Result<()> {
        self.0.put(key, value, options).await
    }
    async fn delete(&self, key: &str) -> kv_envelope::Result<()> {
        self.0.delete(key).await
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

/// What the Workers backend does with a text bulk get (it runs on wasm32 only): our binary
/// frames, decoded lossily as the runtime decodes text, are never taken for exact text, so
/// they are read again singly; JSON envelopes are.
#[test]
fn binary_frames_are_never_exact_bulk_text() {
    use kv_envelope::{__internal::encode_value_in, Codec, KeyRing, SealingKey};
    #[derive(serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
    struct Note {
        text: String,
        n: u64,
    }
    kv_envelope::versioned! { name: "note", versions: [Note] }
    let ring = KeyRing::new(vec![SealingKey::from_bytes("k1", &[3; 32]).unwrap()]).unwrap();
    for i in 0..200u64 {
        let note = Note {
            text: format!("{{\"x\": {i} ünïcödé"),
            n: i * 7919,
        };
        let json = encode_value_in(&note, Codec::Json, Some(T0 + i), None, "k").unwrap();
        assert!(bulk_text_is_exact(std::str::from_utf8(&json).unwrap()));
        for (codec, ring) in [
            (Codec::Postcard, None),
            (Codec::Postcard, Some(&ring)),
            (Codec::Json, Some(&ring)),
        ] {
            let bytes = encode_value_in(&note, codec, Some(T0 + i), ring, "k").unwrap();
            let text = String::from_utf8_lossy(&bytes);
            assert!(
                !bulk_text_is_exact(&text),
                "{codec:?} sealed={}",
                ring.is_some()
            );
        }
    }
    assert!(bulk_text_is_exact(" \n{\"kv\":1}"));
    assert!(
        !bulk_text_is_exact("{\"a\":\"\u{FFFD}\"}"),
        "U+FFFD may be a lossy byte"
    );
    assert!(!bulk_text_is_exact(""));
}

/// The simulator's bulk get reads each key as a single get at that location would: the same
/// seed and writes, read one way or the other, give the same answers, stale ones included.
#[test]
fn sim_bulk_get_has_per_key_staleness() {
    let run = |bulk: bool| {
        let clock = ManualClock::new(T0);
        let sim = SimKv::new(5, SimConfig::default(), Arc::new(clock.clone()));
        let (writer, reader) = (sim.kv(0), sim.kv(1));
        let keys: Vec<String> = (0..40).map(|i| format!("s:{i}")).collect();
        let refs: Vec<&str> = keys.iter().map(String::as_str).collect();
        let mut seen = Vec::new();
        for round in 0..6u64 {
            for (i, k) in refs.iter().enumerate() {
                if (i as u64 + round).is_multiple_of(3) {
                    block_on(writer.put(k, format!("{round}").as_bytes(), None, None)).unwrap();
                } else if (i as u64 + round).is_multiple_of(7) {
                    block_on(writer.delete(k)).unwrap();
                }
            }
            clock.advance(Duration::from_millis(7_000 + round * 3_100));
            let got: Vec<Option<Stored>> = if bulk {
                block_on(reader.get_many(&refs)).unwrap()
            } else {
                refs.iter()
                    .map(|k| block_on(reader.get(k)).unwrap())
                    .collect()
            };
            seen.push(got);
        }
        (seen, sim.stats())
    };
    let (bulk, bulk_stats) = run(true);
    let (single, single_stats) = run(false);
    assert_eq!(bulk, single);
    assert!(bulk_stats.stale_reads > 0, "the run exercised staleness");
    assert_eq!(bulk_stats.stale_reads, single_stats.stale_reads);
    assert_eq!(
        bulk_stats.negative_cache_hits,
        single_stats.negative_cache_hits
    );
    assert_eq!(bulk_stats.bulk_gets, 6);
}

trait ClockExt {
    fn now(&self) -> u64;
}

impl ClockExt for ManualClock {
    fn now(&self) -> u64 {
        kv_envelope::Clock::now_ms(self)
    }
}

macro_rules! conformance {
    ($backend:ident => |$clock:ident| $make:expr, linger: $linger:expr) => {
        mod $backend {
            use super::*;

            fn fixture() -> Fixture {
                let $clock = ManualClock::new(T0);
                let backend: Arc<dyn KvBackend> = $make;
                Fixture {
                    backend,
                    clock: $clock,
                    list_linger: $linger,
                }
            }

            conformance!(@tests
                get_missing_is_none,
                put_then_get_round_trips_value_and_metadata,
                put_without_metadata_reads_none,
                overwrite_last_write_wins,
                delete_removes_and_is_idempotent,
                empty_value_round_trips,
                unicode_keys_round_trip,
                list_filters_by_prefix_in_key_order,
                list_pages_with_cursors_cover_everything_once,
                list_limit_is_respected_per_page,
                list_of_nothing_is_complete,
                list_reports_metadata_and_expiration,
                list_skips_deleted_keys,
                expiration_hides_value_after_it_passes,
                rewrite_without_expiration_makes_value_permanent,
                kv_rejects_bad_keys_before_io,
                kv_accepts_limit_sized_key_and_metadata,
                kv_rejects_multibyte_key_over_limit,
                kv_rejects_oversize_metadata,
                kv_rejects_oversize_value,
                kv_clamps_short_expiration_to_floor,
                kv_keeps_long_expiration_exact,
                kv_refuses_past_expiration,
                kv_list_all_follows_cursors,
                get_many_matches_single_gets,
                kv_get_many_rejects_bad_keys_before_io,
            );
        }
    };
    (@tests $($case:ident),+ $(,)?) => {
        $(
            #[test]
            fn $case() {
                super::$case(fixture());
            }
        )+
    };
}

conformance!(memory => |clock| Arc::new(MemoryKv::new(Arc::new(clock.clone()))), linger: Duration::ZERO);

conformance!(sim_strong => |clock| Arc::new(
    SimKv::new(7, SimConfig::strong(), Arc::new(clock.clone())).location(0)
), linger: Duration::ZERO);

// KV's lazy expiry and empty list pages, but a single location so reads are consistent.
conformance!(sim_lazy_single_location => |clock| Arc::new(
    SimKv::new(
        11,
        SimConfig::default().with_locations(1).with_empty_page_rate(0.5),
        Arc::new(clock.clone()),
    )
    .location(0)
), linger: SimConfig::default().list_linger);

// The trait's default `get_bulk` (single gets), over the in-memory map.
conformance!(default_get_bulk => |clock| Arc::new(
    SingleGetsOnly(Arc::new(MemoryKv::new(Arc::new(clock.clone()))))
), linger: Duration::ZERO);

// Durable Objects (simulated: the object logic workerd runs, over in-memory storage), all keys
// in one object so that every prefix can be listed.
conformance!(durable_object => |clock| Arc::new(
    SimObjects::new(Placement::Single("kv".into()), Arc::new(clock.clone()))
), linger: Duration::ZERO);

// Keys spread over objects by group: the suite's prefixes are single fields and many cases
// check their writes with a `list`, so only the cases that never list run here; listing by
// group has its own test below.
mod durable_objects_by_group {
    use super::*;

    fn fixture() -> Fixture {
        let clock = ManualClock::new(T0);
        Fixture {
            backend: Arc::new(SimObjects::new(Placement::ByGroup, Arc::new(clock.clone()))),
            clock,
            list_linger: Duration::ZERO,
        }
    }

    conformance!(@tests
        get_missing_is_none,
        put_then_get_round_trips_value_and_metadata,
        put_without_metadata_reads_none,
        overwrite_last_write_wins,
        empty_value_round_trips,
        rewrite_without_expiration_makes_value_permanent,
        kv_rejects_bad_keys_before_io,
        kv_accepts_limit_sized_key_and_metadata,
        kv_refuses_past_expiration,
    );
}

fn objects(placement: Placement) -> (ManualClock, SimObjects) {
    let clock = ManualClock::new(T0);
    let objects = SimObjects::new(placement, Arc::new(clock.clone()));
    (clock, objects)
}

/// The live cases (`conformance::run`, below) check the conditional write's semantics; what
/// needs the test clock is here: an expired value counts as absent, as it reads as absent.
#[test]
fn a_conditional_write_treats_an_expired_value_as_absent() {
    let (clock, objects) = objects(Placement::ByGroup);
    let kv = objects.kv(0);
    assert_eq!(kv.consistency(), Consistency::Linearizable);
    let at = kv.now_ms() + 90_000;
    assert!(block_on(kv.put_if("s:e", b"x", Some(at), None, &Expected::Absent)).unwrap());
    assert!(!put_if_at(&kv, "s:e", Expected::Absent), "live: present");
    clock.advance(Duration::from_secs(100));
    assert!(!put_if_at(&kv, "s:e", Expected::Stamp(Stamp::of(b"x"))));
    assert!(put_if_at(&kv, "s:e", Expected::Absent));
    assert_eq!(block_on(kv.get("s:e")).unwrap().unwrap().value, b"y");
}

fn put_if_at(kv: &Kv, key: &str, expected: Expected) -> bool {
    block_on(kv.put_if(key, b"y", None, None, &expected)).expect("put_if")
}

#[test]
fn kv_backends_have_no_conditional_write() {
    let clock = ManualClock::new(T0);
    let backends: Vec<Arc<dyn KvBackend>> = vec![
        Arc::new(MemoryKv::new(Arc::new(clock.clone()))),
        Arc::new(SimKv::new(3, SimConfig::default(), Arc::new(clock.clone())).location(0)),
    ];
    for backend in backends {
        let kv = Kv::from_arc(backend).with_clock(Arc::new(clock.clone()));
        assert_eq!(kv.consistency(), Consistency::Eventual);
        let err = block_on(kv.put_if("k", b"v", None, None, &Expected::Absent)).unwrap_err();
        assert!(
            matches!(
                err,
                Error::Backend {
                    op: "put_if",
                    retryable: false,
                    ..
                }
            ),
            "{err:?}"
        );
        assert_eq!(block_on(kv.get("k")).unwrap(), None, "nothing written");
    }
}

#[test]
fn the_alarm_deletes_expired_records_and_keeps_live_ones() {
    let (clock, objects) = objects(Placement::ByGroup);
    let kv = objects.kv(0);
    let now = kv.now_ms();
    block_on(kv.put("s:short", b"a", Some(now + 70_000), None)).unwrap();
    block_on(kv.put("s:long", b"b", Some(now + 3_600_000), None)).unwrap();
    block_on(kv.put("s:forever", b"c", None, None)).unwrap();
    assert_eq!(
        block_on(objects.run_alarms()).unwrap(),
        0,
        "nothing due yet"
    );
    clock.advance(Duration::from_secs(80));
    // Lazy expiry hides it at once; the alarm removes it.
    assert_eq!(block_on(kv.get("s:short")).unwrap(), None);
    assert_eq!(block_on(objects.run_alarms()).unwrap(), 1);
    assert_eq!(objects.stored_keys(), ["s:forever", "s:long"]);
    clock.advance(Duration::from_secs(3600));
    assert_eq!(block_on(objects.run_alarms()).unwrap(), 1);
    assert_eq!(objects.stored_keys(), ["s:forever"]);
}

#[test]
fn objects_by_group_list_one_group_and_refuse_a_prefix_spanning_objects() {
    let (clock, objects) = objects(Placement::ByGroup);
    let kv = objects.kv(0);
    for key in ["u:alice:1", "u:alice:2", "u:bob:1", "s:1"] {
        block_on(kv.put(key, b"v", None, None)).unwrap();
        clock.advance(Duration::from_secs(1));
    }
    let names: Vec<String> = block_on(kv.list_all("u:alice:", 10))
        .unwrap()
        .into_iter()
        .map(|k| k.name)
        .collect();
    assert_eq!(names, ["u:alice:1", "u:alice:2"]);
    let err = block_on(kv.list("u:", None, 10)).unwrap_err();
    assert!(
        matches!(
            err,
            Error::Backend {
                op: "list",
                retryable: false,
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(objects.object_names(), ["s:1", "u:alice", "u:bob"]);
    // One request per object a bulk read touches.
    let before = objects.requests();
    let got = block_on(kv.get_many(&["u:alice:1", "u:alice:2", "u:bob:1", "s:nope"])).unwrap();
    assert_eq!(got.iter().filter(|v| v.is_some()).count(), 3);
    assert_eq!(objects.requests() - before, 3);
}

// ---- the live cases (`backend::conformance`, also run on workerd by the demo) ----------------

#[test]
fn the_live_cases_pass_on_every_backend_without_a_per_key_write_limit() {
    let clock = ManualClock::new(T0);
    let backends: Vec<(&str, Arc<dyn KvBackend>)> = vec![
        ("memory", Arc::new(MemoryKv::new(Arc::new(clock.clone())))),
        (
            "durable_object",
            Arc::new(SimObjects::new(
                Placement::Single("kv".into()),
                Arc::new(clock.clone()),
            )),
        ),
        (
            "durable_objects_by_group",
            Arc::new(SimObjects::new(Placement::ByGroup, Arc::new(clock.clone()))),
        ),
    ];
    for (name, backend) in backends {
        let kv = Kv::from_arc(backend).with_clock(Arc::new(clock.clone()));
        let reports = block_on(conformance::run(&kv, "conformance:run-1:"));
        assert_eq!(reports.len(), 12, "{name}");
        for r in &reports {
            assert!(r.passed, "{name}: {} failed: {:?}", r.name, r.failure);
        }
        let left = block_on(kv.list_all("conformance:run-1:", 10)).expect("list");
        assert!(left.is_empty(), "{name}: the run cleans up after itself");
    }
}

/// A backend that loses metadata: the live cases must notice.
struct DropsMetadata(MemoryKv);

#[async_trait::async_trait]
impl KvBackend for DropsMetadata {
    async fn get(&self, key: &str) -> kv_envelope::Result<Option<Stored>> {
        Ok(self.0.get(key).await?.map(|s| Stored {
            metadata: None,
            ..s
        }))
    }
    async fn put(
        &self,
        key: &str,
        value: &[u8],
        options: &WriteOptions,
    ) -> kv_envelope::Result<()> {
        self.0.put(key, value, options).await
    }
    async fn delete(&self, key: &str) -> kv_envelope::Result<()> {
        self.0.delete(key).await
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
fn the_live_cases_catch_a_backend_that_loses_metadata() {
    let clock = ManualClock::new(T0);
    let kv = Kv::new(DropsMetadata(MemoryKv::new(Arc::new(clock.clone()))))
        .with_clock(Arc::new(clock.clone()));
    let reports = block_on(conformance::run(&kv, "conformance:run-2:"));
    let failed: Vec<&str> = reports
        .iter()
        .filter(|r| !r.passed)
        .map(|r| r.name)
        .collect();
    assert_eq!(failed, ["round_trip"], "{reports:?}");
}

#[test]
fn durable_objects_refuse_a_value_their_storage_cannot_hold_before_any_request() {
    let (_, objects) = objects(Placement::ByGroup);
    let kv = objects.kv(0);
    let fits = vec![7u8; 1_400_000];
    block_on(kv.put("s:fits", &fits, None, None)).expect("1.4 MB fits");
    assert_eq!(block_on(kv.get("s:fits")).unwrap().unwrap().value, fits);
    let before = objects.requests();
    let big = vec![7u8; 1_600_000];
    let err = block_on(kv.put("s:big", &big, None, None)).unwrap_err();
    assert!(
        matches!(err, Error::Limit(LimitError::ValueTooLarge { len: 1_600_000, max }) if max < 1_500_000),
        "{err:?}"
    );
    let err = block_on(kv.put_if("s:big", &big, None, None, &Expected::Absent)).unwrap_err();
    assert!(matches!(err, Error::Limit(_)), "{err:?}");
    assert_eq!(objects.requests(), before, "refused before any request");
}

#[test]
fn the_alarm_reaches_expired_records_behind_more_than_a_page_of_live_ones() {
    let (clock, objects) = objects(Placement::Single("big".into()));
    let kv = objects.kv(0);
    let now = kv.now_ms();
    // 2,500 live records (more than two pages) sort before the expiring ones: before the fix
    // the sweep took its second page for the last and never reached them.
    for i in 0..2500 {
        block_on(kv.put(&format!("a:{i:05}"), b"v", None, None)).unwrap();
    }
    for i in 0..3 {
        block_on(kv.put(&format!("z:{i}"), b"v", Some(now + 70_000), None)).unwrap();
    }
    clock.advance(Duration::from_secs(80));
    assert_eq!(block_on(objects.run_alarms()).unwrap(), 3);
    assert_eq!(objects.stored_keys().len(), 2500);
}
