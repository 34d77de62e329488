//! "Your devices": what a list of a user's sessions shows ([`Device`]), the opaque handle that
//! revokes one ([`DeviceHandle`]), and a short label for a device from its `User-Agent`
//! ([`device_label`]).
//!
//! A handle is drawn at login (16 random bytes) and stored in the session's index entry, kept
//! across rotations. It is neither the session id (the cookie) nor the hash the session is
//! stored under: a device list, even one leaked, reaches no session, and a handle only
//! revokes a session of the user whose session asks.

use std::fmt;

use sha2::{Digest, Sha256};

use super::id::IdSource;
use crate::{
    backend::{hex, is_lower_hex},
    error::Result,
};

/// Bytes of randomness in a handle (32 hex digits).
const HANDLE_BYTES: usize = 16;
/// Longest device label stored, in characters.
pub(crate) const MAX_LABEL_CHARS: usize = 64;

/// One of a user's live sessions, as a devices page shows it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Device {
    /// Pass it back to [`Sessions::revoke_device`](super::Sessions::revoke_device) to sign
    /// this device out.
    pub handle: DeviceHandle,
    /// What the app called the device at login ([`device_label`] of its `User-Agent`, say).
    pub label: Option<String>,
    /// When the session began (its first login; rotation keeps it), ms since the epoch.
    pub created_at: u64,
    /// When the session last slid its expiry: the write budget's clock, so at most a day off
    /// under the default budget (the session is only written about once a day).
    pub last_seen_at: u64,
    /// When it ends unless used before: its idle expiry (ms).
    pub expires_at: u64,
    /// Whether this is the session that asked.
    pub current: bool,
}

/// What [`Sessions::revoke_device`](super::Sessions::revoke_device) did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Revocation {
    /// Another of the user's devices is signed out.
    Revoked,
    /// The asking session itself is signed out: send the clearing cookie
    /// ([`CookieConfig::clear_cookie`](super::CookieConfig::clear_cookie)).
    RevokedCurrent,
    /// None of the user's live sessions has that handle: gone already, or another user's (the
    /// same answer, so a handle tells nothing about other users).
    NotFound,
}

/// The opaque handle of a device in a user's list: 32 lowercase hex digits.
#[derive(Clone, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(transparent)]
pub struct DeviceHandle(String);

impl DeviceHandle {
    /// Accept `text` only as a handle's exact form (32 lowercase hex digits): anything else is
    /// no device, before any KV call.
    pub fn parse(text: &str) -> Option<Self> {
        is_lower_hex(text, 2 * HANDLE_BYTES).then(|| Self(text.to_string()))
    }

    /// The handle's text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// A fresh handle from `source`.
    pub(crate) fn draw(source: &dyn IdSource) -> Result<Self> {
        let mut bytes = [0u8; HANDLE_BYTES];
        source.fill(&mut bytes)?;
        Ok(Self(hex(&bytes)))
    }

    /// The handle of an index entry written before entries carried one: derived one way from
    /// the session's hash, so it reaches nothing either.
    pub(crate) fn legacy(session_hash: &str) -> Self {
        let digest = Sha256::digest(format!("kv-envelope device handle\0{session_hash}"));
        Self(hex(&digest[..HANDLE_BYTES]))
    }
}

impl fmt::Debug for DeviceHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DeviceHandle({})", self.0)
    }
}

impl fmt::Display for DeviceHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What an index entry keeps of a device: its handle and label.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DeviceTag {
    pub(crate) handle: DeviceHandle,
    pub(crate) label: Option<String>,
}

impl DeviceTag {
    /// The tag of a session whose entry is lost (written again after a failure, or never
    /// written: from before the index): the handle derived from its hash, no label.
    pub(crate) fn of_hash(session_hash: &str) -> Self {
        Self {
            handle: DeviceHandle::legacy(session_hash),
            label: None,
        }
    }
}

/// A label to store, from one an app supplies: control characters dropped, whitespace
/// collapsed, at most [`MAX_LABEL_CHARS`] characters; nothing left is no label.
pub(crate) fn clean_label(label: &str) -> Option<String> {
    let words: Vec<&str> = label
        .split(|c: char| c.is_whitespace() || c.is_control())
        .filter(|w| !w.is_empty())
        .collect();
    let joined: String = words.join(" ").chars().take(MAX_LABEL_CHARS).collect();
    let trimmed = joined.trim_end();
    (!trimmed.is_empty()).then(|| trimmed.to_string())
}

/// A short, coarse label for a device from its `User-Agent` header: browser and system
/// ("Firefox on Linux", "Safari on iPhone", "Chrome on Windows"), never the header itself (it
/// is a fingerprint, and long). An unknown agent is "Unknown browser on unknown system".
pub fn device_label(user_agent: &str) -> String {
    let ua = user_agent;
    let has = |needle: &str| ua.contains(needle);
    let browser = if has("Edg/") || has("Edge/") {
        "Edge"
    } else if has("OPR/") || has("Opera") {
        "Opera"
    } else if has("Firefox/") || has("FxiOS/") {
        "Firefox"
    } else if has("Chrome/") || has("CriOS/") || has("Chromium/") {
        "Chrome"
    } else if has("Safari/") && has("Version/") {
        "Safari"
    } else if has("curl/") {
        "curl"
    } else {
        "Unknown browser"
    };
    let system = if has("iPhone") {
        "iPhone"
    } else if has("iPad") {
        "iPad"
    } else if has("Android") {
        "Android"
    } else if has("CrOS") {
        "ChromeOS"
    } else if has("Mac OS X") || has("Macintosh") {
        "macOS"
    } else if has("Windows") {
        "Windows"
    } else if has("Linux") {
        "Linux"
    } else {
        "unknown system"
    };
    format!("{browser} on {system}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_name_browser_and_system_only() {
        let cases = [
            ("Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0", "Firefox on Linux"),
            ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36", "Chrome on Windows"),
            ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0", "Edge on Windows"),
            ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1", "Safari on iPhone"),
            ("Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15", "Safari on macOS"),
            ("Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36", "Chrome on Android"),
            ("curl/8.5.0", "curl on unknown system"),
            ("", "Unknown browser on unknown system"),
        ];
        for (ua, want) in cases {
            assert_eq!(device_label(ua), want, "{ua}");
        }
    }

    #[test]
    fn labels_are_cleaned_and_capped() {
        assert_eq!(
            clean_label("  Work\tlaptop \u{7}\n"),
            Some("Work laptop".into())
        );
        assert_eq!(clean_label(" \u{0} "), None);
        assert_eq!(
            clean_label(&"é".repeat(100)).unwrap().chars().count(),
            MAX_LABEL_CHARS
        );
    }

    #[test]
    fn handles_have_one_form_and_reach_nothing() {
        assert!(DeviceHandle::parse(&"a".repeat(32)).is_some());
        for bad in [
            "",
            "A".repeat(32).as_str(),
            &"a".repeat(31),
            &"a".repeat(33),
            &"g".repeat(32),
        ] {
            assert!(DeviceHandle::parse(bad).is_none(), "{bad}");
        }
        let hash = "0".repeat(64);
        let legacy = DeviceHandle::legacy(&hash);
        assert!(DeviceHandle::parse(legacy.as_str()).is_some());
        assert!(!hash.contains(legacy.as_str()));
    }
}
