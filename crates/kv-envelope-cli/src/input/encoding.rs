//! Base64 of stored values: decoding every common dialect, encoding the standard one.

use base64::{
    alphabet,
    engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig},
    Engine as _,
};

/// Standard or URL-safe alphabet, padded or not: dumps come from `base64`, browsers, `jq
/// @base64` and Node's `Buffer`, which disagree on both.
fn engines() -> [GeneralPurpose; 2] {
    let config =
        GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent);
    [
        GeneralPurpose::new(&alphabet::STANDARD, config),
        GeneralPurpose::new(&alphabet::URL_SAFE, config),
    ]
}

/// Decode base64 text, ignoring ASCII whitespace (line-wrapped output). The error names the
/// offset of the first bad character, never the character itself.
pub(crate) fn decode_base64(text: &[u8]) -> Result<Vec<u8>, String> {
    let compact: Vec<u8> = text
        .iter()
        .copied()
        .filter(|b| !b.is_ascii_whitespace())
        .collect();
    if compact.is_empty() {
        return Err("invalid base64: empty".into());
    }
    let [standard, url_safe] = engines();
    // Only `-` or `_` select the URL-safe alphabet; everything else decodes as standard, so the
    // error offset refers to the alphabet the text claims.
    let engine = if compact.iter().any(|b| matches!(b, b'-' | b'_')) {
        url_safe
    } else {
        standard
    };
    engine.decode(&compact).map_err(|e| match e {
        base64::DecodeError::InvalidByte(offset, _)
        | base64::DecodeError::InvalidLastSymbol(offset, _) => {
            format!("invalid base64: unexpected character at offset {offset}")
        }
        base64::DecodeError::InvalidLength(len) => {
            format!("invalid base64: {len} characters is not a valid length (truncated?)")
        }
        base64::DecodeError::InvalidPadding => "invalid base64: bad padding".to_string(),
    })
}

/// Encode bytes as standard padded base64 (what `wrangler kv bulk put` expects with
/// `"base64": true`).
pub(crate) fn encode_base64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_accepts_every_common_dialect() {
        let want = vec![0xC5, 0x01, 0x01, 0xFB, 0xFF];
        for text in ["xQEB+/8=", "xQEB+/8", "xQEB-_8", "xQEB\n+/8=\n"] {
            assert_eq!(decode_base64(text.as_bytes()).as_ref(), Ok(&want), "{text}");
        }
    }

    #[test]
    fn base64_error_names_offset_not_character() {
        let err = decode_base64(b"xQE!+/8=").unwrap_err();
        assert!(err.contains("offset 3"), "{err}");
        assert!(!err.contains('!'), "{err}");
    }
}
