//! Any `Serialize` value into a [`Document`], shaped like `serde_json::to_value`.
//!
//! (One file on purpose: serde's `Serializer` for one data type is one trait family — the
//! serializer and its seven compound serializers — which reads best in one place, as in
//! serde_json's `value/ser.rs`.)

use std::fmt;

use serde::ser::{self, Serialize};
use serde_json::Value;

use super::{Document, Entry, MAX_DEPTH, RAW_VALUE_TOKEN};

/// A value cannot be shaped as JSON (e.g. a map key that is not a string or a number).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SerError(String);

impl fmt::Display for SerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for SerError {}

impl ser::Error for SerError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        SerError(msg.to_string())
    }
}

impl Document<'static> {
    /// The document of `value` as `serde_json::to_value` would shape it: structs and maps are
    /// objects, `None` and unit are `null`, enums are externally tagged, non-finite floats are
    /// `null`, map keys become strings. Fails where serde_json fails (e.g. a map key that is a
    /// sequence) and past [`MAX_DEPTH`] nested containers.
    pub fn from_serialize<T: Serialize + ?Sized>(value: &T) -> Result<Self, SerError> {
        Self::from_serialize_sized(value, 64)
    }

    /// [`Document::from_serialize`] with buffers sized for a value whose compact encoding
    /// (e.g. postcard) takes `encoded_len` bytes, so building rarely reallocates.
    pub fn from_serialize_sized<T: Serialize + ?Sized>(
        value: &T,
        encoded_len: usize,
    ) -> Result<Self, SerError> {
        let mut builder = Builder {
            // Keys are not in the encoding: allow for them.
            doc: Document::with_buffers(encoded_len / 4 + 16, encoded_len + 64),
            depth: 0,
        };
        value.serialize(&mut builder)?;
        Ok(builder.doc)
    }
}

fn ser_err(msg: &str) -> SerError {
    SerError(msg.to_owned())
}

struct Builder {
    doc: Document<'static>,
    depth: usize,
}

impl Builder {
    #[inline(always)]
    fn push(&mut self, entry: Entry<'static>) {
        self.doc.tape.push(entry);
    }

    #[inline]
    fn push_str(&mut self, s: &str) -> Result<(), SerError> {
        let start = self.doc.strings.len();
        self.doc.strings.push_str(s);
        let (Ok(start), Ok(len)) = (u32::try_from(start), u32::try_from(s.len())) else {
            return Err(ser_err("value too large"));
        };
        self.push(Entry::Owned { start, len });
        Ok(())
    }

    fn index(&self) -> Result<u32, SerError> {
        u32::try_from(self.doc.tape.len()).map_err(|_| ser_err("value too large"))
    }

    /// Open a container: a placeholder entry patched by [`Builder::close`].
    fn open(&mut self, object: bool) -> Result<usize, SerError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(ser_err("recursion limit exceeded"));
        }
        let at = self.doc.tape.len();
        self.push(if object {
            Entry::Object { len: 0, end: 0 }
        } else {
            Entry::Array { len: 0, end: 0 }
        });
        Ok(at)
    }

    /// Close the container opened at `at`. `map`: keys came from a map (or a flattened
    /// struct) and may repeat; a struct's field names never do.
    fn close(&mut self, at: usize, len: u32, map: bool) -> Result<(), SerError> {
        let end = self.index()?;
        match self.doc.tape.get(at) {
            Some(Entry::Object { .. }) => self.doc.finish_object(at, len, map),
            Some(_) => self.doc.tape[at] = Entry::Array { len, end },
            None => {}
        }
        self.depth -= 1;
        Ok(())
    }

    /// Append a parsed document (a `RawValue`'s JSON text), copying its strings.
    fn append(&mut self, other: &Document<'_>) -> Result<(), SerError> {
        let base = self.index()?;
        if other.tape.len() > 1 && self.depth + depth_of(other) > MAX_DEPTH {
            return Err(ser_err("recursion limit exceeded"));
        }
        for (i, entry) in other.tape.iter().enumerate() {
            match *entry {
                Entry::Str(_) | Entry::Owned { .. } => {
                    let s = other.str_at(i as u32);
                    self.push_str(s)?;
                }
                Entry::Array { len, end } => self.push(Entry::Array {
                    len,
                    end: end.saturating_add(base),
                }),
                Entry::Object { len, end } => self.push(Entry::Object {
                    len,
                    end: end.saturating_add(base),
                }),
                Entry::Null => self.push(Entry::Null),
                Entry::Bool(b) => self.push(Entry::Bool(b)),
                Entry::U64(n) => self.push(Entry::U64(n)),
                Entry::I64(n) => self.push(Entry::I64(n)),
                Entry::F64(f) => self.push(Entry::F64(f)),
            }
        }
        Ok(())
    }
}

