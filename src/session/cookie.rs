//! The session cookie: reading it from a `Cookie` header, and the `Set-Cookie` values that
//! start, extend and clear it.
//!
//! Reading rules (all deliberate):
//! * A header longer than [`CookieConfig::with_max_header_bytes`] (default 8 KiB, the common
//!   server limit) is not parsed: no session.
//! * The header is split on `;` only and each pair parsed by the `cookie` crate. Not on `,`:
//!   RFC 6265 forbids commas in cookie values, but splitting on them would let a cookie set by
//!   a sibling subdomain smuggle `x=1,__Host-session=…` past the `__Host-` prefix's guarantee.
//! * Two `Cookie` header lines (HTTP/2 cookie crumbs, some clients) reach a worker joined by
//!   `", "`. When the session cookie's own value is an id followed by `", "`, the id is read (only
//!   this host sets that cookie, so nothing foreign can be smuggled in through its value). A
//!   session cookie that appears only inside another cookie's value after `", "` is not read:
//!   those bytes are indistinguishable from a value a sibling subdomain chose.
//! * Names match exactly and case-sensitively: `xsession`, `SessionRecord` or `session_` are other
//!   cookies. Values are taken as sent: no percent-decoding, no quote stripping — a session id
//!   has exactly one form ([`SessionId::parse`]).
//! * Duplicates: browsers send several cookies of one name when another path or a parent
//!   domain set one too. Values that are not session ids are ignored (they can never select a
//!   session); if the remaining ids are all equal that id is used, and if they differ the
//!   request has **no session** ([`NoSession::AmbiguousCookie`]) rather than guessing — picking
//!   one would let a cookie tossed from a sibling subdomain choose the session (login CSRF).
//!   No clearing `Set-Cookie` is sent for an ambiguous cookie either: a host-only clear can only
//!   delete this host's own cookie, never one set with `Domain` by a sibling, so it would hand
//!   the request to the tossed cookie (the login CSRF the rule exists to stop). Logging in or
//!   out with such a request deletes every id it carries on the server
//!   ([`CookieConfig::session_ids`]).
//! * The `__Host-` prefix is the default (the cookie is always `Secure`): browsers refuse a
//!   `__Host-` cookie that carries `Domain` or a `Path` other than `/`, or that comes from
//!   another host, so tossing and path duplicates cannot happen at all.
//!   [`CookieConfig::with_host_prefix`]`(false)` drops it, for an existing cookie name.
//!
//! Writing: `HttpOnly; Secure; SameSite=Lax; Path=/`, no `Domain` (host-only), `Max-Age` equal
//! to the session's remaining lifetime. There is no switch to drop `Secure`: browsers accept
//! secure cookies from `http://localhost` for development.

use cookie::Cookie;

use super::{id::SessionId, no_session::NoSession};

/// Default cookie name (the reference pattern's).
pub const DEFAULT_COOKIE_NAME: &str = "session";
/// Default cap on the `Cookie` header length, in bytes.
pub const DEFAULT_MAX_COOKIE_HEADER_BYTES: usize = 8 * 1024;
/// The prefix browsers reserve for host-only, secure, `Path=/` cookies.
pub const HOST_PREFIX: &str = "__Host-";
/// Most distinct session ids one request is taken to carry: login and logout delete that many
/// at most (a browser holds one, two when a path or parent-domain duplicate exists).
pub const MAX_SESSION_COOKIES: usize = 8;
/// What two `Cookie` header lines are joined with when a runtime hands them over as one.
const LINE_JOIN: &str = ", ";

/// The `SameSite` attribute of the session cookie.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SameSite {
    /// Sent on same-site requests and top-level navigations (the default: links from other
    /// sites keep the user logged in, cross-site POSTs do not carry the cookie).
    #[default]
    Lax,
    /// Only sent on same-site requests.
    Strict,
    /// Sent on cross-site requests too (needed in third-party iframes; `Secure` is always set).
    None,
}

