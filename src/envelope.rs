//! The wire format: every value in KV is an envelope around a typed payload — a JSON object
//! (first byte `{`), a postcard frame (`0xC5`) or a sealed frame (`0xC6`), one decoder
//! recognising the codec from the first byte. docs/wire-format.md is the one definition of the
//! bytes and of the Stability promise; this module implements it and the golden tests
//! (`tests/envelope.rs`, `tests/golden/`) pin it.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};

pub(crate) use crate::codec::Codec;
use crate::error::{describe_json_error, describe_postcard_error, Error, Result};

/// First byte of a binary frame. Not valid as the first byte of UTF-8 JSON, so the two
/// codecs can never be confused.
#[doc(hidden)]
pub const FRAME_MAGIC: u8 = 0xC5;
/// Version of the binary frame layout.
pub(crate) const FRAME_FORMAT: u8 = 0x01;
/// Codec tag of postcard inside a binary frame.
pub(crate) const TAG_POSTCARD: u8 = 0x01;
/// Version of the JSON envelope layout (the `kv` field).
pub(crate) const JSON_FORMAT: u64 = 1;
/// First byte of a sealed frame (an encrypted payload under a readable header).
#[doc(hidden)]
pub const SEALED_MAGIC: u8 = 0xC6;
/// Version of the sealed frame layout.
#[doc(hidden)]
pub const SEALED_FORMAT: u8 = 0x01;
/// Inner codec tag of JSON text inside a sealed frame (postcard is `TAG_POSTCARD`).
pub(crate) const TAG_JSON: u8 = 0x00;
/// Length of a sealed frame's nonce (AES-GCM's 96 bits).
#[doc(hidden)]
pub const NONCE_LEN: usize = 12;
/// Length of a sealed frame's authentication tag.
pub(crate) const AUTH_TAG_LEN: usize = 16;
/// The longest key id a sealed frame carries.
pub(crate) const MAX_KEY_ID_LEN: usize = 32;

/// The envelope header: everything needed to decide what to do with a value before touching
/// its payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header<'a> {
    /// Codec of the payload.
    pub codec: Codec,
    /// Stable type name the value was written as.
    pub type_name: Cow<'a, str>,
    /// Schema version of the payload (≥ 1).
    pub version: u32,
    /// Absolute expiry in ms since the epoch; `None` never expires.
    pub expires_at: Option<u64>,
    /// Id of the key a sealed value was sealed with; `None` for a value in clear.
    pub key_id: Option<Cow<'a, str>>,
}

impl Header<'_> {
    /// True when the value is past its `expires_at` at `now_ms`.
    pub fn is_expired(&self, now_ms: u64) -> bool {
        matches!(self.expires_at, Some(exp) if exp <= now_ms)
    }

    /// An owned copy.
    pub fn into_owned(self) -> Header<'static> {
        Header {
            codec: self.codec,
            type_name: Cow::Owned(self.type_name.into_owned()),
            version: self.version,
            expires_at: self.expires_at,
            key_id: self.key_id.map(|k| Cow::Owned(k.into_owned())),
        }
    }

    /// The compact copy stored as KV metadata, so `list` can report versions and expiries
    /// without reading values: `{"t":"session","v":3,"c":"json","e":1764000000000}`, plus
    /// `"k":"<key id>"` for a sealed value.
    pub fn to_metadata(&self) -> String {
        // Serializing a struct of plain fields to a String cannot fail.
        serde_json::to_string(&self.metadata()).unwrap_or_default()
    }

    /// The metadata form of the header, for writers that add keys of their own next to it
    /// (the cache's timing: `#[serde(flatten)]`), so the four keys are defined once.
    pub(crate) fn metadata(&self) -> Metadata<'_> {
        Metadata {
            t: Cow::Borrowed(&self.type_name),
            v: self.version,
            c: self.codec,
            e: self.expires_at,
            k: self.key_id.as_deref().map(Cow::Borrowed),
        }
    }

    /// Parse the metadata written by [`Header::to_metadata`]. `None` when it is not ours.
    pub fn from_metadata(meta: &str) -> Option<Header<'static>> {
        let m: Metadata<'_> = serde_json::from_str(meta).ok()?;
        Some(Header {
            codec: m.c,
            type_name: Cow::Owned(m.t.into_owned()),
            version: m.v,
            expires_at: m.e,
            key_id: m.k.map(|k| Cow::Owned(k.into_owned())),
        })
    }
}

