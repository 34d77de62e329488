//! The session store's writes on a backend with a conditional write
//! ([`Consistency::Linearizable`](crate::backend::Consistency), a Durable Object): every write
//! that could undo a logout, a rotation or another writer's change is conditional on the value
//! as it was read ([`Prior::stamp`]), so none of the races KV leaves open (docs/sessions.md,
//! "Consistency") can happen.
//!
//! * A write-back (refresh, update) lands only over the value it read. When another writer came
//!   first and changed nothing but the times (a refresh from another tab), an update is written
//!   over it; any other change wins, and the write fails with [`Error::Conflict`].
//! * A new session (create, rotate) is written only where nothing is stored, then its index
//!   entry is checked: a "log out everywhere" in between leaves it out.
//! * Rotation deletes the old session only if it is still the one it read (times aside): a
//!   logout, another rotation or an update in between makes it fail with [`Error::Conflict`]
//!   (the new session is undone), rather than outlive the logout or drop the update.
//!
//! "Times aside" compares the sessions as JSON with their times made equal: a session type
//! whose data serializes in no fixed order (a `HashSet`) looks changed to it, and a refresh in
//! between then fails the rotation or update with a conflict (nothing lost; use a `BTreeSet`).

use super::{Lookup, Prior, Sessions};
use crate::session::{
    data::{SessionData, SessionTimes},
    device::DeviceTag,
};
use crate::{
    backend::{Expected, Stamp},
    error::{Error, Result},
};

/// Rounds of a conditional write one operation takes at most when other writers keep changing
/// only the times.
const ATTEMPTS: usize = 3;

