//! Cache-aside on KV: TTL presets, namespace invalidation, stampede defences.
//!
//! A [`KvCache<T>`] keeps values of one [`Versioned`] type under
//! `<prefix>:<namespace>:g<generation>:<key>` (see [`CacheKeys`]). Values are ordinary
//! envelopes, so they are validated and migrated on read; cache bookkeeping (when a value was
//! computed, how long it took, until when it is fresh) rides in the KV metadata written with it.
//!
//! * [`try_get_or_compute`](KvCache::try_get_or_compute): read, and on a miss run the computation,
//!   return its value and write it. Never fails because of KV: a read error, an unusable entry
//!   or a refused write is absorbed (counted, and reported in [`Cached::cache_error`]); the only
//!   error it returns is the computation's.
//! * Stampede defences: concurrent misses for one key in one isolate share one computation
//!   (single-flight); hits refresh early with a probability that rises near expiry (XFetch);
//!   inside a stale grace window a stale value is served at once and refreshed through a
//!   [`Background`] (`Context::wait_until` on Workers).
//! * [`invalidate`](KvCache::invalidate) deletes one key;
//!   [`invalidate_namespace`](KvCache::invalidate_namespace) bumps the namespace
//!   generation, orphaning every entry at once without listing keys.
//!
//! ```
//! # futures::executor::block_on(async {
//! use std::{convert::Infallible, sync::Arc};
//! use kv_envelope::{cache::{CachePolicy, CacheStatus, KvCache}, Kv, ManualClock, MemoryKv};
//! # use serde::{Deserialize, Serialize};
//! # #[derive(Clone, Serialize, Deserialize, schemars::JsonSchema)]
//! # struct Product { name: String }
//! # kv_envelope::versioned! { name: "product", versions: [Product] }
//!
//! let clock = Arc::new(ManualClock::new(1_764_000_000_000));
//! let kv = Kv::new(MemoryKv::new(clock.clone())).with_clock(clock);
//! let cache = KvCache::<Product>::new(kv);
//!
//! let load = || async { Ok::<_, Infallible>(Product { name: "lamp".into() }) };
//! let first = cache.try_get_or_compute("42", &CachePolicy::QUERY_CACHE, load).await.unwrap();
//! assert_eq!(first.status, CacheStatus::Miss);
//! let second = cache.try_get_or_compute("42", &CachePolicy::QUERY_CACHE, load).await.unwrap();
//! assert_eq!(second.status.as_str(), "hit");
//! assert_eq!(second.value.name, "lamp");
//! # });
//! ```
//!
//! See `docs/cache.md` for the consistency window of invalidation and the stampede behaviour.

mod core;
mod entry;
mod fetch;
mod flight;
mod keys;
mod memory;
mod passthrough;
mod policy;
mod random;
mod read;
mod state;
mod stats;
mod status;
#[cfg(all(feature = "worker", target_arch = "wasm32"))]
mod workers;
mod write;

use std::{fmt, future::Future, marker::PhantomData, sync::Arc, time::Duration};

#[cfg(all(feature = "worker", target_arch = "wasm32"))]
pub use self::workers::in_own_context;
use self::{core::Core, policy::millis, random::OsRandom};
pub use self::{
    keys::{CacheKeys, NamespaceGeneration},
    memory::MemoryTier,
    passthrough::{ComputeJsonError, JsonText},
    policy::CachePolicy,
    random::RandomSource,
    state::CacheState,
    stats::CacheStats,
    status::{CacheStatus, Cached},
};
use crate::{
    backend::Kv,
    background::{Background, BoxFuture},
    envelope::Codec,
    error::Result,
    seal::KeyRing,
    versioned::Versioned,
};

pub(crate) use crate::send::MaybeSend;

/// Default time an isolate trusts the namespace generation it last read.
pub(crate) const DEFAULT_GENERATION_TTL: Duration = Duration::from_secs(10);

/// The background of a store that has none: it cannot be constructed, so a
/// `KvCache<T, NoBackground>` refreshes and writes inline, in the calling request.
#[derive(Debug, Clone, Copy)]
pub enum NoBackground {}

impl Background for NoBackground {
    fn spawn(&self, _fut: BoxFuture) {
        match *self {}
    }
}

/// Cache-aside store of `T` values; see the [module docs](self).
///
/// `B` is where refreshes and post-miss writes run: [`NoBackground`] (the default) runs them
/// inline; [`with_background`](Self::with_background) takes a
/// [`WaitUntil`](crate::background) on Workers, a spawner natively, or a
/// [`Deferred`](crate::background::Deferred) queue in tests.
pub struct KvCache<T, B = NoBackground> {
    core: Core,
    background: Option<B>,
    _type: PhantomData<fn() -> T>,
}

impl<T, B: Clone> Clone for KvCache<T, B> {
    fn clone(&self) -> Self {
        Self {
            core: self.core.clone(),
            background: self.background.clone(),
            _type: PhantomData,
        }
    }
}

