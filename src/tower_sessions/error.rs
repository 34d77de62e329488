//! kv-envelope's errors as tower-sessions' `session_store::Error`, in words that never carry a
//! session id, a key or a stored value: tower-sessions logs these messages and hands them to
//! the application. Only the operation and the error's kind (plus KV limits, which are sizes)
//! are told.

use tower_sessions_core::session_store::Error as StoreError;

use crate::error::Error;

/// What the adapter was doing when `error` happened.
#[derive(Debug, Clone, Copy)]
pub(super) enum Op {
    Create,
    Save,
    Load,
    Delete,
}

impl Op {
    fn name(self) -> &'static str {
        match self {
            Op::Create => "create",
            Op::Save => "save",
            Op::Load => "load",
            Op::Delete => "delete",
        }
    }
}

/// A failed read during `op`: a stored record this code must not replace (undecodable, or
/// written by newer code) is `Decode`; KV's own failures are `Backend`.
pub(super) fn read_failed(op: Op, error: &Error) -> StoreError {
    if error.protects_stored_value() {
        return StoreError::Decode(format!(
            "kv-envelope session {}: the stored record is unreadable or newer than this code \
             ({}); it is kept, not replaced",
            op.name(),
            error.kind()
        ));
    }
    kv_failed(op, error)
}

/// A failed write during `op`: a record KV or its schema would refuse is `Encode`; KV's own
/// failures are `Backend`.
pub(super) fn write_failed(op: Op, error: &Error) -> StoreError {
    match error {
        // Sizes and instants only: `LimitError` never quotes a key or a value.
        Error::Limit(limit) => {
            StoreError::Encode(format!("kv-envelope session {}: {limit}", op.name()))
        }
        Error::Encode { .. } | Error::InvalidValue { .. } => StoreError::Encode(format!(
            "kv-envelope session {}: the record cannot be stored ({})",
            op.name(),
            error.kind()
        )),
        _ => kv_failed(op, error),
    }
}

/// KV failed (a 429 included): `Backend`, naming the KV operation and nothing it carried.
fn kv_failed(op: Op, error: &Error) -> StoreError {
    let op = op.name();
    match error {
        Error::RateLimited => StoreError::Backend(format!(
            "kv-envelope session {op}: KV rate limit (one write per second per key)"
        )),
        Error::Backend { op: kv_op, .. } => {
            StoreError::Backend(format!("kv-envelope session {op}: KV {kv_op} failed"))
        }
        _ => StoreError::Backend(format!("kv-envelope session {op}: {}", error.kind())),
    }
}

/// No free id after `attempts` draws: the backend answers every key as taken.
pub(super) fn no_free_id(attempts: usize) -> StoreError {
    StoreError::Backend(format!(
        "kv-envelope session create: no free session id after {attempts} draws"
    ))
}
