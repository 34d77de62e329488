//! Versioned types and their migration chains.
//!
//! A type's history is a list of plain structs, one per schema version, each convertible into
//! the next with `From` (or `TryFrom` when a step can refuse). [`versioned!`](macro@crate::versioned)
//! turns that list into a [`Versioned`] implementation on the newest struct: decoding a payload
//! of any known version, validating it against that version's schema and walking it up the
//! chain.

use serde::{de::DeserializeOwned, Serialize};
use serde_json::Value;

use kv_envelope_validator::Document;

use crate::{
    envelope::{Codec, Payload},
    error::{describe_json_error, describe_postcard_error, Error, Result, SealError},
    schema::{self, Validator, ValidatorCell},
    seal::{open_payload, FrameFields, KeyRing, StoredSeal},
};

/// A type stored in KV under a stable name, with a schema version and a migration chain from
/// every older version. Implement it with [`versioned!`](macro@crate::versioned).
pub trait Versioned: Serialize + DeserializeOwned + Sized + 'static {
    /// Stable name: used in key prefixes, in envelopes and in schema file names.
    const NAME: &'static str;
    /// The newest version (this type). Versions count from 1.
    const VERSION: u32;
    /// Whether postcard payloads are validated against their schema (JSON always is).
    /// Opting out saves a conversion to a JSON value on every postcard read.
    const VALIDATE_POSTCARD: bool = true;

    /// Decode `payload` written at `version` (1..=`VERSION`), validate it when `validate` is
    /// set, and migrate it to the current version.
    fn decode_payload(version: u32, payload: Payload<'_>, validate: bool) -> Result<Self>;

    /// JSON Schema of `version`, `None` outside `1..=VERSION`.
    fn schema(version: u32) -> Option<Value>;

    /// The process-wide validator slot of `version`.
    #[doc(hidden)]
    fn validator_cell(version: u32) -> Option<&'static ValidatorCell>;

    /// The compiled validator of `version`, compiled on first use and then reused.
    fn validator(version: u32) -> Result<&'static Validator> {
        let unknown = || Error::UnknownVersion {
            type_name: Self::NAME,
            version,
        };
        let cell = Self::validator_cell(version).ok_or_else(unknown)?;
        cell.get_or_init(|| {
            let schema = Self::schema(version).ok_or_else(unknown)?;
            schema::compile(Self::NAME, version, &schema)
        })
        .as_ref()
        .map_err(Clone::clone)
    }

    /// Compile every version's validator now (call at isolate start-up so no request pays it).
    fn warm_up() -> Result<()> {
        for v in 1..=Self::VERSION {
            Self::validator(v)?;
        }
        Ok(())
    }
}

/// What the [`versioned!`] expansion calls, reachable only as `$crate::__private::…` (this
/// module is private; `lib.rs` re-exports its items there).
pub(crate) mod steps {
    use super::*;

