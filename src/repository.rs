//! The model repository on disk: which directories are versions (canonical decimal names
//! only), what each one's state is, and which version should serve (the pinned one, else
//! the highest valid). A scan validates every new or changed version but keeps in memory
//! only the one chosen to serve. Loading one bundle is `bundle.rs`; swapping the chosen one
//! into service is the ranking core's (`ranker::models`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde::Serialize;

use crate::bundle::{Bundle, BundleError, BUNDLE_FILE};

/// What a version directory is, as last checked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", content = "reason", rename_all = "lowercase")]
pub enum VersionState {
    /// In service (from memory: see [`VersionStatus::warning`] when its files changed since).
    Serving,
    /// Valid, not in service.
    Ready,
    /// Failed validation (or could not be read); never served while so.
    Rejected(String),
    /// No `bundle.toml` yet: still being written.
    Incomplete,
}

/// One version directory and its state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VersionStatus {
    pub version: u64,
    #[serde(flatten)]
    pub state: VersionState,
    /// For the serving version only: what its files on disk say now, when that differs
    /// from the copy in service (changed and no longer valid, or gone).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub warning: Option<String>,
}

impl VersionStatus {
    fn new(version: u64, state: VersionState) -> Self {
        Self {
            version,
            state,
            warning: None,
        }
    }
}

/// A directory in the repository that is not a version, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Ignored {
    pub name: String,
    pub reason: String,
}

/// The directories of a repository: versions (ascending) and the others.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Listing {
    pub versions: Vec<u64>,
    pub ignored: Vec<Ignored>,
}

/// Reads the version directories of `root`. Only a canonical decimal name is a version:
/// `01` or `+1` would alias version 1, so they are ignored, with the reason.
pub fn list_versions(root: &Path) -> std::io::Result<Listing> {
    let mut listing = Listing::default();
    for entry in std::fs::read_dir(root)? {
        let Ok(entry) = entry else { continue };
        if !entry.path().is_dir() {
            continue;
        }
        let name = entry.file_name().to_string_lossy().into_owned();
        match version_of(&name) {
            Ok(version) => listing.versions.push(version),
            Err(reason) => listing.ignored.push(Ignored { name, reason }),
        }
    }
    listing.versions.sort_unstable();
    listing.ignored.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(listing)
}

/// The version a directory name stands for, or why it stands for none.
fn version_of(name: &str) -> Result<u64, String> {
    match name.parse::<u64>() {
        Ok(version) if version.to_string() == name => Ok(version),
        Ok(version) => Err(format!(
            "not a canonical version number (version {version} is spelt `{version}`)"
        )),
        Err(_) => Err("not a version number".to_owned()),
    }
}

/// What identifies a version directory's contents: resolved path, and each file's name,
/// length and modification time. A changed fingerprint means the version is checked again.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Fingerprint(PathBuf, Vec<(String, u64, Option<SystemTime>)>);

fn fingerprint(dir: &Path) -> std::io::Result<Fingerprint> {
    let resolved = std::fs::canonicalize(dir)?;
    let mut files = Vec::new();
    for entry in std::fs::read_dir(&resolved)? {
        let entry = entry?;
        let meta = std::fs::metadata(entry.path())?;
        files.push((
            entry.file_name().to_string_lossy().into_owned(),
            meta.len(),
            meta.modified().ok(),
        ));
    }
    files.sort();
    Ok(Fingerprint(resolved, files))
}

/// Scans a repository, remembering each version's verdict until its files change, so a
/// rescan only loads what is new or changed.
#[derive(Debug)]
pub struct Scanner {
    root: PathBuf,
    verdicts: BTreeMap<u64, (Fingerprint, Result<(), String>)>,
}

/// The outcome of one scan.
#[derive(Debug)]
pub struct Scan {
    /// Every version on disk with its state, ascending (`Ready` for the target too: the
    /// caller marks what serves once it does).
    pub versions: Vec<VersionStatus>,
    /// Directories that are not versions.
    pub ignored: Vec<Ignored>,
    /// Versions that were checked in this scan and failed, with the reason.
    pub newly_rejected: Vec<(u64, String)>,
    /// The version that should serve: the pinned one if it is valid, else (unpinned) the
    /// highest valid one.
    pub target: Option<u64>,
    /// The target, when this scan validated it (it is new or its files changed): loaded
    /// already, so it need not be read twice.
    pub target_bundle: Option<Bundle>,
    /// Likewise each version asked to be kept (the policy's canary and shadow) that this
    /// scan validated. Every other version validated in the scan was dropped at once.
    pub kept: Vec<(u64, Bundle)>,
}

