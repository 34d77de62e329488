//! [`serve`]: one object's answer to a request, over its own storage ([`ObjectStorage`]).

use crate::backend::{ListKey, Stamp, MAX_LIST_LIMIT};
use crate::{
    error::{Error, Result},
    send::MaybeSendSync,
};

use super::{sweep::schedule, *};

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
