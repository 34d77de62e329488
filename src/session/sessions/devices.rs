//! "Your devices": the live sessions of a user listed from the per-user index, and one of them
//! revoked by its handle, asked by a session of the same user only.
//!
//! A list costs one `list` of the user's index and two bulk reads (the entries, for handles
//! and labels; the sessions, for their times): three KV operations for JSON values, one read
//! per value when they are sealed (binary values cannot be bulk-read). On KV the list follows
//! KV's `list`, eventually consistent: a login at another location may be missing for up to
//! about 60 s, and a revoked device keeps working there for as long (KV's delete propagation,
//! as for any logout). On Durable Objects both are exact at once.

use super::{logout::live_entries, Lookup, Sessions};
use crate::{
    error::Result,
    session::{
        data::SessionData,
        device::{Device, DeviceHandle, Revocation},
        id::SessionId,
    },
};

/// A device as listed, with what revoking it needs.
struct Listed {
    device: Device,
    hash: String,
    entry_key: String,
    absolute_expires_at: Option<u64>,
}

impl<D: SessionData> Sessions<D> {
    /// The live sessions of the user whose session `id` is: when each began, when it was last
    /// seen (day-level under the default write budget), its idle expiry, the app's label and
    /// which one is `id`'s (`current`); the current first, then the most recently seen. Only
    /// sessions that still read (not expired, not logged out) are listed. The number is
    /// bounded by [`with_max_sessions_per_user`](Self::with_max_sessions_per_user) (32).
    pub async fn list_devices(&self, id: &SessionId) -> Result<Lookup<Vec<Device>>> {
        let hash = id.hashed();
        let me = match self.read(&hash).await? {
            Lookup::Found(loaded) => loaded.session,
            Lookup::NoSession(reason) => return Ok(Lookup::NoSession(reason)),
        };
        let listed = self.devices_of(me.user_id(), &hash, &me).await?;
        Ok(Lookup::Found(
            listed.into_iter().map(|l| l.device).collect(),
        ))
    }

    /// Sign out the device `handle` of the user whose session `id` is: its index entry, then
    /// its session, as a logout does. [`Revocation::NotFound`]: none of the user's live
    /// sessions has that handle (gone already, or another user's: a handle never reaches
    /// another user's session). Revoking `id`'s own device is a logout of `id`
    /// ([`Revocation::RevokedCurrent`]).
    pub async fn revoke_device(
        &self,
        id: &SessionId,
        handle: &DeviceHandle,
    ) -> Result<Lookup<Revocation>> {
        let hash = id.hashed();
        let me = match self.read(&hash).await? {
            Lookup::Found(loaded) => loaded.session,
            Lookup::NoSession(reason) => return Ok(Lookup::NoSession(reason)),
        };
        let user = me.user_id().to_string();
        let listed = self.devices_of(&user, &hash, &me).await?;
        let Some(target) = listed.into_iter().find(|l| &l.device.handle == handle) else {
            return Ok(Lookup::Found(Revocation::NotFound));
        };
        if target.device.current {
            self.delete(id).await?;
            return Ok(Lookup::Found(Revocation::RevokedCurrent));
        } else {
            let entry = super::logout::Listed {
                key: &target.entry_key,
                hash: &target.hash,
                absolute_expires_at: target.absolute_expires_at,
            };
            self.revoke(&user, &entry).await?;
        }
        Ok(Lookup::Found(Revocation::Revoked))
    }

    /// The live sessions of `user_id` with what listing and revoking them needs; `me` is the
    /// asking session (under `my_hash`), listed even when KV's `list` has not caught up with it.
    async fn devices_of(&self, user_id: &str, my_hash: &str, me: &D) -> Result<Vec<Listed>> {
        let prefix = self.index_prefix_of(user_id);
        let now = self.now_ms();
        let keys = self.index_page(&prefix).await?;
        let live: Vec<_> = live_entries(&keys, &prefix, now).collect();
        let entry_ids: Vec<String> = live
            .iter()
            .map(|e| self.index_id(user_id, e.hash))
            .collect();
        let entry_refs: Vec<&str> = entry_ids.iter().map(String::as_str).collect();
        let hashes: Vec<&str> = live.iter().map(|e| e.hash).collect();
        let entries = self.index.get_many_entries(&entry_refs).await?;
        let sessions = self.sessions.get_many_entries(&hashes).await?;
        let mut listed = Vec::with_capacity(live.len() + 1);
        for ((e, entry), session) in live.iter().zip(entries).zip(sessions) {
            // A session that no longer reads (expired, logged out, unusable) or that moved to
            // another user is no device of this user.
            let Ok(Some(session)) = session else { continue };
            if session.value.user_id() != user_id {
                continue;
            }
            let entry = entry.ok().flatten().map(|d| d.value);
            let handle = entry
                .as_ref()
                .and_then(|en| en.handle.as_deref())
                .and_then(DeviceHandle::parse)
                .unwrap_or_else(|| DeviceHandle::legacy(e.hash));
            listed.push(Listed {
                device: device(
                    &session.value,
                    handle,
                    entry.and_then(|en| en.device),
                    e.hash == my_hash,
                ),
                hash: e.hash.to_string(),
                entry_key: e.key.to_string(),
                absolute_expires_at: e.absolute_expires_at,
            });
        }
        if !listed.iter().any(|l| l.device.current) {
            let tag = self.tag_of(user_id, my_hash).await;
            listed.push(Listed {
                device: device(me, tag.handle, tag.label, true),
                hash: my_hash.to_string(),
                entry_key: self.index_key(user_id, my_hash),
                absolute_expires_at: Some(me.times().absolute_expires_at),
            });
        }
        listed.sort_by(|a, b| {
            (b.device.current, b.device.last_seen_at)
                .cmp(&(a.device.current, a.device.last_seen_at))
        });
        Ok(listed)
    }
}

fn device<D: SessionData>(
    session: &D,
    handle: DeviceHandle,
    label: Option<String>,
    current: bool,
) -> Device {
    let t = session.times();
    Device {
        handle,
        label,
        created_at: t.created_at,
        last_seen_at: t.refreshed_at,
        expires_at: t.expires_at,
        current,
    }
}
