//! Arbitrary text through `SessionId::parse`: accepted exactly when it is 64 characters of
//! `0-9a-f` (the one form ids are generated in); the refusal carries only the length; the id's
//! `Debug` never shows it; its KV hash is 64 lowercase hex.
#![no_main]

use kv_envelope::session::{NoSession, SessionId};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let well_formed =
        text.len() == 64 && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    match SessionId::parse(&text) {
        Ok(id) => {
            assert!(well_formed, "accepted a malformed id");
            assert_eq!(id.expose(), text);
            assert!(!format!("{id:?}").contains(&*text));
            let hash = id.hashed();
            assert_eq!(hash.len(), 64);
            assert!(hash.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')));
            assert_ne!(hash, text, "the KV key must not be the token");
        }
        Err(reason) => {
            assert!(!well_formed, "refused a well-formed id");
            // Only the length is carried: nothing of the text can leak into logs.
            assert_eq!(reason, NoSession::MalformedId { len: text.len() });
        }
    }
});
