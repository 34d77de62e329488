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

use base64::{engine::general_purpose::STANDARD, Engine as _};
use serde::{Deserialize, Serialize};

use super::{
    placement::Placement, BulkRead, Expected, ListKey, ListPage, Stamp, Stored, WriteOptions,
    MAX_LIST_LIMIT,
};
use crate::{
    error::{Error, LimitError, Result},
    send::MaybeSendSync,
};

/// One stored record: the value (base64) with KV's metadata and expiration. This is also how
/// the Workers object stores it (as JSON text under the key).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// The value, base64.
    #[serde(rename = "v")]
    pub value: String,
    /// Metadata as serialized JSON.
    #[serde(rename = "m", default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<String>,
    /// Absolute expiration in seconds since the epoch.
    #[serde(rename = "e", default, skip_serializing_if = "Option::is_none")]
    pub expiration: Option<u64>,
}

impl Record {
    fn new(value: &[u8], metadata: Option<String>, expiration: Option<u64>) -> Self {
        Self {
            value: STANDARD.encode(value),
            metadata,
            expiration,
        }
    }

    fn live(&self, now_ms: u64) -> bool {
        self.expiration
            .is_none_or(|exp| exp.saturating_mul(1000) > now_ms)
    }

    fn bytes(&self) -> Result<Vec<u8>> {
        STANDARD.decode(&self.value).map_err(|_| Error::Backend {
            op: "get",
            message: "a Durable Object record's value is not base64".into(),
            retryable: false,
        })
    }

    /// The value and metadata as a [`Stored`].
    pub fn stored(&self) -> Result<Stored> {
        Ok(Stored {
            value: self.bytes()?,
            metadata: self.metadata.clone(),
        })
    }
}

/// A request to one object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "camelCase")]
pub enum ObjectRequest {
    /// Read keys (one or many): one [`ObjectReply::Values`] entry per key.
    Get {
        /// The keys.
        keys: Vec<String>,
    },
    /// Write a record, unconditionally or when the key holds what `expected` says.
    Put {
        /// The key.
        key: String,
        /// The record.
        record: Record,
        /// `None`: unconditional. `Some("")`: only when nothing live is stored. `Some(hex)`:
        /// only when the live value's stamp is this.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        expected: Option<String>,
    },
    /// Delete a key.
    Delete {
        /// The key.
        key: String,
    },
    /// One page of keys under `prefix`, after `cursor`.
    List {
        /// The prefix.
        prefix: String,
        /// The last key of the previous page.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cursor: Option<String>,
        /// At most this many keys.
        limit: u32,
    },
}

impl ObjectRequest {
    /// A conditional or unconditional write of `value`.
    pub fn put(
        key: &str,
        value: &[u8],
        options: &super::WriteOptions,
        expected: Option<&Expected>,
    ) -> Self {
        ObjectRequest::Put {
            key: key.into(),
            record: Record::new(value, options.metadata.clone(), options.expiration),
            expected: expected.map(|e| match e {
                Expected::Absent => String::new(),
                Expected::Stamp(s) => s.to_hex(),
            }),
        }
    }

    /// The operation's name, for errors.
    pub fn op(&self) -> &'static str {
        match self {
            ObjectRequest::Get { .. } => "get",
            ObjectRequest::Put { expected: None, .. } => "put",
            ObjectRequest::Put { .. } => "put_if",
            ObjectRequest::Delete { .. } => "delete",
            ObjectRequest::List { .. } => "list",
        }
    }
}

/// An object's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "reply", rename_all = "camelCase")]
pub enum ObjectReply {
    /// For [`ObjectRequest::Get`]: one entry per key, `None` when nothing live is stored.
    Values {
        /// The records.
        values: Vec<Option<Record>>,
    },
    /// For [`ObjectRequest::Put`]: whether it wrote.
    Written {
        /// False when the condition did not hold.
        written: bool,
    },
    /// For [`ObjectRequest::Delete`].
    Deleted,
    /// For [`ObjectRequest::List`].
    Page {
        /// Names, expirations and metadata.
        keys: Vec<ListKey>,
        /// Cursor for the next page.
        cursor: Option<String>,
        /// True when nothing more follows.
        list_complete: bool,
    },
    /// The request could not be served (the message names no key and no value).
    Failed {
        /// What went wrong.
        message: String,
    },
}

