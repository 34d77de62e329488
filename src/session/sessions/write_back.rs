//! Writing a session that was read back to KV, and the check of its index entry after the
//! write that undoes a write-back which raced a logout or a rotation (the entry is a session's
//! liveness mark, `session/index.rs`). On a backend with a conditional write the write-back is
//! `conditional`'s instead.

use super::{Loaded, Lookup, Sessions};
use crate::{
    backend::{Stamp, PROPAGATION_MS},
    error::Result,
    session::{
        data::{SessionData, SessionTimes},
        device::{clean_label, DeviceHandle, DeviceTag},
        id::hash_hex,
        index::SessionIndexEntry,
        no_session::NoSession,
    },
};

/// What a write-back must know of a session as it was read ([`Sessions::prior`]).
pub(super) struct Prior<D> {
    /// It may lack its index entry without having been logged out
    /// ([`Sessions::may_lack_entry`]).
    pub(super) unindexed_ok: bool,
    /// It was stored at an older version, from before the store kept an index.
    pub(super) legacy: bool,
    /// The stamp of the bytes read, on a backend with a conditional write.
    pub(super) stamp: Option<Stamp>,
    /// The session as read, on a backend with a conditional write (to tell a change of its
    /// times alone from any other, `conditional.rs`).
    pub(super) read: Option<D>,
}

impl<D: SessionData> Sessions<D> {
    /// Write back a session read under `hash` (refresh, update).
    ///
    /// On a backend with a conditional write ([`Consistency::Linearizable`], a Durable
    /// Object) the write happens only over exactly the value that was read
    /// ([`Prior::stamp`]): a logout, rotation or "log out everywhere" that deleted it in
    /// between makes the write fail, so nothing comes back (`NoSession::NotFound`), and a
    /// concurrent writer that changed it wins ([`Error::Conflict`](crate::Error::Conflict)).
    ///
    /// On KV the write is unconditional, and then the session's index entry is checked. The
    /// entry is the session's liveness mark: logout, rotation and "log out everywhere" delete
    /// it before the session ([`unlink`](Self::unlink)). So an entry missing after our write
    /// means one of them ran between our read and our write, and our write brought a deleted
    /// session back: it is deleted again (`NoSession::NotFound`). Two cases are no such race
    /// and get their entry (re)written instead, so that "log out everywhere" covers them
    /// ([`may_lack_entry`](Self::may_lack_entry), decided on the value as read:
    /// [`Prior::unindexed_ok`]).
    ///
    /// Costs one read per write-back on KV (at most one a day per session under the default
    /// write budget). What remains on KV is documented in docs/sessions.md: a location whose
    /// view of both keys is stale can still resurrect a session for up to the propagation
    /// window.
    pub(super) async fn write_back(
        &self,
        hash: &str,
        session: &D,
        prior: &Prior<D>,
    ) -> Result<Lookup<()>> {
        if let Some(stamp) = prior.stamp {
            return self.write_back_if(hash, session, prior, stamp).await;
        }
        self.write_session(hash, session).await?;
        // The write has happened: a failure of the check below leaves its outcome as it is
        // (what a write-back did before the check existed), never an error that would hide it.
        let entry_key = self.index_key(session.user_id(), hash);
        if !matches!(self.kv().get(&entry_key).await, Ok(None)) {
            return Ok(Lookup::Found(()));
        }
        if prior.unindexed_ok {
            let _ = self
                .write_index_entry(
                    session.user_id(),
                    hash,
                    &session.times(),
                    &DeviceTag::of_hash(hash),
                )
                .await;
            return Ok(Lookup::Found(()));
        }
        if self.kv().delete(&self.sessions.key(hash)).await.is_err() {
            return Ok(Lookup::Found(()));
        }
        let reason = NoSession::NotFound;
        self.report(&reason);
        Ok(Lookup::NoSession(reason))
    }

    /// What a write-back must know of the session as it was read.
    pub(super) fn prior(&self, loaded: &Loaded<D>) -> Prior<D> {
        Prior {
            unindexed_ok: self.may_lack_entry(loaded.stored_version, &loaded.session),
            legacy: loaded.stored_version < D::VERSION,
            stamp: loaded.stamp,
            read: loaded.stamp.map(|_| loaded.session.clone()),
        }
    }

    /// Write the index entry of the session under `hash`, for the device `tag`.
    pub(super) async fn write_index_entry(
        &self,
        user_id: &str,
        hash: &str,
        t: &SessionTimes,
        tag: &DeviceTag,
    ) -> Result<()> {
        let entry = SessionIndexEntry {
            created_at: t.created_at,
            absolute_expires_at: t.absolute_expires_at,
            handle: Some(tag.handle.as_str().to_string()),
            device: tag.label.clone(),
        };
        self.put_index_entry(user_id, hash, &entry).await
    }

    /// A new device's tag: a fresh handle and the app's label, cleaned.
    pub(super) fn fresh_tag(&self, label: Option<&str>) -> Result<DeviceTag> {
        Ok(DeviceTag {
            handle: DeviceHandle::draw(&*self.ids)?,
            label: label.and_then(clean_label),
        })
    }

    /// The tag of the session under `hash` as its index entry has it, to carry over to a
    /// rotated session or another user's index: one read. An entry without a handle (from
    /// before devices) or none at all gets the handle derived from `hash`, so the device keeps
    /// the handle a list showed for it.
    pub(super) async fn tag_of(&self, user_id: &str, hash: &str) -> DeviceTag {
        let entry = self
            .index
            .get(&self.index_id(user_id, hash))
            .await
            .ok()
            .flatten();
        DeviceTag {
            handle: entry
                .as_ref()
                .and_then(|e| e.handle.as_deref())
                .and_then(DeviceHandle::parse)
                .unwrap_or_else(|| DeviceHandle::legacy(hash)),
            label: entry.and_then(|e| e.device),
        }
    }

    pub(super) async fn put_index_entry(
        &self,
        user_id: &str,
        hash: &str,
        entry: &SessionIndexEntry,
    ) -> Result<()> {
        self.index
            .insert_new(
                &self.index_id(user_id, hash),
                entry,
                Some(entry.absolute_expires_at),
            )
            .await
    }

    pub(super) fn index_id(&self, user_id: &str, hash: &str) -> String {
        format!("{}:{hash}", hash_hex(user_id.as_bytes()))
    }

    pub(super) fn index_key(&self, user_id: &str, hash: &str) -> String {
        self.index.key(&self.index_id(user_id, hash))
    }

    /// Whether a session as read may lack its index entry without having been logged out: it
    /// was stored at an older version (written before this store kept an index, e.g. the
    /// reference pattern's v1 sessions), or its last write (which is when any entry of it was
    /// written: creation, rotation, a change of user) is younger than KV's propagation bound,
    /// so the entry may not have reached this location yet.
    pub(super) fn may_lack_entry(&self, stored_version: u32, session: &D) -> bool {
        let written_at = session.times().refreshed_at;
        stored_version < D::VERSION || self.now_ms() < written_at.saturating_add(PROPAGATION_MS)
    }
}
