//! A cheap JSON instance for schema validation.
//!
//! Validating through `serde_json::Value` allocates every key, every string and a tree of map
//! nodes before the validator looks at anything, and that allocation was most of the cost of a
//! validated read (BENCHMARKS.md). A [`Document`] is a flat tape instead: one `Vec` of 16-byte
//! entries for the whole value, containers recording where they end, strings borrowed from the
//! payload bytes unless they contain escapes (those, and every string of a value built from a
//! Rust struct, live in one side buffer). jsonschema validates it through its foreign
//! representation traits ([`Tape`]), and a validated document deserializes straight into the
//! version's struct ([`NodeRef`] is a serde `Deserializer`), so the payload is parsed once.
//!
//! Two ways in:
//! * [`Document::parse`]: JSON bytes (the JSON codec). Strict JSON, serde_json's nesting limit
//!   (127 nested containers), numbers typed as serde_json types them (floats are parsed with
//!   the standard library's correctly rounded parser), a repeated key keeps its last value as
//!   in `JSON.parse` and `serde_json::Value` ([`Document::had_duplicate_keys`] tells: a reader
//!   then decodes from the bytes, as an unvalidated read would).
//! * [`Document::from_serialize`]: any `Serialize` value, shaped as `serde_json::to_value` would
//!   shape it (the postcard codec: the decoded struct is validated as the JSON it stands for).
//!
//! Nothing here panics on any input; a document is at most [`MAX_DEPTH`] containers deep, so
//! every recursion over one is bounded.

#[cfg(feature = "jsonschema")]
use std::borrow::Cow;
use std::fmt;

#[cfg(feature = "jsonschema")]
use jsonschema::{
    json::{cmp, Array, Json, JsonNumber, Node, NodeIdentity, Object},
    JsonType,
};
use serde::{
    de::{self, IntoDeserializer, Unexpected, Visitor},
    ser::{self, Serialize},
};
use serde_json::Value;

/// serde_json's nesting limit: it refuses a 128th nested container, so do we (parsing, and
/// building from a Rust value).
pub const MAX_DEPTH: usize = 127;

/// Objects up to this many members are checked for duplicate keys by hash while parsing.
const SMALL_OBJECT: usize = 16;

/// A cheap hash of a key for the duplicate check: its length and first and last eight bytes.
fn key_hash(key: &[u8]) -> u64 {
    let n = key.len();
    let mut head = [0u8; 8];
    let mut tail = [0u8; 8];
    let k = n.min(8);
    head[..k].copy_from_slice(&key[..k]);
    tail[..k].copy_from_slice(&key[n - k..]);
    (u64::from_le_bytes(head).wrapping_mul(0x9E37_79B9_7F4A_7C15)
        ^ u64::from_le_bytes(tail).rotate_left(29))
    .wrapping_mul(0xBF58_476D_1CE4_E5B9)
        ^ n as u64
}

/// serde_json's private marker for `RawValue`, which its own (de)serializers special-case.
const RAW_VALUE_TOKEN: &str = "$serde_json::private::RawValue";

/// One tape entry (24 bytes). Object members are a key entry (a string) followed by the
/// value's entries; containers store their member count and the index one past their last
/// entry.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Entry<'a> {
    Null,
    Bool(bool),
    /// A non-negative integer (serde_json's `PosInt`).
    U64(u64),
    /// A negative integer (serde_json's `NegInt`).
    I64(i64),
    F64(f64),
    /// A string borrowed from the input (or a struct's `'static` field name): no copy, and
    /// read back without a bounds or UTF-8 boundary check.
    Str(&'a str),
    /// A string in [`Document::strings`]: unescaped JSON, or copied from a Rust value.
    Owned {
        start: u32,
        len: u32,
    },
    Array {
        len: u32,
        end: u32,
    },
    Object {
        len: u32,
        end: u32,
    },
}

/// A JSON value as a flat tape; see the module docs.
#[derive(Debug, Clone, Default)]
pub struct Document<'a> {
    strings: String,
    tape: Vec<Entry<'a>>,
    /// Some object repeated a key (only its last member was kept).
    shadowed: bool,
}