impl ObjectReply {
    fn unexpected(op: &'static str) -> Error {
        Error::Backend {
            op,
            message: "the Durable Object answered another operation".into(),
            retryable: false,
        }
    }

    fn failed(self, op: &'static str) -> Result<Self> {
        match self {
            ObjectReply::Failed { message } => Err(Error::Backend {
                op,
                message,
                retryable: true,
            }),
            other => Ok(other),
        }
    }

    /// The records of a get.
    pub fn into_values(self, asked: usize) -> Result<Vec<Option<Stored>>> {
        match self.failed("get")? {
            ObjectReply::Values { values } if values.len() == asked => values
                .into_iter()
                .map(|r| r.map(|r| r.stored()).transpose())
                .collect(),
            _ => Err(Self::unexpected("get")),
        }
    }

    /// Whether a put wrote.
    pub fn into_written(self) -> Result<bool> {
        match self.failed("put")? {
            ObjectReply::Written { written } => Ok(written),
            _ => Err(Self::unexpected("put")),
        }
    }

    /// A delete's answer.
    pub fn into_deleted(self) -> Result<()> {
        match self.failed("delete")? {
            ObjectReply::Deleted => Ok(()),
            _ => Err(Self::unexpected("delete")),
        }
    }

    /// A list page.
    pub fn into_page(self) -> Result<ListPage> {
        match self.failed("list")? {
            ObjectReply::Page {
                keys,
                cursor,
                list_complete,
            } => Ok(ListPage {
                keys,
                cursor,
                list_complete,
            }),
            _ => Err(Self::unexpected("list")),
        }
    }
}

/// An object's own storage, in key order. Errors are the platform's, already mapped.
#[cfg_attr(target_arch = "wasm32", async_trait::async_trait(?Send))]
#[cfg_attr(not(target_arch = "wasm32"), async_trait::async_trait)]
pub trait ObjectStorage: MaybeSendSync {
    /// The record under `key`, expired or not.
    async fn read(&self, key: &str) -> Result<Option<Record>>;
    /// Store `record` under `key`.
    async fn write(&self, key: &str, record: &Record) -> Result<()>;
    /// Remove `key` (no error when missing).
    async fn remove(&self, key: &str) -> Result<()>;
    /// Up to `limit` records whose key starts with `prefix`, from `start` (inclusive) on.
    async fn scan(
        &self,
        prefix: &str,
        start: Option<&str>,
        limit: usize,
    ) -> Result<Vec<(String, Record)>>;
    /// When the alarm is set for (ms), if it is.
    async fn alarm(&self) -> Result<Option<u64>>;
    /// Set the alarm for `at_ms`.
    async fn set_alarm(&self, at_ms: u64) -> Result<()>;
}

/// Serve one request at `now_ms`. Never panics; storage failures become
/// [`ObjectReply::Failed`] with the platform's message.
pub async fn serve<S: ObjectStorage + ?Sized>(
    storage: &S,
    now_ms: u64,
    request: ObjectRequest,
) -> ObjectReply {
    match serve_inner(storage, now_ms, request).await {
        Ok(reply) => reply,
        Err(e) => ObjectReply::Failed {
            message: e.to_string(),
        },
    }
}

