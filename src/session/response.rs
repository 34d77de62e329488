//! What the gate answers, without any HTTP library: [`PlainResponse`] (also the crate's one
//! mapping of an [`Error`] to a response), and [`Denied`], a request turned away.

use super::no_session::NoSession;
use crate::error::Error;

/// A response described without any HTTP library: status, headers, body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlainResponse {
    /// Status code.
    pub status: u16,
    /// Headers in order (`Set-Cookie` may repeat).
    pub headers: Vec<(&'static str, String)>,
    /// Body text.
    pub body: String,
}

impl PlainResponse {
    /// The answer to a request that `error` ended, by the crate's one mapping: the status of
    /// [`Error::http_status`], `Retry-After` when a retry can help, and a JSON body
    /// `{"error": <kind>, "message": <text>}` whose text never carries a value, a key or an id
    /// ([`Error::public_message`]). Not cached. (axum: `Error` is `IntoResponse` with this.)
    pub fn for_error(error: &Error) -> Self {
        Self::json_error(
            error.http_status(),
            error.response_body(),
            error.retry_after_secs(),
        )
    }

    /// An error answer: `status`, the JSON `body`, not cached, `Retry-After` if given.
    pub(crate) fn json_error(status: u16, body: String, retry_after_secs: Option<u32>) -> Self {
        let mut headers = vec![
            ("Content-Type", "application/json".to_string()),
            ("Cache-Control", "no-store".to_string()),
            ("X-Content-Type-Options", "nosniff".to_string()),
        ];
        if let Some(secs) = retry_after_secs {
            headers.push(("Retry-After", secs.to_string()));
        }
        Self {
            status,
            headers,
            body,
        }
    }

    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Why a request was turned away.
#[derive(Debug, Clone, PartialEq)]
pub enum DenyCause {
    /// No usable session (bad input, expired, logged out...): 302 or 401.
    NoSession(NoSession),
    /// KV failed: 503, so users are not sent to log in again because of an outage.
    Unavailable(Error),
}

/// A request turned away, with the response to send.
#[derive(Debug, Clone, PartialEq)]
pub struct Denied {
    /// Why.
    pub cause: DenyCause,
    /// What to send.
    pub response: PlainResponse,
}
