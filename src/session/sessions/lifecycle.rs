//! A session's life: create, get, refresh under the write budget, update, rotate, delete.

use super::{Lookup, Prior, Refresh, RefreshPlan, Sessions, MIN_WRITE_SPACING_MS};
use crate::{
    backend::Consistency,
    error::{Error, Result},
    session::{
        data::{SessionData, SessionInit, SessionTimes},
        id::SessionId,
        record::SessionRecord,
    },
    versioned::decode_value_in,
};

impl Sessions<SessionRecord> {
    /// Create a session for `user_id` / `email` (the reference pattern's `create`). The id is
    /// returned once, for the cookie; KV only ever sees its hash.
    pub async fn create(
        &self,
        user_id: impl Into<String>,
        email: impl Into<String>,
    ) -> Result<(SessionId, SessionRecord)> {
        self.create_with(SessionInit::new(user_id, email)).await
    }
}

impl<D: SessionData> Sessions<D> {
    /// Create a session from `init`: a fresh id, idle expiry `now + idle` (capped at the
    /// absolute lifetime). Two writes: the index entry, then the session (an entry without a
    /// session is harmless; a session without an entry would escape "log out everywhere").
    /// Then one `list` of the user's index, and the oldest sessions past the
    /// [cap](Self::with_max_sessions_per_user) are revoked.
    /// Refused with [`Error::InvalidValue`] when the session would fail its own schema on read.
    pub async fn create_with(&self, init: D::Init) -> Result<(SessionId, D)> {
        self.create_on_device(init, None).await
    }

    /// [`create_with`](Self::create_with), naming the device for the user's list of devices
    /// ([`list_devices`](Self::list_devices)): `device` is what the app calls it, e.g.
    /// [`device_label`](super::super::device_label) of the login request's `User-Agent`
    /// (control characters dropped, at most 64 characters kept). The session also gets its
    /// device handle, kept across rotations.
    pub async fn create_on_device(
        &self,
        init: D::Init,
        device: Option<&str>,
    ) -> Result<(SessionId, D)> {
        let tag = self.fresh_tag(device)?;
        let now = self.now_ms();
        let id = SessionId::generate(&*self.ids)?;
        let absolute = now.saturating_add(self.absolute_ms);
        let times = SessionTimes {
            created_at: now,
            expires_at: now.saturating_add(self.idle_ms).min(absolute),
            absolute_expires_at: absolute,
            refreshed_at: now,
        };
        let session = D::from_init(init, times);
        self.check_schema(&session)?;
        let hash = id.hashed();
        let times = session.times();
        self.write_index_entry(session.user_id(), &hash, &times, &tag)
            .await?;
        // A fresh 256-bit id cannot collide with a stored value: no guard read needed.
        self.write_new_session(&hash, &session, "create").await?;
        // Only now, so no failure leaves the user with fewer sessions than before.
        self.evict_over_cap(session.user_id(), &hash).await;
        Ok((id, session))
    }

    /// The session of `id`, or `None` when missing, expired (idle or absolute — checked on
    /// every read, whatever KV still holds) or unusable. The reason goes to the hook; use
    /// [`lookup`](Self::lookup) to get it. `Err` only for KV failures.
    pub async fn get(&self, id: &SessionId) -> Result<Option<D>> {
        Ok(self.lookup(id).await?.found())
    }

    /// Like [`get`](Self::get), with the reason when there is no session. Never writes: an
    /// expired value is left for KV's expiration (within ~65 s) rather than paying a delete,
    /// and an unreadable or future-version value is left for a human or newer code.
    pub async fn lookup(&self, id: &SessionId) -> Result<Lookup<D>> {
        Ok(self.read(&id.hashed()).await?.map(|l| l.session))
    }

    /// What the write budget says about refreshing `session` at `now_ms`: due when less than
    /// the refresh threshold of idle lifetime remains, the last write is at least a second
    /// old, and the absolute cap leaves room to extend.
    pub fn plan_refresh(&self, session: &D, now_ms: u64) -> RefreshPlan {
        let t = session.times();
        if t.expires_at >= t.absolute_expires_at {
            return RefreshPlan::AtCap;
        }
        let target = now_ms
            .saturating_add(self.idle_ms)
            .min(t.absolute_expires_at);
        let remaining = t.expires_at.saturating_sub(now_ms);
        if target <= t.expires_at || remaining >= self.refresh_threshold_ms() {
            return RefreshPlan::NotDue;
        }
        if now_ms < t.refreshed_at.saturating_add(MIN_WRITE_SPACING_MS) {
            return RefreshPlan::TooSoon;
        }
        RefreshPlan::Due { expires_at: target }
    }

