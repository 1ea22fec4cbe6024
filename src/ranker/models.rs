//! Which model versions serve: the routing snapshot every request loads once (an atomic
//! pointer: the main version, and the canary and shadow of `serving.toml`), the published
//! view of the repository and the policy (`/v1/models`), and the reload and pin control
//! that changes them. Reloads run on blocking threads and hold the control lock; readers
//! never take it, so no request waits on a reload. Only the versions the routing holds
//! stay in memory: a version it drops is freed once its last request ends.

use std::sync::{Arc, Mutex};

use arc_swap::{ArcSwap, ArcSwapOption};
use tokio::sync::watch;

use super::routing::Routing;
use super::serving::Serving;
use crate::metrics::Metrics;
use crate::policy::{Policy, PolicyError};
use crate::repository::{Ignored, Scan, Scanner, VersionState, VersionStatus};

/// The repository as of the last reload, for readers: versions, ignored directories, pin,
/// and the rollout policy.
#[derive(Debug, Clone, Default)]
pub struct RepositoryView {
    pub versions: Vec<VersionStatus>,
    pub ignored: Vec<Ignored>,
    /// The pin in force: the admin's, else the policy file's when its version can serve.
    pub pinned: Option<u64>,
    /// Why the last scan could not read the repository, if it could not.
    pub error: Option<String>,
    pub policy: PolicyView,
}

/// The rollout policy as this replica holds it.
#[derive(Debug, Clone, Default)]
pub struct PolicyView {
    /// The last valid contents of `serving.toml` (the default policy without the file).
    pub file: Policy,
    /// Whether `serving.toml` exists.
    pub file_present: bool,
    /// Why the file on disk is not in force, when it is invalid.
    pub file_error: Option<String>,
    /// The admin's pin on this replica: it overrides the whole file until unpinned.
    pub admin_pin: Option<u64>,
    /// The canary and shadow versions in force (named by the file, valid and loaded).
    pub canary: Option<u64>,
    pub shadow: Option<u64>,
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

/// What only reloads touch: the repository scanner, the admin's pin, the policy.
#[derive(Debug)]
struct Control {
    scanner: Scanner,
    pinned: Option<u64>,
    policy: PolicyView,
    /// What the last reload logged as ignored, so each is logged once.
    ignored_notes: Vec<String>,
}

/// The routing snapshot, the published repository view, and their control.
#[derive(Debug)]
pub struct Models {
    routing: ArcSwapOption<Routing>,
    view: ArcSwap<RepositoryView>,
    control: Mutex<Control>,
    /// Counts completed reloads, so callers can await the next one.
    reloads: watch::Sender<u64>,
}

impl Models {
    pub fn new(scanner: Scanner) -> Self {
        Self {
            routing: ArcSwapOption::empty(),
            view: ArcSwap::from_pointee(RepositoryView::default()),
            control: Mutex::new(Control {
                scanner,
                pinned: None,
                policy: PolicyView::default(),
                ignored_notes: Vec::new(),
            }),
            reloads: watch::Sender::new(0),
        }
    }

    /// The versions in service, for one request's whole life.
    pub fn routing(&self) -> Option<Arc<Routing>> {
        self.routing.load_full()
    }

    /// The main serving version.
    pub fn serving(&self) -> Option<Arc<Serving>> {
        self.routing.load().as_ref().map(|r| r.main.clone())
    }