/// KV metadata form of the header (short keys: metadata is limited to 1024 bytes). Its
/// JSON Schema (`schemas/metadata.schema.json`) is derived from it.
#[derive(Serialize, Deserialize, schemars::JsonSchema)]
#[schemars(
    title = "KvMetadata",
    description = "The KV metadata kv-envelope writes next to every value: a compact copy of the envelope header, so `list` reports types, versions and expiries without reading values. Workers KV limits metadata to 1024 bytes of serialized JSON. Unknown keys are ignored."
)]
pub(crate) struct Metadata<'a> {
    /// Stable type name (the envelope's `type`).
    #[serde(borrow)]
    t: Cow<'a, str>,
    /// Schema version of the value (the envelope's `v`).
    v: u32,
    /// Codec of the value.
    #[schemars(schema_with = "codec_schema")]
    c: Codec,
    /// Absolute expiry in ms since the Unix epoch (envelope `exp`); absent or null: never expires.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    e: Option<u64>,
    /// Key id of a sealed value (its payload is encrypted); absent: the value is in clear.
    #[serde(default, skip_serializing_if = "Option::is_none", borrow)]
    #[schemars(length(min = 1, max = 32))]
    k: Option<Cow<'a, str>>,
}

/// The codec names, as [`Codec`] serializes them.
fn codec_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "type": "string",
        "enum": [Codec::Json.as_str(), Codec::Postcard.as_str()]
    })
}

/// The payload bytes of an envelope, still in their codec.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Payload<'a> {
    /// JSON text of the `data` field.
    Json(&'a [u8]),
    /// postcard bytes.
    Postcard(&'a [u8]),
    /// An encrypted payload; [`seal::KeyRing::open`](crate::seal::KeyRing::open) turns it into
    /// one of the other two.
    Sealed(SealedPayload<'a>),
}

impl Payload<'_> {
    /// The codec of the payload (of the plaintext, for a sealed one).
    pub fn codec(&self) -> Codec {
        match self {
            Payload::Json(_) => Codec::Json,
            Payload::Postcard(_) => Codec::Postcard,
            Payload::Sealed(s) => s.codec,
        }
    }
}

/// The parts of a sealed frame after its header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SealedPayload<'a> {
    /// Codec of the plaintext.
    pub codec: Codec,
    /// The key id from the header.
    pub key_id: &'a str,
    /// The frame's bytes up to the nonce (magic, format, tag, header): authenticated with it.
    pub header_bytes: &'a [u8],
    /// The nonce.
    pub nonce: &'a [u8; NONCE_LEN],
    /// Ciphertext followed by the 16-byte tag.
    pub ciphertext: &'a [u8],
}

/// A decoded envelope frame: the header and the undecoded payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawEnvelope<'a> {
    /// The header.
    pub header: Header<'a>,
    /// The payload, still encoded.
    pub payload: Payload<'a>,
}

fn envelope_err(codec: Codec, reason: impl Into<String>) -> Error {
    Error::Envelope {
        codec,
        reason: reason.into(),
    }
}

/// Read only the header. For values written by this crate this never looks at the payload
/// (a few tens of nanoseconds); JSON written by others in another key order takes a full scan.
pub fn peek_header(bytes: &[u8]) -> Result<Header<'_>> {
    match first_byte(bytes)? {
        FRAME_MAGIC => decode_frame(bytes).map(|e| e.header),
        SEALED_MAGIC => decode_sealed(bytes).map(|e| e.header),
        b'{' => match json_fast(bytes) {
            Some((header, _)) => Ok(header),
            None => json_slow(bytes).map(|e| e.header),
        },
        tag => Err(Error::UnknownCodec { tag }),
    }
}

/// Split an envelope into header and payload, checking the frame but not decoding the payload.
pub fn decode(bytes: &[u8]) -> Result<RawEnvelope<'_>> {
    match first_byte(bytes)? {
        FRAME_MAGIC => decode_frame(bytes),
        SEALED_MAGIC => decode_sealed(bytes),
        b'{' => match json_fast(bytes) {
            Some((header, payload)) => Ok(RawEnvelope {
                header,
                payload: Payload::Json(payload),
            }),
            None => json_slow(bytes),
        },
        tag => Err(Error::UnknownCodec { tag }),
    }
}

/// Re-read a JSON envelope with the tolerant parser. Used when the fast path produced a payload
/// slice that does not parse (e.g. unknown keys after `data`).
pub(crate) fn decode_json_tolerant(bytes: &[u8]) -> Result<RawEnvelope<'_>> {
    json_slow(bytes)
}

fn first_byte(bytes: &[u8]) -> Result<u8> {
    // JSON written by other tools may start with whitespace.
    let skipped = bytes
        .iter()
        .position(|b| !matches!(b, b' ' | b'\n' | b'\r' | b'\t'));
    match skipped {
        None if bytes.is_empty() => Err(envelope_err(Codec::Json, "empty value")),
        None => Err(envelope_err(Codec::Json, "value is only whitespace")),
        Some(0) => Ok(bytes[0]),
        Some(i) if bytes[i] == b'{' => Ok(b'{'),
        Some(i) => Err(Error::UnknownCodec { tag: bytes[i] }),
    }
}

