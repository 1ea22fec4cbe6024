//! Offline evaluation, `giftrank eval` (DESIGN.md §7): the seed experiment's metrics,
//! tables and charts for a bundle on labelled rows. `collect` reads and scores the rows
//! block by block, `scoring` scores a block on all cores, `metrics` owns the definitions,
//! `profiles` ranks the fusion and profile rows with the service's ranking code,
//! `groups` ranks each group of rows on its own (`--group`), `report` writes the Markdown
//! tables and the JSON, `gate` checks thresholds, `plots` draws the PNG charts; `bundle`
//! ties them into one bundle's evaluation of scored rows, for `giftrank eval` and the
//! Python package alike. Loading the bundle and opening the data file is
//! `commands::eval`'s job.

pub mod bundle;
pub mod collect;
pub mod gate;
pub mod groups;
pub mod metrics;
pub mod plots;
pub mod profiles;
pub mod report;
pub mod scoring;

pub use metrics::{
    evaluate, EvalError, Evaluation, FusionMetrics, GroupCounts, ProfileMetrics, RankingMetrics,
    RecallRerankMetrics,
};

/// A `--m` list that cannot be used, with the entry at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("--m {0}")]
pub struct MListError(String);

/// Parses a comma-separated list of recall sizes (`50,100,200`): whole numbers >= 1, no
/// empty entries, no repeats; spaces around entries are allowed. Returned ascending.
pub fn parse_m_list(text: &str) -> Result<Vec<usize>, MListError> {
    if text.trim().is_empty() {
        return Err(MListError(
            "is empty: give recall sizes such as 50,100,200".into(),
        ));
    }
    let mut ms = Vec::new();
    for (i, entry) in text.split(',').map(str::trim).enumerate() {
        if entry.is_empty() {
            return Err(MListError(format!("\"{text}\": entry {} is empty", i + 1)));
        }
        let m = match entry.parse::<usize>() {
            Ok(0) => {
                return Err(MListError(format!(
                    "\"{text}\": M = 0 is not a recall size (M must be at least 1)"
                )))
            }
            Ok(m) => m,
            Err(_) => {
                return Err(MListError(format!(
                    "\"{text}\": `{entry}` is not a whole number >= 1"
                )))
            }
        };
        if ms.contains(&m) {
            return Err(MListError(format!("\"{text}\": {m} is listed twice")));
        }
        ms.push(m);
    }
    ms.sort_unstable();
    Ok(ms)
}

/// An `--alpha` list that cannot be used, with the entry at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("--alpha {0}")]
pub struct AlphaListError(String);

/// Parses a comma-separated list of fusion weights (`0,0.25,0.5`): numbers in [0, 1], no
/// empty entries, no repeats. Kept in the order given.
pub fn parse_alpha_list(text: &str) -> Result<Vec<f64>, AlphaListError> {
    let mut alphas: Vec<f64> = Vec::new();
    for (i, entry) in text.split(',').map(str::trim).enumerate() {
        if entry.is_empty() {
            return Err(AlphaListError(format!(
                "\"{text}\": entry {} is empty",
                i + 1
            )));
        }
        let alpha = entry
            .parse::<f64>()
            .ok()
            .filter(|a| (0.0..=1.0).contains(a))
            .ok_or_else(|| {
                AlphaListError(format!(
                    "\"{text}\": `{entry}` is not a number between 0 and 1"
                ))
            })?;
        if alphas.contains(&alpha) {
            return Err(AlphaListError(format!(
                "\"{text}\": {alpha} is listed twice"
            )));
        }
        alphas.push(alpha);
    }
    Ok(alphas)
}