    pub fn serving_version(&self) -> Option<u64> {
        self.routing.load().as_ref().map(|r| r.main.version)
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
        read_policy(control, metrics);
        let mut notes = Vec::new();
        let current = self.routing.load_full();
        let current_main = current.as_ref().map(|r| r.main.version);
        let mut outcome = ReloadOutcome::Unchanged(current_main);
        // The admin's pin overrides the whole file on this replica.
        let (file_pin, roles) = match control.pinned {
            Some(_) => (None, (None, None)),
            None => {
                let file = &control.policy.file;
                (
                    file.pin,
                    (
                        file.canary.as_ref().map(|c| (c.version, c.buckets())),
                        file.shadow.as_ref().map(|s| (s.version, s.sample)),
                    ),
                )
            }
        };
        let mut pin = control.pinned.or(file_pin);
        let keep: Vec<u64> = roles
            .0
            .map(|c| c.0)
            .into_iter()
            .chain(roles.1.map(|s| s.0))
            .collect();
        let mut main: Option<Arc<Serving>> = None;
        // Each failed load marks its version rejected, so this ends within the versions.
        let mut scan = loop {
            let mut scan = match control.scanner.scan(pin, &keep) {
                Ok(scan) => scan,
                Err(e) => {
                    tracing::error!(
                        repository = %control.scanner.root().display(),
                        error = %e,
                        "cannot read the model repository"
                    );
                    let pinned = self.view.load().pinned;
                    self.publish(None, control, pinned, Some(e.to_string()));
                    return outcome;
                }
            };
            for (version, reason) in &scan.newly_rejected {
                tracing::warn!(version, %reason, "model version rejected");
                metrics.reloads.with_label_values(&["rejected"]).inc();
            }
            let Some(target) = scan.target else {
                if let Some(version) = pin.filter(|_| pin == file_pin) {
                    // A pin from the file that cannot serve is ignored until it can.
                    notes.push(format!(
                        "serving.toml pins version {version}, which cannot serve; serving the highest valid version meanwhile"
                    ));
                    pin = None;
                    continue;
                }
                break scan;
            };
            let fresh = scan.target_bundle.take();
            if fresh.is_none() {
                if let Some(resident) = find_resident(current.as_deref(), target) {
                    main = Some(resident);
                    break scan;
                }
            }
            let loaded = match fresh {
                Some(bundle) => Ok(bundle),
                None => control.scanner.load(target),
            };
            match loaded {
                Ok(bundle) => {
                    main = Some(Arc::new(Serving::new(target, bundle)));
                    break scan;
                }
                Err(e) => {
                    tracing::warn!(version = target, reason = %e, "model version rejected while loading");
                    metrics.reloads.with_label_values(&["rejected"]).inc();
                }
            }
        };
        let routing = main.map(|main| {
            let mut role = |named: Option<u64>, what: &str| {
                let version = named.filter(|&v| v != main.version)?;
                let found = self.role_version(control, &mut scan, current.as_deref(), version);
                if let Err(reason) = &found {
                    notes.push(format!(
                        "the {what} version {version} {reason}; its traffic stays on the main version"
                    ));
                }
                found.ok()
            };
            let canary = roles
                .0
                .and_then(|(v, buckets)| role(Some(v), "canary").map(|s| (s, buckets)));
            let shadow = roles
                .1
                .and_then(|(v, sample)| role(Some(v), "shadow").map(|s| (s, sample)));
            Routing {
                main,
                canary,
                shadow,
            }
        });
        for note in &notes {
            if !control.ignored_notes.contains(note) {
                tracing::warn!("{note}");
            }
        }
        control.ignored_notes = notes;
        if let Some(routing) = routing {
            let main = &routing.main;
            if current_main != Some(main.version) {
                let bundle = &main.bundle;
                metrics.serving(
                    main.version,
                    bundle.default_profile().first_m().unwrap_or(0),
                    bundle.profiles.iter().map(|p| p.name.as_str()),
                );
                metrics.reloads.with_label_values(&["loaded"]).inc();
                tracing::info!(
                    version = main.version,
                    previous = ?current_main,
                    models = bundle.models.len(),
                    profiles = bundle.profiles.len(),
                    trees = bundle.models.iter().map(|m| m.model.num_trees()).sum::<usize>(),
                    canary_rows = bundle.canary_rows,
                    "model version serving"
                );
                outcome = ReloadOutcome::Swapped {
                    from: current_main,
                    to: main.version,
                };
            }
            if !current
                .as_deref()
                .is_some_and(|c| same_routing(c, &routing))
            {
                let version = |r: Option<&Arc<Serving>>| r.map(|s| s.version);
                let canary = version(routing.canary.as_ref().map(|(s, _)| s));
                let shadow = version(routing.shadow.as_ref().map(|(s, _)| s));
                if let Some(canary) = canary {
                    metrics
                        .canary_requests
                        .with_label_values(&[&canary.to_string()]);
                }
                control.policy.canary = canary;
                control.policy.shadow = shadow;
                self.routing.store(Some(Arc::new(routing)));
            }
        }
        control.policy.admin_pin = control.pinned;
        let in_force = pin.filter(|&p| Some(p) == self.serving_version());
        metrics.policy(in_force, control.policy.canary, control.policy.shadow);
        self.publish(Some(scan), control, in_force, None);
        outcome
    }

