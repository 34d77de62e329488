//! `inspect`: one stored value, decoded as far as this build can take it. A sealed value's
//! header (key id included) is shown without any key; with a key ring and its KV key it is
//! opened and judged like a value in clear.

use serde_json::{json, Value};

use super::{
    input::{self, Fail, Source},
    registry::Sealing,
    time::{describe_expiry, rfc3339_ms},
    write_err, Ctx, InspectArgs, EXIT_INVALID, EXIT_OK, EXIT_UNDECIDED,
};
use kv_envelope::{
    __internal::schema_file_name,
    envelope::{self, Header, Payload},
    Codec, Error, KeyRing, SealError, ValidationIssue,
};

/// How far the value got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Status {
    /// Decoded, valid, migrated, and the migrated value fits the current schema.
    Valid,
    /// The payload fails its version's schema, or the migrated value fails the current one.
    Invalid,
    /// The bytes are not a well-formed envelope or payload.
    Corrupt,
    /// Written by newer code: this build has no schema for it.
    FutureVersion,
    /// A type this CLI does not know.
    Unregistered,
    /// Sealed, and not opened: no key ring, or no KV key to open it for.
    SealedNotOpened,
    /// Sealed with a key id the ring lacks.
    UnknownKey,
    /// Sealed with a key id of the ring, and it does not open: changed, copied from another
    /// KV key, or another key under that id.
    Unopenable,
}

impl Status {
    fn as_str(self) -> &'static str {
        match self {
            Status::Valid => "valid",
            Status::Invalid => "invalid",
            Status::Corrupt => "corrupt",
            Status::FutureVersion => "future_version",
            Status::Unregistered => "unregistered",
            Status::SealedNotOpened => "sealed_not_opened",
            Status::UnknownKey => "unknown_key",
            Status::Unopenable => "unopenable",
        }
    }

    fn exit_code(self) -> u8 {
        match self {
            Status::Valid => EXIT_OK,
            Status::Invalid | Status::Corrupt | Status::Unopenable => EXIT_INVALID,
            Status::FutureVersion
            | Status::Unregistered
            | Status::SealedNotOpened
            | Status::UnknownKey => EXIT_UNDECIDED,
        }
    }
}

/// Everything `inspect` found, printed as text or JSON.
struct Report {
    key: Option<String>,
    size: usize,
    header: Option<Header<'static>>,
    /// The dump's metadata for the key, when it disagrees with the envelope header.
    metadata_mismatch: Option<String>,
    current_version: Option<u32>,
    status: Status,
    /// The error message (already free of payload values).
    error: Option<String>,
    /// Which schema the issues are against.
    issues_against: Option<String>,
    issues: Vec<ValidationIssue>,
    value: Option<Value>,
    /// `value` pretty-printed in field order.
    value_text: Option<String>,
    /// The stored JSON payload, as stored (opened, for a sealed value).
    stored: Option<String>,
    /// What the key ring says of a sealed value's key id.
    key_status: Option<KeyStatus>,
}

/// A sealed value's key id as the given ring sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum KeyStatus {
    NoRing,
    Primary,
    Older,
    Missing,
}

impl KeyStatus {
    fn as_str(self) -> &'static str {
        match self {
            KeyStatus::NoRing => "no_key_ring",
            KeyStatus::Primary => "primary",
            KeyStatus::Older => "older",
            KeyStatus::Missing => "not_in_ring",
        }
    }

    fn describe(self, ring: Option<&KeyRing>) -> String {
        let primary = ring.map_or("", KeyRing::primary_id);
        match self {
            KeyStatus::NoRing => "no key ring given".into(),
            KeyStatus::Primary => "the key ring's primary".into(),
            KeyStatus::Older => {
                format!("in the key ring, not its primary {primary}: `migrate` re-seals it")
            }
            KeyStatus::Missing => "NOT in the key ring".into(),
        }
    }
}