/// Buffers of dropped documents kept for the next one: a read parses one document, validates
/// it and drops it, so reusing its two allocations saves a malloc/free pair each on every
/// validated read. One spare set per thread (a Workers isolate has one thread).
type Buffers = (Vec<Entry<'static>>, String);

thread_local! {
    static SPARE: std::cell::Cell<Option<Buffers>> = const { std::cell::Cell::new(None) };
}

/// Larger buffers are freed rather than kept.
const SPARE_LIMIT_BYTES: usize = 64 * 1024;

impl Drop for Document<'_> {
    fn drop(&mut self) {
        let tape = std::mem::take(&mut self.tape);
        let strings = std::mem::take(&mut self.strings);
        if tape.capacity() == 0
            || tape.capacity() * std::mem::size_of::<Entry>() > SPARE_LIMIT_BYTES
            || strings.capacity() > SPARE_LIMIT_BYTES
        {
            return;
        }
        // `try_with`: during thread teardown the slot may be gone; then just free.
        let _ = SPARE.try_with(|spare| {
            let mut kept = spare.take();
            if kept.is_none() {
                let mut tape = tape;
                tape.clear();
                // An empty tape forgets its lifetime: collecting a vector into one of the same
                // layout reuses its allocation.
                let tape: Vec<Entry<'static>> = tape.into_iter().map(|_| Entry::Null).collect();
                let mut strings = strings;
                strings.clear();
                kept = Some((tape, strings));
            }
            spare.set(kept);
        });
    }
}

/// Why bytes are not one JSON value. Messages never quote the input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    kind: ParseErrorKind,
    line: usize,
    column: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ParseErrorKind {
    Syntax,
    Eof,
    NumberOutOfRange,
    TooDeep,
    TooLarge,
}

impl ParseError {
    /// True when the input ended in the middle of a value.
    pub fn is_eof(&self) -> bool {
        self.kind == ParseErrorKind::Eof
    }
}

impl fmt::Display for ParseError {
    /// The same wording as the crate's description of serde_json errors.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match self.kind {
            ParseErrorKind::Syntax => "syntax error",
            ParseErrorKind::Eof => "unexpected end of input",
            ParseErrorKind::NumberOutOfRange => "syntax error (number out of range)",
            ParseErrorKind::TooDeep => "syntax error (recursion limit exceeded)",
            ParseErrorKind::TooLarge => "value too large",
        };
        write!(f, "{what} at line {} column {}", self.line, self.column)
    }
}

impl std::error::Error for ParseError {}

