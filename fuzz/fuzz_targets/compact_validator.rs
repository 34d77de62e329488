//! The in-crate validator (`kv-envelope-validator`) against jsonschema (`schema::compile`) on
//! arbitrary JSON. The first byte picks a schema: every shipped one, one using every keyword the
//! compact validator supports, or (from 0xC0 on) a generated document of embedded resources,
//! anchors and nested references (`kv_envelope_validator::maze`, built from as many of the next bytes as the
//! byte after the pick says). The rest is parsed as a payload. Wherever both compile a schema
//! they must agree, the compact validator must report issues exactly when it refuses, and
//! nothing may panic, compiling included.
#![no_main]

use std::sync::OnceLock;

use kv_envelope::schema;
use kv_envelope_validator::{self as compact, maze, Document};
use libfuzzer_sys::fuzz_target;
use serde_json::{json, Value};

fn schemas() -> &'static [(compact::Validator, schema::Validator)] {
    static SCHEMAS: OnceLock<Vec<(compact::Validator, schema::Validator)>> = OnceLock::new();
    SCHEMAS.get_or_init(|| {
        let mut all: Vec<Value> = kv_envelope::export::shipped_schema_files()
            .into_iter()
            .map(|(_, s)| s)
            .collect();
        all.push(json!({
            "type": ["object", "array", "string", "number", "null", "boolean"],
            "properties": {
                "id": {"type": "integer", "minimum": -5, "maximum": 255},
                "email": {"format": "email", "maxLength": 12, "minLength": 3},
                "a": {"enum": [1, "x", null, [1], {"a": 1.5}]},
                "b": {"const": {"a": [1, 2]}},
                "t": {"format": "date-time"},
                "u": {"format": "uuid"},
                "d": {"anyOf": [{"format": "date"}, {"format": "time"}, {"format": "ipv6"}]},
                "r": {"$ref": "#/$defs/tree"},
            },
            "required": ["id"],
            "minProperties": 1,
            "maxProperties": 4,
            "additionalProperties": {"not": {"type": "string", "format": "ipv4"}},
            "items": {"anyOf": [{"type": "string", "minLength": 2}, {"exclusiveMaximum": 0}]},
            "prefixItems": [{"oneOf": [{"type": "integer"}, {"minimum": 1.5}]}],
            "uniqueItems": true,
            "maxItems": 5,
            "minLength": 1,
            "exclusiveMinimum": -1e10,
            "allOf": [{"not": {"const": 7}}],
            "$defs": {
                "tree": {
                    "type": "object",
                    "properties": {"c": {"type": "array", "items": {"$ref": "#/$defs/tree"}}},
                    "additionalProperties": false,
                }
            }
        }));
        all.iter()
            .map(|s| {
                (
                    compact::Validator::compile(s).expect("compact compiles"),
                    schema::compile("fuzz", 1, s).expect("jsonschema compiles"),
                )
            })
            .collect()
    })
}

/// Picks from here on generate the schema.
const MAZE: u8 = 0xC0;

fuzz_target!(|data: &[u8]| {
    let Some((&pick, payload)) = data.split_first() else {
        return;
    };
    if pick >= MAZE {
        return generated(payload);
    }
    let all = schemas();
    let (ours, theirs) = &all[pick as usize % all.len()];
    let Ok(doc) = Document::parse(payload) else {
        return;
    };
    let valid = ours.is_valid(doc.root());
    assert_eq!(theirs.engine(), "jsonschema");
    assert_eq!(
        valid,
        theirs.is_valid_document(&doc),
        "compact and jsonschema disagree"
    );
    assert_eq!(ours.issues(doc.root(), 16).is_empty(), valid);
});

/// A generated schema: both compile it (a refusal is fine, a panic is not); where both do, they
/// agree on the payload and on the values the generator's constraints tell apart.
fn generated(data: &[u8]) {
    let Some((&len, rest)) = data.split_first() else {
        return;
    };
    let (bytes, payload) = rest.split_at(usize::from(len).min(rest.len()));
    let schema = maze::reference_maze(bytes);
    let theirs = schema::compile("fuzz", 1, &schema);
    let (Ok(ours), Ok(theirs)) = (compact::Validator::compile(&schema), theirs) else {
        return;
    };
    let check = |doc: &Document<'_>| {
        let valid = ours.is_valid(doc.root());
        assert_eq!(
            valid,
            theirs.is_valid_document(doc),
            "compact and jsonschema disagree on {schema}"
        );
        assert_eq!(ours.issues(doc.root(), 16).is_empty(), valid);
    };
    for value in maze::values() {
        check(&Document::from_serialize(&value).expect("a small value"));
    }
    if let Ok(doc) = Document::parse(payload) {
        check(&doc);
    }
}
