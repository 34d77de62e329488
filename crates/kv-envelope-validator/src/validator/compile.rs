//! Compilation: a schema document into the validator's nodes, refusing what it cannot judge.

use std::collections::HashMap;

use serde_json::{Map, Value};

use super::{number_of, push_escaped, Format, Node, Prop, Sref, TYPE_NAMES};
use crate::tape::{Document, Number};

/// The draft this validator implements; a `$schema` naming another one is refused.
const DRAFT_2020_12: &str = "https://json-schema.org/draft/2020-12/schema";

pub(super) struct Compiler<'s> {
    pub(super) root: &'s Value,
    pub(super) nodes: Vec<Node>,
    /// Schema objects compiled so far, by JSON pointer: a `$ref` and the structural walk share
    /// one node, and recursive references terminate.
    pub(super) memo: HashMap<String, u32>,
}

/// Keywords that describe a schema without constraining values.
const ANNOTATIONS: &[&str] = &[
    "$comment",
    "title",
    "description",
    "default",
    "examples",
    "deprecated",
    "readOnly",
    "writeOnly",
];

/// Standard keywords this validator does not implement: a schema using one is refused.
const UNSUPPORTED: &[&str] = &[
    "$anchor",
    "$dynamicRef",
    "$dynamicAnchor",
    "$recursiveRef",
    "$recursiveAnchor",
    "$vocabulary",
    "pattern",
    "patternProperties",
    "propertyNames",
    "contains",
    "minContains",
    "maxContains",
    "dependentSchemas",
    "dependentRequired",
    "dependencies",
    "additionalItems",
    "if",
    "then",
    "else",
    "unevaluatedItems",
    "unevaluatedProperties",
    "multipleOf",
    "contentEncoding",
    "contentMediaType",
    "contentSchema",
    "discriminator",
];

/// Standard formats jsonschema asserts and this validator does not implement.
const UNSUPPORTED_FORMATS: &[&str] = &[
    "duration",
    "hostname",
    "idn-email",
    "idn-hostname",
    "iri",
    "iri-reference",
    "json-pointer",
    "relative-json-pointer",
    "regex",
    "uri",
    "uri-reference",
    "uri-template",
];

impl<'s> Compiler<'s> {
    pub(super) fn schema(&mut self, path: String, value: &'s Value) -> Result<Sref, String> {
        let map = match value {
            Value::Bool(true) => return Ok(Sref::Any),
            Value::Bool(false) => return Ok(Sref::Never),
            Value::Object(map) => map,
            _ => {
                return Err(format!(
                    "{}: a schema must be an object or a boolean",
                    at(&path)
                ))
            }
        };
        if let Some(&i) = self.memo.get(&path) {
            return Ok(Sref::At(i));
        }
        let index = u32::try_from(self.nodes.len()).map_err(|_| "schema too large".to_string())?;
        self.nodes.push(Node::default());
        self.memo.insert(path.clone(), index);
        let (node, constraints) = self.node(path.clone(), map)?;
        let alias = match node.reference {
            // `{"$ref": …}` alone (schemars' every struct field of a named type, every `items`
            // of one): checks go straight to the target. A reference already handed out by a
            // recursive schema still finds the node, which stays valid.
            Some(target @ (Sref::At(to) | Sref::Type(_, to))) if constraints == 1 => {
                self.memo.insert(path, to);
                Some(target)
            }
            _ if constraints == 1 && node.types != 0 => Some(Sref::Type(node.types, index)),
            _ => None,
        };
        self.nodes[index as usize] = node;
        Ok(alias.unwrap_or(Sref::At(index)))
    }

