//! A node into any `Deserialize` type, with the semantics of deserializing from a
//! `&serde_json::Value`.

use std::fmt;

use serde::de::{self, IntoDeserializer, Unexpected, Visitor};

use super::{Elements, Entry, Members, NodeRef, RAW_VALUE_TOKEN};

/// A value did not fit the type it was deserialized into. The message may quote the value:
/// show it to no one but a developer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeError(String);

impl fmt::Display for DeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for DeError {}

impl de::Error for DeError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        DeError(msg.to_string())
    }
}

impl<'de> NodeRef<'de> {
    fn invalid_type<E: de::Error>(&self, exp: &dyn de::Expected) -> E {
        E::invalid_type(self.unexpected(), exp)
    }

    fn visit_array<V: Visitor<'de>>(self, len: u32, end: u32, v: V) -> Result<V::Value, DeError> {
        let mut seq = SeqAccess {
            items: Elements {
                doc: self.doc,
                pos: self.at + 1,
                end,
            },
            remaining: len as usize,
        };
        let out = v.visit_seq(&mut seq)?;
        if seq.remaining == 0 {
            Ok(out)
        } else {
            Err(de::Error::invalid_length(
                len as usize,
                &"fewer elements in array",
            ))
        }
    }

    fn visit_object<V: Visitor<'de>>(self, len: u32, end: u32, v: V) -> Result<V::Value, DeError> {
        let mut map = MapAccess {
            members: Members {
                doc: self.doc,
                pos: self.at + 1,
                end,
            },
            value: None,
            remaining: len as usize,
        };
        let out = v.visit_map(&mut map)?;
        if map.remaining == 0 {
            Ok(out)
        } else {
            Err(de::Error::invalid_length(
                len as usize,
                &"fewer elements in map",
            ))
        }
    }

    fn deserialize_number<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        match self.entry() {
            Entry::U64(n) => v.visit_u64(n),
            Entry::I64(n) => v.visit_i64(n),
            Entry::F64(f) => v.visit_f64(f),
            _ => Err(self.invalid_type(&v)),
        }
    }
}

macro_rules! deserialize_numbers {
    ($($method:ident)*) => {$(
        fn $method<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
            self.deserialize_number(v)
        }
    )*};
}

