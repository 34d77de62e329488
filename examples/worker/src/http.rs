//! Response helpers and the one error type of the handlers.
//!
//! Every failure becomes a JSON body `{"error": <code>, "message": <text>}` with a status that
//! says whose fault it is: 4xx for bad input (with a message that names the problem, never the
//! value), 429/503 for KV pushing back or failing, 500 only for bugs. Nothing secret (session
//! ids, cookies, emails, payloads) goes into a body or a log line.

use kv_envelope::Error as StoreError;
use serde::Serialize;
use worker::{console_error, Headers, Response};

/// A failed request: status, stable code, human message, extra headers (`Retry-After`, `Allow`).
#[derive(Debug)]
pub struct Fail {
    pub status: u16,
    pub code: &'static str,
    pub message: String,
    pub headers: Vec<(&'static str, String)>,
}

pub type Outcome = Result<Response, Fail>;

impl Fail {
    pub fn new(status: u16, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            headers: Vec::new(),
        }
    }

    pub fn with_header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(400, code, message)
    }

    /// A library error, answered by the library's one mapping (`Error::http_status`): a
    /// client's input 4xx, a stored value this code cannot use 409, KV pushing back or
    /// failing 429/503, a bug 500. Only a 5xx is logged (by kind and operation; the
    /// library's messages carry no values). A caller that knows the cause better (the login's
    /// email) maps that error itself first.
    pub fn store(op: &'static str, e: StoreError) -> Self {
        let status = e.http_status();
        if status >= 500 {
            console_error!("{op}: {} ({})", e, e.kind());
        }
        let fail = Self::new(status, e.kind(), e.public_message());
        match e.retry_after_secs() {
            Some(secs) => fail.with_header("retry-after", secs.to_string()),
            None => fail,
        }
    }

    /// A workers-rs error: a bug or a runtime failure, never the client's.
    pub fn worker(op: &'static str, e: &worker::Error) -> Self {
        console_error!("{op}: runtime error: {e}");
        Self::new(500, "internal", "internal error")
    }

    pub fn into_response(self) -> Response {
        #[derive(Serialize)]
        struct Body<'a> {
            error: &'a str,
            message: &'a str,
        }
        let body = serde_json::to_vec(&Body {
            error: self.code,
            message: &self.message,
        })
        .unwrap_or_default();
        let headers = Headers::new();
        let _ = headers.set("content-type", "application/json");
        let _ = headers.set("cache-control", "no-store");
        let _ = headers.set(NOSNIFF.0, NOSNIFF.1);
        for (name, value) in &self.headers {
            let _ = headers.set(name, value);
        }
        Response::builder()
            .with_status(self.status)
            .with_headers(headers)
            .fixed(body)
    }
}

/// `?` on workers-rs calls inside handlers.
pub trait OrFail<T> {
    fn or_fail(self, op: &'static str) -> Result<T, Fail>;
}

impl<T> OrFail<T> for worker::Result<T> {
    fn or_fail(self, op: &'static str) -> Result<T, Fail> {
        self.map_err(|e| Fail::worker(op, &e))
    }
}

/// On every response: the declared `Content-Type` is the only one (a JSON body is never
/// sniffed into HTML).
pub const NOSNIFF: (&str, &str) = ("x-content-type-options", "nosniff");

/// A response with a body and headers. Header values here are ours, never request data.
pub fn respond(status: u16, content_type: &str, body: Vec<u8>, extra: &[(&str, &str)]) -> Outcome {
    let headers = Headers::new();
    headers
        .set("content-type", content_type)
        .or_fail("headers")?;
    headers.set(NOSNIFF.0, NOSNIFF.1).or_fail("headers")?;
    for (name, value) in extra {
        headers.append(name, value).or_fail("headers")?;
    }
    Ok(Response::builder()
        .with_status(status)
        .with_headers(headers)
        .fixed(body))
}

pub fn json<T: Serialize>(status: u16, value: &T, extra: &[(&str, &str)]) -> Outcome {
    let body =
        serde_json::to_vec(value).map_err(|_| Fail::new(500, "internal", "internal error"))?;
    respond(status, "application/json", body, extra)
}

/// A JSON body that already is JSON text (a cache's validated pass-through), sent as it is.
pub fn json_text(status: u16, text: &str, extra: &[(&str, &str)]) -> Outcome {
    respond(status, "application/json", text.as_bytes().to_vec(), extra)
}

/// Pages: no caching (they show who is signed in), no scripts, forms only to us.
pub fn html(status: u16, page: String, extra: &[(&str, &str)]) -> Outcome {
    let mut headers: Vec<(&str, &str)> = vec![
        ("cache-control", "no-store"),
        (
            "content-security-policy",
            "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'",
        ),
    ];
    headers.extend_from_slice(extra);
    respond(
        status,
        "text/html; charset=utf-8",
        page.into_bytes(),
        &headers,
    )
}

/// 303 See Other (after a POST) to a path of ours.
pub fn see_other(location: &str, extra: &[(&str, &str)]) -> Outcome {
    let mut headers: Vec<(&str, &str)> =
        vec![("location", location), ("cache-control", "no-store")];
    headers.extend_from_slice(extra);
    respond(303, "text/plain; charset=utf-8", Vec::new(), &headers)
}

/// Escape text for HTML element content and attribute values.
pub fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}
