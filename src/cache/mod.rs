//! Cache-aside on KV: TTL presets, namespace invalidation, stampede defences.
//!
//! A [`CacheStore<T>`] keeps values of one [`Versioned`] type under
//! `<prefix>:<namespace>:g<generation>:<key>` (see [`CacheKeys`]). Values are ordinary
//! envelopes, so they are validated and migrated on read; cache bookkeeping (when a value was
//! computed, how long it took, until when it is fresh) rides in the KV metadata written with it.
//!
//! * [`get_or_compute`](CacheStore::get_or_compute): read, and on a miss run the computation,
//!   return its value and write it. Never fails because of KV: a read error, an unusable entry
//!   or a refused write is absorbed (counted, and reported in [`Cached::cache_error`]); the only
//!   error it returns is the computation's.
//! * Stampede defences: concurrent misses for one key in one isolate share one computation
//!   (single-flight); hits refresh early with a probability that rises near expiry (XFetch);
//!   inside a stale grace window a stale value is served at once and refreshed through a
//!   [`Background`] (`Context::wait_until` on Workers).
//! * [`invalidate`](CacheStore::invalidate) deletes one key;
//!   [`invalidate_namespace`](CacheStore::invalidate_namespace) bumps the namespace
//!   generation, orphaning every entry at once without listing keys.
//!
//! ```
//! # futures::executor::block_on(async {
//! use std::{convert::Infallible, sync::Arc};
//! use kv_envelope::{cache::{CachePolicy, CacheStatus, CacheStore}, Kv, ManualClock, MemoryKv};
//! # use serde::{Deserialize, Serialize};
//! # #[derive(Clone, Serialize, Deserialize, schemars::JsonSchema)]
//! # struct Product { name: String }
//! # kv_envelope::versioned! { name: "product", versions: [Product] }
//!
//! let clock = Arc::new(ManualClock::new(1_764_000_000_000));
//! let kv = Kv::new(MemoryKv::new(clock.clone())).with_clock(clock);
//! let cache = CacheStore::<Product>::new(kv);
//!
//! let load = || async { Ok::<_, Infallible>(Product { name: "lamp".into() }) };
//! let first = cache.get_or_compute("42", &CachePolicy::QUERY_CACHE, load).await.unwrap();
//! assert_eq!(first.status, CacheStatus::Miss);
//! let second = cache.get_or_compute("42", &CachePolicy::QUERY_CACHE, load).await.unwrap();
//! assert_eq!(second.status.as_str(), "hit");
//! assert_eq!(second.value.name, "lamp");
//! # });
//! ```
//!
//! See `docs/cache.md` for the consistency window of invalidation and the stampede behaviour.

mod entry;
mod flight;
mod keys;
mod policy;
mod random;
mod stats;
#[cfg(all(feature = "worker", target_arch = "wasm32"))]
mod workers;

use std::{
    collections::HashMap,
    fmt,
    future::Future,
    marker::PhantomData,
    sync::{Arc, Mutex, MutexGuard, PoisonError},
    time::Duration,
};

#[cfg(all(feature = "worker", target_arch = "wasm32"))]
pub use self::workers::in_own_context;
pub use self::{
    entry::ABSENT_TYPE,
    keys::{CacheKeys, NamespaceGeneration},
    policy::CachePolicy,
    random::{OsRandom, RandomSource},
    stats::CacheStats,
};
use self::{
    entry::{classify, prepare, Found, Freshness, PreparedWrite, Timing},
    flight::{Flights, Join, Leader, Waiter},
    policy::millis,
    stats::Counters,
};
use crate::{
    backend::{Kv, OpCounts},
    background::{Background, BoxFuture},
    envelope::{self, Codec, Header},
    error::{Error, Result},
    migrate::{check_header, decode_value, encode_value, Versioned},
};

/// `Send` natively, nothing on wasm32 (Workers futures and JS handles are not `Send`).
#[cfg(not(target_arch = "wasm32"))]
pub trait MaybeSend: Send {}
#[cfg(not(target_arch = "wasm32"))]
impl<T: Send + ?Sized> MaybeSend for T {}
/// `Send` natively, nothing on wasm32 (Workers futures and JS handles are not `Send`).
#[cfg(target_arch = "wasm32")]
pub trait MaybeSend {}
#[cfg(target_arch = "wasm32")]
impl<T: ?Sized> MaybeSend for T {}

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

