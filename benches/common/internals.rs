//! The cases of `benches/ratios.rs` that need this tree's internals or newer API: the parts of a
//! validated read (for profiles), the crate's own schema compile, sealed reads and writes, and
//! cache reads served by the isolate-memory tier.
//! `scripts/bench.sh` swaps in a stub (every case `None`) to build the driver against an older
//! commit.

use std::hint::black_box;

use kv_envelope::{
    __internal::{decode_value_in, encode_value_in},
    session::SessionRecord,
    Codec, KeyRing, SealingKey, Versioned,
};
use kv_envelope_validator::Document;
use serde::{de::DeserializeOwned, Serialize};

/// `part/...` cases of a value type; `payload` is its plain JSON.
pub fn value_case<T>(what: &str, value: T, payload: Vec<u8>) -> Option<Box<dyn FnMut()>>
where
    T: Versioned + Serialize + DeserializeOwned,
{
    Some(match what {
        "part/parse_document" => Box::new(move || {
            black_box(Document::parse(black_box(&payload)).unwrap());
        }),
        "part/validate_document" => {
            let validator = T::validator(T::VERSION).unwrap();
            let doc = Document::parse(&payload).unwrap().to_value();
            let doc = Document::from_serialize(&doc).unwrap();
            Box::new(move || {
                black_box(validator.is_valid_document(black_box(&doc)));
            })
        }
        "part/deserialize_document" => {
            let value = serde_json::from_slice::<serde_json::Value>(&payload).unwrap();
            let doc = Document::from_serialize(&value).unwrap();
            Box::new(move || {
                black_box(T::deserialize(black_box(&doc).root()).unwrap());
            })
        }
        "part/serialize_document" => Box::new(move || {
            black_box(Document::from_serialize(black_box(&value)).unwrap());
        }),
        _ => return None,
    })
}

/// What `SessionRecord::warm_up` pays per version.
pub fn schema_compile() -> Option<Box<dyn FnMut()>> {
    let schema = SessionRecord::schema(3)?;
    Some(Box::new(move || {
        black_box(kv_envelope::schema::compile("session", 3, black_box(&schema)).unwrap());
    }))
}

/// `read/<codec>_sealed` and `write/<codec>_sealed` of a value type: validated reads (compare
/// with `read/<codec>_validated`) and writes of values sealed with AES-256-GCM for a 40-byte
/// KV key, as a store with a key ring does them.
pub fn sealed_case<T>(what: &str, value: T, now: u64) -> Option<Box<dyn FnMut()>>
where
    T: Versioned + Serialize + DeserializeOwned,
{
    const KV_KEY: &str = "session:0123456789abcdef0123456789abcdef";
    let ring = KeyRing::new(vec![SealingKey::from_bytes("k1", &[7; 32]).unwrap()]).unwrap();
    let codec = match what.split('/').nth(1)? {
        "json_sealed" => Codec::Json,
        "postcard_sealed" => Codec::Postcard,
        _ => return None,
    };
    let sealed = encode_value_in(&value, codec, Some(now + 60_000), Some(&ring), KV_KEY).unwrap();
    Some(match what.split('/').next()? {
        "read" => Box::new(move || {
            black_box(
                decode_value_in::<T>(black_box(&sealed), Some(&ring), KV_KEY, now, true).unwrap(),
            );
        }),
        "write" => Box::new(move || {
            black_box(
                encode_value_in(black_box(&value), codec, Some(now), Some(&ring), KV_KEY).unwrap(),
            );
        }),
        _ => return None,
    })
}

/// `l1/<what>` of a cached value (`cache_2k/l1/...`): a `KvCache::get` served by the
/// isolate-memory tier (`hit`: the value, cloned; `hit_json`: `get_json`, the shared JSON
/// text), and the same `get` read from `MemoryKv` with the tier off (`kv_hit`: decode and
/// validate per call) to compare with. A manual clock that never moves keeps the entry in
/// memory for the whole run; each call asserts that it came from where it should.
pub fn memory_tier_case<T>(what: &str, value: T, now: u64) -> Option<Box<dyn FnMut()>>
where
    T: Versioned + Clone + Send + Sync,
{
    use std::sync::Arc;

    use futures::executor::block_on;
    use kv_envelope::{
        cache::{CachePolicy, CacheState, KvCache, MemoryTier},
        Kv, ManualClock, MemoryKv,
    };

    let clock = Arc::new(ManualClock::new(now));
    let kv = Kv::new(MemoryKv::new(clock.clone())).with_clock(clock);
    let cache =
        KvCache::<T>::new(kv).with_state(CacheState::with_memory_tier(MemoryTier::default()));
    block_on(cache.put("popular", &value, &CachePolicy::QUERY_CACHE)).unwrap();
    block_on(cache.get("popular")).unwrap();
    block_on(cache.get_json("popular")).unwrap();
    Some(match what {
        "hit" => Box::new(move || {
            let c = block_on(cache.get(black_box("popular"))).unwrap().unwrap();
            assert!(c.from_memory);
            black_box(c);
        }),
        "hit_json" => Box::new(move || {
            let c = block_on(cache.get_json(black_box("popular")))
                .unwrap()
                .unwrap();
            assert!(c.from_memory);
            black_box(c);
        }),
        "kv_hit" => {
            let cache = cache.with_memory_tier(false);
            Box::new(move || {
                let c = block_on(cache.get(black_box("popular"))).unwrap().unwrap();
                assert!(!c.from_memory);
                black_box(c);
            })
        }
        _ => return None,
    })
}
