//! Checks shared by the envelope targets: no panic, and the decoders agree with each other.

use kv_envelope::{
    decode_value, encode_value,
    envelope::{self, Header},
    session::SessionRecord,
    Codec,
};

/// The fuzzers' "now": values expiring before it are misses.
pub const NOW: u64 = 1_764_000_000_000;

/// Decode `bytes` every way the crate can and check the answers are consistent.
pub fn check_envelope(bytes: &[u8]) {
    let peek = envelope::peek_header(bytes);
    let raw = envelope::decode(bytes);
    match (&peek, &raw) {
        (Ok(p), Ok(r)) => {
            assert_eq!(*p, r.header, "peek_header and decode disagree");
            assert_eq!(r.header.codec, r.payload.codec());
            check_metadata_round_trip(p);
        }
        (Err(_), Ok(_)) => panic!("decode accepts what peek_header refuses"),
        _ => {}
    }
    for validate in [true, false] {
        match decode_value::<SessionRecord>(bytes, NOW, validate) {
            Ok(Some(d)) => {
                let h = peek
                    .as_ref()
                    .expect("a value decoded without a readable header");
                assert_eq!(h.type_name, "session");
                assert_eq!(d.codec, h.codec);
                assert!((1..=3).contains(&d.stored_version));
                assert!(
                    d.expires_at.is_none_or(|e| e > NOW),
                    "served an expired value"
                );
                round_trip(&d.value, d.expires_at, validate);
            }
            Ok(None) => {
                let h = peek.as_ref().expect("a miss without a readable header");
                assert!(h.is_expired(NOW), "a miss for an unexpired value");
            }
            Err(e) => {
                // Formatting must not panic either (messages are built from our own data).
                let _ = (
                    e.to_string(),
                    e.kind(),
                    e.is_corrupt(),
                    e.protects_stored_value(),
                );
            }
        }
    }
}

/// A value read from KV encodes and reads back identically in both codecs; a value that passed
/// validation still does once written at the current version.
fn round_trip(value: &SessionRecord, expires_at: Option<u64>, validated: bool) {
    for codec in [Codec::Json, Codec::Postcard] {
        let bytes = encode_value(value, codec, expires_at).expect("encoding a decoded value");
        let back = decode_value::<SessionRecord>(&bytes, NOW, validated)
            .expect("re-reading what we wrote")
            .expect("not expired");
        assert_eq!(&back.value, value);
        assert_eq!(back.stored_version, 3);
    }
}

/// The metadata copy of any header we accept parses back to the same header.
fn check_metadata_round_trip(h: &Header<'_>) {
    let meta = h.to_metadata();
    let back = Header::from_metadata(&meta).expect("our own metadata parses");
    assert_eq!(back, h.clone().into_owned());
}
