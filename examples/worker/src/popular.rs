//! `GET /popular`: a deliberately expensive computation behind the cache store.
//!
//! "Expensive" is a slow upstream (a 250 ms timer stands in for a database query) plus real CPU
//! work (ranking 300 000 synthetic page views). The result is cached in the `CACHE` namespace
//! with the query-cache preset (5 minutes) and a one-minute stale-while-revalidate window;
//! refreshes and post-miss writes run in `ctx.wait_until`.

use std::{
    convert::Infallible,
    sync::atomic::{AtomicU64, Ordering},
    time::Duration,
};

use kv_envelope::{cache::CachePolicy, Clock, SystemClock};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use worker::Delay;

/// The one cache key of the demo.
pub const KEY: &str = "top";
/// Query cache (5 minutes), served stale for one more minute while it refreshes.
pub const POLICY: CachePolicy =
    CachePolicy::QUERY_CACHE.with_stale_while_revalidate(Duration::from_secs(60));

const UPSTREAM_LATENCY: Duration = Duration::from_millis(250);
const ARTICLES: usize = 256;
const VIEWS: u32 = 300_000;
const TOP: usize = 10;

/// Times the computation itself ran in this isolate (cross-checks the cache's own counter).
pub static COMPUTE_CALLS: AtomicU64 = AtomicU64::new(0);

/// One ranked article.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PopularItem {
    /// Article slug.
    #[schemars(length(min = 1, max = 64))]
    pub article: String,
    /// Views in the sample.
    pub views: u32,
}

/// The cached value: the most viewed articles.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Popular {
    /// Most viewed first.
    #[schemars(length(max = 100))]
    pub items: Vec<PopularItem>,
    /// When it was computed (ms since the epoch).
    pub computed_at: u64,
    /// How many views were ranked.
    pub sampled_views: u32,
}

kv_envelope::versioned! { name: "popular", versions: [Popular] }

/// The expensive computation. Each run samples a different synthetic log (seeded by the
/// time), so a cached answer is recognisable by its `computedAt`.
pub async fn compute() -> Result<Popular, Infallible> {
    COMPUTE_CALLS.fetch_add(1, Ordering::Relaxed);
    Delay::from(UPSTREAM_LATENCY).await;
    let computed_at = SystemClock.now_ms();
    let mut counts = [0u32; ARTICLES];
    let mut x = computed_at | 1;
    for _ in 0..VIEWS {
        // 64-bit LCG (Knuth's MMIX constants); the cube skews views towards low article ids.
        x = x
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        let u = (x >> 54) as usize; // 10 bits
        counts[(u * u * u) >> 22] += 1; // < 1024³ >> 22 = 256
    }
    let mut ranked: Vec<(usize, u32)> = counts.iter().copied().enumerate().collect();
    ranked.sort_unstable_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let items = ranked
        .into_iter()
        .take(TOP)
        .map(|(id, views)| PopularItem {
            article: format!("article-{id}"),
            views,
        })
        .collect();
    Ok(Popular {
        items,
        computed_at,
        sampled_views: VIEWS,
    })
}
