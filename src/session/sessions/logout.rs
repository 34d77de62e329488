//! Ending sessions through the per-user index: unlinking one session (entry first), "log out
//! everywhere" (a `list` of the user's index, then each session), and the per-user cap a login
//! enforces by revoking the oldest.

use super::{LogoutAll, Lookup, Sessions, MAX_EVICTIONS_PER_LOGIN, MAX_INDEX_PAGES};
use crate::{
    backend::{ListKey, MAX_LIST_LIMIT},
    envelope::Header,
    error::Result,
    session::{
        data::{SessionData, SessionTimes},
        device::DeviceTag,
        id::{is_hash_hex, SessionId},
        index::SessionIndexEntry,
    },
};

impl<D: SessionData> Sessions<D> {
    /// Delete a session and its index entry, entry first: a refresh racing the delete then
    /// finds no entry after its write and undoes it ([`write_back`](Self::write_back)). If
    /// the session delete fails, the entry is put back (best effort) so that a retry, or "log
    /// out everywhere", still finds the session.
    pub(super) async fn unlink(
        &self,
        user_id: &str,
        hash: &str,
        times: &SessionTimes,
    ) -> Result<()> {
        self.kv().delete(&self.index_key(user_id, hash)).await?;
        if let Err(e) = self.kv().delete(&self.sessions.key(hash)).await {
            let _ = self
                .write_index_entry(user_id, hash, times, &DeviceTag::of_hash(hash))
                .await;
            return Err(e);
        }
        Ok(())
    }

    /// Log `user_id` out everywhere: delete every session in the user's index, up to the batch
    /// limit ([`LogoutAll::complete`] says whether another call is needed). KV's `list` is
    /// eventually consistent: a session created at another location in the last ~60 s may
    /// not be listed yet — call again a minute later when that matters.
    pub async fn delete_all_for_user(&self, user_id: &str) -> Result<LogoutAll> {
        self.delete_user_sessions(user_id, None).await
    }

    /// Like [`delete_all_for_user`](Self::delete_all_for_user) but keep `keep` (the current
    /// session: "log out my other devices").
    pub async fn delete_all_for_user_except(
        &self,
        user_id: &str,
        keep: &SessionId,
    ) -> Result<LogoutAll> {
        self.delete_user_sessions(user_id, Some(keep.hashed()))
            .await
    }

    /// "Log out everywhere" for the holder of `id`: every other session of its user, then
    /// — once none is left — `id` itself. Until then the caller keeps `id`, so a user with
    /// more sessions than one call revokes (sessions from before the
    /// [cap](Self::with_max_sessions_per_user)) can call again: the answer is honest,
    /// [`LogoutAll::complete`] false. With the cap at or below the
    /// [batch](Self::with_logout_batch) (the defaults: 32 and 400) one call always completes.
    /// On KV, sessions created at other locations in the last ~60 s may not be listed yet.
    pub async fn logout_everywhere(&self, id: &SessionId) -> Result<Lookup<LogoutAll>> {
        let hash = id.hashed();
        let user = match self.read(&hash).await? {
            Lookup::Found(loaded) => loaded.session.user_id().to_string(),
            Lookup::NoSession(reason) => return Ok(Lookup::NoSession(reason)),
        };
        let mut outcome = self.delete_user_sessions(&user, Some(hash)).await?;
        if outcome.complete {
            self.delete(id).await?;
            outcome.deleted += 1;
        }
        Ok(Lookup::Found(outcome))
    }

    pub(super) async fn delete_user_sessions(
        &self,
        user_id: &str,
        keep: Option<String>,
    ) -> Result<LogoutAll> {
        let prefix = self.index_prefix_of(user_id);
        let now = self.now_ms();
        let mut deleted = 0;
        let mut cursor: Option<String> = None;
        for _ in 0..MAX_INDEX_PAGES {
            let page = self
                .kv()
                .list(&prefix, cursor.as_deref(), MAX_LIST_LIMIT)
                .await?;
            for entry in live_entries(&page.keys, &prefix, now) {
                if keep.as_deref() == Some(entry.hash) {
                    continue;
                }
                if deleted == self.logout_batch {
                    return Ok(LogoutAll {
                        deleted,
                        complete: false,
                    });
                }
                self.revoke(user_id, &entry).await?;
                deleted += 1;
            }
            if page.list_complete || page.cursor.is_none() {
                return Ok(LogoutAll {
                    deleted,
                    complete: true,
                });
            }
            cursor = page.cursor;
        }
        Ok(LogoutAll {
            deleted,
            complete: false,
        })
    }

