//! How long a cached value lives and how it is refreshed.

use std::time::Duration;

/// Freshness, staleness, early refresh and negative caching for one kind of cached value.
///
/// A value written at `computed_at` is *fresh* until `computed_at + ttl`, then *stale* (served
/// at once while a refresh runs) until `computed_at + ttl + stale_while_revalidate`, then gone.
/// Any TTL works: the envelope keeps the exact expiry and the KV layer raises the KV
/// `expiration` to KV's 60-second floor.
///
/// The policy given at read time can only shorten what was written: lowering a TTL in code
/// takes effect for entries already in KV.
///
/// ```
/// use std::time::Duration;
/// use kv_envelope::cache::CachePolicy;
///
/// let policy = CachePolicy::QUERY_CACHE
///     .with_stale_while_revalidate(Duration::from_secs(60))
///     .with_negative_ttl(Duration::from_secs(30));
/// assert_eq!(policy.ttl(), Duration::from_secs(300));
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CachePolicy {
    ttl: Duration,
    stale_while_revalidate: Duration,
    early_refresh_beta: Option<f64>,
    negative_ttl: Option<Duration>,
}

impl CachePolicy {
    /// User sessions: 7 days.
    pub const USER_SESSIONS: CachePolicy = CachePolicy::new(Duration::from_secs(7 * 24 * 3600));
    /// Auth tokens: 1 hour.
    pub const AUTH_TOKENS: CachePolicy = CachePolicy::new(Duration::from_secs(3600));
    /// Query results: 5 minutes.
    pub const QUERY_CACHE: CachePolicy = CachePolicy::new(Duration::from_secs(300));
    /// Feature flags: 1 hour.
    pub const FEATURE_FLAGS: CachePolicy = CachePolicy::new(Duration::from_secs(3600));
    /// Static configuration: 24 hours.
    pub const STATIC_CONFIG: CachePolicy = CachePolicy::new(Duration::from_secs(24 * 3600));

    /// Every preset with its stable name (`query-cache`, ...), for configuration files and
    /// command lines.
    pub const PRESETS: [(&'static str, CachePolicy); 5] = [
        ("user-sessions", Self::USER_SESSIONS),
        ("auth-tokens", Self::AUTH_TOKENS),
        ("query-cache", Self::QUERY_CACHE),
        ("feature-flags", Self::FEATURE_FLAGS),
        ("static-config", Self::STATIC_CONFIG),
    ];

    /// A policy keeping values fresh for `ttl`, with XFetch early refresh (β = 1), no stale
    /// grace window and no negative caching.
    pub const fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            stale_while_revalidate: Duration::ZERO,
            early_refresh_beta: Some(1.0),
            negative_ttl: None,
        }
    }

    /// The preset called `name` (see [`PRESETS`](Self::PRESETS)).
    pub fn preset(name: &str) -> Option<Self> {
        Self::PRESETS
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, p)| *p)
    }

    /// Serve a value for `grace` after it stops being fresh while one refresh runs in the
    /// background (or inline when the store has no background, serving the stale value if the
    /// refresh fails).
    #[must_use]
    pub const fn with_stale_while_revalidate(mut self, grace: Duration) -> Self {
        self.stale_while_revalidate = grace;
        self
    }

    /// XFetch early refresh with weight `beta` (1.0 is the paper's default; larger refreshes
    /// earlier). A hit refreshes with probability rising as expiry nears, scaled by how long
    /// the value took to compute.
    #[must_use]
    pub const fn with_early_refresh(mut self, beta: f64) -> Self {
        self.early_refresh_beta = Some(beta);
        self
    }

    /// No probabilistic early refresh: values are recomputed only once stale or expired.
    #[must_use]
    pub const fn without_early_refresh(mut self) -> Self {
        self.early_refresh_beta = None;
        self
    }

    /// Remember "not found" for `ttl` (used by
    /// [`try_get_or_compute_optional`](super::KvCache::try_get_or_compute_optional)).
    #[must_use]
    pub const fn with_negative_ttl(mut self, ttl: Duration) -> Self {
        self.negative_ttl = Some(ttl);
        self
    }

    /// Replace the TTL.
    #[must_use]
    pub const fn with_ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self
    }

    /// How long a value is fresh.
    pub const fn ttl(&self) -> Duration {
        self.ttl
    }

    /// The stale grace window after `ttl` (zero: none).
    pub const fn stale_while_revalidate(&self) -> Duration {
        self.stale_while_revalidate
    }

    /// The XFetch β, `None` when early refresh is off.
    pub const fn early_refresh_beta(&self) -> Option<f64> {
        self.early_refresh_beta
    }

    /// How long "not found" is remembered, `None` when it is not.
    pub const fn negative_ttl(&self) -> Option<Duration> {
        self.negative_ttl
    }

    pub(crate) fn ttl_ms(&self) -> u64 {
        millis(self.ttl)
    }

    pub(crate) fn grace_ms(&self) -> u64 {
        millis(self.stale_while_revalidate)
    }

    pub(crate) fn negative_ttl_ms(&self) -> Option<u64> {
        self.negative_ttl.map(millis)
    }
}

pub(crate) fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_match_the_reference_table() {
        let day = 24 * 3600;
        let expected = [
            ("user-sessions", 7 * day),
            ("auth-tokens", 3600),
            ("query-cache", 300),
            ("feature-flags", 3600),
            ("static-config", day),
        ];
        for (name, secs) in expected {
            let p = CachePolicy::preset(name).unwrap();
            assert_eq!(p.ttl(), Duration::from_secs(secs), "{name}");
        }
        assert!(CachePolicy::preset("nope").is_none());
    }
}