async fn serve_inner<S: ObjectStorage + ?Sized>(
    storage: &S,
    now_ms: u64,
    request: ObjectRequest,
) -> Result<ObjectReply> {
    match request {
        ObjectRequest::Get { keys } => {
            let mut values = Vec::with_capacity(keys.len());
            for key in &keys {
                values.push(live(storage, key, now_ms).await?);
            }
            Ok(ObjectReply::Values { values })
        }
        ObjectRequest::Put {
            key,
            record,
            expected,
        } => {
            if let Some(expected) = expected {
                let current = live(storage, &key, now_ms).await?;
                let holds = match (&current, expected.as_str()) {
                    (None, "") => true,
                    (Some(r), stamp) if !stamp.is_empty() => {
                        Stamp::of(&r.bytes()?).to_hex() == stamp
                    }
                    _ => false,
                };
                if !holds {
                    return Ok(ObjectReply::Written { written: false });
                }
            }
            storage.write(&key, &record).await?;
            if let Some(exp) = record.expiration {
                schedule(storage, exp.saturating_mul(1000)).await?;
            }
            Ok(ObjectReply::Written { written: true })
        }
        ObjectRequest::Delete { key } => {
            storage.remove(&key).await?;
            Ok(ObjectReply::Deleted)
        }
        ObjectRequest::List {
            prefix,
            cursor,
            limit,
        } => {
            let limit = limit.clamp(1, MAX_LIST_LIMIT) as usize;
            // One more than the page, to know whether more follow; the cursor's own key is
            // skipped.
            let mut raw = storage.scan(&prefix, cursor.as_deref(), limit + 2).await?;
            if let Some(c) = &cursor {
                raw.retain(|(k, _)| k != c);
            }
            let more = raw.len() > limit;
            raw.truncate(limit);
            let last = raw.last().map(|(k, _)| k.clone());
            let keys = raw
                .into_iter()
                .filter(|(_, r)| r.live(now_ms))
                .map(|(name, r)| ListKey {
                    name,
                    expiration: r.expiration,
                    metadata: r.metadata,
                })
                .collect();
            Ok(ObjectReply::Page {
                keys,
                cursor: if more { last } else { None },
                list_complete: !more,
            })
        }
    }
}

/// The live record under `key`: an expired one is invisible (and left for the alarm).
async fn live<S: ObjectStorage + ?Sized>(
    storage: &S,
    key: &str,
    now_ms: u64,
) -> Result<Option<Record>> {
    Ok(storage.read(key).await?.filter(|r| r.live(now_ms)))
}

/// Make sure the alarm fires by `at_ms`.
async fn schedule<S: ObjectStorage + ?Sized>(storage: &S, at_ms: u64) -> Result<()> {
    match storage.alarm().await? {
        Some(current) if current <= at_ms => Ok(()),
        _ => storage.set_alarm(at_ms).await,
    }
}

/// Records one storage page of the alarm's scan holds.
pub const SWEEP_PAGE: usize = 1000;
/// Pages one alarm scans at most (100,000 records); an object with more gets the rest at the
/// next alarm, a second later, which scans from the start again (so expired records beyond the
/// first 100,000 live ones wait until those expire: an object that large should be split,
/// [`Placement::ByGroup`]).
pub const SWEEP_MAX_PAGES: usize = 100;

/// The alarm: delete every expired record, page by page through the object's storage, and set
/// the alarm for the earliest expiration left. Returns how many records it deleted.
pub async fn sweep<S: ObjectStorage + ?Sized>(storage: &S, now_ms: u64) -> Result<usize> {
    let mut deleted = 0;
    let mut next: Option<u64> = None;
    let mut after: Option<String> = None;
    let mut complete = false;
    for _ in 0..SWEEP_MAX_PAGES {
        // `start` is inclusive: one more than a page, and the last key of the previous page
        // dropped.
        let mut page = storage.scan("", after.as_deref(), SWEEP_PAGE + 1).await?;
        if let Some(a) = &after {
            page.retain(|(k, _)| k != a);
        }
        let more = page.len() > SWEEP_PAGE;
        page.truncate(SWEEP_PAGE);
        for (key, record) in &page {
            if record.live(now_ms) {
                if let Some(exp) = record.expiration {
                    let at = exp.saturating_mul(1000);
                    next = Some(next.map_or(at, |n| n.min(at)));
                }
            } else {
                storage.remove(key).await?;
                deleted += 1;
            }
        }
        if !more {
            complete = true;
            break;
        }
        after = page.last().map(|(k, _)| k.clone());
    }
    if !complete {
        next = Some(now_ms.saturating_add(1000));
    }
    if let Some(at) = next {
        storage.set_alarm(at).await?;
    }
    Ok(deleted)
}

/// How a client reaches its objects: the one thing the Workers client (a stub's `fetch`) and the
/// simulated objects (a call in memory) do differently. The [`KvBackend`](super::KvBackend)
/// operations over it are below, written once for both.
#[cfg_attr(target_arch = "wasm32", async_trait::async_trait(?Send))]
#[cfg_attr(not(target_arch = "wasm32"), async_trait::async_trait)]
pub(crate) trait ObjectClient: MaybeSendSync {
    /// Where keys live.
    fn placement(&self) -> &Placement;
    /// Send `request` to the object named `object` and bring back its reply.
    async fn call(&self, object: &str, request: &ObjectRequest) -> Result<ObjectReply>;
}