impl Scan {
    /// The state of `version` on disk, `None` when it has no directory.
    pub fn state(&self, version: u64) -> Option<&VersionState> {
        self.versions
            .iter()
            .find(|v| v.version == version)
            .map(|v| &v.state)
    }
}

impl Scanner {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self {
            root: root.into(),
            verdicts: BTreeMap::new(),
        }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Checks every version directory whose files changed since the last scan, from the
    /// highest down, and chooses the one to serve (see [`Scan::target`]), keeping the
    /// bundles of the versions in `keep` that it validates.
    pub fn scan(&mut self, pinned: Option<u64>, keep: &[u64]) -> std::io::Result<Scan> {
        let listing = list_versions(&self.root)?;
        self.verdicts
            .retain(|v, _| listing.versions.binary_search(v).is_ok());
        let mut scan = Scan {
            versions: Vec::with_capacity(listing.versions.len()),
            ignored: listing.ignored,
            newly_rejected: Vec::new(),
            target: None,
            target_bundle: None,
            kept: Vec::new(),
        };
        for &version in listing.versions.iter().rev() {
            let wanted = match pinned {
                Some(pin) => pin == version,
                None => scan.target.is_none(),
            };
            let kept = keep.contains(&version);
            let (state, bundle, fresh) = self.check(version, wanted || kept);
            if let (VersionState::Rejected(reason), true) = (&state, fresh) {
                scan.newly_rejected.push((version, reason.clone()));
            }
            if wanted && state == VersionState::Ready {
                scan.target = Some(version);
                scan.target_bundle = bundle;
            } else if let Some(bundle) = bundle.filter(|_| kept) {
                scan.kept.push((version, bundle));
            }
            scan.versions.push(VersionStatus::new(version, state));
        }
        scan.versions.reverse();
        Ok(scan)
    }

    /// One version's state; the bundle too when this check loaded it and `keep` asks for
    /// it; and whether the verdict is new (not remembered from an earlier scan).
    fn check(&mut self, version: u64, keep: bool) -> (VersionState, Option<Bundle>, bool) {
        let dir = self.dir(version);
        if !dir.join(BUNDLE_FILE).exists() {
            self.verdicts.remove(&version);
            return (VersionState::Incomplete, None, false);
        }
        let print = match fingerprint(&dir) {
            Ok(print) => print,
            Err(e) => {
                self.verdicts.remove(&version);
                return (
                    VersionState::Rejected(format!("cannot read the version directory: {e}")),
                    None,
                    true,
                );
            }
        };
        if let Some((known, verdict)) = self.verdicts.get(&version) {
            if *known == print {
                return (state_of(verdict), None, false);
            }
        }
        match Bundle::load(&dir) {
            Ok(bundle) => {
                self.verdicts.insert(version, (print, Ok(())));
                (VersionState::Ready, keep.then_some(bundle), true)
            }
            Err(BundleError::Incomplete) => {
                self.verdicts.remove(&version);
                (VersionState::Incomplete, None, false)
            }
            Err(e) => {
                let reason = e.to_string();
                self.verdicts.insert(version, (print, Err(reason.clone())));
                (VersionState::Rejected(reason), None, true)
            }
        }
    }

    fn dir(&self, version: u64) -> PathBuf {
        self.root.join(version.to_string())
    }

    /// Loads version `version` for service, validating it again as its files may have
    /// changed since it was checked. A failure is remembered, so the version shows as
    /// rejected (and is not chosen again) until its files change.
    pub fn load(&mut self, version: u64) -> Result<Bundle, BundleError> {
        let dir = self.dir(version);
        let loaded = Bundle::load(&dir);
        if let Err(e) = &loaded {
            match fingerprint(&dir) {
                Ok(print) => {
                    self.verdicts.insert(version, (print, Err(e.to_string())));
                }
                Err(_) => {
                    self.verdicts.remove(&version);
                }
            }
        }
        loaded
    }
}

fn state_of(verdict: &Result<(), String>) -> VersionState {
    match verdict {
        Ok(()) => VersionState::Ready,
        Err(reason) => VersionState::Rejected(reason.clone()),
    }
}
