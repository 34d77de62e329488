//! Why a request has no session. Every bad input ends here — never in a panic, a 5xx or an
//! overwrite — and the reason is safe to log: it carries lengths, counts, versions and error
//! kinds, never a cookie value, a session id or a payload value.

use crate::error::{Error, SealError};

/// Why there is no (usable) session. Safe to log.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NoSession {
    /// No `Cookie` header, or no cookie with exactly the session cookie's name.
    #[error("no session cookie")]
    NoCookie,
    /// The `Cookie` header is longer than the configured cap; it was not parsed.
    #[error("cookie header of {len} bytes exceeds the cap")]
    HeaderTooLarge {
        /// Header length in bytes.
        len: usize,
    },
    /// The session cookie's value is not a session id (wrong length or characters).
    #[error("session cookie value of {len} bytes is not a session id")]
    MalformedId {
        /// Length of the value in bytes.
        len: usize,
    },
    /// Several session cookies with different well-formed values (another path or domain set
    /// one too, possibly an attacker tossing cookies from a sibling subdomain).
    #[error("{count} session cookies with different values")]
    AmbiguousCookie {
        /// How many cookies carried the session cookie's name.
        count: usize,
    },
    /// Nothing stored under the id: never created, logged out, rotated away, or removed by KV.
    #[error("no stored session for this id")]
    NotFound,
    /// Past its idle expiry or its absolute lifetime cap (KV may not have deleted it yet).
    #[error("session expired")]
    Expired,
    /// The stored value cannot be read by this code (corrupt, schema-violating, another type).
    /// It is left in KV for inspection.
    #[error("stored session is unreadable: {0}")]
    Unreadable(Error),
    /// The stored value is larger than the store's cap on a session
    /// ([`Sessions::with_max_session_bytes`](super::Sessions::with_max_session_bytes)).
    /// It is not decoded, served or rewritten; it is left in KV for inspection.
    #[error("stored session of {len} bytes exceeds the cap of {max}")]
    TooLarge {
        /// Stored length in bytes.
        len: usize,
        /// The store's cap.
        max: usize,
    },
    /// The stored times break the store's invariants in a way no clamp can repair (created or
    /// last written in the future): planted or corrupt. Left in KV for inspection.
    #[error("stored session times are impossible ({what})")]
    InvalidTimes {
        /// Which invariant failed (a fixed text, never a stored value).
        what: &'static str,
    },
    /// The stored session is sealed and does not open here: a key id the ring lacks (retired
    /// too early, or not deployed yet), a key that is not the one behind its id, a changed or
    /// moved value, or a clear value where sealing is required. Left untouched; the cookie is
    /// kept (except for a clear value), so the session comes back once the key does.
    #[error("stored session is sealed and does not open: {0}")]
    Sealed(SealError),
    /// The stored value was written by newer code. It is left untouched.
    #[error("stored session has schema version {found}, newer than this code's {known}")]
    FutureVersion {
        /// Version found.
        found: u32,
        /// Newest version this code knows.
        known: u32,
    },
}

impl NoSession {
    /// A short stable name, for logs and metrics.
    pub fn code(&self) -> &'static str {
        match self {
            NoSession::NoCookie => "no_cookie",
            NoSession::HeaderTooLarge { .. } => "header_too_large",
            NoSession::MalformedId { .. } => "malformed_id",
            NoSession::AmbiguousCookie { .. } => "ambiguous_cookie",
            NoSession::NotFound => "not_found",
            NoSession::Expired => "expired",
            NoSession::Unreadable(_) => "unreadable",
            NoSession::FutureVersion { .. } => "future_version",
            NoSession::TooLarge { .. } => "too_large",
            NoSession::InvalidTimes { .. } => "invalid_times",
            NoSession::Sealed(e) => e.kind(),
        }
    }

    /// True for reasons worth a warning: tampering, broken clients or broken data, as opposed
    /// to the everyday "not logged in" and "logged out or expired".
    pub fn is_suspicious(&self) -> bool {
        !matches!(
            self,
            NoSession::NoCookie | NoSession::NotFound | NoSession::Expired
        )
    }

    /// Whether the browser should be told to drop its session cookie. Not for a future-version
    /// value (newer code can still read that session: a rolling deploy must not log users
    /// out), nor when the cookie was not read at all, nor for an ambiguous cookie: a host-only
    /// clear would delete this host's own cookie and leave one tossed with `Domain` by a
    /// sibling subdomain, which would then be the only session cookie left (login CSRF).
    pub fn clears_cookie(&self) -> bool {
        matches!(
            self,
            NoSession::MalformedId { .. }
                | NoSession::NotFound
                | NoSession::TooLarge { .. }
                | NoSession::InvalidTimes { .. }
                | NoSession::Expired
                | NoSession::Unreadable(_)
                | NoSession::Sealed(SealError::NotSealed)
        )
    }

    /// Classify a decode error of a stored session. Errors that are not about the stored bytes
    /// (I/O, limits, a schema that does not compile) come back as `Err`: they are failures of
    /// the service, not bad input.
    pub(crate) fn from_decode_error(e: Error) -> Result<NoSession, Error> {
        match e {
            Error::FutureVersion { found, known, .. } => {
                Ok(NoSession::FutureVersion { found, known })
            }
            Error::Sealed { reason, .. } => Ok(NoSession::Sealed(reason)),
            e if e.is_corrupt() => Ok(NoSession::Unreadable(e)),
            e => Err(e),
        }
    }
}
