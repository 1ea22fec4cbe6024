//! One version of the model repository: `bundle.toml`, the Direct (recall) and Stage2
//! (rerank) models it names, and the canary check that must pass before it may serve.
//! Which version serves, and when versions are rescanned, is `repository.rs`'s concern.

use std::path::{Component, Path, PathBuf};

use serde::Deserialize;

use crate::csv_input;
use crate::engine::{FeatureMatrix, Model, ModelError};

/// The file whose presence makes a version directory complete; written last.
pub const BUNDLE_FILE: &str = "bundle.toml";

/// Why a version cannot serve.
#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    #[error("{BUNDLE_FILE} is missing: the version is incomplete")]
    Incomplete,
    #[error("cannot read {path}: {message}")]
    Io { path: PathBuf, message: String },
    #[error("{BUNDLE_FILE}: {0}")]
    Config(String),
    #[error("{file}: {source}")]
    Model {
        file: String,
        #[source]
        source: ModelError,
    },
    #[error("canary {0}")]
    Canary(String),
}

/// `bundle.toml`, strictly: unknown keys are an error.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct BundleFile {
    format_version: u32,
    recall: RecallSection,
    rerank: RerankSection,
    canary: Option<CanarySection>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RecallSection {
    model: String,
    default_m: usize,
    max_m: usize,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RerankSection {
    model: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct CanarySection {
    file: String,
    #[serde(default = "default_tolerance")]
    tolerance: f64,
}

fn default_tolerance() -> f64 {
    1e-9
}

/// A validated bundle: both models loaded and checked, ready to serve. Its version number
/// is the repository's to give, not the bundle's.
#[derive(Debug)]
pub struct Bundle {
    /// Recall model: scores every candidate.
    pub direct: Model,
    /// Rerank model: scores the Top-M.
    pub stage2: Model,
    /// M when a request gives none.
    pub default_m: usize,
    /// The largest M a request may ask for.
    pub max_m: usize,
    /// How many canary rows were checked (0 without a canary).
    pub canary_rows: usize,
}

impl Bundle {
    /// Loads and validates the bundle directory `dir` (any directory holding
    /// `bundle.toml`) exactly as the service does before serving it.
    pub fn load(dir: &Path) -> Result<Self, BundleError> {
        let bundle_path = dir.join(BUNDLE_FILE);
        let text =
            match regular_file(&bundle_path).and_then(|()| std::fs::read_to_string(&bundle_path)) {
                Ok(text) => text,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    return Err(BundleError::Incomplete)
                }
                Err(e) => {
                    return Err(BundleError::Io {
                        path: bundle_path,
                        message: e.to_string(),
                    })
                }
            };
        let spec: BundleFile =
            toml::from_str(&text).map_err(|e| BundleError::Config(e.to_string()))?;
        if spec.format_version != 1 {
            return Err(BundleError::Config(format!(
                "format_version = {} is not supported (only 1)",
                spec.format_version
            )));
        }
        if spec.recall.default_m < 1 || spec.recall.default_m > spec.recall.max_m {
            return Err(BundleError::Config(format!(
                "recall.default_m = {} must be between 1 and recall.max_m = {}",
                spec.recall.default_m, spec.recall.max_m
            )));
        }

        let direct = load_model(dir, &spec.recall.model, "recall.model")?;
        let stage2 = load_model(dir, &spec.rerank.model, "rerank.model")?;
        let mut bundle = Self {
            direct,
            stage2,
            default_m: spec.recall.default_m,
            max_m: spec.recall.max_m,
            canary_rows: 0,
        };
        bundle.check_finite_on_missing_row()?;
        if let Some(canary) = &spec.canary {
            if !(canary.tolerance >= 0.0 && canary.tolerance.is_finite()) {
                return Err(BundleError::Config(format!(
                    "canary.tolerance = {} must be a finite number >= 0",
                    canary.tolerance
                )));
            }
            let path = resolve(dir, &canary.file, "canary.file")?;
            bundle.canary_rows = bundle.check_canary(&path, canary.tolerance)?;
        }
        Ok(bundle)
    }

    /// A row with every feature missing must score finitely in both models.
    fn check_finite_on_missing_row(&self) -> Result<(), BundleError> {
        for (name, model) in [("recall", &self.direct), ("rerank", &self.stage2)] {
            let mut out = [0.0];
            model.predict(&FeatureMatrix::missing(1, model.num_features()), &mut out);
            if !out[0].is_finite() {
                return Err(BundleError::Config(format!(
                    "the {name} model scores a row of missing values as {}",
                    out[0]
                )));
            }
        }
        Ok(())
    }

    /// Scores every canary row with both models and compares with the expected scores.
    fn check_canary(&self, path: &Path, tolerance: f64) -> Result<usize, BundleError> {
        let loaded = csv_input::read(
            path,
            &[&self.direct, &self.stage2],
            &["expected_direct", "expected_stage2"],
        )
        .map_err(|e| BundleError::Canary(e.to_string()))?;
        if loaded.num_rows == 0 {
            return Err(BundleError::Canary(format!(
                "{} has no rows",
                path.display()
            )));
        }
        for (m, (model, name)) in [(&self.direct, "direct"), (&self.stage2, "stage2")]
            .into_iter()
            .enumerate()
        {
            let mut scores = vec![0.0; loaded.num_rows];
            model.predict(&loaded.matrices[m], &mut scores);
            for (row, (&got, &want)) in scores.iter().zip(&loaded.columns[m]).enumerate() {
                if !got.is_finite() {
                    return Err(BundleError::Canary(format!(
                        "row {} (line {}): {name} score is {got}",
                        row + 1,
                        row + 2
                    )));
                }
                if !within(got, want, tolerance) {
                    return Err(BundleError::Canary(format!(
                        "row {} (line {}): {name} scores {got:?}, expected_{name} is {want:?} (tolerance {tolerance:e})",
                        row + 1,
                        row + 2
                    )));
                }
            }
        }
        Ok(loaded.num_rows)
    }
}

/// Relative difference within `tolerance`.
fn within(got: f64, want: f64, tolerance: f64) -> bool {
    got == want || (got - want).abs() <= tolerance * got.abs().max(want.abs())
}

/// A file named in `bundle.toml`: a plain relative path inside the version directory.
fn resolve(dir: &Path, file: &str, key: &str) -> Result<PathBuf, BundleError> {
    let relative = Path::new(file);
    let plain = !file.is_empty()
        && relative
            .components()
            .all(|c| matches!(c, Component::Normal(_)));
    if !plain {
        return Err(BundleError::Config(format!(
            "{key} = \"{file}\" must be a file inside the version directory"
        )));
    }
    let path = dir.join(relative);
    regular_file(&path).map_err(|e| BundleError::Io {
        path: path.clone(),
        message: e.to_string(),
    })?;
    Ok(path)
}

/// Succeeds when `path` is a regular file (or a link to one). Anything else — a FIFO, a
/// device, a directory — is refused before it is opened: reading a FIFO would block the
/// reload forever.
fn regular_file(path: &Path) -> std::io::Result<()> {
    let meta = std::fs::metadata(path)?;
    if meta.is_file() {
        Ok(())
    } else {
        Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "not a regular file",
        ))
    }
}

fn load_model(dir: &Path, file: &str, key: &str) -> Result<Model, BundleError> {
    let path = resolve(dir, file, key)?;
    let model = Model::from_file(&path).map_err(|source| BundleError::Model {
        file: file.to_owned(),
        source,
    })?;
    if model.num_outputs() != 1 {
        return Err(BundleError::Model {
            file: file.to_owned(),
            source: ModelError {
                line: None,
                tree: None,
                key: Some("num_class".into()),
                message: format!(
                    "a ranking model needs one score per row; this `{}` model gives {}",
                    model.objective(),
                    model.num_outputs()
                ),
            },
        });
    }
    Ok(model)
}
