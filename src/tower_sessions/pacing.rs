//! KV's one write per second per key, absorbed for tower-sessions.
//!
//! tower-sessions writes a session at every change, and at every request with `always_save`, so
//! one client writing one session twice within a second is its normal use: a login then an
//! insert, two quick requests with `always_save`, `cycle_id` then an insert, a login then a
//! logout. KV answers the second write with 429, which tower-sessions turns into a 500 without a
//! cookie. The store paces its own writes instead:
//!
//! * this isolate remembers when it last wrote each session key (for one second: the map holds
//!   only the keys written in the last second), and a write that comes sooner waits until the
//!   second has passed — at most one second of latency, only for the quick second write;
//! * a 429 that still comes (the key was written by another isolate or location in that
//!   second) is retried once, a second later;
//! * waiting goes through the store's [`Clock`](crate::Clock): a timer on Workers, the manual
//!   clock's own time in tests.
//!
//! Nothing is lost and nothing is merged: each write lands, in order, as tower-sessions made
//! it. Writers of one session in different isolates at the same moment stay last-write-wins,
//! as everything on KV (docs/axum.md); on Durable Objects the save is conditional instead.

use std::{
    collections::HashMap,
    future::Future,
    sync::{Mutex, PoisonError},
};

use crate::{
    backend::Kv,
    error::{Error, Result},
    session::sessions::MIN_WRITE_SPACING_MS,
};

/// When this isolate last wrote each session key (ms), per clock timeline
/// ([`Clock::timeline`](crate::Clock::timeline)). Isolate-wide, not per store: an app may build
/// its store per request (the axum example does).
static LAST_WRITES: Mutex<Option<HashMap<(usize, String), u64>>> = Mutex::new(None);

/// How long a write of `key` must wait for KV to take it; keys past their second are forgotten
/// (and times after `now`: a clock that went back owes no wait).
fn wait_for(timeline: usize, key: &str, now: u64) -> u64 {
    let mut guard = LAST_WRITES.lock().unwrap_or_else(PoisonError::into_inner);
    let map = guard.get_or_insert_with(HashMap::new);
    map.retain(|(t, _), at| {
        *t != timeline || (*at <= now && now < at.saturating_add(MIN_WRITE_SPACING_MS))
    });
    map.get(&(timeline, key.to_string()))
        .map_or(0, |at| at.saturating_add(MIN_WRITE_SPACING_MS) - now)
}

fn remember(timeline: usize, key: &str, at: u64) {
    let mut guard = LAST_WRITES.lock().unwrap_or_else(PoisonError::into_inner);
    guard
        .get_or_insert_with(HashMap::new)
        .insert((timeline, key.to_string()), at);
}

/// Run `write` (a put or delete of `key` through `kv`) when KV will take it: after this
/// isolate's last write of the key is a second old, and once more a second later on a 429.
pub(super) async fn paced<T, F, Fut>(kv: &Kv, key: &str, mut write: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T>>,
{
    let timeline = kv.clock().timeline();
    let wait = wait_for(timeline, key, kv.now_ms());
    if wait > 0 {
        kv.clock().sleep(wait).await;
    }
    let result = match write().await {
        Err(Error::RateLimited) => {
            kv.clock().sleep(MIN_WRITE_SPACING_MS).await;
            write().await
        }
        other => other,
    };
    if result.is_ok() {
        remember(timeline, key, kv.now_ms());
    }
    result
}
