//! One-time tokens (`kv_envelope::tokens`): issued hashed, consumed once, refused with a typed
//! reason for each other case, listed and revoked per user; exact on (simulated) Durable
//! Objects, refused on KV unless best effort is asked for. Concurrent consumes, interleaved step
//! by step, are in tests/sim_races.rs.

mod common;

use std::{sync::Arc, time::Duration};

use kv_envelope::{
    backend::{Placement, Stored},
    testing::{SimConfig, SimKv, SimObjects},
    tokens::{OneTimeTokens, TokenHandle, TokenRecord, TokenRefused},
    Error, KeyRing, Kv, ManualClock, MemoryKv, SealingKey, TypedStore, Versioned,
};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use common::NOW;

const MINUTE: Duration = Duration::from_secs(60);

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
struct MagicLinkV1 {
    next: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct MagicLink {
    next: String,
    #[schemars(length(max = 16))]
    remember: Option<String>,
}

impl From<MagicLinkV1> for MagicLink {
    fn from(v1: MagicLinkV1) -> Self {
        MagicLink {
            next: v1.next,
            remember: None,
        }
    }
}

kv_envelope::versioned! { name: "magic-link", versions: [MagicLinkV1, MagicLink] }

fn link() -> MagicLink {
    MagicLink {
        next: "/me".into(),
        remember: None,
    }
}

/// Simulated Durable Objects (a conditional write: exactly once).
fn objects() -> (ManualClock, Kv) {
    let clock = ManualClock::new(NOW);
    let objects = SimObjects::new(Placement::ByGroup, Arc::new(clock.clone()));
    (clock.clone(), objects.kv(0))
}

fn ring() -> KeyRing {
    KeyRing::new(vec![SealingKey::from_bytes("k1", &[9; 32]).unwrap()]).unwrap()
}

#[tokio::test]
async fn kv_without_a_conditional_write_is_refused_unless_best_effort() {
    let kv = Kv::new(MemoryKv::default());
    let err = OneTimeTokens::<MagicLink>::new(kv.clone()).unwrap_err();
    assert!(matches!(err, Error::Unsupported { .. }), "{err:?}");
    assert_eq!((err.kind(), err.http_status()), ("unsupported", 500));
    assert!(!OneTimeTokens::<MagicLink>::best_effort(kv).is_exactly_once());
    let (_, objects) = objects();
    assert!(OneTimeTokens::<MagicLink>::new(objects.clone())
        .unwrap()
        .is_exactly_once());
    assert!(OneTimeTokens::<MagicLink>::best_effort(objects).is_exactly_once());
}

async fn issue_consume_and_every_refusal(tokens: OneTimeTokens<MagicLink>, clock: ManualClock) {
    let issued = tokens
        .issue("u1", "magic-login", &link(), 15 * MINUTE)
        .await
        .unwrap();
    assert_eq!(issued.expires_at, NOW + 15 * 60_000);
    assert_eq!(
        format!("{:?}", issued.token),
        "Token(…)",
        "Debug never shows the secret"
    );
    let secret = issued.token.expose().to_string();
    assert_eq!(secret.len(), 64);

    // Wrong purpose: refused and left usable for its own.
    assert_eq!(
        tokens.consume(&secret, "password-reset").await.unwrap(),
        Err(TokenRefused::WrongPurpose)
    );
    let redeemed = tokens
        .consume(&secret, "magic-login")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (
            redeemed.user_id.as_str(),
            &redeemed.data,
            redeemed.created_at
        ),
        ("u1", &link(), NOW)
    );
    assert_eq!(
        tokens.consume(&secret, "magic-login").await.unwrap(),
        Err(TokenRefused::Used)
    );

    // Malformed before any KV call, unknown for a well-formed token never issued.
    let reads = tokens.kv().counters().snapshot().kv_reads;
    for bad in ["", "nope", &secret.to_uppercase(), &format!("{secret}0")] {
        assert_eq!(
            tokens.consume(bad, "magic-login").await.unwrap(),
            Err(TokenRefused::Malformed)
        );
    }
    assert_eq!(tokens.kv().counters().snapshot().kv_reads, reads);
    let forged = "7".repeat(64);
    assert_eq!(
        tokens.consume(&forged, "magic-login").await.unwrap(),
        Err(TokenRefused::Unknown)
    );

