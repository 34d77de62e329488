//! JSON bytes into a [`Document`]: the strict parser and its errors.

use std::fmt;

use super::{Document, Entry, MAX_DEPTH, SMALL_OBJECT};

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