impl<'a> Document<'a> {
    /// Parse one JSON value (surrounding whitespace allowed) without copying its unescaped
    /// strings.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, ParseError> {
        let src = match std::str::from_utf8(bytes) {
            Ok(src) => src,
            Err(e) => return Err(error_at(bytes, e.valid_up_to(), ParseErrorKind::Syntax)),
        };
        if u32::try_from(bytes.len()).is_err() {
            return Err(error_at(bytes, 0, ParseErrorKind::TooLarge));
        }
        let mut parser = Parser {
            bytes,
            pos: 0,
            depth: 0,
            src,
            // About one entry per 8 bytes of typical payloads; the tape grows if not.
            doc: Document::with_buffers(bytes.len() / 8 + 4, 0),
        };
        parser.skip_ws();
        parser.value()?;
        parser.skip_ws();
        if parser.pos != bytes.len() {
            return Err(parser.err(ParseErrorKind::Syntax));
        }
        Ok(parser.doc)
    }

    /// An empty document, on the spare buffers if there are any.
    fn with_buffers(entries: usize, string_bytes: usize) -> Self {
        let (mut tape, mut strings) = SPARE
            .try_with(std::cell::Cell::take)
            .ok()
            .flatten()
            .unwrap_or_default();
        tape.reserve(entries);
        strings.reserve(string_bytes);
        Document {
            strings,
            tape,
            shadowed: false,
        }
    }

    /// Whether some object repeated a key (the document keeps the last member of each key).
    pub fn had_duplicate_keys(&self) -> bool {
        self.shadowed
    }

    /// The root value.
    pub fn root(&self) -> NodeRef<'_> {
        NodeRef { doc: self, at: 0 }
    }

    /// The root as a `serde_json::Value` (cold paths: error reports, tests).
    pub fn to_value(&self) -> Value {
        self.root().to_json_value()
    }

    #[inline]
    fn entry(&self, at: u32) -> Entry<'a> {
        self.tape.get(at as usize).copied().unwrap_or(Entry::Null)
    }

    /// Index one past the subtree at `at`.
    #[inline]
    fn after(&self, at: u32) -> u32 {
        match self.entry(at) {
            Entry::Array { end, .. } | Entry::Object { end, .. } => end,
            _ => at.saturating_add(1),
        }
    }

    /// The text of a string entry, `None` for other entries.
    #[inline]
    fn string_of<'s>(&'s self, entry: Entry<'a>) -> Option<&'s str> {
        match entry {
            Entry::Str(s) => Some(s),
            Entry::Owned { start, len } => {
                let range = start as usize..(start as usize).saturating_add(len as usize);
                Some(self.strings.get(range).unwrap_or_default())
            }
            _ => None,
        }
    }

    /// Close the object opened at `at`, whose members run to the end of the tape: keep the last
    /// member of each key, as `JSON.parse` and `serde_json::Value` do, so validation and
    /// deserialization see the same single value.
    fn finish_object(&mut self, at: usize, len: u32, check: bool) {
        if check && len >= 2 && self.has_duplicate_keys(at as u32) {
            self.shadowed = true;
            self.drop_shadowed_members(at);
        } else {
            let end = self.tape.len() as u32;
            self.tape[at] = Entry::Object { len, end };
        }
    }

    fn has_duplicate_keys(&self, at: u32) -> bool {
        let mut members = Members {
            doc: self,
            pos: at + 1,
            end: self.tape.len() as u32,
        };
        // Few keys: compare pairs without allocating.
        if members.clone().nth(SMALL_OBJECT).is_none() {
            while let Some((key, _)) = members.next() {
                if members.clone().any(|(other, _)| other == key) {
                    return true;
                }
            }
            return false;
        }
        let mut keys: Vec<&str> = members.map(|(key, _)| key).collect();
        keys.sort_unstable();
        keys.windows(2).any(|w| w[0] == w[1])
    }

    #[cold]
    fn drop_shadowed_members(&mut self, at: usize) {
        let first = at as u32 + 1;
        let members: Vec<(u32, u32)> = {
            let mut spans = Vec::new();
            let mut pos = first;
            while (pos as usize) < self.tape.len() {
                let next = self.after(pos + 1);
                spans.push((pos, next));
                pos = next;
            }
            spans
        };
        let keep: Vec<bool> = {
            let mut seen = std::collections::HashSet::new();
            let mut keep = vec![false; members.len()];
            for (i, &(key, _)) in members.iter().enumerate().rev() {
                keep[i] = seen.insert(self.str_at(key));
            }
            keep
        };
        let old: Vec<Entry> = self.tape.drain(first as usize..).collect();
        let mut len = 0u32;
        for (&(start, next), _) in members.iter().zip(&keep).filter(|(_, &k)| k) {
            // Entries move from `start` to the current end: container ends move with them.
            let moved_to = self.tape.len() as u32;
            for entry in &old[(start - first) as usize..(next - first) as usize] {
                self.tape.push(match *entry {
                    Entry::Array { len, end } => Entry::Array {
                        len,
                        end: end - start + moved_to,
                    },
                    Entry::Object { len, end } => Entry::Object {
                        len,
                        end: end - start + moved_to,
                    },
                    other => other,
                });
            }
            len += 1;
        }
        let end = self.tape.len() as u32;
        self.tape[at] = Entry::Object { len, end };
    }

    fn str_at(&self, at: u32) -> &str {
        self.string_of(self.entry(at)).unwrap_or_default()
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

fn error_at(bytes: &[u8], pos: usize, kind: ParseErrorKind) -> ParseError {
    let pos = pos.min(bytes.len());
    let before = &bytes[..pos];
    let line = 1 + before.iter().filter(|&&b| b == b'\n').count();
    let column = match before.iter().rposition(|&b| b == b'\n') {
        Some(nl) => pos - nl,
        None => pos + 1,
    };
    ParseError { kind, line, column }
}

// ---------------------------------------------------------------------------------------------
// Parser

struct Parser<'a> {
    bytes: &'a [u8],
    /// `bytes` as text (checked once, up front).
    src: &'a str,
    pos: usize,
    depth: usize,
    doc: Document<'a>,
}

