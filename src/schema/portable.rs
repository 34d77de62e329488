//! The one transform every generated schema goes through, so that the schema validated in Rust
//! is byte for byte the one other services compile.
//!
//! schemars names Rust's numeric types in `format` (`uint64`, `int32`, `double`, …). Those are
//! not formats of draft 2020-12: both Rust validators ignore them, and Ajv in its default strict
//! mode refuses the whole schema ("unknown format"). [`Portable`] says the same thing in
//! standard keywords: an integer width becomes `minimum`/`maximum` (a tighter bound already in
//! the schema is kept), a float width is dropped (every finite JSON number is an `f64`, and
//! nothing checks `f32` rounding), and so is any other format outside the draft's list (neither
//! Rust validator asserts one, so dropping it changes no verdict). Standard formats (`email`,
//! `uuid`, `date-time`, …) stay.

use std::cmp::Ordering;

use schemars::{transform::Transform, Schema};
use serde_json::{Map, Number, Value};

/// The schemars [`Transform`] applied to every schema this crate generates
/// ([`schema_of`](super::schema_of), hence [`Versioned::schema`](crate::Versioned::schema), the
/// exported files and the CLI's `schemas export`): non-standard `format`s become standard
/// keywords. Add it to your own [`schemars::generate::SchemaSettings`] with `with_transform` to
/// get the same output for schemas you generate yourself.
///
/// ```
/// use kv_envelope::schema::Portable;
/// use schemars::{generate::SchemaSettings, JsonSchema};
///
/// #[derive(JsonSchema)]
/// struct Counter { hits: u32 }
///
/// let schema = SchemaSettings::draft2020_12()
///     .with_transform(Portable)
///     .into_generator()
///     .into_root_schema_for::<Counter>();
/// assert_eq!(
///     schema.as_value()["properties"]["hits"],
///     serde_json::json!({ "type": "integer", "minimum": 0, "maximum": 4294967295u32 }),
/// );
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct Portable;

impl Transform for Portable {
    fn transform(&mut self, schema: &mut Schema) {
        if let Some(map) = schema.as_object_mut() {
            make_portable(map);
        }
    }
}

/// [`Portable`] on a schema held as a plain JSON value (a boolean schema is left as it is).
pub fn make_portable_value(schema: &mut Value) {
    if let Value::Object(map) = schema {
        make_portable(map);
    }
}

/// The formats of draft 2020-12 (its format vocabulary): these keep their meaning everywhere.
const STANDARD_FORMATS: &[&str] = &[
    "date-time",
    "date",
    "time",
    "duration",
    "email",
    "idn-email",
    "hostname",
    "idn-hostname",
    "ipv4",
    "ipv6",
    "uri",
    "uri-reference",
    "iri",
    "iri-reference",
    "uuid",
    "uri-template",
    "json-pointer",
    "relative-json-pointer",
    "regex",
];

/// The range an integer format stands for. `int`/`uint` (`isize`/`usize`) get the 64-bit range
/// whatever the target: the schema is the same on every platform, and a 32-bit bound would
/// refuse values a native reader decodes. 128-bit widths get none: their bounds are not exact as
/// JSON numbers in `serde_json`, `f64` or JavaScript.
fn integer_range(format: &str) -> Option<(i128, i128)> {
    let range = match format {
        "int8" => (i8::MIN.into(), i8::MAX.into()),
        "int16" => (i16::MIN.into(), i16::MAX.into()),
        "int32" => (i32::MIN.into(), i32::MAX.into()),
        "int64" | "int" => (i64::MIN.into(), i64::MAX.into()),
        "uint8" => (0, u8::MAX.into()),
        "uint16" => (0, u16::MAX.into()),
        "uint32" => (0, u32::MAX.into()),
        "uint64" | "uint" => (0, u64::MAX.into()),
        _ => return None,
    };
    Some(range)
}

