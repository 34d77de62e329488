//! Typed sessions for axum (feature `axum`): the crate's own [`Sessions<D>`] behind a tower
//! layer and an extractor, so an axum app (on workers-rs or natively) gets typed, versioned
//! session data — hashed ids, idle and absolute lifetime, the budgeted refresh, the typed
//! [`NoSession`] reasons — instead of a string map.
//!
//! Every decision is the workers-rs gate's ([`SessionGate`]): which cookie counts, 302 to the
//! login page for pages and 401 JSON for APIs, 503 when KV fails, which `Set-Cookie` rides on
//! the response. This module only moves `http` types in and out (one implementation of the
//! rules, two front ends).
//!
//! * `layer` — [`TypedSessionLayer`]: resolves the session before the handler, settles the
//!   refresh after it.
//! * `extract` — [`TypedSession`] (rejects with the gate's response) and
//!   `Option<TypedSession>` (for pages that work without a session).
//! * `http_parts` — request parts in, [`PlainResponse`](crate::session::PlainResponse) out.
//! * `origin` — [`SameOriginLayer`]: state-changing requests from other origins refused.
//! * `error` — the crate's [`Error`](crate::Error) as a response (`IntoResponse`), by its one
//!   status mapping.
//!
//! [`Sessions<D>`]: crate::session::Sessions
//! [`NoSession`]: crate::session::NoSession
//! [`SessionGate`]: crate::session::SessionGate

mod error;
mod extract;
mod http_parts;
mod layer;
mod origin;

pub use extract::{SessionState, TypedSession, TypedSessionRejection};
pub use http_parts::to_http_response;
pub use layer::{TypedSessionLayer, TypedSessionService};
pub use origin::{SameOriginLayer, SameOriginService};
