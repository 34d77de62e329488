//! Streaming the entries of a bulk file (`wrangler kv bulk put` or `bulk get` format).

use std::{
    cell::Cell,
    collections::HashMap,
    fmt,
    io::{self, BufReader, Read},
    rc::Rc,
};

use serde::de::{self, DeserializeSeed, Deserializer as _, MapAccess, SeqAccess, Visitor};
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::{
    display::{json_kind, shown},
    encoding::decode_base64,
    key_list::optional_seconds,
    Fail, Source,
};
use kv_envelope::__internal::describe_json_error;

/// One entry of a bulk file.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct BulkEntry {
    /// Position in the file, from 0.
    pub index: usize,
    pub key: String,
    /// The stored bytes, or why they cannot be had.
    pub value: EntryValue,
    /// KV expiration in seconds, as given.
    pub expiration: Option<u64>,
    /// KV relative TTL in seconds, as given.
    pub expiration_ttl: Option<u64>,
    /// The metadata object, as given.
    pub metadata: Option<Value>,
}

/// The value of a bulk entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum EntryValue {
    /// The stored bytes.
    Bytes(Vec<u8>),
    /// The dump says the key was not found (`wrangler kv bulk get` prints `null`).
    Missing,
    /// The entry's value cannot be had: why (bad base64, mangled binary), never the value.
    Bad(String),
}

impl EntryValue {
    fn from_result(r: Result<Vec<u8>, String>) -> Self {
        match r {
            Ok(b) => EntryValue::Bytes(b),
            Err(m) => EntryValue::Bad(m),
        }
    }
}

/// Shared count of bytes read so far, for the progress bar.
#[derive(Debug, Clone, Default)]
pub(crate) struct ReadCount(Rc<Cell<u64>>);

impl ReadCount {
    pub(crate) fn get(&self) -> u64 {
        self.0.get()
    }
}

struct CountingReader<R> {
    inner: R,
    count: ReadCount,
}

impl<R: Read> Read for CountingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count.0.set(self.count.0.get() + n as u64);
        Ok(n)
    }
}

/// Stream the entries of a bulk file to `each`, one at a time, so a dump of any size is read
/// in constant memory.
///
/// Accepts the `wrangler kv bulk put` format (an array of `{key, value, base64?, expiration?,
/// expiration_ttl?, metadata?}`) and the `wrangler kv bulk get` format (an object of
/// `key → value` or `key → {value, metadata?}`, values as text). A structural problem stops the
/// stream with a [`Fail`] naming the entry and, when known, its key; `each` can stop it too.
pub(crate) fn for_each_bulk_entry(
    source: &Source,
    reader: &mut dyn Read,
    count: &ReadCount,
    each: &mut dyn FnMut(BulkEntry) -> Result<(), Fail>,
) -> Result<(), Fail> {
    let reader = BufReader::with_capacity(
        1 << 16,
        CountingReader {
            inner: reader,
            count: count.clone(),
        },
    );
    let mut de = serde_json::Deserializer::from_reader(reader);
    let mut state = StreamState {
        each,
        seen: 0,
        last_key: None,
        failure: None,
        keys: HashMap::new(),
    };
    let result = de
        .deserialize_any(EntriesVisitor { state: &mut state })
        .and_then(|()| de.end());
    match result {
        Ok(()) => Ok(()),
        Err(_) if state.failure.is_some() => {
            Err(state.failure.take().unwrap_or(Fail(String::new())))
        }
        Err(e) => {
            let position = match &state.last_key {
                None if state.seen == 0 => String::new(),
                None => format!(" after entry #{}", state.seen - 1),
                Some(k) => format!(" after entry #{} (key {k:?})", state.seen - 1),
            };
            let what = match e.classify() {
                serde_json::error::Category::Eof => {
                    "unexpected end of input: the file is truncated".to_string()
                }
                serde_json::error::Category::Data if state.seen == 0 => {
                    "expected a JSON array of {key, value, ...} objects (the `wrangler kv bulk put` format) or the object `wrangler kv bulk get` prints".to_string()
                }
                _ => format!("invalid JSON: {}", describe_json_error(&e)),
            };
            let at = if e.line() == 0 {
                String::new()
            } else {
                format!(" (line {} column {})", e.line(), e.column())
            };
            Err(Fail(format!("{source}: {what}{at}{position}")))
        }
    }
}

