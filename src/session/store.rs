//! [`Sessions`]: create, read, refresh under a write budget, rotate and delete sessions,
//! and log a user out everywhere.

use std::{fmt, sync::Arc, time::Duration};

use super::{
    data::{SessionData, SessionInit, SessionTimes},
    id::{hash_hex, IdSource, OsRandom, SessionId},
    index::{Prior, SessionIndexEntry},
    reason::NoSession,
    record::SessionRecord,
};
use crate::{
    backend::{Consistency, Kv, Stamp},
    envelope::Codec,
    error::{Error, Result},
    seal::KeyRing,
    store::TypedStore,
    versioned::decode_value_in,
};

/// Default idle timeout: 7 days without a request ends a session.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(7 * 24 * 3600);
/// Default absolute lifetime: 30 days after creation a session ends whatever the activity.
pub const DEFAULT_ABSOLUTE_LIFETIME: Duration = Duration::from_secs(30 * 24 * 3600);
/// Default key prefix of sessions (`session:<sha256(id)>`).
pub const DEFAULT_PREFIX: &str = "session";
/// Suffix appended to the session prefix to form the index prefix (`session-user:…`).
pub const INDEX_PREFIX_SUFFIX: &str = "-user";
/// KV allows one write per second per key; refreshes are spaced at least this far apart.
pub const MIN_WRITE_SPACING_MS: u64 = 1000;
/// Default number of sessions one [`Sessions::delete_all_for_user`] call deletes (two KV
/// deletes each, well under Workers' 1000 operations per invocation).
pub const DEFAULT_LOGOUT_BATCH: usize = 400;
/// Default cap on a user's live sessions ([`Sessions::with_max_sessions_per_user`]): well
/// below [`DEFAULT_LOGOUT_BATCH`], so one "log out everywhere" call revokes them all.
pub(super) const DEFAULT_MAX_SESSIONS_PER_USER: usize = 32;
/// Most sessions one login revokes to bring its user back under the cap (two KV deletes
/// each): a user over the cap by more (sessions from before it) converges over logins, or
/// calls "log out everywhere".
pub(super) const MAX_EVICTIONS_PER_LOGIN: usize = 4;
/// Pages of a user's index one "log out everywhere" call reads at most (KV can return empty
/// pages before the end).
pub(super) const MAX_INDEX_PAGES: usize = 16;
/// Default cap on a stored session, in bytes ([`Sessions::with_max_session_bytes`]).
pub const DEFAULT_MAX_SESSION_BYTES: usize = 64 * 1024;
/// How far in the future a stored `createdAt` or `refreshedAt` may lie (clock skew between
/// isolates) before the session is refused as [`NoSession::InvalidTimes`].
pub const MAX_CLOCK_SKEW_MS: u64 = 60_000;

/// Called with the reason whenever the store (or a gate on it) finds no usable session.
pub type RejectHook = Arc<dyn Fn(&NoSession) + Send + Sync>;

/// The outcome of an operation on a session that may not exist (or not be usable).
#[derive(Debug, Clone, PartialEq)]
pub enum Lookup<T> {
    /// The session, and whatever the operation produced.
    Found(T),
    /// No usable session, and why.
    NoSession(NoSession),
}

impl<T> Lookup<T> {
    /// The value, if found.
    pub fn found(self) -> Option<T> {
        match self {
            Lookup::Found(v) => Some(v),
            Lookup::NoSession(_) => None,
        }
    }

    /// The reason, if there is no session.
    pub fn reason(&self) -> Option<&NoSession> {
        match self {
            Lookup::Found(_) => None,
            Lookup::NoSession(r) => Some(r),
        }
    }

    /// Map the found value.
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Lookup<U> {
        match self {
            Lookup::Found(v) => Lookup::Found(f(v)),
            Lookup::NoSession(r) => Lookup::NoSession(r),
        }
    }
}

