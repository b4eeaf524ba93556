//! The one place where errors become HTTP statuses.
//!
//! Every error response has the body `{"error":{"code":"…","message":"…"}}`.

use std::time::Duration;

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// An API failure, by what the client should do about it.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The request is malformed (bad parameter, bad body); fix it and retry.
    #[error("{0}")]
    BadRequest(String),
    /// The search query does not parse.
    #[error("{0}")]
    BadQuery(String),
    /// No usable API token (`invalid_token`: one was sent but is not valid); answered with
    /// `WWW-Authenticate: Bearer`.
    #[error("{message}")]
    Unauthorized {
        message: String,
        invalid_token: bool,
    },
    /// The token's role does not allow the route.
    #[error("{0}")]
    Forbidden(String),
    /// The token is over its request rate; retry after the given delay.
    #[error("token `{token}` is over its rate limit; retry after {} s", retry_after.as_secs().max(1))]
    RateLimited {
        retry_after: Duration,
        token: String,
    },
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    MethodNotAllowed(String),
    /// The body (or its decompressed form) is over a limit.
    #[error("{0}")]
    PayloadTooLarge(String),
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// The request body did not arrive within the body deadline.
    #[error("{0}")]
    RequestTimeout(String),
    /// The pipeline is full; retry after the given delay.
    #[error("the pipeline is full; retry after {} s", retry_after.as_secs())]
    Throttled { retry_after: Duration },
    /// Not ready, or shutting down.
    #[error("{0}")]
    Unavailable(String),
    /// Storage cannot take the request now (the WAL's disk is full, an I/O error); retry after
    /// the given delay.
    #[error("{message}")]
    StorageUnavailable {
        message: String,
        retry_after: Duration,
    },
    #[error("{0}")]
    Internal(String),
}

impl ApiError {
    fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            ApiError::BadRequest(_) => (StatusCode::BAD_REQUEST, "bad_request"),
            ApiError::BadQuery(_) => (StatusCode::BAD_REQUEST, "bad_query"),
            ApiError::Unauthorized { .. } => (StatusCode::UNAUTHORIZED, "unauthorized"),
            ApiError::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden"),
            ApiError::RateLimited { .. } => (StatusCode::TOO_MANY_REQUESTS, "rate_limited"),
            ApiError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            ApiError::MethodNotAllowed(_) => (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"),
            ApiError::PayloadTooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"),
            ApiError::UnsupportedMediaType(_) => {
                (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type")
            }
            ApiError::RequestTimeout(_) => (StatusCode::REQUEST_TIMEOUT, "request_timeout"),
            ApiError::Throttled { .. } => (StatusCode::TOO_MANY_REQUESTS, "throttled"),
            ApiError::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
            ApiError::StorageUnavailable { .. } => {
                (StatusCode::SERVICE_UNAVAILABLE, "storage_unavailable")
            }
            ApiError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        }
    }
}

impl ApiError {
    /// The `WWW-Authenticate` challenge of a 401.
    pub(crate) fn challenge(&self) -> Option<&'static str> {
        match self {
            ApiError::Unauthorized {
                invalid_token: true,
                ..
            } => Some(r#"Bearer realm="cairn", error="invalid_token""#),
            ApiError::Unauthorized { .. } => Some(r#"Bearer realm="cairn""#),
            _ => None,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        if status.is_server_error() {
            tracing::error!(error = %self, "request failed");
        }
        let body = Json(json!({"error": {"code": code, "message": self.to_string()}}));
        let mut response = (status, body).into_response();
        if let Some(challenge) = self.challenge() {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static(challenge),
            );
        }
        let retry_after = match self {
            ApiError::Throttled { retry_after }
            | ApiError::RateLimited { retry_after, .. }
            | ApiError::StorageUnavailable { retry_after, .. } => Some(retry_after),
            _ => None,
        };
        if let Some(retry_after) = retry_after
            && let Ok(value) = HeaderValue::from_str(&retry_after.as_secs().max(1).to_string())
        {
            response.headers_mut().insert(header::RETRY_AFTER, value);
        }
        response
    }
}

impl From<cairn_index::IndexError> for ApiError {
    fn from(error: cairn_index::IndexError) -> ApiError {
        match error {
            cairn_index::IndexError::BadQuery(message) => ApiError::BadQuery(message),
            unavailable @ (cairn_index::IndexError::Corruption { .. }
            | cairn_index::IndexError::Unavailable(_)) => {
                ApiError::Unavailable(unavailable.to_string())
            }
            other => ApiError::Internal(other.to_string()),
        }
    }
}
