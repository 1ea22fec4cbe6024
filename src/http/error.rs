//! The HTTP edge of errors: the core's [`RankError`] and the few errors only HTTP has,
//! each a status code and a JSON body `{"error": {"code", "message"}}` whose message names
//! the offending field. 5xx details are logged, never shown.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;

use crate::ranker::RankError;

/// The body of every error answer.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorDetail {
    /// Machine-readable: `invalid_request`, `too_large`, `unsupported_media_type`,
    /// `body_timeout`, `not_ready`, `overloaded`, `deadline_exceeded`, `internal`, …
    pub code: String,
    /// For people: names the offending field (`candidates[3].values`).
    pub message: String,
}

impl ErrorBody {
    pub fn new(code: &str, message: &str) -> Self {
        Self {
            error: ErrorDetail {
                code: code.to_owned(),
                message: message.to_owned(),
            },
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// Whatever the core refused.
    #[error(transparent)]
    Rank(#[from] RankError),
    /// 415: neither JSON nor protobuf.
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// 408: the body stalled longer than `body_read_timeout_ms`.
    #[error("{0}")]
    BodyTimeout(String),
}

impl HttpError {
    pub fn status(&self) -> StatusCode {
        match self {
            HttpError::Rank(error) => status_of(error),
            HttpError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            HttpError::BodyTimeout(_) => StatusCode::REQUEST_TIMEOUT,
        }
    }

    /// The machine-readable `error.code`.
    pub fn code(&self) -> &'static str {
        match self {
            HttpError::Rank(error) => error.code(),
            HttpError::UnsupportedMediaType(_) => "unsupported_media_type",
            HttpError::BodyTimeout(_) => "body_timeout",
        }
    }
}

/// The status code of each core error.
pub fn status_of(error: &RankError) -> StatusCode {
    match error {
        RankError::Invalid(_) => StatusCode::BAD_REQUEST,
        RankError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
        RankError::NotReady(_) | RankError::Overloaded(_) => StatusCode::SERVICE_UNAVAILABLE,
        RankError::DeadlineExceeded(_) => StatusCode::GATEWAY_TIMEOUT,
        RankError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

impl IntoResponse for HttpError {
    fn into_response(self) -> Response {
        if let HttpError::Rank(RankError::Internal(detail)) = &self {
            tracing::error!(%detail, "internal error");
        }
        let status = self.status();
        let body = ErrorBody::new(self.code(), &self.to_string());
        let mut response = (status, Json(body)).into_response();
        if status == StatusCode::SERVICE_UNAVAILABLE {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        response
    }
}
