//! The kv-envelope demo worker: sessions in the `KV` namespace, a cached expensive computation
//! in `CACHE`, both through the library the way an application would use it.
//!
//! | route | does |
//! |---|---|
//! | `GET /healthz` | `200 ok` |
//! | `GET /` | page: who is signed in, rotate / log out buttons |
//! | `GET /login` | page: login form |
//! | `POST /login` | `email` (form or JSON) → new session, `303 /me`, `Set-Cookie` |
//! | `GET /me` | the session as JSON; no session: `302 /login`, or `401` JSON for `Accept: application/json` |
//! | `POST /sessions/rotate` | new id, new cookie; the old id is dead at once |
//! | `POST /logout` | delete the session, clear the cookie, `303 /login` |
//! | `POST /sessions/logout-all` | delete every session of the user ("log out everywhere") |
//! | `GET /devices` | page: the user's signed-in devices (this one marked), a "sign out" button each |
//! | `GET /sessions/devices` | the same as JSON `{"devices": [...]}` (401 JSON without a session) |
//! | `POST /devices/revoke` | `handle` (form or JSON) → that device signed out; `303 /devices` (form) or JSON |
//! | `POST /login/link` | `email` → a one-time magic link (shown on the page only with `DEV_MAGIC_LINKS=on`, local development) |
//! | `GET /login/link?token=…` | page: a button that uses the link (a GET spends nothing) |
//! | `POST /login/link/confirm` | `token` → consumed once, new session, `303 /me`; any refusal `400 invalid_link` |
//! | `GET /popular` | cached computation, `x-cache: miss\|hit\|stale`, `x-cache-tier: memory\|kv` on hits |
//! | `POST /popular/invalidate` | drop the cached value: the next `/popular` is a miss |
//! | `GET /articles?count=N&first=I&read=bulk\|single` | N cached articles in one response, read in bulk gets (or one by one), with the KV operations it made |
//! | `GET /_stats` | this isolate's counters (KV operations, cache, sessions) |
//! | `POST /_conformance` | only with `CONFORMANCE=on` (e2e): the library's live backend conformance cases on the `SESSION_OBJECTS` Durable Objects and on `KV` |
//! | `POST /_conformance/sessions` | only with `CONFORMANCE=on` (e2e): `{email, count, capped}` creates up to 100 sessions of one user through the store, past the login limits (and past the session cap unless `capped`): sessions from before the cap, on the Durable Objects, where nothing can be planted from outside |
//!
//! Sessions live in `KV` by default (idle timeout 7 days; `SESSION_IDLE_TIMEOUT_SECS` shortens
//! it and `SESSION_WRITE_DELAY_MS` holds session writes back, for e2e); `SESSION_BACKEND=durable` (a var in `wrangler.toml`, or
//! `--var`) keeps them in the `SESSION_OBJECTS` Durable Objects instead (class
//! `SessionObject`, [`DurableKv`]): strongly consistent, so logout, rotation and "log out
//! everywhere" end a session everywhere at once (docs/sessions.md, "Consistency").
//!
//! Sessions (record and per-user index entry) are sealed at rest with the key ring of
//! `SEAL_KEYS` / `SEAL_KEY_<id>` (secrets; `.dev.vars` locally), built once per isolate;
//! `SEAL=off` serves them in clear (benchmarks), `SEAL_CACHE=on` seals the cache entries too.
//!
//! `docs/demo.md` has the details; `e2e/` tests all of it on workerd.

mod articles;
mod body;
mod devices;
mod http;
mod magic;
mod pages;
mod popular;
mod slow;

use std::{
    collections::BTreeMap,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc, LazyLock, Mutex, OnceLock, PoisonError,
    },
};

use kv_envelope::{
    backend::{DurableKv, DurableKvObject, OpCounters, OpCounts, WorkersKv},
    background::WaitUntil,
    cache::{
        CacheState, CacheStatus, Cached, ComputeJsonError, JsonText, KvCache, MemoryTier,
        NamespaceGeneration,
    },
    session::{
        device_label,
        middleware::{cookie_header, deny, optional_session, require_session, OwnedRequestParts},
        DenyCause, Lookup, NewSession, NoSession, RejectHook, SameOrigin, SessionGate,
        SessionIndexEntry, SessionInit, SessionRecord, Sessions,
    },
    tokens::{TokenIndexEntry, TokenRecord},
    Clock, KeyRing, Kv, SystemClock, Versioned,
};
use serde::Serialize;
use sha2::{Digest, Sha256};
use worker::{
    console_error, console_warn, durable_object, event, Context, DurableObject, Env, Request,
    Response, State,
};

