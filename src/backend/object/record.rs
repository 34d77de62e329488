//! [`Record`]: one stored key of an object, and the text it is stored as.

use base64::{engine::general_purpose::STANDARD, Engine as _};
use serde::{Deserialize, Serialize};

use super::super::Stored;
use crate::error::Result;

/// One stored record: the value (base64) with KV's metadata and expiration. This is also how
/// the Workers object stores it (as ASCII JSON text under the key, [`Record::to_text`]). Its
/// `Debug` shows the value's length, never the value.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// The value, base64.
    #[serde(rename = "v")]
    pub value: String,
    /// Metadata as serialized JSON.
    #[serde(rename = "m", default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<String>,
    /// Absolute expiration in seconds since the epoch.
    #[serde(rename = "e", default, skip_serializing_if = "Option::is_none")]
    pub expiration: Option<u64>,
}

impl Record {
    pub(super) fn new(value: &[u8], metadata: Option<String>, expiration: Option<u64>) -> Self {
        Self {
            value: STANDARD.encode(value),
            metadata,
            expiration,
        }
    }

    pub(super) fn live(&self, now_ms: u64) -> bool {
        self.expiration
            .is_none_or(|exp| exp.saturating_mul(1000) > now_ms)
    }

    /// The value's bytes. A value that is not base64 (written by something other than this
    /// protocol) is its text's bytes: the store above then reads bytes that are no envelope, a
    /// typed "cannot be read" (a session's "no session" answer, kept), never a backend error,
    /// whose 503 would last as long as the record.
    pub(super) fn bytes(&self) -> Vec<u8> {
        STANDARD
            .decode(&self.value)
            .unwrap_or_else(|_| self.value.as_bytes().to_vec())
    }

    /// The value and metadata as a [`Stored`].
    pub fn stored(&self) -> Result<Stored> {
        Ok(Stored {
            value: self.bytes(),
            metadata: self.metadata.clone(),
        })
    }

    /// What a Durable Object's storage holds under a key, as a record: the record, or, for
    /// text that is no record, a record of that text as its value (no metadata, no expiration),
    /// so that a read sees unreadable bytes rather than failing.
    #[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
    pub fn from_stored_text(text: &str) -> Self {
        Self::from_text(text).unwrap_or_else(|| Self::new(text.as_bytes(), None, None))
    }

    /// The record as JSON text with every character beyond ASCII escaped (`\uXXXX`), so the
    /// text a Durable Object stores is one byte per character whatever the metadata holds (a
    /// JavaScript string with any character beyond Latin-1 takes two bytes per character) and
    /// its length is what it costs against [`MAX_OBJECT_ENTRY_BYTES`](crate::backend::limits::MAX_OBJECT_ENTRY_BYTES).
    pub fn to_text(&self) -> String {
        let mut out = Vec::with_capacity(self.value.len() + 64);
        let mut ser = serde_json::Serializer::with_formatter(&mut out, AsciiJson);
        // Serializing strings and an integer into a Vec cannot fail.
        let _ = self.serialize(&mut ser);
        // Only ASCII was written.
        String::from_utf8(out).unwrap_or_default()
    }

    /// A record from its stored text; `None` when the text is no record.
    #[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
    pub fn from_text(text: &str) -> Option<Self> {
        serde_json::from_str(text).ok()
    }
}

impl std::fmt::Debug for Record {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Record")
            .field("value_base64_len", &self.value.len())
            .field("has_metadata", &self.metadata.is_some())
            .field("expiration", &self.expiration)
            .finish()
    }
}

/// serde_json's compact output with every non-ASCII character escaped.
struct AsciiJson;

impl serde_json::ser::Formatter for AsciiJson {
    fn write_string_fragment<W: ?Sized + std::io::Write>(
        &mut self,
        writer: &mut W,
        fragment: &str,
    ) -> std::io::Result<()> {
        let mut ascii_from = 0;
        for (i, c) in fragment.char_indices() {
            if c.is_ascii() {
                continue;
            }
            writer.write_all(&fragment.as_bytes()[ascii_from..i])?;
            let mut units = [0u16; 2];
            for unit in c.encode_utf16(&mut units) {
                write!(writer, "\\u{unit:04x}")?;
            }
            ascii_from = i + c.len_utf8();
        }
        writer.write_all(&fragment.as_bytes()[ascii_from..])
    }
}