fn decode_frame(bytes: &[u8]) -> Result<RawEnvelope<'_>> {
    let codec = Codec::Postcard;
    if bytes.len() < 3 {
        return Err(envelope_err(
            codec,
            "frame shorter than its 3-byte preamble",
        ));
    }
    if bytes[1] != FRAME_FORMAT {
        return Err(envelope_err(
            codec,
            format!("unsupported frame format {}", bytes[1]),
        ));
    }
    if bytes[2] != TAG_POSTCARD {
        return Err(Error::UnknownCodec { tag: bytes[2] });
    }
    let ((type_name, version, expires_at), body) =
        postcard::take_from_bytes::<(&str, u32, Option<u64>)>(&bytes[3..])
            .map_err(|e| envelope_err(codec, format!("header: {}", describe_postcard_error(&e))))?;
    Ok(RawEnvelope {
        header: Header {
            codec,
            type_name: Cow::Borrowed(type_name),
            version,
            expires_at,
            key_id: None,
        },
        payload: Payload::Postcard(body),
    })
}

fn decode_sealed(bytes: &[u8]) -> Result<RawEnvelope<'_>> {
    let err = |reason: String| Error::Envelope {
        codec: Codec::Postcard,
        reason: format!("sealed frame: {reason}"),
    };
    if bytes.len() < 3 {
        return Err(err("shorter than its 3-byte preamble".into()));
    }
    if bytes[1] != SEALED_FORMAT {
        return Err(err(format!("unsupported format {}", bytes[1])));
    }
    let codec = match bytes[2] {
        TAG_JSON => Codec::Json,
        TAG_POSTCARD => Codec::Postcard,
        tag => return Err(Error::UnknownCodec { tag }),
    };
    let ((type_name, version, expires_at, key_id), rest) =
        postcard::take_from_bytes::<(&str, u32, Option<u64>, &str)>(&bytes[3..])
            .map_err(|e| err(format!("header: {}", describe_postcard_error(&e))))?;
    if !valid_key_id(key_id) {
        return Err(err("key id is not 1 to 32 of [A-Za-z0-9_]".into()));
    }
    let header_len = bytes.len() - rest.len();
    let (nonce, ciphertext) = rest
        .split_first_chunk::<NONCE_LEN>()
        .ok_or_else(|| err("truncated nonce".into()))?;
    if ciphertext.len() < AUTH_TAG_LEN {
        return Err(err("shorter than its authentication tag".into()));
    }
    Ok(RawEnvelope {
        header: Header {
            codec,
            type_name: Cow::Borrowed(type_name),
            version,
            expires_at,
            key_id: Some(Cow::Borrowed(key_id)),
        },
        payload: Payload::Sealed(SealedPayload {
            codec,
            key_id,
            header_bytes: &bytes[..header_len],
            nonce,
            ciphertext,
        }),
    })
}

