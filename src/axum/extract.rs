//! The extractors: what [`TypedSessionLayer`](super::TypedSessionLayer) found, handed to the
//! handler.

use axum_core::{
    body::Body,
    extract::{FromRequestParts, OptionalFromRequestParts},
    response::{IntoResponse, Response},
};
use http::{request::Parts, StatusCode};

use super::http_parts::to_http_response;
use crate::session::{CurrentSession, NoSession, PlainResponse, SessionData};

/// What the layer put into the request's extensions.
#[derive(Debug, Clone)]
pub enum SessionState<D> {
    /// A valid session.
    Admitted(CurrentSession<D>),
    /// No usable session: why, and the gate's answer for it (302 to the login page or 401
    /// JSON), which [`TypedSession`] rejects with.
    None {
        /// Why there is no session.
        reason: NoSession,
        /// The gate's response for a request that needs a session.
        deny: PlainResponse,
    },
    /// KV failed: both extractors reject with the gate's 503 (an outage is never a logout).
    Unavailable {
        /// The gate's 503 response.
        deny: PlainResponse,
    },
}

/// The request's session, typed. As an extractor it rejects requests without one with the
/// gate's response; `Option<TypedSession<D>>` gives `None` instead.
#[derive(Debug, Clone)]
pub struct TypedSession<D>(pub CurrentSession<D>);

/// Why [`TypedSession`] could not be extracted: the gate's answer for a request without a
/// session, or a router without [`TypedSessionLayer`](super::TypedSessionLayer) (500).
#[derive(Debug, Clone)]
pub struct TypedSessionRejection(Option<PlainResponse>);

impl IntoResponse for TypedSessionRejection {
    fn into_response(self) -> Response {
        match self.0 {
            Some(plain) => to_http_response(&plain),
            None => {
                let mut response = Response::new(Body::from("session layer missing"));
                *response.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
                response
            }
        }
    }
}

impl<S: Send + Sync, D: SessionData + Send + Sync> FromRequestParts<S> for TypedSession<D> {
    type Rejection = TypedSessionRejection;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        match parts.extensions.get::<SessionState<D>>() {
            Some(SessionState::Admitted(admitted)) => Ok(TypedSession(admitted.clone())),
            Some(SessionState::None { deny, .. } | SessionState::Unavailable { deny }) => {
                Err(TypedSessionRejection(Some(deny.clone())))
            }
            None => Err(TypedSessionRejection(None)),
        }
    }
}

impl<S: Send + Sync, D: SessionData + Send + Sync> OptionalFromRequestParts<S> for TypedSession<D> {
    type Rejection = TypedSessionRejection;

    async fn from_request_parts(
        parts: &mut Parts,
        _state: &S,
    ) -> Result<Option<Self>, Self::Rejection> {
        match parts.extensions.get::<SessionState<D>>() {
            Some(SessionState::Admitted(admitted)) => Ok(Some(TypedSession(admitted.clone()))),
            Some(SessionState::None { .. }) => Ok(None),
            Some(SessionState::Unavailable { deny }) => {
                Err(TypedSessionRejection(Some(deny.clone())))
            }
            None => Err(TypedSessionRejection(None)),
        }
    }
}
