//! The hostile-input corpus: every file under `tests/corpus/<kind>/` is one case, and
//! `tests/corpus/manifest.txt` says what it must give. Nothing may panic; every envelope case is
//! a typed error of the expected kind or a clean miss (controls decode); no error text carries the
//! secret marker planted in payloads; the typed store refuses to overwrite what it cannot read.

mod common;

use std::{
    collections::BTreeMap,
    panic::{catch_unwind, AssertUnwindSafe},
    path::{Path, PathBuf},
    sync::Arc,
    time::Duration,
};

use futures::executor::block_on;
use kv_envelope::{
    decode_value, envelope,
    envelope::Header,
    session::{
        CookieConfig, IdSource, Lookup, NoSession, SessionGate, SessionId, SessionRecord, Sessions,
    },
    testing::{SimConfig, SimKv},
    Error, Kv, LimitError, ManualClock, Overwrite, TypedStore,
};

use common::NOW;
/// Planted in payload values of the schema cases; must never come back in an error.
const SECRETS: [&str; 2] = ["SECRET", "hunter2"];

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus")
}

/// `path → expected` from the manifest.
fn manifest() -> BTreeMap<String, String> {
    let text = std::fs::read_to_string(root().join("manifest.txt")).expect("manifest.txt");
    let mut out = BTreeMap::new();
    for line in text.lines() {
        let line = line.split(" -- ").next().unwrap_or("").trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut parts = line.split_whitespace();
        let (Some(path), Some(expected), None) = (parts.next(), parts.next(), parts.next()) else {
            panic!("bad manifest line: {line}");
        };
        assert!(
            out.insert(path.to_string(), expected.to_string()).is_none(),
            "{path} listed twice"
        );
    }
    out
}

/// Every case file (files inside the per-kind folders).
fn files() -> Vec<String> {
    let mut out = Vec::new();
    for dir in std::fs::read_dir(root()).expect("corpus dir") {
        let dir = dir.expect("entry").path();
        if !dir.is_dir() {
            continue;
        }
        for f in std::fs::read_dir(&dir).expect("kind dir") {
            let f = f.expect("entry").path();
            let rel = f.strip_prefix(root()).expect("under root");
            out.push(rel.to_string_lossy().replace('\\', "/"));
        }
    }
    out.sort();
    out
}

fn cases(kind: &str) -> Vec<(String, String, Vec<u8>)> {
    manifest()
        .into_iter()
        .filter(|(path, _)| path.starts_with(&format!("{kind}/")))
        .map(|(path, expected)| {
            let bytes = std::fs::read(root().join(&path)).expect("case file");
            (path, expected, bytes)
        })
        .collect()
}

fn assert_no_secret(path: &str, what: &str, e: &Error) {
    for text in [e.to_string(), format!("{e:?}")] {
        for s in SECRETS {
            assert!(
                !text.contains(s),
                "{path}: {what} error echoes payload: {text}"
            );
        }
    }
}

/// `ok`, `miss` or the error kind of decoding `bytes` as a session at `NOW`.
fn outcome(path: &str, bytes: &[u8]) -> String {
    match decode_value::<SessionRecord>(bytes, NOW, true) {
        Ok(Some(_)) => "ok".into(),
        Ok(None) => "miss".into(),
        Err(e) => {
            assert_no_secret(path, "decode_value", &e);
            e.kind().into()
        }
    }
}

