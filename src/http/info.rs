//! The public read-only routes: `/healthz`, `/readyz`, `/metrics`, `/v1/models`.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use super::error::ErrorBody;
use crate::ranker::Ranker;

/// The process is alive.
#[utoipa::path(get, path = "/healthz", tag = "health",
    responses((status = 200, description = "The process is alive", body = String, content_type = "text/plain")))]
pub async fn healthz() -> &'static str {
    "ok\n"
}

/// 200 once a model version serves and until shutdown begins.
#[utoipa::path(get, path = "/readyz", tag = "health", responses(
    (status = 200, description = "A model version serves", body = String, content_type = "text/plain"),
    (status = 503, description = "No version serves yet, or shutting down", body = ErrorBody,
        headers(("Retry-After" = u32, description = "seconds")))))]
pub async fn readyz(State(ranker): State<Arc<Ranker>>) -> Response {
    if ranker.is_ready() {
        (StatusCode::OK, "ready\n").into_response()
    } else {
        let body = ErrorBody::new("not_ready", "no model version serving, or shutting down");
        (
            StatusCode::SERVICE_UNAVAILABLE,
            [(header::RETRY_AFTER, "1")],
            Json(body),
        )
            .into_response()
    }
}

/// Every metric, in the Prometheus text format.
#[utoipa::path(get, path = "/metrics", tag = "observability",
    responses((status = 200, description = "Prometheus text exposition format", body = String, content_type = "text/plain; version=0.0.4")))]
pub async fn metrics(State(ranker): State<Arc<Ranker>>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        ranker.metrics.render(),
    )
        .into_response()
}

/// The serving version, when it was loaded, its models' features and the recall sizes;
/// every version on disk with its state, the directories ignored, and the pin. Reads the
/// last published view: never waits for a reload in progress.
#[utoipa::path(get, path = "/v1/models", tag = "models",
    responses((status = 200, description = "`serving` (null before a version serves): `version`, `loaded_at`, `default_m`, `max_m`, `recall` and `rerank` (`objective`, `trees`, `features`); `pinned`; `versions` (`version`, `state`: serving, ready, rejected (with `reason`), incomplete; `warning`); `ignored` (`name`, `reason`); `repository_error`", body = Object)))]
pub async fn models(State(ranker): State<Arc<Ranker>>) -> Json<serde_json::Value> {
    let serving = ranker.models.serving();
    let view = ranker.models.view();
    let serving_json = serving.as_ref().map(|s| {
        let b = &s.bundle;
        json!({
            "version": s.version.to_string(),
            "loaded_at": humantime::format_rfc3339_seconds(s.loaded_at).to_string(),
            "default_m": b.default_m,
            "max_m": b.max_m,
            "recall": {"objective": b.direct.objective(), "trees": b.direct.num_trees(), "features": b.direct.feature_names()},
            "rerank": {"objective": b.stage2.objective(), "trees": b.stage2.num_trees(), "features": b.stage2.feature_names()},
        })
    });
    Json(json!({
        "serving": serving_json,
        "pinned": view.pinned.map(|v| v.to_string()),
        "versions": view.versions,
        "ignored": view.ignored,
        "repository_error": view.error,
    }))
}
