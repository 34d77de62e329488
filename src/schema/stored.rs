//! Schemas of what other services find in KV: a whole stored value of one type (header and
//! payload of every readable version, in one self-contained schema) and the KV metadata copy of
//! the header.
//!
//! These are export-only: reads check the header in code and validate the payload against the
//! per-version schema, never against these. They still stay inside the vocabulary of the compact
//! validator (`$id` only at the root; no `if`/`then`), so the differential test holds them to the
//! jsonschema crate like every shipped schema.
//!
//! The payload is bound to `v` by one implication per version, "`v` is not n, or `data` follows
//! `$defs/vn`" (`anyOf` of a `not`/`const` and a `$ref`), all under `allOf`: what `if`/`then`
//! says, in keywords the compact validator has. Unlike a `oneOf` of per-version objects, only the
//! stored version's branch fails on a bad payload, so validators report the payload's own
//! violations (`/data/email: format`) instead of every version's.

use serde_json::{json, Map, Value};

use super::portable::{for_each_subschema, make_portable_value};
use crate::envelope::JSON_FORMAT;

/// The draft every schema here declares.
const DRAFT: &str = "https://json-schema.org/draft/2020-12/schema";

/// The JSON Schema of the JSON envelope itself (the `data` field is any JSON value; its schema
/// is the one of the (type, version) named by `type` and `v`).
pub fn envelope_schema() -> Value {
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "kv-envelope/envelope.schema.json",
        "title": "KvEnvelope",
        "description": "A value stored in Workers KV by kv-envelope with the JSON codec. The payload in `data` follows the schema `<type>.v<v>.schema.json`.",
        "type": "object",
        "required": ["kv", "type", "v", "data"],
        "properties": {
            "kv": { "description": "Envelope format version.", "const": 1 },
            "type": { "description": "Stable type name.", "type": "string", "minLength": 1 },
            "v": { "description": "Schema version of `data` (starts at 1).", "type": "integer", "minimum": 1, "maximum": 4294967295u64 },
            "exp": {
                "description": "Absolute expiry in milliseconds since the Unix epoch; null or absent: never expires.",
                "type": ["integer", "null"],
                "minimum": 0
            },
            "data": { "description": "The payload." }
        }
    })
}

/// File name of the whole-value schema of `type_name`: `<type>.envelope.schema.json`.
pub fn envelope_schema_file_name(type_name: &str) -> String {
    format!("{type_name}.envelope.schema.json")
}

/// The whole-value schema of `type_name` from its (version, payload schema) list
/// ([`crate::export::envelope_schema_of`] for a [`Versioned`](crate::Versioned) type).
pub fn whole_value_schema(
    type_name: &str,
    versions: impl IntoIterator<Item = (u32, Value)>,
) -> Value {
    let mut defs = Map::new();
    let mut numbers = Vec::new();
    let mut branches = Vec::new();
    for (version, mut payload) in versions {
        let key = format!("v{version}");
        if let Value::Object(map) = &mut payload {
            // Only a document's root declares its draft and identity (a `$id` below it would
            // start a new base URI, and the compact validator refuses one).
            map.remove("$schema");
            map.remove("$id");
            rebase_refs(map, &format!("/$defs/{key}"));
        }
        defs.insert(key.clone(), payload);
        numbers.push(version);
        branches.push(json!({
            "description": format!("When `v` is {version}, `data` follows `$defs/{key}`."),
            "anyOf": [
                { "properties": { "v": { "not": { "const": version } } } },
                { "properties": { "data": { "$ref": format!("#/$defs/{key}") } } }
            ]
        }));
    }
    let listed = numbers
        .iter()
        .map(|v| format!("v{v}"))
        .collect::<Vec<_>>()
        .join(", ");
    let mut schema = json!({
        "$schema": DRAFT,
        "$id": format!("kv-envelope/{}", envelope_schema_file_name(type_name)),
        "title": format!("{type_name} (stored value)"),
        "description": format!(
            "A `{type_name}` value as kv-envelope stores it in Workers KV with the JSON codec, at any version this code reads ({listed}). `data` follows `$defs/v<v>`, the schema of `{type_name}.v<v>.schema.json`."
        ),
        "type": "object",
        "required": ["kv", "type", "v", "data"],
        "properties": {
            "kv": { "description": "Envelope format version.", "const": JSON_FORMAT },
            "type": { "description": "Stable type name.", "const": type_name },
            "v": { "description": "Schema version of `data`.", "enum": numbers },
            "exp": {
                "description": "Absolute expiry in milliseconds since the Unix epoch; null or absent: never expires. A value whose `exp` is not after now is a miss.",
                "type": ["integer", "null"],
                "minimum": 0,
                "maximum": u64::MAX
            },
            "data": { "description": "The payload, at version `v`." }
        },
        "allOf": branches,
        "$defs": defs
    });
    // The payload schemas are portable already; this keeps the promise for anything added here.
    make_portable_value(&mut schema);
    schema
}

