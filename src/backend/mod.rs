//! KV I/O. A small async trait ([`KvBackend`]) that raw stores implement — in memory
//! ([`MemoryKv`](crate::MemoryKv)), Workers KV (`WorkersKv`), Durable Objects (`DurableKv`), the
//! simulators — and the types its calls take and return. [`crate::Kv`], the handle the
//! stores hold, wraps a backend: it is the one place where KV's limits are enforced,
//! expirations are clamped to KV's 60-second floor and operations are counted.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

#[cfg(feature = "conformance")]
pub mod conformance;
#[cfg(all(feature = "worker", target_arch = "wasm32"))]
mod durable;
pub(crate) mod kv;
pub(crate) mod limits;
pub(crate) mod memory;
// The object protocol is used by the Workers client (wasm32) and the simulated objects
// (testing); other builds keep only its limit.
#[cfg_attr(
    not(any(feature = "testing", all(feature = "worker", target_arch = "wasm32"))),
    allow(dead_code, unused_imports, unused_macros)
)]
mod object;
#[cfg(feature = "testing")]
pub(crate) mod object_sim;
mod placement;
#[cfg(feature = "testing")]
pub(crate) mod sim;
#[cfg(all(feature = "worker", target_arch = "wasm32"))]
mod workers;

#[cfg(all(feature = "worker", target_arch = "wasm32"))]
pub use durable::{DurableKv, DurableKvObject};
#[cfg(all(feature = "worker", target_arch = "wasm32"))]
pub use workers::WorkersKv;

pub(crate) use self::{kv::Kv, limits::*};
pub use self::{
    kv::{OpCounters, OpCounts},
    placement::Placement,
};
pub(crate) use crate::send::MaybeSendSync;

/// A value read from KV with its metadata (serialized JSON, if any).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    /// The value bytes.
    pub value: Vec<u8>,
    /// The metadata as serialized JSON.
    pub metadata: Option<String>,
}

/// Options of a raw write. `expiration` is already clamped by [`Kv`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WriteOptions {
    /// Absolute expiration in seconds since the epoch (KV's `expiration`).
    pub expiration: Option<u64>,
    /// Metadata as serialized JSON (≤ 1024 bytes).
    pub metadata: Option<String>,
}

/// One key of a `list` page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListKey {
    /// Key name.
    pub name: String,
    /// Absolute KV expiration in seconds, if any.
    pub expiration: Option<u64>,
    /// Metadata as serialized JSON.
    pub metadata: Option<String>,
}

/// One page of a `list`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListPage {
    /// Keys of this page (may be empty even when more follow).
    pub keys: Vec<ListKey>,
    /// Cursor for the next page.
    pub cursor: Option<String>,
    /// True when there is nothing more.
    pub list_complete: bool,
}

/// What one [`KvBackend::get_bulk`] call read and what it cost.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BulkRead {
    /// One entry per key asked for, in the same order.
    pub values: Vec<Option<Stored>>,
    /// Bulk operations the backend made (billed by KV as one operation each): 0 when it read
    /// every key singly (the default implementation), 1 for a real bulk get.
    pub bulk_ops: u64,
    /// Keys it had to read with single gets (all of them in the default implementation; on
    /// Workers KV, the binary frames a text bulk get cannot return).
    pub single_reads: u64,
}

/// How a backend orders operations on a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Consistency {
    /// Workers KV: last write wins, no compare-and-swap, other locations see a write up to
    /// 60 s (or more) later.
    Eventual,
    /// Every operation on a key sees every earlier one, everywhere (a Durable Object), and
    /// [`KvBackend::put_if`] compares and writes in one step.
    Linearizable,
}

/// The stamp of a stored value: SHA-256 of its bytes. A conditional write
/// ([`KvBackend::put_if`]) compares it with what is stored, so it needs no knowledge of the
/// envelope, and a value re-encoded to the same bytes has the same stamp.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Stamp([u8; 32]);

impl Stamp {
    /// The stamp of `value`.
    pub fn of(value: &[u8]) -> Self {
        use sha2::Digest;
        Self(sha2::Sha256::digest(value).into())
    }

    /// Lowercase hex (64 characters), as it travels to a Durable Object.
    pub fn to_hex(&self) -> String {
        hex(&self.0)
    }
}

