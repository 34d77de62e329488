//! The session payload shipped with the crate: the shape of the Cloudflare KV session pattern
//! (`userId`, `email`, `createdAt`, `expiresAt`), grown over three schema versions.
//!
//! * v1 — the reference pattern's shape.
//! * v2 — adds `absoluteExpiresAt`: the hard cap after which refresh no longer extends the
//!   session (migrated as `createdAt` + 30 days).
//! * v3 — adds `refreshedAt` (last sliding-expiration write, for the write budget; migrated as
//!   `createdAt`) and `roles` (empty when migrated).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::sessions::DEFAULT_ABSOLUTE_LIFETIME;

/// The absolute lifetime given to v1 values when they migrate: the store's default (30 days), in
/// ms.
#[allow(clippy::cast_possible_truncation)] // 30 days in ms fits a u64 by far.
const DEFAULT_ABSOLUTE_LIFETIME_MS: u64 = DEFAULT_ABSOLUTE_LIFETIME.as_millis() as u64;

/// Session payload, version 1 (the reference `KVSessionStore` shape). Times are ms since epoch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
// The schema keeps the name it shipped with (`schemas/session.v*.schema.json`).
#[schemars(rename = "SessionV1")]
pub struct SessionRecordV1 {
    /// Application user id.
    #[schemars(length(min = 1, max = 256))]
    pub user_id: String,
    /// User email.
    #[schemars(email, length(max = 320))]
    pub email: String,
    /// Creation time.
    pub created_at: u64,
    /// Idle expiry.
    pub expires_at: u64,
}

/// Session payload, version 2: adds the absolute lifetime cap.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
// The schema keeps the name it shipped with (`schemas/session.v*.schema.json`).
#[schemars(rename = "SessionV2")]
pub struct SessionRecordV2 {
    /// Application user id.
    #[schemars(length(min = 1, max = 256))]
    pub user_id: String,
    /// User email.
    #[schemars(email, length(max = 320))]
    pub email: String,
    /// Creation time.
    pub created_at: u64,
    /// Idle expiry (sliding).
    pub expires_at: u64,
    /// Hard cap: the session ends here whatever the activity.
    pub absolute_expires_at: u64,
}

/// Session payload, version 3 (current).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
// The schema keeps the name it shipped with (`schemas/session.v*.schema.json`).
#[schemars(rename = "Session")]
pub struct SessionRecord {
    /// Application user id.
    #[schemars(length(min = 1, max = 256))]
    pub user_id: String,
    /// User email.
    #[schemars(email, length(max = 320))]
    pub email: String,
    /// Creation time.
    pub created_at: u64,
    /// Idle expiry (sliding).
    pub expires_at: u64,
    /// Hard cap: the session ends here whatever the activity.
    pub absolute_expires_at: u64,
    /// Last time the sliding expiry was written to KV.
    pub refreshed_at: u64,
    /// Roles granted to the session.
    #[serde(default)]
    #[schemars(length(max = 64))]
    pub roles: Vec<String>,
}

impl From<SessionRecordV1> for SessionRecordV2 {
    fn from(v1: SessionRecordV1) -> Self {
        SessionRecordV2 {
            // Exactly `createdAt` + 30 days, as documented: a v1 idle expiry further out is
            // not a reason for a longer life (the store clamps it to this cap on read).
            absolute_expires_at: v1.created_at.saturating_add(DEFAULT_ABSOLUTE_LIFETIME_MS),
            user_id: v1.user_id,
            email: v1.email,
            created_at: v1.created_at,
            expires_at: v1.expires_at,
        }
    }
}

impl From<SessionRecordV2> for SessionRecord {
    fn from(v2: SessionRecordV2) -> Self {
        SessionRecord {
            refreshed_at: v2.created_at,
            user_id: v2.user_id,
            email: v2.email,
            created_at: v2.created_at,
            expires_at: v2.expires_at,
            absolute_expires_at: v2.absolute_expires_at,
            roles: Vec::new(),
        }
    }
}

crate::versioned! {
    name: "session",
    versions: [SessionRecordV1, SessionRecordV2, SessionRecord],
}
