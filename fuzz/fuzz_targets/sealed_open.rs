//! Opening sealed frames (`C6`): arbitrary bytes as they are and behind both sealed preambles
//! (`C6 01 00` JSON inside, `C6 01 01` postcard inside) never panic and never open; a real
//! sealed session edited by the input (bytes flipped, truncated, extended) opens only when the
//! edits cancel out. The checks of `common` (peek and decode agree, metadata round trip) run on
//! every input too.
#![no_main]

use std::sync::OnceLock;

use kv_envelope::{
    __internal::{decode_value_in, encode_value_in},
    session::SessionRecord,
    Codec, KeyRing, SealingKey,
};
use libfuzzer_sys::fuzz_target;

mod common;

const KV_KEY: &str = "session:0123456789abcdef";

fn ring() -> &'static KeyRing {
    static RING: OnceLock<KeyRing> = OnceLock::new();
    RING.get_or_init(|| {
        KeyRing::new(vec![
            SealingKey::from_bytes("k2", &[2; 32]).unwrap(),
            SealingKey::from_bytes("k1", &[1; 32]).unwrap(),
        ])
        .unwrap()
    })
}

/// A valid sealed session in each inner codec.
fn sealed() -> &'static [Vec<u8>; 2] {
    static SEALED: OnceLock<[Vec<u8>; 2]> = OnceLock::new();
    SEALED.get_or_init(|| {
        let session: SessionRecord = serde_json::from_value(serde_json::json!({
            "userId": "u1",
            "email": "ada@example.com",
            "createdAt": common::NOW - 1000,
            "expiresAt": common::NOW + 3_600_000,
            "absoluteExpiresAt": common::NOW + 7_200_000,
            "refreshedAt": common::NOW - 1000,
            "roles": []
        }))
        .expect("a valid session");
        [Codec::Json, Codec::Postcard].map(|codec| {
            encode_value_in(
                &session,
                codec,
                Some(common::NOW + 3_600_000),
                Some(ring()),
                KV_KEY,
            )
            .unwrap()
        })
    })
}

/// Decode with the ring: no panic; an input that is not a clear envelope never opens.
fn check_opened(bytes: &[u8]) {
    common::check_envelope(bytes);
    match decode_value_in::<SessionRecord>(bytes, Some(ring()), KV_KEY, common::NOW, true) {
        Ok(Some(d)) => assert_ne!(
            bytes.first(),
            Some(&0xC6),
            "a sealed frame opened without being sealed by the ring: {:?}",
            d.seal
        ),
        Ok(None) => {}
        Err(e) => {
            let _ = (e.to_string(), e.kind(), e.protects_stored_value());
        }
    }
}

fuzz_target!(|data: &[u8]| {
    check_opened(data);
    for tag in [0x00, 0x01] {
        let mut framed = Vec::with_capacity(data.len() + 3);
        framed.extend_from_slice(&[0xC6, 0x01, tag]);
        framed.extend_from_slice(data);
        check_opened(&framed);
    }

    // Edit a real sealed value: pairs of (position, xor mask); an odd last byte truncates.
    let Some((&which, edits)) = data.split_first() else {
        return;
    };
    let base = &sealed()[usize::from(which & 1)];
    let mut edited = base.clone();
    let mut pairs = edits.chunks_exact(2);
    for pair in &mut pairs {
        let at = usize::from(pair[0]) * 7 % (edited.len() + 1);
        if at == edited.len() {
            edited.push(pair[1]);
        } else {
            edited[at] ^= pair[1];
        }
    }
    if let [cut] = pairs.remainder() {
        edited.truncate(usize::from(*cut) % (edited.len() + 1));
    }
    match decode_value_in::<SessionRecord>(&edited, Some(ring()), KV_KEY, common::NOW, true) {
        Ok(Some(_)) => assert_eq!(&edited, base, "an edited sealed value opened"),
        // A miss (an edited expiry) or any typed error: nothing served.
        Ok(None) | Err(_) => {}
    }
});
