//! Writing without computing: [`put`](KvCache::put) (never over newer data), and invalidation
//! of one key or of the whole namespace (a new generation).

use super::{entry::prepare, CachePolicy, KvCache, NamespaceGeneration};
use crate::{
    background::Background,
    envelope::{self, Codec, Header},
    error::Result,
    seal::check_key_id,
    store::{may_replace, Overwrite},
    versioned::{check_header, encode_value, Versioned},
};

impl<T, B> KvCache<T, B>
where
    T: Versioned + Clone + Send + Sync,
    B: Background,
{
    /// Write `value` under `key`, computed now, with `policy`'s TTL and grace. Reads first and
    /// refuses ([`Error::FutureVersion`](crate::Error::FutureVersion)) to replace a value written by newer code; a
    /// computation of `key` in flight in this isolate will not overwrite it. A 429 is returned
    /// as [`Error::RateLimited`](crate::Error::RateLimited).
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
    /// ([`Error::CacheBypassed`](crate::Error::CacheBypassed)) nothing is deleted: the cache
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
    /// [`Error::CacheBypassed`](crate::Error::CacheBypassed). Two bumps within a second hit KV's write
    /// limit: the second returns [`Error::RateLimited`](crate::Error::RateLimited) and should be retried.
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
