//! The cases of `benches/ratios.rs` that need this tree's internals: the parts of a validated
//! read (for profiles) and the crate's own schema compile. `scripts/bench.sh` swaps in a stub
//! (every case `None`) to build the driver against an older commit.

use std::hint::black_box;

use kv_envelope::{schema::instance::Document, session::Session, Versioned};
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

/// What `Session::warm_up` pays per version.
pub fn schema_compile() -> Option<Box<dyn FnMut()>> {
    let schema = Session::schema(3)?;
    Some(Box::new(move || {
        black_box(kv_envelope::schema::compile("session", 3, black_box(&schema)).unwrap());
    }))
}
