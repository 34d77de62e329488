//! Parsing `wrangler kv key list` output (and the Workers and REST API list results).

use serde_json::{Map, Value};

use super::{display::json_kind, Fail, Source};
use kv_envelope::__internal::describe_json_error;

/// One key of `wrangler kv key list` output.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ListedKey {
    pub name: String,
    /// KV's absolute expiration, seconds since the epoch.
    pub expiration: Option<u64>,
    /// The metadata object as KV returns it (ours is `{"t","v","c","e"}`).
    pub metadata: Option<Value>,
}

/// Parse `wrangler kv key list` output: a JSON array of `{name, expiration?, metadata?}`. Also
/// accepts the Workers `list()` result (`{"keys": [...]}`) and the REST API response
/// (`{"result": [...]}`), which have the same entries.
pub(crate) fn parse_key_list(source: &Source, bytes: &[u8]) -> Result<Vec<ListedKey>, Fail> {
    let fail = |msg: String| Fail(format!("{source}: {msg}"));
    let doc: Value = serde_json::from_slice(bytes).map_err(|e| {
        fail(format!(
            "not valid JSON ({}); expected the output of `wrangler kv key list`",
            describe_json_error(&e)
        ))
    })?;
    let entries = match doc {
        Value::Array(a) => a,
        Value::Object(mut o) => match (o.remove("keys"), o.remove("result")) {
            (Some(Value::Array(a)), _) | (None, Some(Value::Array(a))) => a,
            _ => {
                return Err(fail(
                    "expected a JSON array of {name, expiration?, metadata?} (the output of `wrangler kv key list`), found an object without a `keys` or `result` array".into(),
                ))
            }
        },
        other => {
            return Err(fail(format!(
                "expected a JSON array of {{name, expiration?, metadata?}} (the output of `wrangler kv key list`), found {}",
                json_kind(&other)
            )))
        }
    };
    entries
        .into_iter()
        .enumerate()
        .map(|(i, entry)| {
            let Value::Object(mut o) = entry else {
                return Err(fail(format!(
                    "entry #{i} is {}, expected an object with a `name`",
                    json_kind(&entry)
                )));
            };
            let name = match o.remove("name") {
                Some(Value::String(s)) => s,
                Some(other) => {
                    return Err(fail(format!(
                        "entry #{i}: `name` is {}, expected a string",
                        json_kind(&other)
                    )))
                }
                None => return Err(fail(format!("entry #{i} has no `name`"))),
            };
            let expiration = optional_seconds(&mut o, "expiration")
                .map_err(|m| fail(format!("entry #{i} (key {name:?}): {m}")))?;
            let metadata = o.remove("metadata").filter(|m| !m.is_null());
            Ok(ListedKey {
                name,
                expiration,
                metadata,
            })
        })
        .collect()
}

pub(super) fn optional_seconds(
    o: &mut Map<String, Value>,
    field: &str,
) -> Result<Option<u64>, String> {
    match o.remove(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => match (n.as_u64(), n.as_f64()) {
            (Some(s), _) => Ok(Some(s)),
            // JavaScript writes whole numbers, but accept `1.7e9` from other tools.
            (None, Some(f)) if f >= 0.0 && f.fract() == 0.0 && f < 1.0e15 => {
                // The range check above makes the cast exact.
                #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
                Ok(Some(f as u64))
            }
            _ => Err(format!(
                "`{field}` must be a whole, non-negative number of seconds"
            )),
        },
        Some(other) => Err(format!(
            "`{field}` is {}, expected a number of seconds",
            json_kind(&other)
        )),
    }
}