use crate::{
    articles::{Article, Query, Read},
    http::{html, json, json_text, see_other, Fail, OrFail, Outcome},
    popular::Popular,
};

// ---- isolate-wide state: one copy per isolate, shared by every request it serves ----

/// KV operation counters per binding (every `Kv` handle of a binding counts into these).
static SESSION_KV_OPS: LazyLock<Arc<OpCounters>> = LazyLock::new(Default::default);
static CACHE_KV_OPS: LazyLock<Arc<OpCounters>> = LazyLock::new(Default::default);
/// The cache's single-flight table, generations, counters and isolate-memory tier (up to 256
/// entries and 4 MiB, each trusted for 5 s: `/popular` hits cost no KV read in that window).
static CACHE_STATE: LazyLock<CacheState> = LazyLock::new(|| {
    CacheState::with_memory_tier(MemoryTier::new(
        256,
        4 << 20,
        std::time::Duration::from_secs(5),
    ))
});
/// `/articles` has state and counters of its own (no memory tier: it shows what KV costs).
static ARTICLE_STATE: LazyLock<CacheState> = LazyLock::new(CacheState::new);
static REQUESTS: AtomicU64 = AtomicU64::new(0);
static WARM_UPS: AtomicU64 = AtomicU64::new(0);
/// Why requests had no session, by reason code (never the cookie or the session).
static REJECTIONS: Mutex<BTreeMap<&'static str, u64>> = Mutex::new(BTreeMap::new());
static ON_REJECT: LazyLock<RejectHook> = LazyLock::new(|| {
    Arc::new(|reason: &NoSession| {
        *REJECTIONS
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(reason.code())
            .or_default() += 1;
        if reason.is_suspicious() {
            // The code only: reasons never carry ids or values, but a log line needs no more.
            console_warn!("session rejected: {}", reason.code());
        }
    })
});

struct Isolate {
    id: String,
    started_at: u64,
    warm_up_error: Option<String>,
}

static ISOLATE: OnceLock<Isolate> = OnceLock::new();

/// Runs once per isolate, on its first request: compile every validator the demo uses, so no
/// later request pays for it.
fn isolate() -> &'static Isolate {
    ISOLATE.get_or_init(|| {
        WARM_UPS.fetch_add(1, Ordering::Relaxed);
        let warm = SessionRecord::warm_up()
            .and_then(|()| SessionIndexEntry::warm_up())
            .and_then(|()| Popular::warm_up())
            .and_then(|()| Article::warm_up())
            .and_then(|()| NamespaceGeneration::warm_up())
            .and_then(|()| magic::MagicLogin::warm_up())
            .and_then(|()| TokenRecord::warm_up())
            .and_then(|()| TokenIndexEntry::warm_up());
        if let Err(e) = &warm {
            console_error!("warm-up failed: {e}");
        }
        let mut id = [0u8; 6];
        let _ = getrandom::fill(&mut id);
        Isolate {
            id: id.iter().map(|b| format!("{b:02x}")).collect(),
            started_at: SystemClock.now_ms(),
            warm_up_error: warm.err().map(|e| e.to_string()),
        }
    })
}

/// How this isolate seals, read from its env on the first request that needs it: `SEAL=off`
/// (no sealing), or the ring of `SEAL_KEYS` (ids, primary first) and `SEAL_KEY_<id>` (base64 of
/// 32 bytes each); `SEAL_CACHE=on` also seals the `CACHE` entries. A key that is missing or
/// malformed is kept as the error's text, which names the variable and never its value; every
/// request that needs the ring then gets a 500 `sealing_misconfigured` saying so.
struct Sealing {
    ring: Option<KeyRing>,
    cache: bool,
}

static SEALING: OnceLock<Result<Sealing, String>> = OnceLock::new();

/// A variable or secret of the env as text (`.dev.vars` entries are secrets, `--var` ones vars).
fn env_text(env: &Env, name: &str) -> Option<String> {
    env.secret(name)
        .map(|s| s.to_string())
        .or_else(|_| env.var(name).map(|v| v.to_string()))
        .ok()
}

