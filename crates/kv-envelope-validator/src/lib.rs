//! The JSON tape and the JSON Schema validator kv-envelope validates reads with when it is built
//! without the `jsonschema` crate (`default-features = false`: what a Worker ships, a third of
//! the size).
//!
//! * [`Document`] — a JSON value as one flat tape: parsed from bytes or built from any
//!   `Serialize` value, validated, then deserialized straight into a struct (the payload is parsed
//!   once). With feature `jsonschema` it also implements the jsonschema crate's representation
//!   traits ([`Tape`]), so either engine validates the same document.
//! * [`Validator`] — the vocabulary schemars emits (draft 2020-12: types, bounds, lengths,
//!   formats, properties, items, combinators, local references), with the jsonschema crate's
//!   verdicts; a schema it cannot judge is refused when it is compiled, saying what and where.
//!   The official JSON-Schema-Test-Suite runs through it (kv-envelope's `make json-schema-suite`).
//!
//! Nothing here panics on any input. This crate is kv-envelope's: its API follows kv-envelope's
//! needs, with no stability promise of its own.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod tape;
mod validator;

#[cfg(feature = "jsonschema")]
pub use tape::{ArrayRef, ObjectRef};
pub use tape::{
    Compound, DeError, Document, Elements, Members, NodeRef, Number, ParseError, SerError, Tape,
    MAX_DEPTH,
};
pub use validator::{is_plausible_email, Validator};
// The differential tests' generator of reference structures (kv-envelope's property tests and
// its `compact_validator` fuzz target).
#[doc(hidden)]
pub use validator::maze;

use std::fmt;

/// One schema violation: where in the payload, which schema keyword, and a message with every
/// instance value masked.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ValidationIssue {
    /// JSON Pointer into the payload (`/email`).
    pub instance_path: String,
    /// JSON Pointer into the schema (`/properties/email/format`).
    pub schema_path: String,
    /// Human message; instance values are replaced by `value`.
    pub message: String,
}

impl fmt::Display for ValidationIssue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let path = if self.instance_path.is_empty() {
            "/"
        } else {
            &self.instance_path
        };
        write!(f, "at {path}: {}", self.message)
    }
}
