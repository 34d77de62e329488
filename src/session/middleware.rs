//! workers-rs glue for [`SessionGate`] (wasm32 + feature `worker`). It copies the path,
//! `Accept` and `Cookie` out of a [`worker::Request`], lets the gate decide, and turns the
//! verdict into a [`worker::Response`]; refreshes run in [`Context::wait_until`], started after
//! the handler so a handler that rotates or logs out is never undone by them. Every
//! decision lives in [`SessionGate`], which is tested natively.
//!
//! ```ignore
//! #[event(fetch)]
//! async fn fetch(req: Request, env: Env, ctx: Context) -> Result<Response> {
//!     let kv = Kv::new(WorkersKv::from_env(&env, "SESSIONS")?);
//!     let gate = SessionGate::new(Sessions::new(kv)).with_api_prefix("/api");
//!     require_session(&gate, req, &ctx, |_req, admitted| async move {
//!         Response::ok(format!("hello {}", admitted.session.email))
//!     })
//!     .await
//! }
//! ```

use std::future::Future;

use worker::{Context, Headers, Request, Response};

use super::{
    data::SessionData,
    gate::{Admission, CurrentSession, SessionGate},
    response::{DenyCause, PlainResponse},
    sessions::Lookup,
};
use crate::{
    background::{Background, WaitUntil},
    error::retry_after_of_kind,
};

/// The request parts the gate needs ([`RequestParts`](super::RequestParts)), copied out of a [`worker::Request`]:
/// method, path and query (from the URL), `Accept` and `Cookie`. For routes that call the
/// gate directly (rotate, logout) and still answer "no session" the gate's way:
///
/// ```ignore
/// let owned = OwnedRequestParts::of(&req);
/// match gate.resolve(owned.cookie()).await? {
///     Lookup::Found((id, _)) => { /* gate.rotate(&id) … */ }
///     Lookup::NoSession(reason) => {
///         return to_response(&gate.deny(&owned.parts(), DenyCause::NoSession(reason)).response)
///     }
/// }
/// ```
///
/// [`deny`] does the last step in one call.
pub use super::request::OwnedRequestParts;

impl OwnedRequestParts {
    /// Copy the parts out of `req`.
    pub fn of(req: &Request) -> Self {
        let url = req.url().ok();
        Self {
            // The method as sent: `Request::method()` maps methods it does not know to GET.
            method: req.inner().method(),
            path: url
                .as_ref()
                .map_or_else(|| req.path(), |u| u.path().to_string()),
            query: url.as_ref().and_then(|u| u.query()).map(str::to_string),
            accept: header(req, "accept"),
            cookie: cookie_header(req),
            origin: header(req, "origin"),
            sec_fetch_site: header(req, "sec-fetch-site"),
            host: header(req, "host").or_else(|| {
                let url = url.as_ref()?;
                let host = url.host_str()?;
                Some(match url.port() {
                    Some(port) => format!("{host}:{port}"),
                    None => host.to_string(),
                })
            }),
        }
    }

    /// The `Cookie` header (for [`SessionGate::resolve`], `login`, `logout`).
    pub fn cookie(&self) -> Option<&str> {
        self.cookie.as_deref()
    }
}

/// The same-origin rule ([`SameOrigin`](super::SameOrigin)) for `req`: `Some(403)` for a
/// state-changing request a browser sent from another origin (a cross-site form post, a login
/// CSRF), `None` to go on. Call it before routing, for every route:
///
/// ```ignore
/// if let Some(refused) = refuse_cross_origin(&SameOrigin::new(), &req)? {
///     return Ok(refused);
/// }
/// ```
pub fn refuse_cross_origin(
    rule: &super::SameOrigin,
    req: &Request,
) -> worker::Result<Option<Response>> {
    match rule.check(&OwnedRequestParts::of(req).parts()) {
        Ok(()) => Ok(None),
        Err(refused) => to_response(&refused.response()).map(Some),
    }
}

/// The gate's answer for a request it turns away ([`SessionGate::deny`]): 302 to the login
/// page or 401 JSON for "no session" (clearing a dead cookie), 503 when KV failed.
pub fn deny<D: SessionData>(
    gate: &SessionGate<D>,
    req: &Request,
    cause: DenyCause,
) -> worker::Result<Response> {
    to_response(
        &gate
            .deny(&OwnedRequestParts::of(req).parts(), cause)
            .response,
    )
}

fn header(req: &Request, name: &str) -> Option<String> {
    req.headers().get(name).ok().flatten()
}

/// The request's `Cookie` header (for [`SessionGate::login`] and [`SessionGate::logout`]).
pub fn cookie_header(req: &Request) -> Option<String> {
    header(req, "cookie")
}

/// Run `handler` with the request's session, or answer for it: 302 to the login page for
/// pages, 401 JSON for API requests, 503 when KV fails. A due refresh runs in
/// `ctx.wait_until` and its extended cookie is added to the handler's response.
pub async fn require_session<D, F, Fut>(
    gate: &SessionGate<D>,
    req: Request,
    ctx: &Context,
    handler: F,
) -> worker::Result<Response>
where
    D: SessionData,
    F: FnOnce(Request, CurrentSession<D>) -> Fut,
    Fut: Future<Output = worker::Result<Response>>,
{
    require_session_with(gate, req, &WaitUntil(ctx), handler).await
}

