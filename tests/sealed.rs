//! Sealed values through every store, on the memory backend and the simulator: round trips in
//! both inner codecs, rotation (lazy and refused), clear values read and re-sealed, and every
//! kind of bad input (truncations, flipped bits, moved values, edited headers, wrong and
//! unknown keys, nonce swaps) as a typed error that loses nothing. Key material never shows in
//! `Debug` or an error.

mod common;

use std::{collections::HashSet, convert::Infallible, sync::Arc, time::Duration};

use kv_envelope::{
    __internal::{decode_value_in, encode_value_in},
    backend::KvBackend,
    cache::{CachePolicy, CacheStatus, KvCache},
    decode_value,
    envelope::Header,
    envelope::{self, Payload},
    session::{Lookup, NoSession, Sessions},
    testing::{SimConfig, SimKv},
    Codec, Error, KeyError, KeyRing, Kv, ManualClock, MemoryKv, Overwrite, SealError, SealingKey,
    StoredSeal, TypedStore,
};
use proptest::prelude::*;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use common::NOW;

const EMAIL: &str = "ada.lovelace@example.com";
const HOUR: Duration = Duration::from_secs(3600);

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
struct ProfileV1 {
    email: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
struct Profile {
    email: String,
    visits: u32,
    tags: Vec<String>,
}

impl From<ProfileV1> for Profile {
    fn from(v1: ProfileV1) -> Self {
        Profile {
            email: v1.email,
            visits: 0,
            tags: Vec::new(),
        }
    }
}

kv_envelope::versioned! {
    name: "profile",
    versions: [ProfileV1, Profile],
}

fn profile() -> Profile {
    Profile {
        email: EMAIL.into(),
        visits: 7,
        tags: vec!["admin".into()],
    }
}

fn key(id: &str, fill: u8) -> SealingKey {
    SealingKey::from_bytes(id, &[fill; 32]).unwrap()
}

fn ring(ids: &[(&str, u8)]) -> KeyRing {
    KeyRing::new(ids.iter().map(|(id, fill)| key(id, *fill)).collect()).unwrap()
}

/// Reads the bytes stored under a key, bypassing envelopes.
type RawRead = Arc<dyn Fn(&str) -> Option<Vec<u8>> + Send + Sync>;
/// Writes bytes under a key with no KV expiration.
type RawPlant = Arc<dyn Fn(&str, Vec<u8>) + Send + Sync>;

/// A backend under test and raw access to its bytes.
struct Backend {
    clock: ManualClock,
    kv: Kv,
    raw: RawRead,
    plant: RawPlant,
}

fn memory() -> Backend {
    let clock = ManualClock::new(NOW);
    let mem = Arc::new(MemoryKv::new(Arc::new(clock.clone())));
    let (r, p) = (mem.clone(), mem.clone());
    Backend {
        kv: Kv::from_arc(mem).with_clock(Arc::new(clock.clone())),
        clock,
        raw: Arc::new(move |k| r.raw(k)),
        plant: Arc::new(move |k, v| p.insert_raw(k, v, None)),
    }
}

fn sim() -> Backend {
    let clock = ManualClock::new(NOW);
    let sim = Arc::new(SimKv::new(
        7,
        SimConfig::default().with_locations(1),
        Arc::new(clock.clone()),
    ));
    let (r, p) = (sim.clone(), sim.clone());
    let backend: Arc<dyn KvBackend> = Arc::new(sim.location(0));
    Backend {
        kv: Kv::from_arc(backend).with_clock(Arc::new(clock.clone())),
        clock,
        raw: Arc::new(move |k| r.central(k).map(|s| s.value)),
        plant: Arc::new(move |k, v| p.insert_raw(k, v, None)),
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

// ---------------------------------------------------------------------------------------------
// Typed store

async fn typed_store_round_trips_in_both_codecs(b: Backend) {
    for codec in [Codec::Json, Codec::Postcard] {
        // KV (and the simulator) allow one write per second per key.
        b.clock.advance(Duration::from_secs(2));
        let store = TypedStore::<Profile>::new(b.kv.clone())
            .with_codec(codec)
            .with_sealing(ring(&[("k1", 1)]));
        store.put("p1", &profile(), Some(HOUR)).await.unwrap();
        let bytes = (b.raw)("profile:p1").unwrap();
        assert_eq!(bytes[0], envelope::SEALED_MAGIC);
        assert!(
            !contains(&bytes, EMAIL.as_bytes()),
            "{codec}: plaintext email at rest"
        );
        assert!(
            !contains(&bytes, b"admin"),
            "{codec}: plaintext tag at rest"
        );
        let header = envelope::peek_header(&bytes).unwrap();
        assert_eq!(header.codec, codec);
        assert_eq!(header.key_id.as_deref(), Some("k1"));
        assert_eq!(header.type_name, "profile");
        let entry = store.get_entry("p1").await.unwrap().unwrap();
        assert_eq!(entry.value, profile());
        assert_eq!(entry.seal, StoredSeal::Primary);
        assert_eq!(entry.codec, codec);
        // The metadata names the key id, so `list` (and `census`) can count values per key.
        let meta =
            b.kv.get(&store.key("p1"))
                .await
                .unwrap()
                .unwrap()
                .metadata
                .unwrap();
        assert_eq!(
            Header::from_metadata(&meta).unwrap().key_id.as_deref(),
            Some("k1")
        );
        // A store without the ring neither reads nor replaces it.
        let clear = TypedStore::<Profile>::new(b.kv.clone());
        assert!(matches!(
            clear.get("p1").await,
            Err(Error::Sealed {
                reason: SealError::NoKeyRing,
                ..
            })
        ));
        assert!(clear.put("p1", &profile(), None).await.is_err());
        assert_eq!((b.raw)("profile:p1").unwrap(), bytes, "{codec}: untouched");
        store.delete("p1").await.unwrap();
    }
}

async fn rotation_reads_old_keys_reseals_on_write_back_and_never_overwrites_unknown(b: Backend) {
    let old = TypedStore::<Profile>::new(b.kv.clone()).with_sealing(ring(&[("k1", 1)]));
    old.put("a", &profile(), Some(HOUR)).await.unwrap();
    old.put("b", &profile(), Some(HOUR)).await.unwrap();
    let k1_bytes = (b.raw)("profile:b").unwrap();
    b.clock.advance(Duration::from_secs(2));

    // Step 1: add k2 as primary, keep k1. Old values read; write-back re-seals them with k2.
    let rotated = TypedStore::<Profile>::new(b.kv.clone())
        .with_sealing(ring(&[("k2", 2), ("k1", 1)]))
        .with_write_back(true);
    let entry = rotated.get_entry("a").await.unwrap().unwrap();
    assert_eq!(entry.seal, StoredSeal::OlderKey);
    let after = (b.raw)("profile:a").unwrap();
    let header = envelope::peek_header(&after).unwrap();
    assert_eq!(header.key_id.as_deref(), Some("k2"), "re-sealed lazily");
    assert_eq!(header.expires_at, entry.expires_at, "expiry kept exactly");
    assert_eq!(
        rotated.get_entry("a").await.unwrap().unwrap().seal,
        StoredSeal::Primary
    );

    // Step 2: retire k1 too early. "b" is still sealed with it: a typed error, never replaced.
    let retired = TypedStore::<Profile>::new(b.kv.clone()).with_sealing(ring(&[("k2", 2)]));
    assert_eq!(retired.get("a").await.unwrap(), Some(profile()));
    let err = retired.get("b").await.unwrap_err();
    assert_eq!(
        err,
        Error::Sealed {
            type_name: "profile",
            reason: SealError::UnknownKey {
                key_id: "k1".into()
            }
        }
    );
    assert_eq!(err.kind(), "sealed_unknown_key");
    assert!(err.protects_stored_value() && !err.is_corrupt());
    for overwrite in [Overwrite::Safe, Overwrite::AllowCorrupt] {
        assert!(retired
            .put_until("b", &profile(), None, overwrite)
            .await
            .is_err());
    }
    assert_eq!(
        (b.raw)("profile:b").unwrap(),
        k1_bytes,
        "a rotation mistake loses nothing"
    );
    // Putting k1 back makes it readable again.
    let repaired =
        TypedStore::<Profile>::new(b.kv.clone()).with_sealing(ring(&[("k2", 2), ("k1", 1)]));
    assert_eq!(repaired.get("b").await.unwrap(), Some(profile()));
}

/// Review 2: a store that sealed still served values in clear, so a KV writer without the key
/// could forge any session. A ring refuses clear values by default; an app that wrote clear
/// values before turning sealing on opts in explicitly, and they are sealed as they are written.
async fn clear_values_are_refused_unless_the_app_opts_in(b: Backend) {
    // Written before sealing was turned on, at an older version.
    let v1 = envelope::encode(
        Codec::Json,
        "profile",
        1,
        Some(NOW + 3_600_000),
        &ProfileV1 {
            email: EMAIL.into(),
        },
    )
    .unwrap();
    (b.plant)("profile:old", v1.clone());

    // The default: refused, as a value planted without the key would be, and kept.
    let strict = TypedStore::<Profile>::new(b.kv.clone())
        .with_sealing(ring(&[("k1", 1)]))
        .with_write_back(true);
    assert!(strict.key_ring().unwrap().requires_sealed());
    let err = strict.get("old").await.unwrap_err();
    assert!(matches!(
        err,
        Error::Sealed {
            reason: SealError::NotSealed,
            ..
        }
    ));
    assert!(
        err.is_corrupt(),
        "a clear value in a sealing store is like a corrupt one"
    );
    assert_eq!(
        (b.raw)("profile:old").unwrap(),
        v1,
        "refused, not rewritten"
    );
    let sessions: Sessions = Sessions::new(b.kv.clone()).with_sealing(ring(&[("k1", 1)]));
    let (id, _) = Sessions::<kv_envelope::session::SessionRecord>::new(b.kv.clone())
        .create("u1", EMAIL)
        .await
        .unwrap();
    assert_eq!(
        sessions.lookup(&id).await.unwrap(),
        Lookup::NoSession(NoSession::Sealed(SealError::NotSealed)),
        "a clear session is never served by a sealing store"
    );

    // The migration path: opt in while clear values remain; each is sealed at its write.
    let migrating = TypedStore::<Profile>::new(b.kv.clone())
        .with_sealing(ring(&[("k1", 1)]).requiring_sealed(false))
        .with_write_back(true);
    let entry = migrating.get_entry("old").await.unwrap().unwrap();
    assert_eq!(entry.seal, StoredSeal::Clear);
    assert_eq!(entry.stored_version, 1);
    assert_eq!(entry.value.email, EMAIL);
    let now_stored = (b.raw)("profile:old").unwrap();
    assert_eq!(now_stored[0], envelope::SEALED_MAGIC, "written back sealed");
    let header = envelope::peek_header(&now_stored).unwrap();
    assert_eq!(
        (header.version, header.expires_at),
        (2, Some(NOW + 3_600_000))
    );
    let migrating_sessions: Sessions =
        Sessions::new(b.kv.clone()).with_sealing(ring(&[("k1", 1)]).requiring_sealed(false));
    assert!(migrating_sessions.get(&id).await.unwrap().is_some());

    // Back to the default once nothing clear is left: the sealed value reads, a planted clear
    // one does not.
    (b.plant)("profile:planted", v1);
    assert_eq!(strict.get("old").await.unwrap().unwrap().email, EMAIL);
    assert!(strict.get("planted").await.is_err());
}

// ---------------------------------------------------------------------------------------------
// SessionRecord store

async fn sessions_seal_records_and_index_and_survive_rotation(b: Backend) {
    let store = Sessions::new(b.kv.clone()).with_sealing(ring(&[("k1", 1)]));
    let (id, _) = store.create("user-7731", EMAIL).await.unwrap();
    let session_key = format!("session:{}", id.hashed());
    let index_key = format!("{}{}", store.index_prefix_of("user-7731"), id.hashed());
    for k in [&session_key, &index_key] {
        let bytes = (b.raw)(k).unwrap_or_else(|| panic!("{k} stored"));
        assert_eq!(bytes[0], envelope::SEALED_MAGIC, "{k} sealed");
        assert!(!contains(&bytes, EMAIL.as_bytes()), "{k}: email at rest");
        assert!(!contains(&bytes, b"user-7731"), "{k}: user id at rest");
    }

    // Rotation: k2 primary, k1 kept. The user stays logged in; the next refresh re-seals.
    let rotated: Sessions = Sessions::new(b.kv.clone())
        .with_sealing(ring(&[("k2", 2), ("k1", 1)]))
        .with_refresh_threshold(Duration::from_secs(7 * 24 * 3600));
    assert!(rotated.get(&id).await.unwrap().is_some());
    b.clock.advance(Duration::from_secs(2));
    rotated.refresh(&id).await.unwrap();
    let header_of = |k: &str| {
        envelope::peek_header(&(b.raw)(k).unwrap())
            .unwrap()
            .into_owned()
    };
    assert_eq!(header_of(&session_key).key_id.as_deref(), Some("k2"));

    // A session sealed with a key the ring lacks: no session, its own reason, the cookie kept,
    // the value untouched.
    let (other, _) = store.create("user-2", EMAIL).await.unwrap();
    let other_key = format!("session:{}", other.hashed());
    let before = (b.raw)(&other_key).unwrap();
    let retired: Sessions = Sessions::new(b.kv.clone()).with_sealing(ring(&[("k2", 2)]));
    assert!(
        retired.get(&id).await.unwrap().is_some(),
        "re-sealed session lives on"
    );
    match retired.lookup(&other).await.unwrap() {
        Lookup::NoSession(reason) => {
            assert_eq!(reason.code(), "sealed_unknown_key");
            assert!(
                !reason.clears_cookie(),
                "a rotation mistake logs no one out"
            );
            assert!(matches!(
                reason,
                NoSession::Sealed(SealError::UnknownKey { .. })
            ));
        }
        Lookup::Found(_) => panic!("opened without its key"),
    }
    assert!(matches!(
        retired.refresh(&other).await.unwrap(),
        kv_envelope::session::Refresh::NoSession(NoSession::Sealed(_))
    ));
    assert_eq!((b.raw)(&other_key).unwrap(), before, "never overwritten");
    // Logging out still deletes it (logout must work whatever is stored).
    retired.delete(&other).await.unwrap();
    assert!((b.raw)(&other_key).is_none());
}

// ---------------------------------------------------------------------------------------------
// Cache store

async fn cache_entries_are_sealed_and_unknown_keys_are_never_overwritten(b: Backend) {
    let policy = CachePolicy::new(Duration::from_secs(60));
    let compute = || futures::future::ready(Ok::<_, Infallible>(profile()));
    let cache = KvCache::<Profile>::new(b.kv.clone()).with_sealing(ring(&[("k1", 1)]));
    let first = cache
        .try_get_or_compute("p", &policy, compute)
        .await
        .unwrap();
    assert_eq!(first.status, CacheStatus::Miss);
    let raw = (b.raw)("cache:profile:g0:p").unwrap();
    assert_eq!(raw[0], envelope::SEALED_MAGIC);
    assert!(!contains(&raw, EMAIL.as_bytes()));
    let hit = cache
        .try_get_or_compute("p", &policy, compute)
        .await
        .unwrap();
    assert_eq!((hit.status, hit.value), (CacheStatus::Hit, profile()));

    // Another isolate whose ring lacks k1: a miss, computed, served, never written over.
    let other = KvCache::<Profile>::new(b.kv.clone()).with_sealing(ring(&[("k9", 9)]));
    let got = other
        .try_get_or_compute("p", &policy, compute)
        .await
        .unwrap();
    assert_eq!(got.value, profile());
    assert_ne!(got.status, CacheStatus::Hit);
    assert!(other.get("p").await.unwrap().is_none());
    assert!(other.put("p", &profile(), &policy).await.is_err());
    assert_eq!(
        (b.raw)("cache:profile:g0:p").unwrap(),
        raw,
        "kept for the ring that can open it"
    );
    assert_eq!(cache.get("p").await.unwrap().unwrap().value, profile());
}

macro_rules! on_both_backends {
    ($($test:ident),+ $(,)?) => {
        mod memory {
            $(
                #[tokio::test]
                async fn $test() {
                    super::$test(super::memory()).await
                }
            )+
        }
        mod simulator {
            $(
                #[tokio::test]
                async fn $test() {
                    super::$test(super::sim()).await
                }
            )+
        }
    };
}

on_both_backends!(
    typed_store_round_trips_in_both_codecs,
    rotation_reads_old_keys_reseals_on_write_back_and_never_overwrites_unknown,
    clear_values_are_refused_unless_the_app_opts_in,
    sessions_seal_records_and_index_and_survive_rotation,
    cache_entries_are_sealed_and_unknown_keys_are_never_overwritten,
);

// ---------------------------------------------------------------------------------------------
// Bad input: each a typed error, never a panic, never a value

const KV_KEY: &str = "profile:p1";

fn sealed(codec: Codec) -> Vec<u8> {
    encode_value_in(
        &profile(),
        codec,
        Some(NOW + 60_000),
        Some(&ring(&[("k1", 1)])),
        KV_KEY,
    )
    .unwrap()
}

fn open(bytes: &[u8], r: &KeyRing, kv_key: &str) -> kv_envelope::Result<Option<Profile>> {
    decode_value_in::<Profile>(bytes, Some(r), kv_key, NOW, true).map(|d| d.map(|d| d.value))
}

#[test]
fn every_truncation_and_every_flipped_bit_is_refused() {
    let r = ring(&[("k1", 1)]);
    for codec in [Codec::Json, Codec::Postcard] {
        let bytes = sealed(codec);
        assert_eq!(open(&bytes, &r, KV_KEY).unwrap(), Some(profile()));
        for len in 0..bytes.len() {
            assert!(
                open(&bytes[..len], &r, KV_KEY).is_err(),
                "{codec}: truncated to {len} bytes opened"
            );
        }
        for i in 0..bytes.len() {
            for bit in 0..8 {
                let mut flipped = bytes.clone();
                flipped[i] ^= 1 << bit;
                // An edited expiry may turn the value into a miss (`Ok(None)`): no data either way.
                if let Ok(Some(_)) = open(&flipped, &r, KV_KEY) {
                    panic!("{codec}: bit {bit} of byte {i} flipped, still opened");
                }
            }
        }
        // Extra bytes at the end are part of the ciphertext and break the tag.
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(open(&longer, &r, KV_KEY).is_err());
    }
}

#[test]
fn a_value_moved_to_another_key_or_with_an_edited_header_does_not_open() {
    let r = ring(&[("k1", 1)]);
    let bytes = sealed(Codec::Json);
    let unopenable = |res: kv_envelope::Result<Option<Profile>>| {
        matches!(
            res,
            Err(Error::Sealed {
                reason: SealError::Unopenable { .. },
                ..
            })
        )
    };
    assert!(
        unopenable(open(&bytes, &r, "profile:p2")),
        "copied to another key"
    );
    assert!(unopenable(open(&bytes, &r, "")), "read without its key");

    // Rebuild the frame with one header field changed and the original nonce and ciphertext.
    let raw = envelope::decode(&bytes).unwrap();
    let Payload::Sealed(s) = raw.payload else {
        panic!("sealed")
    };
    let tail = &bytes[s.header_bytes.len()..];
    let reframe = |version: u32, exp: Option<u64>, key_id: &str, tag: u8| {
        let mut out = vec![envelope::SEALED_MAGIC, envelope::SEALED_FORMAT, tag];
        out = postcard::to_extend(&("profile", version, exp, key_id), out).unwrap();
        out.extend_from_slice(tail);
        out
    };
    // The untouched rebuild opens (the rebuild itself is right)…
    assert!(open(&reframe(2, Some(NOW + 60_000), "k1", 0), &r, KV_KEY)
        .unwrap()
        .is_some());
    // …and every edit does not.
    assert!(
        unopenable(open(&reframe(1, Some(NOW + 60_000), "k1", 0), &r, KV_KEY)),
        "version"
    );
    assert!(
        unopenable(open(
            &reframe(2, Some(NOW + 9_999_999), "k1", 0),
            &r,
            KV_KEY
        )),
        "expiry extended"
    );
    assert!(
        unopenable(open(&reframe(2, None, "k1", 0), &r, KV_KEY)),
        "expiry removed"
    );
    assert!(
        unopenable(open(&reframe(2, Some(NOW + 60_000), "k1", 1), &r, KV_KEY)),
        "inner codec"
    );
    // The type name is checked before opening: another type is a mismatch.
    let mut other_type = vec![envelope::SEALED_MAGIC, envelope::SEALED_FORMAT, 0];
    other_type =
        postcard::to_extend(&("session", 2u32, Some(NOW + 60_000), "k1"), other_type).unwrap();
    other_type.extend_from_slice(tail);
    assert!(matches!(
        open(&other_type, &r, KV_KEY),
        Err(Error::TypeMismatch { .. })
    ));
}

#[test]
fn wrong_and_unknown_keys_are_typed_errors() {
    let bytes = sealed(Codec::Postcard);
    // Same id, other key material (a secret replaced by mistake).
    let impostor = ring(&[("k1", 0xEE)]);
    assert!(matches!(
        open(&bytes, &impostor, KV_KEY),
        Err(Error::Sealed { reason: SealError::Unopenable { ref key_id }, .. }) if key_id == "k1"
    ));
    let unknown = ring(&[("k2", 2)]);
    assert!(matches!(
        open(&bytes, &unknown, KV_KEY),
        Err(Error::Sealed { reason: SealError::UnknownKey { ref key_id }, .. }) if key_id == "k1"
    ));
    assert!(matches!(
        decode_value::<Profile>(&bytes, NOW, true),
        Err(Error::Sealed {
            reason: SealError::NoKeyRing,
            ..
        })
    ));
    // Expiry is still judged from the header, without a key.
    let expired = decode_value_in::<Profile>(&bytes, None, KV_KEY, NOW + 60_000, true).unwrap();
    assert!(
        expired.is_none(),
        "expired: a miss before any key is needed"
    );
}

#[test]
fn nonces_are_fresh_and_a_swapped_nonce_does_not_open() {
    let r = ring(&[("k1", 1)]);
    let nonce_of = |bytes: &[u8]| -> [u8; envelope::NONCE_LEN] {
        match envelope::decode(bytes).unwrap().payload {
            Payload::Sealed(s) => *s.nonce,
            _ => panic!("sealed"),
        }
    };
    let mut seen = HashSet::new();
    let mut frames = Vec::new();
    for _ in 0..10_000 {
        let bytes = encode_value_in(&profile(), Codec::Json, None, Some(&r), KV_KEY).unwrap();
        assert!(seen.insert(nonce_of(&bytes)), "a nonce repeated");
        frames.push(bytes);
    }
    // Same value, same key, same header: the ciphertexts differ too.
    assert_ne!(frames[0], frames[1]);
    // Reusing another frame's nonce (a replayed or spliced nonce) breaks authentication.
    let (a, b) = (&frames[0], &frames[1]);
    let mut spliced = a.clone();
    let start = nonce_start(a);
    spliced[start..start + envelope::NONCE_LEN].copy_from_slice(&nonce_of(b));
    assert!(matches!(
        open(&spliced, &r, KV_KEY),
        Err(Error::Sealed {
            reason: SealError::Unopenable { .. },
            ..
        })
    ));
}

fn nonce_start(bytes: &[u8]) -> usize {
    match envelope::decode(bytes).unwrap().payload {
        Payload::Sealed(s) => s.header_bytes.len(),
        _ => panic!("sealed"),
    }
}

#[test]
fn secrets_never_show_in_debug_or_errors() {
    let secret = [0x5Au8; 32];
    let b64 = "WlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlo=";
    let k = SealingKey::from_base64("k1", b64, "SEAL_KEY_k1").unwrap();
    let r = KeyRing::new(vec![k.clone()]).unwrap();
    let hex: String = secret.iter().map(|b| format!("{b:02x}")).collect();
    for text in [format!("{k:?}"), format!("{r:?}"), format!("{r:#?}")] {
        assert!(!text.contains(b64) && !text.contains("WlpaWlpa"), "{text}");
        assert!(!text.contains(&hex) && !text.contains("90, 90"), "{text}");
        assert!(text.contains("k1"));
    }
    // Bad keys: the error names the variable, never the value.
    let short = "c2hvcnQta2V5LXZhbHVl"; // "short-key-value"
    let errors = [
        SealingKey::from_base64("k1", short, "SEAL_KEY_k1").unwrap_err(),
        SealingKey::from_base64("k1", "not base64 !!", "SEAL_KEY_k1").unwrap_err(),
        SealingKey::from_bytes("bad id!", &secret).unwrap_err(),
    ];
    assert_eq!(
        errors[0],
        KeyError::BadLength {
            source_name: "SEAL_KEY_k1".into(),
            len: 15
        }
    );
    for e in &errors {
        let text = format!("{e} {e:?}");
        assert!(
            !text.contains(short) && !text.contains("not base64 !!"),
            "{text}"
        );
    }
    assert!(errors[0].to_string().contains("SEAL_KEY_k1"));
    // Errors of opening name the key id only.
    let bytes = sealed(Codec::Json);
    let e = open(&bytes, &ring(&[("k1", 0x5A)]), KV_KEY).unwrap_err();
    let text = format!("{e} {e:?}");
    assert!(!text.contains(&hex) && !text.contains(EMAIL), "{text}");
}

#[test]
fn rings_from_named_variables() {
    let vars = |name: &str| -> Option<String> {
        match name {
            "SEAL_KEYS" => Some(" k2, k1 ".into()),
            "SEAL_KEY_k2" => Some("AgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgI=".into()),
            "SEAL_KEY_k1" => Some("AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE".into()),
            _ => None,
        }
    };
    let r = KeyRing::from_lookup("SEAL", vars).unwrap();
    assert_eq!(r.key_ids().collect::<Vec<_>>(), ["k2", "k1"]);
    assert_eq!(r.primary_id(), "k2");
    // Same keys as `ring` builds: what one seals the other opens.
    let bytes = sealed(Codec::Json);
    assert_eq!(open(&bytes, &r, KV_KEY).unwrap(), Some(profile()));
    assert_eq!(
        KeyRing::from_lookup("OTHER", vars).unwrap_err(),
        KeyError::Missing {
            source_name: "OTHER_KEYS".into()
        }
    );
    let missing_key = |name: &str| (name == "SEAL_KEYS").then(|| "k3".to_string());
    assert_eq!(
        KeyRing::from_lookup("SEAL", missing_key).unwrap_err(),
        KeyError::Missing {
            source_name: "SEAL_KEY_k3".into()
        }
    );
    let empty = |name: &str| (name == "SEAL_KEYS").then(|| " , ".to_string());
    assert!(matches!(
        KeyRing::from_lookup("SEAL", empty).unwrap_err(),
        KeyError::Empty { .. }
    ));
    assert!(matches!(
        KeyRing::new(vec![key("k1", 1), key("k1", 2)]).unwrap_err(),
        KeyError::DuplicateId { .. }
    ));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Any value round-trips sealed through both inner codecs, and only under its own KV key.
    #[test]
    fn sealed_round_trips(
        email in "[a-z]{1,12}@[a-z]{1,8}\\.[a-z]{2,4}",
        visits in any::<u32>(),
        tags in proptest::collection::vec(".{0,16}", 0..4),
        exp in proptest::option::of(NOW + 1..NOW + 1_000_000_000),
        postcard in any::<bool>(),
        kv_key in "[a-z:0-9]{1,40}",
    ) {
        let value = Profile { email, visits, tags };
        let codec = if postcard { Codec::Postcard } else { Codec::Json };
        let r = ring(&[("k2", 2), ("k1", 1)]);
        let bytes = encode_value_in(&value, codec, exp, Some(&r), &kv_key).unwrap();
        let back = decode_value_in::<Profile>(&bytes, Some(&r), &kv_key, NOW, true).unwrap().unwrap();
        prop_assert_eq!(back.value, value);
        prop_assert_eq!(back.expires_at, exp);
        prop_assert_eq!(back.codec, codec);
        prop_assert_eq!(back.seal, StoredSeal::Primary);
        let other_key = format!("{kv_key}x");
        prop_assert!(decode_value_in::<Profile>(&bytes, Some(&r), &other_key, NOW, true).is_err());
    }
}