/// Default time an isolate trusts the namespace generation it last read.
pub const DEFAULT_GENERATION_TTL: Duration = Duration::from_secs(10);

/// How many times a caller waits for another's computation before computing alone (a leader
/// that fails hands over to the next waiter; this bounds the hand-overs one caller sits out).
const MAX_JOINS: usize = 3;

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
    /// A cache-side problem that was absorbed: a KV read or write failure, an entry that did
    /// not decode (replaced) or a newer-version entry (left alone). Never affects `value`.
    pub cache_error: Option<Error>,
}

impl<T> Cached<T> {
    fn new(value: T, status: CacheStatus, computed_at: Option<u64>) -> Self {
        Self {
            value,
            status,
            refreshing: false,
            computed_at,
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
            cache_error: self.cache_error,
        }
    }

    /// Age of the value at `now_ms`, when its computation time is known.
    pub fn age_ms(&self, now_ms: u64) -> Option<u64> {
        self.computed_at.map(|at| now_ms.saturating_sub(at))
    }
}

/// The background of a store that has none: it cannot be constructed, so a
/// `CacheStore<T, NoBackground>` refreshes and writes inline, in the calling request.
#[derive(Debug, Clone, Copy)]
pub enum NoBackground {}

impl Background for NoBackground {
    fn spawn(&self, _fut: BoxFuture) {
        match *self {}
    }
}

/// Per-isolate cache state: the single-flight table, the generations last read and the
/// counters. Cheap to clone (clones share). Keep one per isolate and KV namespace — in a
/// `static` (it is `Send + Sync`) — and hand it to each request's store with
/// [`CacheStore::with_state`], so concurrent requests coalesce and counters accumulate.
#[derive(Clone, Default)]
pub struct CacheState {
    inner: Arc<StateInner>,
}

#[derive(Default)]
struct StateInner {
    flights: Arc<Flights>,
    generations: Mutex<HashMap<String, KnownGeneration>>,
    counters: Counters,
}

#[derive(Debug, Clone, Copy)]
struct KnownGeneration {
    generation: u64,
    checked_at: u64,
}

impl fmt::Debug for CacheState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CacheState")
            .field("in_flight", &self.inner.flights.len())
            .finish_non_exhaustive()
    }
}

impl CacheState {
    /// Fresh state.
    pub fn new() -> Self {
        Self::default()
    }

    /// The counters of every store on this state, without building a store (for a `/metrics`
    /// route). `kv` is all zeros: KV operation counts belong to a [`Kv`] handle — pass them
    /// with [`stats_with_kv`](Self::stats_with_kv), or use [`CacheStore::stats`].
    pub fn stats(&self) -> CacheStats {
        self.stats_with_kv(OpCounts::default())
    }

    /// [`stats`](Self::stats) with `kv` as the KV operation counts, e.g. the snapshot of the
    /// `OpCounters` the cache's `Kv` handles share ([`Kv::with_counters`]).
    pub fn stats_with_kv(&self, kv: OpCounts) -> CacheStats {
        self.inner.counters.snapshot(self.inner.flights.len(), kv)
    }

    fn generations(&self) -> MutexGuard<'_, HashMap<String, KnownGeneration>> {
        // Short, non-panicking critical sections: a poisoned map is still consistent.
        self.inner
            .generations
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn cached_generation(&self, key: &str, now: u64, ttl_ms: u64) -> Option<u64> {
        let known = *self.generations().get(key)?;
        let age = now.checked_sub(known.checked_at)?;
        (age < ttl_ms).then_some(known.generation)
    }

    fn known_generation(&self, key: &str) -> Option<u64> {
        self.generations().get(key).map(|k| k.generation)
    }

    /// Record `generation` as read at `now`. Generations only grow, so a stale KV read never
    /// takes this isolate back to a generation it already knows was invalidated.
    fn remember_generation(&self, key: &str, generation: u64, now: u64) -> u64 {
        let mut map = self.generations();
        let known = map.entry(key.to_string()).or_insert(KnownGeneration {
            generation,
            checked_at: now,
        });
        known.generation = known.generation.max(generation);
        known.checked_at = now;
        known.generation
    }
}

