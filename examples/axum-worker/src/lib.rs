//! An axum router on workers-rs using kv-envelope's two session front ends and its cache, served
//! by `wrangler dev` on workerd with local KV (end-to-end tests: `e2e/axum.test.mjs`).
//!
//! | route | what it does |
//! |---|---|
//! | `GET /healthz` | `200 ok` |
//! | `POST /tower/login` | form or JSON `user`: a tower-sessions session (`KvSessionStore`, binding `SESSIONS`) |
//! | `GET /tower/counter` | increments the counter kept in the tower session; 401 JSON without one |
//! | `GET /tower/me` | reads the tower session only (kept alive within the store's refresh window: no write) |
//! | `POST /tower/logout` | deletes the tower session |
//! | `POST /typed/login` | form or JSON `email`: a typed `Sessions<SessionRecord>` session, 303 to `/typed/me` |
//! | `GET /typed/me` | the typed session (`TypedSession<SessionRecord>`); 302 to `/typed/login` without one |
//! | `GET /typed/api/me` | the same as an API: 401 JSON without a session |
//! | `POST /typed/rotate` | a new session id (the old one stops working) |
//! | `POST /typed/logout` | deletes the typed session, clears the cookie |
//! | `GET /typed/api/devices` | the user's signed-in devices (`Sessions::list_devices`), this one marked `current` |
//! | `POST /typed/api/devices/revoke` | form or JSON `handle`: signs that device out (`Sessions::revoke_device`) |
//! | `GET /cached` | a value through `KvCache::try_get_or_compute_json` (`CACHE`), the stored text as body |
//! | `GET /_stats` | this isolate's KV operation counters and `session_backend` |
//!
//! Both session front ends keep their sessions in the `SESSIONS` KV namespace, or, with
//! `SESSION_BACKEND=durable` (a var in `wrangler.toml`), in the `SESSION_OBJECTS` Durable
//! Objects (class `SessionObject`, the library's `DurableKvObject`): the same layers and
//! extractors, with logout and rotation seen everywhere at once (docs/sessions.md,
//! "Consistency"; `e2e/axum-durable.test.mjs`).
//!
//! Bad cookies and bodies are 4xx, never a 5xx; KV failing is 503 (the library's one mapping
//! of its errors, `kv_envelope::Error` being an axum response). State-changing requests from
//! other origins are refused (403, `SameOriginLayer`); the tower-sessions cookie is
//! `__Host-id`.

use std::{
    convert::Infallible,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc, LazyLock, OnceLock,
    },
    time::Duration,
};

use axum::{
    body::{Body, Bytes},
    extract::State,
    http::{header, HeaderMap, HeaderValue, StatusCode},
    response::{IntoResponse, Response},
    routing::{get, post},
    Json, Router,
};
use kv_envelope::{
    axum::{SameOriginLayer, TypedSession, TypedSessionLayer},
    backend::{DurableKv, DurableKvObject, OpCounters, WorkersKv},
    cache::{CachePolicy, ComputeJsonError, KvCache},
    session::{
        device_label, DeviceHandle, Lookup, NewSession, Revocation, SameOrigin, SessionGate,
        SessionInit, SessionRecord, Sessions,
    },
    tower_sessions::{get_or_flush, KvSessionStore},
    Clock, Kv, SystemClock,
};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::json;
use tower_service::Service;
use tower_sessions::{cookie::time, Expiry, SessionManagerLayer};
use worker::{console_warn, durable_object, event, Context, DurableObject, Env, HttpRequest};

/// KV operations of this isolate, both bindings (every `Kv` handle counts into these).
static KV_OPS: LazyLock<Arc<OpCounters>> = LazyLock::new(Default::default);
static REQUESTS: AtomicU64 = AtomicU64::new(0);
static ISOLATE_ID: OnceLock<String> = OnceLock::new();
/// Times `/cached`'s computation ran in this isolate.
static COMPUTATIONS: AtomicU64 = AtomicU64::new(0);

const MAX_NAME_BYTES: usize = 254;

// ---- responses ----

