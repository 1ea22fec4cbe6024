//! The offline metrics of DESIGN.md §7 as pure functions of the Direct scores `d`, the
//! Stage2 scores `s`, the labels `y` and the M list: the three rankings, Top-K% capture,
//! NDCG@100, Spearman and recall coverage. Reading files and scoring rows is elsewhere.
//!
//! Every sort is by value with ties broken by the lower row index, as §7 requires. A NaN
//! score sorts after every number (models give finite scores, so this only makes the
//! functions total). Spearman is computed from exact integer rank sums, so it is the
//! correctly rounded quotient of exact quantities up to one `sqrt`.

use crate::order::descending;

/// The cut-off of `ndcg100`.
pub const NDCG_DEPTH: usize = 100;

/// Why a set of scores and labels cannot be evaluated.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum EvalError {
    #[error("there are no rows to evaluate")]
    NoRows,
    #[error("{d} Direct scores, {s} Stage2 scores and {y} labels: the lengths must agree")]
    LengthMismatch { d: usize, s: usize, y: usize },
    /// A label that is missing (NaN), infinite or negative; `row` counts from 0.
    #[error("the label of row {row} is {}", describe_label(*.value))]
    Label { row: usize, value: f64 },
    #[error("M = 0 is not a recall size (M must be at least 1)")]
    ZeroM,
}

/// What is wrong with a label value, in words ("missing", "negative (-2)", ...).
pub fn describe_label(value: f64) -> String {
    if value.is_nan() {
        "missing (labels must be numbers >= 0)".into()
    } else if value.is_infinite() {
        format!("{value} (labels must be finite)")
    } else {
        format!("negative ({value}; labels must be >= 0)")
    }
}

/// The four metrics of one ranking of all N rows.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RankingMetrics {
    /// Top-1% capture.
    pub top1: f64,
    /// Top-5% capture.
    pub top5: f64,
    pub ndcg100: f64,
    /// `None` when undefined: the labels are all equal, or N = 1.
    pub spearman: Option<f64>,
}

/// Recall-rerank at one M: recall coverage of the Direct Top-M, and the metrics of the
/// final ranking.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RecallRerankMetrics {
    /// The M asked for; the ranking uses `min(m, N)`.
    pub m: usize,
    /// |Direct Top-M ∩ true Top-1%| / k₁.
    pub recall1: f64,
    /// |Direct Top-M ∩ true Top-5%| / k₅.
    pub recall5: f64,
    pub metrics: RankingMetrics,
}

/// Score fusion at one M and alpha (DESIGN.md §7 `fusion` rows).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FusionMetrics {
    pub m: usize,
    pub alpha: f64,
    pub recall1: f64,
    pub recall5: f64,
    pub metrics: RankingMetrics,
}

/// One profile of the bundle, ranked over all rows by DESIGN.md §1.1.
#[derive(Debug, Clone, PartialEq)]
pub struct ProfileMetrics {
    pub name: String,
    /// The `m` of its first recall source; `None` without recall.
    pub m: Option<usize>,
    /// Its alpha; `None` without a rerank model.
    pub alpha: Option<f64>,
    /// |R| and the coverage of R; `None` without recall.
    pub recall: Option<Coverage>,
    pub metrics: RankingMetrics,
}

/// A recalled set's size and how much of the true Top-1% and Top-5% it holds (with
/// `--group`, the means over the groups averaged).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Coverage {
    pub size: f64,
    pub recall1: f64,
    pub recall5: f64,
}

/// Everything §7 reports for one data set.
#[derive(Debug, Clone, PartialEq)]
pub struct Evaluation {
    /// Rows (N).
    pub n: usize,
    /// Rows with a label above 0.
    pub positives: usize,
    pub direct: RankingMetrics,
    pub stage2: RankingMetrics,
    /// One per M, in the order given.
    pub recall_rerank: Vec<RecallRerankMetrics>,
    /// One per M (outer) and alpha (inner), in the order given.
    pub fusion: Vec<FusionMetrics>,
    /// One per profile, in the bundle's order.
    pub profiles: Vec<ProfileMetrics>,
    /// The name of the bundle's default profile, when profiles were evaluated.
    pub default_profile: Option<String>,
    /// With `--group`: how many groups there are and how many the metrics average.
    pub groups: Option<GroupCounts>,
}

/// The groups of a grouped evaluation (DESIGN.md §7 `--group`).
#[derive(Debug, Clone, PartialEq)]
pub struct GroupCounts {
    /// The group column.
    pub column: String,
    /// Distinct values of it.
    pub groups: usize,
    /// Groups whose label sum is > 0: every metric but Spearman is their mean.
    pub used: usize,
}