/// What the write budget says about extending a session now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefreshPlan {
    /// Write the session with this new idle expiry.
    Due {
        /// The new idle expiry (ms).
        expires_at: u64,
    },
    /// More idle lifetime remains than the refresh threshold: no write.
    NotDue,
    /// The session was written less than a second ago (KV's per-key write limit).
    TooSoon,
    /// The idle expiry already sits at the absolute cap: nothing left to extend.
    AtCap,
}

/// The outcome of [`Sessions::refresh`].
#[derive(Debug, Clone, PartialEq)]
pub enum Refresh {
    /// The sliding expiry was written.
    Extended {
        /// The new idle expiry (ms).
        expires_at: u64,
    },
    /// Not written: see [`RefreshPlan`].
    Skipped(RefreshPlan),
    /// KV answered 429. Nothing is lost: the stored session is unchanged and still valid until
    /// its current expiry; a later request refreshes it.
    RateLimited,
    /// No usable session.
    NoSession(NoSession),
}

/// The outcome of [`Sessions::delete_all_for_user`] and
/// [`Sessions::logout_everywhere`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct LogoutAll {
    /// Sessions deleted by this call.
    pub deleted: usize,
    /// False when the batch limit stopped the call early: call again to continue (on KV a
    /// minute later, so that its `list` has caught up with the deletes; before that the call
    /// deletes some of the same keys again).
    pub complete: bool,
}

/// Sessions of payload type `D` (default: the shipped [`SessionRecord`]) in a KV namespace.
///
/// Keys: `<prefix>:<sha256(id)>` for sessions, `<prefix>-user:<sha256(user id)>:<sha256(id)>`
/// for the per-user index. Times come from the [`Kv`]'s clock. Cheap to clone.
pub struct Sessions<D: SessionData = SessionRecord> {
    pub(super) sessions: TypedStore<D>,
    pub(super) index: TypedStore<SessionIndexEntry>,
    ids: Arc<dyn IdSource>,
    pub(super) idle_ms: u64,
    pub(super) absolute_ms: u64,
    refresh_threshold_ms: Option<u64>,
    pub(super) validate: bool,
    pub(super) logout_batch: usize,
    pub(super) max_sessions_per_user: usize,
    on_reject: Option<RejectHook>,
}

/// A session as read: the value (times already held to the store's invariants) and the
/// version it was stored at.
pub(super) struct Loaded<D> {
    pub(super) session: D,
    pub(super) stored_version: u32,
    /// The stamp of the stored bytes, on a backend with a conditional write
    /// ([`Consistency::Linearizable`](crate::backend::Consistency)): a write-back then
    /// happens only over exactly what was read.
    pub(super) stamp: Option<Stamp>,
}

impl<D: SessionData> Clone for Sessions<D> {
    fn clone(&self) -> Self {
        Self {
            sessions: self.sessions.clone(),
            index: self.index.clone(),
            ids: self.ids.clone(),
            idle_ms: self.idle_ms,
            absolute_ms: self.absolute_ms,
            refresh_threshold_ms: self.refresh_threshold_ms,
            validate: self.validate,
            logout_batch: self.logout_batch,
            max_sessions_per_user: self.max_sessions_per_user,
            on_reject: self.on_reject.clone(),
        }
    }
}