/// [`KvBackend::get`](super::KvBackend::get) over objects.
pub(crate) async fn get<C: ObjectClient + ?Sized>(client: &C, key: &str) -> Result<Option<Stored>> {
    let request = ObjectRequest::Get {
        keys: vec![key.into()],
    };
    let object = client.placement().object_of(key);
    Ok(client
        .call(object, &request)
        .await?
        .into_values(1)?
        .pop()
        .flatten())
}

/// [`KvBackend::get_bulk`](super::KvBackend::get_bulk) over objects: one request per object
/// the keys live in (each counted as a bulk operation).
pub(crate) async fn get_bulk<C: ObjectClient + ?Sized>(
    client: &C,
    keys: &[&str],
) -> Result<BulkRead> {
    let mut by_object: std::collections::BTreeMap<&str, Vec<usize>> = Default::default();
    for (i, key) in keys.iter().enumerate() {
        by_object
            .entry(client.placement().object_of(key))
            .or_default()
            .push(i);
    }
    let mut values: Vec<Option<Stored>> = vec![None; keys.len()];
    let mut ops = 0;
    for (object, slots) in by_object {
        let request = ObjectRequest::Get {
            keys: slots.iter().map(|&i| keys[i].to_string()).collect(),
        };
        let got = client
            .call(object, &request)
            .await?
            .into_values(slots.len())?;
        ops += 1;
        for (slot, value) in slots.into_iter().zip(got) {
            values[slot] = value;
        }
    }
    Ok(BulkRead {
        values,
        bulk_ops: ops,
        single_reads: 0,
    })
}

/// Most bytes of key and stored record one entry of a SQLite-backed Durable Object's storage
/// holds ("key and value combined cannot exceed 2 MB"). The record is JSON with the value in
/// base64, so values up to about 1.4 MiB fit: less than KV's 25 MiB, checked before any I/O.
pub const MAX_OBJECT_ENTRY_BYTES: usize = 2_000_000;

/// [`KvBackend::put`](super::KvBackend::put) (`expected: None`) and
/// [`put_if`](super::KvBackend::put_if) over objects. A record the object's storage could not
/// hold is a [`LimitError::ValueTooLarge`] before any request.
pub(crate) async fn put<C: ObjectClient + ?Sized>(
    client: &C,
    key: &str,
    value: &[u8],
    options: &WriteOptions,
    expected: Option<&Expected>,
) -> Result<bool> {
    let request = ObjectRequest::put(key, value, options, expected);
    if let ObjectRequest::Put { record, .. } = &request {
        let framing = serde_json::to_string(record)
            .map(|t| t.len() - record.value.len())
            .unwrap_or(0);
        let room = MAX_OBJECT_ENTRY_BYTES.saturating_sub(key.len() + framing);
        let max = room / 4 * 3;
        if value.len() > max {
            return Err(LimitError::ValueTooLarge {
                len: value.len(),
                max,
            }
            .into());
        }
    }
    client
        .call(client.placement().object_of(key), &request)
        .await?
        .into_written()
}

/// [`KvBackend::delete`](super::KvBackend::delete) over objects.
pub(crate) async fn delete<C: ObjectClient + ?Sized>(client: &C, key: &str) -> Result<()> {
    let request = ObjectRequest::Delete { key: key.into() };
    client
        .call(client.placement().object_of(key), &request)
        .await?
        .into_deleted()
}

/// [`KvBackend::list`](super::KvBackend::list) over objects: the prefix must name one object.
pub(crate) async fn list<C: ObjectClient + ?Sized>(
    client: &C,
    prefix: &str,
    cursor: Option<&str>,
    limit: u32,
) -> Result<ListPage> {
    let object = client.placement().object_of_prefix(prefix)?;
    let request = ObjectRequest::List {
        prefix: prefix.into(),
        cursor: cursor.map(Into::into),
        limit,
    };
    client.call(object, &request).await?.into_page()
}