fn json_response(status: StatusCode, value: serde_json::Value) -> Response {
    let mut res = (status, Json(value)).into_response();
    res.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

fn error(status: StatusCode, code: &str, message: &str) -> Response {
    json_response(status, json!({ "error": code, "message": message }))
}

/// KV (or the binding) failed: 503, never a logout and never the error's text.
fn unavailable(what: &str, e: impl std::fmt::Display) -> Response {
    console_warn!("{what}: {e}");
    error(
        StatusCode::SERVICE_UNAVAILABLE,
        "unavailable",
        "sessions or cache unavailable; retry",
    )
}

fn with_cookie(mut res: Response, set_cookie: &str) -> Response {
    match HeaderValue::from_str(set_cookie) {
        Ok(v) => {
            res.headers_mut().append(header::SET_COOKIE, v);
            res
        }
        Err(_) => error(StatusCode::INTERNAL_SERVER_ERROR, "bad_cookie", "cookie"),
    }
}

/// A name from a form (`field=...`) or JSON (`{"field": "..."}`) body: trimmed, 1..=254 bytes.
fn name_from_body(headers: &HeaderMap, body: &[u8], field: &str) -> Result<String, Response> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    let value = if content_type.starts_with("application/json") {
        serde_json::from_slice::<serde_json::Value>(body)
            .ok()
            .and_then(|v| v.get(field)?.as_str().map(str::to_owned))
    } else if content_type.starts_with("application/x-www-form-urlencoded") {
        form_urlencoded::parse(body)
            .find(|(k, _)| k == field)
            .map(|(_, v)| v.into_owned())
    } else {
        return Err(error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "send a form or JSON body",
        ));
    };
    match value.map(|v| v.trim().to_owned()) {
        Some(v) if !v.is_empty() && v.len() <= MAX_NAME_BYTES => Ok(v),
        _ => Err(error(
            StatusCode::BAD_REQUEST,
            "bad_request",
            &format!("`{field}`: 1 to {MAX_NAME_BYTES} bytes of text"),
        )),
    }
}

// ---- KV handles ----

fn kv(env: &Env, binding: &str) -> Result<Kv, Response> {
    WorkersKv::from_env(env, binding)
        .map(|backend| Kv::new(backend).with_counters(KV_OPS.clone()))
        .map_err(|e| unavailable("binding", e))
}

/// Where the sessions live: `SESSION_BACKEND` = `kv` (default) or `durable`.
fn durable_sessions(env: &Env) -> Result<bool, Response> {
    let var = env.var("SESSION_BACKEND").ok().map(|v| v.to_string());
    match var.as_deref().map(str::trim) {
        None | Some("kv") => Ok(false),
        Some("durable") => Ok(true),
        Some(_) => Err(error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "session_backend_misconfigured",
            "SESSION_BACKEND must be kv or durable",
        )),
    }
}

/// The sessions' handle, for both front ends: the `SESSIONS` namespace or the
/// `SESSION_OBJECTS` Durable Objects.
fn session_kv(env: &Env) -> Result<Kv, Response> {
    if !durable_sessions(env)? {
        return kv(env, "SESSIONS");
    }
    DurableKv::from_env(env, "SESSION_OBJECTS")
        .map(|backend| Kv::new(backend).with_counters(KV_OPS.clone()))
        .map_err(|e| unavailable("binding", e))
}

/// The Durable Object class that holds sessions when `SESSION_BACKEND=durable`.
#[durable_object]
pub struct SessionObject(DurableKvObject);

impl DurableObject for SessionObject {
    fn new(state: worker::State, _env: Env) -> Self {
        Self(DurableKvObject::new(&state))
    }

    async fn fetch(&self, req: worker::Request) -> worker::Result<worker::Response> {
        self.0.fetch(req).await
    }

    async fn alarm(&self) -> worker::Result<worker::Response> {
        self.0.alarm().await
    }
}

/// The typed sessions' gate: `/typed/api/…` are API calls (401 JSON), other pages are sent to
/// `/typed/login` (302).
fn gate(env: &Env) -> Result<SessionGate<SessionRecord>, Response> {
    Ok(SessionGate::new(Sessions::new(session_kv(env)?))
        .with_login_path("/typed/login")
        .with_api_prefix("/typed/api")
        .with_return_to(None))
}

fn cookie_header(headers: &HeaderMap) -> Option<String> {
    let parts: Vec<&str> = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    (!parts.is_empty()).then(|| parts.join("; "))
}

// ---- the router ----

