//! The public read-only routes: `/healthz`, `/readyz`, `/metrics`, `/v1/models`.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use super::AppState;

/// The process is alive.
pub async fn healthz() -> &'static str {
    "ok\n"
}

/// 200 once a model version serves and until shutdown begins.
pub async fn readyz(State(state): State<Arc<AppState>>) -> Response {
    if state.is_ready() {
        (StatusCode::OK, "ready\n").into_response()
    } else {
        let body = json!({"error": {"code": "not_ready", "message": "no model version serving, or shutting down"}});
        (
            StatusCode::SERVICE_UNAVAILABLE,
            [(header::RETRY_AFTER, "1")],
            Json(body),
        )
            .into_response()
    }
}

pub async fn metrics(State(state): State<Arc<AppState>>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.metrics.render(),
    )
        .into_response()
}

/// The serving version, when it was loaded, every version on disk with its state, and
/// both models' features and the recall sizes.
pub async fn models(State(state): State<Arc<AppState>>) -> Json<serde_json::Value> {
    let serving = state.serving_now();
    let versions = state.versions();
    let serving_json = serving.as_ref().map(|s| {
        let b = &s.bundle;
        json!({
            "version": b.version.to_string(),
            "loaded_at": humantime::format_rfc3339_seconds(s.loaded_at).to_string(),
            "default_m": b.default_m,
            "max_m": b.max_m,
            "recall": {"objective": b.direct.objective(), "trees": b.direct.num_trees(), "features": b.direct.feature_names()},
            "rerank": {"objective": b.stage2.objective(), "trees": b.stage2.num_trees(), "features": b.stage2.feature_names()},
        })
    });
    Json(json!({
        "serving": serving_json,
        "pinned": state.pinned().map(|v| v.to_string()),
        "versions": versions,
    }))
}
