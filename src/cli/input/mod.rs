//! Reading what the commands are given: single values (raw or base64), `wrangler kv key list`
//! output and bulk files. Every problem becomes a [`Fail`] that names the file, the entry and
//! the key — never the value.

use std::{
    cell::Cell,
    collections::HashMap,
    fmt,
    io::{self, BufReader, Read},
    path::{Path, PathBuf},
    rc::Rc,
};

use base64::{
    alphabet,
    engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig},
    Engine as _,
};
use serde::de::{self, DeserializeSeed, Deserializer as _, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::{envelope::FRAME_MAGIC, error::describe_json_error};

/// A problem with the command's input or output that stops the command (exit status 2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Fail(pub String);

impl fmt::Display for Fail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Fail {
    pub(crate) fn io(what: impl fmt::Display, e: &io::Error) -> Self {
        // `io::Error`'s text is the OS message ("No such file or directory"): safe to show.
        Fail(format!("{what}: {e}"))
    }
}

/// Where an input comes from: a file, or standard input for `-`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Source {
    Stdin,
    File(PathBuf),
}

impl Source {
    pub(crate) fn new(path: Option<&Path>) -> Self {
        match path {
            None => Source::Stdin,
            Some(p) if p.as_os_str() == "-" => Source::Stdin,
            Some(p) => Source::File(p.to_path_buf()),
        }
    }

    /// Size in bytes when known (files), for the progress bar.
    pub(crate) fn len(&self) -> Option<u64> {
        match self {
            Source::Stdin => None,
            Source::File(p) => std::fs::metadata(p).ok().map(|m| m.len()),
        }
    }

    pub(crate) fn open<'a>(&self, stdin: &'a mut dyn Read) -> Result<Box<dyn Read + 'a>, Fail> {
        match self {
            Source::Stdin => Ok(Box::new(stdin)),
            Source::File(p) => std::fs::File::open(p)
                .map(|f| Box::new(f) as Box<dyn Read>)
                .map_err(|e| Fail::io(format!("cannot open {}", p.display()), &e)),
        }
    }

    pub(crate) fn read_all(&self, stdin: &mut dyn Read) -> Result<Vec<u8>, Fail> {
        let mut buf = Vec::new();
        self.open(stdin)?
            .read_to_end(&mut buf)
            .map_err(|e| Fail::io(format!("cannot read {self}"), &e))?;
        Ok(buf)
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Stdin => f.write_str("standard input"),
            Source::File(p) => write!(f, "{}", p.display()),
        }
    }
}

/// Standard or URL-safe alphabet, padded or not: dumps come from `base64`, browsers, `jq
/// @base64` and Node's `Buffer`, which disagree on both.
fn engines() -> [GeneralPurpose; 2] {
    let config =
        GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent);
    [
        GeneralPurpose::new(&alphabet::STANDARD, config),
        GeneralPurpose::new(&alphabet::URL_SAFE, config),
    ]
}

/// Decode base64 text, ignoring ASCII whitespace (line-wrapped output). The error names the
/// offset of the first bad character, never the character itself.
pub(crate) fn decode_base64(text: &[u8]) -> Result<Vec<u8>, String> {
    let compact: Vec<u8> = text
        .iter()
        .copied()
        .filter(|b| !b.is_ascii_whitespace())
        .collect();
    if compact.is_empty() {
        return Err("invalid base64: empty".into());
    }
    let [standard, url_safe] = engines();
    // Only `-` or `_` select the URL-safe alphabet; everything else decodes as standard, so the
    // error offset refers to the alphabet the text claims.
    let engine = if compact.iter().any(|b| matches!(b, b'-' | b'_')) {
        url_safe
    } else {
        standard
    };
    engine.decode(&compact).map_err(|e| match e {
        base64::DecodeError::InvalidByte(offset, _)
        | base64::DecodeError::InvalidLastSymbol(offset, _) => {
            format!("invalid base64: unexpected character at offset {offset}")
        }
        base64::DecodeError::InvalidLength(len) => {
            format!("invalid base64: {len} characters is not a valid length (truncated?)")
        }
        base64::DecodeError::InvalidPadding => "invalid base64: bad padding".to_string(),
    })
}

