//! Awaiting a future that another request may wake, without breaking workerd's rules.
//!
//! The cache's single-flight lets a request wait for a computation that *another* request runs.
//! On workerd that fails in two ways unless the waiter is careful (both seen in the e2e test with
//! 20 concurrent misses, before this module existed):
//!
//! 1. The waiter has nothing of its own pending (it awaits an in-memory channel), so workerd
//!    cancels it as hung: "The Workers runtime canceled this request because it detected that
//!    your Worker's code had hung" (500).
//! 2. The leader's `send` calls the waiter's waker from the *leader's* request context;
//!    wasm-bindgen-futures then polls the waiter right there, and the waiter builds its
//!    response in the wrong context: "Cannot perform I/O on behalf of a different request"
//!    (500).
//!
//! [`in_own_context`] polls the future with a waker that only resolves a JS promise created in
//! this request's context. With the `handle_cross_request_promise_resolution` compatibility
//! behaviour (default since 2024-10-14) workerd runs that promise's continuation in the request
//! that created it, so the future is always polled in its own request. A one-second timer stays
//! pending meanwhile, so the request is never considered hung.

use std::{
    cell::{Cell, RefCell},
    collections::HashMap,
    future::Future,
    pin::pin,
    sync::Arc,
    task::{Context, Poll, Wake, Waker},
    time::Duration,
};

use futures_util::future::select;
use js_sys::{Function, Promise};
use wasm_bindgen::JsValue;
use wasm_bindgen_futures::JsFuture;
use worker::Delay;

thread_local! {
    /// `resolve` functions of the promises waiting to be woken, by waker id. Wakers must be
    /// `Send + Sync`; JS functions are not, so wakers carry an id (wasm32 has one thread).
    static RESOLVERS: RefCell<HashMap<u64, Function>> = RefCell::new(HashMap::new());
    static NEXT_ID: Cell<u64> = const { Cell::new(0) };
}

/// Keeps a request alive (and never hung) while it waits.
const KEEP_ALIVE: Duration = Duration::from_secs(1);

struct HopWaker(u64);

impl Wake for HopWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        let resolve = RESOLVERS.with(|r| r.borrow_mut().remove(&self.0));
        if let Some(resolve) = resolve {
            // Resolving never throws; the continuation runs in the creating request's context.
            let _ = resolve.call0(&JsValue::UNDEFINED);
        }
    }
}

/// Await `fut`, polling it only from the current request's context (see the module docs).
pub async fn in_own_context<F: Future>(fut: F) -> F::Output {
    let mut fut = pin!(fut);
    loop {
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
        let waker = Waker::from(Arc::new(HopWaker(id)));
        if let Poll::Ready(out) = fut.as_mut().poll(&mut Context::from_waker(&waker)) {
            RESOLVERS.with(|r| r.borrow_mut().remove(&id));
            return out;
        }
        let woken = pin!(JsFuture::from(woken));
        let tick = pin!(Delay::from(KEEP_ALIVE));
        // Either way, poll again: a tick just re-polls (futures tolerate spurious polls).
        let _ = select(woken, tick).await;
        RESOLVERS.with(|r| r.borrow_mut().remove(&id));
    }
}
