//! The gRPC adapter over the ranking core (`grpc_listen`): `giftrank.v1.Ranker/Rank` on
//! the same admission, deadline, validation, ranking, limits and metrics as `POST /rank`
//! ([`Ranker::admit`], [`Ranker::run`], [`rank_request`]), the core's errors mapped to
//! gRPC statuses here, and the standard `grpc.health.v1.Health`, whose status follows
//! readiness. Messages and their conversion live in [`crate::proto`]; the listener's life
//! (bind, drain) in [`crate::server`].
//!
//! The routes are served as an axum router by the same connection loop as the HTTP
//! listeners, rather than by tonic's own server: the drain is the same, and the deadline
//! is ours. (tonic's server answers an expired `grpc-timeout` with CANCELLED, racing the
//! DEADLINE_EXCEEDED that the contract asks for.)

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::Router;
use tokio::sync::watch;
use tonic::codegen::tokio_stream::Stream;
use tonic::metadata::{MetadataMap, MetadataValue};
use tonic::{Code, Status};
use tonic_health::pb::health_server::{Health, HealthServer};
use tonic_health::pb::{HealthCheckRequest, HealthCheckResponse};
use tonic_health::server::{HealthReporter, HealthService};
use tonic_health::ServingStatus;

use crate::proto::convert;
use crate::proto::v1 as pb;
use crate::ranker::pipeline::shadow_rank;
use crate::ranker::{rank_request, Arrived, Deadline, RankError, Ranker};
use pb::ranker_server::{RankerServer, SERVICE_NAME};

/// The `route` label of `Rank` in `giftrank_http_requests_total` and
/// `giftrank_request_duration_seconds`.
pub const RANK_ROUTE: &str = "/giftrank.v1.Ranker/Rank";
/// The trailer that tells a client how long to wait before retrying (gRFC A6), sent
/// with the RESOURCE_EXHAUSTED of an overloaded server.
const RETRY_PUSHBACK: &str = "grpc-retry-pushback-ms";
const HEALTH_ROUTES: [&str; 2] = [
    "/grpc.health.v1.Health/Check",
    "/grpc.health.v1.Health/Watch",
];

/// The gRPC routes: `Ranker` and `Health`, counted and timed like the HTTP routes.
/// Sets the health status from readiness before it returns, and keeps following it
/// from a task that ends when `ranker` is dropped.
pub async fn router(ranker: Arc<Ranker>) -> Router {
    let reporter = HealthReporter::new();
    let mut readiness = ranker.subscribe_readiness();
    let ready = *readiness.borrow_and_update();
    report(&reporter, ready).await;
    tokio::spawn(follow_readiness(reporter.clone(), readiness));

    let service = RankerServer::new(RankerService {
        ranker: ranker.clone(),
    })
    .max_decoding_message_size(ranker.config.max_body_bytes);
    let health = HealthServer::new(ShutdownAwareHealth {
        inner: HealthService::from_health_reporter(reporter),
        ranker: ranker.clone(),
    });
    tonic::service::Routes::new(service)
        .add_service(health)
        .into_axum_router()
        .layer(middleware::from_fn_with_state(ranker, track))
}

/// Sets the health status of the server ("") and of `giftrank.v1.Ranker`.
async fn report(reporter: &HealthReporter, ready: bool) {
    let status = if ready {
        ServingStatus::Serving
    } else {
        ServingStatus::NotServing
    };
    reporter.set_service_status("", status).await;
    reporter.set_service_status(SERVICE_NAME, status).await;
}

async fn follow_readiness(reporter: HealthReporter, mut readiness: watch::Receiver<bool>) {
    while readiness.changed().await.is_ok() {
        let ready = *readiness.borrow_and_update();
        report(&reporter, ready).await;
    }
}

/// Counts and times every gRPC request like the HTTP `track` does: by method (the route)
/// and the HTTP status equivalent to its gRPC status. An over-size `Rank` message, which
/// tonic refuses with OUT_OF_RANGE, is answered RESOURCE_EXHAUSTED as gRPC specifies
/// (and counted as `body_too_large`, as over HTTP).
async fn track(State(ranker): State<Arc<Ranker>>, mut request: Request, next: Next) -> Response {
    let path = request.uri().path();
    let route = if path == RANK_ROUTE || HEALTH_ROUTES.contains(&path) {
        path.to_owned()
    } else {
        "unmatched".to_owned()
    };
    let start = Instant::now();
    request.extensions_mut().insert(Arrived(start));
    let mut response = next.run(request).await;
    let mut code = response
        .headers()
        .get("grpc-status")
        .map_or(Code::Ok, |v| Code::from_bytes(v.as_bytes()));
    if code == Code::OutOfRange && route == RANK_ROUTE {
        ranker
            .metrics
            .rejected
            .with_label_values(&["body_too_large"])
            .inc();
        code = Code::ResourceExhausted;
        response = Status::new(
            code,
            format!(
                "body: larger than the limit of {} bytes",
                ranker.config.max_body_bytes
            ),
        )
        .into_http();
    }
    let pushback = response.headers().contains_key(RETRY_PUSHBACK);
    let status = http_status(code, pushback).to_string();
    ranker
        .metrics
        .observe_request(&route, &status, start.elapsed());
    response
}

