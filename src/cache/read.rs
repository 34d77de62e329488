//! Reading entries without computing: one key or many (one bulk get), the memory tier first,
//! each entry judged fresh, stale or missing; as the value or as its JSON text ([`ReadAs`]).

use super::{
    entry::{classify, classify_json, Found, Freshness, Timing},
    memory::{Fill, Tier},
    passthrough::JsonText,
    CacheStatus, Cached, KvCache,
};
use crate::{
    backend::Stored,
    background::Background,
    error::{Error, Result},
    seal::KeyRing,
    versioned::Versioned,
};

impl<T, B> KvCache<T, B>
where
    T: Versioned + Clone + Send + Sync,
    B: Background,
{
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
    /// holds cost nothing; the rest are read with [`Kv::get_many`](crate::backend::Kv::get_many) (on Workers KV, bulk gets
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
}

/// How a read hands out what it found: the value ([`AsValue`]) or its JSON text ([`AsJson`]).
pub(super) trait ReadAs<T> {
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

pub(super) enum AsValue {}

pub(super) enum AsJson {}

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
