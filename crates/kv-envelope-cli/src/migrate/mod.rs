//! `migrate`: read a bulk dump, bring every value of a registered type to its current version,
//! and write what changed as a file for `wrangler kv bulk put`.
//!
//! The rules, in order, for each entry: values that cannot be had (bad base64) or do not decode
//! as a registered type are *invalid*; newer versions are *future*; expired values are dropped;
//! everything else is decoded, validated, migrated, checked against the current schema,
//! re-encoded and read back. Only values that change (older version, another codec requested,
//! stale metadata) are written. Invalid and future values are never written: KV keeps them as
//! they are.
//!
//! Sealed values need the key ring (`--keys-env`, `--keys-file`): without one they are left
//! out as "not opened"; one sealed with a key id the ring lacks is left out as "unknown key"
//! (never rewritten, so a rotation mistake loses nothing). With the ring, a value sealed with
//! an older key is re-sealed with the primary key for its own KV key, a value sealed with the
//! primary is rewritten only for another reason (and then re-sealed), and a value in clear is
//! sealed only with `--seal`.
//!
//! Here: the plan and the decision for each entry. `output` writes the bulk file, `report` the
//! text summary.

mod output;
mod report;

use std::{
    collections::{BTreeMap, HashMap},
    io::Write,
};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Serialize;
use serde_json::{json, value::RawValue, Value};

use self::{
    output::{OutEntry, Output},
    report::print_text,
};
use super::{
    input::{self, BulkEntry, EntryValue, Fail, ReadCount, Source},
    registry::Sealing,
    write_err, Ctx, MigrateArgs, EXIT_INVALID, EXIT_OK, EXIT_UNDECIDED,
};
use kv_envelope::{
    __internal::{check_key, MAX_METADATA_BYTES, MAX_VALUE_BYTES, MIN_EXPIRATION_SECS},
    envelope::{self, Header},
    Codec, KeyRing,
};

/// Skipped entries listed in the text summary per category; `--json` lists them all.
const LIST_LIMIT: usize = 50;

/// Why an entry is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
enum Reason {
    /// Stored below the current version.
    Version,
    /// `--codec` asks for another codec.
    Codec,
    /// The dump's KV metadata does not match the envelope.
    Metadata,
    /// `--include-current`.
    Forced,
    /// Sealed with a key of the ring other than the primary: re-sealed with the primary.
    Reseal,
    /// In clear, and `--seal` asks for it sealed.
    Seal,
}

/// A skipped entry: its key and why, without any of its value.
#[derive(Debug, Clone, Serialize)]
struct Skipped {
    key: String,
    reason: String,
}

/// Everything `migrate` decided.
#[derive(Debug, Default, Serialize)]
struct Summary {
    entries: u64,
    written: u64,
    /// type → "v1→v3" → count, of written entries.
    migrated: BTreeMap<String, BTreeMap<String, u64>>,
    /// Written entries by reason.
    reasons: BTreeMap<String, u64>,
    /// Already current, nothing to write.
    current: u64,
    expired: u64,
    /// Keys the dump lists without a value (`wrangler kv bulk get` prints `null`).
    missing: u64,
    /// Not an envelope and no kv-envelope metadata: another application's value.
    not_ours: u64,
    /// Envelope of a type this CLI does not know: type → count.
    unregistered: BTreeMap<String, u64>,
    /// Left out by `--type`.
    filtered: u64,
    /// Never rewritten: newer schema version than this build.
    future: Vec<Skipped>,
    /// Never rewritten: fail to decode, validate or migrate.
    invalid: Vec<Skipped>,
    /// Written entries that are binary (base64 in the bulk file).
    binary: u64,
    /// Left out by `--recheck`: deleted or rewritten since the dump.
    changed_since_dump: Vec<Skipped>,
    /// Written entries that were sealed with an older key of the ring, now with the primary.
    resealed: u64,
    /// Written entries that were in clear and are now sealed (`--seal`).
    newly_sealed: u64,
    /// Written entries that are sealed (with the primary key).
    written_sealed: u64,
    /// Never rewritten: sealed with a key id the ring lacks.
    unknown_key: Vec<Skipped>,
    /// Left out: sealed, and no key ring was given.
    not_opened: Vec<Skipped>,
}

