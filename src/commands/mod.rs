//! The offline command-line tools behind `giftrank check`, `score`, `bench` and `eval`; argument
//! parsing itself is in `main.rs`.

pub mod bench;
pub mod check;
pub mod eval;
pub mod score;

use std::path::Path;

use anyhow::Context;

use crate::csv_input;
use crate::engine::{FeatureMatrix, Model};

/// Loads a model and the rows of a CSV file in its column order, warning once per
/// model feature that no column provides.
pub fn load_model_and_rows(model: &Path, data: &Path) -> anyhow::Result<(Model, FeatureMatrix)> {
    let model =
        Model::from_file(model).with_context(|| format!("invalid model {}", model.display()))?;
    let mut loaded = csv_input::read(data, &[&model], &[])?;
    for name in &loaded.absent_features[0] {
        eprintln!(
            "warning: no column `{name}` in {}: that feature is missing in every row",
            data.display()
        );
    }
    let rows = loaded.matrices.remove(0);
    Ok((model, rows))
}
