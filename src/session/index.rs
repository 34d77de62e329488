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

// Version 1 of the entry, before devices. Its doc comment is its schema's description: kept as
// it was so the shipped `session-index.v1.schema.json` does not change.
/// One entry of a user's session index. The session it points to is in the key, hashed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schemars(rename = "SessionIndexEntry")]
pub struct SessionIndexEntryV1 {
    /// When the session was created (ms since the epoch).
    pub created_at: u64,
    /// The session's absolute cap: past it the entry is dead and KV deletes it.
    pub absolute_expires_at: u64,
}

/// One entry of a user's session index. The session it points to is in the key, hashed; the
/// entry also carries what a "your devices" page shows of it ([`Sessions::list_devices`]).
///
/// [`Sessions::list_devices`]: crate::session::Sessions::list_devices
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SessionIndexEntry {
    /// When the session was created (ms since the epoch).
    pub created_at: u64,
    /// The session's absolute cap: past it the entry is dead and KV deletes it.
    pub absolute_expires_at: u64,
    /// The device's opaque handle: 32 lowercase hex digits drawn at login and kept across
    /// rotations; neither the session id nor its hash, so a list of devices reaches no session.
    /// `None` for an entry from version 1 (the list then derives one from the key).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 32, max = 32))]
    pub handle: Option<String>,
    /// What the app called the device at login ("Firefox on Linux"), at most 64 characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 64))]
    pub device: Option<String>,
}

impl From<SessionIndexEntryV1> for SessionIndexEntry {
    fn from(v1: SessionIndexEntryV1) -> Self {
        SessionIndexEntry {
            created_at: v1.created_at,
            absolute_expires_at: v1.absolute_expires_at,
            handle: None,
            device: None,
        }
    }
}

crate::versioned! {
    name: "session-index",
    versions: [SessionIndexEntryV1, SessionIndexEntry],
}
