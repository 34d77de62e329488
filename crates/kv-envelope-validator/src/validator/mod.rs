//! A small JSON Schema validator for the vocabulary schemars emits, for builds without the
//! `jsonschema` feature (the Workers build: it keeps two regex engines, a URI parser and the
//! full draft 2020-12 machinery out of the wasm; BENCHMARKS.md §7).
//!
//! It validates [`Document`]s with the semantics of the jsonschema
//! crate as [`super::compile`] configures it (formats asserted, `email` checked by
//! [`super::is_plausible_email`], unknown formats and unknown keywords ignored, numbers compared
//! exactly, `1.0` an integer). A differential property test holds it to that crate.
//!
//! (This file, past 600 lines on purpose: the compiled tree's nodes and the one walk that
//! validates against them, with the comparisons and the error paths that walk uses. Compiling
//! a schema is `compile.rs`, formats `formats.rs`; `maze.rs` builds schemas for the differential
//! tests.)
//!
//! Supported: boolean schemas; `type`, `enum`, `const`; `minimum`, `maximum`,
//! `exclusiveMinimum`, `exclusiveMaximum`; `minLength`, `maxLength`, `format` (`email`, `uuid`,
//! `date`, `time`, `date-time`, `ipv4`, `ipv6`; formats outside the standard set, such as
//! schemars' `uint32` or `double`, are ignored as jsonschema ignores them); `items`,
//! `prefixItems`, `minItems`, `maxItems`, `uniqueItems`; `properties`, `required`,
//! `additionalProperties`, `minProperties`, `maxProperties`; `allOf`, `anyOf`, `oneOf`, `not`;
//! `$ref` to a JSON pointer in the same document (`#/$defs/…`, `#`, percent-encoded as a URI
//! fragment may be: `#/$defs/a%20b`), recursion included; `$id` at the root; the annotations.
//! Any other standard keyword (`pattern`, `if`, `unevaluatedProperties`, `$anchor`, a standard
//! format such as `uri`, …) is refused when the validator is compiled, naming the keyword and
//! where it is: such a schema needs the `jsonschema` feature. So are the references whose
//! meaning depends on a base URI other than the root's: a `$id` below the root where it is
//! compiled, a `$ref` whose pointer passes through an object with its own `$id` (an embedded
//! resource, whose references resolve against that `$id`), an anchor (`#name`), another
//! document. It never passes a value the full validator would refuse, because it never
//! compiles a schema it cannot judge: the official JSON-Schema-Test-Suite
//! (tests/json_schema_suite.rs) and generated documents of embedded resources and references
//! (`maze`, in the differential property test and the `compact_validator` fuzz target) hold it
//! to that.
//!
//! (One file on purpose: the validator's node types and the one checking loop over them belong
//! together; the compiler and the formats are in their own files.)

use std::{cmp::Ordering, collections::HashMap, fmt, fmt::Write as _};

use serde_json::Value;

use crate::{
    tape::{Document, NodeRef, Number, View},
    ValidationIssue,
};

mod compile;
mod formats;
pub mod maze;

use compile::Compiler;
pub use formats::is_plausible_email;
use formats::Format;

/// A compiled schema.
pub struct Validator {
    nodes: Vec<Node>,
    root: Sref,
}

impl fmt::Debug for Validator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("compact::Validator")
            .field("schemas", &self.nodes.len())
            .finish()
    }
}

/// A (sub)schema: `true`, `false` or a compiled node.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Sref {
    Any,
    Never,
    At(u32),
    /// A node whose only constraint is `type` (most leaves schemars emits): the type bits are
    /// checked without visiting the node, which reports the violation if there is one.
    Type(u8, u32),
}

/// JSON types as bits of [`Node::types`].
const NULL: u8 = 1;
const BOOLEAN: u8 = 2;
const OBJECT: u8 = 4;
const ARRAY: u8 = 8;
const NUMBER: u8 = 16;
const INTEGER: u8 = 32;
const STRING: u8 = 64;
const TYPE_NAMES: [(u8, &str); 7] = [
    (NULL, "null"),
    (BOOLEAN, "boolean"),
    (OBJECT, "object"),
    (ARRAY, "array"),
    (NUMBER, "number"),
    (INTEGER, "integer"),
    (STRING, "string"),
];

#[derive(Debug)]
struct Prop {
    name: Box<str>,
    schema: Sref,
    /// Its bit in the required-members mask, if required and among the first 64 required.
    required_bit: Option<u8>,
}

