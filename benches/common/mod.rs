//! The values every benchmark measures, shared by the criterion benches and the callgrind
//! driver so both columns of BENCHMARKS.md describe the same work.

#![allow(dead_code)]

use kv_envelope::session::{SessionRecord, SessionRecordV1};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub const NOW: u64 = 1_764_000_000_000;

/// A ~2 KB cache value: the shape of a "popular items" query result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Popular {
    pub generated_at: u64,
    pub items: Vec<Item>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Item {
    pub id: u32,
    pub title: String,
    pub score: f64,
    pub tags: Vec<String>,
}

kv_envelope::versioned! { name: "popular", versions: [Popular] }

/// A ~300-byte session.
pub fn session() -> SessionRecord {
    SessionRecord {
        user_id: "user_8f14e45fceea167a5a36dedd4bea2543".into(),
        email: "ada.lovelace@analytical-engine.example.com".into(),
        created_at: NOW,
        expires_at: NOW + 7 * 86_400_000,
        absolute_expires_at: NOW + 30 * 86_400_000,
        refreshed_at: NOW,
        roles: vec!["admin".into(), "billing".into(), "support".into()],
    }
}

/// The same session as written by v1 code.
pub fn session_v1() -> SessionRecordV1 {
    SessionRecordV1 {
        user_id: "user_8f14e45fceea167a5a36dedd4bea2543".into(),
        email: "ada.lovelace@analytical-engine.example.com".into(),
        created_at: NOW,
        expires_at: NOW + 7 * 86_400_000,
    }
}

/// A ~2 KB cache value: 20 items.
pub fn popular() -> Popular {
    Popular {
        generated_at: NOW,
        items: (0..20)
            .map(|i| Item {
                id: i,
                title: format!("Popular item number {i} with a title"),
                score: f64::from(i) * 1.25,
                tags: vec!["kv".into(), "workers".into()],
            })
            .collect(),
    }
}
