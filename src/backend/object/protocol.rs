//! What a client and an object say to each other: [`ObjectRequest`] and [`ObjectReply`].

use serde::{Deserialize, Serialize};

use crate::backend::{Expected, ListKey, ListPage, Stored, WriteOptions};
use crate::error::{Error, Result};

use super::*;

/// A request to one object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "camelCase")]
pub enum ObjectRequest {
    /// Read keys (one or many): one [`ObjectReply::Values`] entry per key.
    Get {
        /// The keys.
        keys: Vec<String>,
    },
    /// Write a record, unconditionally or when the key holds what `expected` says.
    Put {
        /// The key.
        key: String,
        /// The record.
        record: Record,
        /// `None`: unconditional. `Some("")`: only when nothing live is stored. `Some(hex)`:
        /// only when the live value's stamp is this.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        expected: Option<String>,
    },
    /// Delete a key, unconditionally or only when its live value has the stamp `expected`.
    Delete {
        /// The key.
        key: String,
        /// `None`: unconditional. `Some(hex)`: only when the live value's stamp is this.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        expected: Option<String>,
    },
    /// One page of keys under `prefix`, after `cursor`.
    List {
        /// The prefix.
        prefix: String,
        /// The last key of the previous page.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cursor: Option<String>,
        /// At most this many keys.
        limit: u32,
    },
}

impl ObjectRequest {
    /// A conditional or unconditional write of `value`.
    pub fn put(
        key: &str,
        value: &[u8],
        options: &WriteOptions,
        expected: Option<&Expected>,
    ) -> Self {
        ObjectRequest::Put {
            key: key.into(),
            record: Record::new(value, options.metadata.clone(), options.expiration),
            expected: expected.map(|e| match e {
                Expected::Absent => String::new(),
                Expected::Stamp(s) => s.to_hex(),
            }),
        }
    }

    /// The operation's name, for errors.
    pub fn op(&self) -> &'static str {
        match self {
            ObjectRequest::Get { .. } => "get",
            ObjectRequest::Put { expected: None, .. } => "put",
            ObjectRequest::Put { .. } => "put_if",
            ObjectRequest::Delete { expected: None, .. } => "delete",
            ObjectRequest::Delete { .. } => "delete_if",
            ObjectRequest::List { .. } => "list",
        }
    }
}

/// An object's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "reply", rename_all = "camelCase")]
pub enum ObjectReply {
    /// For [`ObjectRequest::Get`]: one entry per key, `None` when nothing live is stored.
    Values {
        /// The records.
        values: Vec<Option<Record>>,
    },
    /// For [`ObjectRequest::Put`]: whether it wrote.
    Written {
        /// False when the condition did not hold.
        written: bool,
    },
    /// For [`ObjectRequest::Delete`]: whether it deleted (an unconditional delete always does).
    Deleted {
        /// False when the condition did not hold; missing from an object running code from
        /// before conditional deletes (which deleted unconditionally).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        deleted: Option<bool>,
    },
    /// For [`ObjectRequest::List`].
    Page {
        /// Names, expirations and metadata.
        keys: Vec<ListKey>,
        /// Cursor for the next page.
        cursor: Option<String>,
        /// True when nothing more follows.
        list_complete: bool,
    },
    /// The request could not be served (the message names no key and no value).
    Failed {
        /// What went wrong.
        message: String,
        /// Whether retrying may succeed (a storage failure) or not (a record this code cannot
        /// read).
        #[serde(default = "yes")]
        retryable: bool,
    },
}

fn yes() -> bool {
    true
}

impl ObjectReply {
    fn unexpected(op: &'static str) -> Error {
        Error::Backend {
            op,
            message: "the Durable Object answered another operation".into(),
            retryable: false,
        }
    }

    fn failed(self, op: &'static str) -> Result<Self> {
        match self {
            ObjectReply::Failed { message, retryable } => Err(Error::Backend {
                op,
                message,
                retryable,
            }),
            other => Ok(other),
        }
    }

    /// The records of a get.
    pub fn into_values(self, asked: usize) -> Result<Vec<Option<Stored>>> {
        match self.failed("get")? {
            ObjectReply::Values { values } if values.len() == asked => values
                .into_iter()
                .map(|r| r.map(|r| r.stored()).transpose())
                .collect(),
            _ => Err(Self::unexpected("get")),
        }
    }

    /// Whether a put wrote.
    pub fn into_written(self) -> Result<bool> {
        match self.failed("put")? {
            ObjectReply::Written { written } => Ok(written),
            _ => Err(Self::unexpected("put")),
        }
    }

    /// A delete's answer: whether it deleted. An answer without `deleted` comes from an object
    /// that ignored the condition: fine for an unconditional delete, a non-retryable error for
    /// a `conditional` one (it may have deleted what it should have kept).
    pub fn into_deleted(self, conditional: bool) -> Result<bool> {
        match self.failed("delete")? {
            ObjectReply::Deleted {
                deleted: Some(deleted),
            } => Ok(deleted),
            ObjectReply::Deleted { deleted: None } if !conditional => Ok(true),
            ObjectReply::Deleted { deleted: None } => Err(Error::Backend {
                op: "delete_if",
                message: "the Durable Object runs code without conditional deletes (deploy the \
                          object's class with this version)"
                    .into(),
                retryable: false,
            }),
            _ => Err(Self::unexpected("delete")),
        }
    }

    /// A list page.
    pub fn into_page(self) -> Result<ListPage> {
        match self.failed("list")? {
            ObjectReply::Page {
                keys,
                cursor,
                list_complete,
            } => Ok(ListPage {
                keys,
                cursor,
                list_complete,
            }),
            _ => Err(Self::unexpected("list")),
        }
    }
}