/// A key id a sealed frame may carry: 1 to [`MAX_KEY_ID_LEN`] of `[A-Za-z0-9_]` (so it can
/// name a Worker secret, `<PREFIX>_KEY_<id>`).
pub(crate) fn valid_key_id(id: &str) -> bool {
    (1..=MAX_KEY_ID_LEN).contains(&id.len())
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// The readable part of a sealed frame: preamble and header, which the AEAD authenticates.
/// The nonce and the ciphertext follow it.
pub(crate) fn sealed_header(
    codec: Codec,
    type_name: &str,
    version: u32,
    expires_at: Option<u64>,
    key_id: &str,
) -> Result<Vec<u8>> {
    let tag = match codec {
        Codec::Json => TAG_JSON,
        Codec::Postcard => TAG_POSTCARD,
    };
    let mut out = Vec::with_capacity(48 + type_name.len());
    out.extend_from_slice(&[SEALED_MAGIC, SEALED_FORMAT, tag]);
    postcard::to_extend(&(type_name, version, expires_at, key_id), out).map_err(|e| Error::Encode {
        type_name: "sealed frame",
        reason: describe_postcard_error(&e),
    })
}

/// A value's payload alone, in `codec` (the plaintext of a sealed frame).
pub(crate) fn encode_payload<T: Serialize + ?Sized>(
    codec: Codec,
    type_name: &'static str,
    value: &T,
) -> Result<Vec<u8>> {
    let encode_err = |reason: String| Error::Encode { type_name, reason };
    match codec {
        Codec::Json => serde_json::to_vec(value).map_err(|e| encode_err(describe_json_error(&e))),
        Codec::Postcard => {
            postcard::to_allocvec(value).map_err(|e| encode_err(describe_postcard_error(&e)))
        }
    }
}

/// Fast path for the canonical layout this crate writes. `None` means "not canonical", and
/// the caller falls back to the tolerant parser (which also produces the precise error).
fn json_fast(bytes: &[u8]) -> Option<(Header<'_>, &[u8])> {
    let rest = bytes.strip_prefix(b"{\"kv\":1,\"type\":\"")?;
    let end = rest.iter().position(|&b| b == b'"' || b == b'\\')?;
    if rest[end] != b'"' {
        return None;
    }
    let type_name = std::str::from_utf8(&rest[..end]).ok()?;
    let rest = rest[end + 1..].strip_prefix(b",\"v\":")?;
    let (version, rest) = take_u64(rest)?;
    let version = u32::try_from(version).ok()?;
    let rest = rest.strip_prefix(b",\"exp\":")?;
    let (expires_at, rest) = if let Some(r) = rest.strip_prefix(b"null") {
        (None, r)
    } else {
        let (e, r) = take_u64(rest)?;
        (Some(e), r)
    };
    let rest = rest.strip_prefix(b",\"data\":")?;
    let trimmed = rest.trim_ascii_end();
    let payload = trimmed.strip_suffix(b"}")?;
    if payload.is_empty() {
        return None;
    }
    Some((
        Header {
            codec: Codec::Json,
            type_name: Cow::Borrowed(type_name),
            version,
            expires_at,
            key_id: None,
        },
        payload,
    ))
}

fn take_u64(bytes: &[u8]) -> Option<(u64, &[u8])> {
    // One pass: count and accumulate together (overflow past u64 is `None`).
    let mut n: u64 = 0;
    let mut digits = 0;
    while let Some(&b) = bytes.get(digits) {
        let d = b.wrapping_sub(b'0');
        if d > 9 {
            break;
        }
        n = n.checked_mul(10)?.checked_add(u64::from(d))?;
        digits += 1;
    }
    if digits == 0 || (digits > 1 && bytes[0] == b'0') {
        return None;
    }
    Some((n, &bytes[digits..]))
}

/// Append `n` in decimal without allocating.
fn push_u64(out: &mut Vec<u8>, mut n: u64) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&buf[i..]);
}

#[derive(Deserialize)]
struct JsonFrame<'a> {
    kv: u64,
    #[serde(rename = "type", borrow)]
    type_name: Cow<'a, str>,
    v: u32,
    #[serde(default)]
    exp: Option<u64>,
    #[serde(borrow)]
    data: &'a serde_json::value::RawValue,
}

fn json_slow(bytes: &[u8]) -> Result<RawEnvelope<'_>> {
    let frame: JsonFrame<'_> = serde_json::from_slice(bytes)
        .map_err(|e| envelope_err(Codec::Json, describe_json_error(&e)))?;
    if frame.kv != JSON_FORMAT {
        return Err(envelope_err(
            Codec::Json,
            format!("unsupported envelope format kv={}", frame.kv),
        ));
    }
    Ok(RawEnvelope {
        header: Header {
            codec: Codec::Json,
            type_name: frame.type_name,
            version: frame.v,
            expires_at: frame.exp,
            key_id: None,
        },
        payload: Payload::Json(frame.data.get().as_bytes()),
    })
}

/// Encode `value` in an envelope with the given header fields.
pub fn encode<T: Serialize + ?Sized>(
    codec: Codec,
    type_name: &'static str,
    version: u32,
    expires_at: Option<u64>,
    value: &T,
) -> Result<Vec<u8>> {
    let encode_err = |reason: String| Error::Encode { type_name, reason };
    match codec {
        Codec::Json => {
            // Room for the header and a small payload: one allocation for a session.
            let mut out = Vec::with_capacity(64 + type_name.len() + 256);
            out.extend_from_slice(b"{\"kv\":1,\"type\":");
            serde_json::to_writer(&mut out, type_name)
                .map_err(|e| encode_err(describe_json_error(&e)))?;
            out.extend_from_slice(b",\"v\":");
            push_u64(&mut out, u64::from(version));
            out.extend_from_slice(b",\"exp\":");
            match expires_at {
                Some(e) => push_u64(&mut out, e),
                None => out.extend_from_slice(b"null"),
            }
            out.extend_from_slice(b",\"data\":");
            serde_json::to_writer(&mut out, value)
                .map_err(|e| encode_err(describe_json_error(&e)))?;
            out.push(b'}');
            Ok(out)
        }
        Codec::Postcard => {
            let mut out = Vec::with_capacity(64);
            out.extend_from_slice(&[FRAME_MAGIC, FRAME_FORMAT, TAG_POSTCARD]);
            let out = postcard::to_extend(&(type_name, version, expires_at), out)
                .map_err(|e| encode_err(describe_postcard_error(&e)))?;
            postcard::to_extend(value, out).map_err(|e| encode_err(describe_postcard_error(&e)))
        }
    }
}
