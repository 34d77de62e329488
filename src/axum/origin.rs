//! [`SameOriginLayer`]: the same-origin rule of state-changing requests
//! ([`SameOrigin`]) around a router, for both session front ends (tower-sessions and
//! [`TypedSessionLayer`](super::TypedSessionLayer)) alike.

use std::{
    future::Future,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
};

use axum_core::body::Body;
use http::{Request, Response};
use tower_layer::Layer;
use tower_service::Service;

use super::http_parts::{owned_parts, to_http_response};
use crate::session::SameOrigin;

/// Refuses, with 403, every state-changing request a browser sent from another origin (a
/// cross-site form post: login CSRF, a forced logout) before it reaches the router; see
/// [`SameOrigin`] for the rule. Put it outermost, so no route is left out:
///
/// ```
/// # use axum::{routing::post, Router};
/// use kv_envelope::{axum::SameOriginLayer, session::SameOrigin};
/// let app: Router = Router::new()
///     .route("/login", post(|| async { "logged in" }))
///     .layer(SameOriginLayer::new(SameOrigin::new()));
/// ```
#[derive(Debug, Clone)]
pub struct SameOriginLayer {
    rule: Arc<SameOrigin>,
}

impl SameOriginLayer {
    /// A layer applying `rule`.
    pub fn new(rule: SameOrigin) -> Self {
        Self {
            rule: Arc::new(rule),
        }
    }
}

impl<S> Layer<S> for SameOriginLayer {
    type Service = SameOriginService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        SameOriginService {
            inner,
            rule: self.rule.clone(),
        }
    }
}

/// The service [`SameOriginLayer`] wraps around `S`.
#[derive(Debug, Clone)]
pub struct SameOriginService<S> {
    inner: S,
    rule: Arc<SameOrigin>,
}

impl<S, B> Service<Request<B>> for SameOriginService<S>
where
    S: Service<Request<B>, Response = Response<Body>>,
    S::Future: Send + 'static,
{
    type Response = Response<Body>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Response<Body>, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let (parts, body) = req.into_parts();
        let verdict = self.rule.check(&owned_parts(&parts).parts());
        match verdict {
            Ok(()) => Box::pin(self.inner.call(Request::from_parts(parts, body))),
            Err(refused) => {
                let response = to_http_response(&refused.response());
                Box::pin(async move { Ok(response) })
            }
        }
    }
}
