//! [`TypedSessionLayer`]: the gate around an axum router (or any tower service of `http`
//! requests).

use std::{
    fmt,
    future::Future,
    pin::Pin,
    sync::{Arc, Mutex},
    task::{Context, Poll},
};

use axum_core::body::Body;
use http::{Request, Response};
use tower_layer::Layer;
use tower_service::Service;

use super::{
    extract::SessionState,
    http_parts::{append_set_cookie, owned_parts, set_cookies_of},
};
use crate::{
    background::{Background, BoxFuture},
    send::{send_cell, send_future, SendCell},
    session::{DenyCause, Lookup, OwnedRequestParts, SessionData, SessionGate},
};

/// Resolves the request's session with a [`SessionGate`] before the handler (one KV read) and
/// puts a [`SessionState`] into the request's extensions for the extractors; after the handler,
/// settles what the gate's `finish` decides — the due refresh and its extended cookie, or the
/// cookie clearing a dead session — unless the handler set the session cookie itself (login,
/// rotation, logout).
///
/// The refresh is due about once a day per session (the store's write budget) and is awaited
/// before the response is returned, so no background runner is needed on either platform.
/// On wasm32 the gate's futures cross tower's `Send` bound through the crate's one `Send` story
/// (`worker::send` wrappers; a Workers isolate is single-threaded).
pub struct TypedSessionLayer<D: SessionData> {
    gate: Arc<SendCell<SessionGate<D>>>,
}

impl<D: SessionData> TypedSessionLayer<D> {
    /// A layer deciding with `gate` (its store, cookie rules, login path and API prefixes).
    pub fn new(gate: SessionGate<D>) -> Self {
        Self {
            gate: Arc::new(send_cell(gate)),
        }
    }
}

impl<D: SessionData> Clone for TypedSessionLayer<D> {
    fn clone(&self) -> Self {
        Self {
            gate: self.gate.clone(),
        }
    }
}

impl<D: SessionData> fmt::Debug for TypedSessionLayer<D> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TypedSessionLayer").finish_non_exhaustive()
    }
}

impl<S, D: SessionData> Layer<S> for TypedSessionLayer<D> {
    type Service = TypedSessionService<S, D>;

    fn layer(&self, inner: S) -> Self::Service {
        TypedSessionService {
            inner,
            gate: self.gate.clone(),
        }
    }
}

/// The service [`TypedSessionLayer`] wraps around `S`.
pub struct TypedSessionService<S, D: SessionData> {
    inner: S,
    gate: Arc<SendCell<SessionGate<D>>>,
}

impl<S: Clone, D: SessionData> Clone for TypedSessionService<S, D> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            gate: self.gate.clone(),
        }
    }
}

impl<S, D: SessionData> fmt::Debug for TypedSessionService<S, D> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TypedSessionService")
            .finish_non_exhaustive()
    }
}

impl<S, D, B> Service<Request<B>> for TypedSessionService<S, D>
where
    S: Service<Request<B>, Response = Response<Body>> + Clone + Send + 'static,
    S::Future: Send,
    D: SessionData + Send + Sync,
    B: Send + 'static,
{
    type Response = Response<Body>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Response<Body>, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        // The clone that was polled ready serves this request (tower's usual swap).
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let gate = self.gate.clone();
        Box::pin(async move {
            let (mut parts, body) = req.into_parts();
            let owned = owned_parts(&parts);
            let (state, ticket) = {
                let (gate, owned) = (&gate, &owned);
                send_future(async move { admit(gate, owned).await }).await
            };
            parts.extensions.insert(state.clone());
            let mut response = inner.call(Request::from_parts(parts, body)).await?;
            let set_cookies = set_cookies_of(&response);
            let cookie = match (state, ticket) {
                (SessionState::Admitted(_), Some(ticket)) => {
                    // The refresh's futures are Workers futures: all of it inside the boundary.
                    let (gate, set_cookies) = (&gate, &set_cookies);
                    send_future(async move {
                        let refresh = Inline::default();
                        let cookie =
                            gate.finish(ticket, set_cookies.iter().map(String::as_str), &refresh);
                        refresh.run().await;
                        cookie
                    })
                    .await
                }
                (SessionState::None { reason, .. }, _) => {
                    gate.finish_without_session(&reason, set_cookies.iter().map(String::as_str))
                }
                _ => None,
            };
            if let Some(cookie) = cookie {
                append_set_cookie(&mut response, &cookie);
            }
            Ok(response)
        })
    }
}

/// The gate's verdict as the extractors' state, with the refresh ticket of an admitted request.
async fn admit<D: SessionData>(
    gate: &SessionGate<D>,
    owned: &OwnedRequestParts,
) -> (SessionState<D>, Option<crate::session::RefreshTicket>) {
    let parts = owned.parts();
    match gate.admit(&parts).await {
        Ok(Lookup::Found(admitted)) => {
            let ticket = admitted.ticket();
            (SessionState::Admitted(admitted), Some(ticket))
        }
        Ok(Lookup::NoSession(reason)) => {
            let deny = gate
                .deny(&parts, DenyCause::NoSession(reason.clone()))
                .response;
            (SessionState::None { reason, deny }, None)
        }
        Err(e) => {
            let deny = gate.deny(&parts, DenyCause::Unavailable(e)).response;
            (SessionState::Unavailable { deny }, None)
        }
    }
}

/// Runs what the gate hands to the background right here, before the response: the refresh
/// it starts is due about once a day per session.
#[derive(Default)]
struct Inline(Mutex<Vec<BoxFuture>>);

impl Background for Inline {
    fn spawn(&self, fut: BoxFuture) {
        if let Ok(mut queue) = self.0.lock() {
            queue.push(fut);
        }
    }
}

impl Inline {
    async fn run(self) {
        for fut in self.0.into_inner().unwrap_or_default() {
            fut.await;
        }
    }
}