/// What a call hands back: `T` for `get_or_compute`, `Option<T>` for
/// `get_or_compute_optional` (where "not found" is a value too).
trait Slot<T>: Clone + Sized {
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

/// A computed value on its way to KV, holding the flight open until it lands.
struct Pending<T> {
    write: Result<Option<PreparedWrite>>,
    leader: Option<Leader<T>>,
}

/// Everything a background task needs: no borrow of the store, no background handle.
#[derive(Clone)]
struct Core {
    kv: Kv,
    state: CacheState,
    prefix: String,
    namespace: String,
    keys: CacheKeys,
    codec: Codec,
    validate: bool,
    generation_ttl_ms: u64,
    random: Arc<dyn RandomSource>,
}

impl Core {
    fn counters(&self) -> &Counters {
        &self.state.inner.counters
    }

    fn flights(&self) -> &Arc<Flights> {
        &self.state.inner.flights
    }

    /// The namespace generation: from this isolate's memory when read less than
    /// `generation_ttl` ago, else from KV.
    async fn generation(&self) -> Result<u64> {
        let key = self.keys.generation();
        let now = self.kv.now_ms();
        if let Some(g) = self
            .state
            .cached_generation(&key, now, self.generation_ttl_ms)
        {
            return Ok(g);
        }
        let read = match self.kv.get(&key).await? {
            None => 0,
            Some(stored) => decode_value::<NamespaceGeneration>(&stored.value, now, self.validate)?
                .map_or(0, |d| d.value.generation),
        };
        Ok(self.state.remember_generation(&key, read, now))
    }

    async fn entry_key(&self, key: &str) -> Result<String> {
        let generation = self.generation().await?;
        let full = self.keys.entry(generation, key);
        crate::backend::check_key(&full)?;
        Ok(full)
    }

    /// Run a computation (as the flight's leader, or alone), publish its result to the
    /// followers, and prepare the write when `writable`.
    async fn run<T, V, F, Fut, E>(
        &self,
        mut leader: Option<Leader<T>>,
        key: String,
        policy: &CachePolicy,
        compute: F,
        writable: bool,
    ) -> Result<(V, u64, Option<Pending<T>>), E>
    where
        T: Versioned + Clone,
        V: Slot<T>,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<V, E>>,
    {
        self.counters().computations.inc();
        // Started before the closure is called: work it does before returning its future
        // counts toward the computation time XFetch scales by.
        let started = self.kv.now_ms();
        let value = match compute().await {
            Ok(v) => v,
            Err(e) => {
                self.counters().compute_errors.inc();
                // Dropping the leader here releases the followers, who try in turn.
                return Err(e);
            }
        };
        let computed_at = self.kv.now_ms();
        if let Some(l) = leader.as_mut() {
            l.publish(value.as_option().cloned());
        }
        let pending = writable.then(|| Pending {
            write: prepare(
                key,
                value.as_option(),
                policy,
                self.codec,
                computed_at,
                computed_at.saturating_sub(started),
            ),
            leader,
        });
        Ok((value, computed_at, pending))
    }

    /// Write a computed value. A 429 (another write to the key in the last second) is not an
    /// error: the value was served, and someone else just wrote the key.
    async fn store<T>(&self, pending: Pending<T>) -> Result<()> {
        let Pending { write, leader } = pending;
        let write = match write {
            Ok(Some(w)) => w,
            Ok(None) => return Ok(()),
            Err(e) => {
                self.counters().errors.inc();
                return Err(e);
            }
        };
        if leader.as_ref().is_some_and(Leader::invalidated) {
            self.counters().writes_skipped_invalidated.inc();
            return Ok(());
        }
        if write.expires_at <= self.kv.now_ms() {
            return Ok(());
        }
        let result = self
            .kv
            .put(
                &write.key,
                &write.bytes,
                Some(write.expires_at),
                Some(write.metadata),
            )
            .await;
        // The flight ends only now, so callers arriving during the write join it instead of
        // missing in KV and computing again.
        drop(leader);
        match result {
            Ok(()) => Ok(()),
            Err(Error::RateLimited) => {
                self.counters().writes_rate_limited.inc();
                Ok(())
            }
            Err(e) => {
                self.counters().errors.inc();
                Err(e)
            }
        }
    }