    // Expired: told apart from unknown while KV still has it.
    let short = tokens
        .issue("u1", "magic-login", &link(), MINUTE)
        .await
        .unwrap();
    clock.advance(MINUTE);
    assert_eq!(
        tokens
            .consume(short.token.expose(), "magic-login")
            .await
            .unwrap(),
        Err(TokenRefused::Expired)
    );
    // The client never learns which: one sentence, one status.
    for r in [
        TokenRefused::Malformed,
        TokenRefused::Unknown,
        TokenRefused::Expired,
        TokenRefused::WrongPurpose,
        TokenRefused::Used,
    ] {
        assert_eq!(
            (r.public_message(), r.http_status()),
            ("this link is invalid or has expired", 400)
        );
    }
}

#[tokio::test]
async fn on_durable_objects_a_token_works_once() {
    let (clock, kv) = objects();
    issue_consume_and_every_refusal(OneTimeTokens::new(kv).unwrap(), clock).await;
}

#[tokio::test]
async fn sealed_tokens_work_once_and_keep_the_payload_unreadable() {
    let (clock, kv) = objects();
    let tokens = OneTimeTokens::new(kv.clone()).unwrap().with_sealing(ring());
    let issued = tokens
        .issue("u1", "magic-login", &link(), 15 * MINUTE)
        .await
        .unwrap();
    let stored: Stored = kv
        .get(&format!("token:{}", sha256(issued.token.expose())))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.value[0], 0xC6, "a sealed frame");
    assert!(!String::from_utf8_lossy(&stored.value).contains("/me"));
    issue_consume_and_every_refusal(tokens, clock).await;
}

#[tokio::test]
async fn best_effort_on_kv_works_once_at_one_location() {
    let clock = ManualClock::new(NOW);
    let mem = MemoryKv::new(Arc::new(clock.clone()));
    let kv = Kv::new(mem).with_clock(Arc::new(clock.clone()));
    issue_consume_and_every_refusal(OneTimeTokens::best_effort(kv), clock).await;
}

#[tokio::test]
async fn only_the_token_hash_reaches_kv() {
    let clock = ManualClock::new(NOW);
    let mem = Arc::new(MemoryKv::new(Arc::new(clock.clone())));
    let kv = Kv::from_arc(mem.clone()).with_clock(Arc::new(clock.clone()));
    let tokens = OneTimeTokens::<MagicLink>::best_effort(kv);
    let issued = tokens
        .issue("u1", "magic-login", &link(), MINUTE * 5)
        .await
        .unwrap();
    let secret = issued.token.expose();
    for (key, value) in mem.dump() {
        assert!(
            !key.contains(secret) && !String::from_utf8_lossy(&value).contains(secret),
            "{key}"
        );
        assert!(
            !key.contains(issued.handle.as_str()),
            "a handle is not a key: {key}"
        );
    }
    assert!(mem
        .dump()
        .iter()
        .any(|(k, _)| k == &format!("token:{}", sha256(secret))));
}

#[tokio::test]
async fn tokens_are_listed_and_revoked_per_user_and_purpose() {
    let (_, kv) = objects();
    let tokens = OneTimeTokens::<MagicLink>::new(kv).unwrap();
    let a = tokens
        .issue("u1", "magic-login", &link(), 15 * MINUTE)
        .await
        .unwrap();
    let b = tokens
        .issue("u1", "email-verify", &link(), 60 * MINUTE)
        .await
        .unwrap();
    let other = tokens
        .issue("u2", "magic-login", &link(), 15 * MINUTE)
        .await
        .unwrap();

    let all = tokens.list("u1", None).await.unwrap();
    assert_eq!(all.len(), 2);
    let logins = tokens.list("u1", Some("magic-login")).await.unwrap();
    assert_eq!(logins.len(), 1);
    assert_eq!(
        (logins[0].handle.clone(), logins[0].purpose.as_str()),
        (a.handle.clone(), "magic-login")
    );

    // Another user's handle revokes nothing of this one's, nor does a made-up handle.
    assert!(!tokens.revoke("u1", &other.handle).await.unwrap());
    assert!(!tokens
        .revoke("u1", &TokenHandle::parse(&"1".repeat(32)).unwrap())
        .await
        .unwrap());
    assert!(tokens.revoke("u1", &a.handle).await.unwrap());
    assert_eq!(
        tokens
            .consume(a.token.expose(), "magic-login")
            .await
            .unwrap(),
        Err(TokenRefused::Unknown)
    );
    // A consumed token leaves the list.
    tokens
        .consume(b.token.expose(), "email-verify")
        .await
        .unwrap()
        .unwrap();
    assert!(tokens.list("u1", None).await.unwrap().is_empty());
    // Revoke all of a purpose.
    tokens
        .issue("u2", "magic-login", &link(), 15 * MINUTE)
        .await
        .unwrap();
    tokens
        .issue("u2", "email-verify", &link(), 15 * MINUTE)
        .await
        .unwrap();
    assert_eq!(
        tokens.revoke_all("u2", Some("magic-login")).await.unwrap(),
        2
    );
    assert_eq!(
        tokens
            .consume(other.token.expose(), "magic-login")
            .await
            .unwrap(),
        Err(TokenRefused::Unknown)
    );
    assert_eq!(tokens.list("u2", None).await.unwrap().len(), 1);
}

