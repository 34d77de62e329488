//! tower-sessions on Workers KV (feature `tower-sessions`): [`KvSessionStore`], a
//! `tower_sessions::SessionStore` for axum and tower apps, with tower-sessions' `Record` kept
//! as a versioned, validated envelope value ([`TowerSessionRecord`]) under the hash of the
//! session id.
//!
//! * `record` — the stored form and its schema (`schemas/tower-session.*`), compiled with
//!   every feature set so the shipped schemas do not depend on one.
//! * `store` — the `SessionStore` implementation: hashed keys, KV expiry, create without
//!   overwriting, bad records as fresh sessions, the `Send` boundary on wasm32.
//! * `budget` — [`SaveBudget`]: skipping saves that only slide the expiry.
//! * `pacing` — KV's one write per second per key, absorbed for tower-sessions' write pattern.
//! * `convert`, `error` — `Record` to the stored form and back; kv-envelope errors as
//!   tower-sessions' errors, without ids or values.
//! * `typed` — [`get_or_flush`]: a typed read where data that no longer fits the app's type
//!   is no session, never a 5xx or a logged value.
//!
//! See `docs/axum.md` for wiring it into tower-sessions' `SessionManagerLayer` on workers-rs,
//! and for when to use the crate's own typed [`Sessions`](crate::session::Sessions) instead.

#[cfg(all(
    feature = "tower-sessions",
    target_arch = "wasm32",
    not(feature = "worker")
))]
compile_error!(
    "feature `tower-sessions` on wasm32 needs feature `worker` too: tower requires `Send` \
     futures, which only the worker crate's send wrappers give Workers' futures"
);

#[cfg(feature = "tower-sessions")]
mod budget;
#[cfg(feature = "tower-sessions")]
mod convert;
#[cfg(feature = "tower-sessions")]
mod error;
#[cfg(feature = "tower-sessions")]
mod pacing;
mod record;
#[cfg(feature = "tower-sessions")]
mod store;
#[cfg(feature = "tower-sessions")]
mod typed;

#[cfg(feature = "tower-sessions")]
#[cfg_attr(docsrs, doc(cfg(feature = "tower-sessions")))]
pub use budget::SaveBudget;
pub use record::{TowerSessionRecord, TowerSessionRecordV1};
#[cfg(feature = "tower-sessions")]
#[cfg_attr(docsrs, doc(cfg(feature = "tower-sessions")))]
pub use store::KvSessionStore;
#[cfg(feature = "tower-sessions")]
#[cfg_attr(docsrs, doc(cfg(feature = "tower-sessions")))]
pub use typed::get_or_flush;
