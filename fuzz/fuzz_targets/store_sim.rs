//! Typed-store reads and writes over the KV simulator (three locations, stale reads, 429s,
//! faults, lazy expiry), with hostile bytes planted under some keys. Never panics; never serves
//! a value past its envelope expiry; never overwrites a value it cannot read or a newer version;
//! fails only with errors a caller is told to expect.
#![no_main]

use std::{collections::BTreeMap, sync::Arc, time::Duration};

use arbitrary::Arbitrary;
use futures::executor::block_on;
use kv_envelope::{
    envelope,
    session::SessionRecord,
    testing::{SimConfig, SimKv},
    Clock, Codec, ManualClock, Overwrite, TypedStore,
};
use libfuzzer_sys::fuzz_target;

const T0: u64 = 1_764_000_000_000;

#[derive(Arbitrary, Debug)]
enum Op {
    /// Raw bytes under a key, visible everywhere (hostile data already in KV).
    Plant {
        key: u8,
        bytes: Vec<u8>,
    },
    /// A well-formed envelope at any version (4+ is newer than this code).
    PlantVersion {
        key: u8,
        version: u8,
        postcard: bool,
    },
    Get {
        loc: u8,
        key: u8,
    },
    Put {
        loc: u8,
        key: u8,
        ttl_secs: u16,
        allow_corrupt: bool,
    },
    Delete {
        loc: u8,
        key: u8,
    },
    Advance {
        ms: u32,
    },
}

#[derive(Arbitrary, Debug)]
struct Input {
    seed: u64,
    faults: bool,
    postcard: bool,
    ops: Vec<Op>,
}

fn session(now: u64, ttl_ms: u64) -> SessionRecord {
    SessionRecord {
        user_id: "u".into(),
        email: "u@example.com".into(),
        created_at: now,
        expires_at: now + ttl_ms,
        absolute_expires_at: now + ttl_ms,
        refreshed_at: now,
        roles: vec![],
    }
}

fuzz_target!(|input: Input| {
    let clock = ManualClock::new(T0);
    let config = SimConfig::default().with_fault_rate(if input.faults { 0.1 } else { 0.0 });
    let sim = SimKv::new(input.seed, config, Arc::new(clock.clone()));
    let codec = if input.postcard {
        Codec::Postcard
    } else {
        Codec::Json
    };
    let stores: Vec<TypedStore<SessionRecord>> = (0..sim.locations())
        .map(|i| TypedStore::new(sim.kv(i)).with_codec(codec))
        .collect();
    // Keys whose newest write is planted bytes, and those bytes.
    let mut planted: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    for op in input.ops.iter().take(64) {
        let now = clock.now_ms();
        match op {
            Op::Plant { key, bytes } => {
                let k = stores[0].key(&key.to_string());
                sim.insert_raw(&k, bytes.clone(), None);
                planted.insert(k, bytes.clone());
            }
            Op::PlantVersion {
                key,
                version,
                postcard,
            } => {
                let k = stores[0].key(&key.to_string());
                let c = if *postcard {
                    Codec::Postcard
                } else {
                    Codec::Json
                };
                // v3 is readable; v0 is invalid; v1/v2 get the v3 shape (fails their schema);
                // v4+ is newer than this code.
                let bytes = envelope::encode(
                    c,
                    "session",
                    u32::from(*version),
                    None,
                    &session(now, 3_600_000),
                )
                .expect("encode");
                sim.insert_raw(&k, bytes.clone(), None);
                planted.insert(k, bytes);
            }
            Op::Get { loc, key } => {
                let store = &stores[usize::from(*loc) % stores.len()];
                match block_on(store.get_entry(&key.to_string())) {
                    Ok(Some(d)) => assert!(
                        d.expires_at.is_none_or(|e| e > now),
                        "served an expired value"
                    ),
                    Ok(None) => {}
                    Err(e) => {
                        let _ = e.to_string();
                    }
                }
            }
            Op::Put {
                loc,
                key,
                ttl_secs,
                allow_corrupt,
            } => {
                let store = &stores[usize::from(*loc) % stores.len()];
                let ttl = u64::from(*ttl_secs).max(1) * 1000;
                let overwrite = if *allow_corrupt {
                    Overwrite::AllowCorrupt
                } else {
                    Overwrite::Safe
                };
                let r = block_on(store.put_until(
                    &key.to_string(),
                    &session(now, ttl),
                    Some(now + ttl),
                    overwrite,
                ));
                if let Err(e) = &r {
                    assert!(
                        matches!(e.kind(), "rate_limited" | "backend" | "future_version")
                            || e.is_corrupt(),
                        "unexpected put error {e:?}"
                    );
                }
                let k = store.key(&key.to_string());
                if let Some(bytes) = planted.get(&k) {
                    // What the store must make of the planted bytes now.
                    let verdict = kv_envelope::decode_value::<SessionRecord>(bytes, now, true);
                    let keep = match &verdict {
                        Err(kv_envelope::Error::FutureVersion { .. }) => true,
                        Err(e) => e.protects_stored_value() && !*allow_corrupt,
                        Ok(_) => false,
                    };
                    if keep {
                        assert_eq!(
                            sim.central(&k).map(|s| s.value).as_ref(),
                            Some(bytes),
                            "overwrote a value it must keep"
                        );
                    } else if r.is_ok() {
                        planted.remove(&k);
                    }
                }
            }
            Op::Delete { loc, key } => {
                let store = &stores[usize::from(*loc) % stores.len()];
                if block_on(store.delete(&key.to_string())).is_ok() {
                    planted.remove(&store.key(&key.to_string()));
                }
            }
            Op::Advance { ms } => clock.advance(Duration::from_millis(u64::from(*ms % 120_000))),
        }
    }
});