    /// Sliding expiration under the write budget: read the session, and write it back with a
    /// later idle expiry only when [`plan_refresh`](Self::plan_refresh) says so. Call it on
    /// every request (in the background: it costs one read, and a write at most once per
    /// `idle − threshold`). The write also upgrades an old-version value to the current one.
    ///
    /// A logout or rotation racing the refresh (its delete landing between this read and the
    /// write) would bring the deleted session back; the write is followed by a check of the
    /// session's index entry that undoes it ([`Sessions`] docs, "Races").
    pub async fn refresh(&self, id: &SessionId) -> Result<Refresh> {
        let hash = id.hashed();
        let loaded = match self.read(&hash).await? {
            Lookup::Found(l) => l,
            Lookup::NoSession(r) => return Ok(Refresh::NoSession(r)),
        };
        let now = self.now_ms();
        let expires_at = match self.plan_refresh(&loaded.session, now) {
            RefreshPlan::Due { expires_at } => expires_at,
            other => return Ok(Refresh::Skipped(other)),
        };
        let prior = self.prior(&loaded);
        let mut session = loaded.session;
        let mut t = session.times();
        t.expires_at = expires_at;
        t.refreshed_at = now;
        session.set_times(t);
        self.check_schema(&session)?;
        match self.write_back(&hash, &session, &prior).await {
            Ok(Lookup::Found(())) => Ok(Refresh::Extended { expires_at }),
            Ok(Lookup::NoSession(r)) => Ok(Refresh::NoSession(r)),
            Err(Error::RateLimited) => Ok(Refresh::RateLimited),
            // Another request wrote the session first (a refresh from another tab): it
            // lives, written less than a moment ago.
            Err(Error::Conflict { .. }) => Ok(Refresh::Skipped(RefreshPlan::TooSoon)),
            Err(e) => Err(e),
        }
    }

    /// Change the session's data with `f` and write it (its idle expiry slides too). The times
    /// are the store's: changes `f` makes to them are discarded. If `f` changes the user, the
    /// index entry moves to the new user. KV allows one write per second per key: a second
    /// update within a second may fail with [`Error::RateLimited`], leaving the stored value
    /// unchanged.
    pub async fn update(&self, id: &SessionId, f: impl FnOnce(&mut D)) -> Result<Lookup<D>> {
        let hash = id.hashed();
        let (old_user, prior, session) = match self.read_modified(&hash, f, true).await? {
            Lookup::Found(found) => found,
            Lookup::NoSession(r) => return Ok(Lookup::NoSession(r)),
        };
        let moved = session.user_id() != old_user;
        if moved {
            let tag = self.tag_of(&old_user, &hash).await;
            self.write_index_entry(session.user_id(), &hash, &session.times(), &tag)
                .await?;
        }
        let written = self.write_back(&hash, &session, &prior).await;
        if moved && prior.stamp.is_some() {
            self.drop_unused_entry(&hash, session.user_id(), &written)
                .await;
        }
        if let Lookup::NoSession(r) = written? {
            return Ok(Lookup::NoSession(r));
        }
        if moved {
            // Best effort: a stale entry only costs a no-op delete when the old user logs out
            // everywhere, and expires with the session's cap.
            let _ = self.kv().delete(&self.index_key(&old_user, &hash)).await;
        }
        Ok(Lookup::Found(session))
    }

    /// Rotate the id (session-fixation defence at login or on a privilege change): the same
    /// session under a fresh id, with its creation time and absolute cap kept (rotation never
    /// extends a session's lifetime) and its idle expiry slid. The new session is written
    /// completely (index entry, then session) before the old one is deleted (index entry, then
    /// session), so no failure leaves the user with neither: until the old id is gone the call
    /// returns `Err` and the old cookie keeps working. When this returns `Ok` the old id no
    /// longer works here (other KV locations may serve it from cache for up to ~60 s). A value
    /// this code cannot read is left untouched.
    pub async fn rotate(&self, id: &SessionId) -> Result<Lookup<(SessionId, D)>> {
        self.rotate_with(id, |_| {}).await
    }

    /// [`rotate`](Self::rotate) and change the data in the same write (e.g. new roles).
    pub async fn rotate_with(
        &self,
        id: &SessionId,
        f: impl FnOnce(&mut D),
    ) -> Result<Lookup<(SessionId, D)>> {
        let old_hash = id.hashed();
        let (old_user, prior, session) = match self.read_modified(&old_hash, f, false).await? {
            Lookup::Found(found) => found,
            Lookup::NoSession(r) => return Ok(Lookup::NoSession(r)),
        };
        let new_id = SessionId::generate(&*self.ids)?;
        let new_hash = new_id.hashed();
        let times = session.times();
        // The same device under a new id: its handle and label carry over (one read).
        let tag = self.tag_of(&old_user, &old_hash).await;
        self.write_index_entry(session.user_id(), &new_hash, &times, &tag)
            .await?;
        self.write_new_session(&new_hash, &session, "rotate")
            .await?;
        if prior.stamp.is_some() {
            let new = (session.user_id(), new_hash.as_str(), &times);
            self.retire_rotated(&old_user, &old_hash, &prior, new)
                .await?;
        } else {
            self.unlink(&old_user, &old_hash, &times).await?;
        }
        Ok(Lookup::Found((new_id, session)))
    }

