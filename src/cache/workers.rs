//! Workers (wasm32 + feature `worker`): awaiting a future that another request may wake,
//! within workerd's rules.
//!
//! Single-flight lets a request wait for a computation that *another* request runs. On workerd
//! a plain `.await` on that shared result fails in two ways (both seen on real workerd with 20
//! concurrent misses):
//!
//! 1. The waiting request has nothing of its own pending (it awaits an in-memory channel), so
//!    workerd cancels it as hung: "The Workers runtime canceled this request because it
//!    detected that your Worker's code had hung" (500).
//! 2. The computing request's `send` calls the waiter's waker from the *computing* request's
//!    context; wasm-bindgen-futures then polls the waiter right there, and the waiter goes on
//!    to do its I/O and build its response in the wrong context: "Cannot perform I/O on behalf
//!    of a different request" (500).
//!
//! [`in_own_context`] polls the future with a waker that only resolves a JS promise created in
//! the waiting request. With the `handle_cross_request_promise_resolution` compatibility
//! behaviour (default since 2024-10-14) workerd runs that promise's continuation in the request
//! that created it, so the future is always polled in its own request. A one-second timer
//! stays pending meanwhile, so the request is never considered hung.
//!
//! [`KvCache::try_get_or_compute`](super::KvCache::try_get_or_compute) applies it to its
//! coalesced waits by itself; use it for your own cross-request waits (a future that another
//! request completes: a shared channel, `Shared`, a notify).

use std::{
    cell::{Cell, RefCell},
    collections::HashMap,
    future::Future,
    pin::pin,
    sync::Arc,
    task::{Context, Poll, Wake, Waker},
    time::Duration,
};

use futures::future::select;
use js_sys::{wasm_bindgen::JsValue, Function, Promise};
use wasm_bindgen_futures::JsFuture;
use worker::Delay;

thread_local! {
    /// `resolve` functions of the promises waiting to be woken, by waker id. Wakers must be
    /// `Send + Sync`; JS functions are not, so wakers carry an id (wasm32 has one thread).
    static RESOLVERS: RefCell<HashMap<u64, Function>> = RefCell::new(HashMap::new());
    static NEXT_ID: Cell<u64> = const { Cell::new(0) };
}

/// Keeps a waiting request alive (and never "hung") while it waits.
const KEEP_ALIVE: Duration = Duration::from_secs(1);

/// A waker that resolves the promise registered under its id (a no-op once it was resolved
/// or its wait ended).
struct HopWaker(u64);

impl Wake for HopWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        let resolve = RESOLVERS
            .try_with(|r| r.borrow_mut().remove(&self.0))
            .ok()
            .flatten();
        if let Some(resolve) = resolve {
            // Resolving never throws; the continuation runs in the creating request's context.
            let _ = resolve.call0(&JsValue::UNDEFINED);
        }
    }
}

/// One registered `resolve`; unregistered when dropped (also when the waiting request is
/// cancelled mid-wait), so the table never keeps dead requests' functions.
struct Registration(u64);

impl Registration {
    /// A fresh id and a promise that its [`HopWaker`] resolves.
    fn new() -> (Self, Promise) {
        let id = NEXT_ID.with(|n| {
            let id = n.get();
            n.set(id.wrapping_add(1));
            id
        });
        let mut resolver = None;
        let woken = Promise::new(&mut |resolve, _reject| resolver = Some(resolve));
        if let Some(resolve) = resolver {
            RESOLVERS.with(|r| r.borrow_mut().insert(id, resolve));
        }
        (Self(id), woken)
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        let _ = RESOLVERS.try_with(|r| r.borrow_mut().remove(&self.0));
    }
}

/// Await `fut`, polling it only from the current request's context, with a timer pending so
/// workerd never cancels the request as hung (see the module docs). Use it around any future
/// that another request may complete; the cache already uses it for coalesced waits.
///
/// Costs one promise per poll of `fut` and one timer per wait; a future that is ready at once
/// costs one promise.
pub async fn in_own_context<F: Future>(fut: F) -> F::Output {
    let mut fut = pin!(fut);
    loop {
        let (registration, woken) = Registration::new();
        let waker = Waker::from(Arc::new(HopWaker(registration.0)));
        if let Poll::Ready(out) = fut.as_mut().poll(&mut Context::from_waker(&waker)) {
            return out;
        }
        let woken = pin!(JsFuture::from(woken));
        let tick = pin!(Delay::from(KEEP_ALIVE));
        // Either way, poll again: a tick just re-polls (futures tolerate spurious polls).
        let _ = select(woken, tick).await;
        drop(registration);
    }
}
