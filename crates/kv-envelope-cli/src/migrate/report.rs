//! The text summary of a `migrate` run: what was read, written, dropped and left, with the
//! skipped entries listed per category.

use std::io::Write;

use super::{Plan, Skipped, Summary, LIST_LIMIT};
use crate::{
    input::{Fail, Source},
    time::rfc3339_ms,
    write_err, MigrateArgs,
};

pub(super) fn print_text(
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
