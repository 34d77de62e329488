//! Magic-link login, the demo's second way in, on the library's one-time tokens
//! (`kv_envelope::tokens`):
//!
//! 1. `POST /login/link` with an `email` (form or JSON) issues a token for purpose
//!    `magic-login` carrying the email (`MagicLogin`, a versioned type like any other), valid
//!    15 minutes. A real app mails the link; this demo has no mailer, so the link is shown on
//!    the answer page **only with `DEV_MAGIC_LINKS=on`**, which only the local scripts set
//!    (scripts/worker-env.sh). The token is never logged.
//! 2. `GET /login/link?token=…` shows a confirmation button and spends nothing: mail scanners
//!    and link previews fetch links, and must not use them up.
//! 3. `POST /login/link/confirm` with the `token` consumes it, once, and logs in (a new session,
//!    its device named from the `User-Agent`). Every refusal (malformed, unknown, expired,
//!    replayed, another purpose) is the same `400 invalid_link` to the client; `/_stats` counts
//!    them by kind.
//!
//! With `SESSION_BACKEND=durable` the tokens live in the `SESSION_OBJECTS` Durable Objects,
//! where a consume is exactly once (a conditional write): of concurrent consumes of one link,
//! one logs in. On KV they are `best_effort`: KV has no conditional write, so two consumes at
//! the same moment, or at two locations within about 60 s, can both succeed
//! (docs/sessions.md, "One-time tokens").

use std::{collections::BTreeMap, sync::Mutex, time::Duration};

use kv_envelope::{
    backend::{DurableKv, WorkersKv},
    session::{device_label, middleware::cookie_header, NewSession, SessionInit},
    tokens::{OneTimeTokens, Token},
    Kv,
};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use worker::{Env, Request};

use crate::{
    body,
    http::{html, json, see_other, Fail, OrFail, Outcome},
    pages, SessionBackend,
};

/// What a magic link carries: the address it logs in.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MagicLogin {
    /// The address the link was sent to (and the session's email).
    #[schemars(email, length(max = 320))]
    pub email: String,
}

kv_envelope::versioned! {
    name: "demo.magic-login",
    versions: [MagicLogin],
}

/// The tokens' purpose: a token issued for anything else is refused here.
pub const PURPOSE: &str = "magic-login";
/// How long a link works.
const TTL: Duration = Duration::from_secs(15 * 60);

/// Refused consumes by kind (`token_used`, `token_expired`, …): for `/_stats`, never the token.
pub static REFUSALS: Mutex<BTreeMap<&'static str, u64>> = Mutex::new(BTreeMap::new());

/// The token store: on the session Durable Objects (exactly once) or on `KV` (best effort),
/// with the sessions' key ring when they are sealed.
pub fn tokens(env: &Env) -> Result<OneTimeTokens<MagicLogin>, Fail> {
    let tokens = match crate::session_backend(env)? {
        SessionBackend::Durable => OneTimeTokens::new(Kv::new(
            DurableKv::from_env(env, "SESSION_OBJECTS").or_fail("binding SESSION_OBJECTS")?,
        ))
        .map_err(|e| Fail::store("tokens", e))?,
        SessionBackend::Kv => OneTimeTokens::best_effort(Kv::new(
            WorkersKv::from_env(env, "KV").or_fail("binding KV")?,
        )),
    };
    Ok(match &crate::sealing(env)?.ring {
        Some(ring) => tokens.with_sealing(ring.clone()),
        None => tokens,
    })
}

/// Whether this is local development (`DEV_MAGIC_LINKS=on`): the one case the link is shown.
fn dev_links(env: &Env) -> bool {
    crate::env_text(env, "DEV_MAGIC_LINKS").is_some_and(|v| v.trim().eq_ignore_ascii_case("on"))
}