impl<'de> de::Deserializer<'de> for NodeRef<'de> {
    type Error = DeError;

    fn deserialize_any<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        match self.entry() {
            Entry::Null => v.visit_unit(),
            Entry::Bool(b) => v.visit_bool(b),
            Entry::U64(n) => v.visit_u64(n),
            Entry::I64(n) => v.visit_i64(n),
            Entry::F64(f) => v.visit_f64(f),
            Entry::Str(_) | Entry::Owned { .. } => {
                v.visit_borrowed_str(self.as_str().unwrap_or_default())
            }
            Entry::Array { len, end } => self.visit_array(len, end, v),
            Entry::Object { len, end } => self.visit_object(len, end, v),
        }
    }

    deserialize_numbers! {
        deserialize_i8 deserialize_i16 deserialize_i32 deserialize_i64 deserialize_i128
        deserialize_u8 deserialize_u16 deserialize_u32 deserialize_u64 deserialize_u128
        deserialize_f32 deserialize_f64
    }

    fn deserialize_bool<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        match self.entry() {
            Entry::Bool(b) => v.visit_bool(b),
            _ => Err(self.invalid_type(&v)),
        }
    }

    fn deserialize_char<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        self.deserialize_str(v)
    }

    fn deserialize_str<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        match self.as_str() {
            Some(s) => v.visit_borrowed_str(s),
            None => Err(self.invalid_type(&v)),
        }
    }

    fn deserialize_string<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        self.deserialize_str(v)
    }

    fn deserialize_bytes<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        match self.entry() {
            Entry::Str(_) | Entry::Owned { .. } => {
                v.visit_borrowed_bytes(self.as_str().unwrap_or_default().as_bytes())
            }
            Entry::Array { len, end } => self.visit_array(len, end, v),
            _ => Err(self.invalid_type(&v)),
        }
    }

    fn deserialize_byte_buf<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        self.deserialize_bytes(v)
    }

    fn deserialize_option<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        match self.entry() {
            Entry::Null => v.visit_none(),
            _ => v.visit_some(self),
        }
    }

    fn deserialize_unit<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        match self.entry() {
            Entry::Null => v.visit_unit(),
            _ => Err(self.invalid_type(&v)),
        }
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        v: V,
    ) -> Result<V::Value, DeError> {
        self.deserialize_unit(v)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        v: V,
    ) -> Result<V::Value, DeError> {
        if name == RAW_VALUE_TOKEN {
            // `Box<RawValue>` reads a one-entry map whose value is the JSON text.
            let text = self.to_json_value().to_string();
            return v.visit_map(de::value::MapDeserializer::new(std::iter::once((
                RAW_VALUE_TOKEN,
                text,
            ))));
        }
        v.visit_newtype_struct(self)
    }

    fn deserialize_seq<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        match self.entry() {
            Entry::Array { len, end } => self.visit_array(len, end, v),
            _ => Err(self.invalid_type(&v)),
        }
    }

    fn deserialize_tuple<V: Visitor<'de>>(self, _len: usize, v: V) -> Result<V::Value, DeError> {
        self.deserialize_seq(v)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _len: usize,
        v: V,
    ) -> Result<V::Value, DeError> {
        self.deserialize_seq(v)
    }

    fn deserialize_map<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        match self.entry() {
            Entry::Object { len, end } => self.visit_object(len, end, v),
            _ => Err(self.invalid_type(&v)),
        }
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        v: V,
    ) -> Result<V::Value, DeError> {
        match self.entry() {
            Entry::Array { len, end } => self.visit_array(len, end, v),
            Entry::Object { len, end } => self.visit_object(len, end, v),
            _ => Err(self.invalid_type(&v)),
        }
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        v: V,
    ) -> Result<V::Value, DeError> {
        match self.entry() {
            Entry::Str(_) | Entry::Owned { .. } => v.visit_enum(EnumAccess {
                variant: self.as_str().unwrap_or_default(),
                value: None,
            }),
            Entry::Object { len: 1, end } => {
                let mut members = Members {
                    doc: self.doc,
                    pos: self.at + 1,
                    end,
                };
                match members.next() {
                    Some((variant, value)) => v.visit_enum(EnumAccess {
                        variant,
                        value: Some(value),
                    }),
                    None => Err(de::Error::invalid_value(
                        Unexpected::Map,
                        &"map with a single key",
                    )),
                }
            }
            Entry::Object { .. } => Err(de::Error::invalid_value(
                Unexpected::Map,
                &"map with a single key",
            )),
            _ => Err(self.invalid_type(&"string or map")),
        }
    }

    fn deserialize_identifier<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        self.deserialize_str(v)
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        v.visit_unit()
    }
}

struct SeqAccess<'de> {
    items: Elements<'de>,
    remaining: usize,
}

impl<'de> de::SeqAccess<'de> for SeqAccess<'de> {
    type Error = DeError;

    fn next_element_seed<T: de::DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, DeError> {
        match self.items.next() {
            Some(node) => {
                self.remaining -= 1;
                seed.deserialize(node).map(Some)
            }
            None => Ok(None),
        }
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.remaining)
    }
}

struct MapAccess<'de> {
    members: Members<'de>,
    value: Option<NodeRef<'de>>,
    remaining: usize,
}

impl<'de> de::MapAccess<'de> for MapAccess<'de> {
    type Error = DeError;

    fn next_key_seed<K: de::DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, DeError> {
        match self.members.next() {
            Some((key, value)) => {
                self.remaining -= 1;
                self.value = Some(value);
                seed.deserialize(KeyDeserializer(key)).map(Some)
            }
            None => Ok(None),
        }
    }

    fn next_value_seed<V: de::DeserializeSeed<'de>>(
        &mut self,
        seed: V,
    ) -> Result<V::Value, DeError> {
        match self.value.take() {
            Some(value) => seed.deserialize(value),
            None => Err(de::Error::custom("value is missing")),
        }
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.remaining)
    }
}

