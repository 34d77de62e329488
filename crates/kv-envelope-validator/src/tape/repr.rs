//! The jsonschema crate's representation traits implemented for [`Document`](super::Document)s
//! ([`Tape`]).

#[cfg(feature = "jsonschema")]
use std::borrow::Cow;

#[cfg(feature = "jsonschema")]
use jsonschema::{
    json::{cmp, Array, Json, JsonNumber, Node, NodeIdentity, Object},
    JsonType,
};
#[cfg(feature = "jsonschema")]
use serde_json::Value;

#[cfg(feature = "jsonschema")]
use super::{Document, Elements, Entry, Members, NodeRef, Number, View};

/// The jsonschema representation of [`Document`](super::Document)s (with the `jsonschema`
/// feature, `jsonschema::options_for::<Tape>()` builds validators that validate them).
#[derive(Debug, Clone, Copy)]
pub struct Tape;

#[cfg(feature = "jsonschema")]
impl Json for Tape {
    type Node<'a> = NodeRef<'a>;
    type PreparedKey = Box<str>;
    type StringBuffer = Document<'static>;

    // Lookups scan the members, so one members pass always beats several lookups.
    const KEYS_PER_LOOKUP: usize = 1 << 16;
    const ACYCLIC: bool = true;

    fn prepare_key(key: &str) -> Box<str> {
        key.into()
    }

    fn with_string_node<T>(
        buffer: &mut Document<'static>,
        string: &str,
        f: impl FnOnce(NodeRef<'_>) -> T,
    ) -> T {
        buffer.strings.clear();
        buffer.strings.push_str(string);
        buffer.tape.clear();
        buffer.tape.push(Entry::Owned {
            start: 0,
            len: u32::try_from(string.len()).unwrap_or(u32::MAX),
        });
        f(NodeRef { doc: buffer, at: 0 })
    }
}

#[cfg(feature = "jsonschema")]
impl JsonNumber for Number {
    fn as_u64(&self) -> Option<u64> {
        match *self {
            Number::U64(n) => Some(n),
            Number::I64(_) | Number::F64(_) => None,
        }
    }

    fn as_i64(&self) -> Option<i64> {
        match *self {
            Number::U64(n) => i64::try_from(n).ok(),
            Number::I64(n) => Some(n),
            Number::F64(_) => None,
        }
    }

    fn as_f64(&self) -> Option<f64> {
        Some(match *self {
            Number::U64(n) => n as f64,
            Number::I64(n) => n as f64,
            Number::F64(f) => f,
        })
    }

    fn as_str(&self) -> Cow<'_, str> {
        Cow::Owned(self.to_number().to_string())
    }

    fn to_number(&self) -> Cow<'_, serde_json::Number> {
        Cow::Owned(match *self {
            Number::U64(n) => n.into(),
            Number::I64(n) => n.into(),
            // Documents hold finite floats only.
            Number::F64(f) => serde_json::Number::from_f64(f).unwrap_or_else(|| 0.into()),
        })
    }

    fn is_integer(&self) -> bool {
        self.is_integral()
    }

    fn is_written_as_integer(&self) -> bool {
        !matches!(self, Number::F64(_))
    }
}

