//! Structured old-version sessions with arbitrary fields, written in both codecs at their own
//! version and read by current code. Never panics; without validation every value reads back as
//! exactly what the `From` chain makes of it; with validation both codecs agree, a value that
//! passes its own version's schema migrates to one that passes the current schema, and one that
//! does not is a validation error; an expired value is a miss.
#![no_main]

use arbitrary::Arbitrary;
use kv_envelope::{
    decode_value, encode_value, envelope,
    session::{SessionRecord, SessionRecordV1, SessionRecordV2},
    Codec, Error, Versioned,
};
use libfuzzer_sys::fuzz_target;
use serde::Serialize;

const NOW: u64 = 1_764_000_000_000;

#[derive(Arbitrary, Debug)]
struct Email {
    /// Build `local@domain.com` from the alphanumerics (so valid emails are common).
    shaped: bool,
    local: String,
    domain: String,
}

impl Email {
    fn build(&self) -> String {
        if !self.shaped {
            return self.local.clone();
        }
        let clean = |s: &str| -> String {
            let t: String = s
                .chars()
                .filter(char::is_ascii_alphanumeric)
                .take(40)
                .collect();
            if t.is_empty() {
                "a".into()
            } else {
                t
            }
        };
        format!("{}@{}.com", clean(&self.local), clean(&self.domain))
    }
}

#[derive(Arbitrary, Debug)]
struct Common {
    user_id: String,
    email: Email,
    created_at: u64,
    expires_at: u64,
}

#[derive(Arbitrary, Debug)]
enum Old {
    V1(Common),
    V2(Common, u64),
    V3(Common, u64, u64, Vec<String>),
}

#[derive(Arbitrary, Debug)]
struct Input {
    old: Old,
    /// Envelope expiry: `None` never expires.
    exp: Option<u64>,
}

fn v1(c: &Common) -> SessionRecordV1 {
    SessionRecordV1 {
        user_id: c.user_id.clone(),
        email: c.email.build(),
        created_at: c.created_at,
        expires_at: c.expires_at,
    }
}

/// Encode `value` at `version` in both codecs, decode as current, and check the outcomes.
fn check<T: Serialize>(version: u32, value: &T, expected: SessionRecord, input: &Input) {
    let encode = |codec| {
        envelope::encode(codec, SessionRecord::NAME, version, input.exp, value)
            .expect("encoding a plain struct")
    };
    let (json, postcard) = (encode(Codec::Json), encode(Codec::Postcard));
    let expired = input.exp.is_some_and(|e| e <= NOW);
    for (codec, bytes) in [(Codec::Json, &json), (Codec::Postcard, &postcard)] {
        // Without validation every value we can encode reads back as the chain's result.
        match decode_value::<SessionRecord>(bytes, NOW, false) {
            Ok(None) => assert!(expired, "a miss for an unexpired value"),
            Ok(Some(d)) => {
                assert!(!expired, "served an expired value");
                assert_eq!(d.value, expected);
                assert_eq!((d.stored_version, d.codec), (version, codec));
            }
            Err(e) => panic!("unvalidated {codec} read failed: {e:?}"),
        }
    }
    let from_json = decode_value::<SessionRecord>(&json, NOW, true);
    let from_postcard = decode_value::<SessionRecord>(&postcard, NOW, true);
    // Both codecs judge a value the same way (postcard payloads are validated too).
    match (&from_json, &from_postcard) {
        (Ok(a), Ok(b)) => assert_eq!(a.as_ref().map(|d| &d.value), b.as_ref().map(|d| &d.value)),
        (Err(a), Err(b)) => assert_eq!(a.kind(), b.kind()),
        _ => panic!("codecs disagree: json {from_json:?}, postcard {from_postcard:?}"),
    }
    match from_json {
        Ok(None) => assert!(expired),
        Ok(Some(d)) => {
            assert_eq!(d.value, expected);
            // Migrating a value valid at its own version gives a value valid at the current
            // one: written back as v3, it reads with validation.
            let back = encode_value(&d.value, Codec::Json, input.exp).expect("encode current");
            let reread = decode_value::<SessionRecord>(&back, NOW, true);
            assert!(
                matches!(reread, Ok(Some(_))),
                "v{version} value valid at its version migrated to an invalid v3: {reread:?}"
            );
        }
        // `From` steps cannot refuse; the only way to fail is the schema of `version`.
        Err(e) => assert!(matches!(e, Error::Validation { .. }), "unexpected {e:?}"),
    }
}

fuzz_target!(|input: Input| {
    match &input.old {
        Old::V1(c) => {
            let old = v1(c);
            let expected = SessionRecord::from(SessionRecordV2::from(old.clone()));
            check(1, &old, expected, &input);
        }
        Old::V2(c, absolute) => {
            let base = v1(c);
            let old = SessionRecordV2 {
                user_id: base.user_id,
                email: base.email,
                created_at: base.created_at,
                expires_at: base.expires_at,
                absolute_expires_at: *absolute,
            };
            let expected = SessionRecord::from(old.clone());
            check(2, &old, expected, &input);
        }
        Old::V3(c, absolute, refreshed, roles) => {
            let base = v1(c);
            let current = SessionRecord {
                user_id: base.user_id,
                email: base.email,
                created_at: base.created_at,
                expires_at: base.expires_at,
                absolute_expires_at: *absolute,
                refreshed_at: *refreshed,
                roles: roles.clone(),
            };
            check(3, &current, current.clone(), &input);
        }
    }
});