/// Lowercase hex SHA-256 of `bytes`: how ids and tokens are keyed at rest.
pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    hex(&Sha256::digest(bytes))
}

/// True when `text` is exactly `len` lowercase hex digits (the form ids, hashes, tokens and
/// handles take).
pub(crate) fn is_lower_hex(text: &str, len: usize) -> bool {
    text.len() == len && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Lowercase hex of `bytes`.
pub(crate) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    out
}

impl std::fmt::Debug for Stamp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Stamp({}…)", &self.to_hex()[..12])
    }
}

/// What a conditional write ([`KvBackend::put_if`]) requires of the key before it writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Expected {
    /// Nothing live is stored under the key (missing or past its expiration).
    Absent,
    /// The live value under the key is exactly the one with this stamp.
    Stamp(Stamp),
}

/// `keys` read one [`get`](KvBackend::get) at a time: the default
/// [`get_bulk`](KvBackend::get_bulk), and what a backend that cannot bulk-read falls back to.
pub(crate) async fn read_singly<B: KvBackend + ?Sized>(
    backend: &B,
    keys: &[&str],
) -> Result<BulkRead> {
    let mut values = Vec::with_capacity(keys.len());
    for key in keys {
        values.push(backend.get(key).await?);
    }
    Ok(BulkRead {
        values,
        bulk_ops: 0,
        single_reads: keys.len() as u64,
    })
}

/// A raw KV store. Implementations do I/O only; limits, clamping and counting live in [`Kv`].
#[cfg_attr(target_arch = "wasm32", async_trait::async_trait(?Send))]
#[cfg_attr(not(target_arch = "wasm32"), async_trait::async_trait)]
pub trait KvBackend: MaybeSendSync {
    /// Read a value and its metadata.
    async fn get(&self, key: &str) -> Result<Option<Stored>>;
    /// Read several distinct keys (at most [`MAX_BULK_KEYS`], already checked by [`Kv`]) in
    /// one call where the store can, each key with the same semantics as [`get`](Self::get).
    /// The default reads them one by one, so every backend supports it; say what it cost in
    /// [`BulkRead`].
    async fn get_bulk(&self, keys: &[&str]) -> Result<BulkRead> {
        read_singly(self, keys).await
    }
    /// Write a value.
    async fn put(&self, key: &str, value: &[u8], options: &WriteOptions) -> Result<()>;
    /// How this backend orders operations. The default is KV's: [`Consistency::Eventual`].
    fn consistency(&self) -> Consistency {
        Consistency::Eventual
    }
    /// Write a value only when the key holds what `expected` says, in one step: `Ok(true)`
    /// when written, `Ok(false)` when the key held something else (nothing written). Backends
    /// that say [`Consistency::Linearizable`] must implement it; the default (KV has no
    /// compare-and-swap) refuses with a non-retryable [`Error::Backend`].
    async fn put_if(
        &self,
        key: &str,
        value: &[u8],
        options: &WriteOptions,
        expected: &Expected,
    ) -> Result<bool> {
        let _ = (key, value, options, expected);
        Err(Error::Backend {
            op: "put_if",
            message: "this backend has no conditional write (Workers KV has no compare-and-swap)"
                .into(),
            retryable: false,
        })
    }
    /// Delete a key (no error when missing).
    async fn delete(&self, key: &str) -> Result<()>;
    /// Delete a key only when its live value has `stamp`, in one step: `Ok(true)` when
    /// deleted, `Ok(false)` when it held something else or nothing. Like
    /// [`put_if`](Self::put_if), backends that say [`Consistency::Linearizable`] must
    /// implement it; the default refuses with a non-retryable [`Error::Backend`].
    async fn delete_if(&self, key: &str, stamp: &Stamp) -> Result<bool> {
        let _ = (key, stamp);
        Err(Error::Backend {
            op: "delete_if",
            message: "this backend has no conditional delete (Workers KV has no compare-and-swap)"
                .into(),
            retryable: false,
        })
    }
    /// List keys starting with `prefix`, `limit` ≤ 1000, continuing from `cursor`.
    async fn list(&self, prefix: &str, cursor: Option<&str>, limit: u32) -> Result<ListPage>;
}
