//! The KV write budget of sessions (issue 5, item 6): KV writes and reads per 1,000 session
//! requests over one simulated hour with the 7-day idle timeout, for kv-envelope's session gate
//! and for the reference pattern that refreshes on every request. Deterministic: an in-memory
//! KV on a manual clock. `scripts/bench.sh` runs it and puts the JSON lines it prints into
//! BENCHMARKS.md; `cargo bench --bench write_budget -- run` prints them.

use std::{sync::Arc, time::Duration};

use futures::executor::block_on;
use kv_envelope::{
    background::Deferred,
    session::{
        Admission, CookieConfig, RequestParts, SessionGate, SessionId, SessionInit, SessionRecord,
        Sessions,
    },
    Kv, ManualClock, MemoryKv, TypedStore,
};

const NOW: u64 = 1_764_000_000_000;
const HOUR: Duration = Duration::from_secs(3600);
const DAY: Duration = Duration::from_secs(24 * 3600);
const REQUESTS: usize = 1000;

struct World {
    clock: ManualClock,
    kv: Kv,
}

fn world() -> World {
    let clock = ManualClock::new(NOW);
    let backend = Arc::new(MemoryKv::new(Arc::new(clock.clone())));
    let kv = Kv::from_arc(backend).with_clock(Arc::new(clock.clone()));
    World { clock, kv }
}

fn page(cookie: &str) -> RequestParts<'_> {
    RequestParts {
        method: "GET",
        path: "/me",
        query: None,
        accept: Some("application/json"),
        cookie: Some(cookie),
        ..RequestParts::default()
    }
}

fn cookie_of(id: &SessionId) -> String {
    // The gate's default cookie, `__Host-session`.
    format!("{}={}", CookieConfig::default().name(), id.expose())
}

/// `sessions` sessions, then `REQUESTS` requests over the hour, round robin. One session is
/// created `age` before the hour. Several are created one after another before the hour so that
/// their last writes are spread evenly over a day plus the gap between two requests of a
/// session: the steady state of a store that refreshes a session on its first request once its
/// last write is a day old.
fn ours(scenario: &str, sessions: usize, age: Option<Duration>) {
    let w = world();
    let gate = SessionGate::new(Sessions::<SessionRecord>::new(w.kv.clone()));
    let bg = Deferred::new();
    let mut cookies = Vec::new();
    let gap = HOUR * u32::try_from(sessions).unwrap() / u32::try_from(REQUESTS).unwrap();
    let spacing = (DAY + gap) / u32::try_from(sessions).unwrap();
    for i in 0..sessions {
        let init = SessionInit::new(format!("user-{i}"), "ada@example.com");
        let id = block_on(gate.login(None, init)).unwrap().id;
        cookies.push(cookie_of(&id));
        w.clock.advance(if sessions == 1 {
            age.unwrap_or(Duration::ZERO)
        } else {
            spacing
        });
    }
    let before = w.kv.counters().snapshot();
    let step = HOUR / u32::try_from(REQUESTS).unwrap();
    for r in 0..REQUESTS {
        match block_on(gate.check(&page(&cookies[r % sessions]))) {
            Admission::Admitted(a) => {
                gate.finish(a.ticket(), [], &bg);
            }
            Admission::Denied(d) => panic!("{scenario}: request {r} denied: {:?}", d.cause),
        }
        block_on(bg.run_all());
        w.clock.advance(step);
    }
    let after = w.kv.counters().snapshot();
    report(
        scenario,
        "kv-envelope",
        sessions,
        after.kv_writes - before.kv_writes,
        after.kv_reads - before.kv_reads,
    );
}

/// The reference pattern (`KVSessionStore`): every request reads the session and writes it back
/// with `expiresAt` pushed 7 days out.
fn reference(scenario: &str, sessions: usize) {
    let w = world();
    let store = TypedStore::<SessionRecord>::new(w.kv.clone());
    let ids: Vec<String> = (0..sessions).map(|i| format!("s{i}")).collect();
    let now = w.kv.now_ms();
    for (i, id) in ids.iter().enumerate() {
        let s = SessionRecord {
            user_id: format!("user-{i}"),
            email: "ada@example.com".into(),
            created_at: now,
            expires_at: now + 7 * 86_400_000,
            absolute_expires_at: now + 30 * 86_400_000,
            refreshed_at: now,
            roles: vec![],
        };
        block_on(store.insert_new(id, &s, Some(s.expires_at))).unwrap();
    }
    w.clock.advance(Duration::from_secs(2));
    let before = w.kv.counters().snapshot();
    let step = HOUR / u32::try_from(REQUESTS).unwrap();
    for r in 0..REQUESTS {
        let id = &ids[r % sessions];
        let mut s = block_on(store.get(id)).unwrap().expect("session");
        s.expires_at = w.kv.now_ms() + 7 * 86_400_000;
        block_on(store.insert_new(id, &s, Some(s.expires_at))).unwrap();
        w.clock.advance(step);
    }
    let after = w.kv.counters().snapshot();
    report(
        scenario,
        "reference",
        sessions,
        after.kv_writes - before.kv_writes,
        after.kv_reads - before.kv_reads,
    );
}

fn report(scenario: &str, pattern: &str, sessions: usize, writes: u64, reads: u64) {
    println!(
        "{{\"scenario\":\"{scenario}\",\"pattern\":\"{pattern}\",\"sessions\":{sessions},\"requests\":{REQUESTS},\"kv_writes\":{writes},\"kv_reads\":{reads},\"reads_per_request\":{:.3}}}",
        reads as f64 / REQUESTS as f64
    );
}

fn main() {
    // `cargo bench` runs every bench target with `--bench`: only `run` does the work.
    if std::env::args().nth(1).as_deref() != Some("run") {
        return;
    }
    ours(
        "1 session, created at the start of the hour",
        1,
        Some(Duration::ZERO),
    );
    ours(
        "1 session, its daily refresh falls due in the hour",
        1,
        Some(DAY - HOUR / 2),
    );
    ours("100 sessions x 10 requests, steady state", 100, None);
    ours("1000 sessions x 1 request, steady state", 1000, None);
    reference("1 session (reference pattern)", 1);
    reference("1000 sessions x 1 request (reference pattern)", 1000);
}