pub(crate) fn inspect(ctx: &mut Ctx<'_>, args: &InspectArgs) -> Result<u8, Fail> {
    let source = Source::new(Some(&args.input));
    let ring = ctx.key_ring(&args.keys)?;
    let (bytes, metadata) = match &args.key {
        None => {
            let raw = source.read_all(ctx.stdin)?;
            let bytes =
                input::value_bytes(raw, args.format).map_err(|m| Fail(format!("{source}: {m}")))?;
            (bytes, None)
        }
        Some(key) => from_dump(ctx, &source, key)?,
    };
    let kv_key = args.key.as_deref().or(args.kv_key.as_deref());
    let report = examine(
        ctx,
        args.key.clone(),
        &bytes,
        metadata.as_ref(),
        args.stored,
        (ring.as_ref(), kv_key),
    );
    if args.json {
        print_json(ctx, &report)?;
    } else {
        print_text(ctx, &report, ring.as_ref())?;
    }
    Ok(report.status.exit_code())
}

/// The bytes and metadata of `key` in a bulk dump.
fn from_dump(
    ctx: &mut Ctx<'_>,
    source: &Source,
    key: &str,
) -> Result<(Vec<u8>, Option<Value>), Fail> {
    let mut found = None;
    let mut reader = source.open(ctx.stdin)?;
    input::for_each_bulk_entry(
        source,
        &mut reader,
        &input::ReadCount::default(),
        &mut |entry| {
            if entry.key == key {
                found = Some(entry);
            }
            Ok(())
        },
    )?;
    let entry = found.ok_or_else(|| Fail(format!("{source}: no entry has key {key:?}")))?;
    let bytes = match entry.value {
        input::EntryValue::Bytes(b) => b,
        input::EntryValue::Missing => {
            return Err(Fail(format!(
                "{source}: entry #{} (key {key:?}) has no value",
                entry.index
            )))
        }
        input::EntryValue::Bad(m) => {
            return Err(Fail(format!(
                "{source}: entry #{} (key {key:?}): {m}",
                entry.index
            )))
        }
    };
    Ok((bytes, entry.metadata))
}