/// Run `check` on every case, collecting panics and failures so one run reports them all.
fn run_all(kind: &str, check: impl Fn(&str, &str, &[u8]) -> Result<(), String>) {
    let cases = cases(kind);
    assert!(cases.len() >= 10, "{kind}: corpus too small");
    let mut failures = Vec::new();
    for (path, expected, bytes) in &cases {
        match catch_unwind(AssertUnwindSafe(|| check(path, expected, bytes))) {
            Ok(Ok(())) => {}
            Ok(Err(msg)) => failures.push(format!("{path}: {msg}")),
            Err(panic) => {
                let msg = panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_string()))
                    .unwrap_or_default();
                failures.push(format!("{path}: PANIC {msg}"));
            }
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

#[test]
fn manifest_and_folder_agree() {
    let listed: Vec<String> = manifest().into_keys().collect();
    assert_eq!(
        listed,
        files(),
        "every file is a listed case and every case a file"
    );
}

#[test]
fn corpus_has_hostile_cases_and_controls() {
    let m = manifest();
    let ok = m.values().filter(|e| *e == "ok").count();
    let hostile = m.len() - ok;
    assert!(ok >= 3, "controls prove the harness can accept");
    assert!(hostile >= 60, "{hostile} hostile cases");
}

#[test]
fn envelope_cases_give_their_expected_outcome() {
    run_all("envelope", |path, expected, bytes| {
        let got = outcome(path, bytes);
        if got != expected {
            return Err(format!("expected {expected}, got {got}"));
        }
        Ok(())
    });
}

#[test]
fn header_peek_agrees_with_full_decode() {
    run_all("envelope", |path, _, bytes| {
        let peek = envelope::peek_header(bytes);
        let full = envelope::decode(bytes);
        if let Err(e) = &peek {
            assert_no_secret(path, "peek_header", e);
        }
        if let Err(e) = &full {
            assert_no_secret(path, "decode", e);
        }
        match (&peek, &full) {
            (Ok(p), Ok(f)) if *p != f.header => Err(format!("peek {p:?} != decode {:?}", f.header)),
            (Err(_), Ok(_)) => Err("decode accepts what peek_header refuses".into()),
            _ => Ok(()),
        }
    });
}

#[test]
fn typed_store_reads_each_case_like_decode_and_never_overwrites_what_it_cannot_read() {
    let clock = ManualClock::new(NOW);
    let sim = SimKv::new(1, SimConfig::strong(), Arc::new(clock.clone()));
    let store = TypedStore::<SessionRecord>::new(sim.kv(0));
    let fresh = SessionRecord {
        user_id: "u".into(),
        email: "u@example.com".into(),
        created_at: NOW,
        expires_at: NOW + 3_600_000,
        absolute_expires_at: NOW + 3_600_000,
        refreshed_at: NOW,
        roles: vec![],
    };
    run_all("envelope", |path, expected, bytes| {
        let id = path.replace('/', "-");
        let key = store.key(&id);
        sim.insert_raw(&key, bytes.to_vec(), None);
        let got = match block_on(store.get(&id)) {
            Ok(Some(_)) => "ok".to_string(),
            Ok(None) => "miss".to_string(),
            Err(e) => {
                assert_no_secret(path, "store get", &e);
                e.kind().to_string()
            }
        };
        if got != expected {
            return Err(format!("store get: expected {expected}, got {got}"));
        }
        // Readable or expired values may be replaced; anything else must survive.
        let protected = !matches!(expected, "ok" | "miss");
        let put = block_on(store.put_until(&id, &fresh, Some(NOW + 3_600_000), Overwrite::Safe));
        // One write per second per key.
        clock.advance(Duration::from_secs(1));
        match (protected, put) {
            (true, Ok(())) => return Err("overwrote a value it could not read".into()),
            (true, Err(e)) if e.kind() != expected => {
                return Err(format!("put refused with {} not {expected}", e.kind()))
            }
            (true, Err(_)) => {
                if sim.central(&key).map(|s| s.value).as_deref() != Some(bytes) {
                    return Err("stored bytes changed".into());
                }
            }
            (false, Err(e)) => return Err(format!("put over a readable value failed: {e}")),
            (false, Ok(())) => {}
        }
        // A cache may replace corrupt data, never a newer version nor a sealed value it cannot
        // open (a rotation mistake must lose nothing).
        let put =
            block_on(store.put_until(&id, &fresh, Some(NOW + 3_600_000), Overwrite::AllowCorrupt));
        clock.advance(Duration::from_secs(1));
        let kept = expected == "future_version" || expected.starts_with("sealed_");
        match (kept, put) {
            (true, Ok(())) => Err(format!("AllowCorrupt overwrote a {expected} value")),
            (true, Err(_)) => {
                if sim.central(&key).map(|s| s.value).as_deref() != Some(bytes) {
                    return Err("stored bytes changed".into());
                }
                Ok(())
            }
            (false, Ok(())) => Ok(()),
            (false, Err(e)) => Err(format!("AllowCorrupt put failed: {e}")),
        }
    });
}

#[test]
fn metadata_cases_parse_or_are_ignored() {
    run_all("metadata", |_, expected, bytes| {
        // KV hands metadata over as text; non-UTF-8 cannot reach us.
        let text = String::from_utf8_lossy(bytes);
        let got = match Header::from_metadata(&text) {
            Some(_) => "some",
            None => "none",
        };
        if got != expected {
            return Err(format!("expected {expected}, got {got}"));
        }
        Ok(())
    });
}

/// Ids drawn as all `0x11` bytes: the live session of the cookie corpus is `11…11`.
struct Elevens;

impl IdSource for Elevens {
    fn fill(&self, dest: &mut [u8]) -> kv_envelope::Result<()> {
        dest.fill(0x11);
        Ok(())
    }
}

fn assert_reason_is_safe(path: &str, reason: &NoSession) {
    let text = format!("{reason} {reason:?}");
    for s in SECRETS {
        assert!(
            !text.contains(s),
            "{path}: reason echoes the cookie: {text}"
        );
    }
    assert!(
        !text.contains(&"1".repeat(64)),
        "{path}: reason echoes the id: {text}"
    );
}

/// Every `Cookie` header case through the session gate, with one live session stored: found,
/// or the expected reason; malformed input never reaches KV.
#[test]
fn cookie_cases_resolve_to_their_expected_outcome_before_any_kv_call() {
    let clock = ManualClock::new(NOW);
    let sim = SimKv::new(3, SimConfig::strong(), Arc::new(clock.clone()));
    let store = Sessions::new(sim.kv(0)).with_id_source(Arc::new(Elevens));
    let (id, _) = block_on(store.create("u1", "u1@example.com")).expect("create");
    assert_eq!(id.expose(), "11".repeat(32));
    // The corpus is written for the bare name `session` (the default is `__Host-session`).
    let gate = SessionGate::new(store).with_cookie(CookieConfig::default().with_host_prefix(false));
    run_all("cookies", |path, expected, bytes| {
        // Workers hands headers over as strings; other bytes cannot reach us.
        let header = String::from_utf8_lossy(bytes);
        let reads_before = gate.store().kv().counters().snapshot().kv_reads;
        let got = match block_on(gate.resolve(Some(&header))) {
            Ok(Lookup::Found((found, s))) => {
                if found != id || s.user_id != "u1" {
                    return Err("found another session".into());
                }
                "found".to_string()
            }
            Ok(Lookup::NoSession(reason)) => {
                assert_reason_is_safe(path, &reason);
                reason.code().to_string()
            }
            Err(e) => return Err(format!("KV error {e:?}")),
        };
        let reads = gate.store().kv().counters().snapshot().kv_reads - reads_before;
        if got != "found" && got != "not_found" && reads != 0 {
            return Err(format!(
                "{got} after {reads} KV reads: bad input must stop before KV"
            ));
        }
        if got != expected {
            return Err(format!("expected {expected}, got {got}"));
        }
        Ok(())
    });
}

/// Every id case through `SessionId::parse`, and well-formed ones through a store lookup
/// (nothing stored under them: a clean miss).
#[test]
fn session_id_cases_parse_or_are_refused_without_echo() {
    let clock = ManualClock::new(NOW);
    let sim = SimKv::new(4, SimConfig::strong(), Arc::new(clock));
    let store: Sessions = Sessions::new(sim.kv(0));
    run_all("session-ids", |path, expected, bytes| {
        let text = String::from_utf8_lossy(bytes);
        match SessionId::parse(&text) {
            Ok(id) => {
                if format!("{id:?}").contains(&*text) {
                    return Err("Debug prints the id".into());
                }
                match block_on(store.lookup(&id)) {
                    Ok(Lookup::NoSession(NoSession::NotFound)) => {}
                    other => return Err(format!("lookup: {other:?}")),
                }
                (expected == "ok")
                    .then_some(())
                    .ok_or_else(|| format!("expected {expected}, got ok"))
            }
            Err(reason) => {
                assert_reason_is_safe(path, &reason);
                if !text.is_empty() && reason.to_string().contains(&*text) {
                    return Err("reason echoes the text".into());
                }
                (reason.code() == expected)
                    .then_some(())
                    .ok_or_else(|| format!("expected {expected}, got {}", reason.code()))
            }
        }
    });
}

/// Generated rather than committed: 25 MiB does not belong in git.
#[test]
fn oversize_value_is_refused_by_kv_and_decodes_without_panic() {
    let limit = kv_envelope::__internal::MAX_VALUE_BYTES;
    let mut big = br#"{"kv":1,"type":"session","v":3,"exp":null,"data":{"userId":""#.to_vec();
    big.resize(limit + 16, b'a');
    big.extend_from_slice(br#"","email":"a@example.com"}}"#);
    let got = outcome("generated/oversize.json", &big);
    assert_eq!(
        got, "validation",
        "huge userId fails maxLength, without panic"
    );
    let clock = ManualClock::new(NOW);
    let kv =
        Kv::new(kv_envelope::MemoryKv::new(Arc::new(clock.clone()))).with_clock(Arc::new(clock));
    assert_eq!(
        block_on(kv.put("k", &big, None, None)),
        Err(Error::Limit(LimitError::ValueTooLarge {
            len: big.len(),
            max: limit
        }))
    );
}
