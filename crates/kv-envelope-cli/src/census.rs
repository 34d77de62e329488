//! `census`: versions, codecs and expiries of a namespace from `wrangler kv key list` output.
//! Every `TypedStore` write carries the envelope header as KV metadata, so listing keys is
//! enough: no value is read. Sealed values are counted per key id (metadata `k`; `clear` for a
//! value in clear), so a rotation can tell when no value needs a retired key any more.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::json;

use super::{
    input::{self, Fail, Source},
    time::rfc3339_ms,
    write_err, CensusArgs, Ctx, EXIT_INVALID, EXIT_OK,
};
use kv_envelope::envelope::Header;

/// Expiry buckets, by time left from the run's clock (upper bounds in ms, inclusive).
const BUCKETS: [(&str, u64); 5] = [
    ("1h", 3_600_000),
    ("1d", 86_400_000),
    ("7d", 7 * 86_400_000),
    ("30d", 30 * 86_400_000),
    ("365d", 365 * 86_400_000),
];

/// `wrangler kv key list --local` returns one page of at most this many keys (wrangler 4.86);
/// the remote listing pages through everything.
const LOCAL_LIST_CAP: usize = 1000;

/// Tallies of one (type, prefix).
#[derive(Debug, Default, Serialize)]
struct Group {
    keys: u64,
    /// Keys per stored schema version.
    versions: BTreeMap<u32, u64>,
    /// Keys per codec.
    codecs: BTreeMap<&'static str, u64>,
    /// Keys per key id they are sealed with; `clear` for values in clear.
    key_ids: BTreeMap<String, u64>,
    /// Keys per expiry bucket: `expired`, `<=1h` … `<=365d`, `later`, `never`.
    expires: BTreeMap<String, u64>,
    /// Live keys below the current version (what `migrate` would rewrite).
    needs_migration: u64,
    /// Keys above the current version (written by newer code).
    future: u64,
    /// Envelope has an expiry but KV has none: KV never deletes these keys.
    no_kv_expiration: u64,
    /// KV expires the key before the envelope does: the value disappears early.
    kv_expires_first: u64,
}

/// Classification of one listed key.
enum Kind {
    /// Our metadata, registered type: (type name, current version).
    Typed(String, u32),
    /// Our metadata, a type this CLI does not know.
    Unregistered(String),
    /// No kv-envelope metadata.
    Unknown,
}

pub(crate) fn census(ctx: &mut Ctx<'_>, args: &CensusArgs) -> Result<u8, Fail> {
    let source = Source::new(Some(&args.input));
    let bytes = source.read_all(ctx.stdin)?;
    let keys = input::parse_key_list(&source, &bytes)?;
    let now = ctx.now_ms;

    // (kind rank, type, prefix) → tallies; the rank orders typed, then unregistered, then unknown.
    let mut groups: BTreeMap<(u8, String, String), (Option<u32>, Group)> = BTreeMap::new();
    for k in &keys {
        let header = k
            .metadata
            .as_ref()
            .and_then(|m| Header::from_metadata(&m.to_string()));
        let prefix = match k.name.split_once(args.separator.as_str()) {
            Some((p, _)) if !args.separator.is_empty() => p.to_string(),
            _ => String::new(),
        };
        let kind = match &header {
            Some(h) => match ctx.registry.get(&h.type_name) {
                Some(t) => Kind::Typed(h.type_name.to_string(), t.current_version()),
                None => Kind::Unregistered(input::shown(&h.type_name)),
            },
            None => Kind::Unknown,
        };
        let (rank, type_name, current) = match kind {
            Kind::Typed(t, v) => (0, t, Some(v)),
            Kind::Unregistered(t) => (1, t, None),
            Kind::Unknown => (2, String::new(), None),
        };
        let (_, g) = groups
            .entry((rank, type_name, prefix))
            .or_insert_with(|| (current, Group::default()));
        g.keys += 1;
        // The envelope's exact expiry when known, else KV's (whole seconds).
        let envelope_exp = header.as_ref().and_then(|h| h.expires_at);
        let kv_exp_ms = k.expiration.map(|s| s.saturating_mul(1000));
        let expires_at = envelope_exp.or(kv_exp_ms);
        *g.expires.entry(bucket(expires_at, now)).or_default() += 1;
        let Some(h) = header else { continue };
        *g.versions.entry(h.version).or_default() += 1;
        *g.codecs.entry(h.codec.as_str()).or_default() += 1;
        *g.key_ids.entry(key_id_label(&h)).or_default() += 1;
        let live = !h.is_expired(now);
        if let Some(cur) = current {
            if h.version < cur && live {
                g.needs_migration += 1;
            }
            if h.version > cur {
                g.future += 1;
            }
        }
        match (envelope_exp, kv_exp_ms) {
            (Some(_), None) => g.no_kv_expiration += 1,
            (Some(e), Some(kv)) if kv < e => g.kv_expires_first += 1,
            _ => {}
        }
    }

    let total_old: u64 = groups.values().map(|(_, g)| g.needs_migration).sum();
    if args.json {
        print_json(ctx, &groups, keys.len())?;
    } else {
        print_text(ctx, &groups, keys.len())?;
    }
    Ok(if args.fail_on_old && total_old > 0 {
        EXIT_INVALID
    } else {
        EXIT_OK
    })
}

