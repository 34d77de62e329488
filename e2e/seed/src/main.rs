//! `kv-seed`: KV values built by kv-envelope itself, for the demo worker's end-to-end tests to
//! plant in the local KV with `scripts/worker-kv.sh put KEY --path FILE` (no HTTP backdoor).
//!
//! ```text
//! kv-seed session --id HEX64 --version 1..=4 --codec json|postcard --user-id U --email E \
//!                 --created-at MS --expires-at MS [--seal-keys-file DEV_VARS] --out FILE
//! kv-seed envelope --type NAME --version N --expires-at MS --data JSON [--key KV_KEY] --out FILE
//!                                                                            (JSON codec)
//! kv-seed file --key KV_KEY --in FILE [--seal-keys-file DEV_VARS] --out FILE
//! kv-seed open --key KV_KEY --in FILE --keys-file DEV_VARS [--prefix SEAL]
//! ```
//!
//! `--seal-keys-file` seals the value (and a session's index entry) for its key with the primary
//! key of the ring in a `.dev.vars` file (`--prefix`, default `SEAL`), as the demo would have
//! written it: the demo's ring refuses values in clear.
//!
//! Each prints one JSON line: `{"key": <KV key or null>, "metadata": <KV metadata JSON>,
//! "bytes": <length>, "index": null | {"key", "metadata", "path"}}`. A current-version (v3)
//! session comes with its per-user index entry, written to `<FILE>.index`, as the session store
//! writes one for every session it creates (v1/v2 values stand for sessions written before the
//! store kept an index, and get none). SessionRecord keys come from the session store's own key function
//! (`Sessions::key_of`). Version 4 of a session is a future version: the v3 payload plus a
//! field v3 does not know, under a v4 header.
//!
//! `open` reads a stored value (sealed or in clear) the way a store with the key ring of
//! `<prefix>_KEYS` / `<prefix>_KEY_<id>` from a `.dev.vars` file would, and prints its header and
//! JSON payload: `{"type", "version", "codec", "key_id", "expires_at", "data"}` (JSON-codec
//! payloads only; the tests use it to look inside what the demo worker sealed).

use std::{collections::HashMap, process::ExitCode};

use kv_envelope::{
    __internal::DEFAULT_ABSOLUTE_LIFETIME,
    envelope::{self, Header, Payload},
    session::{
        SessionId, SessionIndexEntry, SessionRecord, SessionRecordV1, SessionRecordV2, Sessions,
    },
    Codec, KeyRing, Kv, MemoryKv, Versioned,
};
use serde_json::{json, Value};

fn main() -> ExitCode {
    match run(std::env::args().skip(1).collect()) {
        Ok(line) => {
            println!("{line}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("kv-seed: {e}");
            ExitCode::from(2)
        }
    }
}

type Args = HashMap<String, String>;

fn parse(args: &[String]) -> Result<Args, String> {
    let mut out = Args::new();
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let name = flag
            .strip_prefix("--")
            .ok_or_else(|| format!("unexpected argument {flag:?}"))?;
        let value = it.next().ok_or_else(|| format!("--{name} needs a value"))?;
        out.insert(name.to_string(), value.clone());
    }
    Ok(out)
}

fn arg<'a>(args: &'a Args, name: &str) -> Result<&'a str, String> {
    args.get(name)
        .map(String::as_str)
        .ok_or_else(|| format!("missing --{name}"))
}

fn num(args: &Args, name: &str) -> Result<u64, String> {
    arg(args, name)?
        .parse()
        .map_err(|_| format!("--{name} must be a number"))
}

fn codec(args: &Args) -> Result<Codec, String> {
    match args.get("codec").map_or("json", String::as_str) {
        "json" => Ok(Codec::Json),
        "postcard" => Ok(Codec::Postcard),
        other => Err(format!("unknown codec {other:?}")),
    }
}

