//! The store's core, shared by every clone of a [`KvCache`](super::KvCache) and by the
//! background refreshes it starts: where entries live (the generation of the namespace, the
//! entry key), running a computation and timing it, writing its result, and the early-refresh
//! draw (XFetch).

use std::{future::Future, sync::Arc};

use super::{
    entry::{prepare, PreparedWrite, Timing},
    fetch::Slot,
    flight::{Flights, Leader},
    memory::{Fill, Tier},
    random::{self, RandomSource},
    stats::Counters,
    CacheKeys, CachePolicy, CacheState, NamespaceGeneration,
};
use crate::{
    backend::Kv,
    envelope::Codec,
    error::{Error, Result},
    seal::KeyRing,
    versioned::{decode_value, Versioned},
};

/// A computed value on its way to KV, holding the flight open until it lands.
pub(super) struct Pending<T> {
    write: Result<Option<PreparedWrite>>,
    leader: Option<Leader<T>>,
    /// The value, for the memory tier once the write landed, and the tier's epoch when the
    /// computation started.
    remember: Option<(T, u64)>,
}

/// Everything a background task needs: no borrow of the store, no background handle.
#[derive(Clone)]
pub(super) struct Core {
    pub(super) kv: Kv,
    pub(super) state: CacheState,
    pub(super) prefix: String,
    pub(super) namespace: String,
    pub(super) keys: CacheKeys,
    pub(super) codec: Codec,
    pub(super) validate: bool,
    pub(super) seal: Option<KeyRing>,
    /// Whether this store uses its state's memory tier (when the state has one).
    pub(super) memory: bool,
    pub(super) generation_ttl_ms: u64,
    pub(super) random: Arc<dyn RandomSource>,
}

impl Core {
    pub(super) fn counters(&self) -> &Counters {
        &self.state.inner.counters
    }

    pub(super) fn flights(&self) -> &Arc<Flights> {
        &self.state.inner.flights
    }

    /// Forget `full` in this isolate's memory tier (whether or not this store reads from it).
    pub(super) fn forget(&self, full: &str) {
        if let Some(tier) = &self.state.inner.memory {
            tier.invalidate(full);
        }
    }

    /// The isolate-memory tier this store uses, if any.
    pub(super) fn tier(&self) -> Option<&Tier> {
        self.state.inner.memory.as_ref().filter(|_| self.memory)
    }

    /// The namespace generation: from this isolate's memory when read less than
    /// `generation_ttl` ago, else from KV. A record this code cannot use (corrupt, of another
    /// type, or written by newer code) is [`Error::CacheBypassed`]: which entries are current
    /// is unknown, so callers neither read nor write entries (generation 0 could serve entries
    /// a newer deploy invalidated), and nothing overwrites the record.
    pub(super) async fn generation(&self) -> Result<u64> {
        let key = self.keys.generation();
        let now = self.kv.now_ms();
        if let Some(g) = self
            .state
            .cached_generation(&key, now, self.generation_ttl_ms)
        {
            return Ok(g);
        }
        let read = self.read_generation(&key, now).await?;
        Ok(self.state.remember_generation(&key, read, now))
    }

    /// The generation stored under `key` (0 when there is none), read from KV.
    pub(super) async fn read_generation(&self, key: &str, now: u64) -> Result<u64> {
        let Some(stored) = self.kv.get(key).await? else {
            return Ok(0);
        };
        match decode_value::<NamespaceGeneration>(&stored.value, now, true) {
            Ok(d) => Ok(d.map_or(0, |d| d.value.generation)),
            Err(e) => {
                self.counters().bypassed.inc();
                Err(Error::CacheBypassed {
                    namespace: self.namespace.clone(),
                    cause: e.kind(),
                })
            }
        }
    }

    pub(super) async fn entry_key(&self, key: &str) -> Result<String> {
        let generation = self.generation().await?;
        let full = self.keys.entry(generation, key);
        crate::backend::check_key(&full)?;
        Ok(full)
    }

    /// Run a computation (as the flight's leader, or alone), publish its result to the
    /// followers, and prepare the write when `writable`.
    pub(super) async fn run<T, V, F, Fut, E>(
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
        let epoch = self.tier().map(Tier::epoch);
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
        let remember = epoch.and_then(|e| value.as_option().map(|v| (v.clone(), e)));
        let pending = writable.then(|| Pending {
            remember,
            write: prepare(
                key,
                value.as_option(),
                policy,
                self.codec,
                self.seal.as_ref(),
                computed_at,
                computed_at.saturating_sub(started),
            ),
            leader,
        });
        Ok((value, computed_at, pending))
    }

    /// Write a computed value. A 429 (another write to the key in the last second) is not an
    /// error: the value was served, and someone else just wrote the key.
    pub(super) async fn store<T: Clone + Send + Sync + 'static>(
        &self,
        pending: Pending<T>,
    ) -> Result<()> {
        let Pending {
            write,
            leader,
            remember,
        } = pending;
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
        // What the memory tier keeps once the write landed: the value with the timing written.
        let remember = remember.map(|(value, epoch)| {
            let timing = Timing::read(Some(write.expires_at), Some(&write.metadata));
            (value, epoch, timing)
        });
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
            Ok(()) => {
                if let (Some(tier), Some((value, epoch, timing))) = (self.tier(), remember) {
                    let now = self.kv.now_ms();
                    let size = write.bytes.len();
                    tier.insert(&write.key, Fill::Value(&value), timing, size, now, epoch);
                }
                Ok(())
            }
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
    pub(super) fn refresh_early(&self, timing: &Timing, now: u64, policy: &CachePolicy) -> bool {
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