    /// The loaded copy of `version` for a canary or shadow role: the one this scan
    /// validated, else one already resident, else loaded now. `Err` says why it cannot
    /// serve.
    fn role_version(
        &self,
        control: &mut Control,
        scan: &mut Scan,
        current: Option<&Routing>,
        version: u64,
    ) -> Result<Arc<Serving>, String> {
        match scan.state(version) {
            Some(VersionState::Ready) => {}
            None => return Err("is not in the repository".into()),
            Some(VersionState::Incomplete) => return Err("is incomplete".into()),
            Some(VersionState::Rejected(reason)) => return Err(format!("is invalid: {reason}")),
            Some(VersionState::Serving) => {}
        }
        if let Some(at) = scan.kept.iter().position(|(v, _)| *v == version) {
            let (_, bundle) = scan.kept.swap_remove(at);
            return Ok(Arc::new(Serving::new(version, bundle)));
        }
        if let Some(resident) = find_resident(current, version) {
            return Ok(resident);
        }
        control
            .scanner
            .load(version)
            .map(|bundle| Arc::new(Serving::new(version, bundle)))
            .map_err(|e| format!("is invalid: {e}"))
    }

    /// Publishes the view of `scan` (or keeps the last one's versions when there is none),
    /// marking what serves as it truly is, and wakes those awaiting a reload.
    fn publish(
        &self,
        scan: Option<Scan>,
        control: &Control,
        pinned: Option<u64>,
        error: Option<String>,
    ) {
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
            policy: control.policy.clone(),
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
        let view = self.view();
        self.reload_locked(&mut control, metrics);
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
}

/// Reads `serving.toml` into `control`: a valid file is in force; a missing one means the
/// default policy; an invalid one keeps the policy in force (logged and counted once per
/// new error).
fn read_policy(control: &mut Control, metrics: &Metrics) {
    let policy = &mut control.policy;
    match Policy::read(control.scanner.root()) {
        Ok(read) => {
            let present = read.is_some();
            let file = read.unwrap_or_default();
            if file != policy.file || present != policy.file_present || policy.file_error.is_some()
            {
                if present {
                    metrics.policy_reloads.with_label_values(&["loaded"]).inc();
                }
                tracing::info!(policy = ?file, present, "rollout policy in force");
            }
            policy.file = file;
            policy.file_present = present;
            policy.file_error = None;
        }
        Err(PolicyError(reason)) => {
            if policy.file_error.as_deref() != Some(reason.as_str()) {
                metrics
                    .policy_reloads
                    .with_label_values(&["rejected"])
                    .inc();
                tracing::error!(%reason, "serving.toml is invalid; the previous policy stays in force");
            }
            policy.file_error = Some(reason);
        }
    }
}

/// The resident copy of `version`, in whatever role it is loaded.
fn find_resident(routing: Option<&Routing>, version: u64) -> Option<Arc<Serving>> {
    routing?.resident().find(|s| s.version == version).cloned()
}

/// Whether two routings hold the same loaded versions in the same roles and shares.
fn same_routing(a: &Routing, b: &Routing) -> bool {
    let same = |x: Option<&Arc<Serving>>, y: Option<&Arc<Serving>>| match (x, y) {
        (Some(x), Some(y)) => Arc::ptr_eq(x, y),
        (None, None) => true,
        _ => false,
    };
    Arc::ptr_eq(&a.main, &b.main)
        && same(
            a.canary.as_ref().map(|c| &c.0),
            b.canary.as_ref().map(|c| &c.0),
        )
        && a.canary.as_ref().map(|c| c.1) == b.canary.as_ref().map(|c| c.1)
        && same(
            a.shadow.as_ref().map(|c| &c.0),
            b.shadow.as_ref().map(|c| &c.0),
        )
        && a.shadow.as_ref().map(|c| c.1) == b.shadow.as_ref().map(|c| c.1)
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