impl SameSite {
    fn as_str(self) -> &'static str {
        match self {
            SameSite::Lax => "Lax",
            SameSite::Strict => "Strict",
            SameSite::None => "None",
        }
    }
}

/// A cookie name that is not an RFC 6265 token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cookie name must be a non-empty token without separators or control characters")]
pub struct InvalidCookieName;

/// How the session cookie is named, read and written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CookieConfig {
    name: String,
    host_prefix: bool,
    same_site: SameSite,
    max_header_bytes: usize,
}

impl Default for CookieConfig {
    fn default() -> Self {
        Self {
            name: DEFAULT_COOKIE_NAME.to_string(),
            host_prefix: true,
            same_site: SameSite::Lax,
            max_header_bytes: DEFAULT_MAX_COOKIE_HEADER_BYTES,
        }
    }
}

impl CookieConfig {
    /// A cookie named `name` (an RFC 6265 token), with the defaults otherwise.
    pub fn new(name: &str) -> Result<Self, InvalidCookieName> {
        let token = !name.is_empty()
            && name
                .bytes()
                .all(|b| b.is_ascii_graphic() && !b"()<>@,;:\\\"/[]?={}".contains(&b));
        if !token {
            return Err(InvalidCookieName);
        }
        Ok(Self {
            name: name.to_string(),
            ..Self::default()
        })
    }

    /// Prefix the name with `__Host-` (the default): browsers then refuse the cookie unless it
    /// is `Secure`, host-only and `Path=/`, which rules out cookie tossing from subdomains.
    /// `false` keeps the bare name (an existing deployment's cookie); tossed cookies then end
    /// in [`NoSession::AmbiguousCookie`], never in another user's session.
    #[must_use]
    pub fn with_host_prefix(mut self, on: bool) -> Self {
        self.host_prefix = on;
        self
    }

    /// The `SameSite` attribute (default `Lax`).
    #[must_use]
    pub fn with_same_site(mut self, same_site: SameSite) -> Self {
        self.same_site = same_site;
        self
    }

    /// Longest `Cookie` header that is parsed at all (default 8 KiB).
    #[must_use]
    pub fn with_max_header_bytes(mut self, max: usize) -> Self {
        self.max_header_bytes = max;
        self
    }

    /// The cookie name as sent, prefix included.
    pub fn name(&self) -> String {
        if self.host_prefix && !self.name.starts_with(HOST_PREFIX) {
            format!("{HOST_PREFIX}{}", self.name)
        } else {
            self.name.clone()
        }
    }

    /// The session id in a request's `Cookie` header, following the rules in the module docs.
    pub fn session_id(&self, header: Option<&str>) -> Result<SessionId, NoSession> {
        let found = self.scan(header)?;
        match found.ids.as_slice() {
            [id] => Ok(id.clone()),
            [] => Err(match found.malformed_len {
                Some(len) => NoSession::MalformedId { len },
                None => NoSession::NoCookie,
            }),
            _ => Err(NoSession::AmbiguousCookie { count: found.count }),
        }
    }

    /// Every distinct well-formed session id the header carries (at most
    /// 8, in header order), whatever [`session_id`](Self::session_id)
    /// makes of them. All of them are the sender's: login and logout delete each one, so a
    /// duplicate cookie cannot keep a session alive past a logout.
    pub fn session_ids(&self, header: Option<&str>) -> Vec<SessionId> {
        self.scan(header).map(|found| found.ids).unwrap_or_default()
    }

