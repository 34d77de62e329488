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

/// A tower-sessions session as stored in KV, version 1: the expiry to the millisecond.
///
/// The session id is not part of it: KV holds the record under the hash of the id, and the
/// record itself must not carry the bearer token either. Times are ms since the epoch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TowerSessionRecordV1 {
    /// The session's data (tower-sessions' `Record::data`), keys in order so the stored bytes of
    /// equal data are equal.
    pub data: BTreeMap<String, Value>,
    /// When the session ends (tower-sessions' `Record::expiry_date`, to the millisecond).
    pub expiry_date: u64,
}

/// A tower-sessions session as stored in KV, version 2: the expiry exactly as tower-sessions
/// gives it, to the nanosecond, so a loaded record is the saved one (tower-sessions' own store
/// tests compare them, and two saves a few microseconds apart must keep their order).
///
/// Nanoseconds since the epoch pass 2^53, beyond what a JavaScript number holds exactly, so the
/// expiry stays in milliseconds (what every reader needs) and the rest of it rides beside.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TowerSessionRecord {
    /// The session's data (tower-sessions' `Record::data`), keys in order so the stored bytes of
    /// equal data are equal.
    pub data: BTreeMap<String, Value>,
    /// When the session ends, in whole milliseconds since the epoch (rounded down).
    pub expiry_date: u64,
    /// The nanoseconds of the expiry past `expiry_date`'s millisecond (0 to 999 999).
    #[schemars(range(max = 999_999))]
    pub expiry_nanos: u32,
}

/// Version 1 kept the millisecond only: its sub-millisecond part is 0.
impl From<TowerSessionRecordV1> for TowerSessionRecord {
    fn from(v1: TowerSessionRecordV1) -> Self {
        Self {
            data: v1.data,
            expiry_date: v1.expiry_date,
            expiry_nanos: 0,
        }
    }
}

crate::versioned! {
    name: "tower-session",
    versions: [TowerSessionRecordV1, TowerSessionRecord],
}
