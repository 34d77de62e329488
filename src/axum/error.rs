//! The crate's [`Error`] as an axum response, by the crate's one mapping
//! ([`Error::http_status`], [`PlainResponse::for_error`]): handlers can return
//! `Result<_, kv_envelope::Error>` and use `?`.

use axum_core::response::{IntoResponse, Response};

use super::http_parts::to_http_response;
use crate::{error::Error, session::PlainResponse};

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        to_http_response(&PlainResponse::for_error(&self))
    }
}
