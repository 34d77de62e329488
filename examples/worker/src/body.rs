//! Request bodies: read with a size cap, parsed as a form or JSON (one field), email checked.
//! Every problem is a 4xx [`Fail`] whose message names the problem, never the value.

use futures_util::StreamExt;
use serde::de::DeserializeSeed;
use serde_json::{error::Category, Value};
use worker::Request;

use crate::http::Fail;

/// Largest login body accepted. A login form is a few dozen bytes.
pub const MAX_LOGIN_BODY: usize = 4 * 1024;
/// How much of an oversized streamed body is read and discarded before giving up on it.
const DRAIN_LIMIT: usize = 1024 * 1024;
/// Longest email accepted (RFC 5321's path limit; the session schema allows 320).
pub const MAX_EMAIL: usize = 254;

fn too_large() -> Fail {
    Fail::new(
        413,
        "body_too_large",
        format!("request body exceeds {MAX_LOGIN_BODY} bytes"),
    )
}

/// Read the body, refusing (413) once it passes `limit` bytes: by `Content-Length` before
/// reading anything, and while streaming for chunked bodies, so a huge body is never buffered.
pub async fn read_capped(req: &mut Request, limit: usize) -> Result<Vec<u8>, Fail> {
    if let Ok(Some(len)) = req.headers().get("content-length") {
        match len.trim().parse::<u64>() {
            Ok(n) if n > limit as u64 => return Err(too_large()),
            Ok(_) => {}
            Err(_) => return Err(Fail::bad_request("bad_length", "invalid Content-Length")),
        }
    }
    if req.inner().body().is_none() {
        return Ok(Vec::new());
    }
    let mut stream = req
        .stream()
        .map_err(|_| Fail::bad_request("bad_body", "request body could not be read"))?;
    let mut body = Vec::new();
    let mut seen = 0usize;
    while let Some(chunk) = stream.next().await {
        let chunk =
            chunk.map_err(|_| Fail::bad_request("bad_body", "request body could not be read"))?;
        seen = seen.saturating_add(chunk.len());
        if seen > limit {
            // Keep reading (and dropping) up to DRAIN_LIMIT: a body abandoned mid-stream
            // stalls the connection behind it in wrangler's local proxy.
            if seen > DRAIN_LIMIT {
                return Err(too_large());
            }
            continue;
        }
        body.extend_from_slice(&chunk);
    }
    if seen > limit {
        return Err(too_large());
    }
    Ok(body)
}

/// The media type of a `Content-Type` header, lowercased, parameters dropped.
fn media_type(content_type: Option<&str>) -> String {
    content_type
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

/// The email of a login body (`application/x-www-form-urlencoded` or `application/json`).
pub fn login_email(content_type: Option<&str>, body: &[u8]) -> Result<String, Fail> {
    let raw = field(content_type, body, "email").map_err(|fail| match fail.code {
        "missing_field" => Fail::bad_request("missing_email", "email is required"),
        "duplicate_field" => Fail::bad_request("duplicate_email", "email is given more than once"),
        "invalid_field" => Fail::bad_request("invalid_email", "email must be a string"),
        _ => fail,
    })?;
    // ASCII whitespace only: non-ASCII (an NBSP, say) is not trimmed away but refused by
    // `check_email` as `invalid_email`, as documented.
    check_email(raw.trim_matches(|c: char| c.is_ascii_whitespace()))
}

/// The string field `name` of a form or JSON object body, given once: `missing_field`,
/// `duplicate_field` (parsers disagree on which duplicate wins, so accepting one would let two
/// readers see two values) and `invalid_field` (not a string) are 400s naming the field, never
/// its value; another media type is a 415.
pub fn field(content_type: Option<&str>, body: &[u8], name: &'static str) -> Result<String, Fail> {
    let value =
        match media_type(content_type).as_str() {
            "application/x-www-form-urlencoded" => form_field(body, name)?,
            "application/json" => json_field(body, name)?,
            "" => return Err(Fail::new(
                415,
                "unsupported_media_type",
                "missing Content-Type: send application/x-www-form-urlencoded or application/json",
            )),
            _ => {
                return Err(Fail::new(
                    415,
                    "unsupported_media_type",
                    "Content-Type must be application/x-www-form-urlencoded or application/json",
                ))
            }
        };
    value.ok_or_else(|| Fail::bad_request("missing_field", format!("{name} is required")))
}

/// Whether the body is JSON (the API's answer) rather than a form (a page's).
pub fn is_json(content_type: Option<&str>) -> bool {
    media_type(content_type) == "application/json"
}

fn duplicate(name: &str) -> Fail {
    Fail::bad_request("duplicate_field", format!("{name} is given more than once"))
}

/// Strict `application/x-www-form-urlencoded`: UTF-8, only URL-safe characters and valid
/// `%XX` escapes, `name` at most once.
fn form_field(body: &[u8], name: &str) -> Result<Option<String>, Fail> {
    let malformed =
        |why: &str| Fail::bad_request("malformed_form", format!("malformed form body: {why}"));
    let text = std::str::from_utf8(body).map_err(|_| malformed("not UTF-8"))?;
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .ok_or_else(|| malformed("truncated %-escape"))?;
            if !hex.iter().all(u8::is_ascii_hexdigit) {
                return Err(malformed("invalid %-escape"));
            }
            i += 3;
            continue;
        }
        if !(b.is_ascii_alphanumeric() || b"-._~*+&=!$'(),;:@/?".contains(&b)) {
            return Err(malformed("character not allowed unencoded"));
        }
        i += 1;
    }
    let mut found = None;
    for (key, value) in form_urlencoded::parse(bytes) {
        if key == name {
            if found.is_some() {
                return Err(duplicate(name));
            }
            found = Some(value.into_owned());
        }
    }
    Ok(found)
}

