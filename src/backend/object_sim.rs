//! Simulated Durable Objects for native tests: a [`KvBackend`](super::KvBackend) whose keys live in in-memory
//! objects placed as on Workers ([`Placement`]), each serving the same object logic the
//! Workers object runs. Every request and reply goes through their JSON form, as over a stub.
//! Alarms fire when a test calls [`SimObjects::run_alarms`].
//!
//! All locations share the objects: a Durable Object is one place, whatever Worker reaches it,
//! so a handle per location ([`SimObjects::kv`]) only shares the clock.

use std::{
    collections::BTreeMap,
    sync::{Arc, Mutex},
};

use futures::lock::Mutex as AsyncMutex;

use super::{
    object::{self, serve, sweep, ObjectClient, ObjectReply, ObjectRequest, ObjectStorage, Record},
    placement::Placement,
    Kv,
};
use crate::{
    clock::SharedClock,
    error::{Error, Result},
};

/// One object's storage.
#[derive(Debug, Default)]
struct MemStorage {
    records: Mutex<BTreeMap<String, Record>>,
    alarm: Mutex<Option<u64>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg_attr(target_arch = "wasm32", async_trait::async_trait(?Send))]
#[cfg_attr(not(target_arch = "wasm32"), async_trait::async_trait)]
impl ObjectStorage for MemStorage {
    async fn read(&self, key: &str) -> Result<Option<Record>> {
        Ok(lock(&self.records).get(key).cloned())
    }

    async fn write(&self, key: &str, record: &Record) -> Result<()> {
        lock(&self.records).insert(key.into(), record.clone());
        Ok(())
    }

    async fn remove(&self, key: &str) -> Result<()> {
        lock(&self.records).remove(key);
        Ok(())
    }

    async fn scan(
        &self,
        prefix: &str,
        start: Option<&str>,
        limit: usize,
    ) -> Result<Vec<(String, Option<Record>)>> {
        let records = lock(&self.records);
        let from = start.unwrap_or(prefix).max(prefix).to_string();
        Ok(records
            .range(from..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .take(limit)
            .map(|(k, r)| (k.clone(), Some(r.clone())))
            .collect())
    }

    async fn alarm(&self) -> Result<Option<u64>> {
        Ok(*lock(&self.alarm))
    }

    async fn set_alarm(&self, at_ms: u64) -> Result<()> {
        *lock(&self.alarm) = Some(at_ms);
        Ok(())
    }
}

/// One object: its storage, and the gate that makes it serve one request at a time.
#[derive(Debug, Default)]
struct Object {
    gate: AsyncMutex<()>,
    storage: MemStorage,
}

struct Shared {
    objects: Mutex<BTreeMap<String, Arc<Object>>>,
    placement: Placement,
    clock: SharedClock,
    requests: std::sync::atomic::AtomicU64,
}

/// Simulated Durable Objects holding a KV namespace. Cheap to clone (shared state).
#[derive(Clone)]
pub struct SimObjects {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for SimObjects {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimObjects")
            .field("placement", &self.shared.placement)
            .finish_non_exhaustive()
    }
}

impl SimObjects {
    /// No objects yet, placed by `placement`, on `clock`.
    pub fn new(placement: Placement, clock: SharedClock) -> Self {
        Self {
            shared: Arc::new(Shared {
                objects: Mutex::new(BTreeMap::new()),
                placement,
                clock,
                requests: std::sync::atomic::AtomicU64::new(0),
            }),
        }
    }

    /// A [`Kv`] on these objects, as a Worker at `location` reaches them (the objects are the
    /// same from everywhere; the argument only mirrors [`SimKv::kv`](super::sim::SimKv::kv)).
    pub fn kv(&self, location: usize) -> Kv {
        let _ = location;
        Kv::new(self.clone()).with_clock(self.shared.clock.clone())
    }

    /// Requests the objects have served (one per subrequest a Worker would make).
    pub fn requests(&self) -> u64 {
        self.shared
            .requests
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Names of the objects created so far.
    pub fn object_names(&self) -> Vec<String> {
        lock(&self.shared.objects).keys().cloned().collect()
    }

    /// Every record stored (expired or not), for tests that check what the alarm removed.
    pub fn stored_keys(&self) -> Vec<String> {
        let objects: Vec<Arc<Object>> = lock(&self.shared.objects).values().cloned().collect();
        let mut keys: Vec<String> = objects
            .iter()
            .flat_map(|o| lock(&o.storage.records).keys().cloned().collect::<Vec<_>>())
            .collect();
        keys.sort();
        keys
    }

    /// Fire every alarm that is due on the clock; returns the records they deleted.
    pub async fn run_alarms(&self) -> Result<usize> {
        let now = self.shared.clock.now_ms();
        let objects: Vec<Arc<Object>> = lock(&self.shared.objects).values().cloned().collect();
        let mut deleted = 0;
        for object in objects {
            let _turn = object.gate.lock().await;
            let due = matches!(*lock(&object.storage.alarm), Some(at) if at <= now);
            if due {
                *lock(&object.storage.alarm) = None;
                deleted += sweep(&object.storage, now).await?;
            }
        }
        Ok(deleted)
    }

    fn object(&self, name: &str) -> Arc<Object> {
        lock(&self.shared.objects)
            .entry(name.to_string())
            .or_default()
            .clone()
    }
}

#[cfg_attr(target_arch = "wasm32", async_trait::async_trait(?Send))]
#[cfg_attr(not(target_arch = "wasm32"), async_trait::async_trait)]
impl ObjectClient for SimObjects {
    fn placement(&self) -> &Placement {
        &self.shared.placement
    }

    /// Send `request` to the object `name`, through the JSON a stub would carry.
    async fn call(&self, name: &str, request: &ObjectRequest) -> Result<ObjectReply> {
        let op = request.op();
        let wire = |e: serde_json::Error| Error::Backend {
            op,
            message: format!("object protocol: {:?} error", e.classify()),
            retryable: false,
        };
        let body = serde_json::to_vec(request).map_err(wire)?;
        let object = self.object(name);
        self.shared
            .requests
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let reply = {
            let _turn = object.gate.lock().await;
            let request: ObjectRequest = serde_json::from_slice(&body).map_err(wire)?;
            serve(&object.storage, self.shared.clock.now_ms(), request).await
        };
        let body = serde_json::to_vec(&reply).map_err(wire)?;
        serde_json::from_slice(&body).map_err(wire)
    }
}

object::object_backend!(SimObjects);