    /// Compile a schema object; also returns how many of its keywords constrain values.
    fn node(&mut self, path: String, map: &'s Map<String, Value>) -> Result<(Node, usize), String> {
        let mut node = Node::default();
        let mut constraints = 0;
        let mut required: Vec<&'s str> = Vec::new();
        let sub = |keyword: &str| format!("{path}/{}", escape(keyword));
        for (keyword, value) in map {
            let here = || format!("{}/{keyword}", at(&path));
            let bad = |what: &str| Err(format!("{}: {what}", here()));
            let k = keyword.as_str();
            if !ANNOTATIONS.contains(&k)
                && !matches!(k, "$schema" | "$id" | "$defs" | "definitions")
            {
                constraints += 1;
            }
            match keyword.as_str() {
                "$schema" => {
                    let uri = value.as_str().unwrap_or_default();
                    if uri.trim_end_matches('#') != DRAFT_2020_12 {
                        return Err(format!(
                            "{}: only draft 2020-12 is supported without the `jsonschema` feature",
                            here()
                        ));
                    }
                }
                "$id" if path.is_empty() => {}
                "$id" => {
                    return Err(format!(
                        "{}: `$id` below the root (an embedded resource) needs the `jsonschema` \
                         feature",
                        here()
                    ))
                }
                k if ANNOTATIONS.contains(&k) => {}
                "$defs" | "definitions" if !value.is_object() => {
                    return bad("must be an object");
                }
                // Their schemas are compiled when referenced.
                "$defs" | "definitions" => {}
                "$ref" => {
                    let Some(target) = value.as_str() else {
                        return bad("must be a string");
                    };
                    let (pointer, resolved) = self
                        .resolve(target)
                        .map_err(|why| format!("{}: `{target}`: {why}", here()))?;
                    node.reference = Some(self.schema(pointer, resolved)?);
                }
                "type" => {
                    let names: Vec<&Value> = match value {
                        Value::Array(names) => names.iter().collect(),
                        one => vec![one],
                    };
                    for name in names {
                        let bit = TYPE_NAMES
                            .iter()
                            .find(|(_, n)| Some(*n) == name.as_str())
                            .map(|(bit, _)| *bit);
                        match bit {
                            Some(bit) => node.types |= bit,
                            None => return bad("unknown type name"),
                        }
                    }
                    if node.types == 0 {
                        return bad("must name at least one type");
                    }
                }
                "enum" => match value {
                    Value::Array(values) => {
                        node.enum_ = Some(
                            values
                                .iter()
                                .map(|v| literal(v, here))
                                .collect::<Result<_, _>>()?,
                        )
                    }
                    _ => return bad("must be an array"),
                },
                "const" => node.const_ = Some(literal(value, here)?),
                "minimum" => node.minimum = Some(number(value, here)?),
                "maximum" => node.maximum = Some(number(value, here)?),
                "exclusiveMinimum" => node.exclusive_minimum = Some(number(value, here)?),
                "exclusiveMaximum" => node.exclusive_maximum = Some(number(value, here)?),
                "minLength" => node.min_length = Some(count(value, here)?),
                "maxLength" => node.max_length = Some(count(value, here)?),
                "minItems" => node.min_items = Some(count(value, here)?),
                "maxItems" => node.max_items = Some(count(value, here)?),
                "minProperties" => node.min_properties = Some(count(value, here)?),
                "maxProperties" => node.max_properties = Some(count(value, here)?),
                "uniqueItems" => match value {
                    Value::Bool(b) => node.unique_items = *b,
                    _ => return bad("must be a boolean"),
                },
                "format" => {
                    let Some(name) = value.as_str() else {
                        return bad("must be a string");
                    };
                    node.format = match name {
                        "email" => Some(Format::Email),
                        "uuid" => Some(Format::Uuid),
                        "date" => Some(Format::Date),
                        "time" => Some(Format::Time),
                        "date-time" => Some(Format::DateTime),
                        "ipv4" => Some(Format::Ipv4),
                        "ipv6" => Some(Format::Ipv6),
                        known if UNSUPPORTED_FORMATS.contains(&known) => {
                            return Err(format!(
                                "{}: format \"{known}\" needs the `jsonschema` feature",
                                here()
                            ))
                        }
                        // Not a standard format (schemars' `uint32`, `double`, …): ignored.
                        _ => None,
                    };
                }
                "items" => {
                    match value {
                        Value::Array(_) => return bad(
                            "the array form of `items` is not draft 2020-12 (use `prefixItems`)",
                        ),
                        schema => node.items = Some(self.schema(sub("items"), schema)?),
                    }
                }
                "prefixItems" => node.prefix_items = self.list(&sub("prefixItems"), value, here)?,
                "allOf" => node.all_of = self.list(&sub("allOf"), value, here)?,
                "anyOf" => node.any_of = self.list(&sub("anyOf"), value, here)?,
                "oneOf" => node.one_of = self.list(&sub("oneOf"), value, here)?,
                "not" => node.not = Some(self.schema(sub("not"), value)?),
                "additionalProperties" => {
                    node.additional = Some(self.schema(sub("additionalProperties"), value)?)
                }
                "properties" => {
                    let Value::Object(props) = value else {
                        return bad("must be an object");
                    };
                    let base = sub("properties");
                    for (name, schema) in props {
                        let schema = self.schema(format!("{base}/{}", escape(name)), schema)?;
                        node.properties.push(Prop {
                            name: name.as_str().into(),
                            schema,
                            required_bit: None,
                        });
                    }
                }
                "required" => {
                    let Value::Array(names) = value else {
                        return bad("must be an array");
                    };
                    for name in names {
                        match name.as_str() {
                            Some(name) if !required.contains(&name) => required.push(name),
                            Some(_) => return bad("must not repeat a name"),
                            None => return bad("must hold strings"),
                        }
                    }
                }
                k if UNSUPPORTED.contains(&k) => {
                    return Err(format!(
                        "{}: keyword `{k}` needs the `jsonschema` feature",
                        here()
                    ))
                }
                // Unknown keywords are annotations in draft 2020-12.
                _ => {}
            }
        }
        let mut next_bit = 0u8;
        for name in required {
            match node.properties.iter_mut().find(|p| &*p.name == name) {
                Some(prop) if next_bit < 64 => {
                    prop.required_bit = Some(next_bit);
                    node.required_mask |= 1 << next_bit;
                    next_bit += 1;
                }
                _ => node.required_other.push(name.into()),
            }
        }
        node.path = path.into();
        Ok((node, constraints))
    }