    /// Decode one version's payload into its own struct. Used by [`versioned!`](macro@crate::versioned).
    pub fn decode_step<V: Serialize + DeserializeOwned>(
        type_name: &'static str,
        version: u32,
        payload: Payload<'_>,
        validator: Option<&Validator>,
    ) -> Result<V> {
        let codec_err = |codec: Codec, reason: String| Error::Codec {
            codec,
            type_name,
            version,
            reason,
        };
        // What an unvalidated JSON read does: serde_json straight into the struct.
        let from_json = |bytes: &[u8]| {
            serde_json::from_slice(bytes)
                .map_err(|e| codec_err(Codec::Json, describe_json_error(&e)))
        };
        match (payload, validator) {
            (Payload::Json(bytes), None) => from_json(bytes),
            // Parsed once into a cheap document (no `serde_json::Value`), validated, then
            // deserialized from the document.
            (Payload::Json(bytes), Some(validator)) => {
                let doc =
                    Document::parse(bytes).map_err(|e| codec_err(Codec::Json, e.to_string()))?;
                schema::validate_document(validator, type_name, version, &doc)?;
                if doc.had_duplicate_keys() {
                    // Validated as the last member of each key (as `JSON.parse` reads it); decoded
                    // exactly as an unvalidated read decodes it, so the two agree: a repeated struct
                    // field is refused, a repeated map key keeps its last value.
                    return from_json(bytes);
                }
                V::deserialize(doc.root())
                    .map_err(|_| codec_err(Codec::Json, "value does not fit the type".into()))
            }
            (Payload::Sealed(_), _) => Err(Error::Sealed {
                type_name,
                reason: SealError::NoKeyRing,
            }),
            (Payload::Postcard(bytes), validator) => {
                let (v, rest) = postcard::take_from_bytes::<V>(bytes)
                    .map_err(|e| codec_err(Codec::Postcard, describe_postcard_error(&e)))?;
                if !rest.is_empty() {
                    return Err(codec_err(
                        Codec::Postcard,
                        format!("{} trailing bytes after the payload", rest.len()),
                    ));
                }
                if let Some(validator) = validator {
                    // The JSON this value stands for, as a document: validated like a JSON read.
                    let doc = Document::from_serialize_sized(&v, bytes.len())
                        .map_err(|e| codec_err(Codec::Postcard, e.to_string()))?;
                    schema::validate_document(validator, type_name, version, &doc)?;
                }
                Ok(v)
            }
        }
    }

    /// Pick the validator for one step, honouring `validate` and `VALIDATE_POSTCARD`.
    pub fn step_validator<T: Versioned>(
        version: u32,
        payload: &Payload<'_>,
        validate: bool,
    ) -> Result<Option<&'static Validator>> {
        let wanted = validate && (matches!(payload, Payload::Json(_)) || T::VALIDATE_POSTCARD);
        if wanted {
            T::validator(version).map(Some)
        } else {
            Ok(None)
        }
    }
}

