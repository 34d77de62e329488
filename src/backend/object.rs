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
/// the Workers object stores it (as ASCII JSON text under the key, [`Record::to_text`]). Its
/// `Debug` shows the value's length, never the value.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
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

    /// The value's bytes. A value that is not base64 (written by something other than this
    /// protocol) is its text's bytes: the store above then reads bytes that are no envelope, a
    /// typed "cannot be read" (a session's "no session" answer, kept), never a backend error,
    /// whose 503 would last as long as the record.
    fn bytes(&self) -> Vec<u8> {
        STANDARD
            .decode(&self.value)
            .unwrap_or_else(|_| self.value.as_bytes().to_vec())
    }

    /// The value and metadata as a [`Stored`].
    pub fn stored(&self) -> Result<Stored> {
        Ok(Stored {
            value: self.bytes(),
            metadata: self.metadata.clone(),
        })
    }

    /// What a Durable Object's storage holds under a key, as a record: the record, or, for
    /// text that is no record, a record of that text as its value (no metadata, no expiration),
    /// so that a read sees unreadable bytes rather than failing.
    #[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
    pub fn from_stored_text(text: &str) -> Self {
        Self::from_text(text).unwrap_or_else(|| Self::new(text.as_bytes(), None, None))
    }

    /// The record as JSON text with every character beyond ASCII escaped (`\uXXXX`), so the
    /// text a Durable Object stores is one byte per character whatever the metadata holds (a
    /// JavaScript string with any character beyond Latin-1 takes two bytes per character) and
    /// its length is what it costs against [`MAX_OBJECT_ENTRY_BYTES`].
    pub fn to_text(&self) -> String {
        let mut out = Vec::with_capacity(self.value.len() + 64);
        let mut ser = serde_json::Serializer::with_formatter(&mut out, AsciiJson);
        // Serializing strings and an integer into a Vec cannot fail.
        let _ = self.serialize(&mut ser);
        // Only ASCII was written.
        String::from_utf8(out).unwrap_or_default()
    }

    /// A record from its stored text; `None` when the text is no record.
    #[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
    pub fn from_text(text: &str) -> Option<Self> {
        serde_json::from_str(text).ok()
    }
}

impl std::fmt::Debug for Record {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Record")
            .field("value_base64_len", &self.value.len())
            .field("has_metadata", &self.metadata.is_some())
            .field("expiration", &self.expiration)
            .finish()
    }
}

/// serde_json's compact output with every non-ASCII character escaped.
struct AsciiJson;