    /// The schema a `$ref` names, with its JSON pointer written as the structural walk writes
    /// paths (so both share one node). Every node this compiler accepts lies outside any
    /// embedded resource, so its references resolve against the root's base URI: a `#` fragment
    /// is then a place in this document. Refused: a reference to another document, an anchor
    /// (`#name`), and a pointer that passes through an object with its own `$id` (an embedded
    /// resource: references inside it resolve against that `$id`, not the root, and only
    /// checking each pointer step sees it, as `$defs` are compiled only where referenced). Any
    /// object with a `$id` member counts, even one where no schema stands (a `properties` map
    /// with a property named `$id`): refusing more than needed is safe, answering wrong is not.
    fn resolve(&self, target: &str) -> Result<(String, &'s Value), String> {
        let Some(fragment) = target.strip_prefix('#') else {
            return Err(
                "only references within the schema (`#…`) are supported without the \
                        `jsonschema` feature"
                    .into(),
            );
        };
        // A fragment is percent-encoded (RFC 3986); the JSON pointer is what it decodes to.
        let decoded = percent_decode(fragment)
            .ok_or("malformed percent-encoding (`%` must start a UTF-8 byte as two hex digits)")?;
        let Some(pointer) = decoded.strip_prefix('/') else {
            return match decoded.is_empty() {
                true => Ok((String::new(), self.root)),
                false => Err(format!(
                    "a reference to the anchor `{decoded}`: anchors (`$anchor`) need the \
                     `jsonschema` feature; a JSON pointer (`#/…`) works without it"
                )),
            };
        };
        let mut value = self.root;
        let mut path = String::new();
        for token in pointer.split('/') {
            let key = unescape(token).ok_or("`~` in a JSON pointer must be `~0` or `~1`")?;
            value = match value {
                Value::Object(map) => map.get(key.as_str()),
                Value::Array(items) => array_index(&key).and_then(|i| items.get(i)),
                _ => None,
            }
            .ok_or("reference to a missing schema")?;
            path.push('/');
            push_escaped(&mut path, &key);
            if value.get("$id").is_some() {
                return Err(format!(
                    "the pointer passes through {path}, an embedded resource (it has its own \
                     `$id`, and references inside it resolve against that): needs the \
                     `jsonschema` feature"
                ));
            }
        }
        Ok((path, value))
    }

