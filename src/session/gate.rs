//! The middleware's decisions as plain, platform-independent functions: which session a
//! request has, what goes back when it has none (302 to the login page for pages, 401 JSON for
//! APIs, 503 when KV fails), and which `Set-Cookie` rides on a response. The workers-rs glue
//! (`middleware`, wasm32 + feature `worker`) only moves headers in and out, so everything here
//! is tested natively.

use std::fmt;

use super::{
    cookie::{max_age_secs, CookieConfig},
    data::SessionData,
    device::{Device, DeviceHandle, Revocation},
    id::SessionId,
    no_session::NoSession,
    record::SessionRecord,
    request::RequestParts,
    response::{Denied, DenyCause, PlainResponse},
    sessions::{LogoutAll, Lookup, RefreshPlan, Sessions},
};
use crate::{backend::Consistency, background::Background, error::Error};

/// Default login page for redirects.
pub const DEFAULT_LOGIN_PATH: &str = "/login";
/// Default query parameter carrying the page to return to after login.
pub const DEFAULT_RETURN_TO_PARAM: &str = "next";
/// Longest return-to target (path and query) put in a redirect; longer ones are left out.
const MAX_RETURN_TO_BYTES: usize = 1024;

/// A request with a valid session.
#[derive(Debug, Clone, PartialEq)]
pub struct CurrentSession<D> {
    /// The session id (from the cookie).
    pub id: SessionId,
    /// The session.
    pub session: D,
    /// `Set-Cookie` for the extended session: present when the refresh is due, so the
    /// cookie's `Max-Age` follows the session. [`SessionGate::finish`] hands it out.
    pub set_cookie: Option<String>,
    /// What the write budget decided.
    pub refresh: RefreshPlan,
}

impl<D> CurrentSession<D> {
    /// What [`SessionGate::finish`] needs once the handler has run (the handler takes the
    /// [`CurrentSession`] itself).
    pub fn ticket(&self) -> RefreshTicket {
        RefreshTicket {
            id: self.id.clone(),
            refresh: self.refresh,
            set_cookie: self.set_cookie.clone(),
        }
    }
}

/// The pending refresh of an admitted request, settled by [`SessionGate::finish`] after the
/// handler.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefreshTicket {
    id: SessionId,
    refresh: RefreshPlan,
    set_cookie: Option<String>,
}

/// A session just created ([`SessionGate::login`]) or given a new id
/// ([`SessionGate::rotate`]), with the `Set-Cookie` that hands its id to the browser.
#[derive(Debug, Clone, PartialEq)]
pub struct NewSession<D> {
    /// The new id (only its hash is stored).
    pub id: SessionId,
    /// The session as stored.
    pub session: D,
    /// `Set-Cookie` for the new id.
    pub set_cookie: String,
}

/// What [`SessionGate::logout_everywhere`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogoutEverywhere {
    /// How many sessions went, and whether all did.
    pub outcome: LogoutAll,
    /// The clearing `Set-Cookie`, once every session is gone (`None` while the caller keeps
    /// its session to call again).
    pub set_cookie: Option<String>,
}

/// The gate's verdict on a request.
#[derive(Debug, Clone, PartialEq)]
pub enum Admission<D> {
    /// Hand the session to the handler; add `set_cookie` to its response.
    Admitted(CurrentSession<D>),
    /// Send the response instead of calling the handler.
    Denied(Denied),
}

/// SessionRecord middleware logic: cookie → id → session → verdict, plus login, logout and rotation
/// helpers that produce the matching `Set-Cookie`.
pub struct SessionGate<D: SessionData = SessionRecord> {
    store: Sessions<D>,
    cookie: CookieConfig,
    login_path: String,
    api_prefixes: Vec<String>,
    return_to: Option<String>,
}

impl<D: SessionData> Clone for SessionGate<D> {
    fn clone(&self) -> Self {
        Self {
            store: self.store.clone(),
            cookie: self.cookie.clone(),
            login_path: self.login_path.clone(),
            api_prefixes: self.api_prefixes.clone(),
            return_to: self.return_to.clone(),
        }
    }
}