/// One compiled schema object. `path` is its JSON pointer in the schema document, reported
/// with each violation.
#[derive(Debug, Default)]
struct Node {
    path: Box<str>,
    /// Allowed types, `0` for any.
    types: u8,
    /// `enum` and `const` values, as documents: compared with [`equals_node`], the equality
    /// `uniqueItems` uses.
    enum_: Option<Vec<Document<'static>>>,
    const_: Option<Document<'static>>,
    minimum: Option<Number>,
    maximum: Option<Number>,
    exclusive_minimum: Option<Number>,
    exclusive_maximum: Option<Number>,
    min_length: Option<u64>,
    max_length: Option<u64>,
    format: Option<Format>,
    prefix_items: Vec<Sref>,
    items: Option<Sref>,
    min_items: Option<u64>,
    max_items: Option<u64>,
    unique_items: bool,
    properties: Vec<Prop>,
    /// Required names that are not in `properties`, or past the 64th required one.
    required_other: Vec<Box<str>>,
    /// The mask of every `required_bit`.
    required_mask: u64,
    additional: Option<Sref>,
    min_properties: Option<u64>,
    max_properties: Option<u64>,
    all_of: Vec<Sref>,
    any_of: Vec<Sref>,
    one_of: Vec<Sref>,
    not: Option<Sref>,
    reference: Option<Sref>,
}

impl Validator {
    /// Compile `schema`. The error names what is wrong or unsupported, and where (a JSON
    /// pointer into the schema); it never quotes a value.
    pub fn compile(schema: &Value) -> Result<Self, String> {
        let mut compiler = Compiler {
            root: schema,
            nodes: Vec::new(),
            memo: HashMap::new(),
        };
        let root = compiler.schema(String::new(), schema)?;
        compiler.refuse_cycles()?;
        Ok(Validator {
            nodes: compiler.nodes,
            root,
        })
    }

    /// Whether `instance` is valid. Stops at the first violation.
    pub fn is_valid(&self, instance: NodeRef<'_>) -> bool {
        self.check(self.root, instance, &mut Out::Fast)
    }

    /// Up to `limit` violations of `instance`, with JSON pointers to the value and to the
    /// schema keyword, and messages that never quote the value.
    pub fn issues(&self, instance: NodeRef<'_>, limit: usize) -> Vec<ValidationIssue> {
        let mut out = Out::Collect {
            path: Vec::new(),
            issues: Vec::new(),
            limit: limit.max(1),
        };
        self.check(self.root, instance, &mut out);
        match out {
            Out::Collect { issues, .. } => issues,
            Out::Fast => Vec::new(),
        }
    }

    fn valid(&self, s: Sref, instance: NodeRef<'_>) -> bool {
        self.check(s, instance, &mut Out::Fast)
    }

    /// Check `instance` against `s`, reporting to `out`; `false` if invalid. In fast mode it
    /// returns at the first violation; collecting, it goes on until the limit.
    fn check<'a>(&self, s: Sref, instance: NodeRef<'a>, out: &mut Out<'a>) -> bool {
        let node = match s {
            Sref::Any => return true,
            Sref::Never => {
                out.report(
                    "",
                    "",
                    format_args!("false schema does not allow any value"),
                );
                return false;
            }
            Sref::Type(types, _) if has_type(types, &instance.view()) => return true,
            Sref::At(i) | Sref::Type(_, i) => match self.nodes.get(i as usize) {
                Some(node) => node,
                None => return true,
            },
        };
        let mut ok = true;
        // Record a violation; return at once in fast mode or at the limit.
        macro_rules! fail {
            ($keyword:expr, $($msg:tt)*) => {{
                ok = false;
                if !out.report(&node.path, $keyword, format_args!($($msg)*)) {
                    return false;
                }
            }};
        }
        // Check a subschema at a child of the instance.
        macro_rules! child {
            ($seg:expr, $schema:expr, $value:expr) => {{
                out.enter($seg);
                let valid = self.check($schema, $value, out);
                out.leave();
                if !valid {
                    ok = false;
                    if !out.goes_on() {
                        return false;
                    }
                }
            }};
        }