/// The key id a value is sealed with, `clear` for none (shown safely: metadata is anyone's).
fn key_id_label(h: &Header<'_>) -> String {
    h.key_id
        .as_deref()
        .map_or_else(|| CLEAR.to_string(), input::shown)
}

/// The `key_ids` label of values in clear (so do not name a key `clear`).
const CLEAR: &str = "clear";

/// Key id → keys, over every group of our metadata.
fn key_id_totals(groups: &Groups) -> BTreeMap<String, u64> {
    let mut totals: BTreeMap<String, u64> = BTreeMap::new();
    for (_, g) in groups.values() {
        for (id, n) in &g.key_ids {
            *totals.entry(id.clone()).or_default() += n;
        }
    }
    totals
}

fn bucket(expires_at: Option<u64>, now: u64) -> String {
    let Some(e) = expires_at else {
        return "never".into();
    };
    if e <= now {
        return "expired".into();
    }
    let left = e - now;
    BUCKETS
        .iter()
        .find(|(_, max)| left <= *max)
        .map_or_else(|| "later".into(), |(name, _)| format!("<={name}"))
}

/// `1 key`, `2 keys`.
fn keys(n: u64) -> String {
    if n == 1 {
        "1 key".to_string()
    } else {
        format!("{n} keys")
    }
}

/// Buckets in time order, for text output.
fn bucket_order() -> Vec<String> {
    let mut order = vec!["expired".to_string()];
    order.extend(BUCKETS.iter().map(|(n, _)| format!("<={n}")));
    order.push("later".into());
    order.push("never".into());
    order
}

type Groups = BTreeMap<(u8, String, String), (Option<u32>, Group)>;

