//! The ops CLI on committed fixtures: every command in-process through `cli::run_with`, and the
//! built `kv-envelope` binary once.
//!
//! The fixtures under `tests/fixtures/cli/` are produced by the crate's own encoder in
//! [`fixtures`]; `fixtures_are_what_the_encoder_writes` fails when they drift. Regenerate with
//! `KV_ENVELOPE_BLESS=1 cargo test -p kv-envelope-cli --test cli fixtures`.

use std::{
    collections::{BTreeMap, BTreeSet},
    path::{Path, PathBuf},
};

use kv_envelope::{
    decode_value,
    envelope::{self, Header},
    session::SessionRecord,
    Codec, Versioned,
};
use kv_envelope_cli::{self as cli, Registry, EXIT_INVALID, EXIT_OK, EXIT_UNDECIDED, EXIT_USAGE};
use serde_json::{json, Value};

/// The clock of every run: 2025-10-09T08:53:20Z.
const NOW: u64 = 1_760_000_000_000;
const HOUR: u64 = 3_600_000;
const DAY: u64 = 24 * HOUR;
/// A value that must never appear in any output: the invalid fixture's email.
const SECRET: &str = "hunter2-not-an-email";

fn fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/cli")
}

fn fixture(name: &str) -> String {
    fixture_dir().join(name).display().to_string()
}

