//! The stored form of a tower-sessions `Record`: a versioned envelope type, so a later change of
//! its shape is a migration, not a mass logout.
//!
//! Compiled without the `tower-sessions` feature too: it is plain data with no tower-sessions
//! type in it, and its schema belongs in `schemas/` whichever features build the crate (the
//! export and the `schemas/` drift check must not depend on a feature flag).

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A tower-sessions session as stored in KV, version 1.
///
/// The session id is not part of it: KV holds the record under the hash of the id, and the
/// record itself must not carry the bearer token either. Times are ms since the epoch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TowerSessionRecord {
    /// The session's data (tower-sessions' `Record::data`), keys in order so the stored bytes of
    /// equal data are equal.
    pub data: BTreeMap<String, Value>,
    /// When the session ends (tower-sessions' `Record::expiry_date`, to the millisecond).
    pub expiry_date: u64,
}

crate::versioned! {
    name: "tower-session",
    versions: [TowerSessionRecord],
}