    /// Refuse a schema that would apply itself to the same value forever (`{"$ref": "#"}`, or
    /// a loop of `$ref`/`allOf`/`anyOf`/`oneOf`/`not` that never steps into a member or an
    /// element): checking a value against it would never end.
    pub(super) fn refuse_cycles(&self) -> Result<(), String> {
        // 0: not visited, 1: on the current path, 2: done.
        let mut state = vec![0u8; self.nodes.len()];
        let mut stack: Vec<(u32, usize)> = Vec::new();
        for start in 0..self.nodes.len() as u32 {
            if state[start as usize] != 0 {
                continue;
            }
            state[start as usize] = 1;
            stack.push((start, 0));
            while let Some(&mut (node, ref mut next)) = stack.last_mut() {
                let edge = same_value_edges(&self.nodes[node as usize]).nth(*next);
                *next += 1;
                match edge {
                    Some(to) => match state[to as usize] {
                        0 => {
                            state[to as usize] = 1;
                            stack.push((to, 0));
                        }
                        1 => {
                            return Err(format!(
                                "{}: a cycle of references that never descends into the value",
                                at(&self.nodes[to as usize].path)
                            ))
                        }
                        _ => {}
                    },
                    None => {
                        state[node as usize] = 2;
                        stack.pop();
                    }
                }
            }
        }
        Ok(())
    }

    fn list(
        &mut self,
        path: &str,
        value: &'s Value,
        here: impl Fn() -> String,
    ) -> Result<Vec<Sref>, String> {
        match value {
            Value::Array(schemas) if !schemas.is_empty() => schemas
                .iter()
                .enumerate()
                .map(|(i, s)| self.schema(format!("{path}/{i}"), s))
                .collect(),
            _ => Err(format!("{}: must be a non-empty array of schemas", here())),
        }
    }
}

/// The nodes a node applies to the very value it checks.
fn same_value_edges(node: &Node) -> impl Iterator<Item = u32> + '_ {
    node.reference
        .iter()
        .chain(node.not.iter())
        .chain(&node.all_of)
        .chain(&node.any_of)
        .chain(&node.one_of)
        .filter_map(|s| match s {
            Sref::At(i) => Some(*i),
            // A type-only node applies nothing further.
            Sref::Any | Sref::Never | Sref::Type(..) => None,
        })
}

/// A pointer for messages: `(root)` for the empty one.
fn at(path: &str) -> &str {
    if path.is_empty() {
        "(root)"
    } else {
        path
    }
}

/// RFC 3986 percent-decoding, strict: `None` for a `%` not followed by two hex digits or bytes
/// that are not UTF-8.
fn percent_decode(s: &str) -> Option<String> {
    if !s.contains('%') {
        return Some(s.to_string());
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'%' {
            let hex = bytes.get(i + 1..i + 3)?;
            // Not `from_str_radix` alone: it would take `%+f`.
            if !hex.iter().all(u8::is_ascii_hexdigit) {
                return None;
            }
            out.push(u8::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok()?);
            i += 3;
        } else {
            out.push(b);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// A JSON pointer token unescaped (`~1` is `/`, `~0` is `~`); `None` for any other `~`.
fn unescape(token: &str) -> Option<String> {
    let mut out = String::with_capacity(token.len());
    let mut chars = token.chars();
    while let Some(c) = chars.next() {
        match c {
            '~' => match chars.next() {
                Some('0') => out.push('~'),
                Some('1') => out.push('/'),
                _ => return None,
            },
            c => out.push(c),
        }
    }
    Some(out)
}

/// An array index as RFC 6901 writes it: `0`, or digits without a leading zero.
fn array_index(token: &str) -> Option<usize> {
    let canonical =
        token == "0" || (token.bytes().all(|b| b.is_ascii_digit()) && !token.starts_with('0'));
    canonical.then(|| token.parse().ok()).flatten()
}

fn escape(token: &str) -> String {
    let mut s = String::with_capacity(token.len());
    push_escaped(&mut s, token);
    s
}

fn number(value: &Value, here: impl Fn() -> String) -> Result<Number, String> {
    match value {
        Value::Number(n) => number_of(n).ok_or_else(|| format!("{}: not a finite number", here())),
        _ => Err(format!("{}: must be a number", here())),
    }
}

/// An `enum` or `const` value as a document.
fn literal(value: &Value, here: impl Fn() -> String) -> Result<Document<'static>, String> {
    Document::from_serialize(value).map_err(|e| format!("{}: {e}", here()))
}

fn count(value: &Value, here: impl Fn() -> String) -> Result<u64, String> {
    match value {
        Value::Number(n) => n
            .as_u64()
            .or_else(|| {
                n.as_f64()
                    .filter(|f| f.fract() == 0.0 && *f >= 0.0)
                    .map(|f| f as u64)
            })
            .ok_or_else(|| format!("{}: must be a non-negative integer", here())),
        _ => Err(format!("{}: must be a non-negative integer", here())),
    }
}
