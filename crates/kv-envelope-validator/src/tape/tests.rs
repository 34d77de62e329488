//! The validation document: parsing, the jsonschema accessor contract, and both serde
//! directions, each against serde_json's own behaviour.
//!
//! (Tests, not code: one case per accessor and per serde path, kept beside the module they
//! pin.)
use std::collections::{BTreeMap, HashMap};

use jsonschema::json::{Array, JsonNumber, Node, Object};
use proptest::prelude::*;
use serde::{de::DeserializeOwned, Deserialize, Serialize};
use serde_json::{json, Value};

use super::*;

fn parsed(text: &str) -> Value {
    Document::parse(text.as_bytes())
        .unwrap_or_else(|e| panic!("{text:?}: {e}"))
        .to_value()
}

/// Parse with both parsers and require the same value, or both to fail.
fn same_as_serde_json(text: &str) {
    let ours = Document::parse(text.as_bytes()).map(|d| d.to_value());
    let theirs = serde_json::from_str::<Value>(text);
    match (ours, theirs) {
        (Ok(a), Ok(b)) => {
            assert_eq!(a, b, "{text:?}");
            // `Value`'s equality ignores the sign of zero.
            assert_eq!(a.to_string(), b.to_string(), "{text:?}");
        }
        (Err(_), Err(_)) => {}
        (a, b) => panic!("{text:?}: ours {a:?}, serde_json {b:?}"),
    }
}

#[test]
fn scalars_and_containers_match_serde_json() {
    for text in [
        "null",
        "true",
        "false",
        " \t\r\n 1 \n",
        "\"\"",
        "\"plain\"",
        "[]",
        "{}",
        "[1,[2,[3,{}]],{\"a\":[]}]",
        "{\"a\":1,\"b\":{\"c\":[true,false,null]},\"d\":\"x\"}",
        "{ \"a\" : 1 , \"b\" : [ 1 , 2 ] }",
        "{\"dup\":1,\"dup\":2}",
    ] {
        same_as_serde_json(text);
    }
}

