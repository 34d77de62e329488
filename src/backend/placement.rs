//! Which Durable Object holds a key: the one rule both the Workers client
//! (`DurableKv`, feature `worker` on wasm32) and the native simulated objects
//! (`object_sim`, feature `testing`) follow.
//!
//! A Durable Object is one single-threaded, strongly consistent storage: every operation on one
//! object is ordered, and so are all operations on one key wherever they come from. One object
//! for the whole namespace ([`Placement::Single`]) gives KV's full semantics (a `list` of any
//! prefix) but puts all traffic through one object. [`Placement::ByGroup`] spreads keys over
//! objects by their first two `:`-separated fields, which is how this crate names its keys:
//!
//! | key | object |
//! |---|---|
//! | `session:<sha256(id)>` | `session:<sha256(id)>` (one object per session) |
//! | `session-user:<sha256(user)>:<sha256(id)>` | `session-user:<sha256(user)>` (one per user) |
//!
//! A session read, the hot path, goes to an object chosen from the cookie alone (the cookie
//! does not name the user, so a per-user object for sessions would cost a lookup first); a
//! user's index entries share one object, so "log out everywhere" lists them in one consistent
//! step. A `list` must then name one object: its prefix must contain the second `:`.

use crate::error::{Error, Result};

/// How keys are spread over Durable Objects.
///
/// [`ByGroup`](Self::ByGroup) relies on the crate's key shape `<prefix>:<id>`: a store prefix
/// that itself contains `:` (`with_prefix("app:session")`) stays correct, but puts every key of
/// the store in one object (`app:session`), one object's throughput for all its sessions.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Placement {
    /// Every key in the object of this name: KV's semantics in full, one object's throughput.
    Single(String),
    /// A key's object is its first two `:`-separated fields (the whole key when it has fewer);
    /// a `list` prefix must contain the second `:`.
    ByGroup,
}

impl Placement {
    /// The name of the object that holds `key`.
    pub fn object_of<'k>(&'k self, key: &'k str) -> &'k str {
        match self {
            Placement::Single(name) => name,
            Placement::ByGroup => group_of(key).unwrap_or(key),
        }
    }

    /// The name of the one object whose keys can start with `prefix`, or a non-retryable
    /// [`Error::Backend`] when the prefix spans objects.
    pub fn object_of_prefix<'k>(&'k self, prefix: &'k str) -> Result<&'k str> {
        match self {
            Placement::Single(name) => Ok(name),
            Placement::ByGroup => group_of(prefix).ok_or_else(|| Error::Backend {
                op: "list",
                message: "a list on Durable Objects placed by group needs a prefix that names \
                          one object (two ':'-separated fields and the second ':')"
                    .into(),
                retryable: false,
            }),
        }
    }
}

/// `a:b` of `a:b:rest`: the part before the second `:`, if there is one.
fn group_of(key: &str) -> Option<&str> {
    let first = key.find(':')?;
    let second = key[first + 1..].find(':')? + first + 1;
    Some(&key[..second])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_get_their_own_object_and_index_entries_share_their_users() {
        let p = Placement::ByGroup;
        assert_eq!(p.object_of("session:abc"), "session:abc");
        assert_eq!(p.object_of("session-user:u1:abc"), "session-user:u1");
        assert_eq!(p.object_of("session-user:u1:def"), "session-user:u1");
        assert_eq!(p.object_of("plain"), "plain");
        assert_eq!(
            p.object_of_prefix("session-user:u1:").unwrap(),
            "session-user:u1"
        );
        assert!(p.object_of_prefix("session-user:u1").is_err());
        assert!(p.object_of_prefix("session:").is_err());
        let one = Placement::Single("all".into());
        assert_eq!(one.object_of("session-user:u1:abc"), "all");
        assert_eq!(one.object_of_prefix("").unwrap(), "all");
    }
}
