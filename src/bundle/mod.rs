//! One version of the model repository: the models `bundle.toml` names (parsed in
//! `spec`), the profiles over them, and the checks that must pass before it may serve
//! (finite scores, the canary rows). Which version serves, and when versions are
//! rescanned, is `repository.rs`'s concern.

mod spec;

pub use spec::{Profile, Source};

use std::path::{Component, Path, PathBuf};

use crate::data::{self, Location, Wanted};
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

/// A model of the bundle and the name profiles know it by.
#[derive(Debug)]
pub struct NamedModel {
    pub name: String,
    /// The file it was loaded from, as `bundle.toml` gives it.
    pub file: String,
    pub model: Model,
}

/// A validated bundle: every model loaded and checked, ready to serve. Its version number
/// is the repository's to give, not the bundle's.
#[derive(Debug)]
pub struct Bundle {
    /// 1 or 2.
    pub format_version: u32,
    /// In `bundle.toml` order (format 1: `direct`, `stage2`).
    pub models: Vec<NamedModel>,
    /// In declaration order (format 1: one, `default`).
    pub profiles: Vec<Profile>,
    /// Index into `profiles`.
    pub default_profile: usize,
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
        let spec = spec::parse(&text).map_err(BundleError::Config)?;
        let key = |name: &str| match spec.format_version {
            1 if name == "direct" => "recall.model".to_owned(),
            1 => "rerank.model".to_owned(),
            _ => format!("models.{name}"),
        };
        let models = spec
            .models
            .iter()
            .map(|(name, file)| {
                Ok(NamedModel {
                    name: name.clone(),
                    file: file.clone(),
                    model: load_model(dir, file, &key(name))?,
                })
            })
            .collect::<Result<Vec<_>, BundleError>>()?;
        let mut bundle = Self {
            format_version: spec.format_version,
            models,
            profiles: spec.profiles,
            default_profile: spec.default_profile,
            canary_rows: 0,
        };
        bundle.check_finite_on_missing_row()?;
        if let Some(canary) = &spec.canary {
            let path = resolve(dir, &canary.file, "canary.file")?;
            bundle.canary_rows = bundle.check_canary(&path, canary.tolerance)?;
        }
        Ok(bundle)
    }

    /// The model at `index` (as profiles give it).
    pub fn model(&self, index: usize) -> &Model {
        &self.models[index].model
    }

    /// The profile a request without `"profile"` gets.
    pub fn default_profile(&self) -> &Profile {
        &self.profiles[self.default_profile]
    }

    /// The profile called `name`.
    pub fn profile(&self, name: &str) -> Option<&Profile> {
        self.profiles.iter().find(|p| p.name == name)
    }

    /// Every model, by reference, in bundle order.
    pub fn model_refs(&self) -> Vec<&Model> {
        self.models.iter().map(|m| &m.model).collect()
    }

    /// A row with every feature missing must score finitely in every model.
    fn check_finite_on_missing_row(&self) -> Result<(), BundleError> {
        for named in &self.models {
            let model = &named.model;
            let mut out = [0.0];
            model.predict(&FeatureMatrix::missing(1, model.num_features()), &mut out);
            if !out[0].is_finite() {
                return Err(BundleError::Config(format!(
                    "model {} ({}) scores a row of missing values as {}",
                    named.name, named.file, out[0]
                )));
            }
        }
        Ok(())
    }

    /// Scores every canary row with every model and compares with the expected scores
    /// (column `expected_<model name>`).
    fn check_canary(&self, path: &Path, tolerance: f64) -> Result<usize, BundleError> {
        let expected: Vec<String> = self
            .models
            .iter()
            .map(|m| format!("expected_{}", m.name))
            .collect();
        let expected_refs: Vec<&str> = expected.iter().map(String::as_str).collect();
        let wanted = Wanted {
            models: &self.model_refs(),
            numeric: &expected_refs,
            group: None,
        };
        let loaded =
            data::read_all(path, &wanted).map_err(|e| BundleError::Canary(e.to_string()))?;
        // Rows count from 1; a CSV row's line is one more (the header is line 1).
        let at = |row: usize| Location {
            row: row as u64,
            line: (!data::is_parquet(path)).then_some(row as u64 + 2),
        };
        if loaded.num_rows == 0 {
            return Err(BundleError::Canary(format!(
                "{} has no rows",
                path.display()
            )));
        }
        for (m, named) in self.models.iter().enumerate() {
            let name = &named.name;
            let mut scores = vec![0.0; loaded.num_rows];
            named.model.predict(&loaded.matrices[m], &mut scores);
            for (row, (&got, &want)) in scores.iter().zip(&loaded.columns[m]).enumerate() {
                if !got.is_finite() {
                    return Err(BundleError::Canary(format!(
                        "{}: {name} score is {got}",
                        at(row)
                    )));
                }
                if !within(got, want, tolerance) {
                    return Err(BundleError::Canary(format!(
                        "{}: {name} scores {got:?}, expected_{name} is {want:?} (tolerance {tolerance:e})",
                        at(row)
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
