//! Reading what the commands are given: single values (raw or base64), `wrangler kv key list`
//! output and bulk files. Every problem becomes a [`Fail`] that names the file, the entry and
//! the key — never the value.

mod bulk;
mod display;
mod encoding;
mod key_list;
mod source;
mod value;

use std::{fmt, io};

pub use self::value::ValueFormat;
pub(crate) use self::{
    bulk::{for_each_bulk_entry, BulkEntry, EntryValue, ReadCount},
    display::shown,
    encoding::encode_base64,
    key_list::parse_key_list,
    source::Source,
    value::{mangled_binary, value_bytes},
};

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