/// k = ceil(K·N/100): the size of the Top-K% for N rows.
pub fn top_k_size(percent: usize, n: usize) -> usize {
    (percent * n).div_ceil(100)
}

/// Evaluates `direct`, `stage2` and `recall_rerank` at every M of `ms` (DESIGN.md §7).
/// Labels must be finite and >= 0; M must be >= 1 (M > N recalls all N rows).
pub fn evaluate(d: &[f64], s: &[f64], y: &[f64], ms: &[usize]) -> Result<Evaluation, EvalError> {
    if d.len() != y.len() || s.len() != y.len() {
        return Err(EvalError::LengthMismatch {
            d: d.len(),
            s: s.len(),
            y: y.len(),
        });
    }
    check_labels(y)?;
    if y.is_empty() {
        return Err(EvalError::NoRows);
    }
    if ms.contains(&0) {
        return Err(EvalError::ZeroM);
    }
    let truth = Truth::new(y);
    evaluate_with(&truth, d, s, y, ms)
}

/// [`evaluate`] against a [`Truth`] already built from `y`.
pub fn evaluate_with(
    truth: &Truth,
    d: &[f64],
    s: &[f64],
    y: &[f64],
    ms: &[usize],
) -> Result<Evaluation, EvalError> {
    if ms.contains(&0) {
        return Err(EvalError::ZeroM);
    }
    let direct_order = rank_by(d);
    let stage2_order = rank_by(s);
    let recall_rerank = ms
        .iter()
        .map(|&m| {
            let order = rerank_top(&direct_order, s, m);
            let recalled = &direct_order[..m.min(y.len())];
            RecallRerankMetrics {
                m,
                recall1: truth.coverage(recalled, TOP1),
                recall5: truth.coverage(recalled, TOP5),
                metrics: truth.metrics(y, &order),
            }
        })
        .collect();
    Ok(Evaluation {
        n: y.len(),
        positives: y.iter().filter(|&&v| v > 0.0).count(),
        direct: truth.metrics(y, &direct_order),
        stage2: truth.metrics(y, &stage2_order),
        recall_rerank,
        fusion: Vec::new(),
        profiles: Vec::new(),
        default_profile: None,
        groups: None,
    })
}

/// Checks that every label is a finite number >= 0.
pub fn check_labels(y: &[f64]) -> Result<(), EvalError> {
    match y.iter().position(|&v| !(v.is_finite() && v >= 0.0)) {
        Some(row) => Err(EvalError::Label { row, value: y[row] }),
        None => Ok(()),
    }
}

/// Row indices by `scores` descending, ties (and equal NaNs) by lower index; NaN last.
pub fn rank_by(scores: &[f64]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&i, &j| descending(scores[i], scores[j]));
    order
}

/// The recall-rerank ranking of DESIGN.md §1 over all rows: the Top-M by `d` (ties: lower
/// index) ordered by `s` descending (ties: larger `d`, then lower index), then the rest by
/// `d` descending (ties: lower index). M = min(m, N).
pub fn recall_rerank(d: &[f64], s: &[f64], m: usize) -> Vec<usize> {
    rerank_top(&rank_by(d), s, m)
}

/// `direct_order` with its first min(m, N) rows reordered by `s`. The sort is stable and
/// those rows come in `d`-descending, index-ascending order, so ties in `s` keep exactly
/// the §1 tie-break.
fn rerank_top(direct_order: &[usize], s: &[f64], m: usize) -> Vec<usize> {
    let mut order = direct_order.to_vec();
    let m = m.min(order.len());
    order[..m].sort_by(|&i, &j| descending(s[i], s[j]));
    order
}

/// [`Truth`]'s tiers: in the true Top-1%, in the true Top-5% but not the Top-1%, neither.
const TOP1: u8 = 0;
const TOP5: u8 = 1;
const OUTSIDE: u8 = 2;

/// What every ranking is measured against: the true Top-K% sets, the label ranks and the
/// ideal DCG. Built once per set of labels, shared by every ranking of them.
#[derive(Debug)]
pub struct Truth {
    k1: usize,
    k5: usize,
    /// Per row, whether it is in the true Top-1% ([`TOP1`]), else in the true Top-5%
    /// ([`TOP5`]), else neither: the rows sorted by y descending (ties: lower index), cut
    /// at k1 and k5. One byte per row.
    tier: Vec<u8>,
    /// Per row, twice its average ascending rank of y minus (N + 1): an exact integer.
    centred_rank2: Vec<i64>,
    /// Σ `centred_rank2`², exactly.
    sum_sq_label: i128,
    /// 1, or 1 / max(y) when the sums of raw labels would overflow to infinity.
    gain_scale: f64,
    ideal_dcg: f64,
}

