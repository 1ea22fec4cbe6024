//! What a caller wants from a data file ([`Wanted`]), where each wanted thing is in the
//! file ([`Plan`], by column name), what one block of rows holds ([`Block`]), and the one
//! rule per kind of value that every file format shares: a number, a text cell, a
//! category label. Reading the formats is `csv.rs`'s and `parquet.rs`'s job.

use crate::engine::{FeatureMatrix, Model};

use super::error::{Location, Problem};

/// What to read: one feature matrix per model (in its feature order), the named numeric
/// columns (labels, expected scores), and optionally a group column.
#[derive(Debug, Clone, Copy)]
pub struct Wanted<'a> {
    pub models: &'a [&'a Model],
    pub numeric: &'a [&'a str],
    pub group: Option<&'a str>,
}

/// Where each wanted thing is among the file's columns (by position in the file).
#[derive(Debug, Clone)]
pub(crate) struct Plan {
    /// Per model, per feature: the column holding it, if any.
    pub features: Vec<Vec<Option<usize>>>,
    /// Per wanted numeric column, its column.
    pub numeric: Vec<usize>,
    pub group: Option<usize>,
}

impl Plan {
    /// Matches the wanted names against the file's column `names` (surrounding spaces do
    /// not count; the first of equal names wins). Every numeric and group column must
    /// exist; a model feature without a column is missing in every row.
    pub fn new<S: AsRef<str>>(names: &[S], wanted: &Wanted<'_>) -> Result<Self, Problem> {
        let column_of = |name: &str| names.iter().position(|h| h.as_ref().trim() == name);
        let required =
            |name: &str| column_of(name).ok_or_else(|| Problem::MissingColumn(name.to_owned()));
        Ok(Self {
            features: wanted
                .models
                .iter()
                .map(|m| m.feature_names().iter().map(|f| column_of(f)).collect())
                .collect(),
            numeric: wanted
                .numeric
                .iter()
                .map(|name| required(name))
                .collect::<Result<_, _>>()?,
            group: wanted.group.map(required).transpose()?,
        })
    }

    /// Every column the plan reads, ascending, once.
    pub fn columns(&self) -> Vec<usize> {
        let mut columns: Vec<usize> = self
            .features
            .iter()
            .flatten()
            .flatten()
            .chain(&self.numeric)
            .chain(&self.group)
            .copied()
            .collect();
        columns.sort_unstable();
        columns.dedup();
        columns
    }

    /// Per model, the features no column provides.
    pub fn absent_features(&self, models: &[&Model]) -> Vec<Vec<String>> {
        models
            .iter()
            .zip(&self.features)
            .map(|(m, layout)| {
                layout
                    .iter()
                    .zip(m.feature_names())
                    .filter(|(c, _)| c.is_none())
                    .map(|(_, name)| name.clone())
                    .collect()
            })
            .collect()
    }
}

/// Consecutive rows of a file, read together.
#[derive(Debug)]
pub struct Block {
    /// The index of the first row among the file's data rows (from 0).
    pub first_row: u64,
    /// How many rows.
    pub rows: usize,
    /// One per wanted model, in its feature order.
    pub matrices: Vec<FeatureMatrix>,
    /// One per wanted numeric column, one value per row (missing = NaN).
    pub numeric: Vec<Vec<f64>>,
    /// With a group column: each row's group, numbered in order of first appearance in
    /// the file (so equal values in different blocks get the same number).
    pub groups: Vec<u32>,
    /// For CSV, the line each row starts on; empty otherwise.
    pub(crate) lines: Vec<u64>,
    /// How far into the file the reader is, in the unit of `Reader::progress_total`.
    pub progress: u64,
}

impl Block {
    /// Where row `i` of this block is in the file.
    pub fn location(&self, i: usize) -> Location {
        Location {
            row: self.first_row + i as u64,
            line: self.lines.get(i).copied(),
        }
    }
}

/// Whether a CSV cell spells a missing value.
pub fn is_missing(cell: &str) -> bool {
    matches!(cell, "" | "NaN" | "nan" | "NA" | "null")
}

/// A number cell (label, expected score): missing, or the number it spells.
pub(crate) fn number_cell(cell: &str) -> Option<f64> {
    if is_missing(cell) {
        Some(f64::NAN)
    } else {
        cell.parse::<f64>().ok()
    }
}

/// A CSV cell as the value of `feature`: missing, or — for a feature with a pandas
/// category list — a category, by the engine's one rule for text
/// ([`Model::category_value`]), or else a number (for other categorical features, the raw
/// code). `None` when the cell is none of these.
pub(crate) fn feature_cell(model: &Model, feature: usize, cell: &str) -> Option<f64> {
    if is_missing(cell) {
        return Some(f64::NAN);
    }
    match model.category_value(feature, cell) {
        Some(value) => Some(value),
        None => cell.parse::<f64>().ok(),
    }
}

/// A typed number as the value of `feature`, as a number in a `/rank` request is: for a
/// feature with a pandas category list, the category equal to it (else missing); for any
/// other feature, itself. NaN stays missing.
pub(crate) fn feature_number(model: &Model, feature: usize, x: f64) -> f64 {
    model.category_value_of_number(feature, x).unwrap_or(x)
}

/// A typed text value (`None` = null) as the value of `feature`, which must have a pandas
/// category list (checked when the file is opened): its category, or missing when unseen.
pub(crate) fn feature_label(model: &Model, feature: usize, label: Option<&str>) -> f64 {
    label
        .and_then(|l| model.category_value(feature, l))
        .unwrap_or(f64::NAN)
}