#[cfg(feature = "jsonschema")]
impl<'a> Node<'a, Tape> for NodeRef<'a> {
    type Object = ObjectRef<'a>;
    type Array = ArrayRef<'a>;
    type Number = Number;

    fn as_object(&self) -> Option<ObjectRef<'a>> {
        match self.entry() {
            Entry::Object { len, end } => Some(ObjectRef {
                doc: self.doc,
                at: self.at,
                len,
                end,
            }),
            _ => None,
        }
    }

    fn as_array(&self) -> Option<ArrayRef<'a>> {
        match self.entry() {
            Entry::Array { len, end } => Some(ArrayRef {
                doc: self.doc,
                at: self.at,
                len,
                end,
            }),
            _ => None,
        }
    }

    fn as_string(&self) -> Option<Cow<'a, str>> {
        self.as_str().map(Cow::Borrowed)
    }

    fn as_number(&self) -> Option<Number> {
        match self.view() {
            View::Number(n) => Some(n),
            _ => None,
        }
    }

    fn as_boolean(&self) -> Option<bool> {
        match self.entry() {
            Entry::Bool(b) => Some(b),
            _ => None,
        }
    }

    fn is_null(&self) -> bool {
        self.entry() == Entry::Null
    }

    fn is_number(&self) -> bool {
        matches!(self.entry(), Entry::U64(_) | Entry::I64(_) | Entry::F64(_))
    }

    fn is_string(&self) -> bool {
        matches!(self.entry(), Entry::Str(_) | Entry::Owned { .. })
    }

    fn json_type(&self) -> JsonType {
        match self.entry() {
            Entry::Null => JsonType::Null,
            Entry::Bool(_) => JsonType::Boolean,
            Entry::U64(_) | Entry::I64(_) | Entry::F64(_) => JsonType::Number,
            Entry::Str(_) | Entry::Owned { .. } => JsonType::String,
            Entry::Array { .. } => JsonType::Array,
            Entry::Object { .. } => JsonType::Object,
        }
    }

    fn string_length_within(&self, min: u64, max: u64) -> Option<bool> {
        let s = self.as_str()?;
        // A code point takes one to four bytes: the byte length often decides without counting.
        let bytes = s.len() as u64;
        if bytes < min || bytes.div_ceil(4) > max {
            return Some(false);
        }
        if min <= bytes.div_ceil(4) && bytes <= max {
            return Some(true);
        }
        Some((min..=max).contains(&(s.chars().count() as u64)))
    }

    fn equals_value(&self, expected: &Value) -> bool {
        match (self.entry(), expected) {
            (Entry::Null, Value::Null) => true,
            (Entry::Bool(a), Value::Bool(b)) => a == *b,
            (Entry::Str(_) | Entry::Owned { .. }, Value::String(b)) => {
                self.as_str() == Some(b.as_str())
            }
            (Entry::U64(_) | Entry::I64(_) | Entry::F64(_), Value::Number(b)) => {
                self.as_number().is_some_and(|a| cmp::equal_numbers(&a, b))
            }
            (Entry::Array { .. } | Entry::Object { .. }, Value::Array(_) | Value::Object(_)) => {
                cmp::equal(&self.to_json_value(), expected)
            }
            _ => false,
        }
    }

    fn to_value(&self) -> Cow<'a, Value> {
        Cow::Owned(self.to_json_value())
    }

    fn identity(&self) -> Option<NodeIdentity> {
        Some(NodeIdentity::tagged(
            std::ptr::from_ref(self.doc) as usize,
            self.at,
        ))
    }
}

#[cfg(feature = "jsonschema")]
/// An object node.
#[derive(Clone, Copy)]
pub struct ObjectRef<'a> {
    doc: &'a Document<'a>,
    at: u32,
    len: u32,
    end: u32,
}

#[cfg(feature = "jsonschema")]
impl<'a> Object<'a, Tape> for ObjectRef<'a> {
    type Node = NodeRef<'a>;
    type MemberName = &'a str;
    type MembersIter = Members<'a>;

    fn len(&self) -> usize {
        self.len as usize
    }

    fn get(&self, key: &Box<str>) -> Option<NodeRef<'a>> {
        self.members()
            .find(|(name, _)| *name == &**key)
            .map(|(_, value)| value)
    }

    fn members(&self) -> Members<'a> {
        Members {
            doc: self.doc,
            pos: self.at + 1,
            end: self.end,
        }
    }
}

#[cfg(feature = "jsonschema")]
/// An array node.
#[derive(Clone, Copy)]
pub struct ArrayRef<'a> {
    doc: &'a Document<'a>,
    at: u32,
    len: u32,
    end: u32,
}

#[cfg(feature = "jsonschema")]
impl<'a> Array<'a, Tape> for ArrayRef<'a> {
    type Node = NodeRef<'a>;
    type ElementsIter = Elements<'a>;

    fn len(&self) -> usize {
        self.len as usize
    }

    fn elements(&self) -> Elements<'a> {
        Elements {
            doc: self.doc,
            pos: self.at + 1,
            end: self.end,
        }
    }
}
