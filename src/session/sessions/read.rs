//! Reading a stored session: the size cap, decoding (expiry, validation, migration) and the
//! store's invariants on the stored times, applied on every read.

use super::{Loaded, Lookup, Sessions, MAX_CLOCK_SKEW_MS};
use crate::session::{
    data::{SessionData, SessionTimes},
    no_session::NoSession,
};
use crate::{
    backend::{Consistency, Stamp},
    error::Result,
};

impl<D: SessionData> Sessions<D> {
    /// Read and classify the session under `hash`. Reports "no session" to the hook.
    pub(super) async fn read(&self, hash: &str) -> Result<Lookup<Loaded<D>>> {
        let lookup = self.read_quietly(hash).await?;
        if let Lookup::NoSession(reason) = &lookup {
            self.report(reason);
        }
        Ok(lookup)
    }

    pub(super) async fn read_quietly(&self, hash: &str) -> Result<Lookup<Loaded<D>>> {
        let key = self.sessions.key(hash);
        let Some(stored) = self.kv().get(&key).await? else {
            return Ok(Lookup::NoSession(NoSession::NotFound));
        };
        let max = self.sessions.max_value_bytes();
        if stored.value.len() > max {
            return Ok(Lookup::NoSession(NoSession::TooLarge {
                len: stored.value.len(),
                max,
            }));
        }
        let now = self.now_ms();
        match self.sessions.decode(&key, &stored.value, now) {
            Ok(None) => Ok(Lookup::NoSession(NoSession::Expired)),
            Ok(Some(decoded)) => {
                let mut session = decoded.value;
                match self.held_to_invariants(session.times(), now) {
                    Ok(t) => {
                        session.set_times(t);
                        let consistent = self.kv().consistency() == Consistency::Linearizable;
                        Ok(Lookup::Found(Loaded {
                            session,
                            stored_version: decoded.stored_version,
                            stamp: consistent.then(|| Stamp::of(&stored.value)),
                        }))
                    }
                    Err(reason) => Ok(Lookup::NoSession(reason)),
                }
            }
            Err(e) => NoSession::from_decode_error(e).map(Lookup::NoSession),
        }
    }

    /// The store's invariants on stored times, applied on every read so that a planted or
    /// corrupt value can neither outlive the store's policy nor push an unrepresentable time
    /// into a later write:
    /// * created and last written no later than now (within [`MAX_CLOCK_SKEW_MS`]), else
    ///   [`NoSession::InvalidTimes`];
    /// * the absolute cap no later than creation + the absolute lifetime;
    /// * the idle expiry no later than the cap, nor than now + the idle timeout;
    /// * expired (idle or absolute) → [`NoSession::Expired`]: the envelope expiry is the idle
    ///   expiry as written, and the payload's own times are checked too.
    ///
    /// Times beyond these bounds are clamped to them, never extended: the result is what the
    /// store would have written itself.
    pub(super) fn held_to_invariants(
        &self,
        t: SessionTimes,
        now: u64,
    ) -> Result<SessionTimes, NoSession> {
        let latest = now.saturating_add(MAX_CLOCK_SKEW_MS);
        if t.created_at > latest {
            return Err(NoSession::InvalidTimes {
                what: "created in the future",
            });
        }
        if t.refreshed_at > latest {
            return Err(NoSession::InvalidTimes {
                what: "written in the future",
            });
        }
        let absolute_expires_at = t
            .absolute_expires_at
            .min(t.created_at.saturating_add(self.absolute_ms));
        let expires_at = t
            .expires_at
            .min(absolute_expires_at)
            .min(now.saturating_add(self.idle_ms));
        if now >= expires_at {
            return Err(NoSession::Expired);
        }
        Ok(SessionTimes {
            expires_at,
            absolute_expires_at,
            ..t
        })
    }
}
