//! The `fusion` and `profile:<name>` rows of DESIGN.md §7: every row ranks all N rows
//! through `order::rank`, the function that ranks a request in the service, so a number
//! seen here is the behaviour served. The rows are independent and spread over threads.

use std::num::NonZeroUsize;

use super::metrics::{FusionMetrics, ProfileMetrics, Truth};
use crate::bundle::Profile;
use crate::order;

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
    in_parallel(&grid, |&(m, alpha)| {
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
    in_parallel(profiles, |profile| {
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

/// `f` of every item, in order, on as many threads as there are cores (and items).
fn in_parallel<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let threads = std::thread::available_parallelism()
        .map_or(1, NonZeroUsize::get)
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
