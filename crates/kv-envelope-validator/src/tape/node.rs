//! Nodes of a [`Document`]: handles, their contents, and iterators over members and elements.

use std::fmt;

use serde::de::Unexpected;
use serde_json::Value;

use super::{Document, Entry};

/// A node of a [`Document`]: a cheap, copyable handle.
#[derive(Clone, Copy)]
pub struct NodeRef<'a> {
    pub(super) doc: &'a Document<'a>,
    pub(super) at: u32,
}

impl fmt::Debug for NodeRef<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NodeRef").field("at", &self.at).finish()
    }
}

impl<'a> NodeRef<'a> {
    pub(super) fn entry(&self) -> Entry<'a> {
        self.doc.entry(self.at)
    }

    pub(super) fn as_str(&self) -> Option<&'a str> {
        self.doc.string_of(self.entry())
    }

    /// The node as a `serde_json::Value` (recursion bounded by
    /// [`MAX_DEPTH`](super::MAX_DEPTH)).
    pub fn to_json_value(&self) -> Value {
        match self.entry() {
            Entry::Null => Value::Null,
            Entry::Bool(b) => Value::Bool(b),
            Entry::U64(n) => Value::from(n),
            Entry::I64(n) => Value::from(n),
            Entry::F64(f) => serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number),
            Entry::Str(_) | Entry::Owned { .. } => {
                Value::String(self.as_str().unwrap_or_default().to_owned())
            }
            Entry::Array { end, .. } => Value::Array(
                Elements {
                    doc: self.doc,
                    pos: self.at + 1,
                    end,
                }
                .map(|e| e.to_json_value())
                .collect(),
            ),
            Entry::Object { end, .. } => Value::Object(
                Members {
                    doc: self.doc,
                    pos: self.at + 1,
                    end,
                }
                .map(|(k, v)| (k.to_owned(), v.to_json_value()))
                .collect(),
            ),
        }
    }

    pub(super) fn unexpected(&self) -> Unexpected<'a> {
        match self.entry() {
            Entry::Null => Unexpected::Unit,
            Entry::Bool(b) => Unexpected::Bool(b),
            Entry::U64(n) => Unexpected::Unsigned(n),
            Entry::I64(n) => Unexpected::Signed(n),
            Entry::F64(f) => Unexpected::Float(f),
            Entry::Str(_) | Entry::Owned { .. } => {
                Unexpected::Str(self.as_str().unwrap_or_default())
            }
            Entry::Array { .. } => Unexpected::Seq,
            Entry::Object { .. } => Unexpected::Map,
        }
    }
}

/// What a node holds, for the in-crate validator (`super::compact`).
pub(crate) enum View<'a> {
    Null,
    Bool(bool),
    Number(Number),
    Str(&'a str),
    Array { len: u32, items: Elements<'a> },
    Object { len: u32, members: Members<'a> },
}

impl<'a> NodeRef<'a> {
    /// The node's kind and contents.
    #[inline]
    pub(crate) fn view(&self) -> View<'a> {
        let doc = self.doc;
        let pos = self.at + 1;
        match self.entry() {
            Entry::Null => View::Null,
            Entry::Bool(b) => View::Bool(b),
            Entry::U64(n) => View::Number(Number::U64(n)),
            Entry::I64(n) => View::Number(Number::I64(n)),
            Entry::F64(f) => View::Number(Number::F64(f)),
            Entry::Str(s) => View::Str(s),
            e @ Entry::Owned { .. } => View::Str(doc.string_of(e).unwrap_or_default()),
            Entry::Array { len, end } => View::Array {
                len,
                items: Elements { doc, pos, end },
            },
            Entry::Object { len, end } => View::Object {
                len,
                members: Members { doc, pos, end },
            },
        }
    }
}

/// A number of a [`Document`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Number {
    /// Non-negative integer.
    U64(u64),
    /// Negative integer.
    I64(i64),
    /// Anything else (finite).
    F64(f64),
}

impl Number {
    /// Whether the number is an integer by value (`1.0` is), as JSON Schema's `integer` type
    /// counts them.
    pub(crate) fn is_integral(self) -> bool {
        match self {
            Number::U64(_) | Number::I64(_) => true,
            Number::F64(f) => f.fract() == 0.0,
        }
    }
}

/// The members of an object, in document order.
#[derive(Clone)]
pub struct Members<'a> {
    pub(super) doc: &'a Document<'a>,
    pub(super) pos: u32,
    pub(super) end: u32,
}

impl<'a> Iterator for Members<'a> {
    type Item = (&'a str, NodeRef<'a>);

    fn next(&mut self) -> Option<Self::Item> {
        if self.pos >= self.end {
            return None;
        }
        let key = self.doc.str_at(self.pos);
        let value = self.pos + 1;
        self.pos = self.doc.after(value);
        Some((
            key,
            NodeRef {
                doc: self.doc,
                at: value,
            },
        ))
    }
}

/// The elements of an array, in order.
#[derive(Clone)]
pub struct Elements<'a> {
    pub(super) doc: &'a Document<'a>,
    pub(super) pos: u32,
    pub(super) end: u32,
}

impl<'a> Iterator for Elements<'a> {
    type Item = NodeRef<'a>;

    fn next(&mut self) -> Option<NodeRef<'a>> {
        if self.pos >= self.end {
            return None;
        }
        let at = self.pos;
        self.pos = self.doc.after(at);
        Some(NodeRef { doc: self.doc, at })
    }
}