/// [`require_session`] with another background runner.
pub async fn require_session_with<D, F, Fut>(
    gate: &SessionGate<D>,
    req: Request,
    background: &dyn Background,
    handler: F,
) -> worker::Result<Response>
where
    D: SessionData,
    F: FnOnce(Request, CurrentSession<D>) -> Fut,
    Fut: Future<Output = worker::Result<Response>>,
{
    let owned = OwnedRequestParts::of(&req);
    match gate.check(&owned.parts()).await {
        Admission::Denied(denied) => to_response(&denied.response),
        Admission::Admitted(admitted) => {
            let ticket = admitted.ticket();
            let response = handler(req, admitted).await?;
            let set_cookies = set_cookies_of(&response);
            let extra = gate.finish(ticket, set_cookies.iter().map(String::as_str), background);
            with_set_cookie(response, extra.as_deref())
        }
    }
}

/// Run `handler` with the request's session if it has one (public pages that show a login
/// state). A dead cookie is cleared on the way out; a KV failure is a 503.
pub async fn optional_session<D, F, Fut>(
    gate: &SessionGate<D>,
    req: Request,
    ctx: &Context,
    handler: F,
) -> worker::Result<Response>
where
    D: SessionData,
    F: FnOnce(Request, Option<CurrentSession<D>>) -> Fut,
    Fut: Future<Output = worker::Result<Response>>,
{
    let owned = OwnedRequestParts::of(&req);
    match gate.admit(&owned.parts()).await {
        Err(e) => to_response(
            &gate
                .deny(&owned.parts(), DenyCause::Unavailable(e))
                .response,
        ),
        Ok(Lookup::Found(admitted)) => {
            let ticket = admitted.ticket();
            let response = handler(req, Some(admitted)).await?;
            let set_cookies = set_cookies_of(&response);
            let background = WaitUntil(ctx);
            let extra = gate.finish(ticket, set_cookies.iter().map(String::as_str), &background);
            with_set_cookie(response, extra.as_deref())
        }
        Ok(Lookup::NoSession(reason)) => {
            let response = handler(req, None).await?;
            let set_cookies = set_cookies_of(&response);
            let clear =
                gate.finish_without_session(&reason, set_cookies.iter().map(String::as_str));
            with_set_cookie(response, clear.as_deref())
        }
    }
}

/// The answer to an error a handler returned. A kv-envelope [`Error`](crate::Error) that `?`
/// turned into a `worker::Error` gets the status, JSON body and `Retry-After` of the crate's
/// one mapping ([`PlainResponse::for_error`]); any other error is a 500 whose text goes to the
/// Worker's log, not to the client.
///
/// ```ignore
/// #[event(fetch)]
/// async fn fetch(req: Request, env: Env, ctx: Context) -> Result<Response> {
///     match route(req, env, ctx).await {
///         Err(e) => error_response(&e),
///         answer => answer,
///     }
/// }
/// ```
pub fn error_response(error: &worker::Error) -> worker::Result<Response> {
    let ours = match error {
        worker::Error::Json((body, status)) if (400..600).contains(status) => {
            serde_json::from_str::<serde_json::Value>(body)
                .ok()
                .and_then(|v| v.get("error")?.as_str().map(str::to_owned))
                .map(|kind| {
                    PlainResponse::json_error(*status, body.clone(), retry_after_of_kind(&kind))
                })
        }
        _ => None,
    };
    let plain = ours.unwrap_or_else(|| {
        worker::console_error!("{error}");
        PlainResponse::json_error(
            500,
            serde_json::json!({ "error": "internal", "message": "internal error" }).to_string(),
            None,
        )
    });
    to_response(&plain)
}

/// A [`PlainResponse`] as a worker response.
pub fn to_response(plain: &PlainResponse) -> worker::Result<Response> {
    let headers = Headers::new();
    for (name, value) in &plain.headers {
        headers.append(name, value)?;
    }
    Ok(Response::builder()
        .with_status(plain.status)
        .with_headers(headers)
        .fixed(plain.body.clone().into_bytes()))
}

/// The `Set-Cookie` values a handler's response carries.
fn set_cookies_of(response: &Response) -> Vec<String> {
    response
        .headers()
        .entries()
        .filter(|(name, _)| name.eq_ignore_ascii_case("set-cookie"))
        .map(|(_, value)| value)
        .collect()
}

/// Append a `Set-Cookie` header, if any. The headers are copied first: a response obtained
/// from `fetch` has immutable headers.
pub fn with_set_cookie(response: Response, set_cookie: Option<&str>) -> worker::Result<Response> {
    let Some(value) = set_cookie else {
        return Ok(response);
    };
    let headers = response.headers().clone();
    headers.append("Set-Cookie", value)?;
    Ok(response.with_headers(headers))
}