/// Declare a type's version history and implement [`Versioned`] on its newest struct.
///
/// ```
/// use serde::{Deserialize, Serialize};
/// use schemars::JsonSchema;
///
/// #[derive(Serialize, Deserialize, JsonSchema)]
/// struct NoteV1 { text: String }
/// #[derive(Serialize, Deserialize, JsonSchema)]
/// struct Note { text: String, pinned: bool }
///
/// impl From<NoteV1> for Note {
///     fn from(v1: NoteV1) -> Self { Note { text: v1.text, pinned: false } }
/// }
///
/// kv_envelope::versioned! {
///     name: "note",
///     versions: [NoteV1, Note],
/// }
///
/// use kv_envelope::Versioned;
/// assert_eq!(Note::VERSION, 2);
/// ```
///
/// Versions are numbered by position from 1; each step is `TryFrom<Previous>` (so `From`
/// works). Add `validate_postcard: false` to skip schema validation of postcard payloads.
#[macro_export]
macro_rules! versioned {
    (
        name: $name:literal,
        versions: [$($ty:ty),+ $(,)?]
        $(, validate_postcard: $vp:expr)?
        $(,)?
    ) => {
        $crate::versioned!(@impl $name, [$($vp)?], [$($ty),+], [$($ty),+]);
    };

    (@impl $name:literal, [$($vp:expr)?], [$($all:ty),+], [$last:ty]) => {
        impl $crate::Versioned for $last {
            const NAME: &'static str = $name;
            const VERSION: u32 = <[()]>::len(&[$($crate::versioned!(@unit $all)),+]) as u32;
            $(const VALIDATE_POSTCARD: bool = $vp;)?

            fn decode_payload(
                version: u32,
                payload: $crate::envelope::Payload<'_>,
                validate: bool,
            ) -> $crate::Result<Self> {
                $crate::versioned!(@dispatch $last, version, payload, validate, $name, (1u32), [$($all),+]);
                ::core::result::Result::Err($crate::Error::UnknownVersion { type_name: $name, version })
            }

            fn schema(version: u32) -> ::core::option::Option<$crate::__private::Value> {
                $crate::versioned!(@schema version, (1u32), [$($all),+]);
                ::core::option::Option::None
            }

            fn validator_cell(version: u32) -> ::core::option::Option<&'static $crate::__private::ValidatorCell> {
                static CELLS: [$crate::__private::ValidatorCell; <[()]>::len(&[$($crate::versioned!(@unit $all)),+])] =
                    [const { $crate::__private::ValidatorCell::new() }; <[()]>::len(&[$($crate::versioned!(@unit $all)),+])];
                let index = usize::try_from(version).ok()?.checked_sub(1)?;
                CELLS.get(index)
            }
        }
    };
    (@impl $name:literal, [$($vp:expr)?], [$($all:ty),+], [$head:ty, $($tail:ty),+]) => {
        $crate::versioned!(@impl $name, [$($vp)?], [$($all),+], [$($tail),+]);
    };

    (@unit $t:ty) => { () };

    (@dispatch $cur:ty, $version:ident, $payload:ident, $validate:ident, $name:literal, ($n:expr), [$head:ty $(, $tail:ty)*]) => {
        if $version == $n {
            let validator = $crate::__private::step_validator::<$cur>($n, &$payload, $validate)?;
            let value: $head = $crate::__private::decode_step::<$head>($name, $n, $payload, validator)?;
            return ::core::result::Result::Ok($crate::versioned!(@upgrade value, $name, ($n), [$($tail),*]));
        }
        $crate::versioned!(@dispatch $cur, $version, $payload, $validate, $name, ($n + 1u32), [$($tail),*]);
    };
    (@dispatch $cur:ty, $version:ident, $payload:ident, $validate:ident, $name:literal, ($n:expr), []) => {};

    (@upgrade $val:ident, $name:literal, ($n:expr), [$next:ty $(, $tail:ty)*]) => {{
        let next: $next = <$next as ::core::convert::TryFrom<_>>::try_from($val).map_err(|e| {
            $crate::Error::Migration {
                type_name: $name,
                from: $n,
                to: $n + 1u32,
                reason: ::std::string::ToString::to_string(&e),
            }
        })?;
        $crate::versioned!(@upgrade next, $name, ($n + 1u32), [$($tail),*])
    }};
    (@upgrade $val:ident, $name:literal, ($n:expr), []) => { $val };

    (@schema $version:ident, ($n:expr), [$head:ty $(, $tail:ty)*]) => {
        if $version == $n {
            return ::core::option::Option::Some($crate::__private::schema_of::<$head>());
        }
        $crate::versioned!(@schema $version, ($n + 1u32), [$($tail),*]);
    };
    (@schema $version:ident, ($n:expr), []) => {};
}

/// A value read from an envelope and brought to the current version.
#[derive(Debug, Clone, PartialEq)]
pub struct Decoded<T> {
    /// The value, at the current version.
    pub value: T,
    /// Codec it was stored with.
    pub codec: Codec,
    /// Version it was stored at.
    pub stored_version: u32,
    /// Exact expiry from the envelope.
    pub expires_at: Option<u64>,
    /// How it was stored: in clear, sealed with the ring's primary key or with an older one.
    pub seal: StoredSeal,
}

impl<T: Versioned> Decoded<T> {
    /// True when the stored version is older than the current one.
    pub fn migrated(&self) -> bool {
        self.stored_version < T::VERSION
    }

    /// True when a write-back is due: the value was migrated, or a store that seals with `ring`
    /// read it in clear or sealed with a key other than the primary (lazy re-sealing after a
    /// rotation).
    pub fn needs_rewrite(&self, ring: Option<&KeyRing>) -> bool {
        self.migrated() || (ring.is_some() && self.seal != StoredSeal::Primary)
    }
}

/// Check a header against `T` without touching the payload: the right type, a known version,
/// not expired. `Ok(false)` means expired.
pub fn check_header<T: Versioned>(
    header: &crate::envelope::Header<'_>,
    now_ms: u64,
) -> Result<bool> {
    if header.type_name != T::NAME {
        return Err(Error::TypeMismatch {
            expected: T::NAME,
            found: header.type_name.chars().take(64).collect(),
        });
    }
    if header.version == 0 {
        return Err(Error::UnknownVersion {
            type_name: T::NAME,
            version: 0,
        });
    }
    if header.version > T::VERSION {
        return Err(Error::FutureVersion {
            type_name: T::NAME,
            found: header.version,
            known: T::VERSION,
        });
    }
    Ok(!header.is_expired(now_ms))
}