        // `minItems`/`maxItems`, `minProperties`/`maxProperties`.
        macro_rules! count_bounds {
            ($len:expr, $min:expr, $max:expr, $Kind:literal, $kind:literal) => {{
                let len = u64::from($len);
                if let Some(min) = $min.filter(|&min| len < min) {
                    fail!(
                        concat!("min", $Kind),
                        concat!("value has fewer than {} ", $kind),
                        min
                    );
                }
                if let Some(max) = $max.filter(|&max| len > max) {
                    fail!(
                        concat!("max", $Kind),
                        concat!("value has more than {} ", $kind),
                        max
                    );
                }
            }};
        }

        let view = instance.view();
        if node.types != 0 && !has_type(node.types, &view) {
            fail!("type", "value is not of type {}", TypeList(node.types));
        }
        if let Some(expected) = &node.const_ {
            if !equals_node(instance, expected.root()) {
                fail!("const", "value is not the expected constant");
            }
        }
        if let Some(allowed) = &node.enum_ {
            if !allowed.iter().any(|v| equals_node(instance, v.root())) {
                fail!("enum", "value is not one of the allowed values");
            }
        }
        match view {
            View::Number(n) => {
                if let Some(min) = node.minimum {
                    if cmp_numbers(n, min) == Ordering::Less {
                        fail!("minimum", "value is less than the minimum of {}", Num(min));
                    }
                }
                if let Some(max) = node.maximum {
                    if cmp_numbers(n, max) == Ordering::Greater {
                        fail!(
                            "maximum",
                            "value is greater than the maximum of {}",
                            Num(max)
                        );
                    }
                }
                if let Some(min) = node.exclusive_minimum {
                    if cmp_numbers(n, min) != Ordering::Greater {
                        fail!(
                            "exclusiveMinimum",
                            "value is less than or equal to the minimum of {}",
                            Num(min)
                        );
                    }
                }
                if let Some(max) = node.exclusive_maximum {
                    if cmp_numbers(n, max) != Ordering::Less {
                        fail!(
                            "exclusiveMaximum",
                            "value is greater than or equal to the maximum of {}",
                            Num(max)
                        );
                    }
                }
            }
            View::Str(text) => {
                if node.min_length.is_some() || node.max_length.is_some() {
                    let chars = char_count(text, node.min_length, node.max_length);
                    if let Some(min) = node.min_length {
                        if chars < min {
                            fail!("minLength", "value is shorter than {min} characters");
                        }
                    }
                    if let Some(max) = node.max_length {
                        if chars > max {
                            fail!("maxLength", "value is longer than {max} characters");
                        }
                    }
                }
                if let Some(format) = node.format {
                    if !format.check(text) {
                        fail!("format", "value is not a \"{}\"", format.name());
                    }
                }
            }
            View::Array { len, items } => {
                count_bounds!(len, node.min_items, node.max_items, "Items", "items");
                if node.unique_items && !all_unique(items.clone()) {
                    fail!("uniqueItems", "array has non-unique elements");
                }
                if !node.prefix_items.is_empty() || node.items.is_some() {
                    for (i, item) in items.enumerate() {
                        let schema = match node.prefix_items.get(i) {
                            Some(&s) => s,
                            None => match node.items {
                                Some(s) => s,
                                None => break,
                            },
                        };
                        child!(Seg::Index(i), schema, item);
                    }
                }
            }
            View::Object { len, members } => {
                count_bounds!(
                    len,
                    node.min_properties,
                    node.max_properties,
                    "Properties",
                    "properties"
                );
                let mut seen = 0u64;
                let mut extra_reported = false;
                for (key, value) in members.clone() {
                    if let Some(prop) = node.properties.iter().find(|p| &*p.name == key) {
                        if let Some(bit) = prop.required_bit {
                            seen |= 1 << bit;
                        }
                        child!(Seg::Key(key), prop.schema, value);
                    } else if let Some(additional) = node.additional {
                        if additional == Sref::Never {
                            // One violation per object, and no key in it: keys can be data.
                            if !extra_reported {
                                extra_reported = true;
                                fail!(
                                    "additionalProperties",
                                    "additional properties are not allowed"
                                );
                            }
                        } else {
                            child!(Seg::Key(key), additional, value);
                        }
                    }
                }
                if seen != node.required_mask {
                    for prop in &node.properties {
                        if let Some(bit) = prop.required_bit {
                            if seen & (1 << bit) == 0 {
                                fail!("required", "\"{}\" is a required property", prop.name);
                            }
                        }
                    }
                }
                for name in &node.required_other {
                    if !members.clone().any(|(key, _)| key == &**name) {
                        fail!("required", "\"{name}\" is a required property");
                    }
                }
            }
            View::Null | View::Bool(_) => {}
        }
        // `$ref` and `allOf` apply to this same value; their schemas report their own violations,
        // under their own paths.
        for &sub in node.reference.iter().chain(&node.all_of) {
            if !self.check(sub, instance, out) {
                ok = false;
                if !out.goes_on() {
                    return false;
                }
            }
        }
        if !node.any_of.is_empty() && !node.any_of.iter().any(|&s| self.valid(s, instance)) {
            fail!(
                "anyOf",
                "value is not valid under any of the schemas listed in 'anyOf'"
            );
        }
        if !node.one_of.is_empty() {
            let mut matched = node.one_of.iter().filter(|&&s| self.valid(s, instance));
            match (matched.next(), matched.next()) {
                (Some(_), None) => {}
                (None, _) => fail!(
                    "oneOf",
                    "value is not valid under any of the schemas listed in 'oneOf'"
                ),
                (Some(_), Some(_)) => fail!(
                    "oneOf",
                    "value is valid under more than one of the schemas listed in 'oneOf'"
                ),
            }
        }
        if let Some(not) = node.not {
            if self.valid(not, instance) {
                fail!("not", "value should not be valid under the schema in 'not'");
            }
        }
        ok
    }
}

