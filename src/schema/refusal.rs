//! Why the jsonschema crate refused a schema, and where: the reason of
//! [`Error::Schema`](crate::Error::Schema) on the `jsonschema` path, written as the in-crate
//! validator writes its own (`<JSON pointer into the schema>: <what>`).
//!
//! jsonschema checks a schema against its meta-schema first, and those errors carry the place
//! (the schema is the instance there). Its reference errors carry none: the `$ref` (or
//! `$dynamicRef`, `$schema`) they come from is found here by the URI, pointer or anchor the
//! error names.

use jsonschema::{error::ValidationErrorKind, ReferencingError, ValidationError};
use serde_json::Value;

/// The reason `schema` does not compile, from jsonschema's error.
pub(super) fn reason(schema: &Value, e: &ValidationError<'_>) -> String {
    let ValidationErrorKind::Referencing(err) = e.kind() else {
        // Masked: the message speaks of "value", the schema's own, at the place given.
        return format!("{}: {}", at(e.instance_path().as_str()), e.masked());
    };
    let (wanted, what) = match err {
        ReferencingError::Unretrievable { uri, .. } => (
            Wanted::Uri(uri),
            format!(
                "`{uri}` is not in the schema, and schema::compile fetches nothing: a schema \
                 must be self-contained (references to the draft 2020-12 meta-schemas aside)"
            ),
        ),
        ReferencingError::UnknownSpecification { specification } => (
            Wanted::Uri(specification),
            format!("`{specification}` is no known draft (custom meta-schemas are not supported)"),
        ),
        ReferencingError::PointerToNowhere { pointer } => (
            Wanted::Fragment(pointer),
            format!("reference to a missing schema (`#{pointer}`)"),
        ),
        ReferencingError::NoSuchAnchor { anchor } | ReferencingError::InvalidAnchor { anchor } => (
            Wanted::Fragment(anchor),
            format!("no anchor `{anchor}` in the schema"),
        ),
        ReferencingError::InvalidPercentEncoding { pointer, .. }
        | ReferencingError::InvalidArrayIndex { pointer, .. } => {
            (Wanted::Fragment(pointer), err.to_string())
        }
        other => (Wanted::Nothing, other.to_string()),
    };
    let mut found = None;
    find(schema, &mut String::new(), &wanted, &mut found);
    match found {
        Some(place) => format!("{place}: {what}"),
        None => what,
    }
}

/// What a reference error names.
enum Wanted<'a> {
    /// A resolved URI (a `$ref` or `$schema` naming it, perhaps relatively, is its source).
    Uri(&'a str),
    /// A fragment: a JSON pointer as written, or an anchor.
    Fragment(&'a str),
    Nothing,
}

/// The first `$ref`, `$dynamicRef` or `$schema` in document order that names `wanted`.
fn find(value: &Value, path: &mut String, wanted: &Wanted<'_>, found: &mut Option<String>) {
    match value {
        Value::Object(map) => {
            for (key, member) in map {
                let len = path.len();
                path.push('/');
                path.push_str(&key.replace('~', "~0").replace('/', "~1"));
                let names = matches!(key.as_str(), "$ref" | "$dynamicRef" | "$schema")
                    && member.as_str().is_some_and(|r| names(r, wanted));
                if names {
                    *found = Some(path.clone());
                    return;
                }
                find(member, path, wanted, found);
                path.truncate(len);
                if found.is_some() {
                    return;
                }
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                let len = path.len();
                path.push_str(&format!("/{i}"));
                find(item, path, wanted, found);
                path.truncate(len);
                if found.is_some() {
                    return;
                }
            }
        }
        _ => {}
    }
}

/// Whether the reference `r` names `wanted`.
fn names(r: &str, wanted: &Wanted<'_>) -> bool {
    let (base, fragment) = r.split_once('#').unwrap_or((r, ""));
    match wanted {
        Wanted::Fragment(f) => fragment == *f,
        // A relative reference resolves against a base URI this walk does not track: its last
        // segment ending the resolved URI is close enough to point at it.
        Wanted::Uri(uri) => {
            let uri = uri.split_once('#').map_or(*uri, |(u, _)| u);
            let last = base.rsplit('/').next().unwrap_or(base);
            !base.is_empty()
                && (uri == base
                    || (!last.is_empty()
                        && (uri.ends_with(&format!("/{last}"))
                            || uri.ends_with(&format!(":{last}")))))
        }
        Wanted::Nothing => false,
    }
}

/// A pointer for messages: `(root)` for the empty one.
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

    /// The reason `schema::compile` gives for `schema`.
    fn reason(schema: serde_json::Value) -> String {
        match crate::schema::compile("t", 1, &schema) {
            Err(crate::Error::Schema { reason, .. }) => reason,
            other => panic!("{schema}: {other:?}"),
        }
    }

    #[test]
    fn refusals_say_where() {
        for (schema, expected) in [
            // The meta-schema's errors: jsonschema's place, masked message.
            (
                json!({"properties": {"a": {"minLength": -1}}}),
                "/properties/a/minLength: value is less than the minimum of 0",
            ),
            (
                json!({"type": "strin"}),
                "/type: value is not valid under any of the schemas listed in the 'anyOf' keyword",
            ),
            // Reference errors: the `$ref` or `$schema` found by what the error names.
            (
                json!({"properties": {"a": {"$ref": "http://localhost:1234/x.json"}}}),
                "/properties/a/$ref: `http://localhost:1234/x.json` is not in the schema, and \
                 schema::compile fetches nothing: a schema must be self-contained (references to \
                 the draft 2020-12 meta-schemas aside)",
            ),
            (
                json!({
                    "$id": "http://localhost:1234/draft2020-12/",
                    "items": {"$id": "baseUriChange/", "items": {"$ref": "folderInteger.json"}},
                }),
                "/items/items/$ref: `http://localhost:1234/draft2020-12/baseUriChange/\
                 folderInteger.json` is not in the schema, and schema::compile fetches nothing: a \
                 schema must be self-contained (references to the draft 2020-12 meta-schemas \
                 aside)",
            ),
            (
                json!({"$defs": {"a": {}}, "allOf": [{"$ref": "#/$defs/missing"}]}),
                "/allOf/0/$ref: reference to a missing schema (`#/$defs/missing`)",
            ),
            (
                json!({"properties": {"a": {"$ref": "#foo"}}}),
                "/properties/a/$ref: no anchor `foo` in the schema",
            ),
            (
                json!({"$schema": "http://localhost:1234/meta.json"}),
                "/$schema: `http://localhost:1234/meta.json` is no known draft (custom \
                 meta-schemas are not supported)",
            ),
        ] {
            assert_eq!(reason(schema.clone()), expected, "{schema}");
        }
        // The draft's meta-schema is not another document to fetch.
        crate::schema::compile(
            "t",
            1,
            &json!({"$ref": "https://json-schema.org/draft/2020-12/schema"}),
        )
        .expect("the meta-schema is bundled");
    }
}
