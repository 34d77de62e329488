//! Sessions on KV: typed, versioned session values with idle and absolute expiry, sliding
//! expiration under KV's write budget, hashed random ids, rotation, "log out everywhere", a
//! strict session cookie, and middleware for workers-rs.
//!
//! * [`Sessions`] — create / get / refresh / update / rotate / delete / delete all for a
//!   user, generic over the payload ([`SessionData`]; the shipped [`SessionRecord`] by default).
//! * [`SessionId`] — 256 random bits, one strict text form, only its SHA-256 reaches KV.
//! * [`CookieConfig`] — reading the id from a `Cookie` header and the `Set-Cookie` values.
//! * [`SessionGate`] — the middleware's decisions as plain functions (tested natively);
//!   `middleware` (wasm32 + feature `worker`) is the thin workers-rs glue.
//! * [`NoSession`] — why a request has no session; every bad input ends there.
//!
//! See `docs/sessions.md` for the defaults, the write-budget rule and the cookie rules.
//!
//! ```
//! use kv_envelope::{Kv, MemoryKv, session::{Lookup, NoSession, Sessions}};
//!
//! # futures::executor::block_on(async {
//! let store = Sessions::new(Kv::new(MemoryKv::default())); // WorkersKv on Workers
//! let (id, session) = store.create("user-42", "ada@example.com").await?;
//! // `id.expose()` goes into the cookie; KV only ever sees sha256(id).
//! assert_eq!(store.get(&id).await?, Some(session));
//! store.refresh(&id).await?; // writes at most once a day (the write budget)
//! let (new_id, _) = store.rotate(&id).await?.found().expect("rotated");
//! assert_eq!(store.lookup(&id).await?, Lookup::NoSession(NoSession::NotFound));
//! assert_eq!(store.delete_all_for_user("user-42").await?.deleted, 1); // log out everywhere
//! assert_eq!(store.get(&new_id).await?, None);
//! # Ok::<(), kv_envelope::Error>(())
//! # }).unwrap();
//! ```

mod cookie;
mod data;
mod device;
mod gate;
mod id;
mod index;
#[cfg(all(feature = "worker", target_arch = "wasm32"))]
pub mod middleware;
mod no_session;
mod origin;
mod record;
mod request;
mod response;
pub(crate) mod sessions;

pub use cookie::{CookieConfig, InvalidCookieName, SameSite};
pub use data::{SessionData, SessionInit, SessionTimes};
pub use device::{device_label, Device, DeviceHandle, Revocation};
pub use gate::{
    Admission, CurrentSession, LogoutEverywhere, NewSession, RefreshTicket, SessionGate,
};
#[cfg(feature = "axum")]
pub(crate) use request::OwnedRequestParts;
pub use request::RequestParts;
pub use response::{Denied, DenyCause, PlainResponse};
// The one hashing rule of session ids, shared with the tower-sessions adapter's keys.
#[cfg(feature = "tower-sessions")]
pub(crate) use id::hash_hex;
pub use id::{IdSource, SessionId};
pub use index::{SessionIndexEntry, SessionIndexEntryV1};
pub use no_session::NoSession;
pub use origin::{CrossOrigin, SameOrigin};
pub use record::{SessionRecord, SessionRecordV1, SessionRecordV2};
pub use sessions::{LogoutAll, Lookup, Refresh, RefreshPlan, RejectHook, Sessions};
