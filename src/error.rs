//! The one error type of the crate.
//!
//! Every variant is something a caller can act on. No variant ever carries a payload value, a
//! session token or a raw key from a request: messages are built from positions, lengths, JSON
//! paths and names that come from our own schemas.

pub use kv_envelope_validator::ValidationIssue;

use crate::codec::Codec;

/// Result alias used throughout the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong reading or writing an envelope value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The KV backend failed (network, runtime, quota). `retryable` is a hint.
    #[error("kv backend error during {op}: {message}")]
    Backend {
        /// The operation that failed (`get`, `put`, `delete`, `list`).
        op: &'static str,
        /// Backend message (never contains the value written).
        message: String,
        /// Whether retrying later may succeed.
        retryable: bool,
    },
    /// KV refused a write because the key was written less than a second ago (HTTP 429).
    #[error("kv rate limit: more than one write per second to the same key")]
    RateLimited,
    /// A conditional write found the key changed since it was read (another writer came
    /// first, on a backend with [`Consistency::Linearizable`](crate::backend::Consistency)):
    /// nothing was written. Read again and retry.
    #[error("conflict during {op}: the value changed since it was read; nothing was written")]
    Conflict {
        /// The operation that lost the race.
        op: &'static str,
    },
    /// A KV limit would be exceeded; the call was refused before reaching KV.
    #[error("kv limit exceeded: {0}")]
    Limit(#[from] LimitError),
    /// The bytes start with no known envelope marker.
    #[error("unknown codec: first byte 0x{tag:02x} is not a known envelope marker")]
    UnknownCodec {
        /// The byte that was found.
        tag: u8,
    },
    /// The envelope frame or header is malformed (truncated, wrong magic, bad field).
    #[error("malformed {codec} envelope: {reason}")]
    Envelope {
        /// Codec the bytes were recognised as.
        codec: Codec,
        /// What is wrong, without echoing bytes.
        reason: String,
    },
    /// The payload could not be decoded into the type of its declared version.
    #[error("{codec} payload of {type_name} v{version} does not decode: {reason}")]
    Codec {
        /// Codec of the envelope.
        codec: Codec,
        /// Stable type name.
        type_name: &'static str,
        /// Version the value declares.
        version: u32,
        /// Category and position of the failure (never the offending value).
        reason: String,
    },
    /// The envelope holds a value of another type (key collision or wrong store).
    #[error("envelope holds type {found:?}, expected {expected:?}")]
    TypeMismatch {
        /// Type name the store expects.
        expected: &'static str,
        /// Type name found in the envelope (truncated to 64 bytes).
        found: String,
    },
    /// Version 0 or another version the chain does not define.
    #[error("{type_name} has no schema version {version}")]
    UnknownVersion {
        /// Stable type name.
        type_name: &'static str,
        /// The version found.
        version: u32,
    },
    /// The value was written by newer code. It is never overwritten.
    #[error("{type_name} value has schema version {found}, newer than this code's {known}")]
    FutureVersion {
        /// Stable type name.
        type_name: &'static str,
        /// Version found in the envelope.
        found: u32,
        /// Newest version this code knows.
        known: u32,
    },
    /// The payload does not match the JSON Schema of its declared version.
    #[error("{type_name} v{version} fails its schema: {}", summarize(.issues))]
    Validation {
        /// Stable type name.
        type_name: &'static str,
        /// Version the payload was validated against.
        version: u32,
        /// One entry per violation (at most 16 kept).
        issues: Vec<ValidationIssue>,
    },
    /// A value about to be written fails the JSON Schema of its type's current version (what
    /// every read would check): nothing was written. Most often the value carries a client's
    /// input the app did not check (a too-long or malformed email), so it maps to 422.
    #[error("{type_name} v{version} value to write fails its schema: {}", summarize(.issues))]
    InvalidValue {
        /// Stable type name.
        type_name: &'static str,
        /// The current version, whose schema refused the value.
        version: u32,
        /// One entry per violation (at most 16 kept).
        issues: Vec<ValidationIssue>,
    },
    /// A migration step refused the old value.
    #[error("migrating {type_name} from v{from} to v{to} failed: {reason}")]
    Migration {
        /// Stable type name.
        type_name: &'static str,
        /// Source version of the failed step.
        from: u32,
        /// Target version of the failed step.
        to: u32,
        /// The step's error message.
        reason: String,
    },
    /// A value could not be encoded (should not happen for well-formed types).
    #[error("encoding {type_name} failed: {reason}")]
    Encode {
        /// Stable type name.
        type_name: &'static str,
        /// Category of the failure.
        reason: String,
    },
    /// A sealed value could not be opened, or a store that requires sealing found a clear
    /// value. Never overwritten (a rotation mistake must lose nothing), except a clear value
    /// under [`Overwrite::AllowCorrupt`](crate::Overwrite::AllowCorrupt).
    #[error("{type_name}: {reason}")]
    Sealed {
        /// Stable type name the store reads.
        type_name: &'static str,
        /// What went wrong.
        reason: SealError,
    },
    /// A cache namespace's generation record is stored but this code cannot use it (corrupt,
    /// of another type, or written by newer code: `cause` is that error's
    /// [`kind`](Error::kind)). Until it is readable again the cache is bypassed — reads miss,
    /// computations are served without being cached — and nothing overwrites the record
    /// (a newer deploy may own it): [`invalidate`](crate::cache::KvCache::invalidate),
    /// [`invalidate_namespace`](crate::cache::KvCache::invalidate_namespace) and
    /// [`put`](crate::cache::KvCache::put) return this error.
    #[error("cache namespace {namespace:?} is bypassed: its generation record is unusable by this code ({cause}) and is left as it is")]
    CacheBypassed {
        /// The cache namespace (a name from code, not from a request).
        namespace: String,
        /// Why the record is unusable: the [`Error::kind`] of its decoding error.
        cause: &'static str,
    },
    /// What was asked needs what this backend cannot give: one-time tokens consumed exactly
    /// once need a conditional write (Durable Objects), which Workers KV does not have. A
    /// setup error, found when the store is made.
    #[error("{what}")]
    Unsupported {
        /// What is missing, in words from code.
        what: &'static str,
    },
    /// A JSON Schema could not be compiled (a bug in a type's schema, found at warm-up).
    #[error("schema of {type_name} v{version} does not compile: {reason}")]
    Schema {
        /// Stable type name.
        type_name: &'static str,
        /// Version.
        version: u32,
        /// Compiler message.
        reason: String,
    },
}

