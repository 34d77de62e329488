//! What the store's operations return: a session or why there is none ([`Lookup`]), what a
//! refresh did ([`Refresh`], [`RefreshPlan`]), what a "log out everywhere" did ([`LogoutAll`]).

#[cfg(doc)]
use super::Sessions;
use crate::session::no_session::NoSession;

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