fn print_text(ctx: &mut Ctx<'_>, groups: &Groups, total: usize) -> Result<(), Fail> {
    let out = &mut *ctx.out;
    writeln!(
        out,
        "census of {total} keys at {} (from KV metadata; no values read)",
        rfc3339_ms(ctx.now_ms)
    )
    .map_err(write_err)?;
    let order = bucket_order();
    let (mut typed, mut old, mut future, mut unregistered, mut unknown) = (0, 0, 0, 0, 0);
    for ((rank, type_name, prefix), (current, g)) in groups {
        let prefix_label = if prefix.is_empty() {
            "(no prefix)".to_string()
        } else {
            format!("prefix {prefix:?}")
        };
        writeln!(out).map_err(write_err)?;
        match (rank, current) {
            (0, Some(cur)) => {
                typed += g.keys;
                old += g.needs_migration;
                future += g.future;
                writeln!(
                    out,
                    "{type_name} (current v{cur}), {prefix_label}: {}",
                    keys(g.keys)
                )
                .map_err(write_err)?;
            }
            (1, _) => {
                unregistered += g.keys;
                writeln!(
                    out,
                    "{type_name} (not registered here), {prefix_label}: {}",
                    keys(g.keys)
                )
                .map_err(write_err)?;
            }
            _ => {
                unknown += g.keys;
                writeln!(
                    out,
                    "no kv-envelope metadata, {prefix_label}: {}",
                    keys(g.keys)
                )
                .map_err(write_err)?;
            }
        }
        if !g.versions.is_empty() {
            let versions: Vec<String> = g
                .versions
                .iter()
                .map(|(v, n)| {
                    let note = match current {
                        Some(cur) if v < cur => " (old)",
                        Some(cur) if v > cur => " (future)",
                        _ => "",
                    };
                    format!("v{v}: {n}{note}")
                })
                .collect();
            writeln!(out, "  versions  {}", versions.join("  ")).map_err(write_err)?;
            let codecs: Vec<String> = g.codecs.iter().map(|(c, n)| format!("{c}: {n}")).collect();
            writeln!(out, "  codecs    {}", codecs.join("  ")).map_err(write_err)?;
            let ids: Vec<String> = g
                .key_ids
                .iter()
                .map(|(id, n)| format!("{id}: {n}"))
                .collect();
            writeln!(out, "  key ids   {}", ids.join("  ")).map_err(write_err)?;
        }
        let expires: Vec<String> = order
            .iter()
            .filter_map(|b| g.expires.get(b).map(|n| format!("{b}: {n}")))
            .collect();
        writeln!(out, "  expires   {}", expires.join("  ")).map_err(write_err)?;
        if g.no_kv_expiration > 0 {
            writeln!(
                out,
                "  warning   {} with an envelope expiry but no KV expiration: KV never deletes them",
                keys(g.no_kv_expiration)
            )
            .map_err(write_err)?;
        }
        if g.kv_expires_first > 0 {
            writeln!(
                out,
                "  warning   {} with a KV expiration before the envelope expiry: they vanish early",
                keys(g.kv_expires_first)
            )
            .map_err(write_err)?;
        }
    }
    writeln!(out).map_err(write_err)?;
    if total == LOCAL_LIST_CAP {
        writeln!(
            out,
            "warning: exactly {LOCAL_LIST_CAP} keys: `wrangler kv key list --local` stops there (no paging); list per --prefix to see the rest"
        )
        .map_err(write_err)?;
    }
    let totals = key_id_totals(groups);
    if totals.keys().any(|id| id != CLEAR) {
        let ids: Vec<String> = totals.iter().map(|(id, n)| format!("{id}: {n}")).collect();
        writeln!(
            out,
            "key ids: {} (values per sealing key; a key can be retired once it counts none)",
            ids.join("  ")
        )
        .map_err(write_err)?;
    }
    writeln!(
        out,
        "summary: {typed} keys of registered types, {old} need migration, {future} future, {unregistered} of unregistered types, {unknown} without kv-envelope metadata"
    )
    .map_err(write_err)?;
    Ok(())
}

fn print_json(ctx: &mut Ctx<'_>, groups: &Groups, total: usize) -> Result<(), Fail> {
    let mut entries = Vec::new();
    let (mut old, mut future, mut unknown) = (0, 0, 0);
    for ((rank, type_name, prefix), (current, g)) in groups {
        old += g.needs_migration;
        future += g.future;
        if *rank == 2 {
            unknown += g.keys;
        }
        entries.push(json!({
            "type": if *rank == 2 { None } else { Some(type_name) },
            "registered": *rank == 0,
            "current_version": current,
            "prefix": prefix,
            "tally": g,
        }));
    }
    let doc = json!({
        "now": ctx.now_ms,
        "keys": total,
        "needs_migration": old,
        "future": future,
        "unknown": unknown,
        "key_ids": key_id_totals(groups),
        "possibly_truncated": total == LOCAL_LIST_CAP,
        "groups": entries,
    });
    writeln!(
        ctx.out,
        "{}",
        serde_json::to_string_pretty(&doc).unwrap_or_default()
    )
    .map_err(write_err)
}