impl<T, B> fmt::Debug for KvCache<T, B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KvCache")
            .field("keys", &self.core.keys.namespace_prefix())
            .field("codec", &self.core.codec)
            .field("background", &self.background.is_some())
            .finish_non_exhaustive()
    }
}

impl<T: Versioned + Clone + Send + Sync> KvCache<T> {
    /// A store on `kv`: prefix `cache`, namespace `T::NAME`, JSON codec, validation on, fresh
    /// [`CacheState`], no background, generation trusted for 10 s.
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
                seal: None,
                memory: true,
                generation_ttl_ms: millis(DEFAULT_GENERATION_TTL),
                random: Arc::new(OsRandom),
            },
            background: None,
            _type: PhantomData,
        }
    }
}

impl<T, B> KvCache<T, B>
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

    /// Seal entries with `ring` (see [`TypedStore::with_sealing`](crate::TypedStore::with_sealing)):
    /// cached values are unreadable in KV without a key. Entries in clear are misses that are
    /// replaced (unless the ring opts into reading them, [`KeyRing::requiring_sealed`]); an entry sealed with a key id the ring lacks is a miss
    /// that is never overwritten (a rotation mistake loses nothing, and its TTL ends it).
    /// "Not found" entries and namespace generations hold no data and stay in clear.
    #[must_use]
    pub fn with_sealing(mut self, ring: KeyRing) -> Self {
        self.core.seal = Some(ring);
        self
    }

    /// Share isolate-wide state (single-flight table, generations, counters).
    #[must_use]
    pub fn with_state(mut self, state: CacheState) -> Self {
        self.core.state = state;
        self
    }

    /// Whether this store uses the isolate-memory tier of its [`CacheState`] (on by default;
    /// only a state built with [`CacheState::with_memory_tier`] has one). Off: every read goes
    /// to KV. Invalidations clear the tier either way.
    #[must_use]
    pub fn with_memory_tier(mut self, on: bool) -> Self {
        self.core.memory = on;
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
    pub fn with_background<B2: Background>(self, background: B2) -> KvCache<T, B2> {
        KvCache {
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
        self.core
            .state
            .stats_with_kv(self.core.kv.counters().snapshot())
    }

    /// The full KV key of `key` in the current generation (reads the generation if needed).
    pub async fn key_for(&self, key: &str) -> Result<String> {
        self.core.entry_key(key).await
    }

    /// The cached value of `key`, or the value of `compute` (run, cached and returned) — for a
    /// computation that cannot fail; [`try_get_or_compute`](Self::try_get_or_compute) takes one
    /// that can (as moka's `get_with` and `try_get_with`). Nothing fails the call: KV problems
    /// are absorbed and reported in [`Cached::cache_error`]. `compute` is `'static` (and `Send`
    /// natively) because a refresh may run it in the background: move owned handles into it.
    ///
    /// ```
    /// # use kv_envelope::{cache::{CachePolicy, KvCache}, Kv, MemoryKv};
    /// # #[derive(Clone, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
    /// # struct Answer { value: u32 }
    /// # kv_envelope::versioned! { name: "answer", versions: [Answer] }
    /// # futures::executor::block_on(async {
    /// let cache: KvCache<Answer> = KvCache::new(Kv::new(MemoryKv::default()));
    /// let policy = CachePolicy::new(std::time::Duration::from_secs(300));
    /// let answer = cache
    ///     .get_or_compute("life", &policy, || async { Answer { value: 42 } })
    ///     .await;
    /// assert_eq!(answer.value.value, 42);
    /// # });
    /// ```
    pub async fn get_or_compute<F, Fut>(
        &self,
        key: &str,
        policy: &CachePolicy,
        compute: F,
    ) -> Cached<T>
    where
        F: FnOnce() -> Fut + MaybeSend + 'static,
        Fut: Future<Output = T> + MaybeSend + 'static,
    {
        let compute = move || async move { Ok::<T, std::convert::Infallible>(compute().await) };
        match self
            .fetch::<T, _, _, std::convert::Infallible>(key, policy, compute)
            .await
        {
            Ok(cached) => cached,
            Err(never) => match never {},
        }
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
    pub async fn try_get_or_compute<F, Fut, E>(
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

    /// Like [`try_get_or_compute`](Self::try_get_or_compute) for a computation that may find nothing:
    /// `None` is remembered for the policy's [negative TTL](CachePolicy::with_negative_ttl)
    /// (not at all without one) and served as a hit.
    pub async fn try_get_or_compute_optional<F, Fut, E>(
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

    /// [`try_get_or_compute`](Self::try_get_or_compute) for a caller that only forwards the value
    /// (a response body): the validated JSON text, as [`get_json`](Self::get_json) gives it.
    /// A fresh entry, in the memory tier or in KV, is handed out without building `T`;
    /// anything else (stale, missing, unreadable, due for an early refresh) takes the typed
    /// path on what was already read (still one KV read) and serializes the value it ends
    /// with. Same statuses, coalescing, refreshes and counters as `try_get_or_compute`.
    pub async fn try_get_or_compute_json<F, Fut, E>(
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
        self.fetch_json(key, policy, compute).await
    }
}
