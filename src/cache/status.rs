//! Where a cached value came from ([`CacheStatus`]), and the value with it ([`Cached`]).

use std::fmt;

use crate::error::Error;

/// Where a value came from. [`as_str`](Self::as_str) is suitable for an `x-cache` header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CacheStatus {
    /// A fresh value from KV.
    Hit,
    /// A value past its TTL, inside the stale grace window.
    Stale,
    /// Computed by this call.
    Miss,
    /// Computed by a concurrent call in this isolate, which this call waited for.
    Coalesced,
}

impl CacheStatus {
    /// `hit`, `stale`, `miss` or `coalesced`.
    pub fn as_str(self) -> &'static str {
        match self {
            CacheStatus::Hit => "hit",
            CacheStatus::Stale => "stale",
            CacheStatus::Miss => "miss",
            CacheStatus::Coalesced => "coalesced",
        }
    }
}

impl fmt::Display for CacheStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A value from the cache and how it was obtained.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Cached<T> {
    /// The value.
    pub value: T,
    /// Hit, stale, miss or coalesced.
    pub status: CacheStatus,
    /// True when this call started a background refresh (stale-while-revalidate or early).
    pub refreshing: bool,
    /// When the value was computed (ms since the epoch), when known.
    pub computed_at: Option<u64>,
    /// True when a `Hit` came from the isolate-memory tier, without a KV read.
    pub from_memory: bool,
    /// A cache-side problem that was absorbed: a KV read or write failure, an entry that did
    /// not decode (replaced) or a newer-version entry (left alone). Never affects `value`.
    pub cache_error: Option<Error>,
}

impl<T> Cached<T> {
    /// The same provenance with another value (the JSON text of this one).
    pub(super) fn map_value<U>(self, value: U) -> Cached<U> {
        Cached {
            value,
            status: self.status,
            refreshing: self.refreshing,
            computed_at: self.computed_at,
            from_memory: self.from_memory,
            cache_error: self.cache_error,
        }
    }

    pub(super) fn new(value: T, status: CacheStatus, computed_at: Option<u64>) -> Self {
        Self {
            value,
            status,
            refreshing: false,
            computed_at,
            from_memory: false,
            cache_error: None,
        }
    }

    /// The value.
    pub fn into_value(self) -> T {
        self.value
    }

    /// Apply `f` to the value, keeping the rest.
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Cached<U> {
        Cached {
            value: f(self.value),
            status: self.status,
            refreshing: self.refreshing,
            computed_at: self.computed_at,
            from_memory: self.from_memory,
            cache_error: self.cache_error,
        }
    }

    /// Age of the value at `now_ms`, when its computation time is known.
    pub fn age_ms(&self, now_ms: u64) -> Option<u64> {
        self.computed_at.map(|at| now_ms.saturating_sub(at))
    }
}