/// Encode bytes as standard padded base64 (what `wrangler kv bulk put` expects with
/// `"base64": true`).
pub(crate) fn encode_base64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// True when `bytes` start like an envelope of either codec (leading JSON whitespace allowed).
pub(crate) fn looks_like_envelope(bytes: &[u8]) -> bool {
    match bytes
        .iter()
        .find(|b| !matches!(b, b' ' | b'\n' | b'\r' | b'\t'))
    {
        Some(b'{') => true,
        Some(&b) => b == FRAME_MAGIC && bytes.first() == Some(&FRAME_MAGIC),
        None => false,
    }
}

/// U+FFFD in UTF-8: what a binary frame's first byte (0xC5, invalid as UTF-8 there) becomes when
/// a tool converts the value to text.
const REPLACEMENT_CHAR: &[u8] = "\u{FFFD}".as_bytes();

/// Why `bytes` are probably a binary envelope destroyed by a text conversion, if they are.
pub(crate) fn mangled_binary(bytes: &[u8]) -> Option<&'static str> {
    bytes.starts_with(REPLACEMENT_CHAR).then_some(
        "the value starts with U+FFFD: a binary (postcard) envelope that went through a text conversion (`wrangler kv bulk put --local` with base64, or `wrangler kv bulk get`)",
    )
}

/// How a single value is given to `inspect`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ValueFormat {
    /// Raw bytes when they start like an envelope (`{` or the 0xC5 frame byte), else base64.
    Auto,
    /// The bytes as stored.
    Raw,
    /// Base64 of the bytes (standard or URL-safe, padding optional, whitespace ignored).
    Base64,
}

/// The stored bytes of a single value given as `format`.
pub(crate) fn value_bytes(input: Vec<u8>, format: ValueFormat) -> Result<Vec<u8>, String> {
    match format {
        ValueFormat::Raw => Ok(input),
        ValueFormat::Base64 => decode_base64(&input),
        // A mangled frame is shown as what it is, not as failed base64.
        ValueFormat::Auto if looks_like_envelope(&input) || mangled_binary(&input).is_some() => {
            Ok(input)
        }
        ValueFormat::Auto => {
            let bytes = decode_base64(&input).map_err(|e| {
                format!("input is neither an envelope (it does not start with `{{` or byte 0xC5) nor base64 ({e})")
            })?;
            if looks_like_envelope(&bytes) {
                Ok(bytes)
            } else {
                Err("input decodes as base64 but the result does not start like an envelope".into())
            }
        }
    }
}

/// One key of `wrangler kv key list` output.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ListedKey {
    pub name: String,
    /// KV's absolute expiration, seconds since the epoch.
    pub expiration: Option<u64>,
    /// The metadata object as KV returns it (ours is `{"t","v","c","e"}`).
    pub metadata: Option<Value>,
}

/// Parse `wrangler kv key list` output: a JSON array of `{name, expiration?, metadata?}`. Also
/// accepts the Workers `list()` result (`{"keys": [...]}`) and the REST API response
/// (`{"result": [...]}`), which have the same entries.
pub(crate) fn parse_key_list(source: &Source, bytes: &[u8]) -> Result<Vec<ListedKey>, Fail> {
    let fail = |msg: String| Fail(format!("{source}: {msg}"));
    let doc: Value = serde_json::from_slice(bytes).map_err(|e| {
        fail(format!(
            "not valid JSON ({}); expected the output of `wrangler kv key list`",
            describe_json_error(&e)
        ))
    })?;
    let entries = match doc {
        Value::Array(a) => a,
        Value::Object(mut o) => match (o.remove("keys"), o.remove("result")) {
            (Some(Value::Array(a)), _) | (None, Some(Value::Array(a))) => a,
            _ => {
                return Err(fail(
                    "expected a JSON array of {name, expiration?, metadata?} (the output of `wrangler kv key list`), found an object without a `keys` or `result` array".into(),
                ))
            }
        },
        other => {
            return Err(fail(format!(
                "expected a JSON array of {{name, expiration?, metadata?}} (the output of `wrangler kv key list`), found {}",
                json_kind(&other)
            )))
        }
    };
    entries
        .into_iter()
        .enumerate()
        .map(|(i, entry)| {
            let Value::Object(mut o) = entry else {
                return Err(fail(format!(
                    "entry #{i} is {}, expected an object with a `name`",
                    json_kind(&entry)
                )));
            };
            let name = match o.remove("name") {
                Some(Value::String(s)) => s,
                Some(other) => {
                    return Err(fail(format!(
                        "entry #{i}: `name` is {}, expected a string",
                        json_kind(&other)
                    )))
                }
                None => return Err(fail(format!("entry #{i} has no `name`"))),
            };
            let expiration = optional_seconds(&mut o, "expiration")
                .map_err(|m| fail(format!("entry #{i} (key {name:?}): {m}")))?;
            let metadata = o.remove("metadata").filter(|m| !m.is_null());
            Ok(ListedKey {
                name,
                expiration,
                metadata,
            })
        })
        .collect()
}

