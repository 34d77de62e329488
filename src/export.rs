//! Schema files of [`Versioned`] types, for other services: each version's payload schema, the
//! whole-value schema of a stored value, and writing them to a folder. Above both `schema`
//! (what a schema is, validation) and `versioned` (what a versioned type is), so neither depends
//! on the other.

use std::path::Path;

use serde_json::Value;

pub use crate::schema::stored::{envelope_schema, metadata_schema};
use crate::{
    cache,
    schema::stored::{envelope_schema_file_name, whole_value_schema},
    session, tokens, tower_sessions,
    versioned::Versioned,
};

/// File name of [`envelope_schema`] (the JSON envelope of any type).
#[doc(hidden)]
pub const ENVELOPE_SCHEMA_FILE: &str = "envelope.schema.json";
/// File name of [`metadata_schema`] (the KV metadata copy of the header).
#[doc(hidden)]
pub const METADATA_SCHEMA_FILE: &str = "metadata.schema.json";

/// File name of the schema of `type_name` at `version`: `<type>.v<version>.schema.json`.
#[doc(hidden)]
pub fn schema_file_name(type_name: &str, version: u32) -> String {
    format!("{type_name}.v{version}.schema.json")
}

/// Pretty JSON with a trailing newline, the committed form of a schema file.
#[doc(hidden)]
pub fn to_schema_file(schema: &Value) -> String {
    let mut s = serde_json::to_string_pretty(schema).unwrap_or_default();
    s.push('\n');
    s
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

/// The JSON Schema of a stored value of `T` in the JSON codec: `kv`, `type` (`T::NAME`), `v`
/// (one of `1..=T::VERSION`), `exp`, and `data` under the schema of the version `v` names. A
/// service validates a raw KV value with this one schema.
///
/// What no JSON Schema can see, the Rust reader still refuses: a repeated key, `3.0` where an
/// integer is due (JSON Schema counts it as the integer 3), a lone surrogate escape.
pub fn envelope_schema_of<T: Versioned>() -> Value {
    whole_value_schema(
        T::NAME,
        (1..=T::VERSION).filter_map(|v| T::schema(v).map(|s| (v, s))),
    )
}

/// Every (file name, schema) of `T`'s versions `1..=T::VERSION`.
pub(crate) fn schemas_of<T: Versioned>() -> Vec<(String, Value)> {
    (1..=T::VERSION)
        .filter_map(|v| T::schema(v).map(|s| (schema_file_name(T::NAME, v), s)))
        .collect()
}

/// Every file [`export_schemas`] writes for `T`: each version's schema (`<type>.v<n>.schema.json`) and
/// the whole-value schema ([`envelope_schema_of`], `<type>.envelope.schema.json`).
pub fn schema_files_of<T: Versioned>() -> Vec<(String, Value)> {
    let mut files = schemas_of::<T>();
    files.push((
        envelope_schema_file_name(T::NAME),
        envelope_schema_of::<T>(),
    ));
    files
}

/// Write the schemas of `T` into `dir`, creating it: every version's and the whole-value
/// schema ([`schema_files_of`]). Returns the paths written.
pub fn export_schemas<T: Versioned>(
    dir: impl AsRef<Path>,
) -> std::io::Result<Vec<std::path::PathBuf>> {
    write_files(dir.as_ref(), schema_files_of::<T>())
}

/// Every schema file the crate ships in `schemas/`, as (file name, schema): the envelope's,
/// the KV metadata's, and for each shipped type every version's and its whole-value schema.
/// `make schemas` writes them; a test checks the committed files match.
pub fn shipped_schema_files() -> Vec<(String, Value)> {
    let mut files = vec![
        (ENVELOPE_SCHEMA_FILE.to_string(), envelope_schema()),
        (METADATA_SCHEMA_FILE.to_string(), metadata_schema()),
    ];
    files.extend(schema_files_of::<session::SessionRecord>());
    files.extend(schema_files_of::<session::SessionIndexEntry>());
    files.extend(schema_files_of::<cache::NamespaceGeneration>());
    files.extend(schema_files_of::<tower_sessions::TowerSessionRecord>());
    files.extend(schema_files_of::<tokens::TokenRecord>());
    files.extend(schema_files_of::<tokens::TokenIndexEntry>());
    files
}