impl<D: SessionData> fmt::Debug for SessionGate<D> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionGate")
            .field("store", &self.store)
            .field("cookie", &self.cookie)
            .field("login_path", &self.login_path)
            .field("api_prefixes", &self.api_prefixes)
            .field("return_to", &self.return_to)
            .finish()
    }
}

impl<D: SessionData> SessionGate<D> {
    /// A gate on `store` with the default cookie (`__Host-session`), login path `/login`, return-to
    /// parameter `next`, and no API path prefix (APIs are recognised by `Accept`).
    pub fn new(store: Sessions<D>) -> Self {
        Self {
            store,
            cookie: CookieConfig::default(),
            login_path: DEFAULT_LOGIN_PATH.to_string(),
            api_prefixes: Vec::new(),
            return_to: Some(DEFAULT_RETURN_TO_PARAM.to_string()),
        }
    }

    /// Use this cookie configuration.
    #[must_use]
    pub fn with_cookie(mut self, cookie: CookieConfig) -> Self {
        self.cookie = cookie;
        self
    }

    /// Redirect pages without a session here (a path or an absolute URL).
    #[must_use]
    pub fn with_login_path(mut self, path: impl Into<String>) -> Self {
        self.login_path = path.into();
        self
    }

    /// Treat requests under `prefix` (`/api` matches `/api` and `/api/…`, not `/apiary`) as API
    /// requests: 401 JSON instead of a redirect. May be called several times.
    #[must_use]
    pub fn with_api_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.api_prefixes.push(prefix.into());
        self
    }

    /// Name of the query parameter that carries the page to return to after login (`None`:
    /// do not add one). Only same-site paths of GET/HEAD requests are carried; the login
    /// handler must still check the value before redirecting to it.
    #[must_use]
    pub fn with_return_to(mut self, param: Option<&str>) -> Self {
        self.return_to = param.map(str::to_string);
        self
    }

    /// The store.
    pub fn store(&self) -> &Sessions<D> {
        &self.store
    }

    /// The cookie configuration.
    pub fn cookie(&self) -> &CookieConfig {
        &self.cookie
    }

    /// True when a request gets 401 JSON rather than a redirect: its path is under an API
    /// prefix, or its `Accept` lists a JSON type (`application/json`, `application/*+json`)
    /// and not `text/html` (browser navigations always list `text/html`).
    pub fn is_api(&self, req: &RequestParts<'_>) -> bool {
        let under_prefix = self.api_prefixes.iter().any(|p| {
            req.path
                .strip_prefix(p.as_str())
                .is_some_and(|rest| rest.is_empty() || rest.starts_with('/') || p.ends_with('/'))
        });
        under_prefix
            || req
                .accept
                .is_some_and(|a| accepts(a, is_json) && !accepts(a, is_html))
    }

    /// The session of a `Cookie` header, with the reason when there is none (reported to
    /// the store's hook). `Err` only when KV fails.
    pub async fn resolve(
        &self,
        cookie_header: Option<&str>,
    ) -> Result<Lookup<(SessionId, D)>, Error> {
        let id = match self.cookie.session_id(cookie_header) {
            Ok(id) => id,
            Err(reason) => {
                self.store.report(&reason);
                return Ok(Lookup::NoSession(reason));
            }
        };
        Ok(self.store.lookup(&id).await?.map(|s| (id, s)))
    }

    /// Resolve the request's session and ask the write budget whether a refresh is due (then
    /// the extended cookie is prepared). One KV read; nothing is written here — the refresh
    /// starts in [`finish`](Self::finish), after the handler.
    pub async fn admit(&self, req: &RequestParts<'_>) -> Result<Lookup<CurrentSession<D>>, Error> {
        let (id, session) = match self.resolve(req.cookie).await? {
            Lookup::Found(found) => found,
            Lookup::NoSession(reason) => return Ok(Lookup::NoSession(reason)),
        };
        let now = self.store.now_ms();
        let refresh = self.store.plan_refresh(&session, now);
        let set_cookie = match refresh {
            RefreshPlan::Due { expires_at } => {
                Some(self.cookie.set_cookie(&id, max_age_secs(expires_at, now)))
            }
            _ => None,
        };
        Ok(Lookup::Found(CurrentSession {
            id,
            session,
            set_cookie,
            refresh,
        }))
    }

    /// After the handler of an admitted request: when a refresh is due, hand
    /// [`Sessions::refresh`] to `background` (`Context::wait_until` on Workers: the
    /// response is not delayed) and return the extended cookie to add to the response.
    ///
    /// `response_set_cookies` are the `Set-Cookie` values the handler's response already
    /// carries. If one of them is the session cookie, the handler logged in, rotated or logged
    /// out: nothing is refreshed or added, since refreshing the old id after its rotation or
    /// deletion would bring it back, and its cookie would override the handler's.
    ///
    /// A write happens at most once per `idle − threshold` per session. The refresh re-reads
    /// before writing, so a logout elsewhere since this request's read is not undone (except
    /// in the milliseconds between that read and the write: KV has no compare-and-swap). A 429
    /// or a failure loses nothing: the session stays valid until its current expiry and a
    /// later request retries.
    pub fn finish<'a>(
        &self,
        ticket: RefreshTicket,
        response_set_cookies: impl IntoIterator<Item = &'a str>,
        background: &dyn Background,
    ) -> Option<String> {
        if !matches!(ticket.refresh, RefreshPlan::Due { .. })
            || self.sets_session_cookie(response_set_cookies)
        {
            return None;
        }
        let store = self.store.clone();
        let id = ticket.id;
        background.spawn(Box::pin(async move {
            let _ = store.refresh(&id).await;
        }));
        ticket.set_cookie
    }

    /// After the handler of a request without a session ([`admit`](Self::admit) said
    /// `NoSession`): the cookie clearing a dead session cookie, unless the handler set the
    /// session cookie itself (a login on a public page).
    pub fn finish_without_session<'a>(
        &self,
        reason: &NoSession,
        response_set_cookies: impl IntoIterator<Item = &'a str>,
    ) -> Option<String> {
        if !reason.clears_cookie() || self.sets_session_cookie(response_set_cookies) {
            return None;
        }
        Some(self.cookie.clear_cookie())
    }

    fn sets_session_cookie<'a>(&self, set_cookies: impl IntoIterator<Item = &'a str>) -> bool {
        set_cookies
            .into_iter()
            .any(|c| self.cookie.is_session_set_cookie(c))
    }

    /// [`admit`](Self::admit), with the response for requests that may not pass.
    pub async fn check(&self, req: &RequestParts<'_>) -> Admission<D> {
        match self.admit(req).await {
            Ok(Lookup::Found(admitted)) => Admission::Admitted(admitted),
            Ok(Lookup::NoSession(reason)) => {
                Admission::Denied(self.deny(req, DenyCause::NoSession(reason)))
            }
            Err(e) => Admission::Denied(self.deny(req, DenyCause::Unavailable(e))),
        }
    }

    /// The response for a request turned away for `cause`: 302 to the login page (pages) or
    /// 401 JSON (APIs) without a session, 503 when KV failed. All `Cache-Control: no-store`
    /// and `X-Content-Type-Options: nosniff`;
    /// a dead cookie is cleared (see [`NoSession::clears_cookie`]).
    pub fn deny(&self, req: &RequestParts<'_>, cause: DenyCause) -> Denied {
        let api = self.is_api(req);
        let mut headers = vec![
            ("Cache-Control", "no-store".to_string()),
            ("X-Content-Type-Options", "nosniff".to_string()),
        ];
        let response = match &cause {
            DenyCause::Unavailable(e) => {
                let retry = e.retry_after_secs().unwrap_or(5);
                headers.push(("Retry-After", retry.to_string()));
                let (content_type, body) = if api {
                    (
                        "application/json",
                        r#"{"error":"session_store_unavailable"}"#.to_string(),
                    )
                } else {
                    (
                        "text/plain; charset=utf-8",
                        "Service temporarily unavailable".to_string(),
                    )
                };
                headers.push(("Content-Type", content_type.to_string()));
                PlainResponse {
                    status: e.http_status(),
                    headers,
                    body,
                }
            }
            DenyCause::NoSession(reason) => {
                if reason.clears_cookie() {
                    headers.push(("Set-Cookie", self.cookie.clear_cookie()));
                }
                if api {
                    headers.push(("Content-Type", "application/json".to_string()));
                    let body =
                        serde_json::json!({ "error": "unauthenticated", "login": self.login_path });
                    PlainResponse {
                        status: 401,
                        headers,
                        body: body.to_string(),
                    }
                } else {
                    headers.push(("Location", self.login_location(req)));
                    PlainResponse {
                        status: 302,
                        headers,
                        body: String::new(),
                    }
                }
            }
        };
        Denied { cause, response }
    }

    /// Log in: delete every session the request may already carry (no fixation, no orphan;
    /// with duplicate cookies each well-formed id is the sender's), create a new one and
    /// return it with its `Set-Cookie`.
    pub async fn login(
        &self,
        cookie_header: Option<&str>,
        init: D::Init,
    ) -> Result<NewSession<D>, Error> {
        self.login_on_device(cookie_header, init, None).await
    }

    /// [`login`](Self::login), naming the device for the user's devices page
    /// ([`Sessions::create_on_device`]), e.g. `Some(&device_label(user_agent))`
    /// ([`device_label`](super::device_label)).
    pub async fn login_on_device(
        &self,
        cookie_header: Option<&str>,
        init: D::Init,
        device: Option<&str>,
    ) -> Result<NewSession<D>, Error> {
        self.delete_carried(cookie_header).await?;
        let (id, session) = self.store.create_on_device(init, device).await?;
        let set_cookie = self.fresh_cookie(&id, &session);
        Ok(NewSession {
            id,
            session,
            set_cookie,
        })
    }

    /// The devices of the request's user ([`Sessions::list_devices`]): its live sessions, the
    /// request's own marked `current`.
    pub async fn list_devices(
        &self,
        cookie_header: Option<&str>,
    ) -> Result<Lookup<Vec<Device>>, Error> {
        match self.resolve(cookie_header).await? {
            Lookup::Found((id, _)) => self.store.list_devices(&id).await,
            Lookup::NoSession(reason) => Ok(Lookup::NoSession(reason)),
        }
    }

    /// Sign out one device of the request's user ([`Sessions::revoke_device`]). Revoking the
    /// request's own device logs it out ([`Revocation::RevokedCurrent`]): send
    /// [`CookieConfig::clear_cookie`] then.
    pub async fn revoke_device(
        &self,
        cookie_header: Option<&str>,
        handle: &DeviceHandle,
    ) -> Result<Lookup<Revocation>, Error> {
        match self.resolve(cookie_header).await? {
            Lookup::Found((id, _)) => self.store.revoke_device(&id, handle).await,
            Lookup::NoSession(reason) => Ok(Lookup::NoSession(reason)),
        }
    }

    /// Log out: delete every session the request carries (all of its distinct well-formed
    /// session cookies, [`CookieConfig::session_ids`]) and return the clearing `Set-Cookie`.
    pub async fn logout(&self, cookie_header: Option<&str>) -> Result<String, Error> {
        self.delete_carried(cookie_header).await?;
        Ok(self.cookie.clear_cookie())
    }

    /// "Log out everywhere" for the request's session ([`Sessions::logout_everywhere`]):
    /// every other session of its user, then, once none is left, this one and whatever else
    /// the request carries, with the clearing `Set-Cookie`. While sessions remain (a user over
    /// the batch, from before the cap) the caller keeps its session and gets no cookie, so it
    /// can call again.
    pub async fn logout_everywhere(
        &self,
        cookie_header: Option<&str>,
    ) -> Result<Lookup<LogoutEverywhere>, Error> {
        let id = match self.resolve(cookie_header).await? {
            Lookup::Found((id, _)) => id,
            Lookup::NoSession(reason) => return Ok(Lookup::NoSession(reason)),
        };
        let outcome = match self.store.logout_everywhere(&id).await? {
            Lookup::Found(outcome) => outcome,
            Lookup::NoSession(reason) => return Ok(Lookup::NoSession(reason)),
        };
        let set_cookie = if outcome.complete {
            // Whatever else the request carries (a duplicate cookie), only where found.
            for other in self.cookie.session_ids(cookie_header) {
                if other != id {
                    self.store.delete_found(&other, false).await?;
                }
            }
            Some(self.cookie.clear_cookie())
        } else {
            None
        };
        Ok(Lookup::Found(LogoutEverywhere {
            outcome,
            set_cookie,
        }))
    }

    /// Delete every session the request carries. What a request without a live session can
    /// cost is bounded: one read per carried id (at most
    /// [`MAX_SESSION_COOKIES`](super::MAX_SESSION_COOKIES)), and a delete only for what is
    /// found — except, on KV, for the first id, whose key is deleted even when not found (a
    /// session created at another location in the last ~60 s may not be visible here yet;
    /// [`Sessions::delete`]). So made-up ids cost at most one write per request.
    async fn delete_carried(&self, cookie_header: Option<&str>) -> Result<(), Error> {
        let eventual = self.store.kv().consistency() == Consistency::Eventual;
        for (i, id) in self.cookie.session_ids(cookie_header).iter().enumerate() {
            self.store.delete_found(id, eventual && i == 0).await?;
        }
        Ok(())
    }

    /// Rotate `id` ([`Sessions::rotate`]) and return the new id's `Set-Cookie`.
    pub async fn rotate(&self, id: &SessionId) -> Result<Lookup<NewSession<D>>, Error> {
        Ok(self.store.rotate(id).await?.map(|(new_id, session)| {
            let set_cookie = self.fresh_cookie(&new_id, &session);
            NewSession {
                id: new_id,
                session,
                set_cookie,
            }
        }))
    }

    /// `Set-Cookie` for `id` with `Max-Age` until `session`'s idle expiry.
    pub fn set_cookie_for(&self, id: &SessionId, session: &D) -> String {
        let max_age = max_age_secs(session.times().expires_at, self.store.now_ms());
        self.cookie.set_cookie(id, max_age)
    }

    /// `Set-Cookie` for a session just written: `Max-Age` counts from the write, so a fresh
    /// 7-day session gets exactly 604800 s however long the write took.
    fn fresh_cookie(&self, id: &SessionId, session: &D) -> String {
        let t = session.times();
        self.cookie
            .set_cookie(id, max_age_secs(t.expires_at, t.refreshed_at))
    }

    fn login_location(&self, req: &RequestParts<'_>) -> String {
        let mut location = self.login_path.clone();
        let Some(param) = &self.return_to else {
            return location;
        };
        let method_ok =
            req.method.eq_ignore_ascii_case("GET") || req.method.eq_ignore_ascii_case("HEAD");
        // Only a same-site absolute path: `//host` and `/\host` are protocol-relative URLs to
        // some browsers.
        let path_ok = req.path.starts_with('/')
            && !req.path.starts_with("//")
            && !req.path.starts_with("/\\");
        if !method_ok || !path_ok {
            return location;
        }
        let target = match req.query {
            Some(q) if !q.is_empty() && req.path.len() + 1 + q.len() <= MAX_RETURN_TO_BYTES => {
                format!("{}?{q}", req.path)
            }
            _ if req.path.len() <= MAX_RETURN_TO_BYTES => req.path.to_string(),
            _ => return location,
        };
        location.push(if location.contains('?') { '&' } else { '?' });
        location.push_str(param);
        location.push('=');
        percent_encode_into(&target, &mut location);
        location
    }
}

/// True when some media range of `accept` satisfies `wanted` with a non-zero quality.
fn accepts(accept: &str, wanted: fn(&str) -> bool) -> bool {
    accept.split(',').any(|range| {
        let mut parts = range.split(';');
        let media = parts.next().unwrap_or("").trim().to_ascii_lowercase();
        let refused = parts.any(|p| {
            let p = p.trim();
            (p.starts_with("q=") || p.starts_with("Q="))
                && p[2..].trim().parse::<f32>().is_ok_and(|q| q <= 0.0)
        });
        wanted(&media) && !refused
    })
}

fn is_json(media: &str) -> bool {
    media == "application/json" || (media.starts_with("application/") && media.ends_with("+json"))
}

fn is_html(media: &str) -> bool {
    media == "text/html" || media == "application/xhtml+xml"
}

/// Percent-encode everything but unreserved characters and `/` (so CR/LF, `&`, `#` and
/// non-ASCII can never break out of the `Location` header or the parameter).
fn percent_encode_into(s: &str, out: &mut String) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 0x0f)]));
        }
    }
}