fn sealing(env: &Env) -> Result<&'static Sealing, Fail> {
    let sealing = SEALING.get_or_init(|| {
        let on = |name| env_text(env, name).map(|v| v.trim().to_ascii_lowercase());
        let ring = match on("SEAL").as_deref() {
            Some("off") => None,
            None | Some("on") => Some(KeyRing::from_env(env, "SEAL").map_err(|e| {
                console_error!("sealing is misconfigured: {e}");
                e.to_string()
            })?),
            Some(_) => {
                console_error!("sealing is misconfigured: SEAL is neither on nor off");
                return Err("SEAL must be on or off".into());
            }
        };
        let cache = ring.is_some() && matches!(on("SEAL_CACHE").as_deref(), Some("on"));
        Ok(Sealing { ring, cache })
    });
    sealing.as_ref().map_err(|msg| {
        Fail::new(
            500,
            "sealing_misconfigured",
            format!("the session key ring is misconfigured: {msg} (examples/worker/README.md)"),
        )
    })
}

/// Where sessions live: `SESSION_BACKEND` = `kv` (default) or `durable`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
enum SessionBackend {
    Kv,
    Durable,
}

fn session_backend(env: &Env) -> Result<SessionBackend, Fail> {
    match env_text(env, "SESSION_BACKEND")
        .map(|v| v.trim().to_ascii_lowercase())
        .as_deref()
    {
        None | Some("kv") => Ok(SessionBackend::Kv),
        Some("durable") => Ok(SessionBackend::Durable),
        Some(_) => Err(Fail::new(
            500,
            "session_backend_misconfigured",
            "SESSION_BACKEND must be kv or durable",
        )),
    }
}

/// `POST /_conformance` exists only with `CONFORMANCE=on` (the e2e suite sets it).
fn conformance_on(env: &Env) -> bool {
    env_text(env, "CONFORMANCE").is_some_and(|v| v.trim().eq_ignore_ascii_case("on"))
}

/// `POST /_conformance`: the library's live backend conformance cases
/// (`kv_envelope::backend::conformance`) on workerd, under a fresh root in the session Durable
/// Objects and in the `KV` namespace; every report, passed or not, with a 200.
async fn conformance(env: &Env) -> Outcome {
    let mut run = [0u8; 8];
    getrandom::fill(&mut run)
        .map_err(|_| Fail::new(503, "no_randomness", "no random bytes for a run id"))?;
    let root = format!(
        "conformance:{}:",
        run.iter().map(|b| format!("{b:02x}")).collect::<String>()
    );
    let durable =
        Kv::new(DurableKv::from_env(env, "SESSION_OBJECTS").or_fail("binding SESSION_OBJECTS")?);
    let kv = Kv::new(WorkersKv::from_env(env, "KV").or_fail("binding KV")?);
    let reports = serde_json::json!({
        "durable": kv_envelope::backend::conformance::run(&durable, &root).await,
        "kv": kv_envelope::backend::conformance::run(&kv, &root).await,
    });
    json(200, &reports, &[("cache-control", "no-store")])
}

/// `POST /_conformance/sessions` (e2e only, `CONFORMANCE=on`): `{"email", "count" (1..=100),
/// "capped"}` creates `count` sessions of the email's user through the session store, without
/// the login route's rate limits and, unless `capped`, without the per-user cap (sessions
/// written before the cap existed). On Durable Objects nothing can be planted from outside
/// (KV can: `wrangler kv`), so the e2e suite builds such a user here. Answers the new ids.
async fn plant_sessions(mut req: Request, env: &Env) -> Outcome {
    #[derive(serde::Deserialize)]
    struct Plant {
        email: String,
        count: usize,
        capped: bool,
    }
    let body = body::read_capped(&mut req, body::MAX_LOGIN_BODY).await?;
    let plant: Plant = serde_json::from_slice(&body)
        .map_err(|_| Fail::bad_request("bad_body", "{email, count, capped} expected"))?;
    if !(1..=100).contains(&plant.count) {
        return Err(Fail::bad_request("bad_count", "count must be 1 to 100"));
    }
    let mut store = gate(env)?.store().clone();
    if !plant.capped {
        store = store.with_max_sessions_per_user(usize::MAX);
    }
    let mut ids = Vec::with_capacity(plant.count);
    for _ in 0..plant.count {
        let init = SessionInit::new(user_id_of(&plant.email), plant.email.clone());
        let (id, _) = store
            .create_with(init)
            .await
            .map_err(|e| Fail::store("plant", e))?;
        ids.push(id.expose().to_string());
    }
    json(
        200,
        &serde_json::json!({ "ids": ids }),
        &[("cache-control", "no-store")],
    )
}

/// The Durable Object class that holds sessions when `SESSION_BACKEND=durable`: one object
/// per session and one per user's index (the library's placement by group).
#[durable_object]
pub struct SessionObject(DurableKvObject);

