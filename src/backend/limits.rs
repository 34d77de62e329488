//! KV's limits, in one place: the numbers (Cloudflare's "Workers KV limits" page) and the checks
//! that apply them. [`Kv`](super::Kv) enforces them on every call; the ops CLI and the
//! TypeScript package (`ts/src/kv.js`) apply the same numbers. Not public: users meet them as
//! [`LimitError`]s, and `docs/wire-format.md` lists them.

use crate::error::LimitError;

/// Longest key KV accepts, in bytes.
pub const MAX_KEY_BYTES: usize = 512;
/// Largest value KV accepts, in bytes (25 MiB).
pub const MAX_VALUE_BYTES: usize = 25 * 1024 * 1024;
/// Largest serialized metadata KV accepts, in bytes.
pub const MAX_METADATA_BYTES: usize = 1024;
/// KV rejects expirations less than 60 s in the future.
pub const MIN_EXPIRATION_SECS: u64 = 60;
/// Margin added to the floor so clock skew between us and KV never turns into a 400.
pub const EXPIRATION_SKEW_SECS: u64 = 5;
/// Shortest `cacheTtl` KV takes on a read, in seconds (30 since early 2026; it was 60).
#[cfg_attr(not(all(feature = "worker", target_arch = "wasm32")), allow(dead_code))]
pub const MIN_CACHE_TTL_SECS: u64 = 30;
/// Most keys one `list` call returns.
pub const MAX_LIST_LIMIT: u32 = 1000;
/// Most keys one bulk get reads (KV's `get` with an array of keys; billed as one operation).
/// [`Kv::get_many`](crate::Kv::get_many) splits longer lists into chunks of this size.
pub const MAX_BULK_KEYS: usize = 100;
/// How long a write can take to be seen at every other location ("60 seconds or more" in
/// KV's docs; the simulator's default window). The bound the stores' staleness promises use.
pub const PROPAGATION_MS: u64 = 60_000;
/// Latest expiry (ms since the epoch) handed to KV or written into an envelope: JavaScript's
/// largest exact integer. Beyond it the Workers runtime cannot represent the expiration (the
/// call throws), and other languages' JSON readers lose precision.
pub const MAX_EXPIRES_AT_MS: u64 = (1 << 53) - 1;

/// Most bytes of key and stored record one entry of a SQLite-backed Durable Object's storage
/// holds ("key and value combined cannot exceed 2 MB"). The record is ASCII JSON with the value
/// in base64, so values up to about 1.4 MiB fit: less than KV's 25 MiB, checked before any I/O.
pub const MAX_OBJECT_ENTRY_BYTES: usize = 2_000_000;

/// Whether a value that a text bulk get returned (KV returns bulk values only as text or JSON)
/// is exactly the stored bytes. Our JSON envelopes start with `{`; our binary frames start with
/// `0xC5` (postcard) or `0xC6` (sealed), which are no ASCII and which the runtime's lossy UTF-8
/// decoding turns into text that never starts with `{` (`0xC5`/`0xC6` decode to a two-byte
/// character or to U+FFFD). Any lossy decoding leaves U+FFFD in the text. So: text that starts
/// with `{` (after JSON whitespace) and has no U+FFFD is exact; anything else must be read
/// again with a single get (an exact text with a literal U+FFFD only costs that extra read).
pub fn bulk_text_is_exact(text: &str) -> bool {
    text.trim_start_matches([' ', '\n', '\r', '\t'])
        .starts_with('{')
        && !text.contains('\u{FFFD}')
}

/// Check a key against KV's rules. The single place where keys are judged.
pub fn check_key(key: &str) -> Result<(), LimitError> {
    if key.is_empty() {
        return Err(LimitError::EmptyKey);
    }
    if key == "." || key == ".." {
        return Err(LimitError::ReservedKey);
    }
    if key.len() > MAX_KEY_BYTES {
        return Err(LimitError::KeyTooLong {
            len: key.len(),
            max: MAX_KEY_BYTES,
        });
    }
    Ok(())
}

/// The KV `expiration` (seconds) for an envelope expiring at `expires_at_ms`, raised to KV's
/// floor of 60 s (+ skew margin) from `now_ms`. The envelope keeps the exact time; reads enforce
/// it, so a value that KV keeps a little longer is still never served late.
pub fn clamp_expiration(expires_at_ms: u64, now_ms: u64) -> Result<u64, LimitError> {
    if expires_at_ms <= now_ms {
        return Err(LimitError::AlreadyExpired);
    }
    if expires_at_ms > MAX_EXPIRES_AT_MS {
        return Err(LimitError::ExpiryOutOfRange {
            expires_at_ms,
            max: MAX_EXPIRES_AT_MS,
        });
    }
    let wanted = expires_at_ms.div_ceil(1000);
    let floor = now_ms.div_ceil(1000) + MIN_EXPIRATION_SECS + EXPIRATION_SKEW_SECS;
    Ok(wanted.max(floor))
}