impl Error {
    /// True when the stored bytes are unusable by this code (corrupt, invalid, other type):
    /// a cache treats these as a miss. [`Error::FutureVersion`] is *not* corrupt: it is valid
    /// data this code is too old to read, and it must never be overwritten.
    pub fn is_corrupt(&self) -> bool {
        matches!(
            self,
            Error::UnknownCodec { .. }
                | Error::Envelope { .. }
                | Error::Codec { .. }
                | Error::TypeMismatch { .. }
                | Error::UnknownVersion { .. }
                | Error::Validation { .. }
                | Error::Migration { .. }
                | Error::Sealed {
                    reason: SealError::NotSealed,
                    ..
                }
        )
    }

    /// True when the stored value must not be overwritten by this code: it is newer, or it
    /// could not be decoded (a human should look at it; see the crate's "never lose data" rule).
    pub fn protects_stored_value(&self) -> bool {
        matches!(
            self,
            Error::FutureVersion { .. } | Error::Sealed { .. } | Error::CacheBypassed { .. }
        ) || self.is_corrupt()
    }

    /// A short stable name of the variant, for logs and metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            Error::Backend { .. } => "backend",
            Error::RateLimited => "rate_limited",
            Error::Conflict { .. } => "conflict",
            Error::Limit(_) => "limit",
            Error::UnknownCodec { .. } => "unknown_codec",
            Error::Envelope { .. } => "envelope",
            Error::Codec { .. } => "codec",
            Error::TypeMismatch { .. } => "type_mismatch",
            Error::UnknownVersion { .. } => "unknown_version",
            Error::FutureVersion { .. } => "future_version",
            Error::Validation { .. } => "validation",
            Error::InvalidValue { .. } => "invalid_value",
            Error::Migration { .. } => "migration",
            Error::Encode { .. } => "encode",
            Error::Sealed { reason, .. } => reason.kind(),
            Error::Schema { .. } => "schema",
            Error::CacheBypassed { .. } => "cache_bypassed",
            Error::Unsupported { .. } => "unsupported",
        }
    }
}

