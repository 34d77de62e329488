//! The profile's migration, tested natively: any v1 profile reads as a valid v2 one, in both
//! codecs, and a v1 value planted in a store reads migrated.
use kv_envelope::{testing, Kv, MemoryKv, TypedStore};
use kv_envelope_minimal_worker::{Profile, ProfileV1};
use proptest::prelude::*;

#[test]
fn every_v1_profile_migrates_to_a_valid_v2() {
    let v1 = "[^\u{0}]{0,40}".prop_map(|name| ProfileV1 { name });
    testing::check_migration::<ProfileV1, Profile>(1, v1, 256);
}

#[test]
fn a_planted_v1_profile_reads_as_v2() {
    futures::executor::block_on(async {
        let store: TypedStore<Profile> = TypedStore::new(Kv::new(MemoryKv::default()));
        let v1 = ProfileV1 { name: "Ada".into() };
        testing::plant_version(&store, "ada", 1, &v1, None)
            .await
            .unwrap();
        let read = store.get("ada").await.unwrap();
        assert_eq!(
            read,
            Some(Profile {
                name: "Ada".into(),
                language: "en".into()
            })
        );
    });
}