fn make_portable(map: &mut Map<String, Value>) {
    if let Some(Value::String(format)) = map.get("format") {
        if !STANDARD_FORMATS.contains(&format.as_str()) {
            let range = integer_range(format);
            map.remove("format");
            if let Some((lo, hi)) = range {
                tighten(map, "minimum", "exclusiveMinimum", lo, Ordering::Greater);
                tighten(map, "maximum", "exclusiveMaximum", hi, Ordering::Less);
            }
        }
    }
    for_each_subschema(map, &mut |sub| make_portable(sub));
}

/// Set the inclusive bound `key` to `bound` unless the schema already bounds at least as
/// tightly (`tighter` is the ordering of a tighter bound against `bound`).
fn tighten(
    map: &mut Map<String, Value>,
    key: &str,
    exclusive: &str,
    bound: i128,
    tighter: Ordering,
) {
    let at_least_as_tight = |v: Option<&Value>| match v {
        Some(Value::Number(n)) => cmp_exact(n, bound) != tighter.reverse(),
        // Not a number: a malformed schema, which the validators will report; leave it.
        Some(_) => true,
        None => false,
    };
    if at_least_as_tight(map.get(key)) || at_least_as_tight(map.get(exclusive)) {
        return;
    }
    let number = match (u64::try_from(bound), i64::try_from(bound)) {
        (Ok(u), _) => Number::from(u),
        (_, Ok(i)) => Number::from(i),
        // Every range above is within 64 bits.
        _ => return,
    };
    map.insert(key.to_string(), Value::Number(number));
}

/// `n` against `i` without rounding integers through `f64`.
fn cmp_exact(n: &Number, i: i128) -> Ordering {
    if let Some(u) = n.as_u64() {
        return i128::from(u).cmp(&i);
    }
    if let Some(s) = n.as_i64() {
        return i128::from(s).cmp(&i);
    }
    let f = n.as_f64().unwrap_or(0.0);
    let floor = f.floor();
    // The cast saturates, which keeps the order: `i` is within 64 bits.
    match (floor as i128).cmp(&i) {
        Ordering::Equal if f > floor => Ordering::Greater,
        o => o,
    }
}

