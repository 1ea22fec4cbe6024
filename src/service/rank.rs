//! `POST /rank`: admission (content type, load shedding, readiness), then — off the async
//! runtime, under the request deadline — decode, Direct on all candidates, Top-M, Stage2
//! on those M, and the response. Bodies are JSON or protobuf (`application/x-protobuf`,
//! see `protobuf`); the response is protobuf when the request is or `Accept` asks for it.

use std::sync::Arc;
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use prost::Message;
use serde::Serialize;

use super::error::ApiError;
use super::features::{Batch, Side};
use super::protobuf;
use super::request::RankRequest;
use super::{AppState, Serving};
use crate::ranking;

#[derive(Debug, Serialize)]
struct RankResponse<'a> {
    request_id: Option<&'a str>,
    model_version: String,
    m: usize,
    items: Vec<Item<'a>>,
}

#[derive(Debug, Serialize)]
struct Item<'a> {
    id: &'a str,
    score: f64,
    direct_score: f64,
    stage2_score: Option<f64>,
    reranked: bool,
}

/// The handler: everything that can be refused cheaply is refused before any work.
pub async fn handle(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let reject = |reason: &str, error: ApiError| {
        state.metrics.rejected.with_label_values(&[reason]).inc();
        Err(error)
    };
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let Some(format) = Format::of(content_type) else {
        return reject(
            "unsupported_media_type",
            ApiError::UnsupportedMediaType(format!(
                "Content-Type `{content_type}` is not supported; send application/json or application/x-protobuf"
            )),
        );
    };
    let answer = if format == Format::Protobuf || accepts_protobuf(&headers) {
        Format::Protobuf
    } else {
        Format::Json
    };
    let body = match body {
        Ok(body) => body,
        Err(rejection) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            return reject(
                "body_too_large",
                ApiError::TooLarge(format!(
                    "body: larger than the limit of {} bytes",
                    state.config.max_body_bytes
                )),
            )
        }
        Err(rejection) => {
            return Err(ApiError::Invalid(format!(
                "body: {}",
                rejection.body_text()
            )))
        }
    };
    let header_id = headers
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let deadline = state.config.request_timeout();
    let encoded = run_ranking(&state, deadline, move |state, serving| {
        rank(
            state,
            serving,
            &body,
            (format, answer),
            header_id.as_deref(),
        )
    })
    .await?;
    Ok(([(header::CONTENT_TYPE, answer.media_type())], encoded).into_response())
}

/// A body format of `/rank`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Json,
    Protobuf,
}

impl Format {
    /// The format of a `Content-Type`, if supported (parameters such as charset ignored).
    fn of(media_type: &str) -> Option<Self> {
        let essence = media_type.split(';').next().unwrap_or("").trim();
        if essence.eq_ignore_ascii_case("application/json") {
            Some(Format::Json)
        } else if essence.eq_ignore_ascii_case("application/x-protobuf") {
            Some(Format::Protobuf)
        } else {
            None
        }
    }

    fn media_type(self) -> &'static str {
        match self {
            Format::Json => "application/json",
            Format::Protobuf => "application/x-protobuf",
        }
    }
}

/// Whether an `Accept` header lists `application/x-protobuf`.
fn accepts_protobuf(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|range| Format::of(range) == Some(Format::Protobuf))
}

/// Admits one ranking job and runs it off the async runtime on one snapshot of the serving
/// version, under `deadline`: 503 when every place is taken (shed, not queued) or nothing
/// serves, 504 past the deadline. Shared by every transport.
pub async fn run_ranking<T: Send + 'static>(
    state: &Arc<AppState>,
    deadline: std::time::Duration,
    job: impl FnOnce(&AppState, &Serving) -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    let reject = |reason: &str, error: ApiError| {
        state.metrics.rejected.with_label_values(&[reason]).inc();
        Err(error)
    };
    let Some(permit) = state.admit() else {
        return reject(
            "overloaded",
            ApiError::Overloaded(format!(
                "{} ranking requests are already in flight; retry shortly",
                state.config.max_inflight_requests
            )),
        );
    };
    let Some(serving) = state.serving_now() else {
        return reject(
            "not_ready",
            ApiError::NotReady("no model version is serving yet".into()),
        );
    };
    state.metrics.inflight.inc();
    let worker_state = state.clone();
    let work = tokio::task::spawn_blocking(move || {
        let _permit = permit;
        let result = job(&worker_state, &serving);
        worker_state.metrics.inflight.dec();
        result
    });
    match tokio::time::timeout(deadline, work).await {
        Ok(Ok(result)) => result,
        Ok(Err(join)) => Err(ApiError::Internal(format!("ranking task failed: {join}"))),
        Err(_) => reject(
            "deadline",
            ApiError::DeadlineExceeded(format!(
                "the request took longer than its deadline of {} ms",
                deadline.as_millis()
            )),
        ),
    }
}