fn examine(
    ctx: &Ctx<'_>,
    key: Option<String>,
    bytes: &[u8],
    metadata: Option<&Value>,
    want_stored: bool,
    (ring, kv_key): (Option<&KeyRing>, Option<&str>),
) -> Report {
    let mut report = Report {
        key,
        size: bytes.len(),
        header: None,
        metadata_mismatch: None,
        current_version: None,
        status: Status::Corrupt,
        error: None,
        issues_against: None,
        issues: Vec::new(),
        value: None,
        value_text: None,
        stored: None,
        key_status: None,
    };
    let raw = match envelope::decode(bytes) {
        Ok(raw) => raw,
        Err(e) => {
            report.error = Some(match input::mangled_binary(bytes) {
                Some(why) => format!("{e}: {why}"),
                None => e.to_string(),
            });
            return report;
        }
    };
    let header = raw.header.clone().into_owned();
    if let Some(meta) = metadata {
        let theirs = Header::from_metadata(&meta.to_string());
        if theirs.as_ref() != Some(&header) {
            report.metadata_mismatch = Some(match theirs {
                Some(h) => format!(
                    "KV metadata says {} v{} {} expiring {:?}; the envelope is authoritative",
                    input::shown(&h.type_name),
                    h.version,
                    h.codec,
                    h.expires_at
                ),
                None => "KV metadata is not kv-envelope metadata".to_string(),
            });
        }
    }
    // The stored payload is shown only on request, and only when it is JSON text: a human asked
    // to see this value.
    if want_stored {
        match (raw.payload, ring, kv_key) {
            (Payload::Json(text), _, _) => {
                report.stored = Some(String::from_utf8_lossy(text).into_owned());
            }
            (Payload::Sealed(s), Some(ring), Some(kv_key)) if s.codec == Codec::Json => {
                // Shown only when it opens; a failure is reported by the decode below.
                if let Ok(text) = ring.open(kv_key, &s, "value") {
                    report.stored = Some(String::from_utf8_lossy(&text).into_owned());
                }
            }
            _ => {}
        }
    }
    if let Some(id) = header.key_id.as_deref() {
        report.key_status = Some(match ring {
            None => KeyStatus::NoRing,
            Some(r) if r.primary_id() == id => KeyStatus::Primary,
            Some(r) if r.key_ids().any(|k| k == id) => KeyStatus::Older,
            Some(_) => KeyStatus::Missing,
        });
    }
    report.header = Some(header.clone());
    let Some(registered) = ctx.registry.get(&header.type_name) else {
        report.status = Status::Unregistered;
        report.error = Some(format!(
            "type \"{}\" is not registered in this CLI",
            input::shown(&header.type_name)
        ));
        return report;
    };
    report.current_version = Some(registered.current_version());
    if header.version > registered.current_version() {
        report.status = Status::FutureVersion;
        report.error = Some(format!(
            "written by newer code (v{} > this build's v{}): it cannot be validated here and is never rewritten",
            header.version,
            registered.current_version()
        ));
        return report;
    }
    if let (Some(id), Some(key)) = (header.key_id.as_deref(), report.key_status) {
        let (status, problem) = match (key, kv_key) {
            (KeyStatus::NoRing, _) => (
                Status::SealedNotOpened,
                format!("sealed with key id {id:?}: give the key ring (--keys-env PREFIX, or --keys-file FILE --keys-prefix PREFIX) to open it"),
            ),
            (KeyStatus::Missing, _) => (
                Status::UnknownKey,
                format!("sealed with key id {id:?}, which the key ring does not hold: it cannot be opened here and is never rewritten"),
            ),
            (_, None) => (
                Status::SealedNotOpened,
                "a sealed value opens only for the KV key it was written under: give --kv-key KEY (or --key with a dump)".to_string(),
            ),
            _ => (Status::Valid, String::new()),
        };
        if status != Status::Valid {
            report.status = status;
            report.error = Some(problem);
            return report;
        }
    }
    let sealing = Sealing {
        ring,
        kv_key: kv_key.unwrap_or(""),
    };
    match registered.inspect(bytes, sealing) {
        Ok(inspected) => {
            report.value = Some(inspected.value);
            report.value_text = Some(inspected.pretty);
            if inspected.current_issues.is_empty() {
                report.status = Status::Valid;
            } else {
                report.status = Status::Invalid;
                report.error = Some(format!(
                    "the migrated value fails the current schema ({}): a migration step is wrong",
                    schema_file_name(registered.name(), registered.current_version())
                ));
                report.issues_against = Some(schema_file_name(
                    registered.name(),
                    registered.current_version(),
                ));
                report.issues = inspected.current_issues;
            }
        }
        Err(Error::Validation {
            type_name,
            version,
            issues,
        }) => {
            report.status = Status::Invalid;
            report.error = Some(format!("{type_name} v{version} fails its schema"));
            report.issues_against = Some(schema_file_name(type_name, version));
            report.issues = issues;
        }
        Err(
            e @ Error::Sealed {
                reason: SealError::Unopenable { .. },
                ..
            },
        ) => {
            report.status = Status::Unopenable;
            report.error = Some(e.to_string());
        }
        Err(e) => {
            report.status = if e.is_corrupt() {
                Status::Corrupt
            } else {
                Status::Invalid
            };
            report.error = Some(e.to_string());
        }
    }
    report
}

