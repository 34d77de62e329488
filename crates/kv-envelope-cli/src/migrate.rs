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
//! (About 650 lines: one command from plan to report. The output sink and the text report are
//! the candidates to move out when it grows.)

use std::{
    collections::{BTreeMap, HashMap},
    fs::File,
    io::{BufWriter, Write},
    path::{Path, PathBuf},
};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Serialize;
use serde_json::{json, value::RawValue, Value};

use super::{
    input::{self, BulkEntry, EntryValue, Fail, ReadCount, Source},
    registry::Sealing,
    time::rfc3339_ms,
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

/// One line of the output bulk file (the `wrangler kv bulk put` format).
#[derive(Serialize)]
struct OutEntry<'a> {
    key: &'a str,
    value: String,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    base64: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    expiration: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    expiration_ttl: Option<u64>,
    /// Exactly the metadata text `Kv` writes, key order included.
    metadata: Box<RawValue>,
}

/// The output bulk file, written to a temporary file and renamed into place on success, so a
/// failed run never leaves a half-written file that someone could `bulk put`.
struct Output<'w> {
    sink: Sink<'w>,
    first: bool,
}

enum Sink<'w> {
    None,
    Stdout(&'w mut dyn Write),
    File {
        tmp: PathBuf,
        dest: PathBuf,
        file: BufWriter<File>,
    },
}

impl<'w> Output<'w> {
    fn open(dest: Option<&Path>, dry_run: bool, stdout: &'w mut dyn Write) -> Result<Self, Fail> {
        let sink = match dest {
            _ if dry_run => Sink::None,
            None => Sink::None,
            Some(p) if p.as_os_str() == "-" => Sink::Stdout(stdout),
            Some(p) => {
                let name = p
                    .file_name()
                    .map_or_else(|| "bulk.json".into(), |n| n.to_string_lossy().into_owned());
                let tmp = p.with_file_name(format!(".{name}.{}.tmp", std::process::id()));
                let file = File::create(&tmp)
                    .map_err(|e| Fail::io(format!("cannot create {}", tmp.display()), &e))?;
                Sink::File {
                    tmp,
                    dest: p.to_path_buf(),
                    file: BufWriter::new(file),
                }
            }
        };
        let mut out = Output { sink, first: true };
        out.raw(b"[")?;
        Ok(out)
    }

    fn raw(&mut self, bytes: &[u8]) -> Result<(), Fail> {
        let result = match &mut self.sink {
            Sink::None => Ok(()),
            Sink::Stdout(w) => w.write_all(bytes),
            Sink::File { file, .. } => file.write_all(bytes),
        };
        result.map_err(|e| Fail::io("cannot write the bulk file", &e))
    }

    fn push(&mut self, entry: &OutEntry<'_>) -> Result<(), Fail> {
        let line = serde_json::to_string(entry).map_err(|_| {
            Fail(format!(
                "cannot serialize the entry for key {:?}",
                entry.key
            ))
        })?;
        let sep: &[u8] = if self.first { b"\n" } else { b",\n" };
        self.first = false;
        self.raw(sep)?;
        self.raw(line.as_bytes())
    }

    /// Close the array and move the file into place.
    fn finish(mut self) -> Result<(), Fail> {
        self.raw(if self.first { b"]\n" } else { b"\n]\n" })?;
        match std::mem::replace(&mut self.sink, Sink::None) {
            Sink::None => Ok(()),
            Sink::Stdout(w) => w
                .flush()
                .map_err(|e| Fail::io("cannot write the bulk file", &e)),
            Sink::File { tmp, dest, file } => {
                let file = file
                    .into_inner()
                    .map_err(|e| Fail::io("cannot write the bulk file", e.error()))?;
                file.sync_all()
                    .map_err(|e| Fail::io("cannot write the bulk file", &e))?;
                drop(file);
                std::fs::rename(&tmp, &dest).map_err(|e| {
                    let _ = std::fs::remove_file(&tmp);
                    Fail::io(
                        format!("cannot move the bulk file to {}", dest.display()),
                        &e,
                    )
                })
            }
        }
    }
}

impl Drop for Output<'_> {
    fn drop(&mut self) {
        // Reached with a file only when the run failed before `finish`.
        if let Sink::File { tmp, .. } = &self.sink {
            let _ = std::fs::remove_file(tmp);
        }
    }
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

