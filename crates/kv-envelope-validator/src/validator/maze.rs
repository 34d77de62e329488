//! Schema documents built from bytes for the differential tests (the property test in
//! `tests.rs` and the `compact_validator` fuzz target): `$defs` nested inside embedded resources
//! (`$id` below the root), `$anchor`s, and `$ref`s to places among them written as JSON pointers
//! (plain, percent-encoded, from the document root or from the enclosing resource), anchors,
//! URIs and dangling pointers. Where a reference leads is where the in-crate validator once
//! answered wrong (issue 27: a pointer through an embedded resource); building such documents
//! at random makes that class searched for, not only pinned by one example.
//!
//! Each byte is one choice and missing bytes read as zero, the plainest choice (no `$id`, no
//! keyword, no reference), so any byte string is a document and a shrinking fuzzer or property
//! test shortens it towards the plainest one. The first byte picks a profile: *plain* documents
//! hold only embedded resources and references by plain JSON pointer, the shape that needs a
//! right base URI and nothing else to compile; *full* ones hold everything above.

use serde_json::{json, Map, Value};

/// `$defs` member names: few, so that an embedded resource and the root often both define a
/// name (a reference resolved against the wrong one then finds a schema, not nothing), and in
/// the full profile some that a JSON pointer must escape or a URI must percent-encode.
const NAMES: &[&str] = &["a", "b", "c", "x/y", "t~", "p%q", "sp ace", "é"];
const PLAIN_NAMES: usize = 3;

/// Embedded resources' `$id`s, `{}` standing for a number: absolute, and relative to the
/// enclosing resource's. (Not a URN: jsonschema refuses a whole document where a relative `$id`
/// sits under one.)
const IDS: &[&str] = &[
    "http://example.com/other{}",
    "http://example.com/a/b{}.json",
    "nested{}.json",
];

const ANCHORS: &[&str] = &["foo", "bar"];

/// Values that tell the leaf constraints below apart.
pub fn values() -> Vec<Value> {
    vec![
        json!(1),
        json!(2.5),
        json!(-1),
        json!("x"),
        json!(""),
        json!(null),
        json!(true),
        json!({}),
        json!({"a": 1}),
        json!({"a": "x"}),
        json!({"a": {"a": 1}}),
        json!([1]),
        json!(["x", 1]),
    ]
}

/// A schema document from `bytes`.
pub fn reference_maze(bytes: &[u8]) -> Value {
    let mut maze = Maze {
        bytes: bytes.iter(),
        full: false,
        nodes: Vec::new(),
        ids: Vec::new(),
    };
    maze.full = maze.pick(2) == 1;
    let base = match maze.pick(3) {
        1 => "http://example.com/root.json",
        // jsonschema's base for a document without one.
        _ => "json-schema:///",
    };
    let root_resource = Resource {
        path: String::new(),
        uri: base.into(),
    };
    let mut root = maze.node(String::new(), &root_resource, 0, false);
    if base.starts_with("http") {
        root["$id"] = json!(base);
    }
    // References are placed once every place they may name exists, each from the choices its
    // node drew (so that a reference is as likely at the end of the bytes as at the start).
    let nodes = std::mem::take(&mut maze.nodes);
    for node in &nodes {
        let Some(choices) = &node.reference else {
            continue;
        };
        let mut choices = Maze {
            bytes: choices.iter(),
            full: maze.full,
            nodes: Vec::new(),
            ids: maze.ids.clone(),
        };
        let (keyword, target) = choices.reference(node, &nodes);
        if let Some(Value::Object(map)) = root.pointer_mut(&node.path) {
            map.insert(keyword.into(), Value::String(target));
        }
    }
    root
}

struct Maze<'a> {
    bytes: std::slice::Iter<'a, u8>,
    /// The full profile (else the plain one).
    full: bool,
    /// Every schema object, in the order built.
    nodes: Vec<Place>,
    /// Every `$id` given.
    ids: Vec<String>,
}

