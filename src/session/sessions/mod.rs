//! [`Sessions`]: the session store — its settings and what it is made of, here; each kind of
//! operation in a file of its own below, all seeing the store's private fields:
//!
//! * `lifecycle` — create, get, refresh under the write budget, update, rotate, delete;
//! * `read` — reading a stored session: size cap, decoding, the invariants on its times;
//! * `write_back` — writing a read session back, and the index entry check that undoes a
//!   write-back racing a logout;
//! * `conditional` — the same writes on a backend with a conditional write (Durable Objects);
//! * `logout` — "log out everywhere", unlinking one session, the per-user cap;
//! * `devices` — a user's sessions listed as devices, and one revoked by its handle;
//! * `outcome` — what the operations return.

mod conditional;
mod devices;
mod lifecycle;
mod logout;
mod outcome;
mod read;
mod write_back;

use std::{fmt, sync::Arc, time::Duration};

use super::{
    data::SessionData,
    id::{hash_hex, IdSource, OsRandom, SessionId},
    index::SessionIndexEntry,
    no_session::NoSession,
    record::SessionRecord,
};
use crate::{
    backend::{Kv, Stamp},
    envelope::Codec,
    seal::KeyRing,
    store::TypedStore,
};

pub use outcome::{LogoutAll, Lookup, Refresh, RefreshPlan};
use write_back::Prior;

/// Default idle timeout: 7 days without a request ends a session.
const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(7 * 24 * 3600);
/// Default absolute lifetime: 30 days after creation a session ends whatever the activity.
pub const DEFAULT_ABSOLUTE_LIFETIME: Duration = Duration::from_secs(30 * 24 * 3600);
/// Default key prefix of sessions (`session:<sha256(id)>`).
const DEFAULT_PREFIX: &str = "session";
/// Suffix appended to the session prefix to form the index prefix (`session-user:…`).
const INDEX_PREFIX_SUFFIX: &str = "-user";
/// KV allows one write per second per key; refreshes are spaced at least this far apart.
pub(crate) const MIN_WRITE_SPACING_MS: u64 = 1000;
/// Default number of sessions one [`Sessions::delete_all_for_user`] call deletes (two KV
/// deletes each, well under Workers' 1000 operations per invocation).
const DEFAULT_LOGOUT_BATCH: usize = 400;
/// Default cap on a user's live sessions ([`Sessions::with_max_sessions_per_user`]): well
/// below [`DEFAULT_LOGOUT_BATCH`], so one "log out everywhere" call revokes them all.
const DEFAULT_MAX_SESSIONS_PER_USER: usize = 32;
/// Most sessions one login revokes to bring its user back under the cap (two KV deletes
/// each): a user over the cap by more (sessions from before it) converges over logins, or
/// calls "log out everywhere".
const MAX_EVICTIONS_PER_LOGIN: usize = 4;
/// Pages of a user's index one "log out everywhere" call reads at most (KV can return empty
/// pages before the end).
const MAX_INDEX_PAGES: usize = 16;
/// Default cap on a stored session, in bytes ([`Sessions::with_max_session_bytes`]).
pub const DEFAULT_MAX_SESSION_BYTES: usize = 64 * 1024;
/// How far in the future a stored `createdAt` or `refreshedAt` may lie (clock skew between
/// isolates) before the session is refused as [`NoSession::InvalidTimes`].
const MAX_CLOCK_SKEW_MS: u64 = 60_000;

/// Called with the reason whenever the store (or a gate on it) finds no usable session.
pub type RejectHook = Arc<dyn Fn(&NoSession) + Send + Sync>;

/// Sessions of payload type `D` (default: the shipped [`SessionRecord`]) in a KV namespace.
///
/// Keys: `<prefix>:<sha256(id)>` for sessions, `<prefix>-user:<sha256(user id)>:<sha256(id)>`
/// for the per-user index. Times come from the [`Kv`]'s clock. Cheap to clone.
pub struct Sessions<D: SessionData = SessionRecord> {
    sessions: TypedStore<D>,
    index: TypedStore<SessionIndexEntry>,
    ids: Arc<dyn IdSource>,
    idle_ms: u64,
    absolute_ms: u64,
    refresh_threshold_ms: Option<u64>,
    validate: bool,
    logout_batch: usize,
    max_sessions_per_user: usize,
    on_reject: Option<RejectHook>,
}

/// A session as read: the value (times already held to the store's invariants) and the
/// version it was stored at.
struct Loaded<D> {
    session: D,
    stored_version: u32,
    /// The stamp of the stored bytes, on a backend with a conditional write
    /// ([`Consistency::Linearizable`](crate::backend::Consistency)): a write-back then
    /// happens only over exactly what was read.
    stamp: Option<Stamp>,
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
    /// A store of the shipped [`SessionRecord`] on `kv` with the defaults: prefix `session`,
    /// idle timeout 7 days, absolute lifetime 30 days, refresh threshold 6/7 of the idle
    /// timeout, JSON codec, validation on, ids from the platform CSPRNG. For a session type of
    /// your own: [`Sessions::typed`].
    pub fn new(kv: Kv) -> Self {
        Self::typed(kv)
    }
}

impl<D: SessionData> Sessions<D> {
    /// A store of your own session type `D` on `kv`, with [`new`](Sessions::new)'s defaults:
    /// `Sessions::<MySession>::typed(kv)`, or `let store: Sessions<MySession> =
    /// Sessions::typed(kv);`.
    pub fn typed(kv: Kv) -> Self {
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
    /// a larger session fails with [`Error::Limit`](crate::Error::Limit) before any I/O.
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
}