    /// XFetch: refresh when `now - delta·β·ln(r) ≥ fresh_until`, `r` uniform in (0, 1].
    fn refresh_early(&self, timing: &Timing, now: u64, policy: &CachePolicy) -> bool {
        let (Some(beta), Some(fresh_until)) = (policy.early_refresh_beta(), timing.fresh_until)
        else {
            return false;
        };
        // `beta <= 0.0` would let NaN through; NaN must mean "off" too.
        if timing.delta_ms == 0 || beta.partial_cmp(&0.0) != Some(std::cmp::Ordering::Greater) {
            return false;
        }
        let r = random::sanitize(self.random.next_unit());
        let gap = timing.delta_ms as f64 * beta * -r.ln();
        now as f64 + gap >= fresh_until as f64
    }
}

/// Cache-aside store of `T` values; see the [module docs](self).
///
/// `B` is where refreshes and post-miss writes run: [`NoBackground`] (the default) runs them
/// inline; [`with_background`](Self::with_background) takes a
/// [`WaitUntil`](crate::background) on Workers, a spawner natively, or a
/// [`Deferred`](crate::background::Deferred) queue in tests.
pub struct CacheStore<T, B = NoBackground> {
    core: Core,
    background: Option<B>,
    _type: PhantomData<fn() -> T>,
}

impl<T, B: Clone> Clone for CacheStore<T, B> {
    fn clone(&self) -> Self {
        Self {
            core: self.core.clone(),
            background: self.background.clone(),
            _type: PhantomData,
        }
    }
}

impl<T, B> fmt::Debug for CacheStore<T, B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CacheStore")
            .field("keys", &self.core.keys.namespace_prefix())
            .field("codec", &self.core.codec)
            .field("background", &self.background.is_some())
            .finish_non_exhaustive()
    }
}

impl<T: Versioned + Clone + Send + Sync> CacheStore<T> {
    /// A store on `kv`: prefix `cache`, namespace `T::NAME`, JSON codec, validation on, fresh
    /// [`CacheState`], no background, generation trusted for [`DEFAULT_GENERATION_TTL`].
    pub fn new(kv: Kv) -> Self {
        let prefix = "cache".to_string();
        let namespace = T::NAME.to_string();
        Self {
            core: Core {
                kv,
                state: CacheState::new(),
                keys: CacheKeys::new(&prefix, &namespace),
                prefix,
                namespace,
                codec: Codec::Json,
                validate: true,
                generation_ttl_ms: millis(DEFAULT_GENERATION_TTL),
                random: Arc::new(OsRandom),
            },
            background: None,
            _type: PhantomData,
        }
    }
}

