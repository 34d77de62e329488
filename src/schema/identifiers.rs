//! Two schema resources claiming one URI: refused before jsonschema compiles the schema.
//!
//! Draft 2020-12 gives every `$id` one schema ("when multiple schemas try to identify as the
//! same URI, validators SHOULD raise an error condition", Core §9.1.2). jsonschema 0.61 does
//! not: it keeps one of them and, when a `#name` reference is resolved in the other, panics
//! ("A named target lives in its resolver's resource"), where `schema::compile` must return an
//! error. Found by the differential property test's generated documents (issue 27).

use std::collections::BTreeMap;

use jsonschema::{uri, Uri};
use serde_json::Value;

/// The first `$id` that resolves to the URI of an earlier one, as a refusal reason.
pub(super) fn refuse_duplicates(schema: &Value) -> Result<(), String> {
    // The base jsonschema resolves a schema without a root `$id` against.
    let base = uri::from_str("json-schema:///").map_err(|e| e.to_string())?;
    let mut seen = BTreeMap::new();
    walk(schema, &base, &mut String::new(), &mut seen)
}

/// `value` (a schema at `path`, in the resource based at `base`) and its subschemas, where
/// jsonschema looks for embedded resources.
fn walk(
    value: &Value,
    base: &Uri<String>,
    path: &mut String,
    seen: &mut BTreeMap<String, String>,
) -> Result<(), String> {
    let Value::Object(map) = value else {
        return Ok(());
    };
    let mut here = base.clone();
    if let Some(id) = map.get("$id").and_then(Value::as_str) {
        // An `$id` that does not resolve is jsonschema's own error to report.
        if let Ok(resolved) = uri::resolve_against(&base.borrow(), id.trim_end_matches('#')) {
            if let Some(first) = seen.get(resolved.as_str()) {
                return Err(format!(
                    "{}/$id: `{id}` is `{resolved}`, the `$id` of {} too: one URI must name one \
                     schema",
                    at(path),
                    at(first),
                ));
            }
            seen.insert(resolved.as_str().to_string(), path.clone());
            here = resolved;
        }
    }
    for (keyword, sub) in map {
        let len = path.len();
        push(path, keyword);
        match (keyword.as_str(), sub) {
            (
                "additionalProperties"
                | "contains"
                | "contentSchema"
                | "else"
                | "if"
                | "items"
                | "not"
                | "propertyNames"
                | "then"
                | "unevaluatedItems"
                | "unevaluatedProperties",
                _,
            ) => walk(sub, &here, path, seen)?,
            ("allOf" | "anyOf" | "oneOf" | "prefixItems", Value::Array(items)) => {
                for (i, item) in items.iter().enumerate() {
                    let len = path.len();
                    push(path, &i.to_string());
                    walk(item, &here, path, seen)?;
                    path.truncate(len);
                }
            }
            (
                "$defs" | "definitions" | "dependentSchemas" | "patternProperties" | "properties",
                Value::Object(members),
            ) => {
                for (name, member) in members {
                    let len = path.len();
                    push(path, name);
                    walk(member, &here, path, seen)?;
                    path.truncate(len);
                }
            }
            _ => {}
        }
        path.truncate(len);
    }
    Ok(())
}

/// Append a JSON pointer token.
fn push(path: &mut String, token: &str) {
    path.push('/');
    path.push_str(&token.replace('~', "~0").replace('/', "~1"));
}

fn at(path: &str) -> &str {
    if path.is_empty() {
        "(root)"
    } else {
        path
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::refuse_duplicates;

    #[test]
    fn refuses_two_resources_with_one_uri() {
        // The smallest document found on which jsonschema 0.61.2 panics, and the same with
        // one `$id` relative to the root's.
        for (schema, message) in [
            (
                json!({
                    "$defs": {
                        "a": {"$id": "http://example.com/other", "$anchor": "foo"},
                        "b": {"$id": "http://example.com/other", "$ref": "#foo"},
                    },
                    "$ref": "#/$defs/b",
                }),
                "/$defs/b/$id: `http://example.com/other` is `http://example.com/other`, the \
                 `$id` of /$defs/a too: one URI must name one schema",
            ),
            (
                json!({
                    "$id": "http://example.com/",
                    "$defs": {
                        "a": {"$id": "http://example.com/x/other", "$anchor": "foo"},
                        "b": {"$id": "x/other", "$ref": "#foo"},
                    },
                    "$ref": "#/$defs/b",
                }),
                "/$defs/b/$id: `x/other` is `http://example.com/x/other`, the `$id` of \
                 /$defs/a too: one URI must name one schema",
            ),
            (
                json!({"$id": "http://example.com/r", "items": {"$id": "r"}}),
                "/items/$id: `r` is `http://example.com/r`, the `$id` of (root) too: one URI \
                 must name one schema",
            ),
        ] {
            assert_eq!(refuse_duplicates(&schema), Err(message.to_string()));
            let err = crate::schema::compile("t", 1, &schema).expect_err("refused");
            #[cfg(feature = "jsonschema")]
            assert!(err.to_string().ends_with(message), "{err}");
            let _ = err;
        }
        // Distinct URIs, and `$id`s where no schema stands (a `const`, an unknown keyword).
        for schema in [
            json!({"$id": "http://example.com/r", "$defs": {"a": {"$id": "a"}, "b": {"$id": "b"}}}),
            json!({
                "$defs": {"a": {"$id": "http://example.com/a"}},
                "const": {"$id": "http://example.com/a"},
            }),
            json!({
                "$defs": {"a": {"$id": "http://example.com/a"}},
                "x-extra": {"$id": "http://example.com/a"},
            }),
        ] {
            assert_eq!(refuse_duplicates(&schema), Ok(()), "{schema}");
        }
    }
}
