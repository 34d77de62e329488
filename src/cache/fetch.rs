//! The read, coalesce and refresh path behind `try_get_or_compute`: read (memory tier, then KV),
//! judge, and on a miss or a due refresh lead one computation per key per isolate while the
//! other callers wait for it (`flight`), through [`Core`](super::core::Core).

use std::future::Future;

#[cfg(all(feature = "worker", target_arch = "wasm32"))]
use super::in_own_context;
use super::{
    entry::{classify, classify_json, Found, Freshness},
    flight::{Join, Leader, Waiter},
    memory::{Fill, Tier},
    passthrough::{ComputeJsonError, JsonText},
    CachePolicy, CacheStatus, Cached, KvCache, MaybeSend,
};
use crate::{
    backend::Stored,
    background::Background,
    error::{Error, Result},
    versioned::Versioned,
};

/// Await another caller's computation. On Workers the leader is another request: the wait
/// must be polled in this request's own context and keep something of its own pending (see
/// [`in_own_context`]).
#[cfg(all(feature = "worker", target_arch = "wasm32"))]
async fn wait_for_leader<T: Clone>(waiter: Waiter<T>) -> <Waiter<T> as Future>::Output {
    in_own_context(waiter).await
}

/// Await another caller's computation (natively, and on wasm32 outside Workers: as is).
#[cfg(not(all(feature = "worker", target_arch = "wasm32")))]
async fn wait_for_leader<T: Clone>(waiter: Waiter<T>) -> <Waiter<T> as Future>::Output {
    waiter.await
}

/// How many times a caller waits for another's computation before computing alone (a leader
/// that fails hands over to the next waiter; this bounds the hand-overs one caller sits out).
const MAX_JOINS: usize = 3;

/// What a call hands back: `T` for `try_get_or_compute`, `Option<T>` for
/// `try_get_or_compute_optional` (where "not found" is a value too).
pub(super) trait Slot<T>: Clone + Sized {
    /// `None` when this call cannot use the shared value (a "not found" for a call that
    /// needs a value).
    fn from_option(value: Option<T>) -> Option<Self>;
    fn as_option(&self) -> Option<&T>;
}

impl<T: Clone> Slot<T> for T {
    fn from_option(value: Option<T>) -> Option<Self> {
        value
    }
    fn as_option(&self) -> Option<&T> {
        Some(self)
    }
}

impl<T: Clone> Slot<T> for Option<T> {
    fn from_option(value: Option<T>) -> Option<Self> {
        Some(value)
    }
    fn as_option(&self) -> Option<&T> {
        self.as_ref()
    }
}