fn optional_seconds(o: &mut Map<String, Value>, field: &str) -> Result<Option<u64>, String> {
    match o.remove(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => match (n.as_u64(), n.as_f64()) {
            (Some(s), _) => Ok(Some(s)),
            // JavaScript writes whole numbers, but accept `1.7e9` from other tools.
            (None, Some(f)) if f >= 0.0 && f.fract() == 0.0 && f < 1.0e15 => {
                // The range check above makes the cast exact.
                #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
                Ok(Some(f as u64))
            }
            _ => Err(format!(
                "`{field}` must be a whole, non-negative number of seconds"
            )),
        },
        Some(other) => Err(format!(
            "`{field}` is {}, expected a number of seconds",
            json_kind(&other)
        )),
    }
}

/// A name read from stored data (a type name in an envelope or in metadata), made safe to
/// print: control characters escaped, so a hostile name cannot drive the terminal, and cut at
/// 64 characters.
pub(crate) fn shown(name: &str) -> String {
    const MAX: usize = 64;
    let mut out: String = name
        .chars()
        .take(MAX)
        .flat_map(char::escape_debug)
        .collect();
    if name.chars().nth(MAX).is_some() {
        out.push('…');
    }
    out
}

/// The kind of a JSON value, for messages that must not quote the value itself.
pub(crate) fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

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
            "value is a binary (postcard) envelope mangled by text decoding in `wrangler kv bulk get`; dump it with `wrangler kv key get` and base64 instead"
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

    #[test]
    fn base64_accepts_every_common_dialect() {
        let want = vec![0xC5, 0x01, 0x01, 0xFB, 0xFF];
        for text in ["xQEB+/8=", "xQEB+/8", "xQEB-_8", "xQEB\n+/8=\n"] {
            assert_eq!(decode_base64(text.as_bytes()).as_ref(), Ok(&want), "{text}");
        }
    }

    #[test]
    fn base64_error_names_offset_not_character() {
        let err = decode_base64(b"xQE!+/8=").unwrap_err();
        assert!(err.contains("offset 3"), "{err}");
        assert!(!err.contains('!'), "{err}");
    }

    #[test]
    fn shown_names_cannot_drive_the_terminal() {
        assert_eq!(shown("session"), "session");
        assert_eq!(shown("a\u{1b}[2Jb"), "a\\u{1b}[2Jb");
        assert_eq!(shown(&"x".repeat(100)).chars().count(), 65);
    }

    #[test]
    fn auto_format_tells_raw_from_base64() {
        assert_eq!(
            value_bytes(b" {\"kv\":1}".to_vec(), ValueFormat::Auto).unwrap(),
            b" {\"kv\":1}"
        );
        assert_eq!(
            value_bytes(b"eyJrdiI6MX0=\n".to_vec(), ValueFormat::Auto).unwrap(),
            b"{\"kv\":1}"
        );
        assert!(value_bytes(b"aGVsbG8=".to_vec(), ValueFormat::Auto).is_err());
    }

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
