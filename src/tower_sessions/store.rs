//! [`KvSessionStore`]: tower-sessions' `SessionStore` over a typed kv-envelope store.

use std::time::Duration;

use async_trait::async_trait;
use tower_sessions_core::{
    session::{Id, Record},
    session_store, SessionStore,
};

use super::{
    budget::SaveBudget,
    convert::{from_stored, hashed_id, to_stored},
    error::{no_free_id, read_failed, write_failed, Op},
    pacing::paced,
    record::TowerSessionRecord,
};
use crate::{
    backend::{Consistency, Expected, Kv},
    seal::KeyRing,
    send::{send_cell, send_future, SendCell},
    session::sessions::DEFAULT_MAX_SESSION_BYTES,
    store::TypedStore,
};

/// Default key prefix of tower-sessions records (`tower-session:<sha256(id)>`).
pub const DEFAULT_TOWER_PREFIX: &str = "tower-session";
/// Ids [`create`](SessionStore::create) draws at most before giving up: with 128 random bits a
/// second draw is already astronomically rare, so running out means a backend that answers
/// every key as taken.
pub const MAX_ID_DRAWS: usize = 16;

/// Rounds of read, judge and conditional write one save takes at most on a Durable Object
/// when other writers keep coming first.
const SAVE_ATTEMPTS: usize = 3;

/// A tower-sessions store on Workers KV (or any [`Kv`]): the `Record` kept as a versioned,
/// validated [`TowerSessionRecord`] under `<prefix>:<sha256(id)>`.
///
/// * **Keys**: the SHA-256 of the session id, never the id; the stored value does not hold the
///   id either, so a KV dump or `list` reveals no live session.
/// * **Expiry**: KV expires the key at `expiry_date` (raised to KV's 60-second floor by
///   [`Kv`], the one place that applies it); a read enforces the exact `expiry_date`.
/// * **Create**: draws a new id while a value exists under the drawn one, as tower-sessions
///   asks of stores. KV has no compare-and-swap and other locations see a write up to a minute
///   late, so a create of the same id at the same moment in another location cannot be
///   excluded; with 128-bit random ids that needs a collision of two fresh draws, which is
///   negligible. On a backend with a conditional write (`DurableKv`: sessions in Durable
///   Objects) each drawn id is taken with one `put_if` where nothing is stored: no read, and
///   no such window.
/// * **Bad records**: a stored record that does not decode, fails its schema or was written by
///   newer code loads as `None` (a fresh session, under a new id); a save never replaces such a
///   record, it fails with `Error::Decode` instead (the crate's "never overwrite what you could
///   not read" rule).
/// * **Errors** never carry an id, a key or a stored value.
/// * **Write budget**: [`with_refresh_window`](Self::with_refresh_window) skips saves that only
///   move the expiry a little later ([`SaveBudget`]).
/// * **KV's one write per second per key** is absorbed: a write of a session this isolate wrote
///   less than a second ago waits out the second (a login then an insert, `always_save`,
///   `cycle_id` then an insert), and a 429 is retried once a second later, so one client's
///   normal use never meets a 500 and no write is lost. Concurrent writers of one session stay
///   last-write-wins on KV (docs/axum.md).
/// * **Send**: tower needs `Send` futures and a `Send + Sync` store; on wasm32 the store wraps
///   its KV handle and futures in the `worker` crate's send wrappers itself (sound in a
///   single-threaded isolate), so no user code needs `unsafe` or a wrapper.
///
/// ```
/// use std::sync::Arc;
///
/// use kv_envelope::{tower_sessions::KvSessionStore, Kv, MemoryKv};
/// use tower_sessions_core::{SessionStore, Session};
///
/// # futures::executor::block_on(async {
/// let store = Arc::new(KvSessionStore::new(Kv::new(MemoryKv::default()))); // WorkersKv on Workers
/// // What tower-sessions' layer does on each request, here by hand:
/// let session = Session::new(None, store.clone(), None);
/// session.insert("counter", 1).await?;
/// session.save().await?;
/// let id = session.id().expect("saved");
/// let again = Session::new(Some(id), store.clone(), None);
/// assert_eq!(again.get::<i32>("counter").await?, Some(1));
/// // KV never sees the id, only its hash.
/// assert!(!store.key(&id).contains(&id.to_string()));
/// # Ok::<(), tower_sessions_core::session::Error>(())
/// # }).unwrap();
/// ```
#[derive(Debug, Clone)]
pub struct KvSessionStore {
    inner: SendCell<Inner>,
}