/// The HTTP answer to each error, the one mapping both front ends, the examples and
/// applications use ([`Error::http_status`]). Whose fault it is decides the class: a client's
/// input is 4xx, a stored value this code cannot use is 409 (never a 5xx: it is not an
/// outage, and retrying the same code will not help), KV pushing back or failing is 429/503,
/// and only a bug in the application's own types is 500.
///
/// | errors | status | `Retry-After` |
/// |---|---|---|
/// | [`Backend`](Error::Backend) | 503 Service Unavailable | 5 |
/// | [`RateLimited`](Error::RateLimited) | 429 Too Many Requests | 1 |
/// | [`Conflict`](Error::Conflict) | 409 Conflict | 1 |
/// | [`Limit`](Error::Limit): a key that is empty, reserved or too long | 400 Bad Request | |
/// | [`Limit`](Error::Limit): a value or metadata too large | 413 Content Too Large | |
/// | [`Limit`](Error::Limit): an expiry already past or out of range | 422 Unprocessable Content | |
/// | [`InvalidValue`](Error::InvalidValue) | 422 Unprocessable Content | |
/// | stored values: [`UnknownCodec`](Error::UnknownCodec), [`Envelope`](Error::Envelope), [`Codec`](Error::Codec), [`TypeMismatch`](Error::TypeMismatch), [`UnknownVersion`](Error::UnknownVersion), [`FutureVersion`](Error::FutureVersion), [`Validation`](Error::Validation), [`Migration`](Error::Migration), [`Sealed`](Error::Sealed), [`CacheBypassed`](Error::CacheBypassed) | 409 Conflict | |
/// | [`Encode`](Error::Encode), [`Schema`](Error::Schema) | 500 Internal Server Error | |
impl Error {
    /// The HTTP status this error deserves when it ends a request (see the table above).
    pub fn http_status(&self) -> u16 {
        match self {
            Error::Backend { .. } => 503,
            Error::RateLimited => 429,
            Error::Conflict { .. } => 409,
            Error::Limit(limit) => match limit {
                LimitError::EmptyKey | LimitError::ReservedKey | LimitError::KeyTooLong { .. } => {
                    400
                }
                LimitError::ValueTooLarge { .. } | LimitError::MetadataTooLarge { .. } => 413,
                LimitError::AlreadyExpired | LimitError::ExpiryOutOfRange { .. } => 422,
            },
            Error::InvalidValue { .. } => 422,
            Error::UnknownCodec { .. }
            | Error::Envelope { .. }
            | Error::Codec { .. }
            | Error::TypeMismatch { .. }
            | Error::UnknownVersion { .. }
            | Error::FutureVersion { .. }
            | Error::Validation { .. }
            | Error::Migration { .. }
            | Error::Sealed { .. }
            | Error::CacheBypassed { .. } => 409,
            Error::Encode { .. } | Error::Schema { .. } | Error::Unsupported { .. } => 500,
        }
    }

    /// Seconds a client should wait before retrying, for the errors a retry can cure (KV's
    /// write limit, an outage, a lost race); `None` otherwise.
    pub fn retry_after_secs(&self) -> Option<u32> {
        retry_after_of_kind(self.kind())
    }

    /// The JSON body of the answer to this error: `{"error": <kind>, "message": <public
    /// message>}` ([`kind`](Self::kind), [`public_message`](Self::public_message)).
    pub(crate) fn response_body(&self) -> String {
        serde_json::json!({ "error": self.kind(), "message": self.public_message() }).to_string()
    }

    /// A message safe to show a client: the error's text for a 4xx (it never carries a
    /// value, a key or an id), a generic sentence for a 5xx (whose details belong in the
    /// server's log).
    pub fn public_message(&self) -> String {
        match self.http_status() {
            503 => "the key-value store is unavailable; retry".to_string(),
            500 => "internal error".to_string(),
            _ => self.to_string(),
        }
    }
}

/// `Retry-After` (seconds) for an error of `kind`, where waiting can help: a 429 or a lost race
/// in a second, a KV outage in five. By kind, so an answer rebuilt from a `worker::Error`
/// (`session::middleware::error_response`) gets the same header.
pub(crate) fn retry_after_of_kind(kind: &str) -> Option<u32> {
    match kind {
        "rate_limited" | "conflict" => Some(1),
        "backend" => Some(5),
        _ => None,
    }
}