#[tokio::test]
async fn payloads_are_checked_at_issue_and_migrated_at_consume() {
    let (_, kv) = objects();
    let tokens = OneTimeTokens::<MagicLink>::new(kv.clone()).unwrap();
    let too_long = MagicLink {
        next: "/".into(),
        remember: Some("x".repeat(17)),
    };
    let err = tokens
        .issue("u1", "magic-login", &too_long, MINUTE)
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::InvalidValue {
                type_name: "magic-link",
                ..
            }
        ),
        "{err:?}"
    );
    assert!(
        tokens.list("u1", None).await.unwrap().is_empty(),
        "nothing written"
    );
    assert!(
        tokens.issue("u1", "", &link(), MINUTE).await.is_err(),
        "a purpose is required"
    );

    // A record whose payload an older version wrote reads through the migration.
    let issued = tokens
        .issue("u1", "magic-login", &link(), 15 * MINUTE)
        .await
        .unwrap();
    let records: TypedStore<TokenRecord> = TypedStore::new(kv.clone()).with_prefix("token");
    let hash = sha256(issued.token.expose());
    let mut record = records.get(&hash).await.unwrap().unwrap();
    record.data_version = 1;
    record.data = serde_json::json!({ "next": "/old" });
    records
        .put_until(
            &hash,
            &record,
            Some(record.expires_at),
            kv_envelope::Overwrite::Safe,
        )
        .await
        .unwrap();
    let redeemed = tokens
        .consume(issued.token.expose(), "magic-login")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        redeemed.data,
        MagicLink {
            next: "/old".into(),
            remember: None
        }
    );

    // One from newer code is not spent: an error (409), the record left as it is.
    let newer = tokens
        .issue("u1", "magic-login", &link(), 15 * MINUTE)
        .await
        .unwrap();
    let hash = sha256(newer.token.expose());
    let mut record = records.get(&hash).await.unwrap().unwrap();
    record.data_version = MagicLink::VERSION + 1;
    records
        .put_until(
            &hash,
            &record,
            Some(record.expires_at),
            kv_envelope::Overwrite::Safe,
        )
        .await
        .unwrap();
    let err = tokens
        .consume(newer.token.expose(), "magic-login")
        .await
        .unwrap_err();
    assert_eq!(err.http_status(), 409);
    assert_eq!(records.get(&hash).await.unwrap().unwrap().consumed_at, None);
}

#[tokio::test]
async fn best_effort_on_kv_can_consume_twice_within_the_window() {
    // What best effort means on KV: a consume at another location within the propagation
    // window does not see the first one's write. Pinned so the docs stay honest.
    let clock = ManualClock::new(NOW);
    let sim = SimKv::new(
        7,
        SimConfig::default().with_locations(2),
        Arc::new(clock.clone()),
    );
    let here = OneTimeTokens::<MagicLink>::best_effort(sim.kv(0));
    let there = OneTimeTokens::<MagicLink>::best_effort(sim.kv(1));
    let issued = here
        .issue("u1", "magic-login", &link(), 15 * MINUTE)
        .await
        .unwrap();
    clock.advance(sim.propagation());
    assert!(there
        .consume(issued.token.expose(), "magic-login")
        .await
        .unwrap()
        .is_ok());
    clock.advance(Duration::from_secs(1));
    assert!(
        here.consume(issued.token.expose(), "magic-login")
            .await
            .unwrap()
            .is_ok(),
        "the second location still sees it unspent"
    );
    // After the window every location sees it spent.
    let again = here
        .issue("u1", "magic-login", &link(), 15 * MINUTE)
        .await
        .unwrap();
    clock.advance(sim.propagation());
    assert!(there
        .consume(again.token.expose(), "magic-login")
        .await
        .unwrap()
        .is_ok());
    clock.advance(sim.propagation());
    assert_eq!(
        here.consume(again.token.expose(), "magic-login")
            .await
            .unwrap(),
        Err(TokenRefused::Used)
    );
}

fn sha256(text: &str) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
