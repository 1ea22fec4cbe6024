//! The admin listener's routes: `/admin/reload`, `/admin/pin/{version}`, `/admin/unpin`,
//! bearer-token protected off loopback. Each runs the core's blocking repository
//! operation off the async runtime. The background reloader is `server::reloader`.

use std::sync::Arc;

use axum::extract::{Path as UrlPath, Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde_json::json;
use subtle::ConstantTimeEq;

use super::error::ErrorBody;
use crate::ranker::{PinError, Ranker, ReloadOutcome};

pub fn router(ranker: Arc<Ranker>) -> Router {
    Router::new()
        .route("/admin/reload", post(reload))
        .route("/admin/pin/{version}", post(pin))
        .route("/admin/unpin", post(unpin))
        .layer(middleware::from_fn_with_state(ranker.clone(), authorize))
        .with_state(ranker)
}

/// Off loopback, every admin request needs `Authorization: Bearer <admin_token>`.
async fn authorize(State(ranker): State<Arc<Ranker>>, request: Request, next: Next) -> Response {
    let config = &ranker.config;
    if !config.admin_listen.ip().is_loopback() {
        let expected = config.admin_token.as_deref().unwrap_or_default();
        let given = request
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        if !token_matches(expected, given) {
            return error(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "a valid bearer token is required",
            );
        }
    }
    next.run(request).await
}

/// Whether `given` is the configured token, compared in constant time so the answer's
/// timing tells nothing of how much of a guess was right. An empty token matches nothing.
fn token_matches(expected: &str, given: Option<&str>) -> bool {
    match given {
        Some(given) if !expected.is_empty() => {
            bool::from(expected.as_bytes().ct_eq(given.as_bytes()))
        }
        _ => false,
    }
}

fn error(status: StatusCode, code: &str, message: &str) -> Response {
    (status, Json(ErrorBody::new(code, message))).into_response()
}

fn outcome_json(ranker: &Ranker, outcome: ReloadOutcome) -> Response {
    let changed = matches!(outcome, ReloadOutcome::Swapped { .. });
    let view = ranker.models.view();
    Json(json!({
        "serving": ranker.models.serving_version().map(|v| v.to_string()),
        "changed": changed,
        "pinned": view.pinned.map(|v| v.to_string()),
        "versions": view.versions,
        "ignored": view.ignored,
    }))
    .into_response()
}

/// Runs a repository operation off the async runtime and answers with the new state,
/// or with the error's status.
async fn repository_op<E: std::fmt::Display + Send + 'static>(
    ranker: Arc<Ranker>,
    op: impl FnOnce(&Ranker) -> Result<ReloadOutcome, E> + Send + 'static,
    status_of: impl FnOnce(&E) -> (StatusCode, &'static str),
) -> Response {
    let worker = ranker.clone();
    match tokio::task::spawn_blocking(move || op(&worker)).await {
        Ok(Ok(outcome)) => outcome_json(&ranker, outcome),
        Ok(Err(e)) => {
            let (status, code) = status_of(&e);
            error(status, code, &e.to_string())
        }
        Err(e) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            &e.to_string(),
        ),
    }
}

fn repository_error<E>(_: &E) -> (StatusCode, &'static str) {
    (StatusCode::INTERNAL_SERVER_ERROR, "repository")
}

async fn reload(State(ranker): State<Arc<Ranker>>) -> Response {
    repository_op(ranker, |r| Ok::<_, PinError>(r.reload()), repository_error).await
}

async fn unpin(State(ranker): State<Arc<Ranker>>) -> Response {
    repository_op(ranker, |r| Ok::<_, PinError>(r.unpin()), repository_error).await
}

async fn pin(State(ranker): State<Arc<Ranker>>, UrlPath(version): UrlPath<String>) -> Response {
    let Ok(version) = version.parse::<u64>() else {
        return error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            &format!("version: `{version}` is not a version number"),
        );
    };
    repository_op(
        ranker,
        move |r| r.pin(version),
        |e| match e {
            PinError::Absent(_) => (StatusCode::NOT_FOUND, "absent"),
            PinError::Unservable(..) => (StatusCode::CONFLICT, "unservable"),
            PinError::Repository(_) => (StatusCode::INTERNAL_SERVER_ERROR, "repository"),
        },
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::token_matches;

    #[test]
    fn only_the_exact_token_matches() {
        assert!(token_matches("s3cret", Some("s3cret")));
        for given in [
            None,
            Some(""),
            Some("s3cre"),
            Some("s3cret "),
            Some("S3cret"),
        ] {
            assert!(!token_matches("s3cret", given), "{given:?}");
        }
        assert!(!token_matches("", Some("")));
        assert!(!token_matches("", None));
    }
}
