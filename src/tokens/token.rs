//! The values a token store hands out and takes: the secret ([`Token`]), what issuing and
//! consuming give back ([`Issued`], [`Redeemed`]), why a token is refused ([`TokenRefused`]),
//! and what a user's list shows ([`TokenInfo`], [`TokenHandle`]).

use std::fmt;

use crate::backend::{hex, is_lower_hex, sha256_hex};

/// Bytes of randomness in a token (64 hex digits).
pub(crate) const TOKEN_BYTES: usize = 32;
/// Bytes of randomness in a handle (32 hex digits).
pub(crate) const HANDLE_BYTES: usize = 16;

/// A one-time token's secret: 256 random bits as 64 lowercase hex digits, shown once (put it
/// in the link or the email) and stored only as its SHA-256. `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct Token(String);

impl Token {
    /// Accept `text` only in the one form tokens have: anything else is refused before any
    /// KV call ([`TokenRefused::Malformed`]).
    pub fn parse(text: &str) -> Option<Self> {
        is_lower_hex(text, 2 * TOKEN_BYTES).then(|| Self(text.to_string()))
    }

    /// The secret, for the link. Never log it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub(crate) fn from_bytes(bytes: &[u8; TOKEN_BYTES]) -> Self {
        Self(hex(bytes))
    }

    /// SHA-256 of the token, hex: what KV sees.
    pub(crate) fn hashed(&self) -> String {
        sha256_hex(self.0.as_bytes())
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(…)")
    }
}

/// The opaque handle of an issued token in its user's list: 32 lowercase hex digits, neither
/// the token nor its hash, so a list reaches no token. It revokes the token, for that user only.
#[derive(Clone, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(transparent)]
pub struct TokenHandle(String);

impl TokenHandle {
    /// Accept `text` only as a handle's exact form.
    pub fn parse(text: &str) -> Option<Self> {
        is_lower_hex(text, 2 * HANDLE_BYTES).then(|| Self(text.to_string()))
    }

    /// The handle's text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub(crate) fn from_bytes(bytes: &[u8; HANDLE_BYTES]) -> Self {
        Self(hex(bytes))
    }
}

impl fmt::Debug for TokenHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TokenHandle({})", self.0)
    }
}

/// A token just issued.
#[derive(Debug, Clone)]
pub struct Issued {
    /// The secret: put it in the link. It is not stored anywhere else.
    pub token: Token,
    /// Its handle in the user's list ([`OneTimeTokens::revoke`](super::OneTimeTokens::revoke)).
    pub handle: TokenHandle,
    /// When it stops working (ms since the epoch).
    pub expires_at: u64,
}

/// What a consumed token carried.
#[derive(Debug, Clone, PartialEq)]
pub struct Redeemed<P> {
    /// The user it was issued to.
    pub user_id: String,
    /// Its payload, at `P`'s current version.
    pub data: P,
    /// When it was issued (ms).
    pub created_at: u64,
}

/// Why a token was not consumed. Each is told apart here, for logs and metrics
/// ([`kind`](Self::kind)); a client is told none of them ([`public_message`](Self::public_message)):
/// which one applied would help whoever guesses or replays links.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TokenRefused {
    /// Not in the form tokens have: refused before any KV call.
    Malformed,
    /// No such token: never issued, revoked, or gone from KV after its expiry.
    Unknown,
    /// Past its expiry.
    Expired,
    /// Issued for another purpose: left as it is (still usable for its own).
    WrongPurpose,
    /// Consumed already: this is a replay, or lost a race with the consume that won.
    Used,
}

impl TokenRefused {
    /// A short stable name, for logs and metrics: `token_malformed`, `token_unknown`,
    /// `token_expired`, `token_wrong_purpose`, `token_used`.
    pub fn kind(self) -> &'static str {
        match self {
            TokenRefused::Malformed => "token_malformed",
            TokenRefused::Unknown => "token_unknown",
            TokenRefused::Expired => "token_expired",
            TokenRefused::WrongPurpose => "token_wrong_purpose",
            TokenRefused::Used => "token_used",
        }
    }

    /// The one sentence a client gets, whichever it was.
    pub fn public_message(self) -> &'static str {
        "this link is invalid or has expired"
    }

    /// The status to answer with, whichever it was: 400.
    pub fn http_status(self) -> u16 {
        400
    }
}

impl fmt::Display for TokenRefused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.kind())
    }
}

/// One of a user's live tokens, as a list shows it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TokenInfo {
    /// Revokes it ([`OneTimeTokens::revoke`](super::OneTimeTokens::revoke)).
    pub handle: TokenHandle,
    /// What it is for.
    pub purpose: String,
    /// When it was issued (ms).
    pub created_at: u64,
    /// When it stops working (ms).
    pub expires_at: u64,
}
