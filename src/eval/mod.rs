//! Offline evaluation, `giftrank eval` (DESIGN.md §7): the seed experiment's metrics,
//! tables and charts for a model pair on labelled rows. `metrics` owns the definitions,
//! `scoring` scores rows on all cores, `report` writes the Markdown tables and the JSON,
//! `plots` draws the PNG charts. Reading the bundle and the CSV is `commands::eval`'s job.

pub mod metrics;
pub mod plots;
pub mod report;
pub mod scoring;

pub use metrics::{evaluate, EvalError, Evaluation, RankingMetrics, RecallRerankMetrics};

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