impl Truth {
    /// The truth of labels `y` (checked by [`check_labels`]).
    pub fn new(y: &[f64]) -> Self {
        let n = y.len();
        let by_label = rank_by(y);
        let (k1, k5) = (top_k_size(1, n), top_k_size(5, n));
        let mut tier = vec![OUTSIDE; n];
        for (position, &row) in by_label.iter().enumerate().take(k5) {
            tier[row] = if position < k1 { TOP1 } else { TOP5 };
        }
        // A group of equal labels at descending positions [a, b) holds the ascending ranks
        // N-b+1 ..= N-a, whose average is (2N - a - b + 1) / 2; twice it minus (N + 1)
        // is N - a - b.
        let mut centred_rank2 = vec![0i64; n];
        let mut start = 0;
        while start < n {
            let value = y[by_label[start]];
            let end = start
                + by_label[start..]
                    .iter()
                    .take_while(|&&row| y[row] == value)
                    .count();
            let centred = n as i64 - start as i64 - end as i64;
            for &row in &by_label[start..end] {
                centred_rank2[row] = centred;
            }
            start = end;
        }
        let sum_sq_label = centred_rank2
            .iter()
            .map(|&a| i128::from(a) * i128::from(a))
            .sum();
        // NDCG does not change when every label is scaled; scale only when needed so that
        // ordinary labels are summed exactly as written.
        let mut gain_scale = 1.0;
        let mut ideal_dcg = dcg(y, &by_label, gain_scale);
        if !ideal_dcg.is_finite() {
            gain_scale = 1.0 / y[by_label[0]];
            ideal_dcg = dcg(y, &by_label, gain_scale);
        }
        Self {
            k1,
            k5,
            tier,
            centred_rank2,
            sum_sq_label,
            gain_scale,
            ideal_dcg,
        }
    }

    /// The size of `rows` and the share of the true Top-1% and Top-5% it holds.
    pub fn recall(&self, rows: &[usize]) -> Coverage {
        Coverage {
            size: rows.len() as f64,
            recall1: self.coverage(rows, TOP1),
            recall5: self.coverage(rows, TOP5),
        }
    }

    /// |rows ∩ true Top-K%| / k for `deepest` = [`TOP1`] (K = 1) or [`TOP5`] (K = 5).
    fn coverage(&self, rows: &[usize], deepest: u8) -> f64 {
        let k = if deepest == TOP1 { self.k1 } else { self.k5 };
        let hits = rows
            .iter()
            .filter(|&&row| self.tier[row] <= deepest)
            .count();
        hits as f64 / k as f64
    }

    /// The four metrics of the ranking `order` (all N row indices, best first) of `y`.
    pub fn metrics(&self, y: &[f64], order: &[usize]) -> RankingMetrics {
        RankingMetrics {
            top1: self.coverage(&order[..self.k1], TOP1),
            top5: self.coverage(&order[..self.k5], TOP5),
            ndcg100: if self.ideal_dcg > 0.0 {
                dcg(y, order, self.gain_scale) / self.ideal_dcg
            } else {
                0.0
            },
            spearman: self.spearman(order),
        }
    }

    /// Pearson correlation of the average ranks of y with the ranks of −position. The
    /// position at p has ascending rank N − p, i.e. twice-centred rank N − 1 − 2p.
    fn spearman(&self, order: &[usize]) -> Option<f64> {
        let n = order.len() as i128;
        let cross: i128 = order
            .iter()
            .enumerate()
            .map(|(p, &row)| i128::from(self.centred_rank2[row]) * (n - 1 - 2 * p as i128))
            .sum();
        // Σ_{p<N} (N − 1 − 2p)² = N(N² − 1)/3.
        let sum_sq_position = n * (n * n - 1) / 3;
        if self.sum_sq_label == 0 || sum_sq_position == 0 {
            return None;
        }
        let denominator = match self.sum_sq_label.checked_mul(sum_sq_position) {
            Some(product) => (product as f64).sqrt(),
            None => (self.sum_sq_label as f64).sqrt() * (sum_sq_position as f64).sqrt(),
        };
        Some((cross as f64 / denominator).clamp(-1.0, 1.0))
    }
}

/// Σ_{i < min(100, N)} scale·y[order_i] / log2(i + 2).
fn dcg(y: &[f64], order: &[usize], scale: f64) -> f64 {
    order
        .iter()
        .take(NDCG_DEPTH)
        .enumerate()
        .map(|(i, &row)| scale * y[row] / ((i + 2) as f64).log2())
        .sum()
}