/// Whether `a` and `b` differ in nothing but their times (compared as the JSON they are
/// stored as).
fn same_but_times<D: SessionData>(a: &D, b: &D) -> bool {
    let mut b = b.clone();
    b.set_times(a.times());
    match (serde_json::to_value(a), serde_json::to_value(&b)) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

impl<D: SessionData> Sessions<D> {
    /// The conditional write-back of [`write_back`](Self::write_back), over the value read
    /// with `stamp`.
    pub(super) async fn write_back_if(
        &self,
        hash: &str,
        session: &D,
        prior: &Prior<D>,
        stamp: Stamp,
    ) -> Result<Lookup<()>> {
        let expires_at = session.times().expires_at;
        let mut expected = stamp;
        let mut attempts = 0;
        loop {
            attempts += 1;
            let written = self
                .sessions
                .insert_checked_if(hash, session, Some(expires_at), &Expected::Stamp(expected))
                .await?;
            if written {
                break;
            }
            let current = match self.read_quietly(hash).await? {
                Lookup::Found(current) => current,
                Lookup::NoSession(reason) => {
                    self.report(&reason);
                    return Ok(Lookup::NoSession(reason));
                }
            };
            // Written over only when the other writer changed nothing but the times and this
            // write changes more (an update; a refresh that lost to another is not needed).
            let only_times = prior
                .read
                .as_ref()
                .is_some_and(|read| same_but_times(read, &current.session));
            match current.stamp {
                Some(s)
                    if only_times
                        && !same_but_times(session, &current.session)
                        && attempts < ATTEMPTS =>
                {
                    expected = s;
                }
                _ => return Err(Error::Conflict { op: "write back" }),
            }
        }
        // A session stored before this store kept an index gets its entry, as on KV (the
        // entry of a recent write is there already: every read is current).
        if prior.legacy
            && matches!(
                self.kv()
                    .get(&self.index_key(session.user_id(), hash))
                    .await,
                Ok(None)
            )
        {
            let _ = self
                .write_index_entry(
                    session.user_id(),
                    hash,
                    &session.times(),
                    &DeviceTag::of_hash(hash),
                )
                .await;
        }
        Ok(Lookup::Found(()))
    }

    /// Write a session under a freshly drawn id, its index entry already written, only where
    /// nothing is stored ([`Expected::Absent`]), and then check the entry: a "log out
    /// everywhere" that ran between the entry and the session deleted the entry (and the
    /// session, not yet written), and would leave this one live without an entry, out of
    /// reach of the next "log out everywhere". It is deleted again and the call fails with
    /// [`Error::Conflict`] (the user was logged out everywhere while logging in: try again).
    /// If that delete fails, the entry is written again so the session stays within reach.
    pub(super) async fn write_new_session_if(
        &self,
        hash: &str,
        session: &D,
        op: &'static str,
    ) -> Result<()> {
        let expires_at = session.times().expires_at;
        let written = self
            .sessions
            .insert_checked_if(hash, session, Some(expires_at), &Expected::Absent)
            .await?;
        if !written {
            return Err(Error::Conflict { op });
        }
        let entry = self.index_key(session.user_id(), hash);
        if self.kv().get(&entry).await?.is_none() {
            if let Err(e) = self.kv().delete(&self.sessions.key(hash)).await {
                let _ = self
                    .write_index_entry(
                        session.user_id(),
                        hash,
                        &session.times(),
                        &DeviceTag::of_hash(hash),
                    )
                    .await;
                return Err(e);
            }
            return Err(Error::Conflict { op });
        }
        Ok(())
    }

    /// After an update that moved the session under `hash` to `new_user` (its entry already
    /// written) and whose conditional write-back did not land (`written`): the new user's
    /// entry goes again only when the session is gone or does not belong to `new_user` (a
    /// concurrent update that moved it too keeps the entry it shares), so that the new user's
    /// "log out everywhere" cannot end another user's session. Any other failure keeps the
    /// entry: a stray entry costs a no-op delete, a missing one lets a session escape.
    pub(super) async fn drop_unused_entry(
        &self,
        hash: &str,
        new_user: &str,
        written: &Result<Lookup<()>>,
    ) {
        if !matches!(
            written,
            Ok(Lookup::NoSession(_)) | Err(Error::Conflict { .. })
        ) {
            return;
        }
        let unused = match self.read_quietly(hash).await {
            Ok(Lookup::Found(current)) => current.session.user_id() != new_user,
            Ok(Lookup::NoSession(_)) => true,
            Err(_) => false,
        };
        if unused {
            let _ = self.kv().delete(&self.index_key(new_user, hash)).await;
        }
    }

    /// The end of a rotation: delete the old session (`old_hash`, read as `prior`) only if it
    /// is still what was read, its times aside, then its index entry. When it is not (a
    /// logout, "log out everywhere" or another rotation retired it in between, or an update
    /// changed it), the new session (`new_hash`, already written with `times`) is unlinked
    /// again and the rotation fails with [`Error::Conflict`]: nothing of it is left, and the
    /// caller keeps the cookie it has (a concurrent rotation's winner may have set a new one,
    /// which a "no session" answer would clear; if it was a logout, the next request with the
    /// old cookie finds no session).
    pub(super) async fn retire_rotated(
        &self,
        old_user: &str,
        old_hash: &str,
        prior: &Prior<D>,
        new: (&str, &str, &SessionTimes),
    ) -> Result<()> {
        let (new_user, new_hash, times) = new;
        let old_key = self.sessions.key(old_hash);
        let mut expected = prior.stamp;
        for _ in 0..ATTEMPTS {
            let Some(stamp) = expected else { break };
            if self.kv().delete_if(&old_key, &stamp).await? {
                // The old entry only points at nothing now: a failure to delete it costs a
                // no-op delete at the next "log out everywhere".
                let _ = self.kv().delete(&self.index_key(old_user, old_hash)).await;
                return Ok(());
            }
            expected = match self.read_quietly(old_hash).await? {
                Lookup::Found(current)
                    if prior
                        .read
                        .as_ref()
                        .is_some_and(|read| same_but_times(read, &current.session)) =>
                {
                    current.stamp
                }
                Lookup::Found(_) | Lookup::NoSession(_) => None,
            };
        }
        self.unlink(new_user, new_hash, times).await?;
        Err(Error::Conflict { op: "rotate" })
    }
}