impl<D: SessionData> fmt::Debug for Sessions<D> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sessions")
            .field("type", &D::NAME)
            .field("prefix", &self.prefix())
            .field("idle_ms", &self.idle_ms)
            .field("absolute_ms", &self.absolute_ms)
            .field("refresh_threshold_ms", &self.refresh_threshold_ms())
            .finish_non_exhaustive()
    }
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

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
    /// A store on `kv` with the defaults: prefix `session`, idle timeout 7 days, absolute
    /// lifetime 30 days, refresh threshold 6/7 of the idle timeout, JSON codec, validation
    /// on, ids from the platform CSPRNG.
    pub fn new(kv: Kv) -> Self {
        Self {
            sessions: TypedStore::new(kv.clone())
                .with_prefix(DEFAULT_PREFIX)
                .with_max_value_bytes(DEFAULT_MAX_SESSION_BYTES),
            index: TypedStore::new(kv)
                .with_prefix(format!("{DEFAULT_PREFIX}{INDEX_PREFIX_SUFFIX}")),
            ids: Arc::new(OsRandom),
            idle_ms: ms(DEFAULT_IDLE_TIMEOUT),
            absolute_ms: ms(DEFAULT_ABSOLUTE_LIFETIME),
            refresh_threshold_ms: None,
            validate: true,
            logout_batch: DEFAULT_LOGOUT_BATCH,
            max_sessions_per_user: DEFAULT_MAX_SESSIONS_PER_USER,
            on_reject: None,
        }
    }

    /// Keys `<prefix>:<sha256(id)>`; the index moves to `<prefix>-user:…` too.
    #[must_use]
    pub fn with_prefix(mut self, prefix: &str) -> Self {
        self.sessions = self.sessions.with_prefix(prefix);
        self.index = self
            .index
            .with_prefix(format!("{prefix}{INDEX_PREFIX_SUFFIX}"));
        self
    }

    /// Put the per-user index under its own prefix.
    #[must_use]
    pub fn with_index_prefix(mut self, prefix: &str) -> Self {
        self.index = self.index.with_prefix(prefix);
        self
    }

    /// Idle timeout: a session not refreshed for this long ends (at least one second).
    #[must_use]
    pub fn with_idle_timeout(mut self, idle: Duration) -> Self {
        self.idle_ms = ms(idle).max(1000);
        self
    }

    /// Absolute lifetime: refresh never extends a session past creation + this (at least one
    /// second).
    #[must_use]
    pub fn with_absolute_lifetime(mut self, lifetime: Duration) -> Self {
        self.absolute_ms = ms(lifetime).max(1000);
        self
    }

    /// Refresh (write) only when less than this idle lifetime remains. The default, 6/7 of the
    /// idle timeout, writes at most once per 1/7 of the window: once a day for 7 days. Capped
    /// at the idle timeout (then every refresh writes, still at most once a second).
    #[must_use]
    pub fn with_refresh_threshold(mut self, threshold: Duration) -> Self {
        self.refresh_threshold_ms = Some(ms(threshold));
        self
    }

    /// Write sessions with `codec` (reads accept both).
    #[must_use]
    pub fn with_codec(mut self, codec: Codec) -> Self {
        self.sessions = self.sessions.with_codec(codec);
        self
    }

    /// Validate sessions against their schema on read and before every write (default on).
    #[must_use]
    pub fn with_validation(mut self, on: bool) -> Self {
        self.validate = on;
        self.sessions = self.sessions.with_validation(on);
        self
    }

    /// Seal sessions and their per-user index entries with `ring` (see
    /// [`TypedStore::with_sealing`]): a stored session's email, user id and data are then
    /// unreadable without a key. A session stored in clear is [`NoSession::Sealed`] (a
    /// session planted without the key is never served), unless the ring opts into reading
    /// clear values ([`KeyRing::requiring_sealed`]`(false)`, the migration path: each is
    /// sealed at its next write); a session sealed with a key id the ring lacks is
    /// [`NoSession::Sealed`] and stays in KV untouched.
    #[must_use]
    pub fn with_sealing(mut self, ring: KeyRing) -> Self {
        self.sessions = self.sessions.with_sealing(ring.clone());
        self.index = self.index.with_sealing(ring);
        self
    }

    /// Draw ids from `source` instead of the platform CSPRNG (deterministic tests).
    #[must_use]
    pub fn with_id_source(mut self, source: Arc<dyn IdSource>) -> Self {
        self.ids = source;
        self
    }

    /// Most sessions one [`delete_all_for_user`](Self::delete_all_for_user) call deletes.
    #[must_use]
    pub fn with_logout_batch(mut self, sessions: usize) -> Self {
        self.logout_batch = sessions.max(1);
        self
    }

    /// Most live sessions one user keeps (default 32, at least 1): a login past it revokes the
    /// user's oldest sessions (by first login; at most 4 per login, so a login's cost stays
    /// bounded), so "log out everywhere" always finishes in one call
    /// ([`delete_all_for_user`](Self::delete_all_for_user) revokes up to the
    /// [logout batch](Self::with_logout_batch), 400 by default). Each login pays one `list` of
    /// the user's index for it. On KV the count follows KV's eventually consistent `list`:
    /// logins at other locations within the propagation window (about 60 s) may not be seen
    /// yet, so the cap can be overshot by the logins of that window (bounded by the app's
    /// per-account login limit), and is restored by the next login after it. On Durable
    /// Objects the count is exact.
    #[must_use]
    pub fn with_max_sessions_per_user(mut self, sessions: usize) -> Self {
        self.max_sessions_per_user = sessions.max(1);
        self
    }

    /// Largest stored session, in bytes (default 64 KiB). A larger stored value is
    /// [`NoSession::TooLarge`] without being decoded (never served, never rewritten); writing
    /// a larger session fails with [`Error::Limit`] before any I/O.
    #[must_use]
    pub fn with_max_session_bytes(mut self, max: usize) -> Self {
        self.sessions = self.sessions.with_max_value_bytes(max);
        self
    }

    /// Call `hook` with the reason whenever no usable session is found (for logs; the reason
    /// never contains a token or a payload value).
    #[must_use]
    pub fn on_reject(mut self, hook: RejectHook) -> Self {
        self.on_reject = Some(hook);
        self
    }

    /// The KV handle.
    pub fn kv(&self) -> &Kv {
        self.sessions.kv()
    }

    /// Current time on the store's clock (ms).
    pub fn now_ms(&self) -> u64 {
        self.kv().now_ms()
    }

    /// The idle timeout.
    pub fn idle_timeout(&self) -> Duration {
        Duration::from_millis(self.idle_ms)
    }

    /// The absolute lifetime.
    pub fn absolute_lifetime(&self) -> Duration {
        Duration::from_millis(self.absolute_ms)
    }

    /// The effective refresh threshold, in ms.
    pub fn refresh_threshold_ms(&self) -> u64 {
        self.refresh_threshold_ms
            .unwrap_or(self.idle_ms / 7 * 6)
            .min(self.idle_ms)
    }

    /// The session key prefix.
    pub fn prefix(&self) -> String {
        let key = self.sessions.key("");
        key.strip_suffix(':').unwrap_or(&key).to_string()
    }

    /// The KV key of `id`'s session: `<prefix>:<sha256(id)>`.
    pub fn key_of(&self, id: &SessionId) -> String {
        self.sessions.key(&id.hashed())
    }

    /// The KV key prefix of `user_id`'s index entries.
    pub fn index_prefix_of(&self, user_id: &str) -> String {
        let mut prefix = self.index.key(&hash_hex(user_id.as_bytes()));
        prefix.push(':');
        prefix
    }

    /// Report a reason to the hook, if any.
    pub fn report(&self, reason: &NoSession) {
        if let Some(hook) = &self.on_reject {
            hook(reason);
        }
    }

    /// Create a session from `init`: a fresh id, idle expiry `now + idle` (capped at the
    /// absolute lifetime). Two writes: the index entry, then the session (an entry without a
    /// session is harmless; a session without an entry would escape "log out everywhere").
    /// Then one `list` of the user's index, and the oldest sessions past the
    /// [cap](Self::with_max_sessions_per_user) are revoked.
    /// Refused with [`Error::InvalidValue`] when the session would fail its own schema on read.
    pub async fn create_with(&self, init: D::Init) -> Result<(SessionId, D)> {
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
        self.write_index_entry(session.user_id(), &hash, &times)
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
            self.write_index_entry(session.user_id(), &hash, &session.times())
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
        self.write_index_entry(session.user_id(), &new_hash, &times)
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
    pub(super) async fn delete_found(&self, id: &SessionId, blind: bool) -> Result<()> {
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
