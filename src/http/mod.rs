//! The HTTP adapter over the ranking core: the public router (`/rank`, the read-only
//! routes, the OpenAPI document), the admin router, request ids, and the `track` middleware that stamps each
//! request's arrival and counts and times it. Codecs: `json` here, protobuf in
//! [`crate::proto::convert`]; errors meet HTTP in `error`.

pub mod admin;
pub mod error;
mod info;
pub mod json;
pub mod openapi;
mod rank;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::HeaderValue;
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use tower_http::request_id::{
    MakeRequestId, PropagateRequestIdLayer, RequestId, SetRequestIdLayer,
};
use tower_http::timeout::RequestBodyTimeoutLayer;
use tower_http::trace::{DefaultOnResponse, TraceLayer};

pub use error::HttpError;

use crate::ranker::Ranker;

/// When a request arrived (its head was read): its deadline counts from then.
#[derive(Debug, Clone, Copy)]
pub struct Arrived(pub Instant);

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

/// Stamps the arrival of every request, then counts and times it by matched route and
/// status.
async fn track(State(ranker): State<Arc<Ranker>>, mut request: Request, next: Next) -> Response {
    let start = Instant::now();
    request.extensions_mut().insert(Arrived(start));
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let response = next.run(request).await;
    ranker
        .metrics
        .observe_request(&route, response.status().as_str(), start.elapsed());
    response
}

/// Request ids for requests that come without `x-request-id`: process start time and a counter.
#[derive(Debug, Clone)]
struct RequestIds {
    prefix: String,
    next: Arc<AtomicU64>,
}

impl Default for RequestIds {
    fn default() -> Self {
        let started = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis());
        Self {
            prefix: format!("gr-{started:x}"),
            next: Arc::new(AtomicU64::new(1)),
        }
    }
}

impl MakeRequestId for RequestIds {
    fn make_request_id<B>(&mut self, _: &axum::http::Request<B>) -> Option<RequestId> {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        HeaderValue::from_str(&format!("{}-{n}", self.prefix))
            .ok()
            .map(RequestId::new)
    }
}
