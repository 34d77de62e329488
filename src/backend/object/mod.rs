//! What one Durable Object does with a KV request: the request and reply it exchanges with a
//! client, and [`serve`], the object's logic over its storage ([`ObjectStorage`]). The Workers
//! object (`DurableKvObject`, feature `worker` on wasm32) and the native simulated objects
//! (`object_sim`, feature `testing`) both run this code, so the conformance suite and the
//! race tests check what workerd runs.
//!
//! Semantics are KV's, made strongly consistent: a value is live until its `expiration`
//! (seconds, as KV has it; [`Kv`](super::Kv) has already clamped it) and invisible after it
//! (lazy expiry, checked on every read), and an alarm deletes expired records ([`sweep`]). A
//! conditional write compares the stored value's [`Stamp`] and writes in the same step: the
//! object handles one request at a time, and it awaits nothing but its own storage while it
//! does (a Durable Object's input gate then delivers no other event), so nothing can come
//! between the comparison and the write.
//!
//! * `record` — [`Record`], one stored key, and its ASCII JSON text;
//! * `protocol` — [`ObjectRequest`] and [`ObjectReply`];
//! * `serve` — [`serve`] over an object's storage ([`ObjectStorage`]);
//! * `sweep` — the alarm's [`sweep`];
//! * `client` — the [`KvBackend`](super::KvBackend) operations a client runs over objects.

mod client;
mod protocol;
mod record;
mod serve;
mod sweep;
#[cfg(test)]
mod tests;

pub(crate) use client::{delete, get, get_bulk, list, object_backend, put, ObjectClient};
pub use protocol::{ObjectReply, ObjectRequest};
pub use record::Record;
pub use serve::{serve, ObjectStorage};
pub use sweep::sweep;