/// Decode envelope bytes as `T`: header checks first (type, version, expiry at `now_ms`), then
/// the payload of the stored version, validated when `validate` is set, migrated to the current
/// version. `Ok(None)` means expired. Never panics on any input. A sealed value is
/// `Error::Sealed` ([`SealError::NoKeyRing`]): read it with [`decode_value_in`].
pub fn decode_value<T: Versioned>(
    bytes: &[u8],
    now_ms: u64,
    validate: bool,
) -> Result<Option<Decoded<T>>> {
    decode_value_in::<T>(bytes, None, "", now_ms, validate)
}

/// [`decode_value`] of a value read from `kv_key` by a store with the key ring `ring`: a sealed
/// value is opened (its key id must be in the ring, and it must have been sealed for this
/// key), then decoded like a clear one; a clear value is read as it is unless the ring
/// [requires sealing](KeyRing::requiring_sealed).
pub fn decode_value_in<T: Versioned>(
    bytes: &[u8],
    ring: Option<&KeyRing>,
    kv_key: &str,
    now_ms: u64,
    validate: bool,
) -> Result<Option<Decoded<T>>> {
    let raw = crate::envelope::decode(bytes)?;
    if !check_header::<T>(&raw.header, now_ms)? {
        return Ok(None);
    }
    let version = raw.header.version;
    let expires_at = raw.header.expires_at;
    let codec = raw.header.codec;
    let seal = match (&raw.header.key_id, ring) {
        (None, _) => StoredSeal::Clear,
        (Some(id), Some(ring)) if id.as_ref() == ring.primary_id() => StoredSeal::Primary,
        (Some(_), _) => StoredSeal::OlderKey,
    };
    let mut opened = Vec::new();
    let payload = open_payload(raw.payload, ring, kv_key, T::NAME, &mut opened)?;
    let value = match T::decode_payload(version, payload, validate) {
        Ok(v) => v,
        // The fast JSON path cut the payload at the last `}`; a writer that put other keys
        // after `data` needs the tolerant parser.
        Err(
            e @ (Error::Codec {
                codec: Codec::Json, ..
            }
            | Error::Validation { .. }),
        ) if codec == Codec::Json && seal == StoredSeal::Clear => {
            let tolerant = crate::envelope::decode_json_tolerant(bytes)?;
            if tolerant.payload == payload {
                // Same payload: decoding it again would only fail the same way.
                return Err(e);
            } else {
                check_header::<T>(&tolerant.header, now_ms)?;
                T::decode_payload(tolerant.header.version, tolerant.payload, validate)?
            }
        }
        Err(e) => return Err(e),
    };
    Ok(Some(Decoded {
        value,
        codec,
        stored_version: version,
        expires_at,
        seal,
    }))
}

/// Encode `value` as the current version of `T`.
pub fn encode_value<T: Versioned>(
    value: &T,
    codec: Codec,
    expires_at: Option<u64>,
) -> Result<Vec<u8>> {
    crate::envelope::encode(codec, T::NAME, T::VERSION, expires_at, value)
}

/// [`encode_value`] for `kv_key` in a store with the key ring `ring`: sealed with the ring's
/// primary key (the associated data binds it to `kv_key`), or in clear without a ring.
pub fn encode_value_in<T: Versioned>(
    value: &T,
    codec: Codec,
    expires_at: Option<u64>,
    ring: Option<&KeyRing>,
    kv_key: &str,
) -> Result<Vec<u8>> {
    let Some(ring) = ring else {
        return encode_value(value, codec, expires_at);
    };
    let plaintext = crate::envelope::encode_payload(codec, T::NAME, value)?;
    let frame = FrameFields {
        codec,
        type_name: T::NAME,
        version: T::VERSION,
        expires_at,
    };
    ring.seal(kv_key, frame, plaintext)
}
