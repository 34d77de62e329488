//! Cache-aside on KV: TTL presets, namespace invalidation, stampede defences.
//!
//! A [`KvCache<T>`] keeps values of one [`Versioned`] type under
//! `<prefix>:<namespace>:g<generation>:<key>` (see [`CacheKeys`]). Values are ordinary
//! envelopes, so they are validated and migrated on read; cache bookkeeping (when a value was
//! computed, how long it took, until when it is fresh) rides in the KV metadata written with it.
//!
//! * [`get_or_compute`](KvCache::get_or_compute): read, and on a miss run the computation,
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
mod fetch;
mod flight;
mod keys;
mod memory;
mod passthrough;
mod policy;
mod random;
mod state;
mod stats;
mod status;
#[cfg(all(feature = "worker", target_arch = "wasm32"))]
mod workers;

use std::{fmt, future::Future, marker::PhantomData, sync::Arc, time::Duration};

#[cfg(all(feature = "worker", target_arch = "wasm32"))]
pub use self::workers::in_own_context;
use self::{
    entry::{classify, classify_json, prepare, Found, Freshness, Timing},
    fetch::Core,
    memory::{Fill, Tier},
    policy::millis,
    random::OsRandom,
};
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
    backend::{Kv, Stored},
    background::{Background, BoxFuture},
    envelope::{self, Codec, Header},
    error::{Error, Result},
    seal::{check_key_id, KeyRing},
    store::{may_replace, Overwrite},
    versioned::{check_header, encode_value, Versioned},
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

    /// [`get_or_compute`](Self::get_or_compute) for a caller that only forwards the value
    /// (a response body): the validated JSON text, as [`get_json`](Self::get_json) gives it.
    /// A fresh entry, in the memory tier or in KV, is handed out without building `T`;
    /// anything else (stale, missing, unreadable, due for an early refresh) takes the typed
    /// path on what was already read (still one KV read) and serializes the value it ends
    /// with. Same statuses, coalescing, refreshes and counters as `get_or_compute`.
    pub async fn get_or_compute_json<F, Fut, E>(
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

    /// Read `key` without computing: a fresh (`Hit`) or stale (`Stale`) value, or `None`
    /// when missing, expired, remembered as "not found", unusable or newer than this code.
    /// Uses the stored timing (no policy). KV errors are returned.
    pub async fn get(&self, key: &str) -> Result<Option<Cached<T>>> {
        self.read_one::<AsValue>(key).await
    }

    /// Validated pass-through: like [`get`](Self::get), the JSON text of the value instead of
    /// the value, for callers that only forward it (a response body). The current version
    /// stored as JSON is validated against its schema and handed out as stored, without
    /// building `T` (a sealed one: the opened payload); an older version is migrated, and
    /// postcard decoded, then serialized as JSON. With validation off it always builds `T`.
    /// Same freshness rules, counters and verdicts as `get`; the memory tier holds the text.
    pub async fn get_json(&self, key: &str) -> Result<Option<Cached<JsonText>>> {
        self.read_one::<AsJson>(key).await
    }

    /// [`get`](Self::get) of many keys: one entry per key, in order. Keys the memory tier
    /// holds cost nothing; the rest are read with [`Kv::get_many`] (on Workers KV, bulk gets
    /// of up to 100 keys, each billed as one operation; postcard and sealed entries cost a
    /// single read each, since a bulk get returns only text). The generation is read at most
    /// once. An invalid key or a KV error fails the call.
    pub async fn get_many(&self, keys: &[&str]) -> Result<Vec<Option<Cached<T>>>> {
        self.read_many::<AsValue>(keys).await
    }

    /// [`get_json`](Self::get_json) of many keys (see [`get_many`](Self::get_many)).
    pub async fn get_many_json(&self, keys: &[&str]) -> Result<Vec<Option<Cached<JsonText>>>> {
        self.read_many::<AsJson>(keys).await
    }

    async fn read_one<M: ReadAs<T>>(&self, key: &str) -> Result<Option<Cached<M::Out>>> {
        let core = &self.core;
        let full = match core.entry_key(key).await {
            Ok(full) => full,
            Err(Error::CacheBypassed { .. }) => {
                core.counters().misses.inc();
                return Ok(None);
            }
            Err(e) => return Err(e),
        };
        if let Some(hit) = self.memory_hit::<M>(&full) {
            return Ok(Some(hit));
        }
        let epoch = core.tier().map(Tier::epoch);
        let stored = core.kv.get(&full).await?;
        Ok(self.judge::<M>(&full, stored, epoch))
    }

    async fn read_many<M: ReadAs<T>>(&self, keys: &[&str]) -> Result<Vec<Option<Cached<M::Out>>>> {
        let core = &self.core;
        let generation = match core.generation().await {
            Ok(generation) => generation,
            // Which entries are current is unknown: every key misses (the keys still checked).
            Err(Error::CacheBypassed { .. }) => {
                for key in keys {
                    crate::backend::check_key(&core.keys.entry(0, key))?;
                    core.counters().misses.inc();
                }
                return Ok(keys.iter().map(|_| None).collect());
            }
            Err(e) => return Err(e),
        };
        let mut out: Vec<Option<Cached<M::Out>>> = Vec::with_capacity(keys.len());
        let mut wanted: Vec<(usize, String)> = Vec::new();
        for (i, key) in keys.iter().enumerate() {
            let full = core.keys.entry(generation, key);
            crate::backend::check_key(&full)?;
            out.push(self.memory_hit::<M>(&full));
            if out[i].is_none() {
                wanted.push((i, full));
            }
        }
        if wanted.is_empty() {
            return Ok(out);
        }
        let epoch = core.tier().map(Tier::epoch);
        let refs: Vec<&str> = wanted.iter().map(|(_, k)| k.as_str()).collect();
        let stored = core.kv.get_many(&refs).await?;
        for ((i, full), stored) in wanted.iter().zip(stored) {
            out[*i] = self.judge::<M>(full, stored, epoch);
        }
        Ok(out)
    }

    /// A fresh value of `full` from the memory tier (counted as a hit).
    fn memory_hit<M: ReadAs<T>>(&self, full: &str) -> Option<Cached<M::Out>> {
        let tier = self.core.tier()?;
        let now = self.core.kv.now_ms();
        let (value, timing) = M::from_tier(tier, full, now)?;
        if timing.freshness(now) != Freshness::Fresh {
            return None;
        }
        tier.count_hit();
        self.core.counters().hits.inc();
        let mut cached = Cached::new(value, CacheStatus::Hit, timing.computed_at);
        cached.from_memory = true;
        Some(cached)
    }

    /// The verdict on what was read from `full` (the `get` rules), counted; a fresh value goes
    /// to the memory tier.
    fn judge<M: ReadAs<T>>(
        &self,
        full: &str,
        stored: Option<Stored>,
        epoch: Option<u64>,
    ) -> Option<Cached<M::Out>> {
        let core = &self.core;
        let now = core.kv.now_ms();
        let size = stored.as_ref().map_or(0, |s| s.value.len());
        let found = stored.map_or(Found::Missing, |s| {
            M::classify(full, &s, core.seal.as_ref(), now, core.validate)
        });
        let cached = match found {
            Found::Value { value, timing } => match timing.freshness(now) {
                Freshness::Fresh => {
                    if let (Some(tier), Some(epoch)) = (core.tier(), epoch) {
                        M::fill(tier, full, &value, timing, size, now, epoch);
                    }
                    Some(Cached::new(value, CacheStatus::Hit, timing.computed_at))
                }
                Freshness::Stale => {
                    Some(Cached::new(value, CacheStatus::Stale, timing.computed_at))
                }
                Freshness::Expired => None,
            },
            Found::Corrupt(_) => {
                core.counters().corrupt_entries.inc();
                None
            }
            Found::Protected(_) => {
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
        cached
    }

    /// Write `value` under `key`, computed now, with `policy`'s TTL and grace. Reads first and
    /// refuses ([`Error::FutureVersion`]) to replace a value written by newer code; a
    /// computation of `key` in flight in this isolate will not overwrite it. A 429 is returned
    /// as [`Error::RateLimited`].
    pub async fn put(&self, key: &str, value: &T, policy: &CachePolicy) -> Result<()> {
        let core = &self.core;
        let full = core.entry_key(key).await?;
        if let Some(stored) = core.kv.get(&full).await? {
            // The header decides (a cache may replace what it cannot read, never newer data).
            let read = envelope::peek_header(&stored.value).and_then(|header| {
                check_header::<T>(&header, core.kv.now_ms())?;
                check_key_id(core.seal.as_ref(), &header, T::NAME)
            });
            if let Err(e) = read {
                may_replace(e, Overwrite::AllowCorrupt)?;
            }
        }
        core.flights().invalidate(&full);
        core.forget(&full);
        let now = core.kv.now_ms();
        let Some(write) = prepare(
            full,
            Some(value),
            policy,
            core.codec,
            core.seal.as_ref(),
            now,
            0,
        )?
        else {
            return Ok(());
        };
        let result = core
            .kv
            .put(
                &write.key,
                &write.bytes,
                Some(write.expires_at),
                Some(write.metadata),
            )
            .await;
        // Again once KV has it: a read in this isolate between the two may have filled the
        // memory tier with the old value (its fill is refused: the epoch moved).
        core.forget(&write.key);
        result
    }

    /// Delete `key` in the current generation. A computation of it in flight in this isolate
    /// will not write its (possibly outdated) result. While the generation record is unusable
    /// ([`Error::CacheBypassed`]) nothing is deleted: the cache
    /// is bypassed anyway. Other locations may serve the old value
    /// until the delete propagates (up to about 60 s).
    pub async fn invalidate(&self, key: &str) -> Result<()> {
        let full = self.core.entry_key(key).await?;
        self.core.flights().invalidate(&full);
        self.core.forget(&full);
        let result = self.core.kv.delete(&full).await;
        self.core.forget(&full);
        result
    }

    /// Invalidate every key of the namespace by moving it to a new generation, without listing
    /// keys; returns the new generation. This isolate sees it at once; others within their
    /// [generation TTL](Self::with_generation_ttl) plus KV propagation (up to about 60 s).
    /// Old entries expire by their TTL.
    ///
    /// The new generation is `max(current + 1, now_ms)`, so concurrent bumps and bumps that
    /// read a stale generation still move forward. A generation record this code cannot use
    /// (corrupt, of another type, written by newer code) is left as it is:
    /// [`Error::CacheBypassed`]. Two bumps within a second hit KV's write
    /// limit: the second returns [`Error::RateLimited`] and should be retried.
    pub async fn invalidate_namespace(&self) -> Result<u64> {
        let core = &self.core;
        let key = core.keys.generation();
        let now = core.kv.now_ms();
        // A record this code cannot use is never replaced: `Error::CacheBypassed`.
        let current = core.read_generation(&key, now).await?;
        let known = core.state.known_generation(&key).unwrap_or(0).max(current);
        let next = known.saturating_add(1).max(now);
        let record = NamespaceGeneration { generation: next };
        let bytes = encode_value(&record, Codec::Json, None)?;
        let header = Header {
            codec: Codec::Json,
            type_name: NamespaceGeneration::NAME.into(),
            version: NamespaceGeneration::VERSION,
            expires_at: None,
            key_id: None,
        };
        core.kv
            .put(&key, &bytes, None, Some(header.to_metadata()))
            .await?;
        core.state.remember_generation(&key, next, now);
        if let Some(tier) = &core.state.inner.memory {
            tier.invalidate_prefix(core.keys.namespace_prefix());
        }
        Ok(next)
    }
}

/// How a read hands out what it found: the value ([`AsValue`]) or its JSON text ([`AsJson`]).
trait ReadAs<T> {
    type Out;
    fn classify(
        key: &str,
        stored: &Stored,
        ring: Option<&KeyRing>,
        now: u64,
        validate: bool,
    ) -> Found<Self::Out>;
    fn from_tier(tier: &Tier, key: &str, now: u64) -> Option<(Self::Out, Timing)>;
    fn fill(
        tier: &Tier,
        key: &str,
        value: &Self::Out,
        timing: Timing,
        size: usize,
        now: u64,
        epoch: u64,
    );
}

enum AsValue {}
enum AsJson {}

impl<T: Versioned + Clone + Send + Sync> ReadAs<T> for AsValue {
    type Out = T;
    fn classify(
        key: &str,
        stored: &Stored,
        ring: Option<&KeyRing>,
        now: u64,
        validate: bool,
    ) -> Found<T> {
        classify::<T>(key, stored, ring, now, validate)
    }
    fn from_tier(tier: &Tier, key: &str, now: u64) -> Option<(T, Timing)> {
        tier.get_value::<T>(key, now)
    }
    fn fill(tier: &Tier, key: &str, value: &T, timing: Timing, size: usize, now: u64, epoch: u64) {
        tier.insert(key, Fill::Value(value), timing, size, now, epoch);
    }
}

impl<T: Versioned + Clone + Send + Sync> ReadAs<T> for AsJson {
    type Out = JsonText;
    fn classify(
        key: &str,
        stored: &Stored,
        ring: Option<&KeyRing>,
        now: u64,
        validate: bool,
    ) -> Found<JsonText> {
        classify_json::<T>(key, stored, ring, now, validate)
    }
    fn from_tier(tier: &Tier, key: &str, now: u64) -> Option<(JsonText, Timing)> {
        tier.get_json::<T>(key, now)
    }
    fn fill(
        tier: &Tier,
        key: &str,
        value: &JsonText,
        timing: Timing,
        size: usize,
        now: u64,
        epoch: u64,
    ) {
        tier.insert::<T>(key, Fill::Json(value), timing, size, now, epoch);
    }
}