impl<T, B> CacheStore<T, B>
where
    T: Versioned + Clone + Send + Sync,
    B: Background,
{
    /// Key prefix (default `cache`).
    #[must_use]
    pub fn with_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.core.prefix = prefix.into();
        self.core.keys = CacheKeys::new(&self.core.prefix, &self.core.namespace);
        self
    }

    /// Namespace (default `T::NAME`): the unit of [`invalidate_namespace`](Self::invalidate_namespace).
    #[must_use]
    pub fn with_namespace(mut self, namespace: impl Into<String>) -> Self {
        self.core.namespace = namespace.into();
        self.core.keys = CacheKeys::new(&self.core.prefix, &self.core.namespace);
        self
    }

    /// Write with `codec` (reads accept both).
    #[must_use]
    pub fn with_codec(mut self, codec: Codec) -> Self {
        self.core.codec = codec;
        self
    }

    /// Skip schema validation on read (not recommended: a bad entry would be served).
    #[must_use]
    pub fn with_validation(mut self, on: bool) -> Self {
        self.core.validate = on;
        self
    }

    /// Share isolate-wide state (single-flight table, generations, counters).
    #[must_use]
    pub fn with_state(mut self, state: CacheState) -> Self {
        self.core.state = state;
        self
    }

    /// How long this isolate trusts the namespace generation it last read before reading it
    /// again (zero: read it on every call). Longer saves a KV read per call; it adds to the
    /// time other isolates take to see an [`invalidate_namespace`](Self::invalidate_namespace).
    #[must_use]
    pub fn with_generation_ttl(mut self, ttl: Duration) -> Self {
        self.core.generation_ttl_ms = millis(ttl);
        self
    }

    /// The random source of early refresh (tests pass a constant closure).
    #[must_use]
    pub fn with_random(mut self, random: Arc<dyn RandomSource>) -> Self {
        self.core.random = random;
        self
    }

    /// Run refreshes and post-miss writes on `background`, off the response path:
    /// [`WaitUntil`](crate::background) on Workers.
    pub fn with_background<B2: Background>(self, background: B2) -> CacheStore<T, B2> {
        CacheStore {
            core: self.core,
            background: Some(background),
            _type: PhantomData,
        }
    }

    /// The KV handle.
    pub fn kv(&self) -> &Kv {
        &self.core.kv
    }

    /// The key builder.
    pub fn keys(&self) -> &CacheKeys {
        &self.core.keys
    }

    /// The shared state.
    pub fn state(&self) -> &CacheState {
        &self.core.state
    }

    /// The background, if any.
    pub fn background(&self) -> Option<&B> {
        self.background.as_ref()
    }

    /// Counters of the shared state plus the KV handle's operation counts.
    pub fn stats(&self) -> CacheStats {
        self.core.state.inner.counters.snapshot(
            self.core.flights().len(),
            self.core.kv.counters().snapshot(),
        )
    }

    /// The full KV key of `key` in the current generation (reads the generation if needed).
    pub async fn key_for(&self, key: &str) -> Result<String> {
        self.core.entry_key(key).await
    }

    /// Return the cached value of `key`, or run `compute`, cache and return its value.
    ///
    /// KV problems never fail the call (see [`Cached::cache_error`]); the error returned is
    /// the computation's. `compute` is `'static` (and `Send` natively) because a refresh may
    /// run it in the background: move owned handles into it.
    ///
    /// Concurrent calls for one key in one isolate share one computation (`Coalesced`). On
    /// Workers (wasm32 + feature `worker`) the wait for another request's computation is
    /// polled in the waiting request's own context, with a timer pending so workerd does not
    /// cancel it as hung; nothing to wrap (`cache::in_own_context`, exported there for other
    /// cross-request waits, is how).
    pub async fn get_or_compute<F, Fut, E>(
        &self,
        key: &str,
        policy: &CachePolicy,
        compute: F,
    ) -> Result<Cached<T>, E>
    where
        F: FnOnce() -> Fut + MaybeSend + 'static,
        Fut: Future<Output = Result<T, E>> + MaybeSend + 'static,
        E: MaybeSend + 'static,
    {
        self.fetch::<T, F, Fut, E>(key, policy, compute).await
    }

    /// Like [`get_or_compute`](Self::get_or_compute) for a computation that may find nothing:
    /// `None` is remembered for the policy's [negative TTL](CachePolicy::with_negative_ttl)
    /// (not at all without one) and served as a hit.
    pub async fn get_or_compute_optional<F, Fut, E>(
        &self,
        key: &str,
        policy: &CachePolicy,
        compute: F,
    ) -> Result<Cached<Option<T>>, E>
    where
        F: FnOnce() -> Fut + MaybeSend + 'static,
        Fut: Future<Output = Result<Option<T>, E>> + MaybeSend + 'static,
        E: MaybeSend + 'static,
    {
        self.fetch::<Option<T>, F, Fut, E>(key, policy, compute)
            .await
    }

    async fn fetch<V, F, Fut, E>(
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
        let counters = self.core.counters();
        match &result {
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
        result
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
        let stored = match core.kv.get(&full).await {
            Ok(s) => s,
            // We do not know what is stored (maybe a newer version): compute, don't write.
            Err(e) => return self.uncached(compute, e).await,
        };
        let now = core.kv.now_ms();
        let found = match stored {
            None => Found::Missing,
            Some(s) => classify::<T>(&s, now, core.validate),
        };
        let mut writable = true;
        let mut cache_error = None;
        match found {
            Found::Value { value, timing } => {
                let timing = timing.capped(policy);
                let freshness = timing.freshness(now);
                if let (Some(value), false) =
                    (V::from_option(Some(value)), freshness == Freshness::Expired)
                {
                    let mut cached = Cached::new(value, CacheStatus::Hit, timing.computed_at);
                    if freshness == Freshness::Fresh {
                        if !core.refresh_early(&timing, now, policy) {
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
            Found::Future(e) => {
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

    /// Compute without the cache (unknown generation, bad key, failed read).
    async fn uncached<V, F, Fut, E>(&self, compute: F, error: Error) -> Result<Cached<V>, E>
    where
        V: Slot<T>,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<V, E>>,
    {
        self.core.counters().errors.inc();
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

    /// Read `key` without computing: a fresh (`Hit`) or stale (`Stale`) value, or `None`
    /// when missing, expired, remembered as "not found", unusable or newer than this code.
    /// Uses the stored timing (no policy). KV errors are returned.
    pub async fn get(&self, key: &str) -> Result<Option<Cached<T>>> {
        let core = &self.core;
        let full = core.entry_key(key).await?;
        let stored = core.kv.get(&full).await?;
        let now = core.kv.now_ms();
        let found = stored.map_or(Found::Missing, |s| classify::<T>(&s, now, core.validate));
        let cached = match found {
            Found::Value { value, timing } => match timing.freshness(now) {
                Freshness::Fresh => Some(Cached::new(value, CacheStatus::Hit, timing.computed_at)),
                Freshness::Stale => {
                    Some(Cached::new(value, CacheStatus::Stale, timing.computed_at))
                }
                Freshness::Expired => None,
            },
            Found::Corrupt(_) => {
                core.counters().corrupt_entries.inc();
                None
            }
            Found::Future(_) => {
                core.counters().future_version_entries.inc();
                None
            }
            Found::Missing | Found::Absent => None,
        };
        match &cached {
            Some(c) if c.status == CacheStatus::Stale => core.counters().stale_served.inc(),
            Some(_) => core.counters().hits.inc(),
            None => core.counters().misses.inc(),
        }
        Ok(cached)
    }

    /// Write `value` under `key`, computed now, with `policy`'s TTL and grace. Reads first and
    /// refuses ([`Error::FutureVersion`]) to replace a value written by newer code; a
    /// computation of `key` in flight in this isolate will not overwrite it. A 429 is returned
    /// as [`Error::RateLimited`].
    pub async fn put(&self, key: &str, value: &T, policy: &CachePolicy) -> Result<()> {
        let core = &self.core;
        let full = core.entry_key(key).await?;
        if let Some(stored) = core.kv.get(&full).await? {
            if let Ok(header) = envelope::peek_header(&stored.value) {
                if let Err(e @ Error::FutureVersion { .. }) =
                    check_header::<T>(&header, core.kv.now_ms())
                {
                    return Err(e);
                }
            }
        }
        core.flights().invalidate(&full);
        let now = core.kv.now_ms();
        let Some(write) = prepare(full, Some(value), policy, core.codec, now, 0)? else {
            return Ok(());
        };
        core.kv
            .put(
                &write.key,
                &write.bytes,
                Some(write.expires_at),
                Some(write.metadata),
            )
            .await
    }

    /// Delete `key` in the current generation. A computation of it in flight in this isolate
    /// will not write its (possibly outdated) result. Other locations may serve the old value
    /// until the delete propagates (up to about 60 s).
    pub async fn invalidate(&self, key: &str) -> Result<()> {
        let full = self.core.entry_key(key).await?;
        self.core.flights().invalidate(&full);
        self.core.kv.delete(&full).await
    }

    /// Invalidate every key of the namespace by moving it to a new generation, without listing
    /// keys; returns the new generation. This isolate sees it at once; others within their
    /// [generation TTL](Self::with_generation_ttl) plus KV propagation (up to about 60 s).
    /// Old entries expire by their TTL.
    ///
    /// The new generation is `max(current + 1, now_ms)`, so concurrent bumps and bumps that
    /// read a stale generation still move forward. Two bumps within a second hit KV's write
    /// limit: the second returns [`Error::RateLimited`] and should be retried.
    pub async fn invalidate_namespace(&self) -> Result<u64> {
        let core = &self.core;
        let key = core.keys.generation();
        let now = core.kv.now_ms();
        let current = match core.kv.get(&key).await? {
            None => 0,
            Some(stored) => match decode_value::<NamespaceGeneration>(&stored.value, now, true) {
                Ok(d) => d.map_or(0, |d| d.value.generation),
                Err(e @ Error::FutureVersion { .. }) => return Err(e),
                // An unreadable record already disables the cache; replacing it repairs it.
                Err(_) => 0,
            },
        };
        let known = core.state.known_generation(&key).unwrap_or(0).max(current);
        let next = known.saturating_add(1).max(now);
        let record = NamespaceGeneration { generation: next };
        let bytes = encode_value(&record, Codec::Json, None)?;
        let header = Header {
            codec: Codec::Json,
            type_name: NamespaceGeneration::NAME.into(),
            version: NamespaceGeneration::VERSION,
            expires_at: None,
        };
        core.kv
            .put(&key, &bytes, None, Some(header.to_metadata()))
            .await?;
        core.state.remember_generation(&key, next, now);
        Ok(next)
    }
}
