//! SessionRecord ids: 256 bits from the platform CSPRNG, one strict text form, stored only hashed.
//!
//! The text form is exactly [`ID_LEN`] lowercase hex digits. Anything else — another length,
//! upper case, padding, quotes, percent-encoding — is rejected by [`SessionId::parse`] before
//! any KV call, so an attacker-supplied cookie can never reach KV as a key. KV keys hold the
//! SHA-256 of the id ([`SessionId::hashed`]), so a KV dump or `list` reveals no live token.
//! A plain (unsalted) hash is enough: with 256 bits of entropy there is nothing to brute-force.

use std::fmt;

use super::no_session::NoSession;
use crate::{
    backend::{hex, is_lower_hex, MaybeSendSync},
    error::Result,
};

/// Random bytes in a session id.
pub const ID_BYTES: usize = 32;
/// Length of the text form of a session id (hex of [`ID_BYTES`]).
pub const ID_LEN: usize = ID_BYTES * 2;

/// Where session ids get their randomness. The seam lets tests draw deterministic ids; the
/// default is the platform CSPRNG (`getrandom`: the OS natively, Web Crypto on Workers).
pub trait IdSource: MaybeSendSync {
    /// Fill `dest` with random bytes.
    fn fill(&self, dest: &mut [u8]) -> Result<()>;
}

#[doc(inline)]
pub(crate) use crate::random::OsRandom;

impl IdSource for OsRandom {
    fn fill(&self, dest: &mut [u8]) -> Result<()> {
        OsRandom::fill_bytes(dest)
    }
}

/// A session id: a bearer secret. `Debug` never prints it and there is no `Display`; use
/// [`SessionId::expose`] where the token must go out (the `Set-Cookie` header).
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct SessionId(String);

impl SessionId {
    /// Draw a fresh id from `source`.
    pub fn generate(source: &dyn IdSource) -> Result<Self> {
        let mut bytes = [0u8; ID_BYTES];
        source.fill(&mut bytes)?;
        Ok(Self(hex(&bytes)))
    }

    /// Accept `text` only in the one form [`generate`](Self::generate) produces: exactly
    /// 64 characters `0-9a-f`. The error carries the length only, never the text.
    pub fn parse(text: &str) -> Result<Self, NoSession> {
        let well_formed = text.len() == ID_LEN
            && text
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        if well_formed {
            Ok(Self(text.to_string()))
        } else {
            Err(NoSession::MalformedId { len: text.len() })
        }
    }

    /// The token itself, for the cookie. Do not log it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Lowercase hex SHA-256 of the id: the part of the KV key that identifies the session.
    pub fn hashed(&self) -> String {
        hash_hex(self.0.as_bytes())
    }
}

impl fmt::Debug for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SessionId(<redacted>)")
    }
}

pub(crate) use crate::backend::sha256_hex as hash_hex;

/// True when `s` looks like a [`hash_hex`] output (64 lowercase hex digits).
pub(crate) fn is_hash_hex(s: &str) -> bool {
    is_lower_hex(s, 64)
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fixed(u8);
    impl IdSource for Fixed {
        fn fill(&self, dest: &mut [u8]) -> Result<()> {
            dest.fill(self.0);
            Ok(())
        }
    }

    #[test]
    fn generated_ids_parse_and_hash_to_fixed_width() {
        let id = SessionId::generate(&Fixed(0xab)).unwrap();
        assert_eq!(id.expose(), "ab".repeat(32));
        assert_eq!(SessionId::parse(id.expose()).unwrap(), id);
        let h = id.hashed();
        assert!(is_hash_hex(&h));
        assert_ne!(h, id.expose());
    }

    #[test]
    fn os_random_ids_differ() {
        let a = SessionId::generate(&OsRandom).unwrap();
        let b = SessionId::generate(&OsRandom).unwrap();
        assert_ne!(a, b);
    }

    #[test]
    fn strict_format() {
        let good = "0123456789abcdef".repeat(4);
        assert!(SessionId::parse(&good).is_ok());
        for bad in [
            String::new(),
            good[..63].to_string(),
            format!("{good}0"),
            good.to_uppercase(),
            format!("\"{}\"", &good[..62]),
            good.replace('a', "g"),
            format!("{}%61", &good[..61]),
            format!("{} ", &good[..63]),
            // Multi-byte characters: byte length 64, still rejected.
            format!("{}é", &good[..62]),
        ] {
            assert!(
                matches!(SessionId::parse(&bad), Err(NoSession::MalformedId { len }) if len == bad.len()),
                "accepted a malformed id of {} bytes",
                bad.len()
            );
        }
    }

    #[test]
    fn debug_redacts() {
        let id = SessionId::generate(&Fixed(0x11)).unwrap();
        let shown = format!("{id:?}");
        assert!(!shown.contains("1111"), "{shown}");
    }
}