/// The run's fixed inputs.
struct Plan<'a> {
    ctx_now: u64,
    codec: Option<Codec>,
    types: &'a [String],
    include_current: bool,
    /// Smallest KV expiration (seconds) the output may carry.
    expiration_floor: u64,
    /// `--recheck`: key → header from its fresh metadata (`None`: listed without ours).
    recheck: Option<HashMap<String, Option<Header<'static>>>>,
    /// The key ring: opens sealed values, seals what is written sealed.
    ring: Option<KeyRing>,
    /// `--seal`: also seal values stored in clear.
    seal: bool,
}

pub(crate) fn migrate(ctx: &mut Ctx<'_>, args: &MigrateArgs) -> Result<u8, Fail> {
    let source = Source::new(Some(&args.input));
    let recheck = match &args.recheck {
        None => None,
        Some(path) => {
            let list_source = Source::File(path.clone());
            let bytes = list_source.read_all(ctx.stdin)?;
            let keys = input::parse_key_list(&list_source, &bytes)?;
            Some(
                keys.into_iter()
                    .map(|k| {
                        let h = k
                            .metadata
                            .and_then(|m| Header::from_metadata(&m.to_string()));
                        (k.name, h)
                    })
                    .collect(),
            )
        }
    };
    for t in &args.types {
        if ctx.registry.get(t).is_none() {
            return Err(Fail(format!("--type {t:?} is not a registered type")));
        }
    }
    let ring = ctx.key_ring(&args.keys)?;
    if args.seal && ring.is_none() {
        return Err(Fail(
            "--seal needs a key ring (--keys-env PREFIX, or --keys-file FILE --keys-prefix PREFIX)"
                .into(),
        ));
    }
    let plan = Plan {
        ctx_now: ctx.now_ms,
        codec: args.codec.map(Codec::from),
        types: &args.types,
        include_current: args.include_current,
        expiration_floor: ctx.now_ms.div_ceil(1000) + MIN_EXPIRATION_SECS + args.put_margin,
        recheck,
        ring,
        seal: args.seal,
    };
    let to_stdout = args.out.as_ref().is_some_and(|p| p.as_os_str() == "-") && !args.dry_run;

    let bar = if ctx.progress {
        let bar = source
            .len()
            .map_or_else(ProgressBar::new_spinner, ProgressBar::new);
        bar.set_draw_target(ProgressDrawTarget::stderr());
        bar.set_style(
            ProgressStyle::with_template(
                "{spinner} [{elapsed_precise}] {wide_bar} {bytes}/{total_bytes} {msg}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        bar
    } else {
        ProgressBar::hidden()
    };

    let mut summary = Summary::default();
    let count = ReadCount::default();
    let registry = ctx.registry;
    {
        let stdin = &mut *ctx.stdin;
        let mut reader = source.open(stdin)?;
        let mut output = Output::open(args.out.as_deref(), args.dry_run, &mut *ctx.out)?;
        let streamed = input::for_each_bulk_entry(&source, &mut reader, &count, &mut |entry| {
            summary.entries += 1;
            if let Some(line) = decide(registry, &plan, &entry, &mut summary) {
                output.push(&line)?;
                summary.written += 1;
            }
            bar.set_position(count.get());
            if summary.entries % 256 == 0 {
                bar.set_message(format!(
                    "{} to write, {} invalid",
                    summary.written,
                    summary.invalid.len()
                ));
            }
            Ok(())
        })
        .and_then(|()| output.finish());
        // Clear the bar before any message, success or not.
        bar.finish_and_clear();
        streamed?;
    }

    // The bulk file owns standard output when it goes there.
    let report: &mut dyn Write = if to_stdout { ctx.err } else { ctx.out };
    if args.json {
        let doc = json!({
            "now": plan.ctx_now,
            "input": source.to_string(),
            "output": if args.dry_run { None } else { args.out.as_ref().map(|p| p.display().to_string()) },
            "dry_run": args.dry_run,
            "key_ring": plan.ring.as_ref().map(|r| json!({
                "primary": r.primary_id(),
                "key_ids": r.key_ids().collect::<Vec<_>>(),
            })),
            "seal": plan.seal,
            "summary": summary,
        });
        writeln!(
            report,
            "{}",
            serde_json::to_string_pretty(&doc).unwrap_or_default()
        )
        .map_err(write_err)?;
    } else {
        print_text(report, &source, args, &plan, &summary)?;
    }
    Ok(if !summary.invalid.is_empty() {
        EXIT_INVALID
    } else if !summary.unknown_key.is_empty() || !summary.not_opened.is_empty() {
        EXIT_UNDECIDED
    } else {
        EXIT_OK
    })
}

/// ` sealed k1` for a sealed header, nothing for one in clear (the step labels of the report).
fn seal_label(header: &Header<'_>) -> String {
    header
        .key_id
        .as_deref()
        .map_or_else(String::new, |id| format!(" sealed {id}"))
}

/// What to do with one entry: `Some(line)` to write it, `None` after recording why not.
fn decide<'e>(
    registry: &super::Registry,
    plan: &Plan<'_>,
    entry: &'e BulkEntry,
    summary: &mut Summary,
) -> Option<OutEntry<'e>> {
    let key = entry.key.as_str();
    let skip = |reason: String| Skipped {
        key: key.to_string(),
        reason,
    };
    let dump_meta = entry
        .metadata
        .as_ref()
        .map(|m| Header::from_metadata(&m.to_string()));
    let bytes = match &entry.value {
        EntryValue::Bytes(b) => b,
        EntryValue::Missing => {
            summary.missing += 1;
            return None;
        }
        EntryValue::Bad(problem) => {
            summary.invalid.push(skip(problem.clone()));
            return None;
        }
    };
    let header = match envelope::peek_header(bytes) {
        Ok(h) => h,
        // Ours by its metadata (or by its mangled frame byte) but unreadable: corrupt.
        // Neither: another application's value.
        Err(e) => {
            match (input::mangled_binary(bytes), &dump_meta) {
                (Some(why), _) => summary.invalid.push(skip(format!("{e}: {why}"))),
                (None, Some(Some(h))) if registry.get(&h.type_name).is_some() => {
                    summary.invalid.push(skip(format!(
                        "metadata says {} v{} but the value is not a readable envelope: {e}",
                        h.type_name, h.version
                    )));
                }
                _ => summary.not_ours += 1,
            }
            return None;
        }
    };
    if !plan.types.is_empty() && !plan.types.iter().any(|t| *t == header.type_name) {
        summary.filtered += 1;
        return None;
    }
    let Some(registered) = registry.get(&header.type_name) else {
        *summary
            .unregistered
            .entry(input::shown(&header.type_name))
            .or_default() += 1;
        return None;
    };
    if header.version > registered.current_version() {
        summary.future.push(skip(format!(
            "{} v{} is newer than this build's v{}",
            header.type_name,
            header.version,
            registered.current_version()
        )));
        return None;
    }
    if header.is_expired(plan.ctx_now) {
        summary.expired += 1;
        return None;
    }
    let sealed_with = header.key_id.as_deref();
    if let Some(id) = sealed_with {
        match &plan.ring {
            None => {
                summary.not_opened.push(skip(format!(
                    "{} v{} sealed with key id {id:?}: no key ring given",
                    header.type_name, header.version
                )));
                return None;
            }
            Some(ring) if !ring.key_ids().any(|k| k == id) => {
                summary.unknown_key.push(skip(format!(
                    "{} v{} sealed with key id {id:?}, which the key ring ({}) lacks",
                    header.type_name,
                    header.version,
                    ring.key_ids().collect::<Vec<_>>().join(",")
                )));
                return None;
            }
            Some(_) => {}
        }
    }
    // What is written is sealed when it was sealed, or when `--seal` asks; with the primary key.
    let seal_out = plan.ring.is_some() && (sealed_with.is_some() || plan.seal);
    let sealing = Sealing {
        ring: plan.ring.as_ref(),
        kv_key: key,
    };
    // Decode, validate and migrate every value (even current ones): an invalid value is
    // reported whether or not it would have been rewritten.
    let re = match registered.reencode(bytes, plan.codec, sealing, seal_out) {
        Ok(re) => re,
        Err(e) => {
            summary.invalid.push(skip(e.to_string()));
            return None;
        }
    };
    let mut reasons = Vec::new();
    if header.version < registered.current_version() {
        reasons.push(Reason::Version);
    }
    if re.header.codec != header.codec {
        reasons.push(Reason::Codec);
    }
    if matches!(&dump_meta, Some(m) if m.as_ref() != Some(&header.clone().into_owned())) {
        reasons.push(Reason::Metadata);
    }
    let primary = plan.ring.as_ref().map(KeyRing::primary_id);
    let resealing = sealed_with.is_some() && sealed_with != primary;
    if resealing {
        reasons.push(Reason::Reseal);
    }
    let sealing_clear = sealed_with.is_none() && seal_out;
    if sealing_clear {
        reasons.push(Reason::Seal);
    }
    if reasons.is_empty() {
        if !plan.include_current {
            summary.current += 1;
            return None;
        }
        reasons.push(Reason::Forced);
    }
    let (expiration, expiration_ttl) = match re.header.expires_at {
        // The envelope is the truth; KV's expiration is derived from it, raised to KV's floor.
        Some(ms) => (Some(ms.div_ceil(1000).max(plan.expiration_floor)), None),
        // No envelope expiry: keep what KV had.
        None => match (entry.expiration, entry.expiration_ttl) {
            (Some(s), _) if s.saturating_mul(1000) <= plan.ctx_now => {
                summary.expired += 1;
                return None;
            }
            (Some(s), _) => (Some(s.max(plan.expiration_floor)), None),
            (None, ttl) => (None, ttl.map(|t| t.max(MIN_EXPIRATION_SECS))),
        },
    };
    if let Err(e) = check_key(key) {
        summary
            .invalid
            .push(skip(format!("key cannot be written: {e}")));
        return None;
    }
    if re.bytes.len() > MAX_VALUE_BYTES {
        summary.invalid.push(skip(format!(
            "migrated value is {} bytes, over KV's {MAX_VALUE_BYTES}",
            re.bytes.len()
        )));
        return None;
    }
    let metadata_text = merge_metadata(&re.header, entry.metadata.as_ref());
    if metadata_text.len() > MAX_METADATA_BYTES {
        summary.invalid.push(skip(format!(
            "metadata is {} bytes, over KV's {MAX_METADATA_BYTES}",
            metadata_text.len()
        )));
        return None;
    }
    let Ok(metadata) = RawValue::from_string(metadata_text) else {
        summary
            .invalid
            .push(skip("metadata does not serialize as JSON".to_string()));
        return None;
    };
    if let Some(fresh) = &plan.recheck {
        let changed = match fresh.get(key) {
            None => Some("deleted since the dump"),
            Some(Some(now)) if *now != header.clone().into_owned() => {
                Some("rewritten since the dump (its metadata changed)")
            }
            Some(None) if matches!(dump_meta, Some(Some(_))) => {
                Some("rewritten since the dump (its kv-envelope metadata is gone)")
            }
            _ => None,
        };
        if let Some(why) = changed {
            summary.changed_since_dump.push(skip(why.to_string()));
            return None;
        }
    }
    *summary
        .migrated
        .entry(registered.name().to_string())
        .or_default()
        .entry(format!(
            "v{} {}{} -> v{} {}{}",
            header.version,
            header.codec,
            seal_label(&header),
            re.header.version,
            re.header.codec,
            seal_label(&re.header)
        ))
        .or_default() += 1;
    for r in &reasons {
        let name = serde_json::to_value(r)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
        *summary.reasons.entry(name).or_default() += 1;
    }
    // JSON envelopes are UTF-8 text; binary frames go as base64.
    let (value, base64) = match (re.header.codec, String::from_utf8(re.bytes)) {
        (Codec::Json, Ok(text)) => (text, false),
        (_, Ok(text)) => (input::encode_base64(text.as_bytes()), true),
        (_, Err(e)) => (input::encode_base64(e.as_bytes()), true),
    };
    summary.binary += u64::from(base64);
    summary.resealed += u64::from(resealing);
    summary.newly_sealed += u64::from(sealing_clear);
    summary.written_sealed += u64::from(re.header.key_id.is_some());
    Some(OutEntry {
        key,
        value,
        base64,
        expiration,
        expiration_ttl,
        metadata,
    })
}

/// The new header's metadata, exactly as `Kv` writes it, followed by any other fields the old
/// metadata had: products keep their own data there (the cache's freshness times), and a
/// migration must not drop it.
fn merge_metadata(header: &Header<'_>, old: Option<&Value>) -> String {
    const OURS: [&str; 5] = ["t", "v", "c", "e", "k"];
    let mut text = header.to_metadata();
    let Some(Value::Object(old)) = old else {
        return text;
    };
    let extra: Vec<(&String, &Value)> = old
        .iter()
        .filter(|(k, _)| !OURS.contains(&k.as_str()))
        .collect();
    if extra.is_empty() || !text.ends_with('}') {
        return text;
    }
    text.pop();
    for (k, v) in extra {
        // Keys and values came out of a parsed JSON document: they serialize back.
        if let (Ok(k), Ok(v)) = (serde_json::to_string(k), serde_json::to_string(v)) {
            text.push(',');
            text.push_str(&k);
            text.push(':');
            text.push_str(&v);
        }
    }
    text.push('}');
    text
}