impl DurableObject for SessionObject {
    fn new(state: State, _env: Env) -> Self {
        Self(DurableKvObject::new(&state))
    }

    async fn fetch(&self, req: Request) -> worker::Result<Response> {
        self.0.fetch(req).await
    }

    async fn alarm(&self) -> worker::Result<Response> {
        self.0.alarm().await
    }
}

// ---- per-request handles on the isolate-wide state ----

fn gate(env: &Env) -> Result<SessionGate, Fail> {
    // e2e only: session writes held back (e2e/durable/races.test.mjs; `slow.rs`).
    let delay = env_text(env, "SESSION_WRITE_DELAY_MS")
        .and_then(|v| v.trim().parse::<u64>().ok())
        .filter(|&ms| ms > 0)
        .map(std::time::Duration::from_millis);
    let kv = match (session_backend(env)?, delay) {
        (SessionBackend::Kv, None) => {
            Kv::new(WorkersKv::from_env(env, "KV").or_fail("binding KV")?)
        }
        (SessionBackend::Kv, Some(delay)) => Kv::new(slow::SlowWrites {
            inner: WorkersKv::from_env(env, "KV").or_fail("binding KV")?,
            delay,
        }),
        (SessionBackend::Durable, None) => {
            Kv::new(DurableKv::from_env(env, "SESSION_OBJECTS").or_fail("binding SESSION_OBJECTS")?)
        }
        (SessionBackend::Durable, Some(delay)) => Kv::new(slow::SlowWrites {
            inner: DurableKv::from_env(env, "SESSION_OBJECTS")
                .or_fail("binding SESSION_OBJECTS")?,
            delay,
        }),
    }
    .with_counters(SESSION_KV_OPS.clone());
    let mut store = Sessions::new(kv).on_reject(ON_REJECT.clone());
    // e2e only: a short idle timeout, so that a refresh falls due a second or two after login
    // (e2e/durable/races.test.mjs races real refreshes against logouts on the objects).
    if let Some(secs) =
        env_text(env, "SESSION_IDLE_TIMEOUT_SECS").and_then(|v| v.trim().parse::<u64>().ok())
    {
        store = store.with_idle_timeout(std::time::Duration::from_secs(secs));
    }
    // e2e only: a small cap on a user's sessions (the library's default is 32).
    if let Some(n) =
        env_text(env, "MAX_SESSIONS_PER_USER").and_then(|v| v.trim().parse::<usize>().ok())
    {
        store = store.with_max_sessions_per_user(n);
    }
    // The ring refuses sessions stored in clear (its default): the demo never wrote one, so a
    // session planted in KV by someone without the key is no session, never served.
    if let Some(ring) = &sealing(env)?.ring {
        store = store.with_sealing(ring.clone());
    }
    // `/sessions/…` are API calls (401 JSON without a session); the demo's login page does not
    // read a return-to parameter, so redirects go to plain `/login`.
    Ok(SessionGate::new(store)
        .with_api_prefix("/sessions")
        .with_return_to(None))
}

fn popular_cache<'a>(env: &Env, ctx: &'a Context) -> Result<KvCache<Popular, WaitUntil<'a>>, Fail> {
    let kv = Kv::new(WorkersKv::from_env(env, "CACHE").or_fail("binding CACHE")?)
        .with_counters(CACHE_KV_OPS.clone());
    let sealing = sealing(env)?;
    let mut cache = KvCache::<Popular>::new(kv)
        .with_state(CACHE_STATE.clone())
        .with_memory_tier(memory_tier_on(env));
    if let (true, Some(ring)) = (sealing.cache, &sealing.ring) {
        cache = cache.with_sealing(ring.clone());
    }
    Ok(cache.with_background(WaitUntil(ctx)))
}

/// `CACHE_L1=off` turns the isolate-memory tier off (every hit reads KV: the benchmark's
/// comparison); it is on otherwise.
fn memory_tier_on(env: &Env) -> bool {
    static ON: OnceLock<bool> = OnceLock::new();
    *ON.get_or_init(|| {
        !matches!(
            env_text(env, "CACHE_L1")
                .map(|v| v.trim().to_ascii_lowercase())
                .as_deref(),
            Some("off")
        )
    })
}

/// The `/articles` cache with counters of its own request: what the response reports.
fn article_cache(env: &Env, ops: Arc<OpCounters>) -> Result<KvCache<Article>, Fail> {
    let kv =
        Kv::new(WorkersKv::from_env(env, "CACHE").or_fail("binding CACHE")?).with_counters(ops);
    let sealing = sealing(env)?;
    let cache = KvCache::<Article>::new(kv).with_state(ARTICLE_STATE.clone());
    Ok(match (sealing.cache, &sealing.ring) {
        (true, Some(ring)) => cache.with_sealing(ring.clone()),
        _ => cache,
    })
}