    fn scan(&self, header: Option<&str>) -> Result<Scan, NoSession> {
        let Some(header) = header else {
            return Err(NoSession::NoCookie);
        };
        if header.len() > self.max_header_bytes {
            return Err(NoSession::HeaderTooLarge { len: header.len() });
        }
        let name = self.name();
        let mut found = Scan::default();
        // Pairs that do not parse (no `=`, empty name) are other software's problem: skip them.
        for cookie in Cookie::split_parse(header).flatten() {
            if cookie.name() != name {
                continue;
            }
            found.count += 1;
            let value = cookie.value();
            // Two header lines joined by the runtime: `<id>, <next line>`.
            let id = SessionId::parse(value).or_else(|e| match value.split_once(LINE_JOIN) {
                Some((first, _)) => SessionId::parse(first),
                None => Err(e),
            });
            match id {
                Ok(id) => {
                    if !found.ids.contains(&id) && found.ids.len() < MAX_SESSION_COOKIES {
                        found.ids.push(id);
                    }
                }
                Err(_) => found.malformed_len = Some(value.len()),
            }
        }
        Ok(found)
    }

    /// `Set-Cookie` value carrying `id` for `max_age_secs` seconds.
    pub fn set_cookie(&self, id: &SessionId, max_age_secs: u64) -> String {
        format!(
            "{}={}; Max-Age={max_age_secs}; {}",
            self.name(),
            id.expose(),
            self.attributes()
        )
    }

    /// `Set-Cookie` value that makes the browser drop the session cookie (logout). It carries
    /// the same attributes as the cookie it replaces, which browsers require for `__Host-`.
    pub fn clear_cookie(&self) -> String {
        format!(
            "{}=; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT; {}",
            self.name(),
            self.attributes()
        )
    }

    /// True when a `Set-Cookie` value sets (or clears) the session cookie. The middleware
    /// uses it to leave a handler's own session cookie alone: after a rotation or a logout the
    /// refreshed cookie of the old id must not override it.
    pub fn is_session_set_cookie(&self, set_cookie: &str) -> bool {
        set_cookie
            .trim_start()
            .split_once('=')
            .is_some_and(|(name, _)| name.trim() == self.name())
    }

    fn attributes(&self) -> String {
        format!(
            "Path=/; HttpOnly; Secure; SameSite={}",
            self.same_site.as_str()
        )
    }
}

/// What one pass over a `Cookie` header found under the session cookie's name.
#[derive(Default)]
struct Scan {
    /// Pairs with the session cookie's name.
    count: usize,
    /// Distinct well-formed ids, in header order (at most [`MAX_SESSION_COOKIES`]).
    ids: Vec<SessionId>,
    /// Length of the last value that was not an id.
    malformed_len: Option<usize>,
}

