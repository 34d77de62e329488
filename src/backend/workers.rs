//! Workers KV over the `worker` crate's [`KvStore`](worker::kv::KvStore) (wasm32 only).

use super::{bulk_text_is_exact, BulkRead, KvBackend, ListKey, ListPage, Stored, WriteOptions};
use crate::error::{Error, Result};

/// A Workers KV namespace binding.
pub struct WorkersKv {
    store: worker::kv::KvStore,
    cache_ttl: Option<u64>,
}

impl WorkersKv {
    /// Wrap a binding (e.g. `env.kv("SESSIONS")?`).
    pub fn new(store: worker::kv::KvStore) -> Self {
        Self {
            store,
            cache_ttl: None,
        }
    }

    /// Let the edge cache reads for `secs` (KV's `cacheTtl`, ≥ 60). Off by default: cached
    /// reads hide writes made elsewhere for that long.
    #[must_use]
    pub fn with_cache_ttl(mut self, secs: u64) -> Self {
        self.cache_ttl = Some(secs.max(60));
        self
    }
}

fn backend_err(op: &'static str, e: &worker::kv::KvError) -> Error {
    let message = e.to_string();
    if message.contains("429") || message.contains("Too Many Requests") {
        return Error::RateLimited;
    }
    Error::Backend {
        op,
        // KV error strings carry a status and reason, never the value; cap the length anyway.
        message: message.chars().take(200).collect(),
        retryable: message.contains("50"),
    }
}

#[async_trait::async_trait(?Send)]
impl KvBackend for WorkersKv {
    async fn get(&self, key: &str) -> Result<Option<Stored>> {
        let mut get = self.store.get(key);
        if let Some(ttl) = self.cache_ttl {
            get = get.cache_ttl(ttl);
        }
        let (value, metadata) = get
            .bytes_with_metadata::<serde_json::Value>()
            .await
            .map_err(|e| backend_err("get", &e))?;
        Ok(value.map(|value| Stored {
            value,
            metadata: metadata.map(|m| m.to_string()),
        }))
    }

    /// One KV bulk get (`get([...keys], {type: "text"})` with metadata) for the chunk `Kv`
    /// hands over (≤ 100 keys). KV returns bulk values only as text or JSON: a value that is
    /// not exact UTF-8 JSON text — a binary frame (postcard `0xC5`, sealed `0xC6`), which the
    /// runtime decodes lossily — is recognised by [`bulk_text_is_exact`] and read again with a
    /// single `get` for its bytes (counted in `single_reads`).
    async fn get_bulk(&self, keys: &[&str]) -> Result<BulkRead> {
        if keys.is_empty() {
            return Ok(BulkRead::default());
        }
        let mut get = self.store.get_bulk(keys);
        if let Some(ttl) = self.cache_ttl {
            get = get.cache_ttl(ttl);
        }
        let mut found = get
            .text_with_metadata::<serde_json::Value>()
            .await
            .map_err(|e| backend_err("get_bulk", &e))?;
        let mut values = Vec::with_capacity(keys.len());
        let mut single_reads = 0;
        for key in keys {
            let (text, metadata) = found.remove(*key).unwrap_or((None, None));
            values.push(match text {
                None => None,
                Some(text) if bulk_text_is_exact(&text) => Some(Stored {
                    value: text.into_bytes(),
                    metadata: metadata.map(|m| m.to_string()),
                }),
                Some(_) => {
                    single_reads += 1;
                    self.get(key).await?
                }
            });
        }
        Ok(BulkRead {
            values,
            bulk_ops: 1,
            single_reads,
        })
    }

    async fn put(&self, key: &str, value: &[u8], options: &WriteOptions) -> Result<()> {
        let mut put = self
            .store
            .put_bytes(key, value)
            .map_err(|e| backend_err("put", &e))?;
        if let Some(exp) = options.expiration {
            put = put.expiration(exp);
        }
        if let Some(meta) = &options.metadata {
            let meta: serde_json::Value =
                serde_json::from_str(meta).unwrap_or(serde_json::Value::Null);
            put = put.metadata(meta).map_err(|e| backend_err("put", &e))?;
        }
        put.execute().await.map_err(|e| backend_err("put", &e))
    }

    async fn delete(&self, key: &str) -> Result<()> {
        self.store
            .delete(key)
            .await
            .map_err(|e| backend_err("delete", &e))
    }

    async fn list(&self, prefix: &str, cursor: Option<&str>, limit: u32) -> Result<ListPage> {
        let mut list = self
            .store
            .list()
            .prefix(prefix.to_string())
            .limit(u64::from(limit));
        if let Some(c) = cursor {
            list = list.cursor(c.to_string());
        }
        let page = list.execute().await.map_err(|e| backend_err("list", &e))?;
        Ok(ListPage {
            keys: page
                .keys
                .into_iter()
                .map(|k| ListKey {
                    name: k.name,
                    expiration: k.expiration,
                    metadata: k.metadata.map(|m| m.to_string()),
                })
                .collect(),
            cursor: page.cursor.filter(|c| !c.is_empty()),
            list_complete: page.list_complete,
        })
    }
}
