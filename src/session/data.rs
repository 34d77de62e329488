//! What the session store needs from a payload type: its user and its bookkeeping times.
//!
//! The store is generic over [`SessionData`], so an application can keep its own session type
//! with its own version history (`versioned!`) and migrations. The shipped [`SessionRecord`] is the
//! default.

use super::record::SessionRecord;
use crate::{backend::MaybeSendSync, versioned::Versioned};

/// The bookkeeping times of a session, in milliseconds since the Unix epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionTimes {
    /// Creation (kept across refresh and rotation).
    pub created_at: u64,
    /// Idle expiry: slides forward on refresh, never past `absolute_expires_at`.
    pub expires_at: u64,
    /// Absolute cap: the session ends here whatever the activity.
    pub absolute_expires_at: u64,
    /// When the sliding expiry was last written to KV (the write budget's clock).
    pub refreshed_at: u64,
}

/// A session payload the store can manage. Implement it for your own [`Versioned`] type to
/// keep application data in the session; the store sets the times, you keep the rest.
///
/// ```
/// use kv_envelope::session::{SessionData, SessionTimes};
/// use schemars::JsonSchema;
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Clone, Serialize, Deserialize, JsonSchema)]
/// #[serde(rename_all = "camelCase")]
/// struct CartSession {
///     user_id: String,
///     cart: Vec<u64>,
///     created_at: u64,
///     expires_at: u64,
///     absolute_expires_at: u64,
///     refreshed_at: u64,
/// }
/// kv_envelope::versioned! { name: "cart-session", versions: [CartSession] }
///
/// impl SessionData for CartSession {
///     type Init = String; // the user id
///     fn user_id(&self) -> &str { &self.user_id }
///     fn times(&self) -> SessionTimes {
///         SessionTimes {
///             created_at: self.created_at,
///             expires_at: self.expires_at,
///             absolute_expires_at: self.absolute_expires_at,
///             refreshed_at: self.refreshed_at,
///         }
///     }
///     fn set_times(&mut self, t: SessionTimes) {
///         self.created_at = t.created_at;
///         self.expires_at = t.expires_at;
///         self.absolute_expires_at = t.absolute_expires_at;
///         self.refreshed_at = t.refreshed_at;
///     }
///     fn from_init(user_id: String, t: SessionTimes) -> Self {
///         let mut s = CartSession { user_id, cart: vec![], created_at: 0, expires_at: 0,
///                                   absolute_expires_at: 0, refreshed_at: 0 };
///         s.set_times(t);
///         s
///     }
/// }
/// ```
///
/// On a backend with a conditional write (Durable Objects) the store tells a concurrent refresh
/// (a change of the times alone) from any other change by comparing the two sessions as JSON with
/// their times made equal: let the data serialize in a fixed order (`BTreeSet`, not `HashSet`),
/// or a refresh racing an update or rotation fails it with a conflict (nothing is lost).
pub trait SessionData: Versioned + Clone + MaybeSendSync {
    /// What a caller supplies to create a session: everything except the times.
    type Init;

    /// The user the session belongs to (indexed for "log out everywhere").
    fn user_id(&self) -> &str;

    /// The bookkeeping times.
    fn times(&self) -> SessionTimes;

    /// Replace the bookkeeping times.
    fn set_times(&mut self, times: SessionTimes);

    /// Build a new session from the caller's part and the store's times.
    fn from_init(init: Self::Init, times: SessionTimes) -> Self;
}

/// What creating a shipped [`SessionRecord`] takes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionInit {
    /// Application user id (1–256 characters).
    pub user_id: String,
    /// User email (must be a valid address: the schema checks it on every read).
    pub email: String,
    /// Roles granted to the session.
    pub roles: Vec<String>,
}

impl SessionInit {
    /// A session for `user_id` / `email` with no roles.
    pub fn new(user_id: impl Into<String>, email: impl Into<String>) -> Self {
        Self {
            user_id: user_id.into(),
            email: email.into(),
            roles: Vec::new(),
        }
    }

    /// With these roles.
    #[must_use]
    pub fn with_roles(mut self, roles: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.roles = roles.into_iter().map(Into::into).collect();
        self
    }
}

impl SessionData for SessionRecord {
    type Init = SessionInit;

    fn user_id(&self) -> &str {
        &self.user_id
    }

    fn times(&self) -> SessionTimes {
        SessionTimes {
            created_at: self.created_at,
            expires_at: self.expires_at,
            absolute_expires_at: self.absolute_expires_at,
            refreshed_at: self.refreshed_at,
        }
    }

    fn set_times(&mut self, times: SessionTimes) {
        self.created_at = times.created_at;
        self.expires_at = times.expires_at;
        self.absolute_expires_at = times.absolute_expires_at;
        self.refreshed_at = times.refreshed_at;
    }

    fn from_init(init: SessionInit, times: SessionTimes) -> Self {
        SessionRecord {
            user_id: init.user_id,
            email: init.email,
            created_at: times.created_at,
            expires_at: times.expires_at,
            absolute_expires_at: times.absolute_expires_at,
            refreshed_at: times.refreshed_at,
            roles: init.roles,
        }
    }
}
