//! `--group COL` (DESIGN.md §7): each group of rows is one ranking, as one request is in
//! the service, and is ranked by `order::rank`; every metric is computed inside each group
//! with N = the group's size and averaged over the groups whose label sum is > 0
//! (Spearman: over those where it is defined, i.e. labels and positions both vary). A
//! group without a positive label changes no average, so it is never ranked.
//!
//! Groups are measured on all cores in fixed chunks whose sums are added in group order,
//! so the averages do not depend on the number of threads.

use std::num::NonZeroUsize;

use super::metrics::{
    Coverage, Evaluation, FusionMetrics, GroupCounts, ProfileMetrics, RankingMetrics,
    RecallRerankMetrics, Truth,
};
use crate::bundle::Profile;
use crate::order;

/// Used groups measured together by one thread before its sums are handed back.
const CHUNK_GROUPS: usize = 512;

/// The rows of every group, ascending within each group.
#[derive(Debug)]
pub struct Groups {
    /// Group g's rows are `members[starts[g]..starts[g + 1]]`.
    starts: Vec<u32>,
    members: Vec<u32>,
}

/// A grouped evaluation needs every row index to fit in 32 bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{0} rows: --group takes at most 4,294,967,295")]
pub struct TooManyRows(pub usize);

impl Groups {
    /// Groups `ids` (row i is in group `ids[i]`, every id below `count`).
    pub fn new(ids: &[u32], count: usize) -> Result<Self, TooManyRows> {
        if u32::try_from(ids.len()).is_err() {
            return Err(TooManyRows(ids.len()));
        }
        let mut starts = vec![0u32; count + 1];
        for &g in ids {
            if let Some(next) = starts.get_mut(g as usize + 1) {
                *next += 1;
            }
        }
        for g in 0..count {
            starts[g + 1] += starts[g];
        }
        let mut next = starts.clone();
        let mut members = vec![0u32; starts[count] as usize];
        for (row, &g) in ids.iter().enumerate() {
            if let Some(slot) = next.get_mut(g as usize) {
                members[*slot as usize] = row as u32;
                *slot += 1;
            }
        }
        Ok(Self { starts, members })
    }

    pub fn len(&self) -> usize {
        self.starts.len() - 1
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The rows of group `g`, ascending.
    pub fn rows(&self, g: usize) -> &[u32] {
        &self.members[self.starts[g] as usize..self.starts[g + 1] as usize]
    }
}

/// Everything a grouped evaluation ranks: the labels, every model's scores of every row
/// (empty for a model nothing uses), the models behind `direct`/`stage2`/`recall_rerank`/
/// `fusion` (score, rerank), the Ms, the fusion alphas and the bundle's profiles.
#[derive(Debug, Clone, Copy)]
pub struct Inputs<'a> {
    pub y: &'a [f64],
    pub scores: &'a [Vec<f64>],
    pub pair: (usize, usize),
    pub ms: &'a [usize],
    pub alphas: &'a [f64],
    pub profiles: &'a [Profile],
}

/// One method row, ranking one group.
#[derive(Debug, Clone, Copy)]
enum Method<'a> {
    /// Ranked by the scores of model `.0`.
    ByScore(usize),
    /// The pair's score model's Top-M, keyed by the rerank model with weight alpha.
    Rerank {
        m: usize,
        alpha: f64,
    },
    Profile(&'a Profile),
}

/// Sums over groups of one method's metrics.
#[derive(Debug, Clone, Copy, Default)]
struct Sums {
    top1: f64,
    top5: f64,
    ndcg100: f64,
    recall1: f64,
    recall5: f64,
    recall_size: f64,
    spearman: f64,
    spearman_groups: usize,
}

impl Sums {
    fn add(&mut self, other: &Sums) {
        self.top1 += other.top1;
        self.top5 += other.top5;
        self.ndcg100 += other.ndcg100;
        self.recall1 += other.recall1;
        self.recall5 += other.recall5;
        self.recall_size += other.recall_size;
        self.spearman += other.spearman;
        self.spearman_groups += other.spearman_groups;
    }

