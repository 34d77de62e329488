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
pub mod clock;
mod codec;
pub mod envelope;
mod error;
pub mod export;
mod random;
pub mod schema;
pub mod seal;
mod send;
pub mod session;
pub mod store;
#[cfg(feature = "testing")]
pub mod testing;
pub mod tower_sessions;
pub mod versioned;

/// The Workers KV backend, at the root beside [`MemoryKv`] (wasm32, feature `worker`).
#[cfg(all(feature = "worker", target_arch = "wasm32"))]
#[doc(inline)]
pub use crate::backend::WorkersKv;
#[doc(inline)]
pub use crate::{
    backend::{Kv, KvBackend, MemoryKv},
    cache::{CachePolicy, Cached, KvCache},
    clock::{Clock, ManualClock, SystemClock},
    envelope::{Codec, Header, Payload},
    error::{Error, LimitError, Result, SealError, ValidationIssue},
    export::{export_schemas, shipped_schema_files},
    seal::{KeyRing, SealingKey},
    session::{SessionRecord, Sessions},
    store::{Overwrite, TypedStore},
    versioned::{decode_value, encode_value, Decoded, Versioned},
};

/// docs/axum.md's examples, compiled and run as doctests (`cargo test --doc --features
/// tower-sessions,axum`).
#[cfg(all(doctest, feature = "tower-sessions", feature = "axum"))]
#[doc = include_str!("../docs/axum.md")]
struct AxumGuide;

/// What this repository's ops CLI (`crates/kv-envelope-cli`) needs beyond the public API: KV's
/// limits, the error wording that never quotes a value, the type-erased schema of a stored value,
/// validation of a JSON value, and sealing a payload. Not public API, no stability promise.
#[doc(hidden)]
pub mod __cli {
    pub use crate::{
        backend::{check_key, MAX_METADATA_BYTES, MAX_VALUE_BYTES, MIN_EXPIRATION_SECS},
        error::describe_json_error,
        schema::{validate, whole_value_schema},
        seal::FrameFields,
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