fn print_text(
    out: &mut dyn Write,
    source: &Source,
    args: &MigrateArgs,
    plan: &Plan<'_>,
    s: &Summary,
) -> Result<(), Fail> {
    let w = write_err;
    writeln!(
        out,
        "migrate: {} entries in {source} at {}",
        s.entries,
        rfc3339_ms(plan.ctx_now)
    )
    .map_err(w)?;
    let dest = match (&args.out, args.dry_run) {
        (_, true) | (None, _) => "(dry run: nothing written)".to_string(),
        (Some(p), false) if p.as_os_str() == "-" => "to standard output".to_string(),
        (Some(p), false) => format!("-> {}", p.display()),
    };
    writeln!(out, "  to write     {} {dest}", s.written).map_err(w)?;
    for (t, steps) in &s.migrated {
        for (step, n) in steps {
            writeln!(out, "               {t} {step}: {n}").map_err(w)?;
        }
    }
    writeln!(
        out,
        "  current      {} (already current, left out of the output)",
        s.current
    )
    .map_err(w)?;
    if let Some(ring) = &plan.ring {
        writeln!(
            out,
            "  resealed     {} (sealed with an older key, re-sealed with {})",
            s.resealed,
            ring.primary_id()
        )
        .map_err(w)?;
        if plan.seal {
            writeln!(
                out,
                "  sealed       {} (in clear, sealed with {}: --seal)",
                s.newly_sealed,
                ring.primary_id()
            )
            .map_err(w)?;
        }
    }
    writeln!(out, "  expired      {} (left out)", s.expired).map_err(w)?;
    if s.missing > 0 {
        writeln!(out, "  missing      {} (no value in the dump)", s.missing).map_err(w)?;
    }
    if s.filtered > 0 {
        writeln!(
            out,
            "  other types  {} (not selected by --type)",
            s.filtered
        )
        .map_err(w)?;
    }
    writeln!(
        out,
        "  not ours     {} (no kv-envelope envelope or metadata; left alone)",
        s.not_ours
    )
    .map_err(w)?;
    if !s.unregistered.is_empty() {
        let list: Vec<String> = s
            .unregistered
            .iter()
            .map(|(t, n)| format!("{t}: {n}"))
            .collect();
        writeln!(
            out,
            "  unregistered {} ({}; left alone)",
            s.unregistered.values().sum::<u64>(),
            list.join(", ")
        )
        .map_err(w)?;
    }
    list(
        out,
        "future",
        "newer than this build; never rewritten",
        &s.future,
    )?;
    list(
        out,
        "unknown key",
        "sealed with a key id the ring lacks; never rewritten, KV keeps them",
        &s.unknown_key,
    )?;
    list(
        out,
        "not opened",
        "sealed, no key ring given (--keys-env, --keys-file); left out",
        &s.not_opened,
    )?;
    list(
        out,
        "changed",
        "deleted or rewritten since the dump (--recheck); left out",
        &s.changed_since_dump,
    )?;
    list(
        out,
        "INVALID",
        "NOT migrated; KV keeps them as they are",
        &s.invalid,
    )?;
    if !args.dry_run && s.written > 0 {
        if let Some(p) = args.out.as_ref().filter(|p| p.as_os_str() != "-") {
            writeln!(
                out,
                "next: npx wrangler kv bulk put {} --binding <BINDING> [--local|--remote]",
                p.display()
            )
            .map_err(w)?;
            if s.binary > 0 {
                // Measured with wrangler 4.86: local mode turns base64 values into UTF-8 text.
                writeln!(
                    out,
                    "note: {} values are binary (base64): `wrangler kv bulk put --local` corrupts binary values; \
                     use --remote, or --codec json for a local namespace",
                    s.binary
                )
                .map_err(w)?;
                if s.written_sealed > 0 {
                    writeln!(
                        out,
                        "note: {} of them are sealed: a sealed value is binary in either codec, put it with --remote",
                        s.written_sealed
                    )
                    .map_err(w)?;
                }
            }
        }
    }
    Ok(())
}

fn list(out: &mut dyn Write, label: &str, note: &str, items: &[Skipped]) -> Result<(), Fail> {
    if items.is_empty() {
        return Ok(());
    }
    writeln!(out, "  {label:<12} {} ({note})", items.len()).map_err(write_err)?;
    for item in items.iter().take(LIST_LIMIT) {
        writeln!(out, "      {:?}: {}", item.key, item.reason).map_err(write_err)?;
    }
    if items.len() > LIST_LIMIT {
        writeln!(
            out,
            "      ... and {} more (--json lists all)",
            items.len() - LIST_LIMIT
        )
        .map_err(write_err)?;
    }
    Ok(())
}