struct StreamState<'a> {
    each: &'a mut dyn FnMut(BulkEntry) -> Result<(), Fail>,
    /// Entries handed to `each` so far.
    seen: usize,
    last_key: Option<String>,
    /// Why the stream was stopped by us rather than by the JSON parser.
    failure: Option<Fail>,
    /// A digest of every key delivered, with its entry number: a key listed twice stops the
    /// stream (which of the two values is meant? a migration must not guess). 16 bytes per
    /// key, not the key, so memory stays small on dumps of millions of keys.
    keys: HashMap<[u8; 16], usize>,
}

impl StreamState<'_> {
    fn deliver<E: de::Error>(&mut self, entry: Result<BulkEntry, String>) -> Result<(), E> {
        let index = self.seen;
        let entry = entry.map_err(|msg| self.stop(Fail(format!("entry #{index}: {msg}"))))?;
        let digest: [u8; 16] = Sha256::digest(entry.key.as_bytes())[..16]
            .try_into()
            .unwrap_or_default();
        if let Some(first) = self.keys.insert(digest, index) {
            return Err(self.stop(Fail(format!(
                "entry #{index}: key \"{}\" is listed again (first at entry #{first}); a bulk file must list each key once",
                shown(&entry.key)
            ))));
        }
        self.seen += 1;
        self.last_key = Some(entry.key.clone());
        (self.each)(entry).map_err(|f| self.stop(f))
    }

    fn stop<E: de::Error>(&mut self, fail: Fail) -> E {
        self.failure = Some(fail);
        E::custom("stopped")
    }
}

struct EntriesVisitor<'s, 'a> {
    state: &'s mut StreamState<'a>,
}

impl<'de> Visitor<'de> for EntriesVisitor<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a bulk file")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while let Some(item) = seq.next_element::<Value>()? {
            let index = self.state.seen;
            let entry = put_entry(index, item);
            self.state.deliver(entry)?;
        }
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(key) = map.next_key::<String>()? {
            let index = self.state.seen;
            let item = map.next_value_seed(ValueSeed)?;
            let entry = get_entry(index, key, item);
            self.state.deliver(entry)?;
        }
        Ok(())
    }
}

/// Deserialize one map value as a [`Value`] (a seed, so the map visitor stays streaming).
struct ValueSeed;

impl<'de> DeserializeSeed<'de> for ValueSeed {
    type Value = Value;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        serde::Deserialize::deserialize(d)
    }
}

/// An entry of the `wrangler kv bulk put` format.
fn put_entry(index: usize, item: Value) -> Result<BulkEntry, String> {
    let Value::Object(mut o) = item else {
        return Err(format!(
            "is {}, expected an object {{key, value, base64?, expiration?, expiration_ttl?, metadata?}}",
            json_kind(&item)
        ));
    };
    let key = match o.remove("key") {
        Some(Value::String(k)) => k,
        Some(other) => return Err(format!("`key` is {}, expected a string", json_kind(&other))),
        None => return Err("has no `key`".into()),
    };
    let in_key = |m: String| format!("(key {key:?}) {m}");
    let base64 = match o.remove("base64") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => b,
        Some(other) => {
            return Err(in_key(format!(
                "`base64` is {}, expected true or false",
                json_kind(&other)
            )))
        }
    };
    let value = match o.remove("value") {
        Some(Value::String(s)) if base64 => EntryValue::from_result(decode_base64(s.as_bytes())),
        Some(Value::String(s)) => EntryValue::Bytes(s.into_bytes()),
        Some(other) => {
            return Err(in_key(format!(
                "`value` is {}, expected a string",
                json_kind(&other)
            )))
        }
        None => return Err(in_key("has no `value`".into())),
    };
    let expiration = optional_seconds(&mut o, "expiration").map_err(in_key)?;
    let expiration_ttl = optional_seconds(&mut o, "expiration_ttl").map_err(in_key)?;
    let metadata = match o.remove("metadata") {
        None | Some(Value::Null) => None,
        Some(m @ Value::Object(_)) => Some(m),
        Some(other) => {
            return Err(in_key(format!(
                "`metadata` is {}, expected an object",
                json_kind(&other)
            )))
        }
    };
    Ok(BulkEntry {
        index,
        key,
        value,
        expiration,
        expiration_ttl,
        metadata,
    })
}

