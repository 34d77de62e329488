//! e2e only: `SESSION_WRITE_DELAY_MS` holds every session write (`put`, `put_if`) back that
//! long before it reaches the backend. A refresh runs in `waitUntil` after `/me`'s response,
//! so with the delay its read and its write straddle a logout or rotation sent right after
//! that response on every trial, not by luck (e2e/durable/races.test.mjs counts the writes the
//! objects refused). Reads and deletes are not delayed.

use std::time::Duration;

use kv_envelope::{
    backend::{BulkRead, Consistency, Expected, KvBackend, ListPage, Stamp, Stored, WriteOptions},
    Result,
};

/// `inner` with its writes delayed by `delay`.
pub struct SlowWrites<B> {
    pub inner: B,
    pub delay: Duration,
}

#[async_trait::async_trait(?Send)]
impl<B: KvBackend> KvBackend for SlowWrites<B> {
    async fn get(&self, key: &str) -> Result<Option<Stored>> {
        self.inner.get(key).await
    }

    async fn get_bulk(&self, keys: &[&str]) -> Result<BulkRead> {
        self.inner.get_bulk(keys).await
    }

    async fn put(&self, key: &str, value: &[u8], options: &WriteOptions) -> Result<()> {
        worker::Delay::from(self.delay).await;
        self.inner.put(key, value, options).await
    }

    fn consistency(&self) -> Consistency {
        self.inner.consistency()
    }

    async fn put_if(
        &self,
        key: &str,
        value: &[u8],
        options: &WriteOptions,
        expected: &Expected,
    ) -> Result<bool> {
        worker::Delay::from(self.delay).await;
        self.inner.put_if(key, value, options, expected).await
    }

    async fn delete(&self, key: &str) -> Result<()> {
        self.inner.delete(key).await
    }

    async fn delete_if(&self, key: &str, stamp: &Stamp) -> Result<bool> {
        self.inner.delete_if(key, stamp).await
    }

    async fn list(&self, prefix: &str, cursor: Option<&str>, limit: u32) -> Result<ListPage> {
        self.inner.list(prefix, cursor, limit).await
    }
}