#[event(fetch)]
async fn fetch(req: Request, env: Env, ctx: Context) -> worker::Result<Response> {
    REQUESTS.fetch_add(1, Ordering::Relaxed);
    isolate();
    Ok(route(req, &env, &ctx)
        .await
        .unwrap_or_else(Fail::into_response))
}

async fn route(req: Request, env: &Env, ctx: &Context) -> Outcome {
    let path = req.path();
    // The method as sent: `Request::method()` maps methods it does not know to GET.
    let method = req.inner().method();
    let allowed: &[&str] = match path.as_str() {
        "/healthz" | "/" | "/me" | "/popular" | "/articles" | "/_stats" | "/devices"
        | "/sessions/devices" => &["GET", "HEAD"],
        "/login" | "/login/link" => &["GET", "HEAD", "POST"],
        "/sessions/rotate"
        | "/sessions/logout-all"
        | "/logout"
        | "/popular/invalidate"
        | "/devices/revoke"
        | "/login/link/confirm" => &["POST"],
        "/_conformance" | "/_conformance/sessions" if conformance_on(env) => &["POST"],
        _ => return Err(Fail::new(404, "not_found", "no such route")),
    };
    if !allowed.contains(&method.as_str()) {
        let allow = allowed.join(", ");
        return Err(Fail::new(
            405,
            "method_not_allowed",
            format!("method not allowed here; allowed: {allow}"),
        )
        .with_header("allow", allow));
    }
    let post = method == "POST";
    if post {
        check_same_origin(&req)?;
    }
    match (post, path.as_str()) {
        (true, "/login") => login(req, env).await,
        (true, "/sessions/rotate") => rotate(&req, env).await,
        (true, "/sessions/logout-all") => logout_all(&req, env).await,
        (true, "/logout") => logout(&req, env).await,
        (true, "/devices/revoke") => devices::revoke(req, env).await,
        (true, "/login/link") => magic::request(req, env).await,
        (true, "/login/link/confirm") => magic::confirm(req, env).await,
        (_, "/login/link") => magic::confirm_page(&req),
        (_, "/devices") => devices::list(req, env, ctx, true).await,
        (_, "/sessions/devices") => devices::list(req, env, ctx, false).await,
        (true, "/popular/invalidate") => invalidate_popular(env, ctx).await,
        (true, "/_conformance") => conformance(env).await,
        (true, "/_conformance/sessions") => plant_sessions(req, env).await,
        (_, "/healthz") => http::respond(200, "text/plain; charset=utf-8", b"ok".to_vec(), &[]),
        (_, "/login") => html(200, pages::login(), &[]),
        (_, "/") => {
            let gate = gate(env)?;
            optional_session(&gate, req, ctx, |_, admitted| async move {
                Ok(
                    html(200, pages::home(admitted.as_ref().map(|a| &a.session)), &[])
                        .unwrap_or_else(Fail::into_response),
                )
            })
            .await
            .or_fail("GET /")
        }
        (_, "/me") => {
            let gate = gate(env)?;
            require_session(&gate, req, ctx, |_, admitted| async move {
                Ok(
                    json(200, &admitted.session, &[("cache-control", "no-store")])
                        .unwrap_or_else(Fail::into_response),
                )
            })
            .await
            .or_fail("GET /me")
        }
        (_, "/popular") => get_popular(env, ctx).await,
        (_, "/articles") => get_articles(&req, env, ctx).await,
        (_, "/_stats") => stats(env),
        _ => Err(Fail::new(404, "not_found", "no such route")),
    }
}

/// State-changing requests must come from our own pages (or from a non-browser client, which
/// sends neither `Sec-Fetch-Site` nor `Origin`): the library's same-origin rule
/// (`SameOrigin`), which also stops login CSRF (a foreign page logging the browser into the
/// attacker's account).
fn check_same_origin(req: &Request) -> Result<(), Fail> {
    SameOrigin::new()
        .check(&OwnedRequestParts::of(req).parts())
        .map_err(|refused| {
            Fail::new(
                403,
                "cross_origin",
                "cross-origin requests that change state are refused",
            )
            .with_header("x-refused-by", refused.code())
        })
}

/// A stable, opaque user id for an email (the demo has no user database).
fn user_id_of(email: &str) -> String {
    let digest = Sha256::digest(email.to_ascii_lowercase().as_bytes());
    let hex: String = digest.iter().take(8).map(|b| format!("{b:02x}")).collect();
    format!("u_{hex}")
}