/// The HTTP status code that stands for a gRPC status in the metrics: what `POST /rank`
/// answers for the same outcome (RESOURCE_EXHAUSTED is its 503 when it carries a retry
/// pushback — overload — else its 413), else the usual mapping.
pub fn http_status(code: Code, pushback: bool) -> u16 {
    match code {
        Code::ResourceExhausted if pushback => 503,
        Code::Ok => 200,
        Code::InvalidArgument | Code::FailedPrecondition | Code::OutOfRange => 400,
        Code::Unauthenticated => 401,
        Code::PermissionDenied => 403,
        Code::NotFound | Code::Unimplemented => 404,
        Code::AlreadyExists | Code::Aborted => 409,
        Code::ResourceExhausted => 413,
        Code::Cancelled => 499,
        Code::Unknown | Code::Internal | Code::DataLoss => 500,
        Code::Unavailable => 503,
        Code::DeadlineExceeded => 504,
    }
}

/// The gRPC status of each core error; the message is the same as over HTTP.
pub fn status_of(error: RankError) -> Status {
    let message = error.to_string();
    match error {
        RankError::Invalid(_) => Status::invalid_argument(message),
        RankError::TooLarge(_) => Status::resource_exhausted(message),
        RankError::NotReady(_) => Status::unavailable(message),
        RankError::Overloaded(_) => {
            // gRPC's Retry-After: clients with a retry policy wait this long (gRFC A6).
            let mut status = Status::resource_exhausted(message);
            status
                .metadata_mut()
                .insert(RETRY_PUSHBACK, MetadataValue::from_static("1000"));
            status
        }
        RankError::DeadlineExceeded(_) => Status::deadline_exceeded(message),
        RankError::Internal(detail) => {
            tracing::error!(%detail, "internal error");
            Status::internal(message)
        }
    }
}

/// `giftrank.v1.Ranker`.
#[derive(Debug)]
struct RankerService {
    ranker: Arc<Ranker>,
}

#[tonic::async_trait]
impl pb::ranker_server::Ranker for RankerService {
    async fn rank(
        &self,
        request: tonic::Request<pb::RankRequest>,
    ) -> Result<tonic::Response<pb::RankResponse>, Status> {
        let ranker = &self.ranker;
        let arrived = request
            .extensions()
            .get::<Arrived>()
            .map_or_else(Instant::now, |a| a.0);
        let caller = grpc_timeout(request.metadata())?;
        let deadline = Deadline::from_arrival(arrived, ranker.config.request_timeout(), caller);
        if deadline.has_passed() {
            return Err(status_of(
                ranker.deadline_exceeded(deadline, "before ranking began"),
            ));
        }
        let admission = ranker.admit().map_err(status_of)?;
        let header_id = request
            .metadata()
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let message = request.into_inner();
        // The message's own timeout_ms (0 is refused when it is converted), before queueing.
        let own = message.timeout_ms.filter(|&ms| ms >= 1);
        let deadline = deadline.capped(own.map(Duration::from_millis));
        let response = ranker
            .run(admission, deadline, move |ranker, routing, deadline| {
                let mut request = convert::request(message)?;
                let serving = ranker.answerer(routing, request.routing_key());
                let ranked = rank_request(ranker, serving, &request, deadline)?;
                let response =
                    convert::response(serving.version, &request, &ranked, header_id.as_deref());
                let request_id = routing.shadow.as_ref().and(
                    request
                        .request_id
                        .as_deref()
                        .map(str::to_owned)
                        .or(header_id),
                );
                ranker.shadow(
                    routing,
                    || ranked.order(),
                    request_id.as_deref(),
                    move |shadow| {
                        request.k = None;
                        shadow_rank(shadow, &request)
                    },
                );
                Ok(response)
            })
            .await
            .map_err(status_of)?;
        Ok(tonic::Response::new(response))
    }
}

/// The client's `grpc-timeout`, if it sent one.
fn grpc_timeout(metadata: &MetadataMap) -> Result<Option<Duration>, Status> {
    let Some(value) = metadata.get("grpc-timeout") else {
        return Ok(None);
    };
    let text = value.to_str().unwrap_or("");
    parse_timeout(text).map(Some).ok_or_else(|| {
        Status::invalid_argument(format!(
            "grpc-timeout: `{text}` is not 1 to 8 digits and a unit (H, M, S, m, u, n)"
        ))
    })
}