impl serde_json::ser::Formatter for AsciiJson {
    fn write_string_fragment<W: ?Sized + std::io::Write>(
        &mut self,
        writer: &mut W,
        fragment: &str,
    ) -> std::io::Result<()> {
        let mut ascii_from = 0;
        for (i, c) in fragment.char_indices() {
            if c.is_ascii() {
                continue;
            }
            writer.write_all(&fragment.as_bytes()[ascii_from..i])?;
            let mut units = [0u16; 2];
            for unit in c.encode_utf16(&mut units) {
                write!(writer, "\\u{unit:04x}")?;
            }
            ascii_from = i + c.len_utf8();
        }
        writer.write_all(&fragment.as_bytes()[ascii_from..])
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
    /// Delete a key, unconditionally or only when its live value has the stamp `expected`.
    Delete {
        /// The key.
        key: String,
        /// `None`: unconditional. `Some(hex)`: only when the live value's stamp is this.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        expected: Option<String>,
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
            ObjectRequest::Delete { expected: None, .. } => "delete",
            ObjectRequest::Delete { .. } => "delete_if",
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
    /// For [`ObjectRequest::Delete`]: whether it deleted (an unconditional delete always does).
    Deleted {
        /// False when the condition did not hold; missing from an object running code from
        /// before conditional deletes (which deleted unconditionally).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        deleted: Option<bool>,
    },
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
        /// Whether retrying may succeed (a storage failure) or not (a record this code cannot
        /// read).
        #[serde(default = "yes")]
        retryable: bool,
    },
}

fn yes() -> bool {
    true
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
            ObjectReply::Failed { message, retryable } => Err(Error::Backend {
                op,
                message,
                retryable,
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

    /// A delete's answer: whether it deleted. An answer without `deleted` comes from an object
    /// that ignored the condition: fine for an unconditional delete, a non-retryable error for
    /// a `conditional` one (it may have deleted what it should have kept).
    pub fn into_deleted(self, conditional: bool) -> Result<bool> {
        match self.failed("delete")? {
            ObjectReply::Deleted {
                deleted: Some(deleted),
            } => Ok(deleted),
            ObjectReply::Deleted { deleted: None } if !conditional => Ok(true),
            ObjectReply::Deleted { deleted: None } => Err(Error::Backend {
                op: "delete_if",
                message: "the Durable Object runs code without conditional deletes (deploy the \
                          object's class with this version)"
                    .into(),
                retryable: false,
            }),
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
    /// Up to `limit` records whose key starts with `prefix`, from `start` (inclusive) on;
    /// `None` for an entry that is no record (the scan goes on past it).
    async fn scan(
        &self,
        prefix: &str,
        start: Option<&str>,
        limit: usize,
    ) -> Result<Vec<(String, Option<Record>)>>;
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
        Err(Error::Backend {
            message, retryable, ..
        }) => ObjectReply::Failed { message, retryable },
        Err(e) => ObjectReply::Failed {
            message: e.to_string(),
            retryable: false,
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
                if !holds(storage, &key, now_ms, &expected).await? {
                    return Ok(ObjectReply::Written { written: false });
                }
            }
            // The alarm first: a failure then leaves nothing written, never a write reported
            // as failed.
            if let Some(exp) = record.expiration {
                schedule(storage, exp.saturating_mul(1000)).await?;
            }
            storage.write(&key, &record).await?;
            Ok(ObjectReply::Written { written: true })
        }
        ObjectRequest::Delete { key, expected } => {
            if let Some(expected) = expected {
                if expected.is_empty() || !holds(storage, &key, now_ms, &expected).await? {
                    return Ok(ObjectReply::Deleted {
                        deleted: Some(false),
                    });
                }
            }
            storage.remove(&key).await?;
            Ok(ObjectReply::Deleted {
                deleted: Some(true),
            })
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
            // An entry that is no record is listed bare (as KV lists a key whatever its value):
            // a read of it fails, and nothing deletes it.
            let keys = raw
                .into_iter()
                .filter(|(_, r)| r.as_ref().is_none_or(|r| r.live(now_ms)))
                .map(|(name, r)| ListKey {
                    name,
                    expiration: r.as_ref().and_then(|r| r.expiration),
                    metadata: r.and_then(|r| r.metadata),
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

/// Whether the key holds what `expected` says: `""` nothing live, else the live value's stamp
/// in hex.
async fn holds<S: ObjectStorage + ?Sized>(
    storage: &S,
    key: &str,
    now_ms: u64,
    expected: &str,
) -> Result<bool> {
    Ok(match (live(storage, key, now_ms).await?, expected) {
        (None, "") => true,
        (Some(r), stamp) if !stamp.is_empty() => Stamp::of(&r.bytes()).to_hex() == stamp,
        _ => false,
    })
}

/// The latest time an alarm can be set for: JavaScript's largest `Date` (ms). A record whose
/// expiration lies beyond it (KV accepts expirations up to 2^53 − 1 ms) is swept then.
pub const MAX_ALARM_MS: u64 = 8_640_000_000_000_000;

/// Make sure the alarm fires by `at_ms`.
async fn schedule<S: ObjectStorage + ?Sized>(storage: &S, at_ms: u64) -> Result<()> {
    let at_ms = at_ms.min(MAX_ALARM_MS);
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

/// The least time between two sweeps (ms). Every sweep reads the whole object, and an object
/// with many records has an expiry every few moments: sweeping at each would read it again and
/// again. Reads never see an expired record, so a minute more in storage costs nothing else.
pub const SWEEP_SPACING_MS: u64 = 60_000;

/// The alarm: delete every expired record, page by page through the object's storage, and set
/// the alarm for the earliest expiration left, at least [`SWEEP_SPACING_MS`] away (a later
/// write expiring sooner may set it earlier: writes carry KV's expiration, a minute ahead or
/// more, so sweeps stay about that far apart). An entry
/// that is no record is left alone (never lose data). Returns how many records it deleted.
pub async fn sweep<S: ObjectStorage + ?Sized>(storage: &S, now_ms: u64) -> Result<usize> {
    let mut deleted = 0;
    let mut next: Option<u64> = None;
    let mut after: Option<String> = None;
    let mut complete = false;
    for _ in 0..SWEEP_MAX_PAGES {
        // `start` is inclusive: the previous page's last key comes back first and is dropped,
        // and one more than a page tells whether more follow.
        let mut page = storage.scan("", after.as_deref(), SWEEP_PAGE + 2).await?;
        if let Some(a) = &after {
            page.retain(|(k, _)| k != a);
        }
        let more = page.len() > SWEEP_PAGE;
        page.truncate(SWEEP_PAGE);
        for (key, record) in &page {
            let Some(record) = record else { continue };
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
    let next = if complete {
        next.map(|at| at.max(now_ms.saturating_add(SWEEP_SPACING_MS)))
    } else {
        Some(now_ms.saturating_add(1000))
    };
    if let Some(at) = next {
        storage.set_alarm(at.min(MAX_ALARM_MS)).await?;
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

/// Read `keys`, all of which live in `object`: one request, one answer per key.
async fn get_from<C: ObjectClient + ?Sized>(
    client: &C,
    object: &str,
    keys: Vec<String>,
) -> Result<Vec<Option<Stored>>> {
    let asked = keys.len();
    client
        .call(object, &ObjectRequest::Get { keys })
        .await?
        .into_values(asked)
}

/// [`KvBackend::get`](super::KvBackend::get) over objects.
pub(crate) async fn get<C: ObjectClient + ?Sized>(client: &C, key: &str) -> Result<Option<Stored>> {
    let object = client.placement().object_of(key);
    Ok(get_from(client, object, vec![key.into()])
        .await?
        .pop()
        .flatten())
}

/// Requests one bulk read keeps in flight at once: the number of subrequests a Workers
/// invocation (a Durable Object's too) may have waiting for response headers; more would only
/// queue there.
const BULK_IN_FLIGHT: usize = 6;

/// [`KvBackend::get_bulk`](super::KvBackend::get_bulk) over objects: one request per object
/// the keys live in (each counted as a bulk operation), up to [`BULK_IN_FLIGHT`] of them at
/// once. The first failure fails the read.
pub(crate) async fn get_bulk<C: ObjectClient + ?Sized>(
    client: &C,
    keys: &[&str],
) -> Result<BulkRead> {
    use futures::stream::{StreamExt as _, TryStreamExt as _};

    let mut by_object: std::collections::BTreeMap<&str, Vec<usize>> = Default::default();
    for (i, key) in keys.iter().enumerate() {
        by_object
            .entry(client.placement().object_of(key))
            .or_default()
            .push(i);
    }
    let ops = by_object.len() as u64;
    let calls: Vec<_> = by_object
        .into_iter()
        .map(|(object, slots)| async move {
            let asked = slots.iter().map(|&i| keys[i].to_string()).collect();
            let got = get_from(client, object, asked).await?;
            Ok::<_, Error>((slots, got))
        })
        .collect();
    let replies: Vec<(Vec<usize>, Vec<Option<Stored>>)> = futures::stream::iter(calls)
        .buffer_unordered(BULK_IN_FLIGHT)
        .try_collect()
        .await?;
    let mut values: Vec<Option<Stored>> = vec![None; keys.len()];
    for (slots, got) in replies {
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
/// holds ("key and value combined cannot exceed 2 MB"). The record is ASCII JSON with the value
/// in base64, so values up to about 1.4 MiB fit: less than KV's 25 MiB, checked before any I/O.
pub const MAX_OBJECT_ENTRY_BYTES: usize = 2_000_000;

/// Bytes the runtime adds to a stored string (its serialization header and length), rounded
/// up generously.
const ENTRY_OVERHEAD: usize = 16;

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
    // The record's text without its value, measured as stored (ASCII), and the value's base64.
    let framing = Record::new(&[], options.metadata.clone(), options.expiration)
        .to_text()
        .len();
    let room = MAX_OBJECT_ENTRY_BYTES.saturating_sub(key.len() + framing + ENTRY_OVERHEAD);
    let max = room / 4 * 3;
    if value.len() > max {
        return Err(LimitError::ValueTooLarge {
            len: value.len(),
            max,
        }
        .into());
    }
    let request = ObjectRequest::put(key, value, options, expected);
    client
        .call(client.placement().object_of(key), &request)
        .await?
        .into_written()
}

/// [`KvBackend::delete`](super::KvBackend::delete) (`expected: None`) and
/// [`delete_if`](super::KvBackend::delete_if) over objects.
pub(crate) async fn delete<C: ObjectClient + ?Sized>(
    client: &C,
    key: &str,
    expected: Option<&Stamp>,
) -> Result<bool> {
    let request = ObjectRequest::Delete {
        key: key.into(),
        expected: expected.map(Stamp::to_hex),
    };
    client
        .call(client.placement().object_of(key), &request)
        .await?
        .into_deleted(expected.is_some())
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

/// The [`KvBackend`](super::KvBackend) of an [`ObjectClient`]: every operation is the shared one
/// above, so the Workers client and the simulated objects cannot drift apart. (A macro rather
/// than a blanket impl: `ObjectClient` is private and a blanket impl would make it part of the
/// public bound.)
macro_rules! object_backend {
    ($client:ty) => {
        #[cfg_attr(target_arch = "wasm32", async_trait::async_trait(?Send))]
        #[cfg_attr(not(target_arch = "wasm32"), async_trait::async_trait)]
        impl $crate::backend::KvBackend for $client {
            async fn get(&self, key: &str) -> $crate::Result<Option<$crate::backend::Stored>> {
                $crate::backend::object::get(self, key).await
            }

            /// One request per object the keys live in (each counted as a bulk operation).
            async fn get_bulk(&self, keys: &[&str]) -> $crate::Result<$crate::backend::BulkRead> {
                $crate::backend::object::get_bulk(self, keys).await
            }

            async fn put(
                &self,
                key: &str,
                value: &[u8],
                options: &$crate::backend::WriteOptions,
            ) -> $crate::Result<()> {
                $crate::backend::object::put(self, key, value, options, None)
                    .await
                    .map(|_| ())
            }

            fn consistency(&self) -> $crate::backend::Consistency {
                $crate::backend::Consistency::Linearizable
            }

            async fn put_if(
                &self,
                key: &str,
                value: &[u8],
                options: &$crate::backend::WriteOptions,
                expected: &$crate::backend::Expected,
            ) -> $crate::Result<bool> {
                $crate::backend::object::put(self, key, value, options, Some(expected)).await
            }

            async fn delete(&self, key: &str) -> $crate::Result<()> {
                $crate::backend::object::delete(self, key, None)
                    .await
                    .map(|_| ())
            }

            async fn delete_if(
                &self,
                key: &str,
                stamp: &$crate::backend::Stamp,
            ) -> $crate::Result<bool> {
                $crate::backend::object::delete(self, key, Some(stamp)).await
            }

            async fn list(
                &self,
                prefix: &str,
                cursor: Option<&str>,
                limit: u32,
            ) -> $crate::Result<$crate::backend::ListPage> {
                $crate::backend::object::list(self, prefix, cursor, limit).await
            }
        }
    };
}
pub(crate) use object_backend;

#[cfg(test)]
mod tests {
    use std::{collections::BTreeMap, sync::Mutex};

    use futures::executor::block_on;

    use super::*;

    /// One object's storage, with entries that are no record and an alarm that can fail.
    #[derive(Default)]
    struct Storage {
        entries: Mutex<BTreeMap<String, Option<Record>>>,
        alarm: Mutex<Option<u64>>,
        alarm_fails: bool,
    }

    #[cfg_attr(target_arch = "wasm32", async_trait::async_trait(?Send))]
    #[cfg_attr(not(target_arch = "wasm32"), async_trait::async_trait)]
    impl ObjectStorage for Storage {
        async fn read(&self, key: &str) -> Result<Option<Record>> {
            match self.entries.lock().unwrap().get(key) {
                None => Ok(None),
                Some(Some(r)) => Ok(Some(r.clone())),
                // As the Workers object reads text that is no record.
                Some(None) => Ok(Some(Record::from_stored_text("junk"))),
            }
        }
        async fn write(&self, key: &str, record: &Record) -> Result<()> {
            let mut entries = self.entries.lock().unwrap();
            entries.insert(key.into(), Some(record.clone()));
            Ok(())
        }
        async fn remove(&self, key: &str) -> Result<()> {
            self.entries.lock().unwrap().remove(key);
            Ok(())
        }
        async fn scan(
            &self,
            prefix: &str,
            start: Option<&str>,
            limit: usize,
        ) -> Result<Vec<(String, Option<Record>)>> {
            let entries = self.entries.lock().unwrap();
            let from = start.unwrap_or(prefix).max(prefix).to_string();
            Ok(entries
                .range(from..)
                .take_while(|(k, _)| k.starts_with(prefix))
                .take(limit)
                .map(|(k, r)| (k.clone(), r.clone()))
                .collect())
        }
        async fn alarm(&self) -> Result<Option<u64>> {
            Ok(*self.alarm.lock().unwrap())
        }
        async fn set_alarm(&self, at_ms: u64) -> Result<()> {
            if self.alarm_fails {
                return Err(Error::Backend {
                    op: "alarm",
                    message: "alarm refused".into(),
                    retryable: true,
                });
            }
            *self.alarm.lock().unwrap() = Some(at_ms);
            Ok(())
        }
    }

    const NOW: u64 = 1_800_000_000_000;

    fn put(key: &str, value: &[u8], expiration: Option<u64>) -> ObjectRequest {
        ObjectRequest::Put {
            key: key.into(),
            record: Record::new(value, None, expiration),
            expected: None,
        }
    }

    #[test]
    fn a_put_whose_alarm_cannot_be_set_writes_nothing_and_says_so() {
        let storage = Storage {
            alarm_fails: true,
            ..Storage::default()
        };
        let reply = block_on(serve(&storage, NOW, put("k", b"v", Some(NOW / 1000 + 60))));
        assert_eq!(
            reply,
            ObjectReply::Failed {
                message: "alarm refused".into(),
                retryable: true
            }
        );
        assert!(
            storage.entries.lock().unwrap().is_empty(),
            "nothing written"
        );
        // Without an expiration no alarm is needed, and the write lands.
        let reply = block_on(serve(&storage, NOW, put("k", b"v", None)));
        assert_eq!(reply, ObjectReply::Written { written: true });
    }

    #[test]
    fn the_alarm_is_never_set_beyond_javascripts_last_date() {
        let storage = Storage::default();
        let reply = block_on(serve(&storage, NOW, put("k", b"v", Some(u64::MAX / 1000))));
        assert_eq!(reply, ObjectReply::Written { written: true });
        assert_eq!(*storage.alarm.lock().unwrap(), Some(MAX_ALARM_MS));
    }

    #[test]
    fn entries_that_are_no_record_are_listed_bare_and_survive_the_sweep() {
        let storage = Storage::default();
        block_on(serve(
            &storage,
            NOW,
            put("a:old", b"v", Some(NOW / 1000 + 60)),
        ));
        block_on(serve(
            &storage,
            NOW,
            put("a:soon", b"v", Some(NOW / 1000 + 90)),
        ));
        storage
            .entries
            .lock()
            .unwrap()
            .insert("a:junk".into(), None);
        let later = NOW + 70_000;
        let listed = block_on(serve(
            &storage,
            later,
            ObjectRequest::List {
                prefix: "a:".into(),
                cursor: None,
                limit: 10,
            },
        ));
        let ObjectReply::Page { keys, .. } = listed else {
            panic!("{listed:?}")
        };
        let names: Vec<&str> = keys.iter().map(|k| k.name.as_str()).collect();
        assert_eq!(names, ["a:junk", "a:soon"]);
        let junk = block_on(serve(
            &storage,
            later,
            ObjectRequest::Get {
                keys: vec!["a:junk".into()],
            },
        ));
        // Read as the bytes of the text: unreadable for the store above, not a failure.
        let ObjectReply::Values { values } = junk else {
            panic!("{junk:?}")
        };
        assert_eq!(values[0].as_ref().unwrap().stored().unwrap().value, b"junk");
        assert_eq!(block_on(sweep(&storage, later)).unwrap(), 1);
        let left: Vec<String> = storage.entries.lock().unwrap().keys().cloned().collect();
        assert_eq!(left, ["a:junk", "a:soon"]);
        // The next expiry is 20 s away, but sweeps are spaced a minute apart.
        assert_eq!(
            *storage.alarm.lock().unwrap(),
            Some(later + SWEEP_SPACING_MS)
        );
    }

    #[test]
    fn a_conditional_delete_deletes_only_the_value_it_names() {
        let storage = Storage::default();
        block_on(serve(&storage, NOW, put("k", b"one", None)));
        let delete = |stamp: &[u8]| {
            block_on(serve(
                &storage,
                NOW,
                ObjectRequest::Delete {
                    key: "k".into(),
                    expected: Some(Stamp::of(stamp).to_hex()),
                },
            ))
        };
        let deleted = |d: bool| ObjectReply::Deleted { deleted: Some(d) };
        assert_eq!(delete(b"two"), deleted(false));
        assert!(storage.entries.lock().unwrap().contains_key("k"));
        assert_eq!(delete(b"one"), deleted(true));
        assert_eq!(delete(b"one"), deleted(false));
        // An object running older code answers without the field: it deleted unconditionally,
        // which is what a delete asked for, and what a conditional delete must not accept.
        let old = || serde_json::from_str::<ObjectReply>(r#"{"reply":"deleted"}"#).unwrap();
        assert_eq!(old().into_deleted(false), Ok(true));
        assert!(matches!(
            old().into_deleted(true),
            Err(Error::Backend {
                op: "delete_if",
                retryable: false,
                ..
            })
        ));
    }

    #[test]
    fn text_that_is_no_record_reads_as_its_own_bytes() {
        let record = Record::from_stored_text(r#"{"not": "a record"}"#);
        assert_eq!(record.stored().unwrap().value, br#"{"not": "a record"}"#);
        assert_eq!(record.stored().unwrap().metadata, None);
        let bad_base64 = Record::from_stored_text(r#"{"v":"%%% not base64"}"#);
        assert_eq!(bad_base64.stored().unwrap().value, b"%%% not base64");
    }

    #[test]
    fn a_record_is_stored_as_ascii_and_reads_back_the_same() {
        let metadata = r#"{"note":"é ✓ 😀 \" \\ end"}"#.to_string();
        let record = Record::new(b"\x00\xffvalue", Some(metadata), Some(1_900_000_000));
        let text = record.to_text();
        assert!(text.is_ascii(), "{text}");
        assert_eq!(Record::from_text(&text), Some(record.clone()));
        assert_eq!(
            serde_json::from_str::<Record>(&serde_json::to_string(&record).unwrap()).unwrap(),
            record,
            "the same record as plain JSON"
        );
        assert_eq!(Record::from_text("{\"v\": 1}"), None);
    }

    #[test]
    fn debug_of_a_record_or_request_never_shows_the_value() {
        let record = Record::new(b"hunter2-SECRET", Some("{}".into()), None);
        let request = ObjectRequest::Put {
            key: "k".into(),
            record: record.clone(),
            expected: None,
        };
        for shown in [format!("{record:?}"), format!("{request:?}")] {
            assert!(!shown.contains(&record.value), "{shown}");
            assert!(!shown.contains("hunter2"), "{shown}");
        }
    }

    /// A client whose objects answer after yielding once, so that calls overlap: it records
    /// how many were in flight at most, and fails the object named `fails`.
    struct Overlapping {
        placement: Placement,
        in_flight: std::sync::atomic::AtomicUsize,
        most: std::sync::atomic::AtomicUsize,
        fails: &'static str,
    }

    impl Overlapping {
        /// Objects placed by group; the one named `fails` answers with a retryable failure.
        fn failing(fails: &'static str) -> Self {
            Self {
                placement: Placement::ByGroup,
                in_flight: Default::default(),
                most: Default::default(),
                fails,
            }
        }
    }

    #[cfg_attr(target_arch = "wasm32", async_trait::async_trait(?Send))]
    #[cfg_attr(not(target_arch = "wasm32"), async_trait::async_trait)]
    impl ObjectClient for Overlapping {
        fn placement(&self) -> &Placement {
            &self.placement
        }
        async fn call(&self, object: &str, request: &ObjectRequest) -> Result<ObjectReply> {
            use std::sync::atomic::Ordering::SeqCst;
            let now = self.in_flight.fetch_add(1, SeqCst) + 1;
            self.most.fetch_max(now, SeqCst);
            tokio::task::yield_now().await;
            self.in_flight.fetch_sub(1, SeqCst);
            if object == self.fails {
                return Ok(ObjectReply::Failed {
                    message: "storage unavailable".into(),
                    retryable: true,
                });
            }
            let ObjectRequest::Get { keys } = request else {
                panic!("a bulk read sends gets only");
            };
            // Every key holds its own name; keys ending in `-` hold nothing.
            let values = keys
                .iter()
                .map(|k| (!k.ends_with('-')).then(|| Record::new(k.as_bytes(), None, None)))
                .collect();
            Ok(ObjectReply::Values { values })
        }
    }

    #[test]
    fn a_bulk_read_overlaps_its_objects_up_to_the_bound_and_keeps_the_order() {
        let client = Overlapping::failing("none");
        // 20 objects (`g:<n>`), two keys in some of them, one missing value.
        let keys: Vec<String> = (0..30)
            .map(|i| format!("g:{}:{}{}", i % 20, i, if i == 7 { "-" } else { "" }))
            .collect();
        let refs: Vec<&str> = keys.iter().map(String::as_str).collect();
        let got = block_on(get_bulk(&client, &refs)).expect("bulk read");
        assert_eq!(got.bulk_ops, 20, "one request per object");
        assert_eq!(got.values.len(), 30);
        for (key, value) in refs.iter().zip(&got.values) {
            match value {
                None => assert!(key.ends_with('-'), "{key}"),
                Some(v) => assert_eq!(v.value, key.as_bytes(), "in the order asked"),
            }
        }
        assert_eq!(got.values.iter().filter(|v| v.is_none()).count(), 1);
        assert_eq!(
            client.most.load(std::sync::atomic::Ordering::SeqCst),
            BULK_IN_FLIGHT,
            "calls overlap, never more than the bound"
        );
    }

    #[test]
    fn a_bulk_read_fails_when_one_object_fails() {
        let client = Overlapping::failing("g:3");
        let keys: Vec<String> = (0..10).map(|i| format!("g:{i}:k")).collect();
        let refs: Vec<&str> = keys.iter().map(String::as_str).collect();
        let err = block_on(get_bulk(&client, &refs)).expect_err("one object failed");
        assert!(
            matches!(
                err,
                Error::Backend {
                    op: "get",
                    retryable: true,
                    ..
                }
            ),
            "{err:?}"
        );
    }
}