/// `?` on a kv-envelope call in a workers-rs handler: the error becomes `worker::Error::Json`
/// carrying the crate's answer to it — the JSON body `{"error": <kind>, "message": <public
/// message>}` and the status of [`Error::http_status`] — so nothing in it quotes a value, a key
/// or an id. workers-rs answers any `Err` from a fetch handler with a 500; answer it with its
/// own status through `session::middleware::error_response`. A 5xx's details (never a value
/// either) go to the Worker's log here, since the public message leaves them out.
#[cfg(all(feature = "worker", target_arch = "wasm32"))]
impl From<Error> for worker::Error {
    fn from(error: Error) -> Self {
        let status = error.http_status();
        if status >= 500 {
            worker::console_error!("kv-envelope: {error}");
        }
        worker::Error::Json((error.response_body(), status))
    }
}

fn summarize(issues: &[ValidationIssue]) -> String {
    let mut out = String::new();
    for (i, issue) in issues.iter().enumerate() {
        if i > 0 {
            out.push_str("; ");
        }
        out.push_str(&issue.to_string());
    }
    out
}

/// Why a sealed value was not opened. Names key ids (public labels), never key material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SealError {
    /// The value is sealed and the store has no key ring.
    #[error("value is sealed and this store has no key ring")]
    NoKeyRing,
    /// The value is sealed with a key id the ring does not hold (retired too early, or not
    /// deployed yet). It is kept as it is.
    #[error("value is sealed with key id {key_id:?}, which the key ring does not hold")]
    UnknownKey {
        /// The key id from the header.
        key_id: String,
    },
    /// Authentication failed: the header or payload was changed, the value was copied from
    /// another key, or the key behind this id is not the one it was sealed with.
    #[error("sealed value with key id {key_id:?} does not open (changed, moved, or another key under that id)")]
    Unopenable {
        /// The key id from the header.
        key_id: String,
    },
    /// The store requires sealed values and found one in clear.
    #[error("value is in clear and this store requires sealed values")]
    NotSealed,
}

impl SealError {
    /// A short stable name, for logs and metrics (`Error::kind` of [`Error::Sealed`]).
    pub fn kind(&self) -> &'static str {
        match self {
            SealError::NoKeyRing => "sealed_no_key_ring",
            SealError::UnknownKey { .. } => "sealed_unknown_key",
            SealError::Unopenable { .. } => "sealed_unopenable",
            SealError::NotSealed => "not_sealed",
        }
    }
}

/// A Workers KV limit that a call would exceed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LimitError {
    /// Keys must not be empty.
    #[error("key is empty")]
    EmptyKey,
    /// `.` and `..` are not allowed as keys.
    #[error("key must not be \".\" or \"..\"")]
    ReservedKey,
    /// Keys are at most 512 bytes.
    #[error("key is {len} bytes, the limit is {max}")]
    KeyTooLong {
        /// Key length in bytes.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// Values are at most 25 MiB.
    #[error("value is {len} bytes, the limit is {max}")]
    ValueTooLarge {
        /// Value length in bytes.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// Metadata is at most 1024 bytes of serialized JSON.
    #[error("metadata is {len} bytes, the limit is {max}")]
    MetadataTooLarge {
        /// Serialized metadata length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The expiration is already in the past: writing it would be a no-op delete.
    #[error("expiration is in the past")]
    AlreadyExpired,
    /// The expiry is past the largest exact JavaScript integer (2^53 − 1 ms): the Workers runtime cannot hand it to KV and JavaScript readers cannot read it
    /// exactly. Refused before any I/O.
    #[error("expiry {expires_at_ms} ms is past the largest representable {max} ms")]
    ExpiryOutOfRange {
        /// The expiry asked for (a time, not a stored value).
        expires_at_ms: u64,
        /// The limit.
        max: u64,
    },
}

/// Describe a serde_json error by category and position only: serde_json's own messages can
/// quote the offending value (`invalid type: string "hunter2"`), which may be a secret.
pub fn describe_json_error(e: &serde_json::Error) -> String {
    use serde_json::error::Category;
    let what = match e.classify() {
        Category::Io => "i/o error",
        Category::Syntax => "syntax error",
        Category::Data => "value does not fit the type",
        Category::Eof => "unexpected end of input",
    };
    if e.line() == 0 {
        what.to_string()
    } else {
        format!("{what} at line {} column {}", e.line(), e.column())
    }
}

/// Describe a postcard error. postcard's messages never quote input bytes.
pub(crate) fn describe_postcard_error(e: &postcard::Error) -> String {
    e.to_string()
}
