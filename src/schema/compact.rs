//! A small JSON Schema validator for the vocabulary schemars emits, for builds without the
//! `jsonschema` feature (the Workers build: it keeps two regex engines, a URI parser and the
//! full draft 2020-12 machinery out of the wasm; BENCHMARKS.md §7).
//!
//! It validates [`Document`]s with the semantics of the jsonschema
//! crate as [`super::compile`] configures it (formats asserted, `email` checked by
//! [`super::is_plausible_email`], unknown formats and unknown keywords ignored, numbers compared
//! exactly, `1.0` an integer). A differential property test holds it to that crate.
//!
//! Supported: boolean schemas; `type`, `enum`, `const`; `minimum`, `maximum`,
//! `exclusiveMinimum`, `exclusiveMaximum`; `minLength`, `maxLength`, `format` (`email`, `uuid`,
//! `date`, `time`, `date-time`, `ipv4`, `ipv6`; formats outside the standard set, such as
//! schemars' `uint32` or `double`, are ignored as jsonschema ignores them); `items`,
//! `prefixItems`, `minItems`, `maxItems`, `uniqueItems`; `properties`, `required`,
//! `additionalProperties`, `minProperties`, `maxProperties`; `allOf`, `anyOf`, `oneOf`, `not`;
//! `$ref` to a JSON pointer in the same document (`#/$defs/…`, `#`), recursion included; the
//! annotations. Any other standard keyword (`pattern`, `if`, `unevaluatedProperties`, a
//! standard format such as `uri`, …) is refused when the validator is compiled, naming the
//! keyword: such a schema needs the `jsonschema` feature. It never passes a value the full
//! validator would refuse, because it never compiles a schema it cannot judge.

use std::{cmp::Ordering, collections::HashMap, fmt, fmt::Write as _};

use serde_json::{Map, Value};

use super::instance::{Document, NodeRef, Number, View};
use crate::error::ValidationIssue;

/// The draft this validator implements; a `$schema` naming another one is refused.
const DRAFT_2020_12: &str = "https://json-schema.org/draft/2020-12/schema";

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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Email,
    Uuid,
    Date,
    Time,
    DateTime,
    Ipv4,
    Ipv6,
}

impl Format {
    fn name(self) -> &'static str {
        match self {
            Format::Email => "email",
            Format::Uuid => "uuid",
            Format::Date => "date",
            Format::Time => "time",
            Format::DateTime => "date-time",
            Format::Ipv4 => "ipv4",
            Format::Ipv6 => "ipv6",
        }
    }

    fn check(self, s: &str) -> bool {
        match self {
            Format::Email => super::is_plausible_email(s),
            Format::Uuid => is_uuid(s),
            Format::Date => is_date(s),
            Format::Time => is_time(s),
            Format::DateTime => s
                .bytes()
                .position(|b| b == b'T' || b == b't')
                .is_some_and(|t| is_date(&s[..t]) && is_time(&s[t + 1..])),
            Format::Ipv4 => s.parse::<std::net::Ipv4Addr>().is_ok(),
            Format::Ipv6 => s.parse::<std::net::Ipv6Addr>().is_ok(),
        }
    }
}

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

// ---------------------------------------------------------------------------------------------
// Compilation

struct Compiler<'s> {
    root: &'s Value,
    nodes: Vec<Node>,
    /// Schema objects compiled so far, by JSON pointer: a `$ref` and the structural walk share
    /// one node, and recursive references terminate.
    memo: HashMap<String, u32>,
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
    fn schema(&mut self, path: String, value: &'s Value) -> Result<Sref, String> {
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
                        "{}: `$id` below the root needs the `jsonschema` feature",
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
                    let Some(pointer) = target.strip_prefix('#') else {
                        return bad("only references within the schema (`#…`) are supported without the `jsonschema` feature");
                    };
                    if pointer.contains('%') || !(pointer.is_empty() || pointer.starts_with('/')) {
                        return bad("only JSON-pointer references are supported without the `jsonschema` feature");
                    }
                    let Some(resolved) = self.root.pointer(pointer) else {
                        return bad("reference to a missing schema");
                    };
                    node.reference = Some(self.schema(pointer.to_string(), resolved)?);
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

    /// Refuse a schema that would apply itself to the same value forever (`{"$ref": "#"}`, or
    /// a loop of `$ref`/`allOf`/`anyOf`/`oneOf`/`not` that never steps into a member or an
    /// element): checking a value against it would never end.
    fn refuse_cycles(&self) -> Result<(), String> {
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

// ---------------------------------------------------------------------------------------------
// Formats (the definitions the jsonschema crate uses)

/// `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx`, hex digits of either case.
fn is_uuid(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 36
        && b.iter().enumerate().all(|(i, &c)| match i {
            8 | 13 | 18 | 23 => c == b'-',
            _ => c.is_ascii_hexdigit(),
        })
}

fn digits(b: &[u8]) -> Option<u32> {
    if b.is_empty() || !b.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(b.iter().fold(0, |n, d| n * 10 + u32::from(d - b'0')))
}

/// RFC 3339 `full-date`: `YYYY-MM-DD` with a day that exists.
fn is_date(s: &str) -> bool {
    let b = s.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return false;
    }
    let (Some(year), Some(month), Some(day)) = (digits(&b[..4]), digits(&b[5..7]), digits(&b[8..]))
    else {
        return false;
    };
    let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    let days = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return false,
    };
    (1..=days).contains(&day)
}

/// RFC 3339 `full-time`: `HH:MM:SS[.frac](Z|±HH:MM)`; a leap second only at 23:59 UTC.
fn is_time(s: &str) -> bool {
    let b = s.as_bytes();
    if b.len() < 9 || b[2] != b':' || b[5] != b':' {
        return false;
    }
    let (Some(hour), Some(minute), Some(second)) =
        (digits(&b[..2]), digits(&b[3..5]), digits(&b[6..8]))
    else {
        return false;
    };
    if hour > 23 || minute > 59 || second > 60 {
        return false;
    }
    let mut i = 8;
    if b.get(i) == Some(&b'.') {
        i += 1;
        let start = i;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        if i == start {
            return false;
        }
    }
    let Some(&sign) = b.get(i) else {
        return false;
    };
    let utc_is_23_59 = |offset: i32| {
        let local = (hour * 60 + minute) as i32;
        (local - offset).rem_euclid(24 * 60) == 23 * 60 + 59
    };
    match sign {
        b'Z' | b'z' => i == b.len() - 1 && (second != 60 || (hour == 23 && minute == 59)),
        b'+' | b'-' => {
            let rest = &b[i + 1..];
            if rest.len() != 5 || rest[2] != b':' {
                return false;
            }
            let (Some(oh), Some(om)) = (digits(&rest[..2]), digits(&rest[3..])) else {
                return false;
            };
            if oh > 23 || om > 59 {
                return false;
            }
            let offset = (oh * 60 + om) as i32 * if sign == b'+' { 1 } else { -1 };
            second != 60 || utc_is_23_59(offset)
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests;