/// One Rate Limiting binding's verdict on `key`: 429 with a `Retry-After` of the binding's
/// period (wrangler.toml) and a message saying what was limited.
async fn check_rate(
    env: &Env,
    binding: &str,
    key: String,
    period_secs: u32,
    code: &'static str,
    what: &str,
) -> Result<(), Fail> {
    let limiter = env.rate_limiter(binding).or_fail("rate limiter binding")?;
    let outcome = limiter.limit(key).await.or_fail("rate limiter")?;
    if outcome.success {
        Ok(())
    } else {
        Err(Fail::new(
            429,
            code,
            format!("too many {what}; retry in {period_secs} seconds"),
        )
        .with_header("retry-after", period_secs.to_string()))
    }
}

/// The client's address (Workers set CF-Connecting-IP; wrangler dev: the loopback one).
fn client_of(req: &Request) -> String {
    req.headers()
        .get("cf-connecting-ip")
        .ok()
        .flatten()
        .unwrap_or_default()
}

/// Logins per client (`LOGIN_LIMITER`, 30 per 10 s) and per account (`ACCOUNT_LOGIN_LIMITER`,
/// 10 per 60 s, whatever the address: wrangler.toml). Each login costs two KV writes and a
/// list, and writes are what KV bills most, so an unlimited login route is a cost lever for
/// anyone; the account limit also stops one account being hammered from many addresses.
/// Counted after the body is read and checked: a refused body costs no KV operation.
async fn check_login_rate(req: &Request, env: &Env, user_id: &str) -> Result<(), Fail> {
    check_rate(
        env,
        "LOGIN_LIMITER",
        format!("login:{}", client_of(req)),
        10,
        "too_many_logins",
        "logins from this client",
    )
    .await?;
    check_rate(
        env,
        "ACCOUNT_LOGIN_LIMITER",
        format!("account:{user_id}"),
        60,
        "too_many_account_logins",
        "logins to this account",
    )
    .await
}

async fn login(mut req: Request, env: &Env) -> Outcome {
    let body = body::read_capped(&mut req, body::MAX_LOGIN_BODY).await?;
    let content_type = req.headers().get("content-type").ok().flatten();
    let email = body::login_email(content_type.as_deref(), &body)?;
    let user_id = user_id_of(&email);
    check_login_rate(&req, env, &user_id).await?;
    let gate = gate(env)?;
    let cookie = cookie_header(&req);
    // Deletes the session the browser may still carry, so a login never leaves two behind.
    // The devices page's name for this session: coarse ("Firefox on Linux"), never the header.
    let user_agent = req.headers().get("user-agent").ok().flatten();
    let device = user_agent.as_deref().map(device_label);
    let NewSession { set_cookie, .. } = gate
        .login_on_device(
            cookie.as_deref(),
            SessionInit::new(user_id, email),
            device.as_deref(),
        )
        .await
        .map_err(|e| match e {
            // The one value of the session that comes from the request: the email.
            kv_envelope::Error::InvalidValue { .. } => Fail::bad_request(
                "invalid_email",
                "email is not a valid address (max 320 characters)",
            ),
            e => Fail::store("login", e),
        })?;
    see_other("/me", &[("set-cookie", &set_cookie)])
}

/// Not behind `require_session`: that would add the *old* id's refresh cookie to a response
/// that carries the new one.
async fn rotate(req: &Request, env: &Env) -> Outcome {
    let gate = gate(env)?;
    let cookie = cookie_header(req);
    let denied = |reason| deny(&gate, req, DenyCause::NoSession(reason));
    let id = match gate.resolve(cookie.as_deref()).await {
        Ok(Lookup::Found((id, _))) => id,
        Ok(Lookup::NoSession(reason)) => return denied(reason).or_fail("deny"),
        Err(e) => return Err(Fail::store("rotate", e)),
    };
    match gate.rotate(&id).await {
        Ok(Lookup::Found(NewSession {
            session,
            set_cookie,
            ..
        })) => json(
            200,
            &serde_json::json!({ "rotated": true, "session": session }),
            &[("set-cookie", &set_cookie), ("cache-control", "no-store")],
        ),
        Ok(Lookup::NoSession(reason)) => denied(reason).or_fail("deny"),
        Err(e) => Err(Fail::store("rotate", e)),
    }
}

