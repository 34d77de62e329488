//! Work that outlives the request: sliding-expiration writes, stale-while-revalidate refreshes.
//!
//! On Workers this is `Context::wait_until` (the isolate stays alive until the future ends, and
//! the response is not delayed). Natively it is a spawned task or, in tests, a queue the test
//! drains by hand so the order of events is deterministic.

#[doc(inline)]
pub use crate::send::BoxFuture;
use crate::send::MaybeSendSync;
#[cfg(feature = "testing")]
use std::sync::Mutex;

/// Somewhere to run futures after the response.
pub trait Background: MaybeSendSync {
    /// Run `fut` to completion in the background.
    fn spawn(&self, fut: BoxFuture);
}

// Shared and borrowed backgrounds: a test keeps an `Arc<Deferred>` to drain it, and a Workers
// handler lends `&WaitUntil(&ctx)` to a request-scoped store.
impl<B: Background + ?Sized> Background for std::sync::Arc<B> {
    fn spawn(&self, fut: BoxFuture) {
        (**self).spawn(fut);
    }
}

impl<B: Background + ?Sized> Background for &B {
    fn spawn(&self, fut: BoxFuture) {
        (**self).spawn(fut);
    }
}

/// Runs each future on its own thread with a small blocking executor. Runtime-agnostic; fine
/// for tests and tools (native only, feature `testing`).
#[cfg(all(feature = "testing", not(target_arch = "wasm32")))]
#[derive(Debug, Default, Clone, Copy)]
pub struct ThreadSpawner;

#[cfg(all(feature = "testing", not(target_arch = "wasm32")))]
impl Background for ThreadSpawner {
    fn spawn(&self, fut: BoxFuture) {
        std::thread::spawn(move || futures::executor::block_on(fut));
    }
}

/// Queues futures until [`Deferred::run_all`] is awaited: deterministic tests (feature
/// `testing`).
#[cfg(feature = "testing")]
#[derive(Default)]
pub struct Deferred {
    queue: Mutex<Vec<BoxFuture>>,
}

#[cfg(feature = "testing")]
impl std::fmt::Debug for Deferred {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Deferred")
            .field("pending", &self.pending())
            .finish()
    }
}

#[cfg(feature = "testing")]
impl Deferred {
    /// An empty queue.
    pub fn new() -> Self {
        Self::default()
    }

    /// How many futures wait.
    pub fn pending(&self) -> usize {
        self.queue.lock().map_or(0, |q| q.len())
    }

    /// Run every queued future (and any they queue) to completion, in order.
    pub async fn run_all(&self) {
        loop {
            let batch: Vec<BoxFuture> = match self.queue.lock() {
                Ok(mut q) => std::mem::take(&mut *q),
                Err(_) => return,
            };
            if batch.is_empty() {
                return;
            }
            for fut in batch {
                fut.await;
            }
        }
    }
}

#[cfg(feature = "testing")]
impl Background for Deferred {
    fn spawn(&self, fut: BoxFuture) {
        if let Ok(mut q) = self.queue.lock() {
            q.push(fut);
        }
    }
}

/// `Context::wait_until` on Workers.
#[cfg(all(feature = "worker", target_arch = "wasm32"))]
pub struct WaitUntil<'a>(pub &'a worker::Context);

#[cfg(all(feature = "worker", target_arch = "wasm32"))]
impl Background for WaitUntil<'_> {
    fn spawn(&self, fut: BoxFuture) {
        self.0.wait_until(fut);
    }
}

/// Runs the future with `wasm_bindgen_futures::spawn_local` (Workers, outside a request's
/// `Context`; prefer [`WaitUntil`] inside one).
#[cfg(all(feature = "worker", target_arch = "wasm32"))]
#[derive(Debug, Default, Clone, Copy)]
pub struct SpawnLocal;

#[cfg(all(feature = "worker", target_arch = "wasm32"))]
impl Background for SpawnLocal {
    fn spawn(&self, fut: BoxFuture) {
        wasm_bindgen_futures::spawn_local(fut);
    }
}