/// A step of an instance path.
#[derive(Debug, Clone, Copy)]
enum Seg<'a> {
    Key(&'a str),
    Index(usize),
}

/// Where violations go: nowhere (fast mode: the first one ends the check), or into a list.
enum Out<'a> {
    Fast,
    Collect {
        path: Vec<Seg<'a>>,
        issues: Vec<ValidationIssue>,
        limit: usize,
    },
}

impl<'a> Out<'a> {
    /// Record a violation of `keyword` of the schema at `schema_path`; `false` if checking
    /// should stop now.
    fn report(&mut self, schema_path: &str, keyword: &str, message: fmt::Arguments<'_>) -> bool {
        let Out::Collect {
            path,
            issues,
            limit,
        } = self
        else {
            return false;
        };
        if issues.len() < *limit {
            let mut instance_path = String::new();
            for seg in path.iter() {
                instance_path.push('/');
                match seg {
                    Seg::Key(key) => push_escaped(&mut instance_path, key),
                    Seg::Index(i) => {
                        let _ = write!(instance_path, "{i}");
                    }
                }
            }
            let mut schema = String::from(schema_path);
            if !keyword.is_empty() {
                schema.push('/');
                schema.push_str(keyword);
            }
            issues.push(ValidationIssue {
                instance_path,
                schema_path: schema,
                message: message.to_string(),
            });
        }
        issues.len() < *limit
    }

    /// After a failed subschema: whether to keep checking.
    fn goes_on(&self) -> bool {
        match self {
            Out::Fast => false,
            Out::Collect { issues, limit, .. } => issues.len() < *limit,
        }
    }

    fn enter(&mut self, seg: Seg<'a>) {
        if let Out::Collect { path, .. } = self {
            path.push(seg);
        }
    }

    fn leave(&mut self) {
        if let Out::Collect { path, .. } = self {
            path.pop();
        }
    }
}

/// Append `token` to a JSON pointer, escaping `~` and `/`.
fn push_escaped(out: &mut String, token: &str) {
    for c in token.chars() {
        match c {
            '~' => out.push_str("~0"),
            '/' => out.push_str("~1"),
            c => out.push(c),
        }
    }
}

fn has_type(types: u8, view: &View<'_>) -> bool {
    let bits = match view {
        View::Null => NULL,
        View::Bool(_) => BOOLEAN,
        View::Object { .. } => OBJECT,
        View::Array { .. } => ARRAY,
        View::Str(_) => STRING,
        View::Number(n) if n.is_integral() => NUMBER | INTEGER,
        View::Number(_) => NUMBER,
    };
    types & bits != 0
}

/// `"string"`, or `"integer", "null"` for several.
struct TypeList(u8);

impl fmt::Display for TypeList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for (bit, name) in TYPE_NAMES {
            if self.0 & bit != 0 {
                if !first {
                    f.write_str(", ")?;
                }
                first = false;
                write!(f, "\"{name}\"")?;
            }
        }
        Ok(())
    }
}

/// A schema's numeric limit, printed as JSON prints it.
struct Num(Number);

impl fmt::Display for Num {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Number::U64(n) => write!(f, "{n}"),
            Number::I64(n) => write!(f, "{n}"),
            Number::F64(x) => write!(f, "{x}"),
        }
    }
}