/// "Log out everywhere": every session of the signed-in user, this one last
/// (`SessionGate::logout_everywhere`). With the session cap (32) below the batch (400) one call
/// does it all; a user with more sessions (from before the cap) gets `complete: false` and
/// keeps this session, to call again. Not behind `require_session` (no refresh cookie may
/// follow the clear).
async fn logout_all(req: &Request, env: &Env) -> Outcome {
    let gate = gate(env)?;
    let cookie = cookie_header(req);
    let done = match gate.logout_everywhere(cookie.as_deref()).await {
        Ok(Lookup::Found(done)) => done,
        Ok(Lookup::NoSession(reason)) => {
            return deny(&gate, req, DenyCause::NoSession(reason)).or_fail("deny")
        }
        Err(e) => return Err(Fail::store("logout-all", e)),
    };
    let mut headers = vec![("cache-control", "no-store")];
    if let Some(clear) = &done.set_cookie {
        headers.push(("set-cookie", clear));
    }
    json(200, &done.outcome, &headers)
}

/// Log out. Whatever the request carries costs at most a read per carried id and one delete
/// (the library deletes only what it finds); the per-client limit bounds how often.
async fn logout(req: &Request, env: &Env) -> Outcome {
    check_rate(
        env,
        "LOGOUT_LIMITER",
        format!("logout:{}", client_of(req)),
        10,
        "too_many_logouts",
        "logouts from this client",
    )
    .await?;
    let gate = gate(env)?;
    let clear = gate
        .logout(cookie_header(req).as_deref())
        .await
        .map_err(|e| Fail::store("logout", e))?;
    see_other("/login", &[("set-cookie", &clear)])
}

async fn get_popular(env: &Env, ctx: &Context) -> Outcome {
    let cache = popular_cache(env, ctx)?;
    // Coalesced requests wait for the request that computes; the library keeps that wait in
    // this request's own context (workerd's rules), nothing to wrap here. A hit is the stored
    // JSON text, validated and forwarded as the body without building the struct.
    let cached: Cached<JsonText> = match cache
        .try_get_or_compute_json(popular::KEY, &popular::POLICY, popular::compute)
        .await
    {
        Ok(c) => c,
        Err(ComputeJsonError::Compute(never)) => match never {},
        Err(ComputeJsonError::Encode(e)) => return Err(Fail::store("popular", e)),
    };
    if let Some(e) = &cached.cache_error {
        // Absorbed by the cache (the value is still right); the kind is enough for the log.
        console_warn!("popular: cache problem absorbed: {e}");
    }
    let (status, detail) = match cached.status {
        CacheStatus::Hit => ("hit", None),
        CacheStatus::Stale => ("stale", None),
        CacheStatus::Miss => ("miss", None),
        // Computed by a concurrent request in this isolate, which this one waited for.
        CacheStatus::Coalesced => ("miss", Some("coalesced")),
    };
    let detail = detail.or(cached.refreshing.then_some("refreshing"));
    let tier = if cached.from_memory { "memory" } else { "kv" };
    let mut headers = vec![("x-cache", status), ("cache-control", "no-store")];
    if cached.status == CacheStatus::Hit {
        headers.push(("x-cache-tier", tier));
    }
    if let Some(d) = detail {
        headers.push(("x-cache-detail", d));
    }
    json_text(200, cached.value.as_str(), &headers)
}

/// `GET /articles`: `count` cached articles from `first` on, read in bulk (default) or one by
/// one; missing ones are loaded and cached in the background (see `articles.rs`).
async fn get_articles(req: &Request, env: &Env, ctx: &Context) -> Outcome {
    let url = req.url().or_fail("url")?;
    let query = Query::parse(url.query()).map_err(|m| Fail::bad_request("bad_query", m))?;
    let ops = Arc::new(OpCounters::default());
    let cache = article_cache(env, ops.clone())?;
    let keys: Vec<String> = query.ids().map(articles::key).collect();
    let refs: Vec<&str> = keys.iter().map(String::as_str).collect();
    let found = match query.read {
        Read::Bulk => cache.get_many_json(&refs).await,
        Read::Single => {
            let mut found = Vec::with_capacity(refs.len());
            for key in &refs {
                match cache.get_json(key).await {
                    Ok(f) => found.push(f),
                    Err(e) => return Err(Fail::store("articles", e)),
                }
            }
            Ok(found)
        }
    }
    .map_err(|e| Fail::store("articles", e))?;
    let kv = ops.snapshot();
    let mut items = Vec::with_capacity(found.len());
    let mut missing = Vec::new();
    for (id, hit) in query.ids().zip(found) {
        match hit {
            Some(hit) => items.push(hit.value.to_raw_value()),
            None => {
                let article = articles::load(id);
                let raw = serde_json::value::to_raw_value(&article)
                    .map_err(|_| Fail::new(500, "internal", "internal error"))?;
                items.push(raw);
                missing.push(article);
            }
        }
    }
    let cached = items.len() - missing.len();
    if !missing.is_empty() {
        let cache = cache.clone();
        ctx.wait_until(async move {
            for article in missing {
                if let Err(e) = cache
                    .put(&articles::key(article.id), &article, &articles::POLICY)
                    .await
                {
                    console_warn!("articles: caching failed: {e}");
                }
            }
        });
    }
    #[derive(Serialize)]
    struct Body {
        read: &'static str,
        count: u32,
        cached: usize,
        kv: OpCounts,
        items: Vec<Box<serde_json::value::RawValue>>,
    }
    let body = Body {
        read: query.read.as_str(),
        count: query.count,
        cached,
        kv,
        items,
    };
    json(200, &body, &[("cache-control", "no-store")])
}

