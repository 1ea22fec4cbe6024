//! The model repository on disk: numbered version directories, their states, and the
//! choice of the version to serve (the highest valid one, or the pinned one). Loading one
//! version is `bundle.rs`; swapping it into service is the service's reloader.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde::Serialize;

use crate::bundle::{Bundle, BundleError, BUNDLE_FILE};

/// What a version directory is, as last checked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", content = "reason", rename_all = "lowercase")]
pub enum VersionState {
    /// Valid and in service.
    Serving,
    /// Valid, not in service.
    Ready,
    /// Failed validation; never served.
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

/// The versions in `root`: directories named by a number, ascending.
pub fn list_versions(root: &Path) -> std::io::Result<Vec<u64>> {
    let mut versions: Vec<u64> = std::fs::read_dir(root)?
        .filter_map(Result::ok)
        .filter(|e| e.path().is_dir())
        .filter_map(|e| e.file_name().to_str().and_then(|n| n.parse::<u64>().ok()))
        .collect();
    versions.sort_unstable();
    Ok(versions)
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
    /// Every version on disk with its state (`Ready` for the one chosen too: the caller
    /// marks it `Serving` once it is in service).
    pub versions: Vec<VersionStatus>,
    /// Versions that were checked in this scan and failed, with the reason.
    pub newly_rejected: Vec<(u64, String)>,
    /// Versions that were checked in this scan (new, or their files changed) and passed,
    /// already loaded, so the one chosen to serve need not be loaded twice.
    pub fresh: Vec<Bundle>,
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

    /// Checks every version directory whose files changed since the last scan.
    pub fn scan(&mut self) -> std::io::Result<Scan> {
        let versions = list_versions(&self.root)?;
        self.verdicts.retain(|v, _| versions.contains(v));
        let mut statuses = Vec::new();
        let mut newly_rejected = Vec::new();
        let mut fresh = Vec::new();
        for version in versions {
            let dir = self.root.join(version.to_string());
            if !dir.join(BUNDLE_FILE).exists() {
                self.verdicts.remove(&version);
                statuses.push(VersionStatus {
                    version,
                    state: VersionState::Incomplete,
                });
                continue;
            }
            let Ok(print) = fingerprint(&dir) else {
                continue; // vanished while scanning; the next scan sees it as it is then
            };
            let known = self.verdicts.get(&version).filter(|(p, _)| *p == print);
            let verdict = match known {
                Some((_, verdict)) => verdict.clone(),
                None => {
                    let verdict = match Bundle::load(&dir) {
                        Ok(bundle) => {
                            fresh.push(bundle);
                            Ok(())
                        }
                        Err(BundleError::Incomplete) => {
                            statuses.push(VersionStatus {
                                version,
                                state: VersionState::Incomplete,
                            });
                            continue;
                        }
                        Err(e) => {
                            newly_rejected.push((version, e.to_string()));
                            Err(e.to_string())
                        }
                    };
                    self.verdicts.insert(version, (print, verdict.clone()));
                    verdict
                }
            };
            statuses.push(VersionStatus {
                version,
                state: match verdict {
                    Ok(()) => VersionState::Ready,
                    Err(reason) => VersionState::Rejected(reason),
                },
            });
        }
        Ok(Scan {
            versions: statuses,
            newly_rejected,
            fresh,
        })
    }

    /// Loads version `version` for service (validating it again, as its files may have changed).
    pub fn load(&self, version: u64) -> Result<Bundle, BundleError> {
        Bundle::load(&self.root.join(version.to_string()))
    }
}

impl Scan {
    /// The version that should serve: `pinned` if it is ready, else the highest ready one.
    pub fn choose(&self, pinned: Option<u64>) -> Option<u64> {
        let ready = |v: &&VersionStatus| v.state == VersionState::Ready;
        match pinned {
            Some(pin) => self
                .versions
                .iter()
                .filter(ready)
                .find(|v| v.version == pin)
                .map(|v| v.version),
            None => self.versions.iter().rev().find(ready).map(|v| v.version),
        }
    }
}