/// The number of code points of `s` as far as `min` and `max` can tell: when every count the
/// byte length allows (a code point takes one to four bytes) passes both, the byte length
/// stands in for it; otherwise the code points are counted.
fn char_count(s: &str, min: Option<u64>, max: Option<u64>) -> u64 {
    let bytes = s.len() as u64;
    if min.is_none_or(|m| bytes.div_ceil(4) >= m) && max.is_none_or(|m| bytes <= m) {
        return bytes;
    }
    s.chars().count() as u64
}

/// Exact comparison of two numbers (no rounding through `f64` for integers).
fn cmp_numbers(a: Number, b: Number) -> Ordering {
    fn int(n: Number) -> Option<i128> {
        match n {
            Number::U64(n) => Some(i128::from(n)),
            Number::I64(n) => Some(i128::from(n)),
            Number::F64(_) => None,
        }
    }
    match (a, b) {
        (Number::F64(x), Number::F64(y)) => x.partial_cmp(&y).unwrap_or(Ordering::Equal),
        (Number::F64(x), other) => cmp_int_float(int(other).unwrap_or(0), x).reverse(),
        (other, Number::F64(y)) => cmp_int_float(int(other).unwrap_or(0), y),
        (x, y) => int(x).cmp(&int(y)),
    }
}

/// `i` against `f` exactly. Documents and schemas hold finite floats only.
fn cmp_int_float(i: i128, f: f64) -> Ordering {
    // Every i128 here came from an i64 or u64: within ±2^64.
    const LIMIT: f64 = 18_446_744_073_709_551_616.0; // 2^64
    if f >= LIMIT {
        return Ordering::Less;
    }
    if f <= -LIMIT {
        return Ordering::Greater;
    }
    let floor = f.floor();
    // |floor| < 2^64: exact as an i128.
    let whole = floor as i128;
    match i.cmp(&whole) {
        Ordering::Equal if f > floor => Ordering::Less,
        o => o,
    }
}

fn numbers_equal(a: Number, b: Number) -> bool {
    cmp_numbers(a, b) == Ordering::Equal
}

fn number_of(n: &serde_json::Number) -> Option<Number> {
    if let Some(u) = n.as_u64() {
        Some(Number::U64(u))
    } else if let Some(i) = n.as_i64() {
        Some(Number::I64(i))
    } else {
        n.as_f64().filter(|f| f.is_finite()).map(Number::F64)
    }
}

/// JSON Schema equality of two nodes: numbers by value (`1 == 1.0`), objects regardless of
/// member order.
fn equals_node(a: NodeRef<'_>, b: NodeRef<'_>) -> bool {
    match (a.view(), b.view()) {
        (View::Null, View::Null) => true,
        (View::Bool(x), View::Bool(y)) => x == y,
        (View::Number(x), View::Number(y)) => numbers_equal(x, y),
        (View::Str(x), View::Str(y)) => x == y,
        (View::Array { len: n, items: xs }, View::Array { len: m, items: ys }) => {
            n == m && xs.zip(ys).all(|(x, y)| equals_node(x, y))
        }
        (
            View::Object {
                len: n,
                members: mut xs,
            },
            View::Object {
                len: m,
                members: ys,
            },
        ) => {
            n == m
                && xs.all(|(k, x)| {
                    ys.clone()
                        .find(|(key, _)| *key == k)
                        .is_some_and(|(_, y)| equals_node(x, y))
                })
        }
        _ => false,
    }
}

fn all_unique<'a>(items: impl Iterator<Item = NodeRef<'a>> + Clone) -> bool {
    let mut rest = items.clone();
    for a in items {
        rest.next();
        if rest.clone().any(|b| equals_node(a, b)) {
            return false;
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::Validator;

    /// Two spellings of one pointer (`$defs` percent-encoded or not) compile to one node.
    #[test]
    fn two_spellings_of_one_place_are_one_node() {
        let schema = json!({
            "$defs": { "x/y~z": {"minimum": 3} },
            "properties": {
                "t": {"$ref": "#/$defs/x~1y~0z"},
                "u": {"$ref": "#/%24defs/x~1y~0z"},
            },
        });
        let v = Validator::compile(&schema).unwrap();
        let paths: Vec<&str> = v.nodes.iter().map(|n| &*n.path).collect();
        assert_eq!(
            paths.iter().filter(|p| **p == "/$defs/x~1y~0z").count(),
            1,
            "{paths:?}"
        );
    }
}
