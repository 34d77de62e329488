//! [`get_or_flush`]: a typed read of tower-sessions data that never turns a stored value's
//! fault into an outage, and never lets the stored value reach a log.

use serde::de::DeserializeOwned;
use tower_sessions_core::{
    session::{Error as SessionError, Session},
    session_store::Error as StoreError,
};

/// The value of `key` in `session`, as `T`.
///
/// `session.get::<T>(key)` fails with a serde error when the stored data does not fit `T`
/// (written by an older version of the app, or planted), and that error's text quotes the
/// stored value (`invalid type: string "…"`): an app that answers it with a 5xx is down for
/// that user until the record expires, and one that logs it leaks session data. Here, data that
/// no longer fits `T` is treated as **no session**: the session is flushed (its record
/// deleted; tower-sessions' layer clears the cookie) and `Ok(None)` is returned, so the user
/// logs in again into a fresh session. The only error left is the store's (KV failing:
/// answer 503), in words that carry no id, key or value.
///
/// ```
/// # async fn handler(session: tower_sessions::Session) {
/// let visits: u64 = match kv_envelope::tower_sessions::get_or_flush(&session, "visits").await {
///     Ok(n) => n.unwrap_or(0),
///     Err(_kv_down) => return, // 503
/// };
/// # let _ = visits;
/// # }
/// ```
pub async fn get_or_flush<T: DeserializeOwned>(
    session: &Session,
    key: &str,
) -> Result<Option<T>, StoreError> {
    let Some(value) = session.get_value(key).await.map_err(store_error)? else {
        return Ok(None);
    };
    match serde_json::from_value::<T>(value) {
        Ok(v) => Ok(Some(v)),
        Err(_) => {
            session.flush().await.map_err(store_error)?;
            Ok(None)
        }
    }
}

/// The store's error out of tower-sessions' session error; a serde error (which could quote a
/// value) becomes a bare `Decode`.
fn store_error(e: SessionError) -> StoreError {
    match e {
        SessionError::Store(e) => e,
        SessionError::SerdeJson(_) => {
            StoreError::Decode("kv-envelope: session data does not decode".into())
        }
    }
}
