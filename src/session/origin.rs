//! The same-origin rule for requests that change state: a page on another site must not be
//! able to log a browser in (login CSRF: into the attacker's account), out, or make it act.
//!
//! `SameSite=Lax` keeps the session cookie off cross-site POSTs, but a login form needs no
//! cookie to be abused, and a sibling subdomain is "same-site". So every unsafe request
//! (anything but `GET`, `HEAD`, `OPTIONS`) from a browser must come from this origin. The rule
//! follows Go's `net/http.CrossOriginProtection` (1.25):
//!
//! 1. `Sec-Fetch-Site` (sent by every current browser) decides when present: `same-origin` and
//!    `none` (the user's own navigation) pass, `same-site` and `cross-site` do not.
//! 2. Without it, `Origin` decides: absent passes (not a browser, or one too old to send
//!    either), `null` does not, otherwise its host and port must equal the `Host` header's.
//! 3. Origins the app names ([`SameOrigin::with_trusted_origin`]) pass, whatever the headers.
//!
//! Non-browser clients (curl, other services) send neither header and pass: the rule is about
//! what a browser can be made to send, not an authentication.

use super::{request::RequestParts, response::PlainResponse};

/// The same-origin check of state-changing requests, for both front ends: call
/// [`check`](Self::check) (workers-rs: `session::middleware::refuse_cross_origin`; axum:
/// [`SameOriginLayer`](crate::axum::SameOriginLayer)).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SameOrigin {
    trusted: Vec<String>,
}

/// A request [`SameOrigin`] refused, and why (the header that decided; never its value).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum CrossOrigin {
    /// `Sec-Fetch-Site` said `cross-site` or `same-site`.
    FetchSite,
    /// `Origin` named another host (or `null`).
    Origin,
}

impl CrossOrigin {
    /// A short stable name, for logs and metrics.
    pub fn code(self) -> &'static str {
        match self {
            CrossOrigin::FetchSite => "cross_site_fetch",
            CrossOrigin::Origin => "foreign_origin",
        }
    }

    /// The answer to send: 403 JSON `{"error":"cross_origin"}`, not cached.
    pub fn response(self) -> PlainResponse {
        PlainResponse {
            status: 403,
            headers: vec![
                ("Content-Type", "application/json".to_string()),
                ("Cache-Control", "no-store".to_string()),
                ("X-Content-Type-Options", "nosniff".to_string()),
            ],
            body: r#"{"error":"cross_origin","message":"cross-origin requests that change state are refused"}"#
                .to_string(),
        }
    }
}

impl SameOrigin {
    /// The rule with no trusted origin.
    pub fn new() -> Self {
        Self::default()
    }

    /// Also accept requests whose `Origin` is exactly `origin` (`https://app.example.com`, no
    /// path): another front end of the same app. Compared case-insensitively.
    #[must_use]
    pub fn with_trusted_origin(mut self, origin: impl Into<String>) -> Self {
        self.trusted.push(origin.into().to_ascii_lowercase());
        self
    }

    /// Whether `req` may proceed (see the module docs for the rule).
    pub fn check(&self, req: &RequestParts<'_>) -> Result<(), CrossOrigin> {
        if is_safe(req.method) {
            return Ok(());
        }
        if let Some(origin) = req.origin {
            let origin = origin.trim().to_ascii_lowercase();
            if self.trusted.contains(&origin) {
                return Ok(());
            }
        }
        if let Some(site) = req.sec_fetch_site {
            let site = site.trim();
            return if site.eq_ignore_ascii_case("same-origin") || site.eq_ignore_ascii_case("none")
            {
                Ok(())
            } else {
                Err(CrossOrigin::FetchSite)
            };
        }
        let Some(origin) = req.origin else {
            return Ok(());
        };
        match (authority_of(origin), req.host) {
            (Some(from), Some(host)) if from.eq_ignore_ascii_case(host.trim()) => Ok(()),
            _ => Err(CrossOrigin::Origin),
        }
    }
}

fn is_safe(method: &str) -> bool {
    ["GET", "HEAD", "OPTIONS"]
        .iter()
        .any(|m| m.eq_ignore_ascii_case(method))
}

