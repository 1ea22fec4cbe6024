//! The background reloader: rescans the model repository on file-system events
//! (debounced), every `rescan_interval_secs`, and on SIGHUP. Everything that touches the
//! disk — the rescan, the watcher's start, resolving the repository's path — runs on
//! blocking threads, never on the async runtime.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use notify::{RecommendedWatcher, RecursiveMode, Watcher};
use tokio::sync::mpsc;

use crate::ranker::{Ranker, ReloadOutcome};

/// File-system events closer together than this are one change.
const DEBOUNCE: Duration = Duration::from_millis(200);

/// Starts the reloader: rescans on file-system events (debounced), every
/// `rescan_interval_secs`, and on SIGHUP, until `stop` resolves.
pub fn spawn(
    ranker: Arc<Ranker>,
    stop: impl Future<Output = ()> + Send + 'static,
) -> tokio::task::JoinHandle<()> {
    // Registered before returning, so a SIGHUP right after start-up is never fatal.
    let mut hangup = hangup_signal();
    tokio::spawn(async move {
        let (events_tx, mut events) = mpsc::channel::<()>(1);
        let root = ranker.config.model_repo.clone();
        let mut watch = if ranker.config.watch_events {
            RepoWatch::start_blocking(root.clone(), events_tx.clone()).await
        } else {
            None
        };
        let interval_secs = ranker.config.rescan_interval_secs;
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
            let worker = ranker.clone();
            let target = watch.as_ref().map(|w| w.target.clone());
            let resolve = root.clone();
            let reloaded = tokio::task::spawn_blocking(move || {
                (worker.reload(), std::fs::canonicalize(&resolve).ok())
            })
            .await;
            let resolved = match reloaded {
                Ok((ReloadOutcome::Swapped { from, to }, resolved)) => {
                    tracing::info!(trigger, ?from, to, "reload swapped the serving version");
                    resolved
                }
                Ok((ReloadOutcome::Unchanged(_), resolved)) => {
                    tracing::debug!(trigger, "reload: nothing to change");
                    resolved
                }
                Err(e) => {
                    tracing::error!(trigger, error = %e, "reload task failed");
                    continue;
                }
            };
            // A repository reached through a switched symlink needs a watch on its new target.
            if target.is_some_and(|t| t != resolved) {
                watch = RepoWatch::start_blocking(root.clone(), events_tx.clone()).await;
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
    /// [`RepoWatch::start`] on a blocking thread.
    async fn start_blocking(root: PathBuf, events: mpsc::Sender<()>) -> Option<Self> {
        tokio::task::spawn_blocking(move || Self::start(&root, events))
            .await
            .ok()
            .flatten()
    }

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
