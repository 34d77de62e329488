//! A cheap JSON instance for schema validation.
//!
//! Validating through `serde_json::Value` allocates every key, every string and a tree of map
//! nodes before the validator looks at anything, and that allocation was most of the cost of a
//! validated read (BENCHMARKS.md). A [`Document`] is a flat tape instead: one `Vec` of small
//! fixed-size entries for the whole value, containers recording where they end, strings borrowed
//! from the payload bytes unless they contain escapes (those, and every string of a value built from a
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

mod de;
mod node;
mod parse;
mod repr;
mod ser;

pub use de::DeError;
pub(crate) use node::View;
pub use node::{Elements, Members, NodeRef, Number};
pub use parse::ParseError;
pub use repr::Tape;
#[cfg(feature = "jsonschema")]
pub use repr::{ArrayRef, ObjectRef};
pub use ser::{Compound, SerError};

use serde_json::Value;

/// serde_json's nesting limit: it refuses a 128th nested container, so do we (parsing, and
/// building from a Rust value).
pub const MAX_DEPTH: usize = 127;

/// Objects up to this many members are checked for duplicate keys by hash while parsing.
const SMALL_OBJECT: usize = 16;

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

impl<'a> Document<'a> {
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

#[cfg(all(test, feature = "jsonschema"))]
mod tests;
