//! The typed-session layer and extractor in an axum router (feature `axum`), natively on
//! `MemoryKv` and the simulator: the same verdicts as the workers-rs gate (302 for pages, 401
//! JSON for APIs, 503 when KV fails), typed data in handlers, the refresh's cookie on the
//! response, hostile cookies never a 5xx.

mod common;

use std::{path::Path, sync::Arc, time::Duration};

use axum::{
    body::{to_bytes, Body},
    http::{header, Request, StatusCode},
    response::Response,
    routing::get,
    Router,
};
use futures::executor::block_on;
use kv_envelope::{
    axum::{TypedSession, TypedSessionLayer},
    session::{CookieConfig, IdSource, NewSession, SessionGate, Sessions},
    testing::{SimConfig, SimKv},
    Kv, ManualClock, MemoryKv, Result,
};
use tower::ServiceExt;

use common::NOW;

const DAY: Duration = Duration::from_secs(24 * 3600);

/// Ids `11…11`, as the cookie corpus expects.
struct Elevens;
impl IdSource for Elevens {
    fn fill(&self, dest: &mut [u8]) -> Result<()> {
        dest.fill(0x11);
        Ok(())
    }
}

fn gate(kv: Kv) -> SessionGate {
    let store = Sessions::new(kv).with_id_source(Arc::new(Elevens));
    // The corpus is written for the bare name `session` (the default is `__Host-session`).
    SessionGate::new(store)
        .with_cookie(CookieConfig::default().with_host_prefix(false))
        .with_api_prefix("/api")
}

fn app(gate: SessionGate) -> Router {
    Router::new()
        .route(
            "/account",
            get(
                |TypedSession(s): TypedSession<kv_envelope::session::SessionRecord>| async move {
                    format!("hello {}", s.session.email)
                },
            ),
        )
        .route(
            "/api/me",
            get(
                |TypedSession(s): TypedSession<kv_envelope::session::SessionRecord>| async move {
                    s.session.user_id
                },
            ),
        )
        .route(
            "/",
            get(
                |s: Option<TypedSession<kv_envelope::session::SessionRecord>>| async move {
                    match s {
                        Some(TypedSession(s)) => format!("hi {}", s.session.user_id),
                        None => "anonymous".to_string(),
                    }
                },
            ),
        )
        .layer(TypedSessionLayer::new(gate))
}

fn get_with(app: &Router, path: &str, cookie: Option<&str>) -> Response {
    let mut req = Request::builder().uri(path);
    if let Some(c) = cookie {
        req = req.header(header::COOKIE, c);
    }
    block_on(app.clone().oneshot(req.body(Body::empty()).unwrap())).unwrap()
}

fn body(res: Response) -> String {
    let bytes = block_on(to_bytes(res.into_body(), 1 << 20)).unwrap();
    String::from_utf8(bytes.to_vec()).unwrap()
}

fn set_cookies(res: &Response) -> Vec<String> {
    res.headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .collect()
}

fn memory() -> (ManualClock, Kv) {
    let clock = ManualClock::new(NOW);
    let kv = Kv::new(MemoryKv::new(Arc::new(clock.clone()))).with_clock(Arc::new(clock.clone()));
    (clock, kv)
}

/// A session stored for `ada`, and the `Cookie` header that carries it.
fn logged_in(gate: &SessionGate) -> String {
    let NewSession { set_cookie, .. } = block_on(gate.login(
        None,
        kv_envelope::session::SessionInit::new("ada", "ada@example.com"),
    ))
    .unwrap();
    set_cookie.split(';').next().unwrap().to_string()
}

#[test]
fn without_a_session_pages_redirect_apis_get_401_and_public_pages_run() {
    let (_, kv) = memory();
    let app = app(gate(kv));
    let page = get_with(&app, "/account?tab=1", None);
    assert_eq!(page.status(), StatusCode::FOUND);
    let location = page.headers()[header::LOCATION].to_str().unwrap();
    assert!(location.starts_with("/login"), "{location}");
    let api = get_with(&app, "/api/me", None);
    assert_eq!(api.status(), StatusCode::UNAUTHORIZED);
    assert!(api.headers()[header::CONTENT_TYPE]
        .to_str()
        .unwrap()
        .contains("json"));
    let public = get_with(&app, "/", None);
    assert_eq!(public.status(), StatusCode::OK);
    assert_eq!(body(public), "anonymous");
}

#[test]
fn a_session_reaches_the_handler_typed() {
    let (_, kv) = memory();
    let gate = gate(kv.clone());
    let cookie = logged_in(&gate);
    let app = app(gate);
    let reads = kv.counters().snapshot().kv_reads;
    let res = get_with(&app, "/account", Some(&cookie));
    assert_eq!(res.status(), StatusCode::OK);
    assert!(set_cookies(&res).is_empty(), "no refresh due yet");
    assert_eq!(body(res), "hello ada@example.com");
    assert_eq!(
        kv.counters().snapshot().kv_reads - reads,
        1,
        "one KV read per request"
    );
    assert_eq!(body(get_with(&app, "/api/me", Some(&cookie))), "ada");
    assert_eq!(body(get_with(&app, "/", Some(&cookie))), "hi ada");
}