/// `host[:port]` of a serialized origin (`scheme://host[:port]`); `None` for `null` or
/// anything with a path, user info or no scheme.
fn authority_of(origin: &str) -> Option<&str> {
    let (_, rest) = origin.trim().split_once("://")?;
    (!rest.is_empty() && !rest.contains(['/', '@', '?', '#'])).then_some(rest)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn post<'a>(
        origin: Option<&'a str>,
        site: Option<&'a str>,
        host: Option<&'a str>,
    ) -> RequestParts<'a> {
        RequestParts {
            method: "POST",
            path: "/login",
            origin,
            sec_fetch_site: site,
            host,
            ..RequestParts::default()
        }
    }

    const HOST: Option<&str> = Some("app.example:8787");

    #[test]
    fn safe_methods_always_pass() {
        for method in ["GET", "head", "OPTIONS"] {
            let req = RequestParts {
                method,
                origin: Some("https://evil.example"),
                sec_fetch_site: Some("cross-site"),
                ..RequestParts::default()
            };
            assert_eq!(SameOrigin::new().check(&req), Ok(()), "{method}");
        }
    }

    /// Review 2: a cross-site form POST to the login route logged the browser in.
    #[test]
    fn a_cross_site_form_post_is_refused() {
        let rule = SameOrigin::new();
        let req = post(Some("https://evil.example"), Some("cross-site"), HOST);
        assert_eq!(rule.check(&req), Err(CrossOrigin::FetchSite));
        // A sibling subdomain is same-site, not same-origin.
        let req = post(Some("https://evil.app.example"), Some("same-site"), HOST);
        assert_eq!(rule.check(&req), Err(CrossOrigin::FetchSite));
        // Old browsers: `Origin` only.
        let req = post(Some("https://evil.example"), None, HOST);
        assert_eq!(rule.check(&req), Err(CrossOrigin::Origin));
        let req = post(Some("null"), None, HOST);
        assert_eq!(rule.check(&req), Err(CrossOrigin::Origin));
        // Another port of the same host is another origin.
        let req = post(Some("http://app.example:9999"), None, HOST);
        assert_eq!(rule.check(&req), Err(CrossOrigin::Origin));
        // An origin but no Host to compare with: refused.
        let req = post(Some("http://app.example:8787"), None, None);
        assert_eq!(rule.check(&req), Err(CrossOrigin::Origin));
    }

    #[test]
    fn same_origin_and_non_browser_requests_pass() {
        let rule = SameOrigin::new();
        let req = post(Some("http://app.example:8787"), Some("same-origin"), HOST);
        assert_eq!(rule.check(&req), Ok(()));
        let req = post(None, Some("none"), HOST);
        assert_eq!(rule.check(&req), Ok(()));
        let req = post(Some("http://APP.example:8787"), None, HOST);
        assert_eq!(rule.check(&req), Ok(()));
        // curl, another service: neither header.
        assert_eq!(rule.check(&post(None, None, HOST)), Ok(()));
        assert_eq!(rule.check(&post(None, None, None)), Ok(()));
    }

    #[test]
    fn trusted_origins_pass() {
        let rule = SameOrigin::new().with_trusted_origin("https://Admin.example");
        let req = post(Some("https://admin.example"), Some("cross-site"), HOST);
        assert_eq!(rule.check(&req), Ok(()));
        let req = post(Some("https://admin.example.evil"), Some("cross-site"), HOST);
        assert_eq!(rule.check(&req), Err(CrossOrigin::FetchSite));
    }

    #[test]
    fn malformed_origins_are_refused() {
        let rule = SameOrigin::new();
        for origin in [
            "app.example:8787",
            "http://app.example:8787/path",
            "http://user@app.example:8787",
            "http://",
        ] {
            let req = post(Some(origin), None, HOST);
            assert_eq!(rule.check(&req), Err(CrossOrigin::Origin), "{origin}");
        }
    }

    #[test]
    fn the_refusal_is_a_403_that_is_not_cached() {
        let res = CrossOrigin::Origin.response();
        assert_eq!(res.status, 403);
        assert_eq!(res.header("cache-control"), Some("no-store"));
        assert!(res.body.contains("cross_origin"));
    }
}