    /// Keep at most [`max_sessions_per_user`](Sessions::with_max_sessions_per_user) live
    /// sessions for `user_id`, the one just created (`new_hash`) among them, by revoking the
    /// oldest others (by absolute cap, which rotation keeps: the order of first login), at
    /// most [`MAX_EVICTIONS_PER_LOGIN`] per call so a login's cost stays bounded. Reads the
    /// first page of the index that has keys (one `list`, more when KV answers empty pages). Best effort: the new session is already written, and a
    /// failure here leaves the user with more sessions, never fewer. Returns how many went.
    pub(super) async fn evict_over_cap(&self, user_id: &str, new_hash: &str) -> usize {
        let prefix = self.index_prefix_of(user_id);
        let now = self.now_ms();
        let Ok(keys) = self.index_page(&prefix).await else {
            return 0;
        };
        let mut live: Vec<Listed<'_>> = live_entries(&keys, &prefix, now).collect();
        // The new session counts toward the cap, whether or not the listing shows it yet.
        live.retain(|e| e.hash != new_hash);
        let others_allowed = self.max_sessions_per_user.saturating_sub(1);
        if live.len() <= others_allowed {
            return 0;
        }
        // Oldest first; an entry without its cap in the metadata sorts first.
        live.sort_by_key(|e| e.absolute_expires_at.unwrap_or(0));
        let excess = (live.len() - others_allowed).min(MAX_EVICTIONS_PER_LOGIN);
        let mut evicted = 0;
        for entry in &live[..excess] {
            if self.revoke(user_id, entry).await.is_err() {
                break;
            }
            evicted += 1;
        }
        evicted
    }

    /// The first page of keys under a user's index `prefix`: KV may hand out empty pages
    /// before the end, so read on until a page has keys (a user under the cap fits one page
    /// of 1000), at most MAX_INDEX_PAGES.
    pub(super) async fn index_page(&self, prefix: &str) -> Result<Vec<ListKey>> {
        let mut keys = Vec::new();
        let mut cursor: Option<String> = None;
        for _ in 0..MAX_INDEX_PAGES {
            let page = self
                .kv()
                .list(prefix, cursor.as_deref(), MAX_LIST_LIMIT)
                .await?;
            keys.extend(page.keys);
            if !keys.is_empty() || page.list_complete || page.cursor.is_none() {
                break;
            }
            cursor = page.cursor;
        }
        Ok(keys)
    }

    /// Revoke a listed session: its index entry, then the session, as
    /// [`unlink`](Self::unlink) does (a refresh racing the delete undoes its own write when it
    /// finds no entry). If the session delete fails the entry is put back (its creation time
    /// is not in the listing: 0), so a retry finds it.
    pub(super) async fn revoke(&self, user_id: &str, entry: &Listed<'_>) -> Result<()> {
        self.kv().delete(entry.key).await?;
        if let Err(e) = self.kv().delete(&self.sessions.key(entry.hash)).await {
            if let Some(absolute_expires_at) = entry.absolute_expires_at {
                let restored = SessionIndexEntry {
                    created_at: 0,
                    absolute_expires_at,
                    handle: None,
                    device: None,
                };
                let _ = self.put_index_entry(user_id, entry.hash, &restored).await;
            }
            return Err(e);
        }
        Ok(())
    }
}

/// One live entry of a user's index listing.
pub(super) struct Listed<'a> {
    /// The entry's KV key.
    pub(super) key: &'a str,
    /// The session's hashed id (the last segment of the key).
    pub(super) hash: &'a str,
    /// The session's absolute cap, from the entry's metadata.
    pub(super) absolute_expires_at: Option<u64>,
}

/// The entries of a listing under `prefix` that are the store's own (a session hash after
/// the prefix) and not past their cap (past it the session is dead on read and KV is dropping
/// both keys).
pub(super) fn live_entries<'a>(
    keys: &'a [ListKey],
    prefix: &'a str,
    now: u64,
) -> impl Iterator<Item = Listed<'a>> + 'a {
    keys.iter().filter_map(move |entry| {
        let hash = entry.name.strip_prefix(prefix)?;
        if !is_hash_hex(hash) {
            return None;
        }
        let header = entry.metadata.as_deref().and_then(Header::from_metadata);
        if header.as_ref().is_some_and(|h| h.is_expired(now)) {
            return None;
        }
        Some(Listed {
            key: &entry.name,
            hash,
            absolute_expires_at: header.and_then(|h| h.expires_at),
        })
    })
}
