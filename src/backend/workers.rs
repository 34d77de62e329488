//! Workers KV over the `worker` crate's [`KvStore`](worker::kv::KvStore) (wasm32 only).

use super::{
    bulk_text_is_exact, read_singly, BulkRead, KvBackend, ListKey, ListPage, Stored, WriteOptions,
};
use crate::error::{Error, Result};

use worker::js_sys::{Array, Function, Map, Object, Promise, Reflect, JSON};
use worker::send::SendWrapper;
use worker::wasm_bindgen::{JsCast, JsValue};

/// A Workers KV namespace binding.
pub struct WorkersKv {
    store: worker::kv::KvStore,
    /// The binding object itself, for bulk gets (only from [`WorkersKv::from_env`]). Wrapped
    /// as the `worker` crate wraps its own `KvStore`: an isolate runs one thread.
    binding: Option<SendWrapper<Object>>,
    cache_ttl: Option<u64>,
}

impl WorkersKv {
    /// The binding named `binding` in `env` (as in `wrangler.toml`), with bulk gets: the
    /// constructor to use.
    pub fn from_env(env: &worker::Env, binding: &str) -> worker::Result<Self> {
        let store = env.kv(binding)?;
        let object = Reflect::get(env.as_ref(), &JsValue::from_str(binding))
            .ok()
            .and_then(|b| b.dyn_into::<Object>().ok());
        Ok(Self {
            store,
            binding: object.map(SendWrapper),
            cache_ttl: None,
        })
    }

    /// Wrap a `KvStore` (e.g. `env.kv("SESSIONS")?`). Reads in bulk are made one key at a
    /// time on a store made this way: the `worker` crate's own bulk get with metadata (0.8)
    /// fails as soon as one key is missing (`Reflect.get called on non-object`, workerd answers
    /// `null` for it) and its `KvStore` does not hand out the binding to call KV directly.
    /// Use [`from_env`](Self::from_env) for bulk gets.
    pub fn new(store: worker::kv::KvStore) -> Self {
        Self {
            store,
            binding: None,
            cache_ttl: None,
        }
    }

    /// Let the edge cache reads for `secs` (KV's `cacheTtl`, at least 30 s: shorter is raised
    /// to it). Off by default: cached reads hide writes made elsewhere for that long.
    #[must_use]
    pub fn with_cache_ttl(mut self, secs: u64) -> Self {
        self.cache_ttl = Some(secs.max(super::MIN_CACHE_TTL_SECS));
        self
    }
}

/// `binding.getWithMetadata(keys, {type: "text", cacheTtl})`: per key, in order, `None` when
/// KV has no value, else the text and the metadata as JSON text.
async fn bulk_get_with_metadata(
    binding: &Object,
    keys: &[&str],
    cache_ttl: Option<u64>,
) -> std::result::Result<Vec<Option<(String, Option<String>)>>, JsValue> {
    let get: Function = Reflect::get(binding, &JsValue::from_str("getWithMetadata"))?.dyn_into()?;
    let names: Array = keys.iter().map(|k| JsValue::from_str(k)).collect();
    let options = Object::new();
    Reflect::set(&options, &"type".into(), &"text".into())?;
    if let Some(ttl) = cache_ttl {
        Reflect::set(&options, &"cacheTtl".into(), &JsValue::from_f64(ttl as f64))?;
    }
    let promise: Promise = get.call2(binding, &names, &options)?.dyn_into()?;
    let answer: Map = wasm_bindgen_futures::JsFuture::from(promise)
        .await?
        .dyn_into()?;
    let mut out = Vec::with_capacity(keys.len());
    for key in keys {
        let entry = answer.get(&JsValue::from_str(key));
        if entry.is_null() || entry.is_undefined() {
            out.push(None);
            continue;
        }
        let Some(text) = Reflect::get(&entry, &"value".into())?.as_string() else {
            out.push(None);
            continue;
        };
        let metadata = Reflect::get(&entry, &"metadata".into())?;
        let metadata = if metadata.is_null() || metadata.is_undefined() {
            None
        } else {
            JSON::stringify(&metadata)?.as_string()
        };
        out.push(Some((text, metadata)));
    }
    Ok(out)
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

    /// One KV bulk get (`getWithMetadata([...keys], {type: "text"})`) for the chunk `Kv` hands
    /// over (≤ 100 keys), called on the binding directly: a missing key is `null` in the
    /// answer. KV returns bulk values only as text or JSON: a value that is not exact UTF-8
    /// JSON text — a binary frame (postcard `0xC5`, sealed `0xC6`), which the runtime decodes
    /// lossily — is recognised by [`bulk_text_is_exact`] and read again with a single `get`
    /// for its bytes (counted in `single_reads`). Without the binding ([`WorkersKv::new`])
    /// every key is read singly.
    async fn get_bulk(&self, keys: &[&str]) -> Result<BulkRead> {
        let Some(binding) = &self.binding else {
            return read_singly(self, keys).await;
        };
        if keys.is_empty() {
            return Ok(BulkRead::default());
        }
        let found = bulk_get_with_metadata(&binding.0, keys, self.cache_ttl)
            .await
            .map_err(|e| backend_err("get_bulk", &worker::kv::KvError::from(e)))?;
        let mut values = Vec::with_capacity(keys.len());
        let mut single_reads = 0;
        for (key, entry) in keys.iter().zip(found) {
            values.push(match entry {
                None => None,
                Some((text, metadata)) if bulk_text_is_exact(&text) => Some(Stored {
                    value: text.into_bytes(),
                    metadata,
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
