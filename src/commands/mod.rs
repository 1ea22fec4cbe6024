//! The offline command-line tools behind `giftrank check`, `score`, `bench` and `eval`; argument
//! parsing itself is in `main.rs`.

pub mod bench;
pub mod check;
pub mod eval;
mod progress;
pub mod score;

use std::path::Path;

use anyhow::Context;

use crate::data::{Reader, Wanted};
use crate::engine::{FeatureMatrix, Model};

/// Loads a LightGBM text model, naming the file when it is not one.
pub fn load_model(path: &Path) -> anyhow::Result<Model> {
    Model::from_file(path).with_context(|| format!("invalid model {}", path.display()))
}

/// Opens `data` to read the features of `models`, warning once per feature that no
/// column provides.
pub fn open_data<'m>(models: &'m [&'m Model], data: &Path) -> anyhow::Result<Reader<'m>> {
    let wanted = Wanted {
        models,
        numeric: &[],
        group: None,
    };
    let reader = Reader::open(data, &wanted)?;
    warn_absent(data, &reader.absent_features());
    Ok(reader)
}

/// Loads a model and all rows of a data file in its column order.
pub fn load_model_and_rows(model: &Path, data: &Path) -> anyhow::Result<(Model, FeatureMatrix)> {
    let model = load_model(model)?;
    let mut rows = FeatureMatrix::missing(0, model.num_features());
    {
        let models = [&model];
        let mut reader = open_data(&models, data)?;
        while let Some(block) = reader.next_block()? {
            rows.append(&block.matrices[0]);
        }
    }
    Ok((model, rows))
}

/// Warns once per feature name that no column of `data` provides (`absent` lists them per
/// model, so a name can repeat).
pub fn warn_absent(data: &Path, absent: &[Vec<String>]) {
    let mut warned: Vec<&String> = Vec::new();
    for name in absent.iter().flatten() {
        if !warned.contains(&name) {
            eprintln!(
                "warning: no column `{name}` in {}: that feature is missing in every row",
                data.display()
            );
            warned.push(name);
        }
    }
}