#[derive(Debug, Clone)]
struct Inner {
    records: TypedStore<TowerSessionRecord>,
    budget: SaveBudget,
}

impl KvSessionStore {
    /// A store on `kv`: prefix `tower-session`, JSON codec, validation on, records up to
    /// [`DEFAULT_MAX_SESSION_BYTES`], every save written ([`SaveBudget::always`]).
    pub fn new(kv: Kv) -> Self {
        Self {
            inner: send_cell(Inner {
                records: TypedStore::new(kv)
                    .with_prefix(DEFAULT_TOWER_PREFIX)
                    .with_max_value_bytes(DEFAULT_MAX_SESSION_BYTES),
                budget: SaveBudget::always(),
            }),
        }
    }

    /// Use `prefix` for the keys (`<prefix>:<sha256(id)>`).
    #[must_use]
    pub fn with_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.inner.records = self.inner.records.clone().with_prefix(prefix);
        self
    }

    /// Skip saves that only move the expiry later by less than `window`
    /// ([`SaveBudget::refresh_window`]): at most one KV write per session per window for a
    /// session that is only kept alive (`Expiry::OnInactivity` with `always_save`).
    #[must_use]
    pub fn with_refresh_window(self, window: Duration) -> Self {
        self.with_save_budget(SaveBudget::refresh_window(window))
    }

    /// Set the write budget of saves.
    #[must_use]
    pub fn with_save_budget(mut self, budget: SaveBudget) -> Self {
        self.inner.budget = budget;
        self
    }

    /// Refuse to store records larger than `max` bytes (stored form), with `Error::Encode`.
    #[must_use]
    pub fn with_max_record_bytes(mut self, max: usize) -> Self {
        self.inner.records = self.inner.records.clone().with_max_value_bytes(max);
        self
    }

    /// Seal the records with `ring` ([`TypedStore::with_sealing`]): session data often holds
    /// what a KV reader should not see.
    #[must_use]
    pub fn with_sealing(mut self, ring: KeyRing) -> Self {
        self.inner.records = self.inner.records.clone().with_sealing(ring);
        self
    }

    /// The write budget of saves.
    pub fn save_budget(&self) -> SaveBudget {
        self.inner.budget
    }

    /// The KV handle (its clock and operation counters).
    pub fn kv(&self) -> &Kv {
        self.inner.records.kv()
    }

    /// The KV key of the session `id`: `<prefix>:<sha256(id)>`.
    pub fn key(&self, id: &Id) -> String {
        self.inner.records.key(&hashed_id(id))
    }
}

impl Inner {
    /// [`create`](SessionStore::create) on a backend with a conditional write (Durable
    /// Objects): each drawn id is written only where nothing is stored, in one step, so no
    /// other create anywhere can take the same id at the same moment, and it costs no read.
    async fn create_if_absent(
        &self,
        record: &mut Record,
        value: &TowerSessionRecord,
    ) -> session_store::Result<()> {
        if value.expiry_date <= self.now_ms() {
            return Ok(()); // Born expired: nothing to keep.
        }
        self.records
            .check_value(value)
            .map_err(|e| write_failed(Op::Create, &e))?;
        for _ in 0..MAX_ID_DRAWS {
            let hashed = hashed_id(&record.id);
            let written = self
                .records
                .insert_checked_if(&hashed, value, Some(value.expiry_date), &Expected::Absent)
                .await
                .map_err(|e| write_failed(Op::Create, &e))?;
            if written {
                return Ok(());
            }
            record.id = Id::default();
        }
        Err(no_free_id(MAX_ID_DRAWS))
    }

    fn now_ms(&self) -> u64 {
        self.records.kv().now_ms()
    }