/// Nesting depth of a document (iterative: the tape is flat).
fn depth_of(doc: &Document<'_>) -> usize {
    let mut open_ends: Vec<u32> = Vec::new();
    let mut deepest = 0;
    for (i, entry) in doc.tape.iter().enumerate() {
        while open_ends.last().is_some_and(|&end| end as usize <= i) {
            open_ends.pop();
        }
        if let Entry::Array { end, .. } | Entry::Object { end, .. } = *entry {
            open_ends.push(end);
            deepest = deepest.max(open_ends.len());
        }
    }
    deepest
}

fn float_entry(f: f64) -> Entry<'static> {
    if f.is_finite() {
        Entry::F64(f)
    } else {
        Entry::Null
    }
}

impl<'b> ser::Serializer for &'b mut Builder {
    type Ok = ();
    type Error = SerError;
    type SerializeSeq = Compound<'b>;
    type SerializeTuple = Compound<'b>;
    type SerializeTupleStruct = Compound<'b>;
    type SerializeTupleVariant = Compound<'b>;
    type SerializeMap = Compound<'b>;
    type SerializeStruct = Compound<'b>;
    type SerializeStructVariant = Compound<'b>;

    fn serialize_bool(self, v: bool) -> Result<(), SerError> {
        self.push(Entry::Bool(v));
        Ok(())
    }

    fn serialize_i8(self, v: i8) -> Result<(), SerError> {
        self.serialize_i64(i64::from(v))
    }

    fn serialize_i16(self, v: i16) -> Result<(), SerError> {
        self.serialize_i64(i64::from(v))
    }

    fn serialize_i32(self, v: i32) -> Result<(), SerError> {
        self.serialize_i64(i64::from(v))
    }

    fn serialize_i64(self, v: i64) -> Result<(), SerError> {
        self.push(match u64::try_from(v) {
            Ok(n) => Entry::U64(n),
            Err(_) => Entry::I64(v),
        });
        Ok(())
    }

    fn serialize_i128(self, v: i128) -> Result<(), SerError> {
        if let Ok(n) = u64::try_from(v) {
            self.serialize_u64(n)
        } else if let Ok(n) = i64::try_from(v) {
            self.serialize_i64(n)
        } else {
            Err(ser_err("number out of range"))
        }
    }

    fn serialize_u8(self, v: u8) -> Result<(), SerError> {
        self.serialize_u64(u64::from(v))
    }

    fn serialize_u16(self, v: u16) -> Result<(), SerError> {
        self.serialize_u64(u64::from(v))
    }

    fn serialize_u32(self, v: u32) -> Result<(), SerError> {
        self.serialize_u64(u64::from(v))
    }

    fn serialize_u64(self, v: u64) -> Result<(), SerError> {
        self.push(Entry::U64(v));
        Ok(())
    }

    fn serialize_u128(self, v: u128) -> Result<(), SerError> {
        match u64::try_from(v) {
            Ok(n) => self.serialize_u64(n),
            Err(_) => Err(ser_err("number out of range")),
        }
    }

    fn serialize_f32(self, v: f32) -> Result<(), SerError> {
        self.push(float_entry(f64::from(v)));
        Ok(())
    }

    fn serialize_f64(self, v: f64) -> Result<(), SerError> {
        self.push(float_entry(v));
        Ok(())
    }

    fn serialize_char(self, v: char) -> Result<(), SerError> {
        self.push_str(v.encode_utf8(&mut [0; 4]))
    }

    fn serialize_str(self, v: &str) -> Result<(), SerError> {
        self.push_str(v)
    }

    fn serialize_bytes(self, v: &[u8]) -> Result<(), SerError> {
        let at = self.open(false)?;
        for &b in v {
            self.push(Entry::U64(u64::from(b)));
        }
        let len = u32::try_from(v.len()).map_err(|_| ser_err("value too large"))?;
        self.close(at, len, false)
    }

    fn serialize_none(self) -> Result<(), SerError> {
        self.push(Entry::Null);
        Ok(())
    }

    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<(), SerError> {
        value.serialize(self)
    }

    fn serialize_unit(self) -> Result<(), SerError> {
        self.push(Entry::Null);
        Ok(())
    }

    fn serialize_unit_struct(self, _name: &'static str) -> Result<(), SerError> {
        self.serialize_unit()
    }

