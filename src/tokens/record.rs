//! What a one-time token stores: the record under the token's hash, and the entry in its user's
//! index that lists and revokes it. Both are versioned types like any other (schemas exported
//! for other services).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A one-time token as stored, under `<prefix>:<sha256(token)>`: never the token itself.
///
/// `data` is the app's typed payload as JSON, of the versioned type `dataType` at version
/// `dataVersion`; a read decodes it through that type's migrations and schema.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TokenRecord {
    /// What the token is for (`magic-login`, `email-verify`, …); a consume for another
    /// purpose is refused.
    #[schemars(length(min = 1, max = 64))]
    pub purpose: String,
    /// The user it was issued to (or for).
    #[schemars(length(min = 1, max = 256))]
    pub user_id: String,
    /// When it was issued (ms since the epoch).
    pub created_at: u64,
    /// When it stops working (ms since the epoch): exact, whatever KV keeps.
    pub expires_at: u64,
    /// When it was consumed: set once, by the one consume that succeeded. A consumed record
    /// stays until `expires_at`, so a replay is told apart from an unknown token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consumed_at: Option<u64>,
    /// The stable name of the payload's versioned type.
    #[schemars(length(min = 1, max = 128))]
    pub data_type: String,
    /// The payload's version.
    #[schemars(range(min = 1))]
    pub data_version: u32,
    /// The payload.
    pub data: Value,
}

crate::versioned! {
    name: "one-time-token",
    versions: [TokenRecord],
}

/// An entry of a user's token index, under `<prefix>-user:<sha256(user)>:<sha256(token)>`:
/// what listing and revoking the user's tokens needs, without the token or its payload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TokenIndexEntry {
    /// The token's purpose.
    #[schemars(length(min = 1, max = 64))]
    pub purpose: String,
    /// The opaque handle that revokes it: 32 hex digits, neither the token nor its hash.
    #[schemars(length(min = 32, max = 32))]
    pub handle: String,
    /// When it was issued (ms).
    pub created_at: u64,
    /// When it stops working (ms).
    pub expires_at: u64,
}

crate::versioned! {
    name: "one-time-token-index",
    versions: [TokenIndexEntry],
}