/// Seconds from `now_ms` until `expires_at_ms`, rounded down so the cookie never outlives the
/// session (0 when already past).
pub fn max_age_secs(expires_at_ms: u64, now_ms: u64) -> u64 {
    expires_at_ms.saturating_sub(now_ms) / 1000
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The bare `session` name (the default is `__Host-session`).
    fn plain() -> CookieConfig {
        CookieConfig::default().with_host_prefix(false)
    }

    fn id(c: char) -> String {
        c.to_string().repeat(64)
    }

    fn read(cfg: &CookieConfig, header: &str) -> Result<String, NoSession> {
        cfg.session_id(Some(header))
            .map(|id| id.expose().to_string())
    }

    #[test]
    fn finds_the_exact_name_among_others() {
        let cfg = plain();
        let a = id('a');
        assert_eq!(
            read(&cfg, &format!("theme=dark; session={a}; x=1")),
            Ok(a.clone())
        );
        assert_eq!(read(&cfg, &format!("session={a}")), Ok(a.clone()));
        // Optional whitespace around pairs is allowed by RFC 6265.
        assert_eq!(read(&cfg, &format!("  session={a} ;x=2")), Ok(a));
    }

    #[test]
    fn look_alike_names_are_other_cookies() {
        let cfg = plain();
        let a = id('a');
        for header in [
            format!("xsession={a}"),
            format!("session_={a}"),
            format!("SessionRecord={a}"),
            format!("SESSION={a}"),
            format!("sess%69on={a}"),
            format!("__Host-session={a}"),
        ] {
            assert_eq!(read(&cfg, &header), Err(NoSession::NoCookie), "{header}");
        }
        let host = CookieConfig::default();
        assert_eq!(
            read(&host, &format!("session={a}")),
            Err(NoSession::NoCookie)
        );
        assert_eq!(read(&host, &format!("__Host-session={a}")), Ok(a));
    }

    #[test]
    fn comma_does_not_separate_cookies() {
        let cfg = CookieConfig::default();
        let header = format!("tossed=1,__Host-session={}", id('b'));
        assert_eq!(read(&cfg, &header), Err(NoSession::NoCookie));
    }

    #[test]
    fn bad_values_are_malformed_not_panics() {
        let cfg = plain();
        for (header, len) in [
            ("session=".to_string(), 0),
            ("session=abc".to_string(), 3),
            (format!("session=\"{}\"", id('a')), 66),
            (format!("session={}", id('A')), 64),
            (
                format!("session={}", "a".repeat(10 * 1024 - 8)),
                10 * 1024 - 8,
            ),
        ] {
            let cfg = cfg.clone().with_max_header_bytes(usize::MAX);
            assert_eq!(
                read(&cfg, &header),
                Err(NoSession::MalformedId { len }),
                "{}",
                &header[..header.len().min(40)]
            );
        }
        for header in ["", ";;;", "=", "session", "=session", "\u{0}", "ééé=é"] {
            assert_eq!(read(&cfg, header), Err(NoSession::NoCookie), "{header:?}");
        }
        assert_eq!(cfg.session_id(None), Err(NoSession::NoCookie));
    }

    #[test]
    fn oversized_header_is_not_parsed() {
        let cfg = plain();
        let header = format!("pad={}; session={}", "x".repeat(10 * 1024), id('a'));
        assert_eq!(
            read(&cfg, &header),
            Err(NoSession::HeaderTooLarge { len: header.len() })
        );
    }

    #[test]
    fn duplicates() {
        let cfg = plain();
        let (a, b) = (id('a'), id('b'));
        assert_eq!(
            read(&cfg, &format!("session={a}; session={a}")),
            Ok(a.clone())
        );
        assert_eq!(
            read(&cfg, &format!("session={a}; session={b}")),
            Err(NoSession::AmbiguousCookie { count: 2 })
        );
        // A value that is not an id cannot pick a session, so it does not make others ambiguous.
        assert_eq!(
            read(&cfg, &format!("session=junk; session={a}")),
            Ok(a.clone())
        );
        assert_eq!(read(&cfg, &format!("session={a}; session=")), Ok(a));
    }

    #[test]
    fn host_prefix_is_the_default() {
        let cfg = CookieConfig::default();
        assert_eq!(cfg.name(), "__Host-session");
        assert_eq!(CookieConfig::new("sid").unwrap().name(), "__Host-sid");
        let a = id('a');
        // A tossed cookie cannot carry the prefix (browsers refuse `__Host-` with `Domain`):
        // the bare name is another cookie.
        assert_eq!(
            read(&cfg, &format!("session={}; __Host-session={a}", id('b'))),
            Ok(a)
        );
    }

    #[test]
    fn every_distinct_id_is_listed_for_logout() {
        let cfg = plain();
        let (a, b) = (id('a'), id('b'));
        let ids = |h: &str| {
            cfg.session_ids(Some(h))
                .iter()
                .map(|i| i.expose().to_string())
                .collect::<Vec<_>>()
        };
        assert_eq!(
            ids(&format!("session={a}; x=1; session={b}; session={a}")),
            [a.clone(), b]
        );
        assert_eq!(ids(&format!("session=junk; session={a}")), [a]);
        assert!(ids("session=junk").is_empty());
        assert!(cfg.session_ids(None).is_empty());
        let many: Vec<String> = (0..20).map(|n| format!("session={n:064x}")).collect();
        assert_eq!(ids(&many.join("; ")).len(), MAX_SESSION_COOKIES);
        let oversize = format!("pad={}; session={}", "x".repeat(10 * 1024), id('a'));
        assert!(
            ids(&oversize).is_empty(),
            "an unparsed header carries nothing"
        );
    }

    /// Regression (issue 12.5): two `Cookie` lines joined by the runtime with `", "` logged a
    /// valid session out (`MalformedId` clears the cookie).
    #[test]
    fn two_header_lines_joined_by_the_runtime() {
        let a = id('a');
        for cfg in [plain(), CookieConfig::default()] {
            let name = cfg.name();
            assert_eq!(
                read(&cfg, &format!("{name}={a}, theme=dark")),
                Ok(a.clone())
            );
            assert_eq!(
                read(&cfg, &format!("lang=en; {name}={a}, theme=dark; x=1")),
                Ok(a.clone())
            );
            // The session cookie inside another cookie's value is not read: a sibling
            // subdomain could have chosen those bytes.
            assert_eq!(
                read(&cfg, &format!("x=1, {name}={a}")),
                Err(NoSession::NoCookie)
            );
            // Without the space it is no join: a comma inside the value.
            assert_eq!(
                read(&cfg, &format!("{name}={a},theme=dark")),
                Err(NoSession::MalformedId { len: 64 + 11 })
            );
            assert_eq!(
                read(&cfg, &format!("x=1,{name}={a}")),
                Err(NoSession::NoCookie)
            );
        }
    }

    #[test]
    fn set_and_clear() {
        let cfg = CookieConfig::default();
        let sid = SessionId::parse(&id('c')).unwrap();
        let set = cfg.set_cookie(&sid, 604_800);
        let parsed = Cookie::parse(set.as_str()).unwrap();
        assert_eq!(parsed.name(), "__Host-session");
        assert_eq!(parsed.value(), id('c'));
        assert_eq!(parsed.http_only(), Some(true));
        assert_eq!(parsed.secure(), Some(true));
        assert_eq!(parsed.path(), Some("/"));
        assert_eq!(parsed.same_site(), Some(cookie::SameSite::Lax));
        assert_eq!(parsed.domain(), None);
        assert_eq!(parsed.max_age().map(|d| d.whole_seconds()), Some(604_800));

        let clear = Cookie::parse(cfg.clear_cookie()).unwrap();
        assert_eq!(clear.name(), "__Host-session");
        assert_eq!(clear.value(), "");
        assert_eq!(clear.max_age().map(|d| d.whole_seconds()), Some(0));
        assert_eq!((clear.secure(), clear.path()), (Some(true), Some("/")));
    }

    #[test]
    fn recognises_its_own_set_cookie() {
        let cfg = plain();
        let sid = SessionId::parse(&id('c')).unwrap();
        assert!(cfg.is_session_set_cookie(&cfg.set_cookie(&sid, 5)));
        assert!(cfg.is_session_set_cookie(&cfg.clear_cookie()));
        assert!(!cfg.is_session_set_cookie("xsession=1; Path=/"));
        assert!(!cfg.is_session_set_cookie("theme=session=1"));
        let host = CookieConfig::default();
        assert!(!host.is_session_set_cookie(&cfg.clear_cookie()));
        assert!(host.is_session_set_cookie(&host.clear_cookie()));
    }

    #[test]
    fn names_must_be_tokens() {
        for bad in ["", "a b", "a;b", "a=b", "séance", "a\u{7f}"] {
            assert_eq!(CookieConfig::new(bad), Err(InvalidCookieName), "{bad:?}");
        }
        let sid = CookieConfig::new("sid").unwrap().with_host_prefix(false);
        assert_eq!(sid.name(), "sid");
    }

    #[test]
    fn max_age_rounds_down() {
        assert_eq!(max_age_secs(10_999, 0), 10);
        assert_eq!(max_age_secs(5, 10), 0);
    }
}
