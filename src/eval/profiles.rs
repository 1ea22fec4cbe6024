//! The `fusion` and `profile:<name>` rows of DESIGN.md §7: every row ranks all N rows
//! through `order::rank`, the function that ranks a request in the service, so a number
//! seen here is the behaviour served. The rows are independent and spread over threads,
//! as many at a time as fit in a fixed memory budget (a ranking of N rows needs about
//! [`RANKING_BYTES_PER_ROW`] bytes per row while it is measured).

use std::num::NonZeroUsize;

use super::metrics::{FusionMetrics, ProfileMetrics, Truth};
use crate::bundle::Profile;
use crate::order;

/// Working memory of one whole-list ranking while it is measured: `order::rank`'s final
/// order (24 bytes per row) and the rows left to sort (8), plus the row indices measured (8).
pub const RANKING_BYTES_PER_ROW: usize = 48;

/// Rankings measured at the same time use at most this much working memory together
/// (always at least one ranking): more rows, fewer threads.
const RANKING_BUDGET_BYTES: usize = 256 << 20;

/// Fusion at every M of `ms` (outer) and alpha of `alphas` (inner): the Top-M by `d`,
/// keyed by `alpha·ŝ + (1 − alpha)·d̂` (`s` = the rerank model's score of every row).
pub fn fusion(
    truth: &Truth,
    y: &[f64],
    d: &[f64],
    s: &[f64],
    ms: &[usize],
    alphas: &[f64],
) -> Vec<FusionMetrics> {
    let grid: Vec<(usize, f64)> = ms
        .iter()
        .flat_map(|&m| alphas.iter().map(move |&a| (m, a)))
        .collect();
    in_parallel(&grid, d.len(), |&(m, alpha)| {
        let ranking = rank_all(d, &[(d, m)], alpha, s);
        let coverage = truth.recall(&ranking.recalled);
        FusionMetrics {
            m,
            alpha,
            recall1: coverage.recall1,
            recall5: coverage.recall5,
            metrics: truth.metrics(y, &indices(&ranking)),
        }
    })
}

/// Every profile over all rows; `scores[i]` holds bundle model `i`'s score of every row
/// (empty for a model no profile uses).
pub fn profiles(
    truth: &Truth,
    y: &[f64],
    profiles: &[Profile],
    scores: &[Vec<f64>],
) -> Vec<ProfileMetrics> {
    let n = profiles
        .iter()
        .map(|p| scores[p.score].len())
        .max()
        .unwrap_or(0);
    in_parallel(profiles, n, |profile| {
        let sources: Vec<(&[f64], usize)> = profile
            .recall
            .iter()
            .map(|source| (&scores[source.model][..], source.m))
            .collect();
        let rerank = &scores[profile.rerank.unwrap_or(profile.score)];
        let ranking = rank_all(&scores[profile.score], &sources, profile.alpha, rerank);
        ProfileMetrics {
            name: profile.name.clone(),
            m: profile.first_m(),
            alpha: profile.rerank.map(|_| profile.alpha),
            recall: (!profile.recall.is_empty()).then(|| truth.recall(&ranking.recalled)),
            metrics: truth.metrics(y, &indices(&ranking)),
        }
    })
}

/// The whole ranking of all rows, the rerank scores looked up in `s` (every row's).
fn rank_all(d: &[f64], sources: &[(&[f64], usize)], alpha: f64, s: &[f64]) -> order::Ranking {
    order::rank(d, sources, alpha, d.len(), |recalled| {
        recalled.iter().map(|&i| s[i]).collect()
    })
}

fn indices(ranking: &order::Ranking) -> Vec<usize> {
    ranking.order.iter().map(|p| p.index).collect()
}

/// `f` of every item (each a ranking of `rows` rows), in order, on as many threads as
/// there are cores, items, and rankings that fit in the memory budget together.
fn in_parallel<T: Sync, R: Send>(items: &[T], rows: usize, f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let fit = RANKING_BUDGET_BYTES / rows.saturating_mul(RANKING_BYTES_PER_ROW).max(1);
    let threads = std::thread::available_parallelism()
        .map_or(1, NonZeroUsize::get)
        .min(fit)
        .clamp(1, items.len().max(1));
    let per_thread = items.len().div_ceil(threads).max(1);
    let f = &f;
    std::thread::scope(|scope| {
        let parts: Vec<_> = items
            .chunks(per_thread)
            .map(|chunk| scope.spawn(move || chunk.iter().map(f).collect::<Vec<R>>()))
            .collect();
        parts
            .into_iter()
            .flat_map(|part| part.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
            .collect()
    })
}
