//! What the gate reads of a request, without any HTTP library: [`RequestParts`], and the owned
//! copy each front end (workers-rs, axum) makes of its own request type.

/// The parts of a request the gate looks at.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RequestParts<'a> {
    /// HTTP method (`GET`).
    pub method: &'a str,
    /// URL path as received (`/account/settings`), still percent-encoded.
    pub path: &'a str,
    /// URL query without `?`, if any.
    pub query: Option<&'a str>,
    /// The `Accept` header.
    pub accept: Option<&'a str>,
    /// The `Cookie` header.
    pub cookie: Option<&'a str>,
    /// The `Origin` header ([`SameOrigin`](crate::session::SameOrigin)).
    pub origin: Option<&'a str>,
    /// The `Sec-Fetch-Site` header ([`SameOrigin`](crate::session::SameOrigin)).
    pub sec_fetch_site: Option<&'a str>,
    /// The `Host` header, or the request URL's host and port
    /// ([`SameOrigin`](crate::session::SameOrigin)).
    pub host: Option<&'a str>,
}

/// [`RequestParts`], owned (so they can cross an `.await`): what each front end copies out of
/// its own request type (`session::middleware` for workers-rs, `axum` for `http`).
#[cfg(any(all(feature = "worker", target_arch = "wasm32"), feature = "axum"))]
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OwnedRequestParts {
    pub(crate) method: String,
    pub(crate) path: String,
    pub(crate) query: Option<String>,
    pub(crate) accept: Option<String>,
    pub(crate) cookie: Option<String>,
    pub(crate) origin: Option<String>,
    pub(crate) sec_fetch_site: Option<String>,
    pub(crate) host: Option<String>,
}

#[cfg(any(all(feature = "worker", target_arch = "wasm32"), feature = "axum"))]
impl OwnedRequestParts {
    /// Borrowed, as the gate takes them.
    pub fn parts(&self) -> RequestParts<'_> {
        RequestParts {
            method: &self.method,
            path: &self.path,
            query: self.query.as_deref(),
            accept: self.accept.as_deref(),
            cookie: self.cookie.as_deref(),
            origin: self.origin.as_deref(),
            sec_fetch_site: self.sec_fetch_site.as_deref(),
            host: self.host.as_deref(),
        }
    }
}
