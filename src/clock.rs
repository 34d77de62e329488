//! Time, behind a seam: `SystemTime::now()` panics on `wasm32-unknown-unknown`, and tests need
//! to move time by hand.

use std::sync::{
    atomic::{AtomicU64, Ordering},
    Arc,
};

use crate::send::BoxFuture;

/// A source of wall-clock time in milliseconds since the Unix epoch, and a way to wait on it.
pub trait Clock: Send + Sync {
    /// Milliseconds since 1970-01-01T00:00:00Z.
    fn now_ms(&self) -> u64;

    /// A future that completes `ms` milliseconds from now on this clock. The default waits in
    /// real time: a JavaScript timer on Workers (wasm32 with feature `worker`), a timer thread
    /// natively; on wasm32 without `worker` there is no timer and it completes at once.
    /// [`ManualClock`] moves its own time instead, so tests never sleep.
    fn sleep(&self, ms: u64) -> BoxFuture {
        platform_sleep(ms)
    }

    /// Which timeline this clock keeps: equal for clocks that tell the same time (every system
    /// clock: 0), distinct for each [`ManualClock`] and its clones. Isolate-wide memory of
    /// times (write pacing) is kept per timeline, so tests on manual clocks do not see each
    /// other's times.
    #[doc(hidden)]
    fn timeline(&self) -> usize {
        0
    }
}

/// The platform clock: `Date.now()` on wasm32 (Workers), `SystemTime` natively.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    #[cfg(target_arch = "wasm32")]
    fn now_ms(&self) -> u64 {
        let ms = js_sys::Date::now();
        if ms.is_finite() && ms > 0.0 {
            ms as u64
        } else {
            0
        }
    }

    #[cfg(not(target_arch = "wasm32"))]
    fn now_ms(&self) -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    }
}

/// A clock that only moves when told to. Clones share the same time.
#[derive(Debug, Clone, Default)]
pub struct ManualClock {
    now: Arc<AtomicU64>,
}

impl ManualClock {
    /// A clock set to `now_ms`.
    pub fn new(now_ms: u64) -> Self {
        Self {
            now: Arc::new(AtomicU64::new(now_ms)),
        }
    }

    /// Set the time.
    pub fn set(&self, now_ms: u64) {
        self.now.store(now_ms, Ordering::SeqCst);
    }

    /// Move time forward.
    pub fn advance(&self, by: std::time::Duration) {
        let ms = u64::try_from(by.as_millis()).unwrap_or(u64::MAX);
        self.now.fetch_add(ms, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> u64 {
        self.now.load(Ordering::SeqCst)
    }

    /// Moves the clock forward by `ms` and completes at once.
    fn sleep(&self, ms: u64) -> BoxFuture {
        self.now.fetch_add(ms, Ordering::SeqCst);
        Box::pin(std::future::ready(()))
    }

    fn timeline(&self) -> usize {
        Arc::as_ptr(&self.now) as usize
    }
}

/// Wait `ms` in real time on Workers: a JavaScript timer.
#[cfg(all(target_arch = "wasm32", feature = "worker"))]
fn platform_sleep(ms: u64) -> BoxFuture {
    Box::pin(worker::Delay::from(std::time::Duration::from_millis(ms)))
}

/// No timer on wasm32 without the `worker` crate: complete at once.
#[cfg(all(target_arch = "wasm32", not(feature = "worker")))]
fn platform_sleep(_ms: u64) -> BoxFuture {
    Box::pin(std::future::ready(()))
}

/// Wait `ms` in real time natively, on a timer thread (no async runtime is assumed): the
/// future wakes its task once the thread has slept.
#[cfg(not(target_arch = "wasm32"))]
fn platform_sleep(ms: u64) -> BoxFuture {
    use std::{
        sync::Mutex,
        task::{Poll, Waker},
    };

    #[derive(Default)]
    struct State {
        done: bool,
        waker: Option<Waker>,
    }
    let state = Arc::new(Mutex::new(State::default()));
    let timer = state.clone();
    std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_millis(ms));
        let mut s = timer
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        s.done = true;
        if let Some(w) = s.waker.take() {
            w.wake();
        }
    });
    Box::pin(std::future::poll_fn(move |cx| {
        let mut s = state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if s.done {
            Poll::Ready(())
        } else {
            s.waker = Some(cx.waker().clone());
            Poll::Pending
        }
    }))
}

/// Shared clock handle used by stores and backends.
pub type SharedClock = Arc<dyn Clock>;

/// The default shared clock ([`SystemClock`]).
pub fn system_clock() -> SharedClock {
    Arc::new(SystemClock)
}