    async fn create(&self, record: &mut Record) -> session_store::Result<()> {
        let value = to_stored(record);
        if self.records.kv().consistency() == Consistency::Linearizable {
            return self.create_if_absent(record, &value).await;
        }
        for _ in 0..MAX_ID_DRAWS {
            let hashed = hashed_id(&record.id);
            // Any bytes under the key make the id taken, even a record we cannot read.
            let taken = self
                .records
                .kv()
                .get(&self.records.key(&hashed))
                .await
                .map_err(|e| read_failed(Op::Create, &e))?;
            if taken.is_none() {
                if value.expiry_date <= self.now_ms() {
                    return Ok(()); // Born expired: nothing to keep.
                }
                // Just checked to be empty (as far as KV, without compare-and-swap, can say).
                let key = self.records.key(&hashed);
                return paced(self.records.kv(), &key, || {
                    self.records
                        .insert_new(&hashed, &value, Some(value.expiry_date))
                })
                .await
                .map_err(|e| write_failed(Op::Create, &e));
            }
            record.id = Id::default();
        }
        Err(no_free_id(MAX_ID_DRAWS))
    }

    async fn save(&self, record: &Record) -> session_store::Result<()> {
        let hashed = hashed_id(&record.id);
        let key = self.records.key(&hashed);
        let new = to_stored(record);
        let mut was_stored = false;
        for _ in 0..SAVE_ATTEMPTS {
            // One read: the "never overwrite newer or unreadable" guard and the write budget's
            // comparison both judge it (every read error refuses the save).
            let (stored, expected) = self
                .records
                .read_for_write(&hashed)
                .await
                .map_err(|e| read_failed(Op::Save, &e))?;
            if was_stored && stored.is_none() {
                // Deleted (logged out) since the first read, on a Durable Object: the delete
                // wins, the save is dropped. (A record that expired in the moment between the
                // two reads is dropped too: it was expiring anyway.)
                return Ok(());
            }
            was_stored |= stored.is_some();
            if new.expiry_date <= self.now_ms() {
                // Saved already expired: KV refuses such an expiration, and there is nothing
                // to keep.
                return paced(self.records.kv(), &key, || self.records.delete(&hashed))
                    .await
                    .map_err(|e| write_failed(Op::Save, &e));
            }
            if stored.is_some_and(|s| self.budget.skips(&s, &new)) {
                return Ok(());
            }
            // On KV the write is unconditional (`expected` is `None`) and always lands; on a
            // Durable Object it lands only over what was read, else read and judge again.
            let written = paced(self.records.kv(), &key, || {
                self.records
                    .put_after_read(&hashed, &new, Some(new.expiry_date), expected.as_ref())
            })
            .await
            .map_err(|e| write_failed(Op::Save, &e))?;
            if written {
                return Ok(());
            }
        }
        Err(write_failed(
            Op::Save,
            &crate::Error::Conflict { op: "save" },
        ))
    }

    async fn load(&self, id: &Id) -> session_store::Result<Option<Record>> {
        match self.records.get(&hashed_id(id)).await {
            // The envelope's expiry is enforced by the read; the record's own is checked too.
            Ok(Some(stored)) if stored.expiry_date > self.now_ms() => Ok(from_stored(*id, stored)),
            Ok(_) => Ok(None),
            // Unreadable or newer: a fresh session (tower-sessions gives it a new id, so the
            // stored record is left alone; `save` would refuse to replace it anyway).
            Err(e) if e.protects_stored_value() => Ok(None),
            Err(e) => Err(read_failed(Op::Load, &e)),
        }
    }

    async fn delete(&self, id: &Id) -> session_store::Result<()> {
        let hashed = hashed_id(id);
        let key = self.records.key(&hashed);
        paced(self.records.kv(), &key, || self.records.delete(&hashed))
            .await
            .map_err(|e| write_failed(Op::Delete, &e))
    }
}

// Each method crosses the `Send` boundary once: the body runs inside `send_future` (a no-op
// natively, `worker::send::SendFuture` on wasm32), and all it captures from outside is
// `&SendCell<Inner>` and tower's own `Send` arguments.
#[async_trait]
impl SessionStore for KvSessionStore {
    async fn create(&self, record: &mut Record) -> session_store::Result<()> {
        let inner = &self.inner;
        send_future(async move { inner.create(record).await }).await
    }

    async fn save(&self, record: &Record) -> session_store::Result<()> {
        let inner = &self.inner;
        send_future(async move { inner.save(record).await }).await
    }

    async fn load(&self, session_id: &Id) -> session_store::Result<Option<Record>> {
        let inner = &self.inner;
        send_future(async move { inner.load(session_id).await }).await
    }

    async fn delete(&self, session_id: &Id) -> session_store::Result<()> {
        let inner = &self.inner;
        send_future(async move { inner.delete(session_id).await }).await
    }
}