fn print_text(ctx: &mut Ctx<'_>, r: &Report, ring: Option<&KeyRing>) -> Result<(), Fail> {
    let out = &mut *ctx.out;
    if let Some(key) = &r.key {
        writeln!(out, "key:        {key}").map_err(write_err)?;
    }
    writeln!(out, "size:       {} bytes", r.size).map_err(write_err)?;
    match &r.header {
        None => {
            writeln!(out, "envelope:   corrupt").map_err(write_err)?;
        }
        Some(h) => {
            let registered = match r.current_version {
                Some(v) => format!("registered, current v{v}"),
                None => "not registered".to_string(),
            };
            writeln!(
                out,
                "type:       {} ({registered})",
                input::shown(&h.type_name)
            )
            .map_err(write_err)?;
            let version = match r.current_version {
                Some(cur) if h.version < cur => format!("{} (migrates to v{cur})", h.version),
                Some(cur) if h.version > cur => {
                    format!("{} (newer than this build's v{cur})", h.version)
                }
                Some(_) => format!("{} (current)", h.version),
                None => h.version.to_string(),
            };
            writeln!(out, "version:    {version}").map_err(write_err)?;
            writeln!(out, "codec:      {}", h.codec).map_err(write_err)?;
            if let (Some(id), Some(key)) = (&h.key_id, r.key_status) {
                writeln!(out, "sealed:     key id {id} ({})", key.describe(ring))
                    .map_err(write_err)?;
            } else if ring.is_some() {
                writeln!(out, "sealed:     no (in clear)").map_err(write_err)?;
            }
            writeln!(
                out,
                "expires:    {}",
                describe_expiry(h.expires_at, ctx.now_ms)
            )
            .map_err(write_err)?;
        }
    }
    if let Some(m) = &r.metadata_mismatch {
        writeln!(out, "metadata:   {m}").map_err(write_err)?;
    }
    let verdict = match (r.status, &r.header) {
        (Status::Valid, Some(h)) => {
            format!("valid ({})", schema_file_name(&h.type_name, h.version))
        }
        (status, _) => status.as_str().replace('_', " "),
    };
    writeln!(out, "status:     {verdict}").map_err(write_err)?;
    if let Some(e) = &r.error {
        writeln!(out, "problem:    {e}").map_err(write_err)?;
    }
    if !r.issues.is_empty() {
        let against = r.issues_against.as_deref().unwrap_or("its schema");
        writeln!(out, "issues against {against}:").map_err(write_err)?;
        for issue in &r.issues {
            let path = if issue.instance_path.is_empty() {
                "/"
            } else {
                &issue.instance_path
            };
            writeln!(
                out,
                "  {path}: {} (schema {})",
                issue.message, issue.schema_path
            )
            .map_err(write_err)?;
        }
    }
    if let Some(stored) = &r.stored {
        let v = r.header.as_ref().map_or(0, |h| h.version);
        let how = if r.key_status.is_some() {
            "opened"
        } else {
            "as stored"
        };
        writeln!(out, "stored payload (v{v}, {how}):").map_err(write_err)?;
        writeln!(out, "{stored}").map_err(write_err)?;
    }
    if let (Some(text), Some(cur)) = (&r.value_text, r.current_version) {
        writeln!(out, "payload (current v{cur}):").map_err(write_err)?;
        writeln!(out, "{text}").map_err(write_err)?;
    }
    Ok(())
}

fn pretty(v: &Value) -> String {
    serde_json::to_string_pretty(v).unwrap_or_default()
}

fn print_json(ctx: &mut Ctx<'_>, r: &Report) -> Result<(), Fail> {
    let header = r.header.as_ref().map(|h| {
        json!({
            "type": h.type_name,
            "version": h.version,
            "codec": h.codec,
            "expires_at": h.expires_at,
            "expires": h.expires_at.map(rfc3339_ms),
            "expired": h.is_expired(ctx.now_ms),
            "key_id": h.key_id,
            "key_status": r.key_status.map(KeyStatus::as_str),
        })
    });
    let doc = json!({
        "key": r.key,
        "size": r.size,
        "header": header,
        "metadata_mismatch": r.metadata_mismatch,
        "current_version": r.current_version,
        "status": r.status.as_str(),
        "error": r.error,
        "issues_against": r.issues_against,
        "issues": r.issues,
        "stored": r.stored.as_deref().and_then(|s| serde_json::from_str::<Value>(s).ok()),
        "value": r.value,
    });
    writeln!(ctx.out, "{}", pretty(&doc)).map_err(write_err)
}
