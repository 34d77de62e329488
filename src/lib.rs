#![doc = include_str!("../README.md")]
#![cfg_attr(docsrs, feature(doc_cfg))]
#![forbid(unsafe_code)]
#![deny(missing_docs)]

#[cfg(feature = "axum")]
#[cfg_attr(docsrs, doc(cfg(feature = "axum")))]
pub mod axum;
pub mod backend;
pub mod background;
pub mod cache;
mod clock;
mod codec;
pub mod envelope;
mod error;
pub mod export;
mod random;
pub mod schema;
mod seal;
mod send;
pub mod session;
mod store;
#[cfg(feature = "testing")]
#[cfg_attr(docsrs, doc(cfg(feature = "testing")))]
pub mod testing;
pub mod tokens;
pub mod tower_sessions;
mod versioned;

// The core at the root, each item in one place: the error, what a versioned type is and how its
// values are read and written, the typed store, time, sealing keys, and the KV handle with the
// in-memory backend (also under `backend`, beside the other backends).
#[doc(inline)]
pub use crate::{
    backend::{kv::Kv, memory::MemoryKv},
    clock::{Clock, ManualClock, SystemClock},
    codec::Codec,
    error::{Error, LimitError, Result, SealError, ValidationIssue},
    seal::{KeyError, KeyRing, SealingKey, StoredSeal},
    store::{Overwrite, TypedStore},
    versioned::{decode_value, encode_value, Decoded, Versioned},
};

/// The guides' examples, compiled and run as doctests (`cargo test --doc`): every Rust block of
/// README.md (the crate docs above) and docs/ is one, or a workers-rs block that
/// `scripts/wasm-snippets.sh` compiles for wasm32, or says why it is neither.
#[cfg(doctest)]
mod guides {
    #[doc = include_str!("../docs/axum.md")]
    struct Axum;
    #[doc = include_str!("../docs/cache.md")]
    struct Cache;
    #[doc = include_str!("../docs/cli.md")]
    struct Cli;
    #[doc = include_str!("../docs/getting-started.md")]
    struct GettingStarted;
    #[doc = include_str!("../docs/sealing.md")]
    struct Sealing;
    #[doc = include_str!("../docs/sessions.md")]
    struct Sessions;
    #[doc = include_str!("../docs/testing-with-the-simulator.md")]
    struct TestingWithTheSimulator;
    #[doc = include_str!("../docs/values.md")]
    struct Values;
}

/// What this repository's own tools and tests use beyond the public API (the ops CLI in
/// `crates/kv-envelope-cli`, the e2e seed tool, the golden and fuzz suites): KV's limits, the
/// wire format's bytes, decoding and encoding with a key ring for a given KV key, the error wording
/// that never quotes a value, the type-erased schema of a stored value, validation of a JSON value,
/// and sealing a payload. Not public API: no stability promise.
#[doc(hidden)]
pub mod __internal {
    pub use crate::{
        backend::limits::{
            bulk_text_is_exact, check_key, MAX_BULK_KEYS, MAX_EXPIRES_AT_MS, MAX_KEY_BYTES,
            MAX_METADATA_BYTES, MAX_VALUE_BYTES, MIN_EXPIRATION_SECS,
        },
        envelope::{FRAME_MAGIC, NONCE_LEN, SEALED_FORMAT, SEALED_MAGIC},
        error::describe_json_error,
        export::{schema_file_name, to_schema_file, ENVELOPE_SCHEMA_FILE, METADATA_SCHEMA_FILE},
        schema::{
            stored::{envelope_schema_file_name, whole_value_schema},
            validate,
        },
        seal::FrameFields,
        session::sessions::{DEFAULT_ABSOLUTE_LIFETIME, DEFAULT_MAX_SESSION_BYTES},
        versioned::{check_header, decode_value_in, encode_value_in},
    };

    /// Seal `plaintext` (the payload in `frame.codec`) for `kv_key` with `ring`'s primary key.
    pub fn seal(
        ring: &crate::KeyRing,
        kv_key: &str,
        frame: FrameFields<'_>,
        plaintext: Vec<u8>,
    ) -> crate::Result<Vec<u8>> {
        ring.seal(kv_key, frame, plaintext)
    }
}

/// Items used by the [`versioned!`] macro expansion. Not public API.
#[doc(hidden)]
pub mod __private {
    pub use serde_json::Value;

    pub use crate::{
        schema::{schema_of, ValidatorCell},
        versioned::steps::{decode_step, step_validator},
    };
}
