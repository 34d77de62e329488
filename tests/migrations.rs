//! The crate's own session chain under the property-test helpers users get.

use std::path::Path;

use kv_envelope::{
    session::{SessionRecord, SessionRecordV1, SessionRecordV2},
    testing::{check_golden_corpus, check_migration, write_golden},
    Codec,
};
use proptest::prelude::*;

fn email() -> impl Strategy<Value = String> {
    "[a-z][a-z0-9]{0,15}([._][a-z0-9]{1,5})?@[a-z]{1,12}\\.(com|org|io|dev)"
}

fn user_id() -> impl Strategy<Value = String> {
    "[A-Za-z0-9_-]{1,64}"
}

fn v1() -> impl Strategy<Value = SessionRecordV1> {
    (user_id(), email(), any::<u64>(), any::<u64>()).prop_map(|(user_id, email, c, e)| {
        SessionRecordV1 {
            user_id,
            email,
            created_at: c,
            expires_at: e,
        }
    })
}

fn v2() -> impl Strategy<Value = SessionRecordV2> {
    (v1(), any::<u64>()).prop_map(|(v1, abs)| SessionRecordV2 {
        absolute_expires_at: abs,
        ..SessionRecordV2::from(v1)
    })
}

fn v3() -> impl Strategy<Value = SessionRecord> {
    (
        v2(),
        any::<u64>(),
        prop::collection::vec("[a-z]{1,10}", 0..4),
    )
        .prop_map(|(v2, r, roles)| SessionRecord {
            refreshed_at: r,
            roles,
            ..SessionRecord::from(v2)
        })
}

#[test]
fn v1_values_migrate_validate_and_round_trip() {
    check_migration::<SessionRecordV1, SessionRecord>(1, v1(), 256);
}

#[test]
fn v2_values_migrate_validate_and_round_trip() {
    check_migration::<SessionRecordV2, SessionRecord>(2, v2(), 256);
}

#[test]
fn v3_values_round_trip() {
    check_migration::<SessionRecord, SessionRecord>(3, v3(), 256);
}

#[test]
#[should_panic(expected = "invalid under its own schema")]
fn helper_rejects_a_strategy_that_breaks_the_schema() {
    let bad = v1().prop_map(|mut s| {
        s.email = "not-an-email".into();
        s
    });
    check_migration::<SessionRecordV1, SessionRecord>(1, bad, 4);
}

#[test]
fn golden_corpus_still_decodes() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/session");
    if std::env::var_os("KV_ENVELOPE_BLESS").is_some() {
        let v1 = SessionRecordV1 {
            user_id: "user-1".into(),
            email: "ada@example.com".into(),
            created_at: 1_764_000_000_000,
            expires_at: 1_764_604_800_000,
        };
        let v2 = SessionRecordV2::from(v1.clone());
        let v3 = SessionRecord {
            roles: vec!["admin".into()],
            ..SessionRecord::from(v2.clone())
        };
        for codec in [Codec::Json, Codec::Postcard] {
            write_golden(&dir, "v1", "session", 1, codec, &v1).unwrap();
            write_golden(&dir, "v2", "session", 2, codec, &v2).unwrap();
            write_golden(&dir, "v3", "session", 3, codec, &v3).unwrap();
        }
    }
    let n = check_golden_corpus::<SessionRecord>(&dir);
    assert_eq!(n, 6, "expected v1..v3 in both codecs");
}

/// `testing::plant_version`: an old version as its code wrote it (clear or sealed, either
/// codec), read back migrated; fixtures the read would refuse are refused.
#[test]
fn planted_old_versions_read_migrated() {
    use kv_envelope::{
        testing::plant_version, Error, KeyRing, Kv, MemoryKv, SealingKey, TypedStore,
    };
    futures::executor::block_on(async {
        let v1 = SessionRecordV1 {
            user_id: "u1".into(),
            email: "ada@example.com".into(),
            created_at: 1_700_000_000_000,
            expires_at: 4_000_000_000_000,
        };
        let ring = KeyRing::new(vec![SealingKey::from_bytes("k1", &[7u8; 32]).unwrap()]).unwrap();
        for codec in [Codec::Json, Codec::Postcard] {
            for sealed in [false, true] {
                let mut store: TypedStore<SessionRecord> =
                    TypedStore::new(Kv::new(MemoryKv::default())).with_codec(codec);
                if sealed {
                    store = store.with_sealing(ring.clone());
                }
                plant_version(&store, "s", 1, &v1, None).await.unwrap();
                let entry = store.get_entry("s").await.unwrap().expect("planted");
                assert_eq!(
                    (
                        entry.stored_version,
                        entry.codec,
                        entry.value.user_id.as_str()
                    ),
                    (1, codec, "u1"),
                    "{codec:?} sealed={sealed}"
                );
            }
        }
        let store: TypedStore<SessionRecord> = TypedStore::new(Kv::new(MemoryKv::default()));
        let bad = serde_json::json!({ "userId": "u1" });
        assert!(matches!(
            plant_version(&store, "s", 1, &bad, None).await,
            Err(Error::InvalidValue { version: 1, .. })
        ));
        assert!(matches!(
            plant_version(&store, "s", 4, &v1, None).await,
            Err(Error::UnknownVersion { version: 4, .. })
        ));
        assert_eq!(store.get("s").await.unwrap(), None, "nothing written");
    });
}