/// An entry of the `wrangler kv bulk get` format: `key → "text"`, `key → {value, metadata?}`,
/// or `null` / `{value: null}` for a key that was not found.
fn get_entry(index: usize, key: String, item: Value) -> Result<BulkEntry, String> {
    let (value, metadata) = match item {
        Value::String(s) => (Some(s), None),
        Value::Null => (None, None),
        Value::Object(mut o) => {
            let value = match o.remove("value") {
                Some(Value::String(s)) => Some(s),
                None | Some(Value::Null) => None,
                Some(other) => {
                    return Err(format!(
                        "(key {key:?}) `value` is {}, expected a string",
                        json_kind(&other)
                    ))
                }
            };
            (value, o.remove("metadata").filter(Value::is_object))
        }
        other => {
            return Err(format!(
                "(key {key:?}) is {}, expected a string or {{value, metadata?}}",
                json_kind(&other)
            ))
        }
    };
    let value = match value {
        None => EntryValue::Missing,
        // `bulk get` reads values as UTF-8 text: a binary frame comes out as U+FFFD.
        Some(s) if s.starts_with('\u{FFFD}') => EntryValue::Bad(
            "value is a binary (postcard or sealed) envelope mangled by text decoding in `wrangler kv bulk get`; dump it with `wrangler kv key get` and base64 instead"
                .to_string(),
        ),
        Some(s) => EntryValue::Bytes(s.into_bytes()),
    };
    Ok(BulkEntry {
        index,
        key,
        value,
        expiration: None,
        expiration_ttl: None,
        metadata,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stream(text: &str) -> (Vec<BulkEntry>, Result<(), Fail>) {
        let mut got = Vec::new();
        let mut reader = text.as_bytes();
        let result = for_each_bulk_entry(
            &Source::File("dump.json".into()),
            &mut reader,
            &ReadCount::default(),
            &mut |e| {
                got.push(e);
                Ok(())
            },
        );
        (got, result)
    }

    #[test]
    fn truncated_bulk_file_names_last_good_key() {
        let (got, result) = stream(r#"[{"key":"a","value":"x"},{"key":"b","val"#);
        assert_eq!(got.len(), 1);
        let msg = result.unwrap_err().0;
        assert!(msg.contains("truncated"), "{msg}");
        assert!(msg.contains("entry #0 (key \"a\")"), "{msg}");
    }

    #[test]
    fn ill_typed_entry_names_its_key_not_its_value() {
        let (_, result) = stream(r#"[{"key":"k1","value":12345678}]"#);
        let msg = result.unwrap_err().0;
        assert!(
            msg.contains("entry #0: (key \"k1\") `value` is a number"),
            "{msg}"
        );
        assert!(!msg.contains("12345678"), "{msg}");
    }

    #[test]
    fn bulk_get_format_is_read_and_mangled_binary_is_flagged() {
        let (got, result) = stream(r#"{"a":{"value":"{}"},"b":"\ufffd\u0001","c":null}"#);
        result.unwrap();
        assert_eq!(got.len(), 3);
        assert_eq!(got[0].value, EntryValue::Bytes(b"{}".to_vec()));
        assert!(matches!(&got[1].value, EntryValue::Bad(m) if m.contains("binary")));
        assert_eq!(got[2].value, EntryValue::Missing);
    }

    #[test]
    fn a_key_listed_twice_stops_the_stream() {
        let (got, result) =
            stream(r#"[{"key":"a","value":"x"},{"key":"b","value":"y"},{"key":"a","value":"z"}]"#);
        assert_eq!(got.len(), 2);
        let msg = result.unwrap_err().0;
        assert!(
            msg.contains("entry #2: key \"a\" is listed again (first at entry #0)"),
            "{msg}"
        );
        let (_, result) = stream(r#"{"k":"{}","k":"{}"}"#);
        assert!(result.unwrap_err().0.contains("listed again"));
    }

    #[test]
    fn trailing_garbage_is_an_error() {
        let (_, result) = stream(r#"[] ]"#);
        assert!(result.is_err());
    }
}