/// A `grpc-timeout` value (gRPC over HTTP/2: `TimeoutValue TimeoutUnit`).
fn parse_timeout(text: &str) -> Option<Duration> {
    let digits = text.get(..text.len().checked_sub(1)?)?;
    if digits.is_empty() || digits.len() > 8 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n: u64 = digits.parse().ok()?;
    Some(match &text[digits.len()..] {
        "H" => Duration::from_secs(n * 3600),
        "M" => Duration::from_secs(n * 60),
        "S" => Duration::from_secs(n),
        "m" => Duration::from_millis(n),
        "u" => Duration::from_micros(n),
        "n" => Duration::from_nanos(n),
        _ => return None,
    })
}

/// tonic-health's service, except that a `Watch` stream ends once it has sent
/// NOT_SERVING during shutdown. Otherwise a watcher would hold its connection open, and
/// so the drain, until the drain deadline.
#[derive(Debug)]
struct ShutdownAwareHealth {
    inner: HealthService,
    ranker: Arc<Ranker>,
}

#[tonic::async_trait]
impl Health for ShutdownAwareHealth {
    async fn check(
        &self,
        request: tonic::Request<HealthCheckRequest>,
    ) -> Result<tonic::Response<HealthCheckResponse>, Status> {
        self.inner.check(request).await
    }

    type WatchStream = WatchUntilShutdown<<HealthService as Health>::WatchStream>;

    async fn watch(
        &self,
        request: tonic::Request<HealthCheckRequest>,
    ) -> Result<tonic::Response<Self::WatchStream>, Status> {
        let inner = self.inner.watch(request).await?.into_inner();
        Ok(tonic::Response::new(WatchUntilShutdown {
            inner,
            ranker: self.ranker.clone(),
            done: false,
        }))
    }
}

/// See [`ShutdownAwareHealth`].
#[derive(Debug)]
struct WatchUntilShutdown<S> {
    inner: S,
    ranker: Arc<Ranker>,
    done: bool,
}

impl<S> Stream for WatchUntilShutdown<S>
where
    S: Stream<Item = Result<HealthCheckResponse, Status>> + Unpin,
{
    type Item = Result<HealthCheckResponse, Status>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.done {
            return Poll::Ready(None);
        }
        let item = Pin::new(&mut self.inner).poll_next(cx);
        if let Poll::Ready(Some(Ok(response))) = &item {
            let not_serving = tonic_health::pb::health_check_response::ServingStatus::NotServing;
            if response.status == not_serving as i32 && self.ranker.is_shutting_down() {
                self.done = true;
            }
        }
        item
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_timeouts_parse_in_every_unit() {
        assert_eq!(parse_timeout("1H"), Some(Duration::from_secs(3600)));
        assert_eq!(parse_timeout("2M"), Some(Duration::from_secs(120)));
        assert_eq!(parse_timeout("3S"), Some(Duration::from_secs(3)));
        assert_eq!(parse_timeout("1m"), Some(Duration::from_millis(1)));
        assert_eq!(
            parse_timeout("99999999u"),
            Some(Duration::from_micros(99_999_999))
        );
        assert_eq!(parse_timeout("0n"), Some(Duration::ZERO));
        for bad in [
            "",
            "m",
            "1",
            "123456789m",
            "1x",
            "-1m",
            "1.5S",
            " 1m",
            "1mm",
            "１m",
        ] {
            assert_eq!(parse_timeout(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn errors_map_to_grpc_codes_and_back_to_their_http_statuses() {
        let cases = [
            (RankError::Invalid("m: 0".into()), Code::InvalidArgument),
            (
                RankError::TooLarge("candidates".into()),
                Code::ResourceExhausted,
            ),
            (
                RankError::Overloaded("full".into()),
                Code::ResourceExhausted,
            ),
            (RankError::NotReady("no model".into()), Code::Unavailable),
            (
                RankError::DeadlineExceeded("late".into()),
                Code::DeadlineExceeded,
            ),
            (RankError::Internal("secret detail".into()), Code::Internal),
        ];
        for (error, code) in cases {
            let http = crate::http::error::status_of(&error).as_u16();
            let message = error.to_string();
            let status = status_of(error);
            assert_eq!(status.code(), code);
            assert_eq!(status.message(), message);
            assert!(!status.message().contains("secret"));
            let pushback = status.metadata().contains_key(RETRY_PUSHBACK);
            assert_eq!(http_status(code, pushback), http, "{code:?}");
        }
        assert_eq!(http_status(Code::Ok, false), 200);
    }
}
