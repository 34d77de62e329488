//! A single value given to a command: raw or base64, and telling an envelope from neither.

use super::encoding::decode_base64;
use kv_envelope::__internal::{FRAME_MAGIC, SEALED_MAGIC};

/// True when `bytes` start like an envelope: JSON (leading whitespace allowed), a binary frame
/// or a sealed frame.
pub(crate) fn looks_like_envelope(bytes: &[u8]) -> bool {
    match bytes
        .iter()
        .find(|b| !matches!(b, b' ' | b'\n' | b'\r' | b'\t'))
    {
        Some(b'{') => true,
        Some(&b) => {
            matches!(b, FRAME_MAGIC | SEALED_MAGIC) && bytes.first().is_some_and(|&f| f == b)
        }
        None => false,
    }
}

/// U+FFFD in UTF-8: what a binary frame's first byte (0xC5 or 0xC6, invalid as UTF-8 there) becomes when
/// a tool converts the value to text.
const REPLACEMENT_CHAR: &[u8] = "\u{FFFD}".as_bytes();

/// Why `bytes` are probably a binary envelope destroyed by a text conversion, if they are.
pub(crate) fn mangled_binary(bytes: &[u8]) -> Option<&'static str> {
    bytes.starts_with(REPLACEMENT_CHAR).then_some(
        "the value starts with U+FFFD: a binary (postcard or sealed) envelope that went through a text conversion (`wrangler kv bulk put --local` with base64, or `wrangler kv bulk get`)",
    )
}

/// How a single value is given to `inspect`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ValueFormat {
    /// Raw bytes when they start like an envelope (`{`, or the frame byte 0xC5 or 0xC6), else
    /// base64.
    Auto,
    /// The bytes as stored.
    Raw,
    /// Base64 of the bytes (standard or URL-safe, padding optional, whitespace ignored).
    Base64,
}

/// The stored bytes of a single value given as `format`.
pub(crate) fn value_bytes(input: Vec<u8>, format: ValueFormat) -> Result<Vec<u8>, String> {
    match format {
        ValueFormat::Raw => Ok(input),
        ValueFormat::Base64 => decode_base64(&input),
        // A mangled frame is shown as what it is, not as failed base64.
        ValueFormat::Auto if looks_like_envelope(&input) || mangled_binary(&input).is_some() => {
            Ok(input)
        }
        ValueFormat::Auto => {
            let bytes = decode_base64(&input).map_err(|e| {
                format!("input is neither an envelope (it does not start with `{{`, byte 0xC5 or 0xC6) nor base64 ({e})")
            })?;
            if looks_like_envelope(&bytes) {
                Ok(bytes)
            } else {
                Err("input decodes as base64 but the result does not start like an envelope".into())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_format_tells_raw_from_base64() {
        assert_eq!(
            value_bytes(b" {\"kv\":1}".to_vec(), ValueFormat::Auto).unwrap(),
            b" {\"kv\":1}"
        );
        assert_eq!(
            value_bytes(b"eyJrdiI6MX0=\n".to_vec(), ValueFormat::Auto).unwrap(),
            b"{\"kv\":1}"
        );
        assert!(value_bytes(b"aGVsbG8=".to_vec(), ValueFormat::Auto).is_err());
    }
}
