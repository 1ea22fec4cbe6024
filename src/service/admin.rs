//! The admin listener's routes (`/admin/reload`, `/admin/pin/{version}`, `/admin/unpin`,
//! bearer-token protected off loopback) and the background reloader that rescans the
//! model repository on file-system events, on a timer and on SIGHUP.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path as UrlPath, Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use notify::{RecommendedWatcher, RecursiveMode, Watcher};
use serde_json::json;
use tokio::sync::mpsc;

use super::{AppState, PinError, ReloadOutcome};

/// File-system events closer together than this are one change.
const DEBOUNCE: Duration = Duration::from_millis(200);

pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/admin/reload", post(reload))
        .route("/admin/pin/{version}", post(pin))
        .route("/admin/unpin", post(unpin))
        .layer(middleware::from_fn_with_state(state.clone(), authorize))
        .with_state(state)
}

/// Off loopback, every admin request needs `Authorization: Bearer <admin_token>`.
async fn authorize(State(state): State<Arc<AppState>>, request: Request, next: Next) -> Response {
    let config = &state.config;
    if !config.admin_listen.ip().is_loopback() {
        let expected = config.admin_token.as_deref().unwrap_or_default();
        let given = request
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        if expected.is_empty() || given != Some(expected) {
            return error(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "a valid bearer token is required",
            );
        }
    }
    next.run(request).await
}

fn error(status: StatusCode, code: &str, message: &str) -> Response {
    (
        status,
        Json(json!({"error": {"code": code, "message": message}})),
    )
        .into_response()
}

fn outcome_json(state: &AppState, outcome: ReloadOutcome) -> Response {
    let changed = matches!(outcome, ReloadOutcome::Swapped { .. });
    let serving = state.serving_now().map(|s| s.bundle.version.to_string());
    Json(json!({
        "serving": serving,
        "changed": changed,
        "pinned": state.pinned().map(|v| v.to_string()),
        "versions": state.versions(),
    }))
    .into_response()
}

/// Runs a repository operation off the async runtime and answers with the new state,
/// or with the error's status.
async fn repository_op<E: std::fmt::Display + Send + 'static>(
    state: Arc<AppState>,
    op: impl FnOnce(&AppState) -> Result<ReloadOutcome, E> + Send + 'static,
    status_of: impl FnOnce(&E) -> (StatusCode, &'static str),
) -> Response {
    let worker = state.clone();
    match tokio::task::spawn_blocking(move || op(&worker)).await {
        Ok(Ok(outcome)) => outcome_json(&state, outcome),
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

async fn reload(State(state): State<Arc<AppState>>) -> Response {
    repository_op(state, AppState::reload, repository_error).await
}

async fn unpin(State(state): State<Arc<AppState>>) -> Response {
    repository_op(state, AppState::unpin, repository_error).await
}

async fn pin(State(state): State<Arc<AppState>>, UrlPath(version): UrlPath<String>) -> Response {
    let Ok(version) = version.parse::<u64>() else {
        return error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            &format!("version: `{version}` is not a version number"),
        );
    };
    repository_op(
        state,
        move |s| s.pin(version),
        |e| match e {
            PinError::Absent(_) => (StatusCode::NOT_FOUND, "absent"),
            PinError::Unservable(..) => (StatusCode::CONFLICT, "unservable"),
            PinError::Repository(_) => (StatusCode::INTERNAL_SERVER_ERROR, "repository"),
        },
    )
    .await
}

/// Starts the reloader: rescans on file-system events (debounced), every
/// `rescan_interval_secs`, and on SIGHUP, until `stop` resolves.
pub fn spawn_reloader(
    state: Arc<AppState>,
    stop: impl Future<Output = ()> + Send + 'static,
) -> tokio::task::JoinHandle<()> {
    // Registered before returning, so a SIGHUP right after start-up is never fatal.
    let mut hangup = hangup_signal();
    tokio::spawn(async move {
        let (events_tx, mut events) = mpsc::channel::<()>(1);
        let root = state.config.model_repo.clone();
        let mut watch = if state.config.watch_events {
            RepoWatch::start(&root, events_tx.clone())
        } else {
            None
        };
        let interval_secs = state.config.rescan_interval_secs;
        let mut ticker = tokio::time::interval(Duration::from_secs(interval_secs.max(1)));
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ticker.tick().await;
        tokio::pin!(stop);
        loop {
            let trigger = tokio::select! {
                () = &mut stop => break,
                _ = ticker.tick(), if interval_secs > 0 => "rescan",
                Some(()) = hangup.recv() => "SIGHUP",
                Some(()) = events.recv() => {
                    // Debounce: wait until the events stop for a moment.
                    while tokio::time::timeout(DEBOUNCE, events.recv()).await.is_ok_and(|e| e.is_some()) {}
                    "file-system event"
                }
            };
            let worker = state.clone();
            match tokio::task::spawn_blocking(move || worker.reload()).await {
                Ok(Ok(ReloadOutcome::Swapped { from, to })) => {
                    tracing::info!(trigger, ?from, to, "reload swapped the serving version");
                }
                Ok(Ok(ReloadOutcome::Unchanged(_))) => {
                    tracing::debug!(trigger, "reload: nothing to change")
                }
                Ok(Err(e)) => {
                    tracing::warn!(trigger, error = %e, "reload could not read the repository")
                }
                Err(e) => tracing::error!(trigger, error = %e, "reload task failed"),
            }
            // A repository reached through a switched symlink needs a watch on its new target.
            if let Some(w) = &watch {
                if w.target != std::fs::canonicalize(&root).ok() {
                    watch = RepoWatch::start(&root, events_tx.clone());
                }
            }
        }
    })
}

/// A notify watcher on the repository (recursively) and on its parent directory, so a
/// switched symlink or a renamed-in repository is seen as well as files written inside.
struct RepoWatch {
    _watcher: RecommendedWatcher,
    target: Option<PathBuf>,
}

impl RepoWatch {
    fn start(root: &Path, events: mpsc::Sender<()>) -> Option<Self> {
        let handler = move |result: notify::Result<notify::Event>| {
            if result.is_ok_and(|e| !e.kind.is_access()) {
                let _ = events.try_send(());
            }
        };
        let mut watcher = match notify::recommended_watcher(handler) {
            Ok(w) => w,
            Err(e) => {
                tracing::warn!(error = %e, "file-system events unavailable; relying on rescans");
                return None;
            }
        };
        let target = std::fs::canonicalize(root).ok();
        if let Some(target) = &target {
            if let Err(e) = watcher.watch(target, RecursiveMode::Recursive) {
                tracing::warn!(error = %e, "cannot watch the model repository; relying on rescans");
            }
        }
        if let Some(parent) = root.parent().filter(|p| !p.as_os_str().is_empty()) {
            let _ = watcher.watch(parent, RecursiveMode::NonRecursive);
        }
        Some(Self {
            _watcher: watcher,
            target,
        })
    }
}

/// A stream of SIGHUPs (never fires where there are no signals).
fn hangup_signal() -> mpsc::Receiver<()> {
    let (tx, rx) = mpsc::channel(1);
    #[cfg(unix)]
    if let Ok(mut signal) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
        tokio::spawn(async move {
            while signal.recv().await.is_some() {
                if tx.send(()).await.is_err() {
                    break;
                }
            }
        });
    }
    rx
}