impl<'a> Parser<'a> {
    fn err(&self, kind: ParseErrorKind) -> ParseError {
        let kind = if kind == ParseErrorKind::Syntax && self.pos >= self.bytes.len() {
            ParseErrorKind::Eof
        } else {
            kind
        };
        error_at(self.bytes, self.pos, kind)
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn skip_ws(&mut self) {
        while let Some(b' ' | b'\n' | b'\r' | b'\t') = self.peek() {
            self.pos += 1;
        }
    }

    // Every position, length and index fits in u32: `parse` refuses longer input.
    fn index(&self) -> u32 {
        self.doc.tape.len() as u32
    }

    fn value(&mut self) -> Result<(), ParseError> {
        match self.peek() {
            Some(b'{') => self.object(),
            Some(b'[') => self.array(),
            Some(b'"') => {
                let entry = self.string()?;
                self.doc.tape.push(entry);
                Ok(())
            }
            Some(b't') => self.literal(b"true", Entry::Bool(true)),
            Some(b'f') => self.literal(b"false", Entry::Bool(false)),
            Some(b'n') => self.literal(b"null", Entry::Null),
            Some(b'-' | b'0'..=b'9') => {
                let entry = self.number()?;
                self.doc.tape.push(entry);
                Ok(())
            }
            _ => Err(self.err(ParseErrorKind::Syntax)),
        }
    }

    fn literal(&mut self, word: &[u8], entry: Entry<'a>) -> Result<(), ParseError> {
        for &expected in word {
            if self.peek() != Some(expected) {
                return Err(self.err(ParseErrorKind::Syntax));
            }
            self.pos += 1;
        }
        self.doc.tape.push(entry);
        Ok(())
    }

    fn enter(&mut self) -> Result<(), ParseError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(self.err(ParseErrorKind::TooDeep));
        }
        Ok(())
    }

    fn array(&mut self) -> Result<(), ParseError> {
        self.enter()?;
        let at = self.doc.tape.len();
        self.doc.tape.push(Entry::Array { len: 0, end: 0 });
        self.pos += 1;
        self.skip_ws();
        let mut len = 0u32;
        if self.peek() == Some(b']') {
            self.pos += 1;
        } else {
            loop {
                self.value()?;
                len += 1;
                self.skip_ws();
                match self.peek() {
                    Some(b',') => {
                        self.pos += 1;
                        self.skip_ws();
                    }
                    Some(b']') => {
                        self.pos += 1;
                        break;
                    }
                    _ => return Err(self.err(ParseErrorKind::Syntax)),
                }
            }
        }
        let end = self.index();
        self.doc.tape[at] = Entry::Array { len, end };
        self.depth -= 1;
        Ok(())
    }

    fn object(&mut self) -> Result<(), ParseError> {
        self.enter()?;
        let at = self.doc.tape.len();
        self.doc.tape.push(Entry::Object { len: 0, end: 0 });
        self.pos += 1;
        self.skip_ws();
        let mut len = 0u32;
        // Hashes of the first keys: a duplicate key is rare, and comparing hashes is cheaper
        // than comparing strings; only a hash match (or a big object) takes the exact check.
        let mut hashes = [0u64; SMALL_OBJECT];
        let mut maybe_duplicate = false;
        if self.peek() == Some(b'}') {
            self.pos += 1;
        } else {
            loop {
                if self.peek() != Some(b'"') {
                    return Err(self.err(ParseErrorKind::Syntax));
                }
                let key = self.string()?;
                if let Some(name) = self.doc.string_of(key) {
                    let hash = key_hash(name.as_bytes());
                    let seen = &hashes[..(len as usize).min(SMALL_OBJECT)];
                    maybe_duplicate |= seen.contains(&hash);
                    if let Some(slot) = hashes.get_mut(len as usize) {
                        *slot = hash;
                    }
                }
                self.doc.tape.push(key);
                self.skip_ws();
                if self.peek() != Some(b':') {
                    return Err(self.err(ParseErrorKind::Syntax));
                }
                self.pos += 1;
                self.skip_ws();
                self.value()?;
                len += 1;
                self.skip_ws();
                match self.peek() {
                    Some(b',') => {
                        self.pos += 1;
                        self.skip_ws();
                    }
                    Some(b'}') => {
                        self.pos += 1;
                        break;
                    }
                    _ => return Err(self.err(ParseErrorKind::Syntax)),
                }
            }
        }
        self.doc
            .finish_object(at, len, maybe_duplicate || len as usize > SMALL_OBJECT);
        self.depth -= 1;
        Ok(())
    }

    /// Advance to the next `"`, `\\` or control byte (or the end), eight bytes at a time: string
    /// scanning is most of the parse.
    fn skip_plain_string_bytes(&mut self) {
        const ONES: u64 = 0x0101_0101_0101_0101;
        const HIGH: u64 = 0x8080_8080_8080_8080;
        while let Some(chunk) = self.bytes.get(self.pos..self.pos + 8) {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            let x = u64::from_le_bytes(word);
            let quote = x ^ (ONES * u64::from(b'"'));
            let backslash = x ^ (ONES * u64::from(b'\\'));
            // A byte's high bit is set where it is zero (quote, backslash) or below 0x20; bits
            // above the first hit may be spurious, the lowest one is exact.
            let hits = (quote.wrapping_sub(ONES) & !quote
                | backslash.wrapping_sub(ONES) & !backslash
                | x.wrapping_sub(ONES * 0x20) & !x)
                & HIGH;
            if hits != 0 {
                self.pos += (hits.trailing_zeros() / 8) as usize;
                return;
            }
            self.pos += 8;
        }
        while let Some(&b) = self.bytes.get(self.pos) {
            if b == b'"' || b == b'\\' || b < 0x20 {
                return;
            }
            self.pos += 1;
        }
    }

    /// A string starting at the opening quote. Borrowed unless it has escapes.
    fn string(&mut self) -> Result<Entry<'a>, ParseError> {
        self.pos += 1;
        let start = self.pos;
        self.skip_plain_string_bytes();
        match self.peek() {
            Some(b'"') => {
                let text = self.src.get(start..self.pos).unwrap_or_default();
                self.pos += 1;
                return Ok(Entry::Str(text));
            }
            Some(b'\\') => {}
            _ => return Err(self.err(ParseErrorKind::Syntax)),
        }
        // Escaped: unescape into the side buffer.
        let owned_start = self.doc.strings.len();
        let head = self.src.get(start..self.pos).unwrap_or_default();
        self.doc.strings.push_str(head);
        loop {
            let run = self.pos;
            self.skip_plain_string_bytes();
            let chunk = self.src.get(run..self.pos).unwrap_or_default();
            self.doc.strings.push_str(chunk);
            match self.peek() {
                Some(b'"') => {
                    self.pos += 1;
                    let len = self.doc.strings.len() - owned_start;
                    let (Ok(start), Ok(len)) = (u32::try_from(owned_start), u32::try_from(len))
                    else {
                        return Err(self.err(ParseErrorKind::TooLarge));
                    };
                    return Ok(Entry::Owned { start, len });
                }
                Some(b'\\') => {
                    self.pos += 1;
                    let c = self.escape()?;
                    self.doc.strings.push(c);
                }
                _ => return Err(self.err(ParseErrorKind::Syntax)),
            }
        }
    }

    /// The character of an escape, the backslash already consumed.
    fn escape(&mut self) -> Result<char, ParseError> {
        let Some(b) = self.peek() else {
            return Err(self.err(ParseErrorKind::Eof));
        };
        self.pos += 1;
        Ok(match b {
            b'"' => '"',
            b'\\' => '\\',
            b'/' => '/',
            b'b' => '\u{8}',
            b'f' => '\u{c}',
            b'n' => '\n',
            b'r' => '\r',
            b't' => '\t',
            b'u' => {
                let first = self.hex4()?;
                let code = match first {
                    0xD800..=0xDBFF => {
                        if self.peek() != Some(b'\\') {
                            return Err(self.err(ParseErrorKind::Syntax));
                        }
                        self.pos += 1;
                        if self.peek() != Some(b'u') {
                            return Err(self.err(ParseErrorKind::Syntax));
                        }
                        self.pos += 1;
                        let second = self.hex4()?;
                        if !(0xDC00..=0xDFFF).contains(&second) {
                            return Err(self.err(ParseErrorKind::Syntax));
                        }
                        0x10000 + ((first - 0xD800) << 10) + (second - 0xDC00)
                    }
                    0xDC00..=0xDFFF => return Err(self.err(ParseErrorKind::Syntax)),
                    other => other,
                };
                match char::from_u32(code) {
                    Some(c) => c,
                    None => return Err(self.err(ParseErrorKind::Syntax)),
                }
            }
            _ => {
                self.pos -= 1;
                return Err(self.err(ParseErrorKind::Syntax));
            }
        })
    }

    fn hex4(&mut self) -> Result<u32, ParseError> {
        let mut n = 0u32;
        for _ in 0..4 {
            let digit = match self.peek() {
                Some(b @ b'0'..=b'9') => b - b'0',
                Some(b @ b'a'..=b'f') => b - b'a' + 10,
                Some(b @ b'A'..=b'F') => b - b'A' + 10,
                _ => return Err(self.err(ParseErrorKind::Syntax)),
            };
            n = n * 16 + u32::from(digit);
            self.pos += 1;
        }
        Ok(n)
    }

    fn digits(&mut self) -> usize {
        let start = self.pos;
        while let Some(b'0'..=b'9') = self.peek() {
            self.pos += 1;
        }
        self.pos - start
    }

    /// A number, typed as serde_json types it: non-negative integers that fit are `U64`,
    /// negative ones that fit are `I64` (`-0` is the float `-0.0`), everything else `F64`.
    fn number(&mut self) -> Result<Entry<'a>, ParseError> {
        let start = self.pos;
        let negative = self.peek() == Some(b'-');
        if negative {
            self.pos += 1;
        }
        // The integer part, accumulated while scanning; `fits` turns false past u64.
        let mut n: u64 = 0;
        let mut fits = true;
        match self.peek() {
            Some(b'0') => {
                self.pos += 1;
                if let Some(b'0'..=b'9') = self.peek() {
                    return Err(self.err(ParseErrorKind::Syntax));
                }
            }
            Some(b'1'..=b'9') => {
                // Nineteen digits always fit in a u64: no overflow checks for those.
                let digits = self.bytes.get(self.pos..).unwrap_or_default();
                let run = digits.iter().take_while(|b| b.is_ascii_digit()).count();
                for &d in digits.iter().take(run.min(19)) {
                    n = n * 10 + u64::from(d - b'0');
                }
                for &d in digits.iter().take(run).skip(19) {
                    match n
                        .checked_mul(10)
                        .and_then(|n| n.checked_add(u64::from(d - b'0')))
                    {
                        Some(next) => n = next,
                        None => fits = false,
                    }
                }
                self.pos += run;
            }
            _ => return Err(self.err(ParseErrorKind::Syntax)),
        }
        let mut float = false;
        if self.peek() == Some(b'.') {
            self.pos += 1;
            if self.digits() == 0 {
                return Err(self.err(ParseErrorKind::Syntax));
            }
            float = true;
        }
        if let Some(b'e' | b'E') = self.peek() {
            self.pos += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.pos += 1;
            }
            if self.digits() == 0 {
                return Err(self.err(ParseErrorKind::Syntax));
            }
            float = true;
        }
        if !float && fits {
            if !negative {
                return Ok(Entry::U64(n));
            }
            if n == 0 {
                return Ok(Entry::F64(-0.0));
            }
            if n <= 1 << 63 {
                return Ok(Entry::I64((n as i64).wrapping_neg()));
            }
        }
        let literal = self.src.get(start..self.pos).unwrap_or_default();
        match literal.parse::<f64>() {
            Ok(f) if f.is_finite() => Ok(Entry::F64(f)),
            _ => {
                self.pos = start;
                Err(self.err(ParseErrorKind::NumberOutOfRange))
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// jsonschema representation

/// The jsonschema representation of [`Document`]s (with the `jsonschema` feature,
/// `jsonschema::options_for::<Tape>()` builds validators that validate them).
#[derive(Debug, Clone, Copy)]
pub struct Tape;

/// A node of a [`Document`]: a cheap, copyable handle.
#[derive(Clone, Copy)]
pub struct NodeRef<'a> {
    doc: &'a Document<'a>,
    at: u32,
}

impl fmt::Debug for NodeRef<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NodeRef").field("at", &self.at).finish()
    }
}

impl<'a> NodeRef<'a> {
    fn entry(&self) -> Entry<'a> {
        self.doc.entry(self.at)
    }

    fn as_str(&self) -> Option<&'a str> {
        self.doc.string_of(self.entry())
    }

    /// The node as a `serde_json::Value` (recursion bounded by [`MAX_DEPTH`]).
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

    fn unexpected(&self) -> Unexpected<'a> {
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

/// The members of an object, in document order.
#[derive(Clone)]
pub struct Members<'a> {
    doc: &'a Document<'a>,
    pos: u32,
    end: u32,
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

/// The elements of an array, in order.
#[derive(Clone)]
pub struct Elements<'a> {
    doc: &'a Document<'a>,
    pos: u32,
    end: u32,
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

// ---------------------------------------------------------------------------------------------
// Deserializer: a node into any `Deserialize` type, with the semantics of deserializing from a
// `&serde_json::Value`.

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

// ---------------------------------------------------------------------------------------------
// Serializer: any `Serialize` value into a document, shaped like `serde_json::to_value`.

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

#[cfg(all(test, feature = "jsonschema"))]
mod tests;