#[test]
fn escaped_strings_are_unescaped() {
    for text in [
        r#""a\"b""#,
        r#""\\\/\b\f\n\r\t""#,
        r#""\u0041\u00e9\u4e2d""#,
        r#""\ud83e\udd80 crab""#,
        r#""head \n tail""#,
        r#"{"k\u0065y":"v\u0061lue","plain":"x"}"#,
        "\"h\u{e9}llo \u{1F980}\"",
        r#""\u0000""#,
    ] {
        same_as_serde_json(text);
    }
    assert_eq!(parsed(r#""\ud83e\udd80""#), json!("\u{1F980}"));
    // Borrowed and owned strings side by side keep their own text.
    assert_eq!(
        parsed(r#"["a","b\nc","d","e\tf"]"#),
        json!(["a", "b\nc", "d", "e\tf"])
    );
}

#[test]
fn numbers_at_the_edges_are_typed_as_serde_json_types_them() {
    for text in [
        "0",
        "-0",
        "-0.0",
        "1",
        "-1",
        "18446744073709551615", // u64::MAX
        "18446744073709551616", // u64::MAX + 1: a float
        "-9223372036854775808", // i64::MIN
        "-9223372036854775809", // i64::MIN - 1: a float
        "9223372036854775807",  // i64::MAX
        "9223372036854775808",  // i64::MAX + 1: still u64
        "123456789012345678901234567890",
        "1.5",
        "-1.5",
        "1e2",
        "1E2",
        "1e+2",
        "1e-2",
        "1.0",
        "0.1",
        "1.7976931348623157e308",
        "5e-324",
        "1e-400",
        "2.2250738585072014e-308",
        "[0,-0,1.25,-7]",
    ] {
        same_as_serde_json(text);
    }
    let doc = Document::parse(b"[18446744073709551615,-9223372036854775808,1.0,-0]").unwrap();
    let items: Vec<Number> = doc
        .root()
        .as_array()
        .unwrap()
        .elements()
        .map(|n| n.as_number().unwrap())
        .collect();
    assert_eq!(
        items,
        [
            Number::U64(u64::MAX),
            Number::I64(i64::MIN),
            Number::F64(1.0),
            Number::F64(-0.0)
        ]
    );
    assert_eq!(items[0].as_i64(), None);
    assert_eq!(items[1].as_u64(), None);
    assert!(items[2].is_integer());
    assert!(!items[2].is_written_as_integer());
    assert_eq!(Number::U64(5).as_i64(), Some(5));
}

#[test]
fn malformed_json_is_an_error_like_in_serde_json() {
    for text in [
        "",
        " ",
        "01",
        "-01",
        "1.",
        ".5",
        "-",
        "+1",
        "1e",
        "1e+",
        "0x10",
        "NaN",
        "Infinity",
        "1e400",
        "-1e400",
        "[1,]",
        "[,1]",
        "[1 2]",
        "{\"a\":1,}",
        "{\"a\" 1}",
        "{a:1}",
        "{1:2}",
        "{\"a\":}",
        r#""\x""#,
        r#""\u12""#,
        r#""\u12G4""#,
        r#""\ud800""#,
        r#""\ud800x""#,
        r#""\ud800\u0041""#,
        r#""\udc00""#,
        "\"a\nb\"",
        "\"a\u{1}b\"",
        "tru",
        "nul",
        "falsy",
        "[",
        "{",
        "\"abc",
        "[1",
        "{\"a\"",
        "{\"a\":1",
        "1 2",
        "{} x",
        "[]]",
        "\u{feff}1",
    ] {
        assert!(Document::parse(text.as_bytes()).is_err(), "{text:?}");
        same_as_serde_json(text);
    }
    // Invalid UTF-8 inside a string.
    assert!(Document::parse(b"\"\xff\"").is_err());
    assert!(serde_json::from_slice::<Value>(b"\"\xff\"").is_err());
    assert!(Document::parse(b"[\"ok\", \"\xc3\x28\"]").is_err());
}

#[test]
fn errors_say_where_without_quoting_the_input() {
    let e = Document::parse(b"{\"secret\":\n  tru}").unwrap_err();
    assert_eq!(e.to_string(), "syntax error at line 2 column 6");
    let e = Document::parse(b"[\"secret").unwrap_err();
    assert!(e.is_eof());
    assert!(!e.to_string().contains("secret"));
}

fn nested(depth: usize, open: &str, close: &str) -> String {
    format!("{}1{}", open.repeat(depth), close.repeat(depth))
}

#[test]
fn nesting_limit_is_serde_json_s() {
    for depth in [1, 2, 126, 127, 128, 129, 130] {
        same_as_serde_json(&nested(depth, "[", "]"));
        same_as_serde_json(&nested(depth, "{\"a\":", "}"));
    }
    assert!(Document::parse(nested(MAX_DEPTH, "[", "]").as_bytes()).is_ok());
    assert!(Document::parse(nested(MAX_DEPTH + 1, "[", "]").as_bytes()).is_err());
}

#[test]
fn hostile_depth_does_not_overflow_the_stack() {
    // Far past the limit, unterminated and terminated: an error, not a crash.
    let deep = "[".repeat(1_000_000);
    assert!(Document::parse(deep.as_bytes()).is_err());
    let deep = nested(200_000, "{\"a\":", "}");
    assert!(Document::parse(deep.as_bytes()).is_err());

    // The same limit when building from a Rust value (postcard codec).
    #[derive(Serialize)]
    struct Chain(Option<Box<Chain>>);
    let mut chain = Chain(None);
    for _ in 0..MAX_DEPTH + 5 {
        chain = Chain(Some(Box::new(chain)));
    }
    // `Chain` is a newtype around an option: no containers, any depth is fine.
    assert!(Document::from_serialize(&chain).is_ok());
    let mut v = json!(1);
    for _ in 0..MAX_DEPTH {
        v = json!([v]);
    }
    assert!(Document::from_serialize(&v).is_ok());
    let v = json!([v]);
    assert!(Document::from_serialize(&v).is_err());
}

#[test]
fn from_serialize_shapes_values_like_serde_json_to_value() {
    #[derive(Serialize)]
    enum E {
        Unit,
        Newtype(u8),
        Tuple(i32, String),
        Struct { a: Option<u8>, b: f32 },
    }
    #[derive(Serialize)]
    struct Unit;
    #[derive(Serialize)]
    struct Wrapper(String);
    #[derive(Serialize)]
    struct All {
        b: bool,
        i: i64,
        neg: i8,
        big: u128,
        small: i128,
        f: f64,
        nan: f64,
        inf: f32,
        c: char,
        s: String,
        bytes: serde_bytes_like::Bytes,
        none: Option<u8>,
        some: Option<Vec<u8>>,
        unit: (),
        unit_struct: Unit,
        wrapper: Wrapper,
        tuple: (u8, &'static str),
        enums: Vec<E>,
        int_keys: BTreeMap<i32, bool>,
        bool_keys: BTreeMap<bool, u8>,
        float_keys: Vec<(f64, u8)>,
        #[serde(skip_serializing_if = "Option::is_none")]
        skipped: Option<u8>,
        #[serde(flatten)]
        flat: BTreeMap<String, u8>,
    }
    mod serde_bytes_like {
        pub struct Bytes(pub Vec<u8>);
        impl serde::Serialize for Bytes {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_bytes(&self.0)
            }
        }
    }
    let all = All {
        b: true,
        i: 7,
        neg: -3,
        big: u128::from(u64::MAX),
        small: -5,
        f: 0.1,
        nan: f64::NAN,
        inf: f32::INFINITY,
        c: 'é',
        s: "text \"quoted\"".into(),
        bytes: serde_bytes_like::Bytes(vec![0, 255]),
        none: None,
        some: Some(vec![1]),
        unit: (),
        unit_struct: Unit,
        wrapper: Wrapper("w".into()),
        tuple: (1, "x"),
        enums: vec![
            E::Unit,
            E::Newtype(2),
            E::Tuple(-1, "t".into()),
            E::Struct { a: None, b: 1.5 },
        ],
        int_keys: [(-1, true), (2, false)].into(),
        bool_keys: [(true, 1)].into(),
        float_keys: vec![(1.5, 1)],
        skipped: None,
        flat: [("extra".to_string(), 9)].into(),
    };
    let ours = Document::from_serialize(&all).unwrap().to_value();
    let theirs = serde_json::to_value(&all).unwrap();
    assert_eq!(ours, theirs);
    assert_eq!(ours.to_string(), theirs.to_string());

    // Maps with float keys.
    #[derive(Serialize)]
    struct FloatKey(#[serde(serialize_with = "float_map")] ());
    fn float_map<S: serde::Serializer>(_: &(), s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut m = s.serialize_map(Some(1))?;
        m.serialize_entry(&1.5f64, &1)?;
        m.end()
    }
    assert_eq!(
        Document::from_serialize(&FloatKey(())).unwrap().to_value(),
        serde_json::to_value(FloatKey(())).unwrap()
    );

    // Keys serde_json refuses are refused too.
    let bad: HashMap<Vec<u8>, u8> = [(vec![1], 1)].into();
    assert!(serde_json::to_value(&bad).is_err());
    assert!(Document::from_serialize(&bad).is_err());
    assert!(serde_json::to_value(u128::MAX).is_err());
    assert!(Document::from_serialize(&u128::MAX).is_err());
    assert!(Document::from_serialize(&i128::MIN).is_err());
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Rich {
    user_id: String,
    count: u32,
    delta: i64,
    ratio: f64,
    flag: bool,
    maybe: Option<String>,
    #[serde(default)]
    defaulted: Vec<String>,
    letter: char,
    unit_enum: Kind,
    data_enum: Vec<Shape>,
    by_id: HashMap<u32, String>,
    by_name: BTreeMap<String, i8>,
    pair: (u8, String),
    bytes: Vec<u8>,
    nested: Option<Box<Rich>>,
    untagged: Either,
    tagged: Tagged,
    #[serde(flatten)]
    rest: BTreeMap<String, Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
enum Kind {
    Alpha,
    Beta,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
enum Shape {
    Dot,
    Circle(f64),
    Rect(u32, u32),
    Poly { points: Vec<(i32, i32)> },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
enum Either {
    Num(u64),
    Text(String),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "body")]
enum Tagged {
    A { x: u8 },
    B(String),
}

fn rich() -> Rich {
    Rich {
        user_id: "u\"1\"\n".into(),
        count: u32::MAX,
        delta: i64::MIN,
        ratio: -0.25,
        flag: true,
        maybe: None,
        defaulted: vec!["x".into()],
        letter: 'ß',
        unit_enum: Kind::Beta,
        data_enum: vec![
            Shape::Dot,
            Shape::Circle(2.5),
            Shape::Rect(1, 2),
            Shape::Poly {
                points: vec![(1, -1)],
            },
        ],
        by_id: [(7, "seven".into()), (u32::MAX, "max".into())].into(),
        by_name: [("a".into(), -1)].into(),
        pair: (3, "three".into()),
        bytes: vec![0, 1, 255],
        nested: Some(Box::new(Rich {
            nested: None,
            untagged: Either::Text("t".into()),
            rest: BTreeMap::new(),
            ..rich_leaf()
        })),
        untagged: Either::Num(5),
        tagged: Tagged::A { x: 1 },
        rest: [("extra".into(), json!({"k": [1, "v"]}))].into(),
    }
}

fn rich_leaf() -> Rich {
    Rich {
        user_id: String::new(),
        count: 0,
        delta: 0,
        ratio: 0.0,
        flag: false,
        maybe: Some("m".into()),
        defaulted: vec![],
        letter: 'a',
        unit_enum: Kind::Alpha,
        data_enum: vec![],
        by_id: HashMap::new(),
        by_name: BTreeMap::new(),
        pair: (0, String::new()),
        bytes: vec![],
        nested: None,
        untagged: Either::Num(0),
        tagged: Tagged::B("b".into()),
        rest: BTreeMap::new(),
    }
}

fn de_json<T: DeserializeOwned>(text: &str) -> Result<T, DeError> {
    let doc = Document::parse(text.as_bytes()).expect("valid JSON");
    T::deserialize(doc.root())
}

#[test]
fn deserializes_like_serde_json() {
    let value = rich();
    let text = serde_json::to_string(&value).unwrap();
    let ours: Rich = de_json(&text).unwrap();
    assert_eq!(ours, serde_json::from_str::<Rich>(&text).unwrap());
    assert_eq!(ours, value);

    // From a document built by the serializer (the postcard path's shape).
    let doc = Document::from_serialize(&value).unwrap();
    assert_eq!(Rich::deserialize(doc.root()).unwrap(), value);

    // A missing `#[serde(default)]` field and an absent option.
    let mut v = serde_json::to_value(rich_leaf()).unwrap();
    let obj = v.as_object_mut().unwrap();
    obj.remove("defaulted");
    obj.remove("maybe");
    let text = v.to_string();
    let ours: Rich = de_json(&text).unwrap();
    assert_eq!(ours, serde_json::from_str::<Rich>(&text).unwrap());
    assert_eq!(ours.maybe, None);

    // A struct may be written as an array, as serde_json allows.
    #[derive(Debug, PartialEq, Deserialize)]
    struct P {
        x: u8,
        y: String,
    }
    assert_eq!(
        de_json::<P>(r#"[1,"y"]"#).unwrap(),
        P {
            x: 1,
            y: "y".into()
        }
    );
    assert!(de_json::<P>(r#"[1,"y",3]"#).is_err());
    assert!(serde_json::from_str::<P>(r#"[1,"y",3]"#).is_err());
}

#[test]
fn type_mismatches_are_errors_like_in_serde_json() {
    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct S {
        n: u8,
    }
    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Strict {
        n: u8,
    }
    for text in [
        r#"{"n":256}"#,
        r#"{"n":-1}"#,
        r#"{"n":1.0}"#,
        r#"{"n":"1"}"#,
        r#"{"n":null}"#,
        r#"{}"#,
        r#"[]"#,
        r#""s""#,
    ] {
        assert!(de_json::<S>(text).is_err(), "{text}");
        assert!(serde_json::from_str::<S>(text).is_err(), "{text}");
    }
    assert!(de_json::<Strict>(r#"{"n":1,"x":2}"#).is_err());
    assert!(de_json::<S>(r#"{"n":1,"x":2}"#).is_ok());
    assert!(de_json::<Shape>(r#"{"Circle":1,"Dot":null}"#).is_err());
    assert!(de_json::<Shape>(r#""Nope""#).is_err());
    assert!(de_json::<Shape>("3").is_err());
    assert!(de_json::<Kind>(r#"{"Alpha":null}"#).is_ok());
    assert!(de_json::<(u8, u8)>("[1]").is_err());
    assert!(de_json::<HashMap<u8, u8>>(r#"{"300":1}"#).is_err());
    assert!(de_json::<HashMap<u8, u8>>(r#"{"x":1}"#).is_err());
    assert_eq!(
        de_json::<HashMap<bool, u8>>(r#"{"true":1}"#).unwrap(),
        HashMap::from([(true, 1)])
    );
    assert_eq!(de_json::<f64>("7").unwrap(), 7.0);
    assert_eq!(de_json::<i64>("-7").unwrap(), -7);
    assert_eq!(de_json::<Value>("-0").unwrap().to_string(), "-0.0");
}

#[test]
fn raw_values_pass_through() {
    #[derive(Debug, Serialize, Deserialize)]
    struct WithRaw {
        id: u8,
        raw: Box<serde_json::value::RawValue>,
    }
    let text = r#"{"id":1,"raw":{"a":[1,"x\n"],"b":null}}"#;
    let ours: WithRaw = de_json(text).unwrap();
    let back: Value = serde_json::from_str(ours.raw.get()).unwrap();
    assert_eq!(back, json!({"a": [1, "x\n"], "b": null}));
    let doc = Document::from_serialize(&ours).unwrap();
    assert_eq!(doc.to_value(), serde_json::to_value(&ours).unwrap());
}

#[test]
fn accessors_follow_the_node_contract() {
    let doc = Document::from_serialize(&jsonschema_value::conformance::document()).unwrap();
    jsonschema_value::conformance::assert_conformance::<Tape>(&doc.root());
    let text = jsonschema_value::conformance::document().to_string();
    let doc = Document::parse(text.as_bytes()).unwrap();
    jsonschema_value::conformance::assert_conformance::<Tape>(&doc.root());
}

#[test]
fn duplicate_keys_keep_the_last_member_like_json_parse() {
    for text in [
        r#"{"a":1,"a":2}"#,
        r#"{"a":[1,{"x":1,"x":[2]}],"b":0,"a":{"y":{"z":1,"z":2}},"c":[3]}"#,
        r#"{"a":{"deep":[1,2]},"b":1,"a":3,"b":{"q":[]},"a":[[]]}"#,
    ] {
        same_as_serde_json(text);
        let doc = Document::parse(text.as_bytes()).unwrap();
        let keys: Vec<&str> = doc
            .root()
            .as_object()
            .unwrap()
            .members()
            .map(|m| m.0)
            .collect();
        let mut unique = keys.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(keys.len(), unique.len(), "{text}");
        // Siblings after the dropped members are still reachable.
        assert_eq!(Value::deserialize(doc.root()).unwrap(), parsed(text));
    }
    // Many keys: the sorting path.
    let mut text = (0..40).map(|i| format!("\"k{i}\":{i}")).collect::<Vec<_>>();
    text.push("\"k3\":[\"last\"]".into());
    let text = format!("{{{}}}", text.join(","));
    same_as_serde_json(&text);
    let doc = Document::parse(text.as_bytes()).unwrap();
    assert_eq!(doc.root().as_object().unwrap().len(), 40);

    // A struct reads the last value, validated or not shaped by a map.
    #[derive(Debug, PartialEq, Deserialize)]
    struct U {
        id: String,
    }
    assert_eq!(de_json::<U>(r#"{"id":"u1","id":"u2"}"#).unwrap().id, "u2");
}

#[test]
fn dropped_documents_lend_their_buffers_to_the_next() {
    let numbers: Vec<String> = (0..40).map(|i| i.to_string()).collect();
    let text = format!(r#"{{"a":"x\ny","b":[{}]}}"#, numbers.join(","));
    let first = Document::parse(text.as_bytes()).unwrap();
    let tape = first.tape.as_ptr() as usize;
    let strings = first.strings.as_ptr() as usize;
    assert!(first.strings.capacity() > 0);
    drop(first);
    let second = Document::parse(br#"{"c":"z\tw"}"#).unwrap();
    assert_eq!(second.tape.as_ptr() as usize, tape);
    assert_eq!(second.strings.as_ptr() as usize, strings);
    assert_eq!(second.to_value(), json!({"c": "z\tw"}));
    // Built documents share the spare set too.
    drop(second);
    let built = Document::from_serialize(&json!({"k": ["v"]})).unwrap();
    assert_eq!(built.tape.as_ptr() as usize, tape);
    assert_eq!(built.to_value(), json!({"k": ["v"]}));
}

#[test]
fn objects_and_arrays_skip_nested_members() {
    let doc = Document::parse(br#"{"a":{"x":[1,{"y":2}]},"b":[[],[3]],"c":"z"}"#).unwrap();
    let root = doc.root().as_object().unwrap();
    let names: Vec<&str> = root.members().map(|(k, _)| k).collect();
    assert_eq!(names, ["a", "b", "c"]);
    assert_eq!(root.len(), 3);
    let c = root.get(&"c".into()).unwrap();
    assert_eq!(c.as_string().as_deref(), Some("z"));
    assert!(root.get(&"x".into()).is_none());
    let b = root.get(&"b".into()).unwrap().as_array().unwrap();
    assert_eq!(b.len(), 2);
    let lens: Vec<usize> = b.elements().map(|e| e.as_array().unwrap().len()).collect();
    assert_eq!(lens, [0, 1]);
    assert_ne!(
        root.get(&"a".into()).unwrap().identity(),
        doc.root().identity()
    );
}

#[test]
fn string_lengths_count_code_points() {
    let doc = Document::parse("[\"h\u{e9}llo\",\"\u{1F980}\u{1F980}\",\"ab\"]".as_bytes()).unwrap();
    let items: Vec<_> = doc.root().as_array().unwrap().elements().collect();
    assert_eq!(items[0].string_length(), Some(5));
    assert_eq!(items[1].string_length_within(0, 2), Some(true));
    assert_eq!(items[1].string_length_within(3, 9), Some(false));
    assert_eq!(items[1].string_length_within(0, 1), Some(false));
    assert_eq!(items[2].string_length_within(2, 2), Some(true));
    assert_eq!(items[2].string_length_within(3, 3), Some(false));
}

/// The same schema compiled for `serde_json::Value` and for documents must agree on every
/// instance: validity and the reported instance paths.
#[test]
fn validation_agrees_with_serde_json_representation() {
    let schema = json!({
        "type": "object",
        "required": ["id", "name"],
        "additionalProperties": false,
        "properties": {
            "id": {"type": "integer", "minimum": -5, "maximum": 1e19},
            "name": {"type": "string", "minLength": 2, "maxLength": 4, "format": "email"},
            "kind": {"enum": ["a", "b", 3, null, {"x": [1]}]},
            "fixed": {"const": {"k": [1, 2.0]}},
            "score": {"type": "number", "multipleOf": 0.5, "exclusiveMinimum": 0},
            "tags": {"type": "array", "uniqueItems": true, "items": {"type": "string"}, "maxItems": 3},
            "map": {
                "type": "object",
                "propertyNames": {"pattern": "^[a-z]+$"},
                "patternProperties": {"^x": {"type": "boolean"}},
                "additionalProperties": {"type": "null"}
            },
            "choice": {"oneOf": [{"type": "string"}, {"type": "integer"}]},
            "deep": {"$ref": "#/$defs/node"}
        },
        "$defs": {
            "node": {
                "type": "object",
                "properties": {"next": {"anyOf": [{"type": "null"}, {"$ref": "#/$defs/node"}]}}
            }
        }
    });
    let tape = jsonschema::options_for::<Tape>()
        .should_validate_formats(true)
        .with_format("email", |s: &str| s.contains('@'))
        .build(&schema)
        .unwrap();
    let serde = jsonschema::options()
        .should_validate_formats(true)
        .with_format("email", |s: &str| s.contains('@'))
        .build(&schema)
        .unwrap();
    let instances = [
        json!({"id": 1, "name": "a@b"}),
        json!({"id": 1.0, "name": "a@b"}),
        json!({"id": 1.5, "name": "a@b"}),
        json!({"id": -6, "name": "a@b"}),
        json!({"id": u64::MAX, "name": "a@b"}),
        json!({"id": 1, "name": "ab"}),
        json!({"id": 1, "name": "\u{1F980}@\u{1F980}"}),
        json!({"id": 1, "name": "a@bcde"}),
        json!({"id": 1}),
        json!({"id": 1, "name": "a@b", "extra": 1}),
        json!({"id": 1, "name": "a@b", "kind": "b"}),
        json!({"id": 1, "name": "a@b", "kind": 3.0}),
        json!({"id": 1, "name": "a@b", "kind": null}),
        json!({"id": 1, "name": "a@b", "kind": {"x": [1.0]}}),
        json!({"id": 1, "name": "a@b", "kind": "c"}),
        json!({"id": 1, "name": "a@b", "fixed": {"k": [1.0, 2]}}),
        json!({"id": 1, "name": "a@b", "fixed": {"k": [1, 3]}}),
        json!({"id": 1, "name": "a@b", "score": 2.5}),
        json!({"id": 1, "name": "a@b", "score": 2.25}),
        json!({"id": 1, "name": "a@b", "score": 0}),
        json!({"id": 1, "name": "a@b", "tags": ["a", "b"]}),
        json!({"id": 1, "name": "a@b", "tags": ["a", "a"]}),
        json!({"id": 1, "name": "a@b", "tags": ["a", 1]}),
        json!({"id": 1, "name": "a@b", "tags": ["a", "b", "c", "d"]}),
        json!({"id": 1, "name": "a@b", "map": {"xa": true, "b": null}}),
        json!({"id": 1, "name": "a@b", "map": {"xa": 1}}),
        json!({"id": 1, "name": "a@b", "map": {"B": null}}),
        json!({"id": 1, "name": "a@b", "choice": "s"}),
        json!({"id": 1, "name": "a@b", "choice": true}),
        json!({"id": 1, "name": "a@b", "deep": {"next": {"next": null}}}),
        json!({"id": 1, "name": "a@b", "deep": {"next": {"next": 1}}}),
        json!([1, 2]),
        json!("x"),
        json!(null),
    ];
    for instance in &instances {
        let doc = Document::from_serialize(instance).unwrap();
        let text = instance.to_string();
        let parsed = Document::parse(text.as_bytes()).unwrap();
        let expected = serde.is_valid(instance);
        assert_eq!(tape.is_valid(doc.root()), expected, "{instance}");
        assert_eq!(tape.is_valid(parsed.root()), expected, "{instance}");
        let paths = |errors: Vec<String>| {
            let mut errors = errors;
            errors.sort();
            errors
        };
        let theirs = paths(
            serde
                .iter_errors(instance)
                .map(|e| format!("{} {}", e.instance_path(), e.schema_path()))
                .collect(),
        );
        let ours = paths(
            tape.iter_errors(parsed.root())
                .map(|e| format!("{} {}", e.instance_path(), e.schema_path()))
                .collect(),
        );
        assert_eq!(ours, theirs, "{instance}");
        let masked: Vec<String> = tape
            .iter_errors(parsed.root())
            .map(|e| e.masked().to_string())
            .collect();
        let masked_serde: Vec<String> = serde
            .iter_errors(instance)
            .map(|e| e.masked().to_string())
            .collect();
        assert_eq!(paths(masked), paths(masked_serde), "{instance}");
    }
}

fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<u64>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        ".*".prop_map(Value::String),
        "[a-z\"\\\\\n\u{e9}\u{1F980}]{0,6}".prop_map(Value::String),
    ];
    leaf.prop_recursive(6, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
            prop::collection::btree_map("[a-z\"\\\\]{0,4}", inner, 0..8)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #[test]
    fn round_trips_arbitrary_json(value in arb_json()) {
        let text = value.to_string();
        let doc = Document::parse(text.as_bytes()).unwrap();
        prop_assert_eq!(&doc.to_value(), &value);
        let pretty = serde_json::to_string_pretty(&value).unwrap();
        prop_assert_eq!(&Document::parse(pretty.as_bytes()).unwrap().to_value(), &value);
        let built = Document::from_serialize(&value).unwrap();
        prop_assert_eq!(&built.to_value(), &value);
        prop_assert_eq!(&Value::deserialize(doc.root()).unwrap(), &value);
        prop_assert_eq!(&Value::deserialize(built.root()).unwrap(), &value);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..64)) {
        let ours = Document::parse(&bytes);
        let theirs = serde_json::from_slice::<Value>(&bytes);
        prop_assert_eq!(ours.is_ok(), theirs.is_ok());
        if let (Ok(a), Ok(b)) = (ours, theirs) {
            prop_assert_eq!(a.to_value(), b);
        }
    }

    #[test]
    fn json_like_text_agrees_with_serde_json(text in "[\\[\\]{}\":,0-9eE.+\\-a-z\\\\ ]{0,24}") {
        let ours = Document::parse(text.as_bytes());
        let theirs = serde_json::from_str::<Value>(&text);
        prop_assert_eq!(ours.is_ok(), theirs.is_ok(), "{:?}", text);
        if let (Ok(a), Ok(b)) = (ours, theirs) {
            prop_assert_eq!(a.to_value(), b);
        }
    }
}