    fn add_group(&mut self, metrics: &RankingMetrics, coverage: Option<Coverage>) {
        self.top1 += metrics.top1;
        self.top5 += metrics.top5;
        self.ndcg100 += metrics.ndcg100;
        if let Some(rho) = metrics.spearman {
            self.spearman += rho;
            self.spearman_groups += 1;
        }
        if let Some(c) = coverage {
            self.recall1 += c.recall1;
            self.recall5 += c.recall5;
            self.recall_size += c.size;
        }
    }

    /// The means over `used` groups (0 when there are none; Spearman `None`).
    fn means(&self, used: usize) -> (RankingMetrics, Coverage) {
        let mean = |sum: f64| if used == 0 { 0.0 } else { sum / used as f64 };
        let metrics = RankingMetrics {
            top1: mean(self.top1),
            top5: mean(self.top5),
            ndcg100: mean(self.ndcg100),
            spearman: (self.spearman_groups > 0)
                .then(|| self.spearman / self.spearman_groups as f64),
        };
        let coverage = Coverage {
            size: mean(self.recall_size),
            recall1: mean(self.recall1),
            recall5: mean(self.recall5),
        };
        (metrics, coverage)
    }
}

/// The evaluation of every method with each group one ranking (`column` names the group
/// column, for the report).
pub fn evaluate(groups: &Groups, inputs: &Inputs<'_>, column: &str) -> Evaluation {
    let (score, rerank) = inputs.pair;
    let mut methods = vec![Method::ByScore(score), Method::ByScore(rerank)];
    methods.extend(inputs.ms.iter().map(|&m| Method::Rerank { m, alpha: 1.0 }));
    for &m in inputs.ms {
        methods.extend(
            inputs
                .alphas
                .iter()
                .map(|&alpha| Method::Rerank { m, alpha }),
        );
    }
    methods.extend(inputs.profiles.iter().map(Method::Profile));

    let used: Vec<usize> = (0..groups.len())
        .filter(|&g| groups.rows(g).iter().any(|&r| inputs.y[r as usize] > 0.0))
        .collect();
    let sums = sum_in_chunks(
        &used,
        |chunk, sums| {
            let mut local = Local::default();
            for &g in chunk {
                local.gather(groups.rows(g), inputs);
                let truth = Truth::new(&local.y);
                for (method, sum) in methods.iter().zip(sums.iter_mut()) {
                    let (metrics, coverage) = local.measure(&truth, method, inputs.pair);
                    sum.add_group(&metrics, coverage);
                }
            }
        },
        methods.len(),
    );

    let n_used = used.len();
    let mut results = sums.iter().map(|s| s.means(n_used));
    let mut next = || results.next().unwrap_or_else(zero);
    let direct = next().0;
    let stage2 = next().0;
    let recall_rerank = inputs
        .ms
        .iter()
        .map(|&m| {
            let (metrics, coverage) = next();
            RecallRerankMetrics {
                m,
                recall1: coverage.recall1,
                recall5: coverage.recall5,
                metrics,
            }
        })
        .collect();
    let mut fusion = Vec::new();
    for &m in inputs.ms {
        for &alpha in inputs.alphas {
            let (metrics, coverage) = next();
            fusion.push(FusionMetrics {
                m,
                alpha,
                recall1: coverage.recall1,
                recall5: coverage.recall5,
                metrics,
            });
        }
    }
    let profiles = inputs
        .profiles
        .iter()
        .map(|profile| {
            let (metrics, coverage) = next();
            ProfileMetrics {
                name: profile.name.clone(),
                m: profile.first_m(),
                alpha: profile.rerank.map(|_| profile.alpha),
                recall: (!profile.recall.is_empty()).then_some(coverage),
                metrics,
            }
        })
        .collect();
    Evaluation {
        n: inputs.y.len(),
        positives: inputs.y.iter().filter(|&&v| v > 0.0).count(),
        direct,
        stage2,
        recall_rerank,
        fusion,
        profiles,
        default_profile: None,
        groups: Some(GroupCounts {
            column: column.to_owned(),
            groups: groups.len(),
            used: n_used,
        }),
    }
}

