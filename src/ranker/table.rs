//! A table's rows ranked as one request (the Python package's `Bundle.rank`): the rows
//! become a dense `/rank` request of the table's feature columns and go through the same
//! pipeline as every served request (profile, `m` and `alpha` checks, feature assembly,
//! `order::rank`), without a deadline, so a table ranks exactly as `/rank` answers.

use std::borrow::Cow;

use super::error::RankError;
use super::pipeline::{rank, Conditions, Ranked};
use super::request::{Candidate, FeatureValue, RankRequest};
use super::serving::Serving;
use crate::data::{Category, Column, Frame};

/// The request fields a table's ranking takes, as in a `/rank` body (`None`: the
/// profile's own).
#[derive(Debug, Clone, Copy, Default)]
pub struct TableOptions<'a> {
    pub profile: Option<&'a str>,
    pub m: Option<u64>,
    pub alpha: Option<f64>,
}

/// Ranks rows `rows` of `frame` (one request's candidates, in that order) on `serving`:
/// every item's `index` is a position in `rows`. Columns no model of the bundle reads are
/// ignored; a column of text for a feature no model knows as a pandas category is refused,
/// naming the column.
pub fn rank_rows(
    serving: &Serving,
    frame: &Frame<'_>,
    rows: &[usize],
    options: &TableOptions<'_>,
) -> Result<Ranked, RankError> {
    let mut names: Vec<Cow<'_, str>> = Vec::new();
    let mut columns: Vec<&Column<'_>> = Vec::new();
    for (name, column) in frame.columns() {
        let Some(slot) = serving.features.get(name) else {
            continue;
        };
        if column.has_text() && !serving.features.accepts_labels(slot) {
            return Err(RankError::Invalid(format!(
                "column `{name}`: holds text, but the feature is not categorical with category labels in the bundle's models"
            )));
        }
        names.push(Cow::Borrowed(name));
        columns.push(column);
    }
    let candidates = rows
        .iter()
        .enumerate()
        .map(|(i, &row)| Candidate {
            id: Cow::Owned(i.to_string()),
            features: None,
            values: Some(columns.iter().map(|c| value(c, row)).collect()),
        })
        .collect();
    let request = RankRequest {
        request_id: None,
        context: None,
        feature_names: Some(names),
        candidates,
        profile: options.profile.map(Cow::Borrowed),
        m: options.m,
        alpha: options.alpha,
        k: None,
        timeout_ms: None,
        allow_degraded: None,
        routing_key: None,
    };
    rank(serving, &request, Conditions::default()).map(|(ranked, _)| ranked)
}

/// Row `row` of `column` as a request value: NaN, `None` and the code -1 are missing.
fn value<'c>(column: &'c Column<'_>, row: usize) -> FeatureValue<'c> {
    let number = |x: f64| {
        if x.is_nan() {
            FeatureValue::Missing
        } else {
            FeatureValue::Number(x)
        }
    };
    match column {
        Column::Numbers(values) => number(values[row]),
        Column::Labels(labels) => labels[row].as_deref().map_or(FeatureValue::Missing, |l| {
            FeatureValue::Label(Cow::Borrowed(l))
        }),
        Column::Categorical { codes, categories } => {
            match usize::try_from(codes[row])
                .ok()
                .and_then(|c| categories.get(c))
            {
                None => FeatureValue::Missing,
                Some(Category::Number(x)) => number(*x),
                Some(Category::Label(l)) => FeatureValue::Label(Cow::Borrowed(l)),
            }
        }
    }
}