fn run(argv: Vec<String>) -> Result<String, String> {
    let (command, rest) = argv
        .split_first()
        .ok_or("usage: kv-seed session|envelope ...")?;
    let args = parse(rest)?;
    if command == "open" {
        return open(&args);
    }
    let out = arg(&args, "out")?;
    let ((key, header, bytes), index) = match command.as_str() {
        "session" => session(&args)?,
        "envelope" => (raw_envelope(&args)?, None),
        "file" => (from_file(&args)?, None),
        other => return Err(format!("unknown command {other:?}")),
    };
    // `--seal-keys-file DEV_VARS`: sealed as the demo seals (its ring refuses clear values).
    let (key, header, bytes, index) = match args.get("seal-keys-file") {
        None => (key, header, bytes, index),
        Some(path) => {
            let ring = ring_of(path, &args)?;
            let sealed = seal(&ring, (key, header, bytes))?;
            let index = index.map(|i| seal(&ring, i)).transpose()?;
            (sealed.0, sealed.1, sealed.2, index)
        }
    };
    std::fs::write(out, &bytes).map_err(|e| format!("writing --out: {e}"))?;
    let index = match index {
        Some((index_key, index_header, index_bytes)) => {
            let path = format!("{out}.index");
            std::fs::write(&path, &index_bytes).map_err(|e| format!("writing {path}: {e}"))?;
            json!({ "key": index_key, "metadata": index_header.to_metadata(), "path": path })
        }
        None => Value::Null,
    };
    Ok(json!({
        "key": key, "metadata": header.to_metadata(), "bytes": bytes.len(), "index": index
    })
    .to_string())
}

type Seeded = (Option<String>, Header<'static>, Vec<u8>);

/// The key ring of a `.dev.vars` file (`--prefix`, default `SEAL`).
fn ring_of(path: &str, args: &Args) -> Result<KeyRing, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("reading {path}: {e}"))?;
    let vars: HashMap<String, String> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_string(), v.trim().trim_matches('"').to_string()))
        .collect();
    let prefix = args.get("prefix").map_or("SEAL", String::as_str);
    KeyRing::from_lookup(prefix, |name| vars.get(name).cloned()).map_err(|e| e.to_string())
}

/// A seeded value sealed for its key with `ring`'s primary key.
fn seal(ring: &KeyRing, (key, header, bytes): Seeded) -> Result<Seeded, String> {
    let kv_key = key
        .as_deref()
        .ok_or("--seal-keys-file needs a value with a key")?;
    let sealed = ring
        .seal_envelope(kv_key, &bytes)
        .map_err(|e| e.to_string())?;
    let header = Header {
        key_id: Some(ring.primary_id().to_string().into()),
        ..header
    };
    Ok((key, header, sealed))
}

fn session(args: &Args) -> Result<(Seeded, Option<Seeded>), String> {
    let id = SessionId::parse(arg(args, "id")?).map_err(|e| e.to_string())?;
    let store: Sessions = Sessions::new(Kv::new(MemoryKv::default()));
    let key = store.key_of(&id);
    let version: u32 = num(args, "version")?
        .try_into()
        .map_err(|_| "--version out of range")?;
    let codec = codec(args)?;
    let user_id = arg(args, "user-id")?.to_string();
    let email = arg(args, "email")?.to_string();
    let created_at = num(args, "created-at")?;
    let expires_at = num(args, "expires-at")?;
    let lifetime_ms = u64::try_from(DEFAULT_ABSOLUTE_LIFETIME.as_millis()).expect("30 days");
    let absolute_expires_at = created_at.saturating_add(lifetime_ms);
    let v3 = SessionRecord {
        user_id: user_id.clone(),
        email: email.clone(),
        created_at,
        expires_at,
        absolute_expires_at,
        refreshed_at: created_at,
        roles: Vec::new(),
    };
    let bytes = match version {
        1 => encode(
            codec,
            1,
            expires_at,
            &SessionRecordV1 {
                user_id,
                email,
                created_at,
                expires_at,
            },
        )?,
        2 => encode(
            codec,
            2,
            expires_at,
            &SessionRecordV2 {
                user_id,
                email,
                created_at,
                expires_at,
                absolute_expires_at,
            },
        )?,
        3 => encode(codec, 3, expires_at, &v3)?,
        v if v > SessionRecord::VERSION => {
            // A field this code does not know, as a newer version would add.
            match codec {
                Codec::Json => {
                    let mut data = serde_json::to_value(&v3).map_err(|e| e.to_string())?;
                    data["mfa"] = Value::Bool(true);
                    encode(codec, v, expires_at, &data)?
                }
                Codec::Postcard => {
                    let mut bytes = encode(codec, v, expires_at, &v3)?;
                    bytes.push(1);
                    bytes
                }
            }
        }
        _ => return Err("--version must be at least 1".into()),
    };
    let header = Header {
        codec,
        type_name: SessionRecord::NAME.into(),
        version,
        expires_at: Some(expires_at),
        key_id: None,
    };
    let index = (version == SessionRecord::VERSION).then(|| {
        // As a login from before devices would have left it: no handle or label (the
        // devices list derives a handle from the key).
        let entry = SessionIndexEntry {
            created_at,
            absolute_expires_at,
            handle: None,
            device: None,
        };
        let key = format!("{}{}", store.index_prefix_of(&v3.user_id), id.hashed());
        let header = Header {
            codec: Codec::Json,
            type_name: SessionIndexEntry::NAME.into(),
            version: SessionIndexEntry::VERSION,
            expires_at: Some(absolute_expires_at),
            key_id: None,
        };
        let bytes = kv_envelope::encode_value(&entry, Codec::Json, Some(absolute_expires_at))
            .map_err(|e| e.to_string());
        bytes.map(|b| (Some(key), header, b))
    });
    Ok(((Some(key), header, bytes), index.transpose()?))
}

