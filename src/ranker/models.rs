//! Which model version serves: the snapshot every request loads once (an atomic pointer),
//! the published view of the repository (`/v1/models`), and the reload and pin control
//! that changes them. Reloads run on blocking threads and hold the control lock; readers
//! never take it, so no request waits on a reload.

use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use arc_swap::{ArcSwap, ArcSwapOption};
use tokio::sync::watch;

use super::budget::Costs;
use super::features::FeatureIndex;
use crate::bundle::Bundle;
use crate::metrics::Metrics;
use crate::repository::{Ignored, Scan, Scanner, VersionState, VersionStatus};

/// One model version in service, with what requests need precomputed.
#[derive(Debug)]
pub struct Serving {
    pub version: u64,
    pub bundle: Bundle,
    pub loaded_at: SystemTime,
    pub(super) features: FeatureIndex,
    /// What each model costs here, learned while this version serves.
    pub(super) costs: Costs,
}

impl Serving {
    pub fn new(version: u64, bundle: Bundle) -> Self {
        let features = FeatureIndex::new(&bundle);
        let costs = Costs::new(bundle.models.len());
        Self {
            version,
            bundle,
            loaded_at: SystemTime::now(),
            features,
            costs,
        }
    }
}

/// The repository as of the last reload, for readers: versions, ignored directories, pin.
#[derive(Debug, Clone, Default)]
pub struct RepositoryView {
    pub versions: Vec<VersionStatus>,
    pub ignored: Vec<Ignored>,
    pub pinned: Option<u64>,
    /// Why the last scan could not read the repository, if it could not.
    pub error: Option<String>,
}

/// What a reload did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReloadOutcome {
    /// The serving version is unchanged.
    Unchanged(Option<u64>),
    /// A version was swapped in.
    Swapped { from: Option<u64>, to: u64 },
}

/// Why a pin was refused.
#[derive(Debug, thiserror::Error)]
pub enum PinError {
    #[error("version {0} is not in the model repository")]
    Absent(u64),
    #[error("version {0} cannot serve: {1}")]
    Unservable(u64, String),
    #[error("{0}")]
    Repository(String),
}

/// What only reloads touch: the repository scanner and the pin.
#[derive(Debug)]
struct Control {
    scanner: Scanner,
    pinned: Option<u64>,
}

/// The serving snapshot, the published repository view, and their control.
#[derive(Debug)]
pub struct Models {
    serving: ArcSwapOption<Serving>,
    view: ArcSwap<RepositoryView>,
    control: Mutex<Control>,
    /// Counts completed reloads, so callers can await the next one.
    reloads: watch::Sender<u64>,
}

impl Models {
    pub fn new(scanner: Scanner) -> Self {
        Self {
            serving: ArcSwapOption::empty(),
            view: ArcSwap::from_pointee(RepositoryView::default()),
            control: Mutex::new(Control {
                scanner,
                pinned: None,
            }),
            reloads: watch::Sender::new(0),
        }
    }

    /// The serving version, for one request's whole life.
    pub fn serving(&self) -> Option<Arc<Serving>> {
        self.serving.load_full()
    }

    pub fn serving_version(&self) -> Option<u64> {
        self.serving.load().as_ref().map(|s| s.version)
    }

    /// The repository as of the last reload. Never waits for a reload in progress.
    pub fn view(&self) -> Arc<RepositoryView> {
        self.view.load_full()
    }

