#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod backend;
pub mod background;
pub mod cache;
#[cfg(feature = "cli")]
pub mod cli;
pub mod clock;
pub mod envelope;
mod error;
pub mod migrate;
pub mod schema;
pub mod session;
pub mod store;
#[cfg(feature = "testing")]
pub mod testing;

#[doc(inline)]
pub use crate::{
    backend::{Kv, KvBackend, MemoryKv},
    cache::{CachePolicy, CacheStore, Cached},
    clock::{Clock, ManualClock, SystemClock},
    envelope::{Codec, Header, Payload},
    error::{Error, LimitError, Result, ValidationIssue},
    migrate::{decode_value, encode_value, Decoded, Versioned},
    session::{Session, SessionStore},
    store::{Overwrite, TypedStore},
};

/// Items used by the [`versioned!`] macro expansion. Not public API.
#[doc(hidden)]
pub mod __private {
    pub use serde_json::Value;

    pub use crate::{
        migrate::{decode_step, step_validator},
        schema::{schema_of, ValidatorCell},
    };
}

/// Every schema file the crate ships in `schemas/`, as (file name, schema): the envelope's,
/// the KV metadata's, and for each shipped type every version's and its whole-value schema.
/// `make schemas` writes them; a test checks the committed files match.
pub fn shipped_schema_files() -> Vec<(String, serde_json::Value)> {
    let mut files = vec![
        (
            schema::ENVELOPE_SCHEMA_FILE.to_string(),
            schema::envelope_schema(),
        ),
        (
            schema::METADATA_SCHEMA_FILE.to_string(),
            schema::metadata_schema(),
        ),
    ];
    files.extend(schema::schema_files_of::<session::Session>());
    files.extend(schema::schema_files_of::<session::SessionIndexEntry>());
    files.extend(schema::schema_files_of::<cache::NamespaceGeneration>());
    files
}