    fn serialize_unit_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
    ) -> Result<(), SerError> {
        self.push_str(variant)
    }

    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        value: &T,
    ) -> Result<(), SerError> {
        value.serialize(self)
    }

    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<(), SerError> {
        let at = self.open(true)?;
        self.push_str(variant)?;
        value.serialize(&mut *self)?;
        self.close(at, 1, false)
    }

    fn serialize_seq(self, _len: Option<usize>) -> Result<Compound<'b>, SerError> {
        let at = self.open(false)?;
        Ok(Compound::new(self, at, None))
    }

    fn serialize_tuple(self, len: usize) -> Result<Compound<'b>, SerError> {
        self.serialize_seq(Some(len))
    }

    fn serialize_tuple_struct(
        self,
        _name: &'static str,
        len: usize,
    ) -> Result<Compound<'b>, SerError> {
        self.serialize_seq(Some(len))
    }

    fn serialize_tuple_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        _len: usize,
    ) -> Result<Compound<'b>, SerError> {
        let outer = self.open(true)?;
        self.push_str(variant)?;
        let at = self.open(false)?;
        Ok(Compound::new(self, at, Some(outer)))
    }

    fn serialize_map(self, _len: Option<usize>) -> Result<Compound<'b>, SerError> {
        let at = self.open(true)?;
        let mut map = Compound::new(self, at, None);
        map.map = true;
        Ok(map)
    }

    fn serialize_struct(self, name: &'static str, len: usize) -> Result<Compound<'b>, SerError> {
        if name == RAW_VALUE_TOKEN {
            return Ok(Compound::raw(self));
        }
        let _ = len;
        let at = self.open(true)?;
        Ok(Compound::new(self, at, None))
    }

    fn serialize_struct_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        _len: usize,
    ) -> Result<Compound<'b>, SerError> {
        let outer = self.open(true)?;
        self.push_str(variant)?;
        let at = self.open(true)?;
        Ok(Compound::new(self, at, Some(outer)))
    }
}

/// An open container being serialized.
pub struct Compound<'b> {
    builder: &'b mut Builder,
    at: usize,
    len: u32,
    /// The one-member object around a tuple or struct variant.
    outer: Option<usize>,
    /// A `RawValue`: its single field is JSON text to parse and append.
    raw: bool,
    /// A map, whose keys may repeat once stringified (see [`Builder::close`]).
    map: bool,
}

impl<'b> Compound<'b> {
    fn new(builder: &'b mut Builder, at: usize, outer: Option<usize>) -> Self {
        Compound {
            builder,
            at,
            len: 0,
            outer,
            raw: false,
            map: false,
        }
    }

    fn raw(builder: &'b mut Builder) -> Self {
        Compound {
            builder,
            at: 0,
            len: 0,
            outer: None,
            raw: true,
            map: false,
        }
    }

    #[inline]
    fn element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), SerError> {
        value.serialize(&mut *self.builder)?;
        self.len = self.len.saturating_add(1);
        Ok(())
    }

    fn field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), SerError> {
        if self.raw {
            // The field is the JSON text, as a string.
            let Ok(Value::String(text)) = serde_json::to_value(value) else {
                return Err(ser_err("RawValue must serialize as a string"));
            };
            let doc = Document::parse(text.as_bytes())
                .map_err(|_| ser_err("RawValue holds invalid JSON"))?;
            return self.builder.append(&doc);
        }
        self.builder.push(Entry::Str(key));
        self.element(value)
    }

    fn finish(self) -> Result<(), SerError> {
        if self.raw {
            return Ok(());
        }
        self.builder.close(self.at, self.len, self.map)?;
        if let Some(outer) = self.outer {
            self.builder.close(outer, 1, false)?;
        }
        Ok(())
    }
}

impl ser::SerializeSeq for Compound<'_> {
    type Ok = ();
    type Error = SerError;

    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), SerError> {
        self.element(value)
    }

    fn end(self) -> Result<(), SerError> {
        self.finish()
    }
}

impl ser::SerializeTuple for Compound<'_> {
    type Ok = ();
    type Error = SerError;

    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), SerError> {
        self.element(value)
    }

    fn end(self) -> Result<(), SerError> {
        self.finish()
    }
}

impl ser::SerializeTupleStruct for Compound<'_> {
    type Ok = ();
    type Error = SerError;

    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), SerError> {
        self.element(value)
    }

    fn end(self) -> Result<(), SerError> {
        self.finish()
    }
}

impl ser::SerializeTupleVariant for Compound<'_> {
    type Ok = ();
    type Error = SerError;

    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), SerError> {
        self.element(value)
    }

    fn end(self) -> Result<(), SerError> {
        self.finish()
    }
}

