//! The per-user session index behind "log out everywhere".
//!
//! The index is a set of small envelope values, one per session, under
//! `<index prefix>:<sha256(user id)>:<sha256(session id)>`, rather than one list value per
//! user. KV has no compare-and-swap and allows one write per second per key, so a single list
//! rewritten on every login would lose entries when two logins of one user race (each reads
//! the old list, the last write wins) and would hit 429s on bursts of logins. One key per
//! session is written once, at creation, never contended; a `list` of the user's prefix finds
//! every session, and KV's own expiration (the session's absolute cap) prunes entries, which
//! reads also skip by their envelope expiry.
//!
//! The entry is also a session's liveness mark: logout, rotation and "log out everywhere"
//! delete it before the session, and every write-back checks it after writing (so a refresh
//! that raced a logout undoes itself). The store's operations on the index are in
//! `sessions/logout.rs` and `sessions/write_back.rs`.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// One entry of a user's session index. The session it points to is in the key, hashed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SessionIndexEntry {
    /// When the session was created (ms since the epoch).
    pub created_at: u64,
    /// The session's absolute cap: past it the entry is dead and KV deletes it.
    pub absolute_expires_at: u64,
}

crate::versioned! {
    name: "session-index",
    versions: [SessionIndexEntry],
}