/// The member `name` of a JSON object body; a repeated one is refused (`duplicate_field`).
fn json_field(body: &[u8], name: &'static str) -> Result<Option<String>, Fail> {
    let mut de = serde_json::Deserializer::from_slice(body);
    let member = Member { name }
        .deserialize(&mut de)
        .and_then(|m| de.end().map(|()| m))
        .map_err(|e| match e.classify() {
            Category::Data if e.to_string().starts_with(DUPLICATE) => duplicate(name),
            // Valid JSON of another shape (an array, a string, ...).
            Category::Data => Fail::bad_request("malformed_json", "JSON body must be an object"),
            // Position only: error texts can quote the input.
            _ => Fail::bad_request(
                "malformed_json",
                format!(
                    "malformed JSON body at line {}, column {}",
                    e.line(),
                    e.column()
                ),
            ),
        })?;
    match member {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(Fail::bad_request(
            "invalid_field",
            format!("{name} must be a string"),
        )),
    }
}

const DUPLICATE: &str = "duplicate member";

/// Reads a JSON object, keeping only the member `name` (which must appear at most once); other
/// members are skipped without being kept.
struct Member {
    name: &'static str,
}

impl<'de> DeserializeSeed<'de> for Member {
    type Value = Option<Value>;

    fn deserialize<De: serde::Deserializer<'de>>(self, de: De) -> Result<Self::Value, De::Error> {
        de.deserialize_map(self)
    }
}

impl<'de> serde::de::Visitor<'de> for Member {
    type Value = Option<Value>;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(
        self,
        mut map: A,
    ) -> Result<Option<Value>, A::Error> {
        let mut found = None;
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            if key == self.name {
                if found.is_some() {
                    return Err(serde::de::Error::custom(DUPLICATE));
                }
                found = Some(map.next_value::<Value>()?);
            } else {
                map.next_value::<serde::de::IgnoredAny>()?;
            }
        }
        Ok(found)
    }
}

/// A plain ASCII address `local@domain.tld`: the subset of RFC 5322 that real sign-up forms
/// accept. The session schema (`format: email`) checks it again on every read and write.
pub fn check_email(email: &str) -> Result<String, Fail> {
    let invalid = |why: &str| {
        Fail::bad_request(
            "invalid_email",
            format!("email is not a valid address: {why}"),
        )
    };
    if email.is_empty() {
        return Err(Fail::bad_request("missing_email", "email is required"));
    }
    if email.len() > MAX_EMAIL {
        return Err(invalid("longer than 254 characters"));
    }
    let Some((local, domain)) = email.split_once('@') else {
        return Err(invalid("no @"));
    };
    if local.is_empty() || local.len() > 64 {
        return Err(invalid("the part before @ must be 1-64 characters"));
    }
    let local_ok = local
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-/=?^_`{|}~.".contains(&b))
        && !local.starts_with('.')
        && !local.ends_with('.')
        && !local.contains("..");
    if !local_ok {
        return Err(invalid("unsupported characters before @"));
    }
    let labels_ok = domain.split('.').count() >= 2
        && domain.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        });
    if !labels_ok {
        return Err(invalid("the domain must look like example.com"));
    }
    Ok(email.to_string())
}