/// `POST /login/link`: issue a link for the email, rate-limited as a login is (an issue costs
/// two writes). Answers the same whether or not the address is known (the demo has no user
/// list; a real app must not say either). e2e only (`CONFORMANCE=on`): `?ttl_ms=N` shortens
/// the link's life, to test an expired one.
pub async fn request(mut req: Request, env: &Env) -> Outcome {
    let raw = body::read_capped(&mut req, body::MAX_LOGIN_BODY).await?;
    let content_type = req.headers().get("content-type").ok().flatten();
    let email = body::login_email(content_type.as_deref(), &raw)?;
    let user_id = crate::user_id_of(&email);
    crate::check_login_rate(&req, env, &user_id).await?;
    let ttl = match ttl_override(&req, env)? {
        Some(ttl) => ttl,
        None => TTL,
    };
    let issued = tokens(env)?
        .issue(&user_id, PURPOSE, &MagicLogin { email }, ttl)
        .await
        .map_err(|e| match e {
            kv_envelope::Error::InvalidValue { .. } => Fail::bad_request(
                "invalid_email",
                "email is not a valid address (max 320 characters)",
            ),
            e => Fail::store("magic link", e),
        })?;
    let link = dev_links(env).then(|| format!("/login/link?token={}", issued.token.expose()));
    if body::is_json(content_type.as_deref()) {
        return json(
            200,
            &serde_json::json!({ "sent": true, "expiresAt": issued.expires_at, "devLink": link }),
            &[
                ("cache-control", "no-store"),
                ("referrer-policy", "no-referrer"),
            ],
        );
    }
    html(
        200,
        pages::link_sent(link.as_deref()),
        &[("referrer-policy", "no-referrer")],
    )
}

fn ttl_override(req: &Request, env: &Env) -> Result<Option<Duration>, Fail> {
    if !crate::conformance_on(env) {
        return Ok(None);
    }
    let url = req.url().or_fail("url")?;
    Ok(url
        .query_pairs()
        .find(|(k, _)| k == "ttl_ms")
        .and_then(|(_, v)| v.parse::<u64>().ok())
        .map(Duration::from_millis))
}

/// `GET /login/link?token=…`: a button that consumes it. Nothing is read or spent here.
pub fn confirm_page(req: &Request) -> Outcome {
    let url = req.url().or_fail("url")?;
    let token = url
        .query_pairs()
        .find(|(k, _)| k == "token")
        .map(|(_, v)| v.into_owned())
        .ok_or_else(|| Fail::bad_request("missing_token", "the link has no token"))?;
    // Only a well-formed token goes into the page (escaped all the same); no KV call here.
    if Token::parse(&token).is_none() {
        return Err(invalid_link());
    }
    html(
        200,
        pages::confirm_link(&token),
        &[("referrer-policy", "no-referrer")],
    )
}

fn invalid_link() -> Fail {
    Fail::bad_request("invalid_link", "this link is invalid or has expired")
}

/// `POST /login/link/confirm` with `token` (form or JSON): consume it and log in. A form gets
/// `303 /me` with the session cookie, JSON `{"loggedIn": true}` with it.
pub async fn confirm(mut req: Request, env: &Env) -> Outcome {
    let raw = body::read_capped(&mut req, body::MAX_LOGIN_BODY).await?;
    let content_type = req.headers().get("content-type").ok().flatten();
    let token = body::field(content_type.as_deref(), &raw, "token")?;
    // A consume costs a read and a write: bounded per client like a logout.
    crate::check_rate(
        env,
        "MAGIC_LINK_LIMITER",
        format!("magic:{}", crate::client_of(&req)),
        10,
        "too_many_link_attempts",
        "link attempts from this client",
    )
    .await?;
    let redeemed = match tokens(env)?.consume(&token, PURPOSE).await {
        Ok(Ok(redeemed)) => redeemed,
        Ok(Err(refused)) => {
            *REFUSALS
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .entry(refused.kind())
                .or_default() += 1;
            return Err(Fail::bad_request("invalid_link", refused.public_message()));
        }
        Err(e) => return Err(Fail::store("magic link", e)),
    };
    let user_agent = req.headers().get("user-agent").ok().flatten();
    let device = user_agent.as_deref().map(device_label);
    let NewSession { set_cookie, .. } = crate::gate(env)?
        .login_on_device(
            cookie_header(&req).as_deref(),
            SessionInit::new(redeemed.user_id, redeemed.data.email),
            device.as_deref(),
        )
        .await
        .map_err(|e| Fail::store("login", e))?;
    if body::is_json(content_type.as_deref()) {
        return json(
            200,
            &serde_json::json!({ "loggedIn": true }),
            &[("cache-control", "no-store"), ("set-cookie", &set_cookie)],
        );
    }
    see_other("/me", &[("set-cookie", &set_cookie)])
}
