//! JSON Schemas of versioned types: generation (schemars, through the [`Portable`] transform so
//! other languages' validators compile them), validation (compiled once per process/isolate),
//! and the schemas of whole stored values and of the KV metadata
//! ([`envelope_schema_of`](crate::export::envelope_schema_of),
//! [`metadata_schema`](crate::export::metadata_schema)). Writing the files of a versioned type
//! is [`export`](crate::export)'s.
//!
//! Validation uses the jsonschema crate with the `jsonschema` feature (on by default): every
//! keyword of draft 2020-12, and every standard format asserted, not annotated (`email` by
//! [`kv_envelope_validator::is_plausible_email`], `idn-hostname` and `idn-email` by jsonschema's IDNA checks);
//! references resolve within the schema (and to the draft's meta-schemas), nothing is fetched,
//! and two schemas claiming one `$id` are refused. Without it, the in-crate `compact` validator
//! validates: the vocabulary schemars emits, with the same results, at a fraction of the wasm
//! size (BENCHMARKS.md §7); a schema outside that vocabulary is refused when its validator is
//! compiled. Either way a refusal says what and where (a JSON pointer into the schema). The
//! official JSON-Schema-Test-Suite runs through both (`make json-schema-suite`; the results
//! per validator are in RELIABILITY.md).

use std::sync::OnceLock;

use serde_json::Value;

use crate::error::{Error, Result};

// Two schemas claiming one `$id`, refused before jsonschema compiles them (it can panic).
#[cfg(any(feature = "jsonschema", test))]
pub(crate) mod identifiers;
mod portable;
#[cfg(feature = "jsonschema")]
mod refusal;
// What other services find in KV; `export` is its public home.
pub(crate) mod stored;

#[cfg(feature = "jsonschema")]
use kv_envelope_validator::is_plausible_email;
use kv_envelope_validator::Document;
#[doc(inline)]
pub use portable::Portable;

/// A compiled validator of one (type, version).
///
/// One type with the same methods whichever engine checks: the jsonschema crate with the
/// `jsonschema` feature (on by default), the in-crate `compact` validator without it. Cargo
/// unifies features across a build, so a crate elsewhere in the graph may switch the engine; it
/// never changes this API or a verdict (the two are held to the same results by a differential
/// property test and a fuzz target). [`engine`](Self::engine) says which one runs.
pub struct Validator(Engine);

#[cfg(feature = "jsonschema")]
type Engine = jsonschema::Validator<kv_envelope_validator::Tape>;
#[cfg(not(feature = "jsonschema"))]
type Engine = kv_envelope_validator::Validator;

impl Validator {
    /// Whether `value` is valid. (Reads validate the cheap document they parse, not a
    /// `serde_json::Value`; this is for tools and tests.)
    pub fn is_valid(&self, value: &Value) -> bool {
        Document::from_serialize(value).is_ok_and(|doc| self.is_valid_document(&doc))
    }

    /// Up to `max` violations of `value`, with JSON pointers to the value and the schema
    /// keyword and a message that never quotes the value; empty exactly when `value` is valid.
    pub fn issues(&self, value: &Value, max: usize) -> Vec<crate::error::ValidationIssue> {
        match Document::from_serialize(value) {
            Ok(doc) => self.document_issues(&doc, max),
            Err(e) => vec![crate::error::ValidationIssue {
                instance_path: String::new(),
                schema_path: String::new(),
                message: e.to_string(),
            }],
        }
    }

    /// The engine that checks: `"jsonschema"` or `"compact"`.
    pub fn engine(&self) -> &'static str {
        if cfg!(feature = "jsonschema") {
            "jsonschema"
        } else {
            "compact"
        }
    }

    /// [`is_valid`](Self::is_valid) on a parsed document: the hot path of reads. Hidden: the
    /// document type is internal (benches and the fuzz targets reach it).
    #[doc(hidden)]
    pub fn is_valid_document(&self, doc: &Document<'_>) -> bool {
        self.0.is_valid(doc.root())
    }

    fn document_issues(
        &self,
        doc: &Document<'_>,
        max: usize,
    ) -> Vec<crate::error::ValidationIssue> {
        let instance = doc.root();
        #[cfg(not(feature = "jsonschema"))]
        return self.0.issues(instance, max);
        #[cfg(feature = "jsonschema")]
        self.0
            .iter_errors(instance)
            .take(max)
            .map(|e| crate::error::ValidationIssue {
                instance_path: e.instance_path().to_string(),
                schema_path: e.schema_path().to_string(),
                message: e.masked().to_string(),
            })
            .collect()
    }
}

impl std::fmt::Debug for Validator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Validator")
            .field("engine", &self.engine())
            .finish_non_exhaustive()
    }
}

/// At most this many violations are kept in an [`Error::Validation`].
const MAX_ISSUES: usize = 16;

/// A lazily compiled validator, one per (type, version), living for the process/isolate.
#[doc(hidden)]
pub type ValidatorCell = OnceLock<Result<Validator, Error>>;

/// The JSON Schema schemars generates for `T` (draft 2020-12), made [`Portable`]: the schema
/// reads are validated against, and the one exported for other services.
pub fn schema_of<T: schemars::JsonSchema>() -> Value {
    schemars::generate::SchemaSettings::draft2020_12()
        .with_transform(Portable)
        .into_generator()
        .into_root_schema_for::<T>()
        .to_value()
}