fn app(env: Env) -> Result<Router, Response> {
    // tower-sessions over kv-envelope: one day of inactivity, pushed out on every request
    // (`always_save`), at most one KV write per session per hour for that (the refresh window).
    let store =
        KvSessionStore::new(session_kv(&env)?).with_refresh_window(Duration::from_secs(3600));
    // `__Host-`: browsers refuse a cookie of that name that carries `Domain` or a `Path` other
    // than `/`, or that comes over plain HTTP from another host, so a sibling subdomain cannot
    // toss its own `__Host-id` in beside ours (with two cookies of one name tower-sessions
    // serves the last: the attacker's session). The prefix needs `Secure` and `Path=/`.
    let sessions = SessionManagerLayer::new(store)
        .with_name("__Host-id")
        .with_secure(true)
        .with_path("/")
        .with_expiry(Expiry::OnInactivity(time::Duration::days(1)))
        .with_always_save(true);
    let tower = Router::new()
        .route("/tower/login", post(tower_login))
        .route("/tower/counter", get(tower_counter))
        .route("/tower/me", get(tower_me))
        .route("/tower/logout", post(tower_logout))
        .layer(sessions);

    let typed = Router::new()
        .route("/typed/login", post(typed_login).get(typed_login_page))
        .route("/typed/me", get(typed_me))
        .route("/typed/api/me", get(typed_me))
        .route("/typed/rotate", post(typed_rotate))
        .route("/typed/logout", post(typed_logout))
        .route("/typed/api/devices", get(typed_devices))
        .route("/typed/api/devices/revoke", post(typed_revoke_device))
        .layer(TypedSessionLayer::new(gate(&env)?));

    // Outermost: no state-changing request from another origin reaches any route (login CSRF:
    // a foreign page logging the browser into the attacker's account).
    Ok(Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/cached", get(cached))
        .route("/_stats", get(stats))
        .merge(tower)
        .merge(typed)
        .fallback(|| async { error(StatusCode::NOT_FOUND, "not_found", "no such route") })
        .layer(SameOriginLayer::new(SameOrigin::new()))
        .with_state(env))
}

#[event(fetch)]
async fn fetch(
    req: HttpRequest,
    env: Env,
    _ctx: Context,
) -> worker::Result<axum::http::Response<Body>> {
    REQUESTS.fetch_add(1, Ordering::Relaxed);
    Ok(match app(env) {
        Ok(mut router) => router
            .call(req)
            .await
            .unwrap_or_else(|never| match never {}),
        Err(res) => res,
    })
}

// ---- tower-sessions routes ----

/// A tower-sessions store failure (KV, or a stored record kept because it is newer): 503. Only
/// the store's errors reach here (reads go through `get_or_flush`, whose errors carry no
/// value); the log line names the operation, never the error's text.
fn tower_failed(what: &str) -> Response {
    console_warn!("tower session store failed: {what}");
    error(
        StatusCode::SERVICE_UNAVAILABLE,
        "unavailable",
        "sessions unavailable; retry",
    )
}

async fn tower_login(
    session: tower_sessions::Session,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let user = match name_from_body(&headers, &body, "user") {
        Ok(u) => u,
        Err(res) => return res,
    };
    // A new id at login (no fixation), then the data: the layer saves it after the handler.
    let result = async {
        session.cycle_id().await?;
        session.insert("user", &user).await?;
        session.insert("n", 0u64).await
    }
    .await;
    match result {
        Ok(()) => json_response(StatusCode::OK, json!({ "user": user })),
        Err(_) => tower_failed("login"),
    }
}

fn no_session() -> Response {
    error(StatusCode::UNAUTHORIZED, "no_session", "log in first")
}

/// The session's user. Data that no longer fits the type (an older app's, or planted) is no
/// session (`get_or_flush` flushes it): 401, never a 503 that lasts as long as the record.
async fn tower_user(session: &tower_sessions::Session) -> Result<String, Response> {
    match get_or_flush::<String>(session, "user").await {
        Ok(Some(user)) => Ok(user),
        Ok(None) => Err(no_session()),
        Err(_) => Err(tower_failed("read")),
    }
}

async fn tower_counter(session: tower_sessions::Session) -> Response {
    let user = match tower_user(&session).await {
        Ok(u) => u,
        Err(res) => return res,
    };
    let n = match get_or_flush::<u64>(&session, "n").await {
        Ok(Some(n)) => n + 1,
        // `n` no longer fitted a u64: the session was flushed.
        Ok(None) if session.is_empty().await => return no_session(),
        Ok(None) => 1,
        Err(_) => return tower_failed("read"),
    };
    match session.insert("n", n).await {
        Ok(()) => json_response(StatusCode::OK, json!({ "user": user, "counter": n })),
        Err(_) => tower_failed("write"),
    }
}

