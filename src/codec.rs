//! The payload codec of an envelope: a leaf both the wire format (`envelope`) and the error type
//! name, so that neither depends on the other.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The payload codec of an envelope.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Codec {
    /// serde_json, readable by other services.
    #[default]
    Json,
    /// postcard inside a binary frame: compact and fast.
    Postcard,
}

impl Codec {
    /// Stable lowercase name (`json`, `postcard`).
    pub fn as_str(self) -> &'static str {
        match self {
            Codec::Json => "json",
            Codec::Postcard => "postcard",
        }
    }
}

impl fmt::Display for Codec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
