//! What every public request passes through: its arrival stamped (deadlines count from
//! it), its count and latency recorded by route and status, and an `x-request-id` made
//! for it when the client sent none.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use axum::extract::{MatchedPath, Request, State};
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;
use tower_http::request_id::{MakeRequestId, RequestId};

use crate::ranker::{Arrived, Ranker};

/// Stamps the arrival of every request, then counts and times it by matched route and
/// status.
pub async fn track(
    State(ranker): State<Arc<Ranker>>,
    mut request: Request,
    next: Next,
) -> Response {
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
pub struct RequestIds {
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