#[test]
fn a_due_refresh_is_written_once_and_extends_the_cookie() {
    let (clock, kv) = memory();
    let gate = gate(kv.clone());
    let cookie = logged_in(&gate);
    let app = app(gate);
    clock.advance(2 * DAY);
    let writes = kv.counters().snapshot().kv_writes;
    let res = get_with(&app, "/account", Some(&cookie));
    assert_eq!(res.status(), StatusCode::OK);
    let extended = set_cookies(&res);
    assert_eq!(extended.len(), 1, "{extended:?}");
    assert!(
        extended[0].starts_with(&cookie) && extended[0].contains("Max-Age=604800"),
        "{extended:?}"
    );
    assert_eq!(kv.counters().snapshot().kv_writes - writes, 1);
    for _ in 0..100 {
        clock.advance(Duration::from_secs(30));
        let res = get_with(&app, "/account", Some(&cookie));
        assert!(set_cookies(&res).is_empty());
    }
    assert_eq!(
        kv.counters().snapshot().kv_writes - writes,
        1,
        "refreshed once"
    );
}

#[test]
fn a_dead_cookie_is_cleared_on_public_pages_too() {
    let (_, kv) = memory();
    let app = app(gate(kv));
    let dead = format!("session={}", "ab".repeat(32));
    let res = get_with(&app, "/", Some(&dead));
    assert_eq!(res.status(), StatusCode::OK);
    let cleared = set_cookies(&res);
    assert!(
        cleared.iter().any(|c| c.contains("Max-Age=0")),
        "{cleared:?}"
    );
}

#[test]
fn hostile_cookies_are_never_a_5xx() {
    let (_, kv) = memory();
    let gate = gate(kv);
    let _ = logged_in(&gate);
    let app = app(gate);
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus/cookies");
    let mut seen = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let bytes = std::fs::read(entry.unwrap().path()).unwrap();
        // Bytes an HTTP header cannot hold never reach a handler.
        let Ok(value) = axum::http::HeaderValue::from_bytes(&bytes) else {
            continue;
        };
        for path in ["/", "/account", "/api/me"] {
            let req = Request::builder()
                .uri(path)
                .header(header::COOKIE, value.clone())
                .body(Body::empty())
                .unwrap();
            let res = block_on(app.clone().oneshot(req)).unwrap();
            assert!(!res.status().is_server_error(), "{path}: {}", res.status());
            seen += 1;
        }
    }
    assert!(seen > 60, "{seen}");
}

#[test]
fn a_kv_outage_is_503_never_a_logout() {
    let clock = ManualClock::new(NOW);
    let sim = SimKv::new(5, SimConfig::strong(), Arc::new(clock.clone()));
    let kv = Kv::new(sim.location(0)).with_clock(Arc::new(clock.clone()));
    let gate = gate(kv);
    let cookie = logged_in(&gate);
    let app = app(gate);
    sim.set_fault_rate(1.0);
    for path in ["/", "/account", "/api/me"] {
        let res = get_with(&app, path, Some(&cookie));
        assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE, "{path}");
        assert!(
            set_cookies(&res).iter().all(|c| !c.contains("Max-Age=0")),
            "{path}"
        );
    }
}

#[test]
fn an_extractor_without_the_layer_is_a_500_not_a_panic() {
    let app: Router = Router::new().route(
        "/",
        get(
            |TypedSession(s): TypedSession<kv_envelope::session::SessionRecord>| async move {
                s.session.email
            },
        ),
    );
    assert_eq!(
        get_with(&app, "/", None).status(),
        StatusCode::INTERNAL_SERVER_ERROR
    );
}

/// A handler that logs out (its response sets the session cookie) is never undone by the
/// layer: no refresh is written and no extended cookie added, even when one was due.
#[test]
fn a_handler_that_sets_the_session_cookie_wins_over_the_refresh() {
    let (clock, kv) = memory();
    let gate = gate(kv.clone());
    let cookie = logged_in(&gate);
    let logout_gate = gate.clone();
    let app = Router::new()
        .route(
            "/logout",
            get(move |req: Request<Body>| {
                let gate = logout_gate.clone();
                async move {
                    let cookie = req
                        .headers()
                        .get(header::COOKIE)
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_string);
                    let clear = gate.logout(cookie.as_deref()).await.unwrap();
                    Response::builder()
                        .header(header::SET_COOKIE, clear)
                        .body(Body::from("bye"))
                        .unwrap()
                }
            }),
        )
        .layer(TypedSessionLayer::new(gate));
    clock.advance(2 * DAY); // a refresh is due
    let writes = kv.counters().snapshot().kv_writes;
    let res = get_with(&app, "/logout", Some(&cookie));
    let cookies = set_cookies(&res);
    assert_eq!(cookies.len(), 1, "{cookies:?}");
    assert!(cookies[0].contains("Max-Age=0"), "{cookies:?}");
    assert_eq!(
        kv.counters().snapshot().kv_writes,
        writes,
        "no refresh written"
    );
    assert_eq!(
        get_with(&app, "/logout", Some(&cookie)).status(),
        StatusCode::OK
    );
}
