//! A client's side: the [`KvBackend`](crate::backend::KvBackend) operations over objects, written
//! once for the Workers client and the simulated objects ([`ObjectClient`]).

use crate::backend::{
    limits::MAX_OBJECT_ENTRY_BYTES, placement::Placement, BulkRead, Expected, ListPage, Stamp,
    Stored, WriteOptions,
};
use crate::{
    error::{Error, LimitError, Result},
    send::MaybeSendSync,
};

use super::*;

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
pub(super) const BULK_IN_FLIGHT: usize = 6;

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