struct EnumAccess<'de> {
    variant: &'de str,
    value: Option<NodeRef<'de>>,
}

impl<'de> de::EnumAccess<'de> for EnumAccess<'de> {
    type Error = DeError;
    type Variant = VariantAccess<'de>;

    fn variant_seed<S: de::DeserializeSeed<'de>>(
        self,
        seed: S,
    ) -> Result<(S::Value, VariantAccess<'de>), DeError> {
        let variant = seed.deserialize(KeyDeserializer(self.variant))?;
        Ok((variant, VariantAccess { value: self.value }))
    }
}

struct VariantAccess<'de> {
    value: Option<NodeRef<'de>>,
}

impl<'de> de::VariantAccess<'de> for VariantAccess<'de> {
    type Error = DeError;

    fn unit_variant(self) -> Result<(), DeError> {
        match self.value {
            Some(value) => de::Deserialize::deserialize(value),
            None => Ok(()),
        }
    }

    fn newtype_variant_seed<T: de::DeserializeSeed<'de>>(
        self,
        seed: T,
    ) -> Result<T::Value, DeError> {
        match self.value {
            Some(value) => seed.deserialize(value),
            None => Err(de::Error::invalid_type(
                Unexpected::UnitVariant,
                &"newtype variant",
            )),
        }
    }

    fn tuple_variant<V: Visitor<'de>>(self, _len: usize, v: V) -> Result<V::Value, DeError> {
        match self.value {
            Some(value) => match value.entry() {
                Entry::Array { len, end } => value.visit_array(len, end, v),
                _ => Err(value.invalid_type(&"tuple variant")),
            },
            None => Err(de::Error::invalid_type(
                Unexpected::UnitVariant,
                &"tuple variant",
            )),
        }
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        _fields: &'static [&'static str],
        v: V,
    ) -> Result<V::Value, DeError> {
        match self.value {
            Some(value) => match value.entry() {
                Entry::Object { len, end } => value.visit_object(len, end, v),
                _ => Err(value.invalid_type(&"struct variant")),
            },
            None => Err(de::Error::invalid_type(
                Unexpected::UnitVariant,
                &"struct variant",
            )),
        }
    }
}

/// An object key: a string that also reads as a number or a bool when the map's key type
/// wants one (`HashMap<u32, _>`), as serde_json's map keys do.
struct KeyDeserializer<'de>(&'de str);

macro_rules! deserialize_parsed_key {
    ($($method:ident => $visit:ident : $ty:ty,)*) => {$(
        fn $method<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
            match self.0.parse::<$ty>() {
                Ok(n) => v.$visit(n),
                Err(_) => Err(de::Error::invalid_type(Unexpected::Str(self.0), &v)),
            }
        }
    )*};
}

impl<'de> de::Deserializer<'de> for KeyDeserializer<'de> {
    type Error = DeError;

    fn deserialize_any<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        v.visit_borrowed_str(self.0)
    }

    deserialize_parsed_key! {
        deserialize_i8 => visit_i8: i8,
        deserialize_i16 => visit_i16: i16,
        deserialize_i32 => visit_i32: i32,
        deserialize_i64 => visit_i64: i64,
        deserialize_i128 => visit_i128: i128,
        deserialize_u8 => visit_u8: u8,
        deserialize_u16 => visit_u16: u16,
        deserialize_u32 => visit_u32: u32,
        deserialize_u64 => visit_u64: u64,
        deserialize_u128 => visit_u128: u128,
        deserialize_f32 => visit_f32: f32,
        deserialize_f64 => visit_f64: f64,
        deserialize_bool => visit_bool: bool,
    }

    fn deserialize_option<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        v.visit_some(self)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        v: V,
    ) -> Result<V::Value, DeError> {
        v.visit_newtype_struct(self)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        v: V,
    ) -> Result<V::Value, DeError> {
        v.visit_enum(self.0.into_deserializer())
    }

    serde::forward_to_deserialize_any! {
        char str string bytes byte_buf unit unit_struct seq tuple tuple_struct map struct
        identifier ignored_any
    }
}
