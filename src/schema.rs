//! JSON Schemas of versioned types: generation (schemars), validation (jsonschema, compiled
//! once per process/isolate) and export to files.

use std::{path::Path, sync::OnceLock};

use serde_json::Value;

use crate::{
    error::{Error, Result, ValidationIssue},
    migrate::Versioned,
};

/// At most this many violations are kept in an [`Error::Validation`].
const MAX_ISSUES: usize = 16;

/// A lazily compiled validator, one per (type, version), living for the process/isolate.
#[doc(hidden)]
pub type ValidatorCell = OnceLock<Result<jsonschema::Validator, Error>>;

/// The JSON Schema schemars generates for `T` (draft 2020-12).
pub fn schema_of<T: schemars::JsonSchema>() -> Value {
    schemars::schema_for!(T).to_value()
}

pub(crate) fn compile(
    type_name: &'static str,
    version: u32,
    schema: &Value,
) -> Result<jsonschema::Validator> {
    jsonschema::options()
        // `format` is an assertion: an `email` field must look like an email.
        .should_validate_formats(true)
        // A linear-time email check instead of a full RFC 5322 parse: it was half of the
        // validation cost of a session read (BENCHMARKS.md).
        .with_format("email", is_plausible_email)
        .build(schema)
        .map_err(|e| Error::Schema {
            type_name,
            version,
            reason: e.masked().to_string(),
        })
}

/// The `email` format: `local@domain`, the local part 1–64 bytes of RFC 5322 atom characters
/// and dots (no leading, trailing or double dot), the domain 1–253 bytes of dot-separated
/// labels of letters, digits and inner hyphens, with at least two labels. Quoted local parts
/// and IP-literal domains are refused: no browser login form produces them.
pub fn is_plausible_email(s: &str) -> bool {
    let Some((local, domain)) = s.rsplit_once('@') else {
        return false;
    };
    let atom = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+/=?^_`{|}~-".contains(&b);
    let local_ok = (1..=64).contains(&local.len())
        && local
            .split('.')
            .all(|part| !part.is_empty() && part.bytes().all(atom));
    let label_ok = |l: &str| {
        (1..=63).contains(&l.len())
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    let domain_ok = (1..=253).contains(&domain.len())
        && domain.split('.').count() >= 2
        && domain.split('.').all(label_ok);
    local_ok && domain_ok
}

/// Validate `instance`; on failure return every violation (up to 16) with JSON paths and
/// masked messages.
pub(crate) fn validate(
    validator: &jsonschema::Validator,
    type_name: &'static str,
    version: u32,
    instance: &Value,
) -> Result<()> {
    if validator.is_valid(instance) {
        return Ok(());
    }
    let issues: Vec<ValidationIssue> = validator
        .iter_errors(instance)
        .take(MAX_ISSUES)
        .map(|e| ValidationIssue {
            instance_path: e.instance_path().to_string(),
            schema_path: e.schema_path().to_string(),
            message: e.masked().to_string(),
        })
        .collect();
    Err(Error::Validation {
        type_name,
        version,
        issues,
    })
}

/// The JSON Schema of the JSON envelope itself (the `data` field is any JSON value; its schema
/// is the one of the (type, version) named by `type` and `v`).
pub fn envelope_schema() -> Value {
    serde_json::json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "kv-envelope/envelope.schema.json",
        "title": "KvEnvelope",
        "description": "A value stored in Workers KV by kv-envelope with the JSON codec. The payload in `data` follows the schema `<type>.v<v>.schema.json`.",
        "type": "object",
        "required": ["kv", "type", "v", "data"],
        "properties": {
            "kv": { "description": "Envelope format version.", "const": 1 },
            "type": { "description": "Stable type name.", "type": "string", "minLength": 1 },
            "v": { "description": "Schema version of `data` (starts at 1).", "type": "integer", "minimum": 1, "maximum": 4294967295u64 },
            "exp": {
                "description": "Absolute expiry in milliseconds since the Unix epoch; null or absent: never expires.",
                "type": ["integer", "null"],
                "minimum": 0
            },
            "data": { "description": "The payload." }
        }
    })
}

/// File name of the schema of `type_name` at `version`: `<type>.v<version>.schema.json`.
pub fn schema_file_name(type_name: &str, version: u32) -> String {
    format!("{type_name}.v{version}.schema.json")
}

/// Every (file name, schema) of `T`'s versions `1..=T::VERSION`.
pub fn schemas_of<T: Versioned>() -> Vec<(String, Value)> {
    (1..=T::VERSION)
        .filter_map(|v| T::schema(v).map(|s| (schema_file_name(T::NAME, v), s)))
        .collect()
}

/// Pretty JSON with a trailing newline, the committed form of a schema file.
pub fn to_schema_file(schema: &Value) -> String {
    let mut s = serde_json::to_string_pretty(schema).unwrap_or_default();
    s.push('\n');
    s
}

/// Write the schemas of `T` (every version) into `dir`, creating it. Returns the paths written.
pub fn export_schemas<T: Versioned>(dir: &Path) -> std::io::Result<Vec<std::path::PathBuf>> {
    write_files(dir, schemas_of::<T>())
}

/// Write `envelope.schema.json` into `dir`.
pub fn export_envelope_schema(dir: &Path) -> std::io::Result<std::path::PathBuf> {
    let mut v = write_files(
        dir,
        vec![("envelope.schema.json".to_string(), envelope_schema())],
    )?;
    Ok(v.remove(0))
}

fn write_files(
    dir: &Path,
    files: Vec<(String, Value)>,
) -> std::io::Result<Vec<std::path::PathBuf>> {
    std::fs::create_dir_all(dir)?;
    let mut written = Vec::with_capacity(files.len());
    for (name, schema) in files {
        let path = dir.join(name);
        std::fs::write(&path, to_schema_file(&schema))?;
        written.push(path);
    }
    Ok(written)
}
