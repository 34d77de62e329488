//! Validated pass-through: a cached value's JSON text, checked against its version, without
//! building the struct — for callers that only forward it (a worker answering with the stored
//! JSON as its body).

use std::{fmt, ops::Deref, sync::Arc};

use serde::Serialize;
use serde_json::value::RawValue;

use kv_envelope_validator::Document;

use crate::{
    envelope::{self, Codec, Payload},
    error::{Error, Result},
    schema,
    seal::{open_payload, KeyRing},
    versioned::{check_header, decode_value_in, Versioned},
};

/// The JSON text of a value at the current version of its type, validated: what
/// [`KvCache::get_json`](super::KvCache::get_json) returns. Cheap to clone (shared);
/// the isolate-memory tier hands out the same text to every hit.
///
/// It is the text a typed read would accept: the stored payload as it is when it is JSON of
/// the current version that passes the schema (sealed values: the opened payload); otherwise
/// (an older version, postcard, duplicate keys, a payload the fast path cannot cut out) the
/// value decoded, migrated and serialized again with `serde_json`.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct JsonText(Arc<str>);

impl JsonText {
    /// Text that is known to be one valid JSON value.
    fn from_checked(text: &str) -> Self {
        Self(Arc::from(text.trim_matches([' ', '\n', '\r', '\t'])))
    }

    pub(crate) fn from_value<T: Serialize>(value: &T) -> Result<Self> {
        serde_json::to_string(value)
            .map(|s| Self(Arc::from(s)))
            .map_err(|e| Error::Encode {
                type_name: "json-text",
                reason: e.to_string(),
            })
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The text as bytes (e.g. a response body).
    pub fn as_bytes(&self) -> &[u8] {
        self.0.as_bytes()
    }

    /// An owned copy of the text.
    pub fn to_string_owned(&self) -> String {
        self.0.to_string()
    }

    /// As a `serde_json` raw value, to embed in a larger serialized document unchanged.
    pub fn to_raw_value(&self) -> Box<RawValue> {
        // The text is one valid JSON value by construction.
        RawValue::from_string(self.0.to_string())
            .unwrap_or_else(|_| RawValue::from_string("null".into()).expect("null is JSON"))
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Never true for valid JSON; here for clippy's `len_without_is_empty`.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl Deref for JsonText {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl AsRef<[u8]> for JsonText {
    fn as_ref(&self) -> &[u8] {
        self.as_bytes()
    }
}

impl AsRef<str> for JsonText {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for JsonText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("JsonText").field(&&*self.0).finish()
    }
}

impl fmt::Display for JsonText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Serializes as the JSON value it holds (not as a string).
impl Serialize for JsonText {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        let raw: &RawValue = serde_json::from_str(&self.0).map_err(serde::ser::Error::custom)?;
        raw.serialize(s)
    }
}

/// Why [`KvCache::try_get_or_compute_json`](super::KvCache::try_get_or_compute_json) has no
/// text to hand out.
#[derive(Debug)]
pub enum ComputeJsonError<E> {
    /// The computation failed (the cache was not the problem).
    Compute(E),
    /// The value (computed, or read the typed way) does not serialize as JSON — a map with
    /// keys that are not strings, a failing `Serialize` impl. Never a stored value's fault:
    /// with the JSON codec such a value could not have been written either.
    Encode(Error),
}

impl<E: fmt::Display> fmt::Display for ComputeJsonError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ComputeJsonError::Compute(e) => write!(f, "computation failed: {e}"),
            ComputeJsonError::Encode(e) => write!(f, "value is not JSON: {e}"),
        }
    }
}

impl<E: std::error::Error + 'static> std::error::Error for ComputeJsonError<E> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ComputeJsonError::Compute(e) => Some(e),
            ComputeJsonError::Encode(e) => Some(e),
        }
    }
}

/// A pass-through read: `Ok(None)` when expired, the text and the envelope's expiry otherwise;
/// the same errors as [`decode_value_in`] (which it falls back to).
pub(crate) fn json_payload_in<T: Versioned>(
    bytes: &[u8],
    ring: Option<&KeyRing>,
    kv_key: &str,
    now_ms: u64,
    validate: bool,
) -> Result<Option<(JsonText, Option<u64>)>> {
    if validate {
        if let Some(found) = current_json::<T>(bytes, ring, kv_key, now_ms)? {
            return Ok(Some(found));
        }
    }
    // Everything else is what a typed read does, serialized again.
    let Some(decoded) = decode_value_in::<T>(bytes, ring, kv_key, now_ms, validate)? else {
        return Ok(None);
    };
    Ok(Some((
        JsonText::from_value(&decoded.value)?,
        decoded.expires_at,
    )))
}

/// The fast path: JSON of the current version (in clear or sealed), valid against its schema,
/// without duplicate keys. `Ok(None)` hands over to the full decode, which then reports the
/// precise error (or reads what the fast path cannot: other versions, postcard, unusual
/// layouts). Errors here are the header's and the seal's, which the full decode would hit the
/// same way.
fn current_json<T: Versioned>(
    bytes: &[u8],
    ring: Option<&KeyRing>,
    kv_key: &str,
    now_ms: u64,
) -> Result<Option<(JsonText, Option<u64>)>> {
    let raw = envelope::decode(bytes)?;
    if !check_header::<T>(&raw.header, now_ms)? || raw.header.version != T::VERSION {
        // Expired (the full decode says so too) or to migrate.
        return Ok(None);
    }
    let expires_at = raw.header.expires_at;
    if raw.header.codec != Codec::Json {
        // Postcard (clear or sealed): the typed read re-encodes it.
        return Ok(None);
    }
    let mut opened = Vec::new();
    let Payload::Json(text) = open_payload(raw.payload, ring, kv_key, T::NAME, &mut opened)? else {
        return Ok(None);
    };
    let Ok(doc) = Document::parse(text) else {
        return Ok(None);
    };
    if doc.had_duplicate_keys() {
        // A typed read refuses a repeated struct field; let it decide.
        return Ok(None);
    }
    let validator = T::validator(T::VERSION)?;
    if schema::validate_document(validator, T::NAME, T::VERSION, &doc).is_err() {
        return Ok(None);
    }
    let Ok(text) = std::str::from_utf8(text) else {
        return Ok(None);
    };
    Ok(Some((JsonText::from_checked(text), expires_at)))
}
