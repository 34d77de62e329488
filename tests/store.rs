//! TypedStore over MemoryKv: expiry, codecs, write-back, and the never-lose-data guards.

mod common;

use std::{sync::Arc, time::Duration};

use kv_envelope::{
    envelope::{self, Header},
    session::{SessionRecord, SessionRecordV1},
    Codec, Error, Kv, ManualClock, MemoryKv, Overwrite, TypedStore, Versioned,
};

use common::NOW;

fn setup() -> (ManualClock, Arc<MemoryKv>, TypedStore<SessionRecord>) {
    let clock = ManualClock::new(NOW);
    let mem = Arc::new(MemoryKv::new(Arc::new(clock.clone())));
    let kv = Kv::from_arc(mem.clone()).with_clock(Arc::new(clock.clone()));
    (clock, mem, TypedStore::new(kv))
}

fn session() -> SessionRecord {
    SessionRecord {
        user_id: "u1".into(),
        email: "ada@example.com".into(),
        created_at: NOW,
        expires_at: NOW + 10_000,
        absolute_expires_at: NOW + 100_000,
        refreshed_at: NOW,
        roles: vec![],
    }
}

fn v1() -> SessionRecordV1 {
    SessionRecordV1 {
        user_id: "old".into(),
        email: "old@example.com".into(),
        created_at: NOW - 5,
        expires_at: NOW + 50_000,
    }
}

#[tokio::test]
async fn put_get_both_codecs_and_metadata() {
    for codec in [Codec::Json, Codec::Postcard] {
        let (_, mem, store) = setup();
        let store = store.with_codec(codec);
        store
            .put("a", &session(), Some(Duration::from_secs(10)))
            .await
            .unwrap();
        assert_eq!(store.get("a").await.unwrap(), Some(session()));
        let raw = mem.raw("session:a").unwrap();
        assert_eq!(envelope::peek_header(&raw).unwrap().codec, codec);
        let page = store.kv().list("session:", None, 10).await.unwrap();
        let meta = page.keys[0].metadata.as_deref().unwrap();
        let h = Header::from_metadata(meta).unwrap();
        assert_eq!(
            (h.version, h.codec, h.expires_at),
            (3, codec, Some(NOW + 10_000))
        );
    }
}

#[tokio::test]
async fn short_ttl_is_clamped_for_kv_but_enforced_on_read() {
    let (clock, mem, store) = setup();
    store
        .put("a", &session(), Some(Duration::from_secs(10)))
        .await
        .unwrap();
    let page = store.kv().list("session:", None, 10).await.unwrap();
    // KV got at least now + 60 s (+ skew), seconds.
    assert!(page.keys[0].expiration.unwrap() >= NOW / 1000 + 60);
    clock.advance(Duration::from_secs(11));
    // KV still holds it...
    assert!(mem.raw("session:a").is_some());
    // ...but it is never served.
    assert_eq!(store.get("a").await.unwrap(), None);
}

#[tokio::test]
async fn v1_in_kv_reads_as_current_and_write_back_keeps_expiry() {
    for codec in [Codec::Json, Codec::Postcard] {
        let (_, mem, store) = setup();
        let old = envelope::encode(codec, "session", 1, Some(NOW + 50_000), &v1()).unwrap();
        mem.insert_raw("session:k", old, None);
        let plain = store.get_entry("k").await.unwrap().unwrap();
        assert_eq!(plain.stored_version, 1);
        assert_eq!(plain.value.user_id, "old");
        assert_eq!(
            store.kv().counters().snapshot().kv_writes,
            0,
            "no write-back by default"
        );

        let store = store.with_write_back(true);
        store.get("k").await.unwrap().unwrap();
        let h = envelope::peek_header(&mem.raw("session:k").unwrap())
            .unwrap()
            .into_owned();
        assert_eq!((h.version, h.expires_at), (3, Some(NOW + 50_000)));
    }
}

#[tokio::test]
async fn future_version_is_refused_and_never_overwritten() {
    for codec in [Codec::Json, Codec::Postcard] {
        let (_, mem, store) = setup();
        let store = store.with_write_back(true);
        let future =
            envelope::encode(codec, "session", SessionRecord::VERSION + 1, None, &v1()).unwrap();
        mem.insert_raw("session:f", future.clone(), None);

        let e = store.get("f").await.unwrap_err();
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
        let e = store.put("f", &session(), None).await.unwrap_err();
        assert!(matches!(e, Error::FutureVersion { .. }), "{e:?}");
        let e = store
            .put_until("f", &session(), None, Overwrite::AllowCorrupt)
            .await
            .unwrap_err();
        assert!(matches!(e, Error::FutureVersion { .. }), "{e:?}");
        assert_eq!(mem.raw("session:f").unwrap(), future, "bytes untouched");
        assert_eq!(store.kv().counters().snapshot().kv_writes, 0);
    }
}

#[tokio::test]
async fn corrupt_value_is_kept_unless_overwrite_allows() {
    let (_, mem, store) = setup();
    mem.insert_raw(
        "session:c",
        b"{\"kv\":1,\"type\":\"session\",\"v\":2,\"exp\":null,\"data\":{}}".to_vec(),
        None,
    );
    let e = store.get("c").await.unwrap_err();
    assert!(e.is_corrupt(), "{e:?}");
    let e = store.put("c", &session(), None).await.unwrap_err();
    assert!(e.is_corrupt());
    assert!(mem.raw("session:c").unwrap().starts_with(b"{\"kv\":1"));
    store
        .put_until("c", &session(), None, Overwrite::AllowCorrupt)
        .await
        .unwrap();
    assert_eq!(store.get("c").await.unwrap(), Some(session()));
}

#[tokio::test]
async fn other_type_under_the_key_is_a_type_mismatch() {
    let (_, mem, store) = setup();
    let other =
        envelope::encode(Codec::Json, "cart", 1, None, &serde_json::json!({"x": 1})).unwrap();
    mem.insert_raw("session:t", other, None);
    let e = store.get("t").await.unwrap_err();
    assert!(matches!(e, Error::TypeMismatch { .. }), "{e:?}");
}

#[tokio::test]
async fn limits_are_typed_errors_before_io() {
    let (_, _, store) = setup();
    let long = "x".repeat(600);
    let e = store.get(&long).await.unwrap_err();
    assert!(matches!(e, Error::Limit(_)), "{e:?}");
    assert_eq!(store.kv().counters().snapshot().kv_reads, 0);
}

#[tokio::test]
async fn expired_before_write_is_refused() {
    let (_, _, store) = setup();
    let e = store
        .put_until("x", &session(), Some(NOW - 1), Overwrite::Safe)
        .await
        .unwrap_err();
    assert!(
        matches!(e, Error::Limit(kv_envelope::LimitError::AlreadyExpired)),
        "{e:?}"
    );
}
