//! Between `http` and the gate's plain types: the request parts the gate reads, and its
//! [`PlainResponse`] as an `http` response.

use axum_core::body::Body;
use http::{header, request::Parts, HeaderName, HeaderValue, Response, StatusCode};

use crate::session::{OwnedRequestParts, PlainResponse};

/// The parts of a request the gate reads, copied out of `http`'s request parts.
pub(super) fn owned_parts(parts: &Parts) -> OwnedRequestParts {
    OwnedRequestParts {
        method: parts.method.as_str().to_string(),
        path: parts.uri.path().to_string(),
        query: parts.uri.query().map(str::to_string),
        accept: joined(parts, &header::ACCEPT, ", "),
        // HTTP/2 may split cookies over several headers; they join with "; " (RFC 9113).
        cookie: joined(parts, &header::COOKIE, "; "),
        origin: joined(parts, &header::ORIGIN, ", "),
        sec_fetch_site: joined(parts, &HeaderName::from_static("sec-fetch-site"), ", "),
        // HTTP/2 carries the host in the URI (`:authority`), HTTP/1.1 in `Host`.
        host: joined(parts, &header::HOST, ", ")
            .or_else(|| parts.uri.authority().map(|a| a.as_str().to_string())),
    }
}

/// Every value of `name`, joined; bytes that are no UTF-8 become U+FFFD, which the gate's
/// strict cookie parser refuses like any other malformed input.
fn joined(parts: &Parts, name: &HeaderName, sep: &str) -> Option<String> {
    let values: Vec<String> = parts
        .headers
        .get_all(name)
        .iter()
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        .collect();
    (!values.is_empty()).then(|| values.join(sep))
}

/// The gate's response as an `http` response. A header the gate made is always valid; one
/// that were not would be dropped, never a panic.
pub fn to_http_response(plain: &PlainResponse) -> Response<Body> {
    let mut response = Response::new(Body::from(plain.body.clone()));
    *response.status_mut() =
        StatusCode::from_u16(plain.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    for (name, value) in &plain.headers {
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(value),
        ) {
            response.headers_mut().append(name, value);
        }
    }
    response
}

/// Append `set_cookie` to `response`'s headers.
pub(super) fn append_set_cookie(response: &mut Response<Body>, set_cookie: &str) {
    if let Ok(value) = HeaderValue::from_str(set_cookie) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
}

/// The `Set-Cookie` values `response` carries.
pub(super) fn set_cookies_of(response: &Response<Body>) -> Vec<String> {
    response
        .headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok().map(str::to_string))
        .collect()
}