fn raw_envelope(args: &Args) -> Result<Seeded, String> {
    let type_name: &'static str = Box::leak(arg(args, "type")?.to_string().into_boxed_str());
    let version: u32 = num(args, "version")?
        .try_into()
        .map_err(|_| "--version out of range")?;
    let expires_at = match arg(args, "expires-at")? {
        "none" => None,
        _ => Some(num(args, "expires-at")?),
    };
    let data: Value =
        serde_json::from_str(arg(args, "data")?).map_err(|e| format!("--data: {e}"))?;
    let bytes = envelope::encode(Codec::Json, type_name, version, expires_at, &data)
        .map_err(|e| e.to_string())?;
    let header = Header {
        codec: Codec::Json,
        type_name: type_name.into(),
        version,
        expires_at,
        key_id: None,
    };
    // `--key`: the KV key it is for (needed to seal it).
    Ok((args.get("key").cloned(), header, bytes))
}

/// `kv-seed file --key KV_KEY --in FILE`: an envelope another writer made (the TypeScript
/// package, say), as it is; with `--seal-keys-file`, sealed for its key.
fn from_file(args: &Args) -> Result<Seeded, String> {
    let path = arg(args, "in")?;
    let bytes = std::fs::read(path).map_err(|e| format!("reading --in: {e}"))?;
    let header = envelope::peek_header(&bytes)
        .map_err(|e| e.to_string())?
        .into_owned();
    Ok((Some(arg(args, "key")?.to_string()), header, bytes))
}

/// Encode `value` as a session envelope of `version` with the library's encoder.
fn encode<T: serde::Serialize>(
    codec: Codec,
    version: u32,
    expires_at: u64,
    value: &T,
) -> Result<Vec<u8>, String> {
    envelope::encode(codec, SessionRecord::NAME, version, Some(expires_at), value)
        .map_err(|e| e.to_string())
}

/// `kv-seed open`: header and JSON payload of a stored value, opened with the ring of a
/// `.dev.vars` file when sealed.
fn open(args: &Args) -> Result<String, String> {
    let kv_key = arg(args, "key")?;
    let bytes = std::fs::read(arg(args, "in")?).map_err(|e| format!("reading --in: {e}"))?;
    let raw = envelope::decode(&bytes).map_err(|e| e.to_string())?;
    let opened;
    let payload = match raw.payload {
        Payload::Sealed(sealed) => {
            let ring = ring_of(arg(args, "keys-file")?, args)?;
            let type_name: &'static str =
                Box::leak(raw.header.type_name.to_string().into_boxed_str());
            opened = ring
                .open(kv_key, &sealed, type_name)
                .map_err(|e| e.to_string())?;
            match sealed.codec {
                Codec::Json => opened.as_slice(),
                Codec::Postcard => return Err("a postcard payload: open prints JSON only".into()),
            }
        }
        Payload::Json(text) => text,
        Payload::Postcard(_) => return Err("a postcard payload: open prints JSON only".into()),
    };
    let data: Value = serde_json::from_slice(payload).map_err(|e| format!("payload: {e}"))?;
    let h = &raw.header;
    Ok(json!({
        "type": h.type_name, "version": h.version,
        "codec": match h.codec { Codec::Json => "json", Codec::Postcard => "postcard" },
        "key_id": h.key_id, "expires_at": h.expires_at, "data": data,
    })
    .to_string())
}