/// Call `f` on every subschema object of `map` (one level down), through every applicator of
/// draft 2020-12 and `$defs`/`definitions`. Values of `const`, `enum`, `default` and
/// `examples` are data, not schemas, and are not visited.
pub(crate) fn for_each_subschema(
    map: &mut Map<String, Value>,
    f: &mut dyn FnMut(&mut Map<String, Value>),
) {
    for (keyword, value) in map.iter_mut() {
        match keyword.as_str() {
            "not"
            | "if"
            | "then"
            | "else"
            | "contains"
            | "additionalProperties"
            | "propertyNames"
            | "additionalItems"
            | "unevaluatedItems"
            | "unevaluatedProperties"
            | "contentSchema" => {
                if let Value::Object(sub) = value {
                    f(sub);
                }
            }
            // `items` may be an array only in older drafts; both forms hold schemas.
            "allOf" | "anyOf" | "oneOf" | "prefixItems" | "items" => match value {
                Value::Array(list) => {
                    for item in list {
                        if let Value::Object(sub) = item {
                            f(sub);
                        }
                    }
                }
                Value::Object(sub) => f(sub),
                _ => {}
            },
            "properties" | "patternProperties" | "$defs" | "definitions" | "dependentSchemas" => {
                if let Value::Object(members) = value {
                    for member in members.values_mut() {
                        if let Value::Object(sub) = member {
                            f(sub);
                        }
                    }
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::make_portable_value;

    fn portable(mut schema: serde_json::Value) -> serde_json::Value {
        make_portable_value(&mut schema);
        schema
    }

    #[test]
    fn integer_widths_become_bounds() {
        assert_eq!(
            portable(json!({"type": "integer", "format": "uint64", "minimum": 0})),
            json!({"type": "integer", "minimum": 0, "maximum": u64::MAX})
        );
        assert_eq!(
            portable(json!({"type": "integer", "format": "int64"})),
            json!({"type": "integer", "minimum": i64::MIN, "maximum": i64::MAX})
        );
        assert_eq!(
            portable(json!({"type": ["integer", "null"], "format": "int32"})),
            json!({"type": ["integer", "null"], "minimum": i32::MIN, "maximum": i32::MAX})
        );
        assert_eq!(
            portable(json!({"type": "integer", "format": "uint"})),
            json!({"type": "integer", "minimum": 0, "maximum": u64::MAX})
        );
    }

    #[test]
    fn tighter_bounds_are_kept() {
        // `#[schemars(range(min = 1, max = 10))]` on a u32.
        assert_eq!(
            portable(json!({"format": "uint32", "minimum": 1, "maximum": 10})),
            json!({"minimum": 1, "maximum": 10})
        );
        // A looser hand-written bound gives way to the width.
        assert_eq!(
            portable(json!({"format": "uint8", "minimum": -5, "maximum": 1000.5})),
            json!({"minimum": 0, "maximum": 255})
        );
        // A fractional bound inside the range is tighter.
        assert_eq!(
            portable(json!({"format": "int8", "minimum": -3, "maximum": 3.5})),
            json!({"minimum": -3, "maximum": 3.5})
        );
        // An exclusive bound as tight as the width needs no inclusive one.
        assert_eq!(
            portable(json!({"format": "uint16", "exclusiveMinimum": 0, "exclusiveMaximum": 65535})),
            json!({"exclusiveMinimum": 0, "exclusiveMaximum": 65535})
        );
        assert_eq!(
            portable(json!({"format": "uint16", "exclusiveMinimum": -1})),
            json!({"exclusiveMinimum": -1, "minimum": 0, "maximum": 65535})
        );
    }

    #[test]
    fn float_and_unknown_formats_go_standard_ones_stay() {
        assert_eq!(
            portable(json!({"type": "number", "format": "double"})),
            json!({"type": "number"})
        );
        assert_eq!(
            portable(json!({"type": "number", "format": "float"})),
            json!({"type": "number"})
        );
        assert_eq!(
            portable(json!({"type": "integer", "format": "uint128", "minimum": 0})),
            json!({"type": "integer", "minimum": 0})
        );
        assert_eq!(
            portable(json!({"type": "string", "format": "ip"})),
            json!({"type": "string"})
        );
        for format in [
            "email",
            "uuid",
            "date-time",
            "date",
            "time",
            "ipv4",
            "ipv6",
            "uri",
        ] {
            let s = json!({"type": "string", "format": format});
            assert_eq!(portable(s.clone()), s);
        }
    }

    #[test]
    fn every_subschema_is_visited_and_data_is_not() {
        let u8_bounds = json!({"minimum": 0, "maximum": 255});
        let schema = portable(json!({
            "properties": {"a": {"format": "uint8"}},
            "items": {"format": "uint8"},
            "prefixItems": [{"format": "uint8"}],
            "additionalProperties": {"format": "uint8"},
            "unevaluatedProperties": {"format": "uint8"},
            "anyOf": [{"not": {"format": "uint8"}}],
            "$defs": {"D": {"format": "uint8"}},
            "dependentSchemas": {"a": {"format": "uint8"}},
            "const": {"format": "uint8"},
            "default": {"format": "uint8"},
        }));
        for pointer in [
            "/properties/a",
            "/items",
            "/prefixItems/0",
            "/additionalProperties",
            "/unevaluatedProperties",
            "/anyOf/0/not",
            "/$defs/D",
            "/dependentSchemas/a",
        ] {
            assert_eq!(schema.pointer(pointer), Some(&u8_bounds), "{pointer}");
        }
        assert_eq!(schema["const"], json!({"format": "uint8"}));
        assert_eq!(schema["default"], json!({"format": "uint8"}));
    }
}
