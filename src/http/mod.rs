//! The HTTP adapter over the ranking core: the public router (`/rank`, the read-only
//! routes, the OpenAPI document) and the admin router (`admin`). Every public request
//! passes `track` (arrival, metrics, request id). Codecs: `json` here, protobuf in
//! [`crate::proto::convert`]; errors meet HTTP in `error`.

pub mod admin;
mod early_deadline;
pub mod error;
mod info;
pub mod json;
pub mod openapi;
mod rank;
mod track;

use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, Request};
use axum::middleware;
use axum::routing::{get, post};
use axum::Router;
use tower_http::request_id::{PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::timeout::RequestBodyTimeoutLayer;
use tower_http::trace::{DefaultOnResponse, TraceLayer};

pub use error::HttpError;
use track::{track, RequestIds};

use crate::ranker::Ranker;

/// The public router: `/rank` and the read-only routes. Admin routes never exist here.
pub fn router(ranker: Arc<Ranker>) -> Router {
    let body_limit = ranker.config.max_body_bytes;
    let body_timeout = ranker.config.body_read_timeout();
    Router::new()
        .route("/rank", post(rank::handle))
        .route("/healthz", get(info::healthz))
        .route("/readyz", get(info::readyz))
        .route("/metrics", get(info::metrics))
        .route("/v1/models", get(info::models))
        .route("/openapi.json", get(openapi::serve))
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(middleware::from_fn_with_state(ranker.clone(), track))
        .with_state(ranker)
        .layer(RequestBodyTimeoutLayer::new(body_timeout))
        .layer(TraceLayer::new_for_http()
            .make_span_with(|request: &Request| {
                let id = request.headers().get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or("");
                tracing::info_span!("request", method = %request.method(), path = %request.uri().path(), request_id = %id)
            })
            .on_response(DefaultOnResponse::new().level(tracing::Level::INFO)))
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(SetRequestIdLayer::x_request_id(RequestIds::default()))
}
