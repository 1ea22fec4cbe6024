//! A bundle's evaluation over rows already scored: which models must score the rows (and
//! which of them can share one feature matrix), the models behind the `direct`/`stage2`/
//! `recall_rerank`/`fusion` rows, and every method row, over all rows or per group. One
//! function for `giftrank eval` and for the Python package's `Bundle.evaluate`, so both
//! give the same numbers; where the rows come from is the caller's business.

use super::collect::Collected;
use super::groups::{self, Groups, TooManyRows};
use super::metrics::{self, EvalError, Evaluation};
use super::profiles;
use crate::bundle::Bundle;
use crate::engine::Model;

/// Which of the bundle's models score the rows, and in which feature layout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scoring {
    /// One model per feature layout to read (a bundle model index): models that read the
    /// same columns the same way share one matrix.
    pub layouts: Vec<usize>,
    /// Per bundle model, the index into `layouts` of the matrix it scores, or `None` when
    /// no method uses it.
    pub layout_of: Vec<Option<usize>>,
}

impl Scoring {
    /// The models every method row of `bundle` uses: the reference pair and every
    /// profile's score, recall and rerank models.
    pub fn new(bundle: &Bundle) -> Self {
        let (score_model, rerank_model) = reference_pair(bundle);
        let mut used = vec![false; bundle.models.len()];
        used[score_model] = true;
        used[rerank_model] = true;
        for profile in &bundle.profiles {
            used[profile.score] = true;
            profile.recall.iter().for_each(|s| used[s.model] = true);
            profile.rerank.iter().for_each(|&r| used[r] = true);
        }
        let mut layouts: Vec<usize> = Vec::new();
        let mut layout_of = vec![None; bundle.models.len()];
        for (i, named) in bundle.models.iter().enumerate().filter(|(i, _)| used[*i]) {
            let existing = layouts
                .iter()
                .position(|&j| bundle.model(j).same_inputs_as(&named.model));
            layout_of[i] = Some(existing.unwrap_or_else(|| {
                layouts.push(i);
                layouts.len() - 1
            }));
        }
        Self { layouts, layout_of }
    }

    /// The model of each layout, in layout order: what a reader builds matrices for.
    pub fn readers<'b>(&self, bundle: &'b Bundle) -> Vec<&'b Model> {
        self.layouts.iter().map(|&i| bundle.model(i)).collect()
    }

    /// Per bundle model, the model and its layout when it is used (`collect`'s scorers).
    pub fn scorers<'b>(&self, bundle: &'b Bundle) -> Vec<Option<(&'b Model, usize)>> {
        self.layout_of
            .iter()
            .enumerate()
            .map(|(i, layout)| layout.map(|l| (bundle.model(i), l)))
            .collect()
    }

    /// How many models score the rows.
    pub fn models_used(&self) -> usize {
        self.layout_of.iter().flatten().count()
    }
}

/// The models behind the `direct`, `stage2`, `recall_rerank` and `fusion` rows: the
/// default profile's score and rerank models; when it has no rerank model, those of the
/// first profile that has one; when none has, the score model for both.
pub fn reference_pair(bundle: &Bundle) -> (usize, usize) {
    let default = bundle.default_profile();
    match default.rerank {
        Some(rerank) => (default.score, rerank),
        None => bundle
            .profiles
            .iter()
            .find_map(|p| p.rerank.map(|r| (p.score, r)))
            .unwrap_or((default.score, default.score)),
    }
}

/// Why scored rows cannot be measured.
#[derive(Debug, thiserror::Error)]
pub enum MeasureError {
    #[error(transparent)]
    Eval(#[from] EvalError),
    #[error(transparent)]
    Groups(#[from] TooManyRows),
}

/// Every method row of DESIGN.md §7 on `collected` (scored by [`Scoring`]'s models): all
/// rows as one ranking, or one ranking per group when `group` names the group column
/// (`collected.groups` then numbers each row's group). `ms` ascending, as
/// `parse_m_list` gives them; `alphas` the fusion weights.
pub fn measure(
    bundle: &Bundle,
    collected: &Collected,
    group: Option<&str>,
    ms: &[usize],
    alphas: &[f64],
) -> Result<Evaluation, MeasureError> {
    let (score_model, rerank_model) = reference_pair(bundle);
    let (y, scores) = (&collected.labels, &collected.scores);
    let mut evaluation = if let Some(column) = group {
        let groups = Groups::new(&collected.groups, collected.group_count)?;
        let inputs = groups::Inputs {
            y,
            scores,
            pair: (score_model, rerank_model),
            ms,
            alphas,
            profiles: &bundle.profiles,
        };
        groups::evaluate(&groups, &inputs, column)
    } else {
        let (d, s) = (&scores[score_model], &scores[rerank_model]);
        let truth = metrics::Truth::new(y);
        let mut evaluation = metrics::evaluate_with(&truth, d, s, y, ms)?;
        evaluation.fusion = profiles::fusion(&truth, y, d, s, ms, alphas);
        evaluation.profiles = profiles::profiles(&truth, y, &bundle.profiles, scores);
        evaluation
    };
    evaluation.default_profile = Some(bundle.default_profile().name.clone());
    Ok(evaluation)
}