    /// A receiver that changes after every completed reload, whatever its outcome.
    pub fn subscribe_reloads(&self) -> watch::Receiver<u64> {
        self.reloads.subscribe()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Control> {
        self.control.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Rescans the repository and swaps in the version that should serve, if it changed.
    /// Blocking (it reads and validates models): call it off the async runtime.
    pub fn reload(&self, metrics: &Metrics) -> ReloadOutcome {
        let mut control = self.lock();
        self.reload_locked(&mut control, metrics)
    }

    fn reload_locked(&self, control: &mut Control, metrics: &Metrics) -> ReloadOutcome {
        let current = self.serving_version();
        let mut outcome = ReloadOutcome::Unchanged(current);
        // Each failed load marks its version rejected, so this ends within the versions.
        let scan = loop {
            let mut scan = match control.scanner.scan(control.pinned) {
                Ok(scan) => scan,
                Err(e) => {
                    tracing::error!(
                        repository = %control.scanner.root().display(),
                        error = %e,
                        "cannot read the model repository"
                    );
                    self.publish(None, control.pinned, Some(e.to_string()));
                    return outcome;
                }
            };
            for (version, reason) in &scan.newly_rejected {
                tracing::warn!(version, %reason, "model version rejected");
                metrics.reloads.with_label_values(&["rejected"]).inc();
            }
            let Some(target) = scan.target else {
                break scan;
            };
            if Some(target) == current && scan.target_bundle.is_none() {
                break scan;
            }
            let loaded = match scan.target_bundle.take() {
                Some(bundle) => Ok(bundle),
                None => control.scanner.load(target),
            };
            match loaded {
                Ok(bundle) => {
                    metrics.serving(
                        target,
                        bundle.default_profile().first_m().unwrap_or(0),
                        bundle.profiles.iter().map(|p| p.name.as_str()),
                    );
                    metrics.reloads.with_label_values(&["loaded"]).inc();
                    tracing::info!(
                        version = target,
                        previous = ?current,
                        models = bundle.models.len(),
                        profiles = bundle.profiles.len(),
                        trees = bundle.models.iter().map(|m| m.model.num_trees()).sum::<usize>(),
                        canary_rows = bundle.canary_rows,
                        "model version serving"
                    );
                    self.serving
                        .store(Some(Arc::new(Serving::new(target, bundle))));
                    outcome = ReloadOutcome::Swapped {
                        from: current,
                        to: target,
                    };
                    break scan;
                }
                Err(e) => {
                    tracing::warn!(version = target, reason = %e, "model version rejected while loading");
                    metrics.reloads.with_label_values(&["rejected"]).inc();
                }
            }
        };
        self.publish(Some(scan), control.pinned, None);
        outcome
    }

    /// Publishes the view of `scan` (or keeps the last one's versions when there is none),
    /// marking what serves as it truly is, and wakes those awaiting a reload.
    fn publish(&self, scan: Option<Scan>, pinned: Option<u64>, error: Option<String>) {
        let (mut versions, ignored) = match scan {
            Some(scan) => (scan.versions, scan.ignored),
            None => {
                let last = self.view.load();
                (last.versions.clone(), last.ignored.clone())
            }
        };
        if let Some(serving) = self.serving_version() {
            mark_serving(&mut versions, serving);
        }
        self.view.store(Arc::new(RepositoryView {
            versions,
            ignored,
            pinned,
            error,
        }));
        self.reloads.send_modify(|n| *n += 1);
    }

    /// Pins `version` (it must be valid) and serves it until unpinned. A version that
    /// cannot serve leaves the pin and the serving version as they were.
    pub fn pin(&self, version: u64, metrics: &Metrics) -> Result<ReloadOutcome, PinError> {
        let mut control = self.lock();
        let previous = control.pinned.replace(version);
        let outcome = self.reload_locked(&mut control, metrics);
        if self.serving_version() == Some(version) {
            tracing::info!(version, "model version pinned");
            return Ok(outcome);
        }
        control.pinned = previous;
        self.publish_pin(previous);
        let view = self.view();
        if let Some(error) = &view.error {
            return Err(PinError::Repository(error.clone()));
        }
        Err(match view.versions.iter().find(|v| v.version == version) {
            None => PinError::Absent(version),
            Some(status) => PinError::Unservable(
                version,
                match &status.state {
                    VersionState::Rejected(reason) => reason.clone(),
                    VersionState::Incomplete => "incomplete: no bundle.toml yet".into(),
                    _ => "it failed validation while loading".into(),
                },
            ),
        })
    }

    /// Removes the pin: the highest valid version serves again.
    pub fn unpin(&self, metrics: &Metrics) -> ReloadOutcome {
        let mut control = self.lock();
        control.pinned = None;
        tracing::info!("model version unpinned");
        self.reload_locked(&mut control, metrics)
    }

    fn publish_pin(&self, pinned: Option<u64>) {
        let mut view = RepositoryView::clone(&self.view.load());
        view.pinned = pinned;
        self.view.store(Arc::new(view));
    }
}

/// Marks `serving` as serving. When its files on disk no longer say it is valid (changed
/// and rejected, incomplete, or gone), it still serves from memory: the state says so and
/// the warning says what the disk holds.
fn mark_serving(versions: &mut Vec<VersionStatus>, serving: u64) {
    let stale = "the copy loaded earlier keeps serving";
    match versions.iter_mut().find(|v| v.version == serving) {
        Some(status) => {
            status.warning = match &status.state {
                VersionState::Ready | VersionState::Serving => None,
                VersionState::Rejected(reason) => Some(format!(
                    "its files changed on disk and no longer validate ({reason}); {stale}"
                )),
                VersionState::Incomplete => {
                    Some(format!("its bundle.toml is gone from the disk; {stale}"))
                }
            };
            status.state = VersionState::Serving;
        }
        None => {
            let at = versions.partition_point(|v| v.version < serving);
            versions.insert(
                at,
                VersionStatus {
                    version: serving,
                    state: VersionState::Serving,
                    warning: Some(format!(
                        "its directory is gone from the repository; {stale}"
                    )),
                },
            );
        }
    }
}