/// Point every local `$ref` of a schema that moves to `base` (a JSON pointer) at its new place:
/// `#` → `#<base>`, `#/$defs/X` → `#<base>/$defs/X`.
fn rebase_refs(map: &mut Map<String, Value>, base: &str) {
    if let Some(Value::String(target)) = map.get_mut("$ref") {
        if let Some(pointer) = target.strip_prefix('#') {
            *target = format!("#{base}{pointer}");
        }
    }
    for_each_subschema(map, &mut |sub| rebase_refs(sub, base));
}

/// The JSON Schema of the KV metadata every write stores next to the value
/// ([`Header::to_metadata`](crate::envelope::Header::to_metadata)), so `list` can report types, versions
/// and expiries without reads: `{"t":"session","v":3,"c":"json","e":1764000000000}`. Generated
/// from the struct the metadata is (de)serialized with.
pub fn metadata_schema() -> Value {
    let mut schema = super::schema_of::<crate::envelope::Metadata<'static>>();
    if let Value::Object(map) = &mut schema {
        map.insert("$id".to_string(), json!("kv-envelope/metadata.schema.json"));
    }
    schema
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::whole_value_schema;

    #[test]
    fn payload_refs_follow_the_payload_into_defs() {
        let payload = json!({
            "$schema": super::DRAFT,
            "type": "object",
            "properties": {
                "kind": {"$ref": "#/$defs/Kind"},
                "child": {"$ref": "#"},
                "link": {"$ref": "https://example.com/other.json"},
                "note": {"const": {"$ref": "#/data"}}
            },
            "$defs": {"Kind": {"anyOf": [{"$ref": "#/$defs/Kind"}, {"type": "null"}]}}
        });
        let schema = whole_value_schema("t", [(2, payload)]);
        let v2 = &schema["$defs"]["v2"];
        assert_eq!(v2.get("$schema"), None);
        assert_eq!(v2["properties"]["kind"]["$ref"], "#/$defs/v2/$defs/Kind");
        assert_eq!(v2["properties"]["child"]["$ref"], "#/$defs/v2");
        assert_eq!(
            v2["properties"]["link"]["$ref"],
            "https://example.com/other.json"
        );
        // Data is left alone.
        assert_eq!(v2["properties"]["note"]["const"]["$ref"], "#/data");
        assert_eq!(
            v2["$defs"]["Kind"]["anyOf"][0]["$ref"],
            "#/$defs/v2/$defs/Kind"
        );
        assert_eq!(schema["properties"]["v"]["enum"], json!([2]));
        let branch = &schema["allOf"][0]["anyOf"];
        assert_eq!(branch[0]["properties"]["v"]["not"]["const"], json!(2));
        assert_eq!(branch[1]["properties"]["data"]["$ref"], "#/$defs/v2");
    }
}
