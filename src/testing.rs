//! Tools for testing your own code (feature `testing`).
//!
//! * Migration chains, on *your* types: [`check_migration`] proves that arbitrary values of an
//!   old version migrate to a current value that validates and round-trips through both codecs;
//!   [`check_golden_corpus`] keeps committed old payloads decoding forever ([`write_golden`]
//!   writes them).
//! * Old values in a test store: [`plant_version`] writes a value of an older version, as the
//!   code of that time wrote it, so a test can read it through today's migration.
//! * KV as it behaves in production, deterministically: [`SimKv`] (locations, propagation delay,
//!   429s on writes faster than once a second per key, lazy expiry; [`SimConfig`],
//!   [`SimLocation`]) and [`SimObjects`] (the Durable Object code workerd runs, over memory).
//!   Both implement [`KvBackend`](crate::backend::KvBackend): hand them to [`Kv::new`](crate::Kv::new).

use std::path::Path;

use proptest::{
    strategy::Strategy,
    test_runner::{Config, TestCaseError, TestRunner},
};
use serde::Serialize;

pub use crate::backend::{
    object_sim::SimObjects,
    sim::{SimConfig, SimKv, SimLocation},
};
use crate::{
    envelope::{self, Codec, Header},
    error::{describe_json_error, Error, Result},
    schema,
    seal::FrameFields,
    store::TypedStore,
    versioned::{decode_value, encode_value, Versioned},
};

/// Far-future "now" is not used: helpers decode with `now = 0` so nothing is expired.
const NOW: u64 = 0;

/// For `cases` arbitrary values of version `version` (drawn from `old`), check that:
/// 1. the old value validates against its own version's schema (catches a bad strategy);
/// 2. written at `version` in each codec, it decodes as `T` (migrated, validated);
/// 3. the migrated value validates against `T`'s current schema;
/// 4. the migrated value round-trips through both codecs unchanged.
///
/// Panics with the failing case (proptest shrinks it) — it is meant to be called from a test.
pub fn check_migration<Old, T>(version: u32, old: impl Strategy<Value = Old>, cases: u32)
where
    Old: Serialize + std::fmt::Debug,
    T: Versioned + PartialEq + std::fmt::Debug,
{
    let mut runner = TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    });
    let result = runner.run(&old, |value| {
        check_one::<Old, T>(version, &value).map_err(TestCaseError::fail)
    });
    if let Err(e) = result {
        panic!("migration property failed for {} v{version}: {e}", T::NAME);
    }
}

fn check_one<Old: Serialize, T: Versioned + PartialEq + std::fmt::Debug>(
    version: u32,
    old: &Old,
) -> Result<(), String> {
    let as_json = serde_json::to_value(old).map_err(|e| format!("old value to JSON: {e}"))?;
    let old_validator = T::validator(version).map_err(|e| e.to_string())?;
    crate::schema::validate(old_validator, T::NAME, version, &as_json)
        .map_err(|e| format!("strategy produced a value invalid under its own schema: {e}"))?;
    let current_validator = T::validator(T::VERSION).map_err(|e| e.to_string())?;
    let mut first: Option<T> = None;
    for codec in [Codec::Json, Codec::Postcard] {
        let bytes = envelope::encode(codec, T::NAME, version, None, old)
            .map_err(|e| format!("encode old as {codec}: {e}"))?;
        let decoded = decode_value::<T>(&bytes, NOW, true)
            .map_err(|e| format!("decode v{version} {codec} as current: {e}"))?
            .ok_or("decoded as expired")?;
        let current = decoded.value;
        let json = serde_json::to_value(&current).map_err(|e| e.to_string())?;
        crate::schema::validate(current_validator, T::NAME, T::VERSION, &json)
            .map_err(|e| format!("migrated value fails the current schema: {e}"))?;
        for out_codec in [Codec::Json, Codec::Postcard] {
            let again = encode_value(&current, out_codec, None).map_err(|e| e.to_string())?;
            let back = decode_value::<T>(&again, NOW, true)
                .map_err(|e| format!("round trip through {out_codec}: {e}"))?
                .ok_or("round trip decoded as expired")?
                .value;
            if back != current {
                return Err(format!("round trip through {out_codec} changed the value"));
            }
        }
        match &first {
            None => first = Some(current),
            Some(f) if *f != current => {
                return Err("JSON and postcard migrations disagree".to_string())
            }
            Some(_) => {}
        }
    }
    Ok(())
}