async fn tower_me(session: tower_sessions::Session) -> Response {
    match tower_user(&session).await {
        Ok(user) => json_response(StatusCode::OK, json!({ "user": user })),
        Err(res) => res,
    }
}

async fn tower_logout(session: tower_sessions::Session) -> Response {
    match session.flush().await {
        Ok(()) => json_response(StatusCode::OK, json!({ "logged_out": true })),
        Err(_) => tower_failed("logout"),
    }
}

// ---- typed-session routes ----

async fn typed_login_page() -> Response {
    let mut res = "POST /typed/login with an email (form or JSON)".into_response();
    res.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

// `#[worker::send]`: the gate's futures hold workers-rs (JavaScript) futures, which are not
// `Send`; axum handlers must be. Sound on a Workers isolate, which is single-threaded.
#[worker::send]
async fn typed_login(State(env): State<Env>, headers: HeaderMap, body: Bytes) -> Response {
    let email = match name_from_body(&headers, &body, "email") {
        Ok(e) => e,
        Err(res) => return res,
    };
    let gate = match gate(&env) {
        Ok(g) => g,
        Err(res) => return res,
    };
    let init = SessionInit::new(email.to_ascii_lowercase(), email);
    // The devices list's name for this session: coarse ("Firefox on Linux"), never the header.
    let device = headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .map(device_label);
    let cookie = cookie_header(&headers);
    match gate
        .login_on_device(cookie.as_deref(), init, device.as_deref())
        .await
    {
        Ok(NewSession { set_cookie, .. }) => {
            let mut res = StatusCode::SEE_OTHER.into_response();
            res.headers_mut()
                .insert(header::LOCATION, HeaderValue::from_static("/typed/me"));
            with_cookie(res, &set_cookie)
        }
        // The library's mapping: an email its schema refuses is 422, KV failing 503.
        Err(e) => e.into_response(),
    }
}

async fn typed_me(TypedSession(s): TypedSession<SessionRecord>) -> Response {
    json_response(
        StatusCode::OK,
        json!({ "user_id": s.session.user_id, "email": s.session.email }),
    )
}

/// Not only the extractor's session: the new id's cookie, which the layer leaves alone.
#[worker::send]
async fn typed_rotate(
    State(env): State<Env>,
    TypedSession(s): TypedSession<SessionRecord>,
) -> Response {
    let gate = match gate(&env) {
        Ok(g) => g,
        Err(res) => return res,
    };
    match gate.rotate(&s.id).await {
        Ok(Lookup::Found(NewSession {
            session,
            set_cookie,
            ..
        })) => with_cookie(
            json_response(
                StatusCode::OK,
                json!({ "rotated": true, "email": session.email }),
            ),
            &set_cookie,
        ),
        Ok(Lookup::NoSession(reason)) => error(
            StatusCode::UNAUTHORIZED,
            "no_session",
            &format!("session ended: {}", reason.code()),
        ),
        // The library's mapping: on Durable Objects another request retired or changed the
        // session between the rotation's read and its writes (409, nothing left of the
        // rotation); KV failing 503.
        Err(e) => e.into_response(),
    }
}

#[worker::send]
async fn typed_logout(State(env): State<Env>, headers: HeaderMap) -> Response {
    let gate = match gate(&env) {
        Ok(g) => g,
        Err(res) => return res,
    };
    match gate.logout(cookie_header(&headers).as_deref()).await {
        Ok(clear) => with_cookie(
            json_response(StatusCode::OK, json!({ "logged_out": true })),
            &clear,
        ),
        Err(e) => e.into_response(),
    }
}

/// The signed-in user's devices (live sessions): `{"devices": [{handle, label, createdAt,
/// lastSeenAt, expiresAt, current}]}`, this one first.
#[worker::send]
async fn typed_devices(
    State(env): State<Env>,
    TypedSession(s): TypedSession<SessionRecord>,
) -> Response {
    let gate = match gate(&env) {
        Ok(g) => g,
        Err(res) => return res,
    };
    match gate.store().list_devices(&s.id).await {
        Ok(Lookup::Found(devices)) => json_response(StatusCode::OK, json!({ "devices": devices })),
        Ok(Lookup::NoSession(reason)) => error(
            StatusCode::UNAUTHORIZED,
            "no_session",
            &format!("session ended: {}", reason.code()),
        ),
        Err(e) => e.into_response(),
    }
}

/// Sign one of the user's devices out by its `handle` (form or JSON): `{"revoked": "device"}`,
/// `{"revoked": "this_device"}` with the cookie cleared, or 404 when none of the user's live
/// sessions has that handle.
#[worker::send]
async fn typed_revoke_device(
    State(env): State<Env>,
    TypedSession(s): TypedSession<SessionRecord>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let handle = match name_from_body(&headers, &body, "handle") {
        Ok(h) => h,
        Err(res) => return res,
    };
    let Some(handle) = DeviceHandle::parse(&handle) else {
        return error(
            StatusCode::BAD_REQUEST,
            "bad_handle",
            "handle is not a device handle",
        );
    };
    let gate = match gate(&env) {
        Ok(g) => g,
        Err(res) => return res,
    };
    match gate.store().revoke_device(&s.id, &handle).await {
        Ok(Lookup::Found(Revocation::Revoked)) => {
            json_response(StatusCode::OK, json!({ "revoked": "device" }))
        }
        Ok(Lookup::Found(Revocation::RevokedCurrent)) => with_cookie(
            json_response(StatusCode::OK, json!({ "revoked": "this_device" })),
            &gate.cookie().clear_cookie(),
        ),
        Ok(Lookup::Found(Revocation::NotFound)) => error(
            StatusCode::NOT_FOUND,
            "no_such_device",
            "none of your signed-in devices has that handle",
        ),
        Ok(Lookup::NoSession(reason)) => error(
            StatusCode::UNAUTHORIZED,
            "no_session",
            &format!("session ended: {}", reason.code()),
        ),
        Err(e) => e.into_response(),
    }
}

// ---- cache and stats ----

/// The cached value of `/cached`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Greeting {
    /// A fixed message.
    #[schemars(length(max = 100))]
    pub message: String,
    /// When it was computed (ms since the epoch).
    pub computed_at: u64,
}