async fn invalidate_popular(env: &Env, ctx: &Context) -> Outcome {
    let cache = popular_cache(env, ctx)?;
    cache
        .invalidate(popular::KEY)
        .await
        .map_err(|e| Fail::store("invalidate", e))?;
    json(
        200,
        &serde_json::json!({ "invalidated": popular::KEY }),
        &[],
    )
}

/// `GET /_stats`: counters of this isolate since it started. KV totals at the top level, then
/// per binding; `cache_computations` from the cache store, cross-checked by
/// `popular_compute_calls` counted inside the computation itself.
fn stats(env: &Env) -> Outcome {
    #[derive(Serialize)]
    struct Stats {
        isolate_id: &'static str,
        isolate_started_at: u64,
        requests: u64,
        warm_ups: u64,
        warm_up_error: Option<&'static str>,
        kv_reads: u64,
        kv_writes: u64,
        kv_deletes: u64,
        kv_lists: u64,
        kv_rate_limited: u64,
        cache_computations: u64,
        popular_compute_calls: u64,
        kv: BTreeMap<&'static str, OpCounts>,
        cache: kv_envelope::cache::CacheStats,
        session_rejections: BTreeMap<&'static str, u64>,
        sealing: serde_json::Value,
        session_backend: Option<SessionBackend>,
        /// Refused magic-link consumes by kind (`token_used`, …), and whether a consume is
        /// exactly once on this backend.
        token_refusals: BTreeMap<&'static str, u64>,
        tokens_exactly_once: Option<bool>,
    }
    let iso = isolate();
    // Key ids are labels, not secrets; a misconfiguration names the variable only.
    let sealing = match sealing(env) {
        Ok(s) => serde_json::json!({
            "sessions": s.ring.is_some(),
            "cache": s.cache,
            "key_ids": s.ring.as_ref().map(|r| r.key_ids().collect::<Vec<_>>()),
        }),
        Err(fail) => serde_json::json!({ "error": fail.message }),
    };
    let sessions = SESSION_KV_OPS.snapshot();
    let cache_kv = CACHE_KV_OPS.snapshot();
    // The counters live in the shared state; the CACHE binding's KV counts go with them.
    let cache = CACHE_STATE.stats_with_kv(cache_kv);
    let stats = Stats {
        isolate_id: &iso.id,
        isolate_started_at: iso.started_at,
        requests: REQUESTS.load(Ordering::Relaxed),
        warm_ups: WARM_UPS.load(Ordering::Relaxed),
        warm_up_error: iso.warm_up_error.as_deref(),
        kv_reads: sessions.kv_reads + cache_kv.kv_reads,
        kv_writes: sessions.kv_writes + cache_kv.kv_writes,
        kv_deletes: sessions.kv_deletes + cache_kv.kv_deletes,
        kv_lists: sessions.kv_lists + cache_kv.kv_lists,
        kv_rate_limited: sessions.kv_rate_limited + cache_kv.kv_rate_limited,
        cache_computations: cache.computations,
        popular_compute_calls: popular::COMPUTE_CALLS.load(Ordering::Relaxed),
        kv: BTreeMap::from([("KV", sessions), ("CACHE", cache_kv)]),
        cache,
        session_rejections: REJECTIONS
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone(),
        sealing,
        session_backend: session_backend(env).ok(),
        token_refusals: magic::REFUSALS
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone(),
        tokens_exactly_once: magic::tokens(env).ok().map(|t| t.is_exactly_once()),
    };
    json(200, &stats, &[("cache-control", "no-store")])
}