/// Check every committed envelope in `dir` (files `*.json` or `*.bin`, any version, any
/// codec) still decodes as `T`. When a file `<name>.expected.json` sits next to `<name>.json`
/// or `<name>.bin`, the migrated value must equal it. Set `KV_ENVELOPE_BLESS=1` to (re)write
/// the `.expected.json` files from the current code. Returns how many envelopes were checked.
pub fn check_golden_corpus<T: Versioned + std::fmt::Debug>(dir: &Path) -> usize {
    let bless = std::env::var_os("KV_ENVELOPE_BLESS").is_some();
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("golden corpus {}: {e}", dir.display()))
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
            !name.ends_with(".expected.json") && (name.ends_with(".json") || name.ends_with(".bin"))
        })
        .collect();
    entries.sort();
    for path in &entries {
        let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let decoded = decode_value::<T>(&bytes, NOW, true)
            .unwrap_or_else(|e| panic!("{} no longer decodes as {}: {e}", path.display(), T::NAME))
            .unwrap_or_else(|| panic!("{} decoded as expired", path.display()));
        let got = serde_json::to_value(&decoded.value).expect("a decoded value serializes");
        let expected_path = path.with_extension("expected.json");
        if bless {
            let mut s = serde_json::to_string_pretty(&got).expect("serializable");
            s.push('\n');
            std::fs::write(&expected_path, s).expect("write expected file");
        } else if let Ok(text) = std::fs::read_to_string(&expected_path) {
            let expected: serde_json::Value = serde_json::from_str(&text)
                .unwrap_or_else(|e| panic!("{}: {e}", expected_path.display()));
            assert_eq!(
                got,
                expected,
                "{} migrates to a different value than {}",
                path.display(),
                expected_path.display()
            );
        }
    }
    entries.len()
}

/// Write one golden envelope of `value` at `version` in `codec` to `dir/<name>.{json,bin}`
/// (for building a corpus; never expires).
pub fn write_golden<V: Serialize>(
    dir: &Path,
    name: &str,
    type_name: &'static str,
    version: u32,
    codec: Codec,
    value: &V,
) -> std::io::Result<std::path::PathBuf> {
    let bytes = envelope::encode(codec, type_name, version, None, value)
        .map_err(|e| std::io::Error::other(e.to_string()))?;
    let ext = match codec {
        Codec::Json => "json",
        Codec::Postcard => "bin",
    };
    std::fs::create_dir_all(dir)?;
    let path = dir.join(format!("{name}.{ext}"));
    std::fs::write(&path, bytes)?;
    Ok(path)
}

/// Store `old` under `id` in `store` as version `version` of `T` — the bytes code of that time
/// wrote: the store's prefix, codec and key ring, the exact expiry `ttl` from now, the header
/// copy in KV metadata. A fixture for what today's migration does to values already in KV:
///
/// ```
/// # use kv_envelope::{testing::plant_version, Kv, MemoryKv, TypedStore};
/// # #[derive(Debug, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
/// # struct ProfileV1 { name: String }
/// # #[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
/// # struct Profile { name: String, language: String }
/// # impl From<ProfileV1> for Profile {
/// #     fn from(v1: ProfileV1) -> Self { Profile { name: v1.name, language: "en".into() } }
/// # }
/// # kv_envelope::versioned! { name: "profile", versions: [ProfileV1, Profile] }
/// # futures::executor::block_on(async {
/// let store: TypedStore<Profile> = TypedStore::new(Kv::new(MemoryKv::default()));
/// plant_version(&store, "ada", 1, &ProfileV1 { name: "Ada".into() }, None).await?;
/// let read = store.get("ada").await?.expect("migrated on read");
/// assert_eq!(read, Profile { name: "Ada".into(), language: "en".into() });
/// # Ok::<(), kv_envelope::Error>(())
/// # }).unwrap();
/// ```
///
/// `version` must be one of `1..=T::VERSION` and `old` must validate against its schema: a
/// fixture the read would refuse is refused here ([`Error::InvalidValue`] with the issues).
/// It writes over whatever `id` holds.
pub async fn plant_version<T: Versioned, Old: Serialize>(
    store: &TypedStore<T>,
    id: &str,
    version: u32,
    old: &Old,
    ttl: Option<std::time::Duration>,
) -> Result<()> {
    if !(1..=T::VERSION).contains(&version) {
        return Err(Error::UnknownVersion {
            type_name: T::NAME,
            version,
        });
    }
    let json = serde_json::to_value(old).map_err(|e| Error::Encode {
        type_name: T::NAME,
        reason: describe_json_error(&e),
    })?;
    match schema::validate(T::validator(version)?, T::NAME, version, &json) {
        Err(Error::Validation { issues, .. }) => {
            return Err(Error::InvalidValue {
                type_name: T::NAME,
                version,
                issues,
            })
        }
        other => other?,
    }
    let key = store.key(id);
    let expires_at = ttl.map(|t| store.expires_in(t));
    let codec = store.codec();
    let bytes = match store.key_ring() {
        None => envelope::encode(codec, T::NAME, version, expires_at, old)?,
        Some(ring) => {
            let plaintext = envelope::encode_payload(codec, T::NAME, old)?;
            let frame = FrameFields {
                codec,
                type_name: T::NAME,
                version,
                expires_at,
            };
            ring.seal(&key, frame, plaintext)?
        }
    };
    let header = Header {
        codec,
        type_name: T::NAME.into(),
        version,
        expires_at,
        key_id: store.key_ring().map(|r| r.primary_id().into()),
    };
    store
        .kv()
        .put(&key, &bytes, expires_at, Some(header.to_metadata()))
        .await
}