/// Compile `schema` the way every (type, version) validator is compiled: `format` asserted,
/// with the cheap [`kv_envelope_validator::is_plausible_email`] check. [`Versioned::validator`](crate::Versioned::validator) caches the result;
/// this is for tools and benchmarks that need a fresh one.
pub fn compile(type_name: &'static str, version: u32, schema: &Value) -> Result<Validator> {
    #[cfg(not(feature = "jsonschema"))]
    return kv_envelope_validator::Validator::compile(schema)
        .map(Validator)
        .map_err(|reason| Error::Schema {
            type_name,
            version,
            reason,
        });
    #[cfg(feature = "jsonschema")]
    identifiers::refuse_duplicates(schema).map_err(|reason| Error::Schema {
        type_name,
        version,
        reason,
    })?;
    #[cfg(feature = "jsonschema")]
    jsonschema::options_for::<kv_envelope_validator::Tape>()
        // `format` is an assertion: an `email` field must look like an email.
        .should_validate_formats(true)
        // A linear-time email check instead of a full RFC 5322 parse: it was half of the
        // validation cost of a session read (BENCHMARKS.md).
        .with_format("email", is_plausible_email)
        .build(schema)
        .map(Validator)
        .map_err(|e| Error::Schema {
            type_name,
            version,
            reason: refusal::reason(schema, &e),
        })
}

/// Validate `instance`; on failure return every violation (up to 16) with JSON paths and
/// masked messages. (The hot paths validate [`Document`]s; this serves the CLI and the
/// property-test helpers.)
#[doc(hidden)]
pub fn validate(
    validator: &Validator,
    type_name: &'static str,
    version: u32,
    instance: &Value,
) -> Result<()> {
    match Document::from_serialize(instance) {
        Ok(doc) => validate_document(validator, type_name, version, &doc),
        // Only nesting past `MAX_DEPTH`, which no JSON read could produce either.
        Err(e) => Err(Error::Validation {
            type_name,
            version,
            issues: vec![crate::error::ValidationIssue {
                instance_path: String::new(),
                schema_path: String::new(),
                message: e.to_string(),
            }],
        }),
    }
}

/// [`validate`] for a parsed or serialized [`Document`], the form reads validate.
pub(crate) fn validate_document(
    validator: &Validator,
    type_name: &'static str,
    version: u32,
    doc: &Document<'_>,
) -> Result<()> {
    if validator.is_valid_document(doc) {
        return Ok(());
    }
    Err(Error::Validation {
        type_name,
        version,
        issues: validator.document_issues(doc, MAX_ISSUES),
    })
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use kv_envelope_validator::is_plausible_email;

    /// The first, split-based version of the check: the single-pass one must agree with it.
    fn reference(s: &str) -> bool {
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

    #[test]
    fn email_examples() {
        for (s, ok) in [
            ("ada.lovelace@analytical-engine.example.com", true),
            ("a@b.c", true),
            ("a+tag@x-y.z9", true),
            ("a@b", false),
            ("@b.c", false),
            ("a@", false),
            (".a@b.c", false),
            ("a.@b.c", false),
            ("a..b@b.c", false),
            ("a@b..c", false),
            ("a@.b.c", false),
            ("a@b.c.", false),
            ("a@-b.c", false),
            ("a@b-.c", false),
            ("a@b@c.d", false),
            ("a b@c.d", false),
            ("\u{e9}@b.c", false),
            ("\"q\"@b.c", false),
            ("a@[127.0.0.1]", false),
        ] {
            assert_eq!(is_plausible_email(s), ok, "{s}");
            assert_eq!(reference(s), ok, "{s}");
        }
        let long_local = format!("{}@b.c", "a".repeat(65));
        let long_label = format!("a@{}.c", "b".repeat(64));
        let long_domain = format!("a@{}c", "b.".repeat(127));
        for s in [long_local, long_label, long_domain] {
            assert!(!is_plausible_email(&s));
            assert!(!reference(&s));
        }
    }

    /// The compiled validator reads use (jsonschema over the tape, or the compact one) on
    /// parsed numbers at the edges of the widths the portable transform bounds.
    #[test]
    fn integer_bounds_hold_exactly_for_parsed_values() {
        #[derive(schemars::JsonSchema)]
        #[allow(dead_code)]
        struct Widths {
            big: u64,
            word: u32,
        }
        let schema = super::schema_of::<Widths>();
        for (field, text, ok) in [
            ("big", "0", true),
            ("big", "18446744073709551615", true),
            ("big", "18446744073709551616", false),
            ("big", "18446744073709551615.0", false),
            ("big", "-1", false),
            ("word", "4294967295", true),
            ("word", "4294967296", false),
            ("word", "-1", false),
        ] {
            let validator = super::compile("widths", 1, &schema["properties"][field])
                .unwrap_or_else(|e| panic!("{e}"));
            let doc = super::Document::parse(text.as_bytes()).unwrap();
            assert_eq!(validator.is_valid_document(&doc), ok, "{field}: {text}");
        }
    }

    proptest! {
        #[test]
        fn email_check_agrees_with_the_reference(s in "[a-z.@\\-+_]{0,12}|[a-zA-Z0-9.!#%'*+/=?^`{}~|@\\-\u{e9} ]{0,80}") {
            prop_assert_eq!(is_plausible_email(&s), reference(&s), "{:?}", s);
        }
    }
}
