//! Arbitrary `Cookie` headers through the session cookie reader (plain and `__Host-` configs).
//! Never panics; an accepted id is well-formed and was sent as the value of a cookie with
//! exactly the cookie's name;
//! a refusal's message stays short (it carries lengths and counts, never the header).
#![no_main]

use kv_envelope::session::CookieConfig;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // Workers hands headers over as strings.
    let header = String::from_utf8_lossy(data);
    for config in [
        CookieConfig::default().with_host_prefix(false),
        CookieConfig::default(),
        CookieConfig::default().with_max_header_bytes(64),
    ] {
        match config.session_id(Some(&header)) {
            Ok(id) => {
                let id = id.expose();
                assert_eq!(id.len(), 64);
                assert!(id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')));
                assert!(header.len() <= 8 * 1024);
                // Sent as a `;`-separated pair with exactly the cookie's name; whitespace
                // around name and value is trimmed, as the `cookie` crate (RFC 6265) does
                // (regression: tests/corpus/cookies/whitespace-around-value.txt). The value is
                // the id, or the id followed by `", "` (two header lines joined by the runtime).
                let name = config.name();
                let joined = format!("{id}, ");
                let sent = header.split(';').any(|pair| {
                    pair.split_once('=').is_some_and(|(n, v)| {
                        n.trim() == name && (v.trim() == id || v.trim_start().starts_with(&joined))
                    })
                });
                assert!(sent, "accepted an id not sent as a {name} cookie");
                // What we write, we read back.
                let set =
                    config.set_cookie(&kv_envelope::session::SessionId::parse(id).unwrap(), 60);
                let sent = set.split(';').next().unwrap_or_default();
                let back = config
                    .session_id(Some(sent))
                    .expect("own Set-Cookie pair parses");
                assert_eq!(back.expose(), id);
            }
            Err(reason) => {
                let text = format!("{reason} {reason:?}");
                assert!(
                    text.len() < 200,
                    "a refusal that long may echo input: {text}"
                );
                let _ = (
                    reason.code(),
                    reason.clears_cookie(),
                    reason.is_suspicious(),
                );
            }
        }
    }
});
