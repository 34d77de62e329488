//! `GET /articles?count=N&first=I&read=bulk|single`: many cached items in one response.
//!
//! Each article is its own cache entry (`cache:article:g<generation>:a<id>`). With
//! `read=bulk` (the default) the route reads all `count` of them with
//! [`KvCache::get_many_json`](kv_envelope::cache::KvCache::get_many_json): on Workers KV
//! one bulk get per 100 keys, billed as one operation each. `read=single` reads them one
//! `get_json` at a time, the comparison the benchmark makes in the same run. Either way the
//! stored JSON text goes into the response as it is (validated, never rebuilt), and articles not
//! in the cache are computed (cheaply: they stand in for rows of a database) and written in
//! `ctx.wait_until`. The memory tier is off here, so every request shows what KV costs; the
//! response says how many KV operations it made.

use std::time::Duration;

use kv_envelope::cache::CachePolicy;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Most articles one request may ask for (the route's limit, not KV's).
pub const MAX_COUNT: u32 = 200;
/// Article ids are below this.
pub const ID_LIMIT: u32 = 100_000;
/// An hour: articles change rarely (and a load run outlasts a five-minute TTL).
pub const POLICY: CachePolicy = CachePolicy::new(Duration::from_secs(3600));

/// One article, as cached.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Article {
    /// The id it was asked by.
    pub id: u32,
    /// URL slug.
    #[schemars(length(min = 1, max = 64))]
    pub slug: String,
    /// Headline.
    #[schemars(length(min = 1, max = 200))]
    pub title: String,
    /// Length of the text.
    pub words: u32,
}

kv_envelope::versioned! { name: "article", versions: [Article] }

/// How the route reads its entries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Read {
    /// `get_many_json`: bulk gets of up to 100 keys.
    Bulk,
    /// One `get_json` per key.
    Single,
}

impl Read {
    /// `bulk` or `single`.
    pub fn as_str(self) -> &'static str {
        match self {
            Read::Bulk => "bulk",
            Read::Single => "single",
        }
    }
}

/// What the query asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query {
    /// First article id.
    pub first: u32,
    /// How many consecutive ids.
    pub count: u32,
    /// How to read them.
    pub read: Read,
}

impl Query {
    /// Parse `count` (1..=200, default 50), `first` (default 0) and `read` (`bulk` | `single`);
    /// anything else, or a repeated parameter, is refused with a message naming the parameter.
    pub fn parse(query: Option<&str>) -> Result<Self, String> {
        let (mut first, mut count, mut read) = (None, None, None);
        for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            let slot_taken = match name {
                "first" => first.replace(value).is_some(),
                "count" => count.replace(value).is_some(),
                "read" => read.replace(value).is_some(),
                _ => return Err("unknown parameter (count, first, read)".into()),
            };
            if slot_taken {
                return Err(format!("{name} given twice"));
            }
        }
        let number = |name: &str, v: Option<&str>, default: u32| match v {
            None => Ok(default),
            Some(v) if v.len() <= 6 && !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) => v
                .parse::<u32>()
                .map_err(|_| format!("{name} is not a number")),
            Some(_) => Err(format!("{name} is not a number")),
        };
        let first = number("first", first, 0)?;
        let count = number("count", count, 50)?;
        if !(1..=MAX_COUNT).contains(&count) {
            return Err(format!("count must be 1 to {MAX_COUNT}"));
        }
        if first.saturating_add(count) > ID_LIMIT {
            return Err(format!("ids must stay below {ID_LIMIT}"));
        }
        let read = match read {
            None | Some("bulk") => Read::Bulk,
            Some("single") => Read::Single,
            Some(_) => return Err("read must be bulk or single".into()),
        };
        Ok(Query { first, count, read })
    }

    /// The ids asked for, in order.
    pub fn ids(&self) -> impl Iterator<Item = u32> {
        self.first..self.first + self.count
    }
}

/// The cache key of article `id`.
pub fn key(id: u32) -> String {
    format!("a{id}")
}

/// The article behind `id` (what a database would return).
pub fn load(id: u32) -> Article {
    const WORDS: [&str; 8] = [
        "caching",
        "workers",
        "envelopes",
        "schemas",
        "sessions",
        "edges",
        "isolates",
        "tiers",
    ];
    let w = |n: u32| WORDS[(n as usize) % WORDS.len()];
    Article {
        id,
        slug: format!("article-{id}"),
        title: format!(
            "On {} and {} ({id})",
            w(id.wrapping_mul(7)),
            w(id.wrapping_mul(13) + 3)
        ),
        words: 300 + id.wrapping_mul(37) % 2_000,
    }
}
