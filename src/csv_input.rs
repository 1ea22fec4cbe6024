//! CSV input for the command-line tools: a header of column names, one row per line,
//! optionally gzip-compressed (`.gz`). Cells that are empty, `NaN`, `nan`, `NA` or `null`
//! are missing. Columns are matched to model features by name once, from the header.

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

use flate2::read::MultiGzDecoder;

use crate::engine::{FeatureMatrix, Model};

/// A CSV file that cannot be used, with the line and column at fault.
#[derive(Debug, thiserror::Error)]
#[error("{}: {message}", path.display())]
pub struct DataError {
    pub path: PathBuf,
    pub message: String,
}

/// What was read: one feature matrix per model, and the requested numeric columns.
#[derive(Debug)]
pub struct Loaded {
    pub num_rows: usize,
    /// One per model, in the order the models were given.
    pub matrices: Vec<FeatureMatrix>,
    /// One per requested numeric column, in the order requested.
    pub columns: Vec<Vec<f64>>,
    /// Per model, the features that no CSV column provides (missing in every row).
    pub absent_features: Vec<Vec<String>>,
}

/// Whether a cell spells a missing value.
pub fn is_missing(cell: &str) -> bool {
    matches!(cell, "" | "NaN" | "nan" | "NA" | "null")
}

/// Reads `path` into one feature matrix per model plus the named numeric columns, which
/// must all exist. Columns nobody asked for are ignored.
pub fn read(path: &Path, models: &[&Model], numeric: &[&str]) -> Result<Loaded, DataError> {
    let fail = |message: String| DataError {
        path: path.to_owned(),
        message,
    };
    let file = File::open(path).map_err(|e| fail(format!("cannot open: {e}")))?;
    let input: Box<dyn Read> = if path.extension().is_some_and(|ext| ext == "gz") {
        Box::new(MultiGzDecoder::new(BufReader::new(file)))
    } else {
        Box::new(BufReader::new(file))
    };
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .from_reader(input);
    let header = reader
        .headers()
        .map_err(|e| fail(format!("cannot read the header: {e}")))?
        .clone();
    if header.is_empty() || header.iter().all(str::is_empty) {
        return Err(fail("the file is empty (no header row)".into()));
    }
    let column_of = |name: &str| header.iter().position(|h| h.trim() == name);

    let layouts: Vec<Vec<Option<usize>>> = models
        .iter()
        .map(|m| m.feature_names().iter().map(|f| column_of(f)).collect())
        .collect();
    let numeric_columns: Vec<usize> = numeric
        .iter()
        .map(|name| {
            column_of(name).ok_or_else(|| fail(format!("no column `{name}` in the header")))
        })
        .collect::<Result<_, _>>()?;

    let mut values: Vec<Vec<f64>> = models.iter().map(|_| Vec::new()).collect();
    let mut columns: Vec<Vec<f64>> = numeric.iter().map(|_| Vec::new()).collect();
    let mut record = csv::StringRecord::new();
    let mut num_rows = 0;
    loop {
        match reader.read_record(&mut record) {
            Ok(true) => {}
            Ok(false) => break,
            Err(e) => return Err(fail(format!("{e}"))),
        }
        let line = record.position().map_or(0, |p| p.line());
        let cell_error = |column: usize, what: &str| {
            fail(format!(
                "line {line}, column `{}`: {what}",
                header.get(column).unwrap_or_default()
            ))
        };
        for ((model, layout), out) in models.iter().zip(&layouts).zip(&mut values) {
            for (feature, column) in layout.iter().enumerate() {
                let value = match column {
                    None => f64::NAN,
                    Some(c) => {
                        let cell = record.get(*c).unwrap_or_default().trim();
                        feature_value(model, feature, cell)
                            .ok_or_else(|| cell_error(*c, &format!("`{cell}` is not a number")))?
                    }
                };
                out.push(value);
            }
        }
        for (&c, out) in numeric_columns.iter().zip(&mut columns) {
            let cell = record.get(c).unwrap_or_default().trim();
            let value = if is_missing(cell) {
                f64::NAN
            } else {
                cell.parse::<f64>()
                    .map_err(|_| cell_error(c, &format!("`{cell}` is not a number")))?
            };
            out.push(value);
        }
        num_rows += 1;
    }

    let matrices = models
        .iter()
        .zip(values)
        .map(|(m, v)| FeatureMatrix::from_rows(v, m.num_features()))
        .collect();
    let absent_features = models
        .iter()
        .zip(&layouts)
        .map(|(m, layout)| {
            layout
                .iter()
                .zip(m.feature_names())
                .filter(|(c, _)| c.is_none())
                .map(|(_, name)| name.clone())
                .collect()
        })
        .collect();
    Ok(Loaded {
        num_rows,
        matrices,
        columns,
        absent_features,
    })
}

/// One cell as the value of `feature`: missing, or — for a feature with a pandas category
/// list — a category, by the engine's one rule for text ([`Model::category_value`]: its
/// code, numeric categories matched by the number the text spells, anything else
/// missing), or else a number (for other categorical features, the raw code).
fn feature_value(model: &Model, feature: usize, cell: &str) -> Option<f64> {
    if is_missing(cell) {
        return Some(f64::NAN);
    }
    match model.category_value(feature, cell) {
        Some(value) => Some(value),
        None => cell.parse::<f64>().ok(),
    }
}
