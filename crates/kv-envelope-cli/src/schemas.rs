//! `schemas export [DIR] [--check]`: the JSON Schema of every registered (type, version), each
//! registered type's whole-value schema, the envelope and the KV metadata schemas, in the
//! committed format (pretty JSON with a trailing newline), the same bytes as `schemas/` in the
//! kv-envelope repository.

use std::{collections::BTreeMap, path::Path};

use super::{input::Fail, Ctx, EXIT_INVALID, EXIT_OK};

/// Suffix of every file this command owns in the directory.
const SCHEMA_SUFFIX: &str = ".schema.json";

/// Every file `schemas export` writes: name → content.
fn expected_files(ctx: &Ctx<'_>) -> BTreeMap<String, String> {
    let mut files = BTreeMap::new();
    for t in ctx.registry.types() {
        for (name, s) in t
            .schema_files()
            .into_iter()
            .chain([t.envelope_schema_file()])
        {
            files.insert(name, kv_envelope::__internal::to_schema_file(&s));
        }
    }
    // The two files that are not per type.
    files.insert(
        kv_envelope::__internal::ENVELOPE_SCHEMA_FILE.to_string(),
        kv_envelope::__internal::to_schema_file(&kv_envelope::export::envelope_schema()),
    );
    files.insert(
        kv_envelope::__internal::METADATA_SCHEMA_FILE.to_string(),
        kv_envelope::__internal::to_schema_file(&kv_envelope::export::metadata_schema()),
    );
    files
}

/// `*.schema.json` files already in `dir` (none when it does not exist).
fn existing_files(dir: &Path) -> Result<Vec<String>, Fail> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Fail::io(format!("cannot list {}", dir.display()), &e)),
    };
    let mut names = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| Fail::io(format!("cannot list {}", dir.display()), &e))?;
        if let Some(name) = entry.file_name().to_str() {
            if name.ends_with(SCHEMA_SUFFIX) {
                names.push(name.to_string());
            }
        }
    }
    names.sort();
    Ok(names)
}

pub(crate) fn export(ctx: &mut Ctx<'_>, dir: &Path, check: bool) -> Result<u8, Fail> {
    let expected = expected_files(ctx);
    let existing = existing_files(dir)?;
    // Files a removed type or version left behind: `--check` calls them drift, export only warns
    // (deleting a schema someone may still read is a decision for a human).
    let stale: Vec<&String> = existing
        .iter()
        .filter(|n| !expected.contains_key(n.as_str()))
        .collect();
    let mut missing = Vec::new();
    let mut differing = Vec::new();
    for (name, content) in &expected {
        match std::fs::read(dir.join(name)) {
            Ok(on_disk) if on_disk == content.as_bytes() => {}
            Ok(_) => differing.push(name.as_str()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => missing.push(name.as_str()),
            Err(e) => {
                return Err(Fail::io(
                    format!("cannot read {}", dir.join(name).display()),
                    &e,
                ))
            }
        }
    }
    let out = &mut *ctx.out;
    let w = |e: std::io::Error| Fail::io("cannot write the report", &e);
    if check {
        for name in &missing {
            writeln!(out, "missing:  {}", dir.join(name).display()).map_err(w)?;
        }
        for name in &differing {
            writeln!(out, "differs:  {}", dir.join(name).display()).map_err(w)?;
        }
        for name in &stale {
            writeln!(
                out,
                "stale:    {} (no registered type produces it)",
                dir.join(name).display()
            )
            .map_err(w)?;
        }
        if missing.is_empty() && differing.is_empty() && stale.is_empty() {
            writeln!(
                out,
                "{} schema files in {} are up to date",
                expected.len(),
                dir.display()
            )
            .map_err(w)?;
            return Ok(EXIT_OK);
        }
        writeln!(
            out,
            "schemas in {} are out of date: run `kv-envelope schemas export {}`",
            dir.display(),
            dir.display()
        )
        .map_err(w)?;
        return Ok(EXIT_INVALID);
    }
    std::fs::create_dir_all(dir)
        .map_err(|e| Fail::io(format!("cannot create {}", dir.display()), &e))?;
    // Only changed files are rewritten, so an export that changes nothing leaves mtimes alone.
    for name in missing.iter().chain(&differing) {
        let path = dir.join(name);
        std::fs::write(&path, &expected[*name])
            .map_err(|e| Fail::io(format!("cannot write {}", path.display()), &e))?;
        writeln!(out, "wrote     {}", path.display()).map_err(w)?;
    }
    for name in &stale {
        writeln!(
            ctx.err,
            "warning: {} is not produced by any registered type (left in place)",
            dir.join(name).display()
        )
        .map_err(w)?;
    }
    writeln!(
        ctx.out,
        "{} schema files in {} ({} written, {} unchanged)",
        expected.len(),
        dir.display(),
        missing.len() + differing.len(),
        expected.len() - missing.len() - differing.len()
    )
    .map_err(w)?;
    Ok(EXIT_OK)
}