impl<T, B> KvCache<T, B>
where
    T: Versioned + Clone + Send + Sync,
    B: Background,
{
    pub(super) async fn fetch<V, F, Fut, E>(
        &self,
        key: &str,
        policy: &CachePolicy,
        compute: F,
    ) -> Result<Cached<V>, E>
    where
        V: Slot<T> + MaybeSend + 'static,
        F: FnOnce() -> Fut + MaybeSend + 'static,
        Fut: Future<Output = Result<V, E>> + MaybeSend + 'static,
        E: MaybeSend + 'static,
    {
        let result = self.fetch_inner(key, policy, compute).await;
        self.count(&result);
        result
    }

    /// The counters of one `try_get_or_compute*` call, by how it ended.
    fn count<V: Slot<T>, E>(&self, result: &Result<Cached<V>, E>) {
        let counters = self.core.counters();
        match result {
            Ok(c) => match c.status {
                CacheStatus::Hit => {
                    counters.hits.inc();
                    if c.value.as_option().is_none() {
                        counters.negative_hits.inc();
                    }
                }
                CacheStatus::Stale => counters.stale_served.inc(),
                CacheStatus::Miss => counters.misses.inc(),
                CacheStatus::Coalesced => counters.coalesced_waits.inc(),
            },
            Err(_) => counters.misses.inc(),
        }
    }

    /// `try_get_or_compute` answering with the value's JSON text: a fresh entry (in memory or in
    /// KV) is handed out as its validated text without building `T`; anything else (stale,
    /// missing, unreadable, due for an early refresh) goes the typed way on what was already
    /// read — one KV read either way — and the value it ends with is serialized.
    pub(super) async fn fetch_json<F, Fut, E>(
        &self,
        key: &str,
        policy: &CachePolicy,
        compute: F,
    ) -> Result<Cached<JsonText>, ComputeJsonError<E>>
    where
        F: FnOnce() -> Fut + MaybeSend + 'static,
        Fut: Future<Output = Result<T, E>> + MaybeSend + 'static,
        E: MaybeSend + 'static,
    {
        let core = &self.core;
        let full = match core.entry_key(key).await {
            Ok(k) => k,
            Err(e) => {
                let result = self.uncached::<T, _, _, E>(compute, e).await;
                self.count(&result);
                return to_json(result);
            }
        };
        let tier = core.tier();
        if let Some(tier) = tier {
            let now = core.kv.now_ms();
            if let Some((json, timing)) = tier.get_json::<T>(&full, now) {
                let timing = timing.capped(policy);
                if timing.freshness(now) == Freshness::Fresh {
                    tier.count_hit();
                    core.counters().hits.inc();
                    let mut cached = Cached::new(json, CacheStatus::Hit, timing.computed_at);
                    cached.from_memory = true;
                    return Ok(cached);
                }
            }
        }
        let epoch = tier.map(Tier::epoch);
        let stored = match core.kv.get(&full).await {
            Ok(s) => s,
            Err(e) => {
                let result = self.uncached::<T, _, _, E>(compute, e).await;
                self.count(&result);
                return to_json(result);
            }
        };
        let now = core.kv.now_ms();
        if let Some(s) = &stored {
            if let Found::Value { value, timing } =
                classify_json::<T>(&full, s, core.seal.as_ref(), now, core.validate)
            {
                let capped = timing.capped(policy);
                if capped.freshness(now) == Freshness::Fresh
                    && !core.refresh_early(&capped, now, policy)
                {
                    if let (Some(tier), Some(epoch)) = (tier, epoch) {
                        tier.insert(
                            &full,
                            Fill::<T>::Json(&value),
                            timing,
                            s.value.len(),
                            now,
                            epoch,
                        );
                    }
                    core.counters().hits.inc();
                    return Ok(Cached::new(value, CacheStatus::Hit, capped.computed_at));
                }
            }
        }
        let result = self
            .fetch_stored::<T, F, Fut, E>(full, stored, epoch, policy, compute)
            .await;
        self.count(&result);
        to_json(result)
    }

    async fn fetch_inner<V, F, Fut, E>(
        &self,
        key: &str,
        policy: &CachePolicy,
        compute: F,
    ) -> Result<Cached<V>, E>
    where
        V: Slot<T> + MaybeSend + 'static,
        F: FnOnce() -> Fut + MaybeSend + 'static,
        Fut: Future<Output = Result<V, E>> + MaybeSend + 'static,
        E: MaybeSend + 'static,
    {
        let core = &self.core;
        // Without the generation or a valid key we cannot know which entry is current:
        // compute and write nothing.
        let full = match core.entry_key(key).await {
            Ok(k) => k,
            Err(e) => return self.uncached(compute, e).await,
        };
        let tier = core.tier();
        if let Some(tier) = tier {
            let now = core.kv.now_ms();
            if let Some((value, timing)) = tier.get_value::<T>(&full, now) {
                // The read policy can only shorten what was written, in memory too.
                let timing = timing.capped(policy);
                if timing.freshness(now) == Freshness::Fresh {
                    if let Some(value) = V::from_option(Some(value)) {
                        tier.count_hit();
                        let mut cached = Cached::new(value, CacheStatus::Hit, timing.computed_at);
                        cached.from_memory = true;
                        return Ok(cached);
                    }
                }
            }
        }
        let epoch = tier.map(Tier::epoch);
        let stored = match core.kv.get(&full).await {
            Ok(s) => s,
            // We do not know what is stored (maybe a newer version): compute, don't write.
            Err(e) => return self.uncached(compute, e).await,
        };
        self.fetch_stored(full, stored, epoch, policy, compute)
            .await
    }

    /// The rest of a fetch, given what KV holds under `full` (read once, by the caller, with
    /// the memory tier at `epoch`).
    async fn fetch_stored<V, F, Fut, E>(
        &self,
        full: String,
        stored: Option<Stored>,
        epoch: Option<u64>,
        policy: &CachePolicy,
        compute: F,
    ) -> Result<Cached<V>, E>
    where
        V: Slot<T> + MaybeSend + 'static,
        F: FnOnce() -> Fut + MaybeSend + 'static,
        Fut: Future<Output = Result<V, E>> + MaybeSend + 'static,
        E: MaybeSend + 'static,
    {
        let core = &self.core;
        let tier = core.tier();
        let now = core.kv.now_ms();
        let stored_len = stored.as_ref().map_or(0, |s| s.value.len());
        let found = match stored {
            None => Found::Missing,
            Some(s) => classify::<T>(&full, &s, core.seal.as_ref(), now, core.validate),
        };
        let mut writable = true;
        let mut cache_error = None;
        match found {
            Found::Value { value, timing } => {
                let stored_timing = timing;
                let timing = timing.capped(policy);
                let freshness = timing.freshness(now);
                if let (Some(value), false) =
                    (V::from_option(Some(value)), freshness == Freshness::Expired)
                {
                    let mut cached = Cached::new(value, CacheStatus::Hit, timing.computed_at);
                    if freshness == Freshness::Fresh {
                        if !core.refresh_early(&timing, now, policy) {
                            if let (Some(tier), Some(epoch), Some(v)) =
                                (tier, epoch, cached.value.as_option())
                            {
                                let fill = Fill::Value(v);
                                tier.insert(&full, fill, stored_timing, stored_len, now, epoch);
                            }
                            return Ok(cached);
                        }
                        core.counters().early_refreshes.inc();
                    } else {
                        cached.status = CacheStatus::Stale;
                    }
                    if let Some(bg) = &self.background {
                        cached.refreshing = self.spawn_refresh(bg, full, policy, compute);
                        return Ok(cached);
                    }
                    // No background: refresh inline. The value in hand is still servable,
                    // so a failed refresh serves it rather than failing the request.
                    return match self.lead_or_follow(full, policy, compute, true).await {
                        Ok(fresh) => Ok(fresh),
                        Err(_) => Ok(cached),
                    };
                }
            }
            Found::Absent => {
                if let Some(value) = V::from_option(None) {
                    return Ok(Cached::new(value, CacheStatus::Hit, None));
                }
            }
            Found::Missing => {}
            Found::Corrupt(e) => {
                core.counters().corrupt_entries.inc();
                cache_error = Some(e);
            }
            Found::Protected(e) => {
                // Newer code wrote this; it can read what we would write, but we would keep
                // overwriting its value with an older version. Leave it alone.
                core.counters().future_version_entries.inc();
                writable = false;
                cache_error = Some(e);
            }
        }
        let mut cached = self.lead_or_follow(full, policy, compute, writable).await?;
        if cached.cache_error.is_none() {
            cached.cache_error = cache_error;
        }
        Ok(cached)
    }

    /// Compute without the cache (unknown or unusable generation, bad key, failed read).
    async fn uncached<V, F, Fut, E>(&self, compute: F, error: Error) -> Result<Cached<V>, E>
    where
        V: Slot<T>,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<V, E>>,
    {
        // A bypass was counted where the generation was read; the rest are KV failures.
        if !matches!(error, Error::CacheBypassed { .. }) {
            self.core.counters().errors.inc();
        }
        let (value, computed_at, _) = self
            .core
            .run::<T, V, _, _, E>(
                None,
                String::new(),
                &CachePolicy::QUERY_CACHE,
                compute,
                false,
            )
            .await?;
        let mut cached = Cached::new(value, CacheStatus::Miss, Some(computed_at));
        cached.cache_error = Some(error);
        Ok(cached)
    }

    /// Join the computation of `full` in flight, or lead one.
    async fn lead_or_follow<V, F, Fut, E>(
        &self,
        full: String,
        policy: &CachePolicy,
        compute: F,
        writable: bool,
    ) -> Result<Cached<V>, E>
    where
        V: Slot<T> + MaybeSend + 'static,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<V, E>>,
    {
        for _ in 0..MAX_JOINS {
            match self.core.flights().join::<T>(&full) {
                Join::Lead(leader) => {
                    return self
                        .lead(Some(leader), full, policy, compute, writable)
                        .await;
                }
                Join::Wait(waiter) => {
                    // `Err`: the leader failed or was dropped, and has left the table; loop
                    // and try to lead.
                    let waiting = self.core.counters().start_waiting();
                    let shared = wait_for_leader(waiter).await;
                    drop(waiting);
                    if let Ok(shared) = shared {
                        match V::from_option(shared) {
                            Some(value) => {
                                return Ok(Cached::new(value, CacheStatus::Coalesced, None));
                            }
                            // The leader found nothing, and this call needs a value.
                            None => break,
                        }
                    }
                }
                Join::Foreign => break,
            }
        }
        self.lead(None, full, policy, compute, writable).await
    }

    async fn lead<V, F, Fut, E>(
        &self,
        leader: Option<Leader<T>>,
        full: String,
        policy: &CachePolicy,
        compute: F,
        writable: bool,
    ) -> Result<Cached<V>, E>
    where
        V: Slot<T>,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<V, E>>,
    {
        let (value, computed_at, pending) = self
            .core
            .run(leader, full, policy, compute, writable)
            .await?;
        let mut cached = Cached::new(value, CacheStatus::Miss, Some(computed_at));
        if let Some(pending) = pending {
            match &self.background {
                Some(bg) => {
                    let core = self.core.clone();
                    bg.spawn(Box::pin(async move {
                        // Failures are counted in `store`; nobody is left to tell.
                        let _ = core.store(pending).await;
                    }));
                }
                None => cached.cache_error = self.core.store(pending).await.err(),
            }
        }
        Ok(cached)
    }

    /// Start a background refresh of `full` unless one is already in flight here.
    fn spawn_refresh<V, F, Fut, E>(
        &self,
        bg: &B,
        full: String,
        policy: &CachePolicy,
        compute: F,
    ) -> bool
    where
        V: Slot<T> + MaybeSend + 'static,
        F: FnOnce() -> Fut + MaybeSend + 'static,
        Fut: Future<Output = Result<V, E>> + MaybeSend + 'static,
        E: MaybeSend + 'static,
    {
        let Join::Lead(leader) = self.core.flights().join::<T>(&full) else {
            return false;
        };
        self.core.counters().background_refreshes.inc();
        let core = self.core.clone();
        let policy = *policy;
        bg.spawn(Box::pin(async move {
            let run = core.run::<T, V, _, _, E>(Some(leader), full, &policy, compute, true);
            if let Ok((_, _, Some(pending))) = run.await {
                let _ = core.store(pending).await;
            }
        }));
        true
    }
}

/// A typed fetch's result as JSON text.
fn to_json<T: serde::Serialize, E>(
    result: Result<Cached<T>, E>,
) -> Result<Cached<JsonText>, ComputeJsonError<E>> {
    let cached = result.map_err(ComputeJsonError::Compute)?;
    let json = JsonText::from_value(&cached.value).map_err(ComputeJsonError::Encode)?;
    Ok(cached.map_value(json))
}