impl ser::SerializeMap for Compound<'_> {
    type Ok = ();
    type Error = SerError;

    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), SerError> {
        key.serialize(KeySerializer(&mut *self.builder))
    }

    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), SerError> {
        self.element(value)
    }

    fn end(self) -> Result<(), SerError> {
        self.finish()
    }
}

impl ser::SerializeStruct for Compound<'_> {
    type Ok = ();
    type Error = SerError;

    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), SerError> {
        self.field(key, value)
    }

    fn end(self) -> Result<(), SerError> {
        self.finish()
    }
}

impl ser::SerializeStructVariant for Compound<'_> {
    type Ok = ();
    type Error = SerError;

    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), SerError> {
        self.field(key, value)
    }

    fn end(self) -> Result<(), SerError> {
        self.finish()
    }
}

/// A map key: strings as they are, numbers and bools as their text, as serde_json does.
struct KeySerializer<'b>(&'b mut Builder);

fn key_must_be_a_string() -> SerError {
    ser_err("key must be a string")
}

macro_rules! serialize_display_key {
    ($($method:ident: $ty:ty,)*) => {$(
        fn $method(self, v: $ty) -> Result<(), SerError> {
            self.0.push_str(&v.to_string())
        }
    )*};
}

impl ser::Serializer for KeySerializer<'_> {
    type Ok = ();
    type Error = SerError;
    type SerializeSeq = ser::Impossible<(), SerError>;
    type SerializeTuple = ser::Impossible<(), SerError>;
    type SerializeTupleStruct = ser::Impossible<(), SerError>;
    type SerializeTupleVariant = ser::Impossible<(), SerError>;
    type SerializeMap = ser::Impossible<(), SerError>;
    type SerializeStruct = ser::Impossible<(), SerError>;
    type SerializeStructVariant = ser::Impossible<(), SerError>;

    serialize_display_key! {
        serialize_bool: bool,
        serialize_i8: i8, serialize_i16: i16, serialize_i32: i32, serialize_i64: i64,
        serialize_i128: i128,
        serialize_u8: u8, serialize_u16: u16, serialize_u32: u32, serialize_u64: u64,
        serialize_u128: u128,
        serialize_char: char,
    }

    fn serialize_f32(self, v: f32) -> Result<(), SerError> {
        self.serialize_f64(f64::from(v))
    }

    fn serialize_f64(self, v: f64) -> Result<(), SerError> {
        if !v.is_finite() {
            return Err(ser_err("float key must be finite"));
        }
        // serde_json's own float formatting, so keys read back the same.
        let text = serde_json::to_string(&v).map_err(|_| ser_err("float key must be finite"))?;
        self.0.push_str(&text)
    }

    fn serialize_str(self, v: &str) -> Result<(), SerError> {
        self.0.push_str(v)
    }

    fn serialize_bytes(self, _v: &[u8]) -> Result<(), SerError> {
        Err(key_must_be_a_string())
    }

    fn serialize_none(self) -> Result<(), SerError> {
        Err(key_must_be_a_string())
    }

    fn serialize_some<T: Serialize + ?Sized>(self, _value: &T) -> Result<(), SerError> {
        Err(key_must_be_a_string())
    }

    fn serialize_unit(self) -> Result<(), SerError> {
        Err(key_must_be_a_string())
    }

    fn serialize_unit_struct(self, _name: &'static str) -> Result<(), SerError> {
        Err(key_must_be_a_string())
    }

    fn serialize_unit_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
    ) -> Result<(), SerError> {
        self.0.push_str(variant)
    }

    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        value: &T,
    ) -> Result<(), SerError> {
        value.serialize(self)
    }

    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        _value: &T,
    ) -> Result<(), SerError> {
        Err(key_must_be_a_string())
    }

    fn serialize_seq(self, _len: Option<usize>) -> Result<Self::SerializeSeq, SerError> {
        Err(key_must_be_a_string())
    }

    fn serialize_tuple(self, _len: usize) -> Result<Self::SerializeTuple, SerError> {
        Err(key_must_be_a_string())
    }

    fn serialize_tuple_struct(
        self,
        _name: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeTupleStruct, SerError> {
        Err(key_must_be_a_string())
    }

    fn serialize_tuple_variant(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeTupleVariant, SerError> {
        Err(key_must_be_a_string())
    }

    fn serialize_map(self, _len: Option<usize>) -> Result<Self::SerializeMap, SerError> {
        Err(key_must_be_a_string())
    }

    fn serialize_struct(
        self,
        _name: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeStruct, SerError> {
        Err(key_must_be_a_string())
    }

    fn serialize_struct_variant(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeStructVariant, SerError> {
        Err(key_must_be_a_string())
    }
}