kv_envelope::versioned! { name: "greeting", versions: [Greeting] }

#[worker::send]
async fn cached(State(env): State<Env>) -> Response {
    let cache = match kv(&env, "CACHE") {
        Ok(kv) => KvCache::<Greeting>::new(kv),
        Err(res) => return res,
    };
    let compute = || async {
        COMPUTATIONS.fetch_add(1, Ordering::Relaxed);
        Ok::<_, Infallible>(Greeting {
            message: "hello from axum on workers".into(),
            computed_at: SystemClock.now_ms(),
        })
    };
    match cache
        .try_get_or_compute_json("greeting", &CachePolicy::QUERY_CACHE, compute)
        .await
    {
        Ok(c) => {
            let status = format!("{:?}", c.status).to_ascii_lowercase();
            let mut res = (
                [(header::CONTENT_TYPE, "application/json")],
                c.value.to_string_owned(),
            )
                .into_response();
            if let Ok(v) = HeaderValue::from_str(&status) {
                res.headers_mut().insert("x-cache", v);
            }
            res
        }
        Err(ComputeJsonError::Compute(never)) => match never {},
        Err(ComputeJsonError::Encode(e)) => e.into_response(),
    }
}

async fn stats(State(env): State<Env>) -> Response {
    let id = ISOLATE_ID.get_or_init(|| {
        let mut id = [0u8; 6];
        let _ = getrandom::fill(&mut id);
        id.iter().map(|b| format!("{b:02x}")).collect()
    });
    let ops = KV_OPS.snapshot();
    json_response(
        StatusCode::OK,
        json!({
            "isolate_id": id,
            "requests": REQUESTS.load(Ordering::Relaxed),
            "kv_reads": ops.kv_reads,
            "kv_writes": ops.kv_writes,
            "kv_deletes": ops.kv_deletes,
            "kv_lists": ops.kv_lists,
            "cache_computations": COMPUTATIONS.load(Ordering::Relaxed),
            "kv": ops,
            "session_backend": match durable_sessions(&env) {
                Ok(true) => "durable",
                Ok(false) => "kv",
                Err(_) => "misconfigured",
            },
        }),
    )
}