/// The means when there is nothing to average.
fn zero() -> (RankingMetrics, Coverage) {
    Sums::default().means(0)
}

/// `measure(chunk, sums)` of every chunk of `items` on all cores; the chunks' sums
/// (`width` per chunk) added up in chunk order.
fn sum_in_chunks(
    items: &[usize],
    measure: impl Fn(&[usize], &mut [Sums]) + Sync,
    width: usize,
) -> Vec<Sums> {
    let chunks: Vec<&[usize]> = items.chunks(CHUNK_GROUPS).collect();
    let threads = std::thread::available_parallelism()
        .map_or(1, NonZeroUsize::get)
        .clamp(1, chunks.len().max(1));
    let measure = &measure;
    let chunks = &chunks;
    let mut per_chunk: Vec<(usize, Vec<Sums>)> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|t| {
                scope.spawn(move || {
                    (t..chunks.len())
                        .step_by(threads)
                        .map(|c| {
                            let mut sums = vec![Sums::default(); width];
                            measure(chunks[c], &mut sums);
                            (c, sums)
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
            .collect()
    });
    per_chunk.sort_by_key(|(c, _)| *c);
    let mut total = vec![Sums::default(); width];
    for (_, sums) in &per_chunk {
        for (t, s) in total.iter_mut().zip(sums) {
            t.add(s);
        }
    }
    total
}

/// One group's labels and scores, copied out of the columns (buffers reused).
#[derive(Debug, Default)]
struct Local {
    y: Vec<f64>,
    /// Per bundle model, its scores of the group's rows (empty when it has none).
    scores: Vec<Vec<f64>>,
}

impl Local {
    fn gather(&mut self, rows: &[u32], inputs: &Inputs<'_>) {
        let pick = |column: &[f64], out: &mut Vec<f64>| {
            out.clear();
            if !column.is_empty() {
                out.extend(rows.iter().map(|&r| column[r as usize]));
            }
        };
        pick(inputs.y, &mut self.y);
        self.scores.resize_with(inputs.scores.len(), Vec::new);
        for (column, out) in inputs.scores.iter().zip(&mut self.scores) {
            pick(column, out);
        }
    }

    /// The metrics of `method` on this group, and the coverage of its recalled set when
    /// it has one.
    fn measure(
        &self,
        truth: &Truth,
        method: &Method<'_>,
        pair: (usize, usize),
    ) -> (RankingMetrics, Option<Coverage>) {
        let n = self.y.len();
        let rerank_by = |model: usize| {
            let s = &self.scores[model];
            move |recalled: &[usize]| recalled.iter().map(|&i| s[i]).collect::<Vec<f64>>()
        };
        let (ranking, recalls) = match *method {
            Method::ByScore(model) => (
                order::rank(&self.scores[model], &[], 1.0, n, |_| Vec::new()),
                false,
            ),
            Method::Rerank { m, alpha } => {
                let d = &self.scores[pair.0][..];
                (order::rank(d, &[(d, m)], alpha, n, rerank_by(pair.1)), true)
            }
            Method::Profile(profile) => {
                let sources: Vec<(&[f64], usize)> = profile
                    .recall
                    .iter()
                    .map(|source| (&self.scores[source.model][..], source.m))
                    .collect();
                let rerank = rerank_by(profile.rerank.unwrap_or(profile.score));
                let d = &self.scores[profile.score];
                (
                    order::rank(d, &sources, profile.alpha, n, rerank),
                    !profile.recall.is_empty(),
                )
            }
        };
        let order: Vec<usize> = ranking.order.iter().map(|p| p.index).collect();
        let metrics = truth.metrics(&self.y, &order);
        (metrics, recalls.then(|| truth.recall(&ranking.recalled)))
    }
}