/// A scratch directory of this test, emptied first.
fn scratch(test: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("cli")
        .join(test);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

struct Run {
    code: u8,
    out: String,
    err: String,
}

impl Run {
    fn json(&self) -> Value {
        serde_json::from_str(&self.out)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{}", self.out))
    }

    /// Neither stream may carry the secret payload value.
    fn assert_no_secret(&self) {
        assert!(!self.out.contains(SECRET), "stdout leaks a payload value");
        assert!(!self.err.contains(SECRET), "stderr leaks a payload value");
    }
}

fn run_stdin(args: &[&str], stdin: &[u8]) -> Run {
    let now = NOW.to_string();
    let mut argv = vec!["kv-envelope", "--now", now.as_str()];
    argv.extend_from_slice(args);
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let mut input = stdin;
    let code = cli::run_with(
        argv,
        &Registry::with_shipped(),
        &mut input,
        &mut out,
        &mut err,
    );
    Run {
        code,
        out: String::from_utf8(out).unwrap(),
        err: String::from_utf8(err).unwrap(),
    }
}

fn run(args: &[&str]) -> Run {
    run_stdin(args, b"")
}

/// The fixture set, generated with the crate's own encoder.
mod fixtures {
    use kv_envelope::session::{SessionRecordV1, SessionRecordV2};

    use super::*;

    pub fn v1(user: &str, expires_at: u64) -> SessionRecordV1 {
        SessionRecordV1 {
            user_id: user.into(),
            email: format!("{user}@example.com"),
            created_at: NOW - DAY,
            expires_at,
        }
    }

    pub fn v2(user: &str, expires_at: u64) -> SessionRecordV2 {
        SessionRecordV2 {
            user_id: user.into(),
            email: format!("{user}@example.com"),
            created_at: NOW - 2 * DAY,
            expires_at,
            absolute_expires_at: NOW + 28 * DAY,
        }
    }

    pub fn v3(user: &str, expires_at: u64) -> SessionRecord {
        SessionRecord {
            user_id: user.into(),
            email: format!("{user}@example.com"),
            created_at: NOW - 3 * DAY,
            expires_at,
            absolute_expires_at: NOW + 27 * DAY,
            refreshed_at: NOW - HOUR,
            roles: vec!["admin".into()],
        }
    }

    /// Envelope bytes as code of another era (or another type) wrote them.
    pub fn enc<T: serde::Serialize>(
        codec: Codec,
        type_name: &'static str,
        version: u32,
        exp: Option<u64>,
        value: &T,
    ) -> Vec<u8> {
        envelope::encode(codec, type_name, version, exp, value).unwrap()
    }

    pub fn meta(codec: Codec, type_name: &str, version: u32, exp: Option<u64>) -> Value {
        let h = Header {
            codec,
            type_name: type_name.to_string().into(),
            version,
            expires_at: exp,
            key_id: None,
        };
        serde_json::from_str(&h.to_metadata()).unwrap()
    }

    pub fn future_payload() -> Value {
        json!({
            "userId": "u-future", "email": "future@example.com", "createdAt": NOW,
            "expiresAt": NOW + DAY, "absoluteExpiresAt": NOW + 30 * DAY,
            "refreshedAt": NOW, "roles": [], "device": "phone"
        })
    }

    pub fn invalid_payload() -> Value {
        json!({ "userId": "", "email": SECRET, "createdAt": NOW, "expiresAt": NOW + DAY })
    }

    /// A JSON bulk entry of a JSON envelope.
    fn text_entry(key: &str, bytes: &[u8], metadata: Option<Value>) -> Value {
        let mut e = json!({ "key": key, "value": String::from_utf8(bytes.to_vec()).unwrap() });
        if let Some(m) = metadata {
            e["metadata"] = m;
        }
        e
    }

    fn b64_entry(key: &str, b64: &str, metadata: Option<Value>) -> Value {
        let mut e = json!({ "key": key, "value": b64, "base64": true });
        if let Some(m) = metadata {
            e["metadata"] = m;
        }
        e
    }

    pub fn b64(bytes: &[u8]) -> String {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.encode(bytes)
    }

    /// `wrangler kv key list` output: one key for each census case.
    fn key_list() -> Value {
        let key = |name: &str, expiration: Option<u64>, metadata: Option<Value>| {
            let mut k = json!({ "name": name });
            if let Some(e) = expiration {
                k["expiration"] = json!(e);
            }
            if let Some(m) = metadata {
                k["metadata"] = m;
            }
            k
        };
        let s = |ms: u64| Some(ms.div_ceil(1000));
        let (j, p) = (Codec::Json, Codec::Postcard);
        json!([
            key(
                "session:a",
                s(NOW + HOUR / 2),
                Some(meta(j, "session", 1, Some(NOW + HOUR / 2)))
            ),
            key(
                "session:b",
                s(NOW + 3 * DAY),
                Some(meta(p, "session", 2, Some(NOW + 3 * DAY)))
            ),
            key(
                "session:c",
                s(NOW + 20 * DAY),
                Some(meta(j, "session", 3, Some(NOW + 20 * DAY)))
            ),
            key("session:d", None, Some(meta(j, "session", 3, None))),
            key(
                "session:e",
                s(NOW + DAY),
                Some(meta(j, "session", 4, Some(NOW + DAY)))
            ),
            // Envelope expired an hour ago; KV has not purged it yet.
            key(
                "session:f",
                s(NOW + 60_000),
                Some(meta(j, "session", 1, Some(NOW - HOUR)))
            ),
            // Envelope expiry without a KV expiration: KV would keep it forever.
            key(
                "session:g",
                None,
                Some(meta(p, "session", 1, Some(NOW + 2 * DAY)))
            ),
            // KV expires it 39 days before its envelope does.
            key(
                "session:h",
                s(NOW + DAY),
                Some(meta(j, "session", 2, Some(NOW + 40 * DAY)))
            ),
            key(
                "sess2:x",
                s(NOW + DAY),
                Some(meta(j, "session", 2, Some(NOW + DAY)))
            ),
            key("cart:1", None, Some(meta(j, "cart", 1, None))),
            key("config:flags", None, None),
            key(
                "legacy",
                s(NOW + 400 * DAY),
                Some(json!({ "owner": "billing" }))
            ),
        ])
    }

    /// The dump `migrate` reads: one entry for each decision it makes.
    fn dump() -> Value {
        let (j, p) = (Codec::Json, Codec::Postcard);
        let v1_exp = NOW + DAY;
        let v1json = enc(j, "session", 1, Some(v1_exp), &v1("u-1", v1_exp));
        let v2_exp = NOW + 7 * DAY;
        let v2pc = enc(p, "session", 2, Some(v2_exp), &v2("u-2", v2_exp));
        let v3_exp = NOW + 20 * DAY;
        let v3 = enc(j, "session", 3, Some(v3_exp), &v3("u-3", v3_exp));
        let invalid = enc(j, "session", 1, Some(NOW + DAY), &invalid_payload());
        let mut corrupt = enc(p, "session", 2, Some(v2_exp), &v2("u-c", v2_exp));
        corrupt.truncate(corrupt.len() - 5);
        let expired = enc(j, "session", 1, Some(NOW - HOUR), &v1("u-x", NOW - HOUR));
        let never = enc(j, "session", 1, None, &v1("u-n", NOW + DAY));
        let soon = enc(
            j,
            "session",
            2,
            Some(NOW + 10_000),
            &v2("u-s", NOW + 10_000),
        );
        let future = enc(j, "session", 4, Some(NOW + DAY), &future_payload());
        let cart = enc(j, "cart", 1, None, &json!({ "items": [1, 2] }));
        let mut never_entry =
            text_entry("session:never", &never, Some(meta(j, "session", 1, None)));
        never_entry["expiration"] = json!((NOW + 3 * DAY) / 1000);
        // A product's own metadata field (the cache keeps its freshness times there).
        never_entry["metadata"]["ca"] = json!(NOW - HOUR);
        json!([
            text_entry(
                "session:v1json",
                &v1json,
                Some(meta(j, "session", 1, Some(v1_exp)))
            ),
            b64_entry(
                "session:v2pc",
                &b64(&v2pc),
                Some(meta(p, "session", 2, Some(v2_exp)))
            ),
            text_entry("session:v3", &v3, Some(meta(j, "session", 3, Some(v3_exp)))),
            text_entry(
                "session:v3stale",
                &v3,
                Some(meta(j, "session", 2, Some(v3_exp)))
            ),
            text_entry("session:v3nometa", &v3, None),
            text_entry(
                "session:future",
                &future,
                Some(meta(j, "session", 4, Some(NOW + DAY)))
            ),
            text_entry(
                "session:invalid",
                &invalid,
                Some(meta(j, "session", 1, Some(NOW + DAY)))
            ),
            b64_entry(
                "session:corrupt",
                &b64(&corrupt),
                Some(meta(p, "session", 2, Some(v2_exp)))
            ),
            b64_entry(
                "session:badb64",
                "xQEB!!not*base64",
                Some(meta(p, "session", 2, None))
            ),
            text_entry(
                "session:expired",
                &expired,
                Some(meta(j, "session", 1, Some(NOW - HOUR)))
            ),
            never_entry,
            text_entry(
                "session:soon",
                &soon,
                Some(meta(j, "session", 2, Some(NOW + 10_000)))
            ),
            text_entry("cart:1", &cart, Some(meta(j, "cart", 1, None))),
            text_entry("config:flags", br#"{"dark":true}"#, None),
        ])
    }

    /// Every fixture file: relative path → bytes.
    pub fn all() -> BTreeMap<&'static str, Vec<u8>> {
        let (j, p) = (Codec::Json, Codec::Postcard);
        let mut f: BTreeMap<&'static str, Vec<u8>> = BTreeMap::new();
        let pretty = |v: &Value| {
            let mut s = serde_json::to_string_pretty(v).unwrap();
            s.push('\n');
            s.into_bytes()
        };
        f.insert(
            "values/session-v1.json",
            enc(j, "session", 1, Some(NOW + DAY), &v1("u-1", NOW + DAY)),
        );
        let v2pc = enc(
            p,
            "session",
            2,
            Some(NOW + 7 * DAY),
            &v2("u-2", NOW + 7 * DAY),
        );
        f.insert(
            "values/session-v2.postcard.b64",
            format!("{}\n", b64(&v2pc)).into_bytes(),
        );
        f.insert("values/session-v2.postcard.bin", v2pc.clone());
        let mut truncated = v2pc;
        truncated.truncate(truncated.len() - 5);
        f.insert("values/session-v2-truncated.postcard.bin", truncated);
        f.insert(
            "values/session-v3.json",
            enc(j, "session", 3, None, &v3("u-3", NOW + 20 * DAY)),
        );
        f.insert(
            "values/session-v1-expired.postcard.bin",
            enc(p, "session", 1, Some(NOW - HOUR), &v1("u-x", NOW - HOUR)),
        );
        f.insert(
            "values/session-v4-future.json",
            enc(j, "session", 4, Some(NOW + DAY), &future_payload()),
        );
        f.insert(
            "values/session-v1-invalid.json",
            enc(j, "session", 1, Some(NOW + DAY), &invalid_payload()),
        );
        f.insert(
            "values/cart-v1.json",
            enc(j, "cart", 1, None, &json!({ "items": [] })),
        );
        // What `wrangler kv bulk put --local` stores for a base64 postcard value (wrangler 4.86).
        let mangled = String::from_utf8_lossy(&f["values/session-v2.postcard.bin"]).into_owned();
        f.insert("values/session-v2-mangled.txt", mangled.into_bytes());
        f.insert("values/bad-base64.txt", b"xQEBB3Nlc3Npb24C!!!\n".to_vec());
        f.insert("keys.json", pretty(&key_list()));
        let dump = pretty(&dump());
        // Cut inside the third entry, as a dump interrupted mid-write looks.
        let cut = dump
            .windows(b"session:v3\"".len())
            .position(|w| w == b"session:v3\"")
            .unwrap()
            + 4;
        f.insert("dump-truncated.json", dump[..cut].to_vec());
        f.insert("dump.json", dump);
        let clean: Vec<Value> = dump_entries()
            .into_iter()
            .filter(|e| {
                matches!(
                    e["key"].as_str(),
                    Some("session:v1json" | "session:v2pc" | "session:v3" | "config:flags")
                )
            })
            .collect();
        f.insert("dump-clean.json", pretty(&Value::Array(clean)));
        f.insert("dump.csv", b"key,value\nsession:a,{}\n".to_vec());
        // A key list given where a dump is expected: a plausible mix-up.
        f.insert(
            "wrong-shape.json",
            pretty(&json!([{ "name": "session:a", "expiration": 1 }])),
        );
        // What `wrangler kv bulk get` prints: text values, `null` for a missing key, and a
        // postcard value mangled by text decoding.
        let mangled =
            String::from_utf8_lossy(&enc(p, "session", 1, None, &v1("u-m", NOW))).into_owned();
        f.insert(
            "bulk-get.json",
            pretty(&json!({
                "session:v1json": { "value": String::from_utf8(enc(j, "session", 1, Some(NOW + DAY), &v1("u-1", NOW + DAY))).unwrap() },
                "session:gone": { "value": null },
                "session:binary": { "value": mangled },
                "config:flags": { "value": "{\"dark\":true}" },
            })),
        );
        f
    }

    pub fn dump_entries() -> Vec<Value> {
        match dump() {
            Value::Array(a) => a,
            _ => unreachable!(),
        }
    }
}

#[test]
fn fixtures_are_what_the_encoder_writes() {
    let dir = fixture_dir();
    let files = fixtures::all();
    if std::env::var_os("KV_ENVELOPE_BLESS").is_some() {
        for (name, bytes) in &files {
            let path = dir.join(name);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, bytes).unwrap();
        }
    }
    for (name, bytes) in &files {
        let on_disk = std::fs::read(dir.join(name))
            .unwrap_or_else(|e| panic!("{name}: {e} (regenerate with KV_ENVELOPE_BLESS=1)"));
        assert!(
            &on_disk == bytes,
            "{name} differs from the generator (regenerate with KV_ENVELOPE_BLESS=1)"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// schemas export

#[test]
fn schemas_export_writes_every_version_and_the_envelope_in_committed_format() {
    let dir = scratch("schemas_export");
    let d = dir.display().to_string();
    let r = run(&["schemas", "export", &d]);
    assert_eq!(r.code, EXIT_OK, "{}", r.err);
    // Every shipped type's versions and whole-value schema, the envelope and the metadata,
    // generated here by the schema module.
    let mut expected = vec![
        (
            "envelope.schema.json".to_string(),
            kv_envelope::export::envelope_schema(),
        ),
        (
            "metadata.schema.json".to_string(),
            kv_envelope::export::metadata_schema(),
        ),
    ];
    expected.extend(kv_envelope::export::schema_files_of::<SessionRecord>());
    expected.extend(kv_envelope::export::schema_files_of::<
        kv_envelope::session::SessionIndexEntry,
    >());
    expected.extend(kv_envelope::export::schema_files_of::<
        kv_envelope::cache::NamespaceGeneration,
    >());
    expected.extend(kv_envelope::export::schema_files_of::<
        kv_envelope::tower_sessions::TowerSessionRecord,
    >());
    expected.extend(kv_envelope::export::schema_files_of::<
        kv_envelope::tokens::TokenRecord,
    >());
    expected.extend(kv_envelope::export::schema_files_of::<
        kv_envelope::tokens::TokenIndexEntry,
    >());
    assert!(expected.iter().any(|(n, _)| n == "session.v2.schema.json"));
    assert!(expected
        .iter()
        .any(|(n, _)| n == "session.envelope.schema.json"));
    let written: BTreeSet<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        written,
        expected
            .iter()
            .map(|(n, _)| n.clone())
            .collect::<BTreeSet<_>>()
    );
    for (name, s) in &expected {
        assert_eq!(
            std::fs::read_to_string(dir.join(name)).unwrap(),
            kv_envelope::__internal::to_schema_file(s),
            "{name}"
        );
    }
    // A second export changes nothing, and --check agrees.
    let again = run(&["schemas", "export", &d]);
    assert!(
        again
            .out
            .contains(&format!("(0 written, {} unchanged)", expected.len())),
        "{}",
        again.out
    );
    assert_eq!(run(&["schemas", "export", &d, "--check"]).code, EXIT_OK);
}

#[test]
fn schemas_check_reports_differing_missing_and_stale_files() {
    let dir = scratch("schemas_check");
    let d = dir.display().to_string();
    run(&["schemas", "export", &d]);
    std::fs::write(dir.join("session.v2.schema.json"), "{}\n").unwrap();
    std::fs::remove_file(dir.join("envelope.schema.json")).unwrap();
    std::fs::write(dir.join("session.v9.schema.json"), "{}\n").unwrap();
    let r = run(&["schemas", "export", &d, "--check"]);
    assert_eq!(r.code, EXIT_INVALID);
    assert!(
        r.out.contains("differs:") && r.out.contains("session.v2.schema.json"),
        "{}",
        r.out
    );
    assert!(
        r.out.contains("missing:") && r.out.contains("envelope.schema.json"),
        "{}",
        r.out
    );
    assert!(
        r.out.contains("stale:") && r.out.contains("session.v9.schema.json"),
        "{}",
        r.out
    );
    // --check wrote nothing.
    assert_eq!(
        std::fs::read_to_string(dir.join("session.v2.schema.json")).unwrap(),
        "{}\n"
    );
}

#[test]
fn committed_schemas_folder_is_what_export_writes() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../schemas");
    let r = run(&["schemas", "export", &dir.display().to_string(), "--check"]);
    assert_eq!(r.code, EXIT_OK, "{}", r.out);
}

#[test]
fn shipped_registry_covers_every_shipped_schema_file() {
    // Two lists name the shipped types (the CLI registry and `shipped_schema_files`): a type
    // added to one and not the other fails here.
    let mut from_registry: BTreeSet<String> = Registry::with_shipped()
        .types()
        .flat_map(|t| {
            t.schema_files()
                .into_iter()
                .chain([t.envelope_schema_file()])
                .map(|(n, _)| n)
        })
        .collect();
    from_registry.insert("envelope.schema.json".into());
    from_registry.insert("metadata.schema.json".into());
    let shipped: BTreeSet<String> = kv_envelope::export::shipped_schema_files()
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    assert_eq!(from_registry, shipped);
}

// ---------------------------------------------------------------------------------------------
// inspect

#[test]
fn inspect_json_v1_shows_header_validation_and_migrated_payload() {
    let r = run(&["inspect", &fixture("values/session-v1.json")]);
    assert_eq!(r.code, EXIT_OK, "{}{}", r.out, r.err);
    for line in [
        "type:       session (registered, current v3)",
        "version:    1 (migrates to v3)",
        "codec:      json",
        "expires:    2025-10-10T08:53:20.000Z (in 1d)",
        "status:     valid (session.v1.schema.json)",
        "payload (current v3):",
    ] {
        assert!(r.out.contains(line), "missing {line:?} in:\n{}", r.out);
    }
    let j = run(&["inspect", "--json", &fixture("values/session-v1.json")]).json();
    assert_eq!(j["status"], "valid");
    assert_eq!(j["header"]["version"], 1);
    assert_eq!(j["current_version"], 3);
    // The v1 → v2 → v3 steps ran: fields that v1 lacks are filled as the migrations define.
    assert_eq!(j["value"]["refreshedAt"], json!(NOW - DAY));
    assert_eq!(
        j["value"]["absoluteExpiresAt"],
        json!(NOW - DAY + kv_envelope::__internal::DEFAULT_ABSOLUTE_LIFETIME.as_millis() as u64)
    );
    assert_eq!(j["value"]["roles"], json!([]));
}

#[test]
fn inspect_reads_postcard_raw_base64_and_stdin_alike() {
    let raw = run(&[
        "inspect",
        "--json",
        &fixture("values/session-v2.postcard.bin"),
    ]);
    let b64 = run(&[
        "inspect",
        "--json",
        &fixture("values/session-v2.postcard.b64"),
    ]);
    let bytes = std::fs::read(fixture("values/session-v2.postcard.bin")).unwrap();
    let stdin = run_stdin(&["inspect", "--json", "-"], &bytes);
    assert_eq!(raw.code, EXIT_OK, "{}", raw.out);
    let j = raw.json();
    assert_eq!(j["header"]["codec"], "postcard");
    assert_eq!(j["header"]["version"], 2);
    assert_eq!(j["value"]["userId"], "u-2");
    assert_eq!(b64.json(), j);
    assert_eq!(stdin.json(), j);
    // Forcing the wrong format is an input error, not a crash.
    let forced = run(&[
        "inspect",
        "--format",
        "base64",
        &fixture("values/session-v2.postcard.bin"),
    ]);
    assert_eq!(forced.code, EXIT_USAGE);
}

#[test]
fn inspect_invalid_value_lists_json_paths_and_never_the_value() {
    let r = run(&["inspect", &fixture("values/session-v1-invalid.json")]);
    assert_eq!(r.code, EXIT_INVALID);
    assert!(r.out.contains("status:     invalid"), "{}", r.out);
    assert!(
        r.out.contains("issues against session.v1.schema.json:"),
        "{}",
        r.out
    );
    assert!(r.out.contains("  /email: "), "{}", r.out);
    assert!(r.out.contains("  /userId: "), "{}", r.out);
    r.assert_no_secret();
    let j = run(&[
        "inspect",
        "--json",
        &fixture("values/session-v1-invalid.json"),
    ])
    .json();
    let paths: BTreeSet<&str> = j["issues"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["instance_path"].as_str().unwrap())
        .collect();
    assert_eq!(paths, BTreeSet::from(["/email", "/userId"]));
    assert!(j["value"].is_null());
}

#[test]
fn inspect_truncated_postcard_is_corrupt() {
    let r = run(&[
        "inspect",
        &fixture("values/session-v2-truncated.postcard.bin"),
    ]);
    assert_eq!(r.code, EXIT_INVALID);
    assert!(r.out.contains("status:     corrupt"), "{}", r.out);
    assert!(
        r.out
            .contains("postcard payload of session v2 does not decode"),
        "{}",
        r.out
    );
}

#[test]
fn inspect_explains_a_binary_value_mangled_into_text() {
    let r = run(&["inspect", &fixture("values/session-v2-mangled.txt")]);
    assert_eq!(r.code, EXIT_INVALID, "{}{}", r.out, r.err);
    assert!(r.out.contains("status:     corrupt"), "{}", r.out);
    assert!(
        r.out.contains("went through a text conversion"),
        "{}",
        r.out
    );
}

#[test]
fn inspect_expired_value_is_still_decoded_and_says_so() {
    let r = run(&[
        "inspect",
        &fixture("values/session-v1-expired.postcard.bin"),
    ]);
    assert_eq!(r.code, EXIT_OK, "{}", r.out);
    assert!(r.out.contains("(expired 1h ago)"), "{}", r.out);
    assert!(r.out.contains("\"userId\": \"u-x\""), "{}", r.out);
}

#[test]
fn inspect_future_version_and_unregistered_type_are_undecided() {
    let future = run(&[
        "inspect",
        "--stored",
        &fixture("values/session-v4-future.json"),
    ]);
    assert_eq!(future.code, EXIT_UNDECIDED);
    assert!(
        future
            .out
            .contains("version:    4 (newer than this build's v3)"),
        "{}",
        future.out
    );
    // --stored shows the JSON payload as stored, even though this build cannot migrate it.
    assert!(
        future.out.contains("\"device\":\"phone\""),
        "{}",
        future.out
    );
    assert!(!future.out.contains("payload (current"), "{}", future.out);

    let cart = run(&["inspect", &fixture("values/cart-v1.json")]);
    assert_eq!(cart.code, EXIT_UNDECIDED);
    assert!(
        cart.out.contains("type:       cart (not registered)"),
        "{}",
        cart.out
    );
}

#[test]
fn inspect_bad_base64_names_the_problem() {
    let r = run(&["inspect", &fixture("values/bad-base64.txt")]);
    assert_eq!(r.code, EXIT_USAGE);
    assert!(
        r.err
            .contains("bad-base64.txt: input is neither an envelope"),
        "{}",
        r.err
    );
    assert!(
        r.err.contains("unexpected character at offset 16"),
        "{}",
        r.err
    );
}

#[test]
fn inspect_one_key_of_a_dump_reports_stale_metadata() {
    let r = run(&["inspect", &fixture("dump.json"), "--key", "session:v3stale"]);
    assert_eq!(r.code, EXIT_OK, "{}{}", r.out, r.err);
    assert!(r.out.contains("key:        session:v3stale"), "{}", r.out);
    assert!(
        r.out.contains("metadata:   KV metadata says session v2"),
        "{}",
        r.out
    );
    let bad = run(&["inspect", &fixture("dump.json"), "--key", "session:badb64"]);
    assert_eq!(bad.code, EXIT_USAGE);
    assert!(
        bad.err
            .contains("entry #8 (key \"session:badb64\"): invalid base64"),
        "{}",
        bad.err
    );
    let missing = run(&["inspect", &fixture("dump.json"), "--key", "nope"]);
    assert_eq!(missing.code, EXIT_USAGE);
    assert!(
        missing.err.contains("no entry has key \"nope\""),
        "{}",
        missing.err
    );
}

// ---------------------------------------------------------------------------------------------
// census

#[test]
fn census_tallies_versions_codecs_and_expiry_from_metadata() {
    let r = run(&["census", "--json", &fixture("keys.json")]);
    assert_eq!(r.code, EXIT_OK, "{}", r.err);
    let j = r.json();
    assert_eq!(j["keys"], 12);
    // a, b, g, h under "session" and x under "sess2"; f is expired, so not worth migrating.
    assert_eq!(j["needs_migration"], 5);
    assert_eq!(j["future"], 1);
    assert_eq!(j["unknown"], 2);
    let groups = j["groups"].as_array().unwrap();
    let session = groups
        .iter()
        .find(|g| g["type"] == "session" && g["prefix"] == "session")
        .unwrap();
    assert_eq!(session["registered"], true);
    assert_eq!(session["current_version"], 3);
    let t = &session["tally"];
    assert_eq!(t["keys"], 8);
    assert_eq!(t["versions"], json!({"1": 3, "2": 2, "3": 2, "4": 1}));
    assert_eq!(t["codecs"], json!({"json": 6, "postcard": 2}));
    assert_eq!(
        t["expires"],
        json!({"expired": 1, "<=1h": 1, "<=1d": 1, "<=7d": 2, "<=30d": 1, "<=365d": 1, "never": 1})
    );
    assert_eq!(t["needs_migration"], 4);
    assert_eq!(t["no_kv_expiration"], 1);
    assert_eq!(t["kv_expires_first"], 1);
    let cart = groups.iter().find(|g| g["type"] == "cart").unwrap();
    assert_eq!(cart["registered"], false);
    let unknown: Vec<&str> = groups
        .iter()
        .filter(|g| g["type"].is_null())
        .map(|g| g["prefix"].as_str().unwrap())
        .collect();
    assert_eq!(unknown, ["", "config"]);
}

#[test]
fn census_text_and_fail_on_old() {
    let r = run(&["census", &fixture("keys.json")]);
    assert_eq!(r.code, EXIT_OK);
    assert!(
        r.out
            .contains("session (current v3), prefix \"session\": 8 keys"),
        "{}",
        r.out
    );
    assert!(
        r.out
            .contains("  versions  v1: 3 (old)  v2: 2 (old)  v3: 2  v4: 1 (future)"),
        "{}",
        r.out
    );
    assert!(r.out.contains("KV never deletes them"), "{}", r.out);
    assert!(r.out.contains("summary: 9 keys of registered types, 5 need migration, 1 future, 1 of unregistered types, 2 without kv-envelope metadata"), "{}", r.out);
    assert_eq!(
        run(&["census", "--fail-on-old", &fixture("keys.json")]).code,
        EXIT_INVALID
    );
    // Through stdin, and a `list()`-style wrapper object.
    let wrapped = format!(
        "{{\"keys\": {}, \"list_complete\": true}}",
        std::fs::read_to_string(fixture("keys.json")).unwrap()
    );
    assert_eq!(
        run_stdin(&["census", "--json"], wrapped.as_bytes()).json()["keys"],
        12
    );
}

#[test]
fn census_warns_when_a_local_listing_may_be_cut_at_1000_keys() {
    let list: Vec<Value> = (0..1000)
        .map(|i| json!({ "name": format!("k:{i}") }))
        .collect();
    let text = serde_json::to_vec(&list).unwrap();
    let r = run_stdin(&["census"], &text);
    assert!(r.out.contains("warning: exactly 1000 keys"), "{}", r.out);
    assert_eq!(
        run_stdin(&["census", "--json"], &text).json()["possibly_truncated"],
        true
    );
    let r = run_stdin(
        &["census", "--json"],
        &serde_json::to_vec(&list[..999]).unwrap(),
    );
    assert_eq!(r.json()["possibly_truncated"], false);
}

#[test]
fn census_rejects_files_that_are_not_key_lists() {
    let dump = run(&["census", &fixture("dump.json")]);
    assert_eq!(dump.code, EXIT_USAGE);
    assert!(dump.err.contains("entry #0 has no `name`"), "{}", dump.err);
    let truncated = run(&["census", &fixture("dump-truncated.json")]);
    assert_eq!(truncated.code, EXIT_USAGE);
    assert!(
        truncated
            .err
            .contains("not valid JSON (unexpected end of input"),
        "{}",
        truncated.err
    );
    let missing = run(&["census", "/nonexistent/keys.json"]);
    assert_eq!(missing.code, EXIT_USAGE);
    assert!(
        missing.err.contains("cannot open /nonexistent/keys.json"),
        "{}",
        missing.err
    );
}

// ---------------------------------------------------------------------------------------------
// migrate

fn read_bulk(path: &Path) -> BTreeMap<String, Value> {
    let text = std::fs::read_to_string(path).unwrap();
    let entries: Vec<Value> = serde_json::from_str(&text).unwrap();
    entries
        .into_iter()
        .map(|e| (e["key"].as_str().unwrap().to_string(), e))
        .collect()
}

/// The stored bytes of an output entry, checked against the shape `wrangler kv bulk put`
/// accepts (its `isKVKeyValue`).
fn entry_bytes(e: &Value) -> Vec<u8> {
    let o = e.as_object().unwrap();
    for k in o.keys() {
        assert!(
            [
                "key",
                "value",
                "base64",
                "expiration",
                "expiration_ttl",
                "metadata"
            ]
            .contains(&k.as_str()),
            "unexpected property {k}"
        );
    }
    assert!(e["key"].is_string() && e["value"].is_string());
    assert!(e["metadata"].is_object());
    assert!(o.get("expiration").is_none_or(Value::is_u64));
    if e["base64"] == true {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD
            .decode(e["value"].as_str().unwrap())
            .unwrap()
    } else {
        assert!(o.get("base64").is_none());
        e["value"].as_str().unwrap().as_bytes().to_vec()
    }
}

#[test]
fn migrate_writes_only_what_changes_and_lists_what_it_skips() {
    let dir = scratch("migrate_main");
    let out = dir.join("out.json");
    let r = run(&[
        "migrate",
        &fixture("dump.json"),
        "-o",
        &out.display().to_string(),
    ]);
    // Invalid values were skipped: the run says so with its status.
    assert_eq!(r.code, EXIT_INVALID, "{}{}", r.out, r.err);
    r.assert_no_secret();
    let written = read_bulk(&out);
    assert_eq!(
        written.keys().map(String::as_str).collect::<Vec<_>>(),
        [
            "session:never",
            "session:soon",
            "session:v1json",
            "session:v2pc",
            "session:v3stale"
        ]
    );
    let floor = NOW / 1000 + 60 + 600;
    for (key, e) in &written {
        let bytes = entry_bytes(e);
        // What the worker will read: the current version, valid, with the envelope's expiry.
        let d = decode_value::<SessionRecord>(&bytes, NOW, true)
            .unwrap_or_else(|err| panic!("{key}: {err}"))
            .unwrap();
        assert_eq!(d.stored_version, SessionRecord::VERSION, "{key}");
        let header = envelope::peek_header(&bytes).unwrap();
        // The metadata describes the new envelope (what `census` will count).
        assert_eq!(
            Header::from_metadata(&e["metadata"].to_string()).as_ref(),
            Some(&header.clone().into_owned()),
            "{key}"
        );
        let expected_expiration = match header.expires_at {
            Some(ms) => json!(ms.div_ceil(1000).max(floor)),
            // `session:never` has no envelope expiry: its KV expiration is carried over.
            None => json!((NOW + 3 * DAY) / 1000),
        };
        assert_eq!(e["expiration"], expected_expiration, "{key}");
    }
    // Metadata is byte for byte what `Kv` writes (short keys, header order).
    let text = std::fs::read_to_string(&out).unwrap();
    assert!(
        text.contains(&format!(
            r#""metadata":{{"t":"session","v":3,"c":"json","e":{}}}"#,
            NOW + DAY
        )),
        "{text}"
    );
    // Codecs are kept: the postcard value stays postcard (as base64), JSON stays text.
    assert_eq!(written["session:v2pc"]["base64"], true);
    // Metadata fields that are not the header's survive the rewrite.
    assert_eq!(
        written["session:never"]["metadata"]["ca"],
        json!(NOW - HOUR)
    );
    assert_eq!(written["session:never"]["metadata"]["v"], 3);
    assert_eq!(written["session:v2pc"]["metadata"]["c"], "postcard");
    assert_eq!(written["session:v1json"]["metadata"]["c"], "json");
    // Expiry exact in the envelope; KV's expiration raised to the put floor for the near one.
    assert_eq!(
        written["session:v1json"]["expiration"],
        json!((NOW + DAY) / 1000)
    );
    assert_eq!(written["session:soon"]["expiration"], json!(floor));
    // The migrated payload is the migration chain's output.
    let v1 = decode_value::<SessionRecord>(&entry_bytes(&written["session:v1json"]), NOW, true)
        .unwrap()
        .unwrap()
        .value;
    assert_eq!(
        v1,
        SessionRecord::from(kv_envelope::session::SessionRecordV2::from(fixtures::v1(
            "u-1",
            NOW + DAY
        )))
    );

    for line in [
        "migrate: 14 entries",
        "  to write     5 -> ",
        "session v1 json -> v3 json: 2",
        "session v2 json -> v3 json: 1",
        "session v2 postcard -> v3 postcard: 1",
        "session v3 json -> v3 json: 1",
        "  current      2 (already current, left out of the output)",
        "  expired      1 (left out)",
        "  not ours     1",
        "  unregistered 1 (cart: 1; left alone)",
        "  future       1 (newer than this build; never rewritten)",
        "      \"session:future\": session v4 is newer than this build's v3",
        "  INVALID      3 (NOT migrated; KV keeps them as they are)",
        "      \"session:invalid\": session v1 fails its schema: at /email: value is not a \"email\"; at /userId",
        "      \"session:corrupt\": postcard payload of session v2 does not decode",
        "      \"session:badb64\": invalid base64: unexpected character at offset 4",
        "next: npx wrangler kv bulk put",
        "note: 1 values are binary (base64): `wrangler kv bulk put --local` corrupts binary values",
    ] {
        assert!(r.out.contains(line), "missing {line:?} in:\n{}", r.out);
    }
}

#[test]
fn migrate_dry_run_decides_the_same_and_writes_nothing() {
    let dir = scratch("migrate_dry_run");
    let out = dir.join("out.json");
    let r = run(&[
        "migrate",
        "--json",
        "--dry-run",
        &fixture("dump.json"),
        "-o",
        &out.display().to_string(),
    ]);
    assert_eq!(r.code, EXIT_INVALID);
    assert!(!out.exists());
    assert_eq!(
        std::fs::read_dir(&dir).unwrap().count(),
        0,
        "no temporary file left"
    );
    let s = &r.json()["summary"];
    assert_eq!(s["entries"], 14);
    assert_eq!(s["written"], 5);
    assert_eq!(s["reasons"], json!({"version": 4, "metadata": 1}));
    let invalid: Vec<&str> = s["invalid"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["key"].as_str().unwrap())
        .collect();
    assert_eq!(
        invalid,
        ["session:invalid", "session:corrupt", "session:badb64"]
    );
    assert_eq!(s["future"][0]["key"], "session:future");
    r.assert_no_secret();
}

#[test]
fn migrate_clean_dump_exits_zero_and_its_output_is_a_fixed_point() {
    let dir = scratch("migrate_fixed_point");
    let first = dir.join("first.json");
    let r = run(&[
        "migrate",
        &fixture("dump-clean.json"),
        "-o",
        &first.display().to_string(),
    ]);
    assert_eq!(r.code, EXIT_OK, "{}{}", r.out, r.err);
    assert_eq!(read_bulk(&first).len(), 2);
    // Migrating the output again finds nothing to do: every value is current with its metadata.
    let second = dir.join("second.json");
    let again = run(&[
        "migrate",
        "--json",
        &first.display().to_string(),
        "-o",
        &second.display().to_string(),
    ]);
    assert_eq!(again.code, EXIT_OK);
    assert_eq!(again.json()["summary"]["written"], 0);
    assert_eq!(again.json()["summary"]["current"], 2);
    assert_eq!(std::fs::read_to_string(&second).unwrap(), "[]\n");
}

#[test]
fn migrate_codec_and_type_options() {
    let dir = scratch("migrate_codec");
    let out = dir.join("out.json");
    let r = run(&[
        "migrate",
        &fixture("dump-clean.json"),
        "--codec",
        "postcard",
        "--type",
        "session",
        "-o",
        &out.display().to_string(),
    ]);
    assert_eq!(r.code, EXIT_OK, "{}{}", r.out, r.err);
    let written = read_bulk(&out);
    // The current JSON value is rewritten too: its codec changes.
    assert_eq!(written.len(), 3);
    for e in written.values() {
        assert_eq!(e["base64"], true);
        assert_eq!(e["metadata"]["c"], "postcard");
        let bytes = entry_bytes(e);
        assert_eq!(bytes[0], envelope::FRAME_MAGIC);
        assert_eq!(
            decode_value::<SessionRecord>(&bytes, NOW, true)
                .unwrap()
                .unwrap()
                .codec,
            Codec::Postcard
        );
    }
    let unknown = run(&[
        "migrate",
        "--dry-run",
        "--type",
        "nope",
        &fixture("dump-clean.json"),
    ]);
    assert_eq!(unknown.code, EXIT_USAGE);
    assert!(
        unknown
            .err
            .contains("--type \"nope\" is not a registered type"),
        "{}",
        unknown.err
    );
}

#[test]
fn migrate_recheck_leaves_out_keys_deleted_or_rewritten_since_the_dump() {
    let dir = scratch("migrate_recheck");
    let fresh = dir.join("fresh.json");
    let (j, p) = (Codec::Json, Codec::Postcard);
    // v1json was refreshed by the worker (new expiry), v3stale was deleted (a logout) and soon
    // was rewritten by another tool.
    std::fs::write(
        &fresh,
        json!([
            { "name": "session:v1json", "metadata": fixtures::meta(j, "session", 3, Some(NOW + 2 * DAY)) },
            { "name": "session:v2pc", "metadata": fixtures::meta(p, "session", 2, Some(NOW + 7 * DAY)) },
            { "name": "session:never", "metadata": fixtures::meta(j, "session", 1, None) },
            // Rewritten by something that writes no kv-envelope metadata.
            { "name": "session:soon", "metadata": { "owner": "other-tool" } },
        ])
        .to_string(),
    )
    .unwrap();
    let out = dir.join("out.json");
    let r = run(&[
        "migrate",
        "--json",
        &fixture("dump.json"),
        "--recheck",
        &fresh.display().to_string(),
        "-o",
        &out.display().to_string(),
    ]);
    let written = read_bulk(&out);
    assert_eq!(
        written.keys().map(String::as_str).collect::<Vec<_>>(),
        ["session:never", "session:v2pc"]
    );
    let changed: BTreeSet<String> = r.json()["summary"]["changed_since_dump"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            format!(
                "{} {}",
                c["key"].as_str().unwrap(),
                c["reason"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(
        changed,
        BTreeSet::from([
            "session:v1json rewritten since the dump (its metadata changed)".to_string(),
            "session:v3stale deleted since the dump".to_string(),
            "session:soon rewritten since the dump (its kv-envelope metadata is gone)".to_string(),
        ])
    );
}

#[test]
fn migrate_to_stdout_keeps_the_report_on_stderr() {
    let r = run(&["migrate", &fixture("dump-clean.json"), "-o", "-"]);
    assert_eq!(r.code, EXIT_OK);
    let entries: Vec<Value> = serde_json::from_str(&r.out).unwrap();
    assert_eq!(entries.len(), 2);
    assert!(
        r.err.contains("to write     2 to standard output"),
        "{}",
        r.err
    );
}

#[test]
fn migrate_bad_files_name_the_problem_and_leave_no_output() {
    let dir = scratch("migrate_bad_files");
    let out = dir.join("out.json");
    let o = out.display().to_string();
    let truncated = run(&["migrate", &fixture("dump-truncated.json"), "-o", &o]);
    assert_eq!(truncated.code, EXIT_USAGE);
    assert!(
        truncated
            .err
            .contains("dump-truncated.json: unexpected end of input: the file is truncated")
            && truncated
                .err
                .contains("after entry #1 (key \"session:v2pc\")"),
        "{}",
        truncated.err
    );
    let csv = run(&["migrate", &fixture("dump.csv"), "-o", &o]);
    assert_eq!(csv.code, EXIT_USAGE);
    assert!(
        csv.err
            .contains("dump.csv: invalid JSON: syntax error at line 1 column 1"),
        "{}",
        csv.err
    );
    let shape = run(&["migrate", &fixture("wrong-shape.json"), "-o", &o]);
    assert_eq!(shape.code, EXIT_USAGE);
    assert!(
        shape.err.contains("entry #0: has no `key`"),
        "{}",
        shape.err
    );
    // A failed run never leaves a file someone could `bulk put`, nor its temporary.
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0);
}

#[test]
fn migrate_reads_bulk_get_output() {
    let r = run(&["migrate", "--json", "--dry-run", &fixture("bulk-get.json")]);
    let s = &r.json()["summary"];
    assert_eq!(s["written"], 1);
    assert_eq!(s["missing"], 1);
    assert_eq!(s["not_ours"], 1);
    assert_eq!(s["invalid"][0]["key"], "session:binary");
    assert!(s["invalid"][0]["reason"]
        .as_str()
        .unwrap()
        .contains("mangled by text decoding"));
    assert_eq!(r.code, EXIT_INVALID);
}

// ---------------------------------------------------------------------------------------------
// encode

#[test]
fn encode_writes_an_old_version_that_reads_back_and_prints_its_metadata() {
    let dir = scratch("encode_old");
    let payload = dir.join("payload.json");
    std::fs::write(
        &payload,
        serde_json::to_vec(&fixtures::v1("u-9", NOW + DAY)).unwrap(),
    )
    .unwrap();
    let out = dir.join("v1.json");
    let r = run(&[
        "encode",
        "--type",
        "session",
        "--version",
        "1",
        "--ttl",
        "3600",
        "-o",
        &out.display().to_string(),
        &payload.display().to_string(),
    ]);
    assert_eq!(r.code, EXIT_OK, "{}{}", r.out, r.err);
    let bytes = std::fs::read(&out).unwrap();
    let header = envelope::peek_header(&bytes).unwrap().into_owned();
    assert_eq!(
        (header.version, header.codec, header.expires_at),
        (1, Codec::Json, Some(NOW + HOUR))
    );
    assert_eq!(r.out, format!("{}\n", header.to_metadata()));
    // What a worker reads: the v1 payload migrated.
    let read = decode_value::<SessionRecord>(&bytes, NOW, true)
        .unwrap()
        .unwrap();
    assert_eq!(read.value.user_id, "u-9");
    assert_eq!(read.stored_version, 1);
}

#[test]
fn encode_current_postcard_as_base64_and_refuse_what_it_cannot_write() {
    let dir = scratch("encode_current");
    let payload = serde_json::to_vec(&fixtures::v3("u-3", NOW + DAY)).unwrap();
    let out = dir.join("v3.b64");
    let o = out.display().to_string();
    let r = run_stdin(
        &[
            "encode", "--type", "session", "--codec", "postcard", "--base64", "-o", &o,
        ],
        &payload,
    );
    assert_eq!(r.code, EXIT_OK, "{}{}", r.out, r.err);
    let j = run(&["inspect", "--json", &o]).json();
    assert_eq!(j["status"], "valid");
    assert_eq!(j["header"]["codec"], "postcard");
    assert_eq!(j["value"]["roles"], json!(["admin"]));

    // Postcard at an old version has no struct to follow.
    let old = run_stdin(
        &[
            "encode",
            "--type",
            "session",
            "--version",
            "1",
            "--codec",
            "postcard",
            "-o",
            &o,
        ],
        b"{}",
    );
    assert_eq!(old.code, EXIT_USAGE);
    assert!(old.err.contains("use --codec json for v1"), "{}", old.err);
    // Unknown versions and types are usage errors.
    assert_eq!(
        run_stdin(
            &["encode", "--type", "session", "--version", "4", "-o", &o],
            b"{}"
        )
        .code,
        EXIT_USAGE
    );
    assert_eq!(
        run_stdin(&["encode", "--type", "nope", "-o", &o], b"{}").code,
        EXIT_USAGE
    );
    // Truncated JSON names the position, not the content.
    let cut = run_stdin(
        &["encode", "--type", "session", "-o", &o],
        b"{\"userId\": \"u-",
    );
    assert_eq!(cut.code, EXIT_USAGE);
    assert!(
        cut.err
            .contains("the payload is not JSON (unexpected end of input"),
        "{}",
        cut.err
    );
}

#[test]
fn encode_refuses_an_invalid_payload_and_writes_nothing() {
    let dir = scratch("encode_invalid");
    let out = dir.join("bad.json");
    let r = run_stdin(
        &[
            "encode",
            "--type",
            "session",
            "--version",
            "1",
            "-o",
            &out.display().to_string(),
        ],
        fixtures::invalid_payload().to_string().as_bytes(),
    );
    assert_eq!(r.code, EXIT_INVALID);
    assert!(
        r.out.contains("the payload fails session.v1.schema.json:"),
        "{}",
        r.out
    );
    assert!(r.out.contains("  /email: "), "{}", r.out);
    r.assert_no_secret();
    assert!(!out.exists());
}

// ---------------------------------------------------------------------------------------------
// the binary and the argument parser

#[test]
fn usage_errors_and_help() {
    let r = run(&["frobnicate"]);
    assert_eq!(r.code, EXIT_USAGE);
    assert!(r.err.contains("unrecognized subcommand"), "{}", r.err);
    let r = run(&["migrate", &fixture("dump.json")]);
    assert_eq!(r.code, EXIT_USAGE, "--out is required without --dry-run");
    let help = run(&["--help"]);
    assert_eq!(help.code, EXIT_OK);
    assert!(help.out.contains("census"));
    assert!(run(&["types"]).out.starts_with("session\tv3\t"));
}

#[test]
fn the_binary_runs_the_same_commands() {
    let bin = env!("CARGO_BIN_EXE_kv-envelope");
    let output = std::process::Command::new(bin)
        .args([
            "--now",
            &NOW.to_string(),
            "inspect",
            "--json",
            &fixture("values/session-v2.postcard.b64"),
        ])
        .output()
        .unwrap();
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let j: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(
        j,
        run(&[
            "inspect",
            "--json",
            &fixture("values/session-v2.postcard.b64")
        ])
        .json()
    );
    // Exit statuses reach the shell unchanged.
    let invalid = std::process::Command::new(bin)
        .args(["inspect", &fixture("values/session-v1-invalid.json")])
        .output()
        .unwrap();
    assert_eq!(invalid.status.code(), Some(i32::from(EXIT_INVALID)));
    assert!(!String::from_utf8_lossy(&invalid.stdout).contains(SECRET));
}

// ---------------------------------------------------------------------------------------------
// sealed values: key rings from a `.dev.vars`-style file or the environment, never from argv

/// Test keys, one 32-byte value each, and the ids they are listed under. `K0` is in no ring the
/// commands get: values sealed with it have an unknown key id.
mod keys {
    use kv_envelope::{KeyRing, SealingKey};

    pub const K0: [u8; 32] = [0x30; 32];
    pub const K1: [u8; 32] = [0x11; 32];
    pub const K2: [u8; 32] = [0x22; 32];

    pub fn b64(key: &[u8]) -> String {
        super::fixtures::b64(key)
    }

    pub fn ring(keys: &[(&str, &[u8; 32])]) -> KeyRing {
        KeyRing::new(
            keys.iter()
                .map(|(id, k)| SealingKey::from_bytes(id, k).unwrap())
                .collect(),
        )
        .unwrap()
    }

    /// A `.dev.vars` file of the ring `SEAL`: `SEAL_KEYS` and one `SEAL_KEY_<id>` per key, in
    /// the shapes such files take (quotes, `export`, comments).
    pub fn file(dir: &std::path::Path, name: &str, keys: &[(&str, &[u8; 32])]) -> String {
        let ids: Vec<&str> = keys.iter().map(|(id, _)| *id).collect();
        let mut text = format!(
            "# sealing keys, primary first\nOTHER=1\nSEAL_KEYS=\"{}\"\n",
            ids.join(",")
        );
        for (i, (id, k)) in keys.iter().enumerate() {
            text.push_str(&match i % 3 {
                0 => format!("SEAL_KEY_{id}={}\n", b64(&k[..])),
                1 => format!("export SEAL_KEY_{id} = '{}' # older\n", b64(&k[..])),
                _ => format!("SEAL_KEY_{id}=\"{}\"\n", b64(&k[..])),
            });
        }
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path.display().to_string()
    }

    /// No output stream carries any test key, raw or as base64.
    pub fn assert_no_key(r: &super::Run) {
        for k in [K0, K1, K2] {
            let text = b64(&k);
            assert!(!r.out.contains(&text), "stdout shows a key:\n{}", r.out);
            assert!(!r.err.contains(&text), "stderr shows a key:\n{}", r.err);
        }
    }
}

/// A current session sealed with `ring`'s primary for `kv_key`.
fn sealed_v3(ring: &kv_envelope::KeyRing, codec: Codec, user: &str, kv_key: &str) -> Vec<u8> {
    kv_envelope::__internal::encode_value_in(
        &fixtures::v3(user, NOW + 20 * DAY),
        codec,
        Some(NOW + 20 * DAY),
        Some(ring),
        kv_key,
    )
    .unwrap()
}

/// A bulk entry as `wrangler kv bulk get`/our dumps hold it, with the metadata `Kv` writes.
fn bulk_entry(key: &str, bytes: &[u8]) -> Value {
    let meta: Value =
        serde_json::from_str(&envelope::peek_header(bytes).unwrap().to_metadata()).unwrap();
    let exp = envelope::peek_header(bytes).unwrap().expires_at;
    let mut e = match std::str::from_utf8(bytes) {
        Ok(text) => json!({ "key": key, "value": text }),
        Err(_) => json!({ "key": key, "value": fixtures::b64(bytes), "base64": true }),
    };
    e["metadata"] = meta;
    if let Some(ms) = exp {
        e["expiration"] = json!(ms.div_ceil(1000));
    }
    e
}

/// A v1 session sealed with `keys`' primary for `kv_key`, written by `encode --version 1`.
fn sealed_v1_by_encode(
    dir: &Path,
    keys: &[(&str, &[u8; 32])],
    user: &str,
    kv_key: &str,
) -> Vec<u8> {
    let payload = dir.join(format!("{user}.json"));
    std::fs::write(
        &payload,
        serde_json::to_vec(&fixtures::v1(user, NOW + DAY)).unwrap(),
    )
    .unwrap();
    let file = keys::file(dir, &format!("{user}.vars"), keys);
    let out = dir.join(format!("{user}.bin"));
    let r = run(&[
        "encode",
        "--type",
        "session",
        "--version",
        "1",
        "--expires-at",
        &(NOW + DAY).to_string(),
        "--keys-file",
        &file,
        "--keys-prefix",
        "SEAL",
        "--key",
        kv_key,
        "-o",
        &out.display().to_string(),
        &payload.display().to_string(),
    ]);
    assert_eq!(r.code, EXIT_OK, "{}{}", r.out, r.err);
    keys::assert_no_key(&r);
    std::fs::read(out).unwrap()
}

/// The rotation dump: values sealed with the old key `k1` (JSON, postcard, an old version),
/// one already on `k2`, two in clear, one sealed with a key no ring here holds.
fn rotation_dump(dir: &Path) -> PathBuf {
    use keys::{K0, K1, K2};
    let r1 = keys::ring(&[("k1", &K1)]);
    let r2 = keys::ring(&[("k2", &K2)]);
    let r0 = keys::ring(&[("k0", &K0)]);
    let (j, p) = (Codec::Json, Codec::Postcard);
    let mut k1 = bulk_entry("session:k1", &sealed_v3(&r1, j, "u-k1", "session:k1"));
    // A product's own metadata field survives the rewrite; the old `k` does not linger.
    k1["metadata"]["ca"] = json!(NOW - HOUR);
    let entries = vec![
        k1,
        bulk_entry("session:k1pc", &sealed_v3(&r1, p, "u-k1pc", "session:k1pc")),
        bulk_entry(
            "session:k1v1",
            &sealed_v1_by_encode(dir, &[("k1", &K1)], "u-k1v1", "session:k1v1"),
        ),
        bulk_entry("session:k2", &sealed_v3(&r2, j, "u-k2", "session:k2")),
        bulk_entry(
            "session:clear",
            &fixtures::enc(
                j,
                "session",
                3,
                Some(NOW + DAY),
                &fixtures::v3("u-c", NOW + DAY),
            ),
        ),
        bulk_entry(
            "session:clearv1",
            &fixtures::enc(
                j,
                "session",
                1,
                Some(NOW + DAY),
                &fixtures::v1("u-c1", NOW + DAY),
            ),
        ),
        bulk_entry("session:k0", &sealed_v3(&r0, j, "u-k0", "session:k0")),
    ];
    let path = dir.join("dump.json");
    std::fs::write(&path, serde_json::to_vec_pretty(&entries).unwrap()).unwrap();
    path
}

/// The plaintext emails of the sealed values of [`rotation_dump`]: never in any output.
const SEALED_EMAILS: [&str; 5] = [
    "u-k1@example.com",
    "u-k1pc@example.com",
    "u-k1v1@example.com",
    "u-k2@example.com",
    "u-k0@example.com",
];

fn assert_no_sealed_plaintext(text: &str) {
    for email in SEALED_EMAILS {
        assert!(!text.contains(email), "{email} shows in:\n{text}");
    }
}

#[test]
fn migrate_with_a_key_ring_reseals_older_keys_and_leaves_unknown_keys_alone() {
    use keys::{K1, K2};
    let dir = scratch("migrate_reseal");
    let dump = rotation_dump(&dir);
    let ring_file = keys::file(&dir, "ring.vars", &[("k2", &K2), ("k1", &K1)]);
    let out = dir.join("out.json");
    let r = run(&[
        "migrate",
        &dump.display().to_string(),
        "--keys-file",
        &ring_file,
        "--keys-prefix",
        "SEAL",
        "-o",
        &out.display().to_string(),
    ]);
    // Output written; the unknown key id makes the status "undecided", not a failure.
    assert_eq!(r.code, EXIT_UNDECIDED, "{}{}", r.out, r.err);
    keys::assert_no_key(&r);
    assert_no_sealed_plaintext(&r.out);
    let written = read_bulk(&out);
    assert_eq!(
        written.keys().map(String::as_str).collect::<Vec<_>>(),
        [
            "session:clearv1",
            "session:k1",
            "session:k1pc",
            "session:k1v1"
        ]
    );
    assert_no_sealed_plaintext(&std::fs::read_to_string(&out).unwrap());
    // A ring of k2 alone opens every re-sealed value, each for its own key and no other (and
    // reads the clear one: the migration window's ring).
    let k2_only = keys::ring(&[("k2", &K2)]).requiring_sealed(false);
    for (key, e) in &written {
        let bytes = entry_bytes(e);
        let header = envelope::peek_header(&bytes).unwrap().into_owned();
        let d = kv_envelope::__internal::decode_value_in::<SessionRecord>(
            &bytes,
            Some(&k2_only),
            key,
            NOW,
            true,
        )
        .unwrap_or_else(|err| panic!("{key}: {err}"))
        .unwrap();
        assert_eq!(d.stored_version, SessionRecord::VERSION, "{key}");
        if key == "session:clearv1" {
            // In clear it was, in clear it stays (no --seal).
            assert_eq!(header.key_id, None);
            assert_eq!(e["metadata"].get("k"), None);
        } else {
            assert_eq!(header.key_id.as_deref(), Some("k2"), "{key}");
            assert_eq!(e["metadata"]["k"], "k2", "{key}");
            assert_eq!(e["base64"], true, "{key}: sealed values are binary");
            let moved = kv_envelope::__internal::decode_value_in::<SessionRecord>(
                &bytes,
                Some(&k2_only),
                "session:elsewhere",
                NOW,
                true,
            );
            assert!(moved.is_err(), "{key} opens under another KV key");
        }
        // Exact expiry kept: in the envelope, and KV's expiration derived from it.
        assert_eq!(
            e["expiration"],
            json!(header.expires_at.unwrap().div_ceil(1000)),
            "{key}"
        );
        let meta = Header::from_metadata(&e["metadata"].to_string()).unwrap();
        assert_eq!(meta, header, "{key}: metadata describes the new envelope");
    }
    let k1 = &written["session:k1"];
    assert_eq!(k1["metadata"]["ca"], json!(NOW - HOUR));
    let text = std::fs::read_to_string(&out).unwrap();
    assert_eq!(
        text.matches("\"k\":").count(),
        3,
        "one `k` per sealed entry:\n{text}"
    );
    assert_eq!(
        entry_bytes(k1).len(),
        sealed_v3(&k2_only, Codec::Json, "u-k1", "session:k1").len(),
        "same payload, same size"
    );
    let v1 = kv_envelope::__internal::decode_value_in::<SessionRecord>(
        &entry_bytes(&written["session:k1v1"]),
        Some(&k2_only),
        "session:k1v1",
        NOW,
        true,
    )
    .unwrap()
    .unwrap();
    assert_eq!(v1.value.user_id, "u-k1v1");
    assert_eq!(v1.expires_at, Some(NOW + DAY));

    for line in [
        "migrate: 7 entries",
        "  to write     4 -> ",
        "session v1 json -> v3 json: 1",
        "session v1 json sealed k1 -> v3 json sealed k2: 1",
        "session v3 json sealed k1 -> v3 json sealed k2: 1",
        "session v3 postcard sealed k1 -> v3 postcard sealed k2: 1",
        "  current      2 (already current, left out of the output)",
        "  resealed     3 (sealed with an older key, re-sealed with k2)",
        "  unknown key  1 (sealed with a key id the ring lacks; never rewritten, KV keeps them)",
        "      \"session:k0\": session v3 sealed with key id \"k0\", which the key ring (k2,k1) lacks",
        "note: 3 of them are sealed",
    ] {
        assert!(r.out.contains(line), "missing {line:?} in:\n{}", r.out);
    }
    assert!(!r.out.contains("INVALID"), "{}", r.out);

    // The JSON report counts the same.
    let j = run(&[
        "migrate",
        "--json",
        "--dry-run",
        &dump.display().to_string(),
        "--keys-file",
        &ring_file,
        "--keys-prefix",
        "SEAL",
    ]);
    assert_eq!(j.code, EXIT_UNDECIDED);
    keys::assert_no_key(&j);
    let doc = j.json();
    assert_eq!(
        doc["key_ring"],
        json!({ "primary": "k2", "key_ids": ["k2", "k1"] })
    );
    let s = &doc["summary"];
    assert_eq!(s["written"], 4);
    assert_eq!(s["resealed"], 3);
    assert_eq!(s["newly_sealed"], 0);
    assert_eq!(s["written_sealed"], 3);
    assert_eq!(s["reasons"]["reseal"], 3);
    assert_eq!(s["unknown_key"][0]["key"], "session:k0");
    assert_eq!(s["unknown_key"].as_array().unwrap().len(), 1);
    assert_eq!(s["not_opened"], json!([]));

    // --seal: the values in clear are sealed too (with k2, for their own keys).
    let out2 = dir.join("sealed.json");
    let r = run(&[
        "migrate",
        "--seal",
        "--json",
        &dump.display().to_string(),
        "--keys-file",
        &ring_file,
        "--keys-prefix",
        "SEAL",
        "-o",
        &out2.display().to_string(),
    ]);
    assert_eq!(r.code, EXIT_UNDECIDED, "{}{}", r.out, r.err);
    assert_eq!(r.json()["summary"]["newly_sealed"], 2);
    let written = read_bulk(&out2);
    assert_eq!(
        written.len(),
        5,
        "everything but k2 (current) and k0 (unknown)"
    );
    assert!(!written.contains_key("session:k2") && !written.contains_key("session:k0"));
    for (key, e) in &written {
        assert_eq!(e["metadata"]["k"], "k2", "{key}");
        let bytes = entry_bytes(e);
        kv_envelope::__internal::decode_value_in::<SessionRecord>(
            &bytes,
            Some(&k2_only),
            key,
            NOW,
            true,
        )
        .unwrap()
        .unwrap();
    }
    // The output is a fixed point: migrating it again writes nothing.
    let again = run(&[
        "migrate",
        "--seal",
        "--json",
        "--dry-run",
        &out2.display().to_string(),
        "--keys-file",
        &ring_file,
        "--keys-prefix",
        "SEAL",
    ]);
    assert_eq!(again.code, EXIT_OK, "{}{}", again.out, again.err);
    assert_eq!(again.json()["summary"]["written"], 0);
    assert_eq!(again.json()["summary"]["current"], 5);
}

#[test]
fn migrate_without_a_key_ring_reports_sealed_values_and_carries_on() {
    let dir = scratch("migrate_no_ring");
    let dump = rotation_dump(&dir);
    let out = dir.join("out.json");
    let r = run(&[
        "migrate",
        &dump.display().to_string(),
        "-o",
        &out.display().to_string(),
    ]);
    assert_eq!(r.code, EXIT_UNDECIDED, "{}{}", r.out, r.err);
    assert_no_sealed_plaintext(&r.out);
    for line in [
        "  to write     1 -> ",
        "  not opened   5 (sealed, no key ring given (--keys-env, --keys-file); left out)",
        "      \"session:k1\": session v3 sealed with key id \"k1\": no key ring given",
    ] {
        assert!(r.out.contains(line), "missing {line:?} in:\n{}", r.out);
    }
    assert!(!r.out.contains("resealed"), "{}", r.out);
    // The clear value still migrates, and stays clear.
    let written = read_bulk(&out);
    assert_eq!(written.keys().collect::<Vec<_>>(), ["session:clearv1"]);
    assert_eq!(written["session:clearv1"]["metadata"].get("k"), None);
    // --seal without a ring is a usage error, before anything is read.
    let r = run(&[
        "migrate",
        "--seal",
        "--dry-run",
        &dump.display().to_string(),
    ]);
    assert_eq!(r.code, EXIT_USAGE);
    assert!(r.err.contains("--seal needs a key ring"), "{}", r.err);
}

#[test]
fn migrate_refuses_a_sealed_value_that_does_not_open_for_its_key() {
    use keys::{K1, K2};
    let dir = scratch("migrate_moved");
    let r1 = keys::ring(&[("k1", &K1)]);
    // Sealed for another KV key, then copied here: the AEAD refuses it.
    let moved = bulk_entry(
        "session:moved",
        &sealed_v3(&r1, Codec::Json, "u-k1", "session:k1"),
    );
    let dump = dir.join("dump.json");
    std::fs::write(&dump, serde_json::to_vec(&json!([moved])).unwrap()).unwrap();
    let ring_file = keys::file(&dir, "ring.vars", &[("k2", &K2), ("k1", &K1)]);
    let r = run(&[
        "migrate",
        "--dry-run",
        &dump.display().to_string(),
        "--keys-file",
        &ring_file,
        "--keys-prefix",
        "SEAL",
    ]);
    assert_eq!(r.code, EXIT_INVALID, "{}{}", r.out, r.err);
    assert!(
        r.out
            .contains("\"session:moved\": session: sealed value with key id \"k1\" does not open"),
        "{}",
        r.out
    );
    keys::assert_no_key(&r);
    assert_no_sealed_plaintext(&r.out);
}

#[test]
fn census_counts_values_per_key_id() {
    use keys::{K1, K2};
    let r1 = keys::ring(&[("k1", &K1)]);
    let r2 = keys::ring(&[("k2", &K2)]);
    let listed = |name: &str, bytes: &[u8]| {
        let e = bulk_entry(name, bytes);
        json!({ "name": name, "expiration": e["expiration"], "metadata": e["metadata"] })
    };
    let list = json!([
        listed("session:a", &sealed_v3(&r1, Codec::Json, "a", "session:a")),
        listed("session:b", &sealed_v3(&r2, Codec::Json, "b", "session:b")),
        listed(
            "session:c",
            &sealed_v3(&r2, Codec::Postcard, "c", "session:c")
        ),
        listed(
            "session:d",
            &fixtures::enc(Codec::Json, "session", 3, None, &fixtures::v3("d", NOW))
        ),
        listed(
            "session-index:u",
            &kv_envelope::__internal::encode_value_in(
                &kv_envelope::session::SessionIndexEntry {
                    created_at: NOW,
                    absolute_expires_at: NOW + DAY,
                    handle: None,
                    device: None,
                },
                Codec::Json,
                None,
                Some(&r2),
                "session-index:u",
            )
            .unwrap()
        ),
    ]);
    let text = serde_json::to_vec(&list).unwrap();
    let j = run_stdin(&["census", "--json", "-"], &text).json();
    assert_eq!(j["key_ids"], json!({ "clear": 1, "k1": 1, "k2": 3 }));
    let session = j["groups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["type"] == "session")
        .unwrap();
    assert_eq!(
        session["tally"]["key_ids"],
        json!({ "clear": 1, "k1": 1, "k2": 2 })
    );
    let r = run_stdin(&["census", "-"], &text);
    assert_eq!(r.code, EXIT_OK);
    for line in [
        "  key ids   clear: 1  k1: 1  k2: 2",
        "  key ids   k2: 1",
        "key ids: clear: 1  k1: 1  k2: 3 (values per sealing key; a key can be retired once it counts none)",
    ] {
        assert!(r.out.contains(line), "missing {line:?} in:\n{}", r.out);
    }
    // A namespace in clear says so per group, without the rotation line.
    let plain = run(&["census", &fixture("keys.json")]);
    assert!(plain.out.contains("  key ids   clear: 8"), "{}", plain.out);
    assert!(
        !plain.out.contains("values per sealing key"),
        "{}",
        plain.out
    );
}

#[test]
fn inspect_shows_a_sealed_header_without_keys_and_opens_it_with_them() {
    use keys::{K0, K1, K2};
    let dir = scratch("inspect_sealed");
    let r1 = keys::ring(&[("k1", &K1)]);
    let value = dir.join("sealed.bin");
    std::fs::write(&value, sealed_v3(&r1, Codec::Json, "u-k1", "session:s")).unwrap();
    let value = value.display().to_string();
    let ring = keys::file(&dir, "ring.vars", &[("k2", &K2), ("k1", &K1)]);
    let with = |extra: &[&str]| {
        let mut args = vec!["inspect", value.as_str()];
        args.extend_from_slice(extra);
        let r = run(&args);
        keys::assert_no_key(&r);
        r
    };

    // No ring: the readable header, key id included; nothing of the payload.
    let r = with(&[]);
    assert_eq!(r.code, EXIT_UNDECIDED, "{}{}", r.out, r.err);
    for line in [
        "type:       session (registered, current v3)",
        "version:    3 (current)",
        "codec:      json",
        "expires:    2025-10-29T08:53:20.000Z (in 20d)",
        "sealed:     key id k1 (no key ring given)",
        "status:     sealed not opened",
        "problem:    sealed with key id \"k1\": give the key ring",
    ] {
        assert!(r.out.contains(line), "missing {line:?} in:\n{}", r.out);
    }
    assert_no_sealed_plaintext(&r.out);
    let j = with(&["--json", "--stored"]).json();
    assert_eq!(j["status"], "sealed_not_opened");
    assert_eq!(j["header"]["key_id"], "k1");
    assert_eq!(j["header"]["key_status"], "no_key_ring");
    assert!(j["value"].is_null() && j["stored"].is_null());

    let keys_args = ["--keys-file", ring.as_str(), "--keys-prefix", "SEAL"];
    // A ring but no KV key: the associated data is unknown, so it is not opened.
    let r = with(&keys_args);
    assert_eq!(r.code, EXIT_UNDECIDED, "{}", r.out);
    assert!(r.out.contains("give --kv-key KEY"), "{}", r.out);

    // Ring and KV key: opened, validated, shown like a value in clear.
    let mut args = keys_args.to_vec();
    args.extend(["--kv-key", "session:s", "--stored"]);
    let r = with(&args);
    assert_eq!(r.code, EXIT_OK, "{}{}", r.out, r.err);
    for line in [
        "sealed:     key id k1 (in the key ring, not its primary k2: `migrate` re-seals it)",
        "status:     valid (session.v3.schema.json)",
        "stored payload (v3, opened):",
        "\"email\": \"u-k1@example.com\"",
    ] {
        assert!(r.out.contains(line), "missing {line:?} in:\n{}", r.out);
    }
    args.push("--json");
    let j = with(&args).json();
    assert_eq!(j["status"], "valid");
    assert_eq!(j["header"]["key_status"], "older");
    assert_eq!(j["value"]["userId"], "u-k1");

    // The wrong KV key (a value copied elsewhere): it does not open, a corrupt-like verdict.
    let r = with(&[&keys_args[..], &["--kv-key", "session:other"]].concat());
    assert_eq!(r.code, EXIT_INVALID, "{}", r.out);
    assert!(r.out.contains("status:     unopenable"), "{}", r.out);
    assert!(r.out.contains("does not open (changed, moved"), "{}", r.out);
    assert_no_sealed_plaintext(&r.out);

    // Another key under the id k1: the same.
    let wrong = keys::file(&dir, "wrong.vars", &[("k1", &K0)]);
    let r = with(&[
        "--keys-file",
        &wrong,
        "--keys-prefix",
        "SEAL",
        "--kv-key",
        "session:s",
    ]);
    assert_eq!(r.code, EXIT_INVALID, "{}", r.out);
    assert!(r.out.contains("status:     unopenable"), "{}", r.out);

    // A ring without k1: unknown key id, undecided.
    let k2_only = keys::file(&dir, "k2.vars", &[("k2", &K2)]);
    let r = with(&[
        "--keys-file",
        &k2_only,
        "--keys-prefix",
        "SEAL",
        "--kv-key",
        "session:s",
    ]);
    assert_eq!(r.code, EXIT_UNDECIDED, "{}", r.out);
    assert!(
        r.out
            .contains("sealed:     key id k1 (NOT in the key ring)"),
        "{}",
        r.out
    );
    assert!(r.out.contains("status:     unknown key"), "{}", r.out);

    // One key of a dump: the entry's key is the KV key.
    let dump = rotation_dump(&dir);
    let r = run(&[
        "inspect",
        &dump.display().to_string(),
        "--key",
        "session:k1v1",
        "--keys-file",
        &ring,
        "--keys-prefix",
        "SEAL",
    ]);
    assert_eq!(r.code, EXIT_OK, "{}{}", r.out, r.err);
    assert!(
        r.out.contains("version:    1 (migrates to v3)"),
        "{}",
        r.out
    );
    assert!(r.out.contains("\"userId\": \"u-k1v1\""), "{}", r.out);
    // A value in clear read with a ring says so.
    let r = run(&[
        "inspect",
        &fixture("values/session-v1.json"),
        "--keys-file",
        &ring,
        "--keys-prefix",
        "SEAL",
    ]);
    assert_eq!(r.code, EXIT_OK, "{}{}", r.out, r.err);
    assert!(r.out.contains("sealed:     no (in clear)"), "{}", r.out);
}

#[test]
fn encode_seals_with_the_primary_key_for_the_kv_key() {
    use keys::{K1, K2};
    let dir = scratch("encode_sealed");
    let payload = dir.join("payload.json");
    std::fs::write(
        &payload,
        serde_json::to_vec(&fixtures::v3("u-e", NOW + DAY)).unwrap(),
    )
    .unwrap();
    let ring = keys::file(&dir, "ring.vars", &[("k2", &K2), ("k1", &K1)]);
    let out = dir.join("sealed.b64");
    fn encode_args<'a>(ring: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
        let mut a = vec![
            "encode",
            "--type",
            "session",
            "--codec",
            "postcard",
            "--ttl",
            "60",
            "--keys-file",
            ring,
            "--keys-prefix",
            "SEAL",
        ];
        a.extend_from_slice(extra);
        a
    }
    let o = out.display().to_string();
    let p = payload.display().to_string();
    let r = run(&encode_args(
        &ring,
        &["--key", "session:e", "--base64", "-o", &o, &p],
    ));
    assert_eq!(r.code, EXIT_OK, "{}{}", r.out, r.err);
    keys::assert_no_key(&r);
    assert_eq!(
        r.out,
        format!(
            "{{\"t\":\"session\",\"v\":3,\"c\":\"postcard\",\"e\":{},\"k\":\"k2\"}}\n",
            NOW + 60_000
        )
    );
    use base64::Engine as _;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(std::fs::read_to_string(&out).unwrap().trim())
        .unwrap();
    assert_eq!(bytes[0], envelope::SEALED_MAGIC);
    let ring2 = keys::ring(&[("k2", &K2)]);
    let d = kv_envelope::__internal::decode_value_in::<SessionRecord>(
        &bytes,
        Some(&ring2),
        "session:e",
        NOW,
        true,
    )
    .unwrap()
    .unwrap();
    assert_eq!(d.value.user_id, "u-e");
    // Without --key there is nothing to bind the value to.
    let r = run(&encode_args(&ring, &["-o", &o, &p]));
    assert_eq!(r.code, EXIT_USAGE);
    assert!(r.err.contains("give --key KEY"), "{}", r.err);
}

#[test]
fn key_ring_errors_name_the_variable_never_the_key() {
    let dir = scratch("key_errors");
    let short = fixtures::b64(&[0x5a; 16]);
    let cases: [(&str, String, &str); 5] = [
        (
            "short.vars",
            format!("SEAL_KEYS=k1\nSEAL_KEY_k1={short}\n"),
            "SEAL_KEY_k1 is not base64 of 32 bytes (it decodes to 16 bytes)",
        ),
        (
            "bad.vars",
            "SEAL_KEYS=k1\nSEAL_KEY_k1=hunter2-is-not-base64!!\n".to_string(),
            "SEAL_KEY_k1 is not base64 of 32 bytes (not valid base64)",
        ),
        (
            "missing.vars",
            "SEAL_KEYS=k2,k1\nSEAL_KEY_k2=".to_string() + &keys::b64(&keys::K2) + "\n",
            "SEAL_KEY_k1 is not set",
        ),
        (
            "noids.vars",
            "OTHER=1\n".to_string(),
            "SEAL_KEYS is not set",
        ),
        (
            "garbled.vars",
            "SEAL_KEYS=k1\nhunter2-a-secret-pasted-alone\n".to_string(),
            "line 2 is not NAME=VALUE",
        ),
    ];
    for (name, text, expected) in &cases {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        let file = path.display().to_string();
        for cmd in [
            vec!["inspect", &fixture("values/session-v1.json")[..]],
            vec!["migrate", "--dry-run", &fixture("dump-clean.json")[..]],
        ] {
            let mut args = cmd.clone();
            args.extend(["--keys-file", &file, "--keys-prefix", "SEAL"]);
            let r = run(&args);
            assert_eq!(r.code, EXIT_USAGE, "{name}: {}{}", r.out, r.err);
            assert!(r.err.contains(expected), "{name}: {}", r.err);
            assert!(
                !r.err.contains(&short) && !r.out.contains(&short),
                "{name}: {}",
                r.err
            );
            assert!(!r.err.contains("hunter2"), "{name}: {}", r.err);
            keys::assert_no_key(&r);
        }
    }
    // A prefix without a file, or both sources: refused by the argument parser.
    assert_eq!(
        run(&["inspect", "--keys-prefix", "SEAL", "-"]).code,
        EXIT_USAGE
    );
    assert_eq!(
        run(&[
            "inspect",
            "--keys-env",
            "SEAL",
            "--keys-file",
            "x",
            "--keys-prefix",
            "SEAL",
            "-"
        ])
        .code,
        EXIT_USAGE
    );
}

#[test]
fn the_binary_reads_the_key_ring_from_the_environment() {
    use keys::{K1, K2};
    let bin = env!("CARGO_BIN_EXE_kv-envelope");
    let dir = scratch("binary_keys_env");
    let value = dir.join("sealed.bin");
    std::fs::write(
        &value,
        sealed_v3(
            &keys::ring(&[("k1", &K1)]),
            Codec::Json,
            "u-k1",
            "session:s",
        ),
    )
    .unwrap();
    let inspect = |vars: &[(&str, String)]| {
        let mut c = std::process::Command::new(bin);
        c.args([
            "--now",
            &NOW.to_string(),
            "inspect",
            "--keys-env",
            "SEAL",
            "--kv-key",
            "session:s",
        ])
        .arg(&value);
        for (k, v) in vars {
            c.env(k, v);
        }
        let o = c.output().unwrap();
        Run {
            code: u8::try_from(o.status.code().unwrap()).unwrap(),
            out: String::from_utf8(o.stdout).unwrap(),
            err: String::from_utf8(o.stderr).unwrap(),
        }
    };
    let r = inspect(&[
        ("SEAL_KEYS", "k2 k1".into()),
        ("SEAL_KEY_k2", keys::b64(&K2)),
        ("SEAL_KEY_k1", keys::b64(&K1)),
    ]);
    assert_eq!(r.code, EXIT_OK, "{}{}", r.out, r.err);
    assert!(r.out.contains("status:     valid"), "{}", r.out);
    keys::assert_no_key(&r);
    // A wrong-length key in the environment: named, never shown.
    let short = keys::b64(&[0x5a; 31]);
    let r = inspect(&[("SEAL_KEYS", "k1".into()), ("SEAL_KEY_k1", short.clone())]);
    assert_eq!(r.code, EXIT_USAGE);
    assert!(
        r.err.contains("key ring (--keys-env SEAL): SEAL_KEY_k1 is not base64 of 32 bytes (it decodes to 31 bytes)"),
        "{}",
        r.err
    );
    assert!(!r.err.contains(&short) && !r.out.contains(&short));
}

#[test]
fn every_truncation_of_a_sealed_value_is_refused_with_the_ring() {
    use keys::{K1, K2};
    let dir = scratch("sealed_truncation");
    let ring = keys::file(&dir, "ring.vars", &[("k2", &K2), ("k1", &K1)]);
    let bytes = sealed_v3(
        &keys::ring(&[("k1", &K1)]),
        Codec::Postcard,
        "u-t",
        "session:t",
    );
    for cut in 0..bytes.len() {
        let r = run_stdin(
            &[
                "inspect",
                "--format",
                "raw",
                "--keys-file",
                &ring,
                "--keys-prefix",
                "SEAL",
                "--kv-key",
                "session:t",
                "-",
            ],
            &bytes[..cut],
        );
        assert_eq!(r.code, EXIT_INVALID, "cut at {cut}: {}{}", r.out, r.err);
    }
}

// ---------------------------------------------------------------------------------------------
// hostile input: never a panic, always a documented exit status

#[test]
fn every_truncation_of_an_input_file_is_an_error_not_a_panic() {
    for name in ["dump-clean.json", "keys.json"] {
        let text = std::fs::read(fixture(name)).unwrap();
        let args: &[&str] = if name == "keys.json" {
            &["census", "-"]
        } else {
            &["migrate", "--dry-run", "-"]
        };
        // Every proper prefix: the last one cut keeps all but the closing `]` and newline.
        for cut in 0..text.len() - 1 {
            let r = run_stdin(args, &text[..cut]);
            assert_eq!(
                r.code, EXIT_USAGE,
                "{name} cut at {cut}: {}{}",
                r.out, r.err
            );
        }
    }
    for name in ["values/session-v1.json", "values/session-v2.postcard.bin"] {
        let bytes = std::fs::read(fixture(name)).unwrap();
        for cut in 0..bytes.len() {
            let r = run_stdin(&["inspect", "--format", "raw", "-"], &bytes[..cut]);
            assert_eq!(
                r.code, EXIT_INVALID,
                "{name} cut at {cut}: {}{}",
                r.out, r.err
            );
        }
    }
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(200))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300)) {
        for args in [
            &["inspect", "-"][..],
            &["inspect", "--format", "raw", "-"],
            &["census", "-"],
            &["migrate", "--dry-run", "-"],
        ] {
            let r = run_stdin(args, &bytes);
            proptest::prop_assert!([EXIT_OK, EXIT_INVALID, EXIT_USAGE, EXIT_UNDECIDED].contains(&r.code));
        }
    }

    #[test]
    fn arbitrary_bulk_entries_never_panic(
        key in "[a-z:]{0,8}",
        value in ".{0,40}",
        base64 in proptest::prelude::any::<bool>(),
        meta_v in 0u32..6,
    ) {
        let dump = json!([{ "key": key, "value": value, "base64": base64,
            "metadata": { "t": "session", "v": meta_v, "c": "json" } }]);
        let r = run_stdin(&["migrate", "--dry-run", "--json", "-"], dump.to_string().as_bytes());
        // (EXIT_UNDECIDED: base64 that happens to decode to a sealed frame, left unopened.)
        proptest::prop_assert!([EXIT_OK, EXIT_INVALID, EXIT_UNDECIDED].contains(&r.code), "{}{}", r.out, r.err);
        proptest::prop_assert_eq!(&r.json()["summary"]["written"], &json!(0));
    }
}