    /// Log out: delete `id`'s session and its index entry. Deletes whatever is stored under the
    /// id's key, even a value this code cannot read (logging out must work during a rolling
    /// deploy). A missing session is not an error. On a linearizable backend (Durable
    /// Objects) nothing is written for it; on KV its key is still deleted (one delete), since
    /// a session written at another location in the last ~60 s may not be visible here yet and
    /// a logout right after a login elsewhere must still end it.
    pub async fn delete(&self, id: &SessionId) -> Result<()> {
        self.delete_found(id, self.kv().consistency() == Consistency::Eventual)
            .await
    }

    /// [`delete`](Self::delete), writing nothing for a missing session unless `blind` (then
    /// its key is deleted all the same).
    pub(in crate::session) async fn delete_found(&self, id: &SessionId, blind: bool) -> Result<()> {
        let hash = id.hashed();
        let key = self.sessions.key(&hash);
        let Some(stored) = self.kv().get(&key).await? else {
            return if blind {
                self.kv().delete(&key).await
            } else {
                Ok(())
            };
        };
        // Read only to learn the user, for the index entry. `now = 0` ignores expiry: an
        // expired session still names its user. No validation: any decodable value will do.
        let owner = decode_value_in::<D>(&stored.value, self.sessions.key_ring(), &key, 0, false)
            .ok()
            .flatten()
            .map(|d| (d.value.user_id().to_string(), d.value.times()));
        match owner {
            Some((user, times)) => self.unlink(&user, &hash, &times).await,
            None => self.kv().delete(&key).await,
        }
    }

    /// Write a session we have just read, changed and passed through
    /// [`check_schema`](Self::check_schema) (every operation checks once, before its first
    /// write). No guard read: it would cost a second read for nothing, as KV has no
    /// compare-and-swap and the guard could be stale anyway.
    pub(super) async fn write_session(&self, hash: &str, session: &D) -> Result<()> {
        let expires_at = session.times().expires_at;
        self.sessions
            .insert_checked(hash, session, Some(expires_at))
            .await
    }

    /// Write a session under a freshly drawn id, its index entry already written: on KV
    /// unconditionally (whose reads could not check anything), on a backend with a
    /// conditional write only where nothing is stored, checked against a "log out everywhere"
    /// in between ([`write_new_session_if`](Self::write_new_session_if)).
    async fn write_new_session(&self, hash: &str, session: &D, op: &'static str) -> Result<()> {
        if self.kv().consistency() == Consistency::Eventual {
            return self.write_session(hash, session).await;
        }
        self.write_new_session_if(hash, session, op).await
    }

    /// Read the session under `hash`, let `f` change its data, and restamp its times (the
    /// store's, so changes `f` makes to them are discarded): idle expiry slid to now + idle
    /// within the absolute cap — never shortened when `keep_later_expiry` — and refreshed now.
    /// Returns the user before `f`, what a write-back must know of the value as read
    /// ([`Prior`]), and the session, checked against its schema.
    async fn read_modified(
        &self,
        hash: &str,
        f: impl FnOnce(&mut D),
        keep_later_expiry: bool,
    ) -> Result<Lookup<(String, Prior<D>, D)>> {
        let loaded = match self.read(hash).await? {
            Lookup::Found(l) => l,
            Lookup::NoSession(r) => return Ok(Lookup::NoSession(r)),
        };
        let prior = self.prior(&loaded);
        let mut session = loaded.session;
        let old_user = session.user_id().to_string();
        let before = session.times();
        f(&mut session);
        let now = self.now_ms();
        let slid = now
            .saturating_add(self.idle_ms)
            .min(before.absolute_expires_at);
        session.set_times(SessionTimes {
            expires_at: if keep_later_expiry {
                slid.max(before.expires_at)
            } else {
                slid
            },
            refreshed_at: now,
            ..before
        });
        self.check_schema(&session)?;
        Ok(Lookup::Found((old_user, prior, session)))
    }

    /// The session against its schema, as the next read would check it (the typed store's
    /// check, run before the first write of an operation so none of its writes happen).
    pub(super) fn check_schema(&self, session: &D) -> Result<()> {
        self.sessions.check_value(session)
    }
}