/// Decodes and ranks one request on `serving`; returns the response body. `formats` are
/// the request's and the response's. The response's `request_id` is the body's, else the
/// `x-request-id` header's.
fn rank(
    state: &AppState,
    serving: &Serving,
    body: &[u8],
    formats: (Format, Format),
    header_id: Option<&str>,
) -> Result<Vec<u8>, ApiError> {
    let request = match formats.0 {
        Format::Json => RankRequest::decode(body)?,
        Format::Protobuf => protobuf::decode(body)?,
    };
    let ranked = rank_request(state, serving, &request)?;
    if formats.1 == Format::Protobuf {
        return Ok(protobuf::response(serving, &request, &ranked, header_id).encode_to_vec());
    }
    json_response(serving.bundle.version, &request, &ranked, header_id)
}

/// The JSON response body for `ranked`, by model version `version`; its `request_id` is
/// the body's, else `header_id`.
pub fn json_response(
    version: u64,
    request: &RankRequest<'_>,
    ranked: &Ranked,
    header_id: Option<&str>,
) -> Result<Vec<u8>, ApiError> {
    let items = ranked
        .items
        .iter()
        .map(|item| Item {
            id: &request.candidates[item.index].id,
            score: item.stage2_score.unwrap_or(item.direct_score),
            direct_score: item.direct_score,
            stage2_score: item.stage2_score,
            reranked: item.stage2_score.is_some(),
        })
        .collect();
    let response = RankResponse {
        request_id: request.request_id.as_deref().or(header_id),
        model_version: version.to_string(),
        m: ranked.m,
        items,
    };
    serde_json::to_vec(&response)
        .map_err(|e| ApiError::Internal(format!("encoding the response: {e}")))
}

/// From this many candidates on, a request ranked while no other is in flight scores
/// Direct on two threads: below it the thread start-up eats the gain.
const SPLIT_CANDIDATES: usize = 2048;

/// One ranked candidate: its index in the request and its scores.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RankedItem {
    pub index: usize,
    pub direct_score: f64,
    /// `Some` for the reranked (Top-M) items only.
    pub stage2_score: Option<f64>,
}

/// The outcome of ranking one request, whatever its wire format.
#[derive(Debug, Clone, PartialEq)]
pub struct Ranked {
    /// The M used.
    pub m: usize,
    /// The first k items of the final order.
    pub items: Vec<RankedItem>,
}

/// Validates and ranks a decoded request on `serving` (DESIGN.md §1), recording the
/// ranking metrics. Blocking: it scores every candidate. Shared by every transport.
pub fn rank_request(
    state: &AppState,
    serving: &Serving,
    request: &RankRequest<'_>,
) -> Result<Ranked, ApiError> {
    let n = request.candidates.len();
    if n > state.config.max_candidates {
        state
            .metrics
            .rejected
            .with_label_values(&["too_many_candidates"])
            .inc();
        return Err(ApiError::TooLarge(format!(
            "candidates: {n} candidates, more than the limit of {}",
            state.config.max_candidates
        )));
    }
    let bundle = &serving.bundle;
    let m_asked = match request.m {
        None => bundle.default_m,
        Some(m) if m >= 1 && m <= bundle.max_m as u64 => m as usize,
        Some(m) => {
            return Err(ApiError::Invalid(format!(
                "m: {m} is outside 1..={} (max_m of model version {})",
                bundle.max_m, bundle.version
            )))
        }
    };
    let k = match request.k {
        None => n,
        Some(0) => return Err(ApiError::Invalid("k: must be at least 1".into())),
        Some(k) => usize::try_from(k).unwrap_or(usize::MAX).min(n),
    };
    let batch = Batch::new(request, &serving.features)?;

    let recall_start = Instant::now();
    let all: Vec<usize> = (0..n).collect();
    let mut d = vec![0.0; n];
    let score = |rows: &[usize], out: &mut [f64]| {
        let matrix = batch.matrix(Side::Direct, &bundle.direct, rows);
        bundle.direct.predict(&matrix, out);
    };
    if n >= SPLIT_CANDIDATES && state.ranking_alone() {
        // Each row's score is independent of the others, so the halves are exact.
        let (rows_a, rows_b) = all.split_at(n / 2);
        let (d_a, d_b) = d.split_at_mut(n / 2);
        std::thread::scope(|scope| {
            scope.spawn(|| score(rows_b, d_b));
            score(rows_a, d_a);
        });
    } else {
        score(&all, &mut d);
    }
    let recalled = ranking::recall(&d, m_asked);
    let rerank_start = Instant::now();
    let mut s = vec![0.0; recalled.len()];
    bundle.stage2.predict(
        &batch.matrix(Side::Stage2, &bundle.stage2, &recalled),
        &mut s,
    );
    let order = ranking::order(&d, &recalled, &s, k);
    let done = Instant::now();

    let metrics = &state.metrics;
    metrics
        .stage_duration
        .with_label_values(&["recall"])
        .observe((rerank_start - recall_start).as_secs_f64());
    metrics
        .stage_duration
        .with_label_values(&["rerank"])
        .observe((done - rerank_start).as_secs_f64());
    metrics.candidates.observe(n as f64);
    metrics.recall_size_used.observe(recalled.len() as f64);

    let items = order
        .into_iter()
        .map(|(index, stage2_score)| RankedItem {
            index,
            direct_score: d[index],
            stage2_score,
        })
        .collect();
    Ok(Ranked {
        m: recalled.len(),
        items,
    })
}
