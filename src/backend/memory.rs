//! An in-memory [`KvBackend`] for unit tests: a perfect, strongly consistent map that honours
//! expirations through an injectable clock. For KV's real semantics use [`super::sim`].

use std::{collections::BTreeMap, sync::Mutex};

use super::{BulkRead, KvBackend, ListKey, ListPage, Stored, WriteOptions};
use crate::{
    clock::{system_clock, SharedClock},
    error::Result,
};

#[derive(Debug, Clone)]
struct Entry {
    value: Vec<u8>,
    metadata: Option<String>,
    expiration: Option<u64>,
}

/// In-memory KV. Expired entries are invisible and dropped when touched.
pub struct MemoryKv {
    map: Mutex<BTreeMap<String, Entry>>,
    clock: SharedClock,
}

impl std::fmt::Debug for MemoryKv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryKv").finish_non_exhaustive()
    }
}

impl Default for MemoryKv {
    fn default() -> Self {
        Self::new(system_clock())
    }
}

impl MemoryKv {
    /// An empty store on `clock`.
    pub fn new(clock: SharedClock) -> Self {
        Self {
            map: Mutex::new(BTreeMap::new()),
            clock,
        }
    }

    fn live(&self, e: &Entry) -> bool {
        e.expiration
            .is_none_or(|exp| exp * 1000 > self.clock.now_ms())
    }

    /// Raw bytes of a key (ignoring expiry), for tests that inspect what was written.
    pub fn raw(&self, key: &str) -> Option<Vec<u8>> {
        self.lock().get(key).map(|e| e.value.clone())
    }

    /// Every stored key and value (ignoring expiry), for tests.
    pub fn dump(&self) -> Vec<(String, Vec<u8>)> {
        self.lock()
            .iter()
            .map(|(k, e)| (k.clone(), e.value.clone()))
            .collect()
    }

    /// Write bytes directly, bypassing envelopes and limits (to plant test fixtures).
    pub fn insert_raw(&self, key: &str, value: Vec<u8>, expiration_secs: Option<u64>) {
        self.lock().insert(
            key.to_string(),
            Entry {
                value,
                metadata: None,
                expiration: expiration_secs,
            },
        );
    }

    fn read(&self, map: &mut BTreeMap<String, Entry>, key: &str) -> Option<Stored> {
        match map.get(key) {
            Some(e) if self.live(e) => Some(Stored {
                value: e.value.clone(),
                metadata: e.metadata.clone(),
            }),
            Some(_) => {
                map.remove(key);
                None
            }
            None => None,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Entry>> {
        // A panic while holding the lock cannot leave the map half-written; keep serving.
        self.map
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg_attr(target_arch = "wasm32", async_trait::async_trait(?Send))]
#[cfg_attr(not(target_arch = "wasm32"), async_trait::async_trait)]
impl KvBackend for MemoryKv {
    async fn get(&self, key: &str) -> Result<Option<Stored>> {
        Ok(self.read(&mut self.lock(), key))
    }

    /// One lock for the whole batch: every key is read at the same instant.
    async fn get_bulk(&self, keys: &[&str]) -> Result<BulkRead> {
        let mut map = self.lock();
        Ok(BulkRead {
            values: keys.iter().map(|k| self.read(&mut map, k)).collect(),
            bulk_ops: 1,
            single_reads: 0,
        })
    }

    async fn put(&self, key: &str, value: &[u8], options: &WriteOptions) -> Result<()> {
        self.lock().insert(
            key.to_string(),
            Entry {
                value: value.to_vec(),
                metadata: options.metadata.clone(),
                expiration: options.expiration,
            },
        );
        Ok(())
    }

    async fn delete(&self, key: &str) -> Result<()> {
        self.lock().remove(key);
        Ok(())
    }

    async fn list(&self, prefix: &str, cursor: Option<&str>, limit: u32) -> Result<ListPage> {
        let map = self.lock();
        let start = cursor.unwrap_or(prefix);
        let mut keys = Vec::new();
        let mut last = None;
        let mut more = false;
        for (name, e) in map.range(start.to_string()..) {
            if !name.starts_with(prefix) {
                break;
            }
            if cursor.is_some() && name == start {
                continue;
            }
            if !self.live(e) {
                continue;
            }
            if keys.len() == limit as usize {
                more = true;
                break;
            }
            keys.push(ListKey {
                name: name.clone(),
                expiration: e.expiration,
                metadata: e.metadata.clone(),
            });
            last = Some(name.clone());
        }
        Ok(ListPage {
            keys,
            cursor: if more { last } else { None },
            list_complete: !more,
        })
    }
}
