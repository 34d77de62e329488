//! Wire format: golden bytes for each codec, header peeking, migration from every version.

mod common;

use kv_envelope::{
    decode_value,
    envelope::{self, Header},
    session::{SessionRecord, SessionRecordV1, SessionRecordV2},
    Codec, Error, Versioned,
};

use common::NOW;

fn v1() -> SessionRecordV1 {
    SessionRecordV1 {
        user_id: "u1".into(),
        email: "a@example.com".into(),
        created_at: NOW,
        expires_at: NOW + 1000,
    }
}

/// Encode a value as if it were the current version of another era's code.
fn encode_at<T: serde::Serialize>(
    codec: Codec,
    version: u32,
    exp: Option<u64>,
    value: &T,
) -> Vec<u8> {
    envelope::encode(codec, "session", version, exp, value).unwrap()
}

#[test]
fn golden_json_v1() {
    let bytes = encode_at(Codec::Json, 1, Some(NOW + 1000), &v1());
    assert_eq!(
        std::str::from_utf8(&bytes).unwrap(),
        r#"{"kv":1,"type":"session","v":1,"exp":1764000001000,"data":{"userId":"u1","email":"a@example.com","createdAt":1764000000000,"expiresAt":1764000001000}}"#
    );
}

#[test]
fn golden_json_never_expires() {
    let bytes = encode_at(Codec::Json, 1, None, &v1());
    assert!(std::str::from_utf8(&bytes)
        .unwrap()
        .starts_with(r#"{"kv":1,"type":"session","v":1,"exp":null,"data":{"#));
}

#[test]
fn golden_postcard_v1() {
    let bytes = encode_at(Codec::Postcard, 1, Some(NOW + 1000), &v1());
    let expected: Vec<u8> = [
        &[0xC5, 0x01, 0x01][..],
        // header: "session", v1, Some(exp)
        &[7],
        b"session",
        &[1],
        &[1, 0xE8, 0xD7, 0xDF, 0xB4, 0xAB, 0x33],
        // payload: "u1", "a@example.com", created, expires
        &[2],
        b"u1",
        &[13],
        b"a@example.com",
        &[0x80, 0xD0, 0xDF, 0xB4, 0xAB, 0x33],
        &[0xE8, 0xD7, 0xDF, 0xB4, 0xAB, 0x33],
    ]
    .concat();
    assert_eq!(bytes, expected, "{bytes:02x?}");
}

#[test]
fn peek_header_both_codecs() {
    for codec in [Codec::Json, Codec::Postcard] {
        let bytes = encode_at(codec, 2, Some(5), &v1());
        let h = envelope::peek_header(&bytes).unwrap();
        assert_eq!(
            h,
            Header {
                codec,
                type_name: "session".into(),
                version: 2,
                expires_at: Some(5),
                key_id: None,
            }
        );
    }
}

#[test]
fn v1_reads_as_current_in_both_codecs() {
    for codec in [Codec::Json, Codec::Postcard] {
        let bytes = encode_at(codec, 1, Some(NOW + 1000), &v1());
        let d = decode_value::<SessionRecord>(&bytes, NOW, true)
            .unwrap()
            .unwrap();
        assert_eq!(d.stored_version, 1);
        assert!(d.migrated());
        assert_eq!(d.value.user_id, "u1");
        assert_eq!(
            d.value.absolute_expires_at,
            NOW + kv_envelope::__internal::DEFAULT_ABSOLUTE_LIFETIME.as_millis() as u64
        );
        assert_eq!(d.value.refreshed_at, NOW);
        assert!(d.value.roles.is_empty());
    }
}

#[test]
fn v2_reads_as_current() {
    let v2 = SessionRecordV2::from(v1());
    for codec in [Codec::Json, Codec::Postcard] {
        let bytes = encode_at(codec, 2, None, &v2);
        let d = decode_value::<SessionRecord>(&bytes, NOW, true)
            .unwrap()
            .unwrap();
        assert_eq!(d.value, SessionRecord::from(v2.clone()));
    }
}

#[test]
fn future_version_is_typed_error() {
    for codec in [Codec::Json, Codec::Postcard] {
        let bytes = encode_at(codec, SessionRecord::VERSION + 1, None, &v1());
        let e = decode_value::<SessionRecord>(&bytes, NOW, true).unwrap_err();
        assert!(
            matches!(
                e,
                Error::FutureVersion {
                    found: 4,
                    known: 3,
                    ..
                }
            ),
            "{e:?}"
        );
    }
}

#[test]
fn expired_is_none_without_payload() {
    // payload is garbage, but the header says expired: no decode happens.
    let mut bytes = br#"{"kv":1,"type":"session","v":1,"exp":5,"data":"#.to_vec();
    bytes.extend_from_slice(b"not json at all}");
    assert!(decode_value::<SessionRecord>(&bytes, NOW, true)
        .unwrap()
        .is_none());
}

#[test]
fn validation_reports_path_without_value() {
    let mut bad = v1();
    bad.email = "hunter2-secret".into();
    let bytes = encode_at(Codec::Json, 1, None, &bad);
    let e = decode_value::<SessionRecord>(&bytes, NOW, true).unwrap_err();
    let Error::Validation { issues, .. } = &e else {
        panic!("{e:?}")
    };
    assert_eq!(issues[0].instance_path, "/email");
    assert!(!e.to_string().contains("hunter2"), "{e}");
}

#[test]
fn json_other_key_order_and_extra_keys() {
    let s = r#"{"data":{"userId":"u","email":"a@b.co","createdAt":1,"expiresAt":2},"v":1,"type":"session","kv":1,"exp":null,"note":"x"}"#;
    let d = decode_value::<SessionRecord>(s.as_bytes(), NOW, true)
        .unwrap()
        .unwrap();
    assert_eq!(d.value.user_id, "u");
    let s = r#"{"kv":1,"type":"session","v":1,"exp":null,"data":{"userId":"u","email":"a@b.co","createdAt":1,"expiresAt":2},"note":{}}"#;
    let d = decode_value::<SessionRecord>(s.as_bytes(), NOW, true)
        .unwrap()
        .unwrap();
    assert_eq!(d.value.user_id, "u");
}

#[test]
fn email_format_accepts_real_addresses_and_refuses_junk() {
    use kv_envelope_validator::is_plausible_email as ok;
    for good in [
        "a@b.co",
        "ada.lovelace+kv@mail.example.com",
        "x_y-z@sub-1.example.io",
    ] {
        assert!(ok(good), "{good}");
    }
    for bad in [
        "",
        "a",
        "@b.co",
        "a@",
        "a@b",
        "a..b@c.com",
        ".a@b.com",
        "a.@b.com",
        "a@-b.com",
        "a@b-.com",
        "a b@c.com",
        "a@b..com",
        "a@@b.com",
    ] {
        assert!(!ok(bad), "{bad}");
    }
}

/// A type with a map, for the duplicate-key rules below.
#[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
struct Tally {
    name: String,
    counts: std::collections::BTreeMap<String, u32>,
}

kv_envelope::versioned! { name: "tally", versions: [Tally] }

/// A payload that repeats a key reads the same with and without validation: a repeated struct
/// field is refused as corrupt (as serde refuses it), a repeated map key keeps its last value
/// (as `JSON.parse` and serde_json do), and validation judges that last value.
#[test]
fn duplicate_keys_read_the_same_validated_or_not() {
    let envelope =
        |data: &str| format!(r#"{{"kv":1,"type":"tally","v":1,"exp":null,"data":{data}}}"#);

    let repeated_field = envelope(r#"{"name":"a","counts":{},"name":"b"}"#);
    let refusal = |validate| {
        let err = decode_value::<Tally>(repeated_field.as_bytes(), NOW, validate).unwrap_err();
        assert!(matches!(err, Error::Codec { .. }), "{err:?}");
        assert!(err.is_corrupt());
        err.to_string()
    };
    assert_eq!(refusal(false), refusal(true));

    let repeated_key = envelope(r#"{"name":"a","counts":{"x":1,"y":2,"x":3}}"#);
    let read = |validate| {
        decode_value::<Tally>(repeated_key.as_bytes(), NOW, validate)
            .unwrap()
            .unwrap()
            .value
    };
    let expected = Tally {
        name: "a".into(),
        counts: [("x".to_string(), 3), ("y".to_string(), 2)].into(),
    };
    assert_eq!(read(false), expected);
    assert_eq!(read(true), expected);

    // Validation judges the last member of a key; decoding still reads every member, as
    // serde_json does: a shadowed member that does not fit the type is refused either way.
    let shadowed_invalid = envelope(r#"{"name":"a","counts":{"x":-1,"x":3}}"#);
    for validate in [false, true] {
        let err = decode_value::<Tally>(shadowed_invalid.as_bytes(), NOW, validate).unwrap_err();
        assert!(matches!(err, Error::Codec { .. }), "{err:?}");
    }
    let last_invalid = envelope(r#"{"name":"a","counts":{"x":3,"x":-1}}"#);
    let err = decode_value::<Tally>(last_invalid.as_bytes(), NOW, true).unwrap_err();
    assert!(matches!(err, Error::Validation { .. }), "{err:?}");
}
