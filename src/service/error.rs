//! The one error type of the HTTP layer: each variant is a status code and a JSON body
//! `{"error": {"code", "message"}}` whose message names the offending field.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400: the request is malformed or invalid; the message names the field.
    #[error("{0}")]
    Invalid(String),
    /// 413: body or candidate count over the limit.
    #[error("{0}")]
    TooLarge(String),
    /// 415: not JSON.
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// 503: no model serving yet, or shutting down.
    #[error("{0}")]
    NotReady(String),
    /// 503: too many requests in flight (load shedding).
    #[error("{0}")]
    Overloaded(String),
    /// 504: the request deadline passed.
    #[error("{0}")]
    DeadlineExceeded(String),
    /// 500: a fault of ours; the details are logged, not shown.
    #[error("internal error")]
    Internal(String),
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::Invalid(_) => StatusCode::BAD_REQUEST,
            ApiError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::NotReady(_) | ApiError::Overloaded(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::DeadlineExceeded(_) => StatusCode::GATEWAY_TIMEOUT,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The machine-readable `error.code`.
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::Invalid(_) => "invalid_request",
            ApiError::TooLarge(_) => "too_large",
            ApiError::UnsupportedMediaType(_) => "unsupported_media_type",
            ApiError::NotReady(_) => "not_ready",
            ApiError::Overloaded(_) => "overloaded",
            ApiError::DeadlineExceeded(_) => "deadline_exceeded",
            ApiError::Internal(_) => "internal",
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let ApiError::Internal(detail) = &self {
            tracing::error!(%detail, "internal error");
        }
        let body = json!({"error": {"code": self.code(), "message": self.to_string()}});
        let mut response = (self.status(), Json(body)).into_response();
        if matches!(self, ApiError::NotReady(_) | ApiError::Overloaded(_)) {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        response
    }
}
