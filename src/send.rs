//! The one `Send` story. Natively (tests, the CLI, native servers) the stores are shared across
//! threads, so their handles and futures must be `Send`/`Sync`. On wasm32 a Workers isolate is
//! single-threaded: its JS handles (`KvStore`, promises) are neither `Send` nor `Sync`, and
//! nothing can move between threads anyway, so the bounds disappear there. Every trait and
//! future type of the crate uses these markers instead of its own cfg pair; what a worker needs
//! to hand a future to `Send`-requiring code (tower, axum) is the `worker` crate's
//! `SendWrapper`/`SendFuture`, applied where that boundary is crossed.

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
