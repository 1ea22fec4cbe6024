//! The public read-only routes: `/healthz`, `/readyz`, `/metrics`, `/v1/models`.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use super::error::ErrorBody;
use crate::ranker::{Ranker, RepositoryView};

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

/// The serving version, when it was loaded, its models and profiles; every version on
/// disk with its state, the directories ignored, and the pin. Reads the last published
/// view: never waits for a reload in progress.
#[utoipa::path(get, path = "/v1/models", tag = "models",
    responses((status = 200, description = "`serving` (null before a version serves): `version`, `loaded_at`, `format_version`, `models` (`name`, `file`, `objective`, `trees`, `features`), `default_profile`, `profiles` (`name`, `score`, `recall` [`model`, `m`], `rerank`, `alpha`, `max_m`; the models by name), and for the default profile `default_m`, `max_m`, `recall` and `rerank` (its score and rerank models: `objective`, `trees`, `features`); `pinned`; `versions` (`version`, `state`: serving, ready, rejected (with `reason`), incomplete; `warning`); `policy`: the rollout policy (`source`: serving.toml or none; `file_error` when the file on disk is invalid and the previous policy stays in force; `pin`, `canary` (`percent`), `shadow` (`sample`), each with `version`, `source` (admin or serving.toml), `in_force`, and `disk`: the version's state); `ignored` (`name`, `reason`); `repository_error`", body = Object)))]
pub async fn models(State(ranker): State<Arc<Ranker>>) -> Json<serde_json::Value> {
    let serving = ranker.models.serving();
    let view = ranker.models.view();
    let serving_json = serving.as_ref().map(|s| {
        let b = &s.bundle;
        let model = |index: usize| {
            let m = b.model(index);
            json!({"objective": m.objective(), "trees": m.num_trees(), "features": m.feature_names()})
        };
        let name = |index: usize| b.models[index].name.as_str();
        let default = b.default_profile();
        let profiles: Vec<serde_json::Value> = b
            .profiles
            .iter()
            .map(|p| {
                json!({
                    "name": p.name,
                    "score": name(p.score),
                    "recall": p.recall.iter().map(|s| json!({"model": name(s.model), "m": s.m})).collect::<Vec<_>>(),
                    "rerank": p.rerank.map(name),
                    "alpha": p.rerank.map(|_| p.alpha),
                    "max_m": p.first_m().map(|_| p.max_m),
                })
            })
            .collect();
        json!({
            "version": s.version.to_string(),
            "loaded_at": humantime::format_rfc3339_seconds(s.loaded_at).to_string(),
            "format_version": b.format_version,
            "models": b.models.iter().enumerate().map(|(i, m)| {
                let mut entry = model(i);
                entry["name"] = json!(m.name);
                entry["file"] = json!(m.file);
                entry
            }).collect::<Vec<_>>(),
            "default_profile": default.name,
            "profiles": profiles,
            "default_m": default.first_m(),
            "max_m": default.first_m().map(|_| default.max_m),
            "recall": model(default.score),
            "rerank": default.rerank.map(model),
        })
    });
    Json(json!({
        "serving": serving_json,
        "pinned": view.pinned.map(|v| v.to_string()),
        "policy": policy_json(&view),
        "versions": view.versions,
        "ignored": view.ignored,
        "repository_error": view.error,
    }))
}

/// The rollout policy in force, where each part came from, and the state of each version
/// it names.
fn policy_json(view: &RepositoryView) -> serde_json::Value {
    let policy = &view.policy;
    let state = |version: u64| match view.versions.iter().find(|v| v.version == version) {
        Some(status) => json!(status),
        None => json!({"version": version, "state": "absent"}),
    };
    let file_source = if policy.file_present {
        "serving.toml"
    } else {
        "none"
    };
    let pin = match (policy.admin_pin, policy.file.pin) {
        (Some(admin), _) => {
            json!({"version": admin.to_string(), "source": "admin", "in_force": view.pinned == Some(admin), "disk": state(admin)})
        }
        (None, Some(file)) => {
            json!({"version": file.to_string(), "source": "serving.toml", "in_force": view.pinned == Some(file), "disk": state(file)})
        }
        (None, None) => serde_json::Value::Null,
    };
    let overridden = policy.admin_pin.is_some();
    let canary = policy.file.canary.as_ref().map(|c| {
        json!({"version": c.version.to_string(), "percent": c.percent, "source": "serving.toml",
               "in_force": policy.canary == Some(c.version), "overridden_by_admin_pin": overridden, "disk": state(c.version)})
    });
    let shadow = policy.file.shadow.as_ref().map(|s| {
        json!({"version": s.version.to_string(), "sample": s.sample, "source": "serving.toml",
               "in_force": policy.shadow == Some(s.version), "overridden_by_admin_pin": overridden, "disk": state(s.version)})
    });
    json!({
        "source": file_source,
        "file_error": policy.file_error,
        "pin": pin,
        "canary": canary,
        "shadow": shadow,
    })
}