/// A schema resource: where it is, and its URI.
#[derive(Clone)]
struct Resource {
    path: String,
    uri: String,
}

/// A schema object: its JSON pointer, the resource it is in, and the choices of its reference
/// if it has one.
struct Place {
    path: String,
    resource: Resource,
    reference: Option<Vec<u8>>,
}

impl Maze<'_> {
    /// One choice among `n`.
    fn pick(&mut self, n: usize) -> usize {
        self.bytes.next().map_or(0, |&b| usize::from(b) % n)
    }

    /// A schema object at `path`, in `resource` unless it starts one of its own. Most
    /// resources are `$defs` members of the root resource (compiled only where a reference
    /// leads), and hold a few schemas.
    fn node(&mut self, path: String, resource: &Resource, depth: u32, in_defs: bool) -> Value {
        let mut map = Map::new();
        let odds = match (in_defs, resource.path.is_empty()) {
            (true, true) => 2,
            (true, false) => 8,
            (false, _) => 12,
        };
        let resource = if depth > 0 && self.pick(odds) == 1 {
            // Mostly a fresh URI; now and then one that may be taken, which `schema::compile`
            // refuses on the jsonschema path (two resources with one URI).
            let n = match self.pick(4) {
                1 => 0,
                _ => self.ids.len() + 1,
            };
            let id = IDS[self.pick(IDS.len())].replace("{}", &n.to_string());
            map.insert("$id".into(), json!(id));
            // Resolved as RFC 3986 resolves these: a relative one replaces the last segment.
            let uri = match id.starts_with("http") {
                true => id.clone(),
                false => {
                    let parent = &resource.uri;
                    format!("{}{id}", &parent[..parent.rfind('/').map_or(0, |i| i + 1)])
                }
            };
            self.ids.push(id);
            Resource {
                path: path.clone(),
                uri,
            }
        } else {
            resource.clone()
        };
        // Rare: the compact validator refuses both wherever it compiles them.
        if self.full {
            match self.pick(48) {
                1 => map.insert("$anchor".into(), json!(ANCHORS[self.pick(ANCHORS.len())])),
                2 => map.insert("$dynamicAnchor".into(), json!(ANCHORS[self.pick(2)])),
                _ => None,
            };
        }
        match self.pick(7) {
            1 => map.insert("type".into(), json!("integer")),
            2 => map.insert("type".into(), json!("string")),
            3 => map.insert("type".into(), json!(["object", "array"])),
            4 => map.insert("minimum".into(), json!(2)),
            5 => map.insert("const".into(), json!({"a": 1})),
            6 => map.insert("maxLength".into(), json!(0)),
            _ => None,
        };
        if depth < 3 {
            let defs = self.pick(4);
            if defs > 0 {
                let mut members = Map::new();
                let names = if self.full { NAMES.len() } else { PLAIN_NAMES };
                for _ in 0..defs {
                    let name = NAMES[self.pick(names)];
                    let at = format!("{path}/$defs/{}", escape(name));
                    members.insert(name.into(), self.node(at, &resource, depth + 1, true));
                }
                map.insert("$defs".into(), Value::Object(members));
            }
            for keyword in ["properties", "items", "allOf"] {
                if self.pick(4) != 1 {
                    continue;
                }
                let sub = match keyword {
                    "properties" => {
                        let at = format!("{path}/properties/a");
                        json!({ "a": self.node(at, &resource, depth + 1, false) })
                    }
                    "items" => self.node(format!("{path}/items"), &resource, depth + 1, false),
                    _ => {
                        let at = format!("{path}/allOf/0");
                        json!([self.node(at, &resource, depth + 1, false)])
                    }
                };
                map.insert(keyword.into(), sub);
            }
        }
        let reference = (self.pick(2) == 1).then(|| self.bytes.by_ref().take(8).copied().collect());
        self.nodes.push(Place {
            path,
            resource,
            reference,
        });
        Value::Object(map)
    }

    /// A `$ref` (in the full profile now and then a `$dynamicRef`) for `from`, naming one of
    /// `nodes` or nothing.
    fn reference(&mut self, from: &Place, nodes: &[Place]) -> (&'static str, String) {
        let keyword = match self.full && self.pick(32) == 1 {
            true => "$dynamicRef",
            false => "$ref",
        };
        let here = &from.resource.path;
        let (mut same, mut elsewhere): (Vec<&Place>, Vec<&Place>) =
            nodes.iter().partition(|n| n.resource.path == *here);
        // Into another resource: mostly past its root (into the schemas it holds) and to
        // schemas with references of their own (on to where those lead).
        if self.pick(4) != 1 {
            narrow(&mut elsewhere, |n| n.path != n.resource.path);
            narrow(&mut elsewhere, |n| n.reference.is_some());
        }
        // Inside an embedded resource, mostly a pointer that also names a schema (not another
        // resource) from the document root: resolved against the wrong base, it finds another
        // schema instead of failing to compile.
        if !here.is_empty() && self.pick(4) != 1 {
            narrow(&mut same, |n| {
                within(&n.path, here)
                    .is_some_and(|p| nodes.iter().any(|m| m.path == p && m.resource.path != p))
            });
        }
        // From the root resource, often into an embedded one (pointers that cross one); from an
        // embedded one, mostly within it (references relative to its `$id`).
        let crossing = match here.is_empty() {
            true => self.pick(2) == 1,
            false => self.pick(6) == 1,
        };
        let target = match crossing {
            true if !elsewhere.is_empty() => elsewhere[self.pick(elsewhere.len())],
            _ if !same.is_empty() && self.pick(4) != 1 => same[self.pick(same.len())],
            _ => &nodes[self.pick(nodes.len())],
        };
        let pointer = match within(&target.path, here) {
            // From the resource `from` is in, as a `#/…` resolves there; in the full profile now
            // and then from the document root, which a `#/…` in a resource does not mean.
            Some(inside) if !self.full || here.is_empty() || self.pick(4) != 1 => {
                inside.to_string()
            }
            Some(_) => target.path.clone(),
            // From the root resource: a pointer through the target's resource (what the
            // compact validator once resolved against the root). From another resource: the
            // target's own resource by its URI.
            None if here.is_empty() || !self.full => target.path.clone(),
            None => {
                let inside = within(&target.path, &target.resource.path).unwrap_or_default();
                let uri = &target.resource.uri;
                return (keyword, format!("{uri}#{}", percent_encode(inside)));
            }
        };
        let form = if self.full { self.pick(16) } else { 0 };
        let reference = match form {
            0..=8 => format!("#{pointer}"),
            9 | 10 => format!("#{}", percent_encode(&pointer)),
            11 => format!("#{}", ANCHORS[self.pick(ANCHORS.len())]),
            12 => "#".into(),
            13 => format!("#{pointer}/$defs/missing"),
            _ => {
                let uri = &from.resource.uri;
                format!("{uri}#{}", percent_encode(&pointer))
            }
        };
        (keyword, reference)
    }
}

/// Keep the places that `keep`, unless none would be left.
fn narrow(places: &mut Vec<&Place>, keep: impl Fn(&Place) -> bool) {
    if places.iter().any(|p| keep(p)) {
        places.retain(|p| keep(p));
    }
}

/// `path` from `resource` on, if it is in it (at it, or below it).
fn within<'p>(path: &'p str, resource: &str) -> Option<&'p str> {
    path.strip_prefix(resource)
        .filter(|rest| rest.is_empty() || rest.starts_with('/'))
}

/// A JSON pointer token (`~` as `~0`, `/` as `~1`).
fn escape(token: &str) -> String {
    token.replace('~', "~0").replace('/', "~1")
}

/// A pointer as a URI fragment may carry it: every byte but RFC 3986's unreserved ones and `/`
/// percent-encoded (`$` too, so that decoding `%24` to `$` is exercised).
fn percent_encode(pointer: &str) -> String {
    let mut out = String::new();
    for b in pointer.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'/' | b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
