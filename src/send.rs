//! The one `Send` story. Natively (tests, the CLI, native servers) the stores are shared across
//! threads, so their handles and futures must be `Send`/`Sync`. On wasm32 a Workers isolate is
//! single-threaded: its JS handles (`KvStore`, promises) are neither `Send` nor `Sync`, and
//! nothing can move between threads anyway, so the bounds disappear there. Every trait and
//! future type of the crate uses these markers instead of its own cfg pair; what a worker needs
//! to hand a future to `Send`-requiring code (tower, axum) is the `worker` crate's
//! `SendWrapper`/`SendFuture`, applied where that boundary is crossed: [`SendCell`] and
//! [`send_future`] below, which the tower-sessions adapter uses.

use std::{future::Future, pin::Pin};

/// `Send + Sync` natively, nothing on wasm32 (Workers' JS handles are neither).
#[cfg(not(target_arch = "wasm32"))]
pub trait MaybeSendSync: Send + Sync {}
#[cfg(not(target_arch = "wasm32"))]
impl<T: Send + Sync + ?Sized> MaybeSendSync for T {}
/// `Send + Sync` natively, nothing on wasm32 (Workers' JS handles are neither).
#[cfg(target_arch = "wasm32")]
pub trait MaybeSendSync {}
#[cfg(target_arch = "wasm32")]
impl<T: ?Sized> MaybeSendSync for T {}

/// `Send` natively, nothing on wasm32 (Workers futures and JS handles are not `Send`).
#[cfg(not(target_arch = "wasm32"))]
pub trait MaybeSend: Send {}
#[cfg(not(target_arch = "wasm32"))]
impl<T: Send + ?Sized> MaybeSend for T {}
/// `Send` natively, nothing on wasm32 (Workers futures and JS handles are not `Send`).
#[cfg(target_arch = "wasm32")]
pub trait MaybeSend {}
#[cfg(target_arch = "wasm32")]
impl<T: ?Sized> MaybeSend for T {}

/// A boxed background future: `Send` natively, not on wasm32.
#[cfg(not(target_arch = "wasm32"))]
pub type BoxFuture = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;
/// A boxed background future: `Send` natively, not on wasm32.
#[cfg(target_arch = "wasm32")]
pub type BoxFuture = Pin<Box<dyn Future<Output = ()> + 'static>>;

/// A value handed to code that requires `Send + Sync` (tower's `SessionStore` bound): the value
/// itself natively, where the crate's handles are `Send + Sync` already.
#[cfg(not(target_arch = "wasm32"))]
#[cfg(feature = "tower-sessions")]
pub(crate) type SendCell<T> = T;
/// A value handed to code that requires `Send + Sync` (tower's `SessionStore` bound): on wasm32
/// the `worker` crate's `SendWrapper`. Sound because a Workers isolate runs one thread: the
/// value can never actually be reached from another thread, so the marker promises nothing
/// that could be broken.
#[cfg(all(target_arch = "wasm32", feature = "worker"))]
#[cfg(feature = "tower-sessions")]
pub(crate) type SendCell<T> = worker::send::SendWrapper<T>;

/// Wrap `value` for a `Send + Sync` boundary ([`SendCell`]).
#[cfg(not(target_arch = "wasm32"))]
#[cfg(feature = "tower-sessions")]
pub(crate) fn send_cell<T: Send + Sync>(value: T) -> SendCell<T> {
    value
}
/// Wrap `value` for a `Send + Sync` boundary ([`SendCell`]).
#[cfg(all(target_arch = "wasm32", feature = "worker"))]
#[cfg(feature = "tower-sessions")]
pub(crate) fn send_cell<T>(value: T) -> SendCell<T> {
    worker::send::SendWrapper::new(value)
}

/// A future handed to code that requires `Send` futures (tower, axum): the future itself
/// natively, where it is `Send` already (the bound checks it).
#[cfg(not(target_arch = "wasm32"))]
#[cfg(feature = "tower-sessions")]
pub(crate) fn send_future<F: Future + Send>(future: F) -> F {
    future
}
/// A future handed to code that requires `Send` futures (tower, axum): on wasm32 the `worker`
/// crate's `SendFuture`, because the futures of the Workers runtime hold JS promises, which are
/// not `Send`. Sound for the same reason as [`SendCell`]: the isolate is single-threaded, the
/// future is polled on the thread that made it, and no other thread exists to move it to.
#[cfg(all(target_arch = "wasm32", feature = "worker"))]
#[cfg(feature = "tower-sessions")]
pub(crate) fn send_future<F: Future>(future: F) -> worker::send::SendFuture<F> {
    worker::send::SendFuture::new(future)
}
