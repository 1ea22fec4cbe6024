//! The ranking pipeline of one request, shared by every transport (DESIGN.md §1.1): the
//! profile chosen and its parameters checked, features assembled, the score model and each
//! recall source on every candidate, the recalled set, the rerank model on it, and the
//! final order (`order::rank`, as `eval` ranks), with the ranking metrics recorded.
//! Blocking: it scores.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::budget::{self, Costs, Degradation};
use super::deadline::Deadline;
use super::error::RankError;
use super::features::{Batch, FeatureIndex};
use super::helper::Helper;
use super::request::RankRequest;
use super::serving::Serving;
use super::state::Ranker;
use crate::bundle::Profile;
use crate::engine::{FeatureMatrix, Model};
use crate::order;

/// From this many candidates on, a request ranked while no other is in flight scores its
/// all-candidate models in two halves, the second on the helper thread (`helper`). Handing
/// half over costs some 30 µs and saves half of Direct's 0.4 µs per row, so it pays from
/// about 200 candidates on. Measured (`tools/request_ab.sh`, 3 rounds, 1,000 candidates,
/// 2-core AMD EPYC): concurrency 1 p50 920 → 764 µs, concurrency 8 unchanged (1,832 →
/// 1,824 req/s: requests are rarely alone there). A thread started per request instead
/// (`std::thread::scope`, halves from 600 on, assembly split too) made the same requests
/// slower, p50 1.34 → 1.57 ms on a 2-core Intel Xeon.
const SPLIT_CANDIDATES: usize = 512;

/// One ranked candidate: its index in the request and its scores.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RankedItem {
    pub index: usize,
    /// Its rerank key when reranked, else `direct_score`.
    pub score: f64,
    /// The profile's score model's output (`d`).
    pub direct_score: f64,
    /// The rerank model's output; `Some` for the reranked (recalled) items only.
    pub stage2_score: Option<f64>,
}

/// The outcome of ranking one request, whatever its wire format.
#[derive(Debug, Clone, PartialEq)]
pub struct Ranked {
    /// The profile that ranked it.
    pub profile: String,
    /// The M used: the size of the recalled set R.
    pub m: usize,
    /// The first k items of the final order.
    pub items: Vec<RankedItem>,
    /// `None` when the whole profile ran; else how the answer was degraded to fit the
    /// request's deadline.
    pub degraded: Option<Degradation>,
}

/// How [`rank`] may spend its time.
#[derive(Debug, Clone, Copy, Default)]
pub struct Conditions<'a> {
    /// Score the all-candidate models in two halves, the second on the helper thread,
    /// with this version (the one ranking, as shared).
    pub helper: Option<(&'a Helper, &'a Arc<Serving>)>,
    /// The request's deadline; `None`: no deadline, never degrade.
    pub deadline: Option<Deadline>,
    /// A fixed cost per candidate and model instead of the learned ones (tests, drills).
    pub fixed_cost_ns_per_row: Option<f64>,
}

/// A request's choices applied to its profile: the profile, the recall sources' `m`
/// and alpha, each checked against the profile (DESIGN.md §1.1).
#[derive(Debug)]
struct Choice<'b> {
    profile: &'b Profile,
    /// The `m` of each recall source.
    ms: Vec<usize>,
    alpha: f64,
    k: usize,
}

impl<'b> Choice<'b> {
    fn new(serving: &'b Serving, request: &RankRequest<'_>) -> Result<Self, RankError> {
        let bundle = &serving.bundle;
        let version = serving.version;
        let profile = match request.profile.as_deref() {
            None => bundle.default_profile(),
            Some(name) => bundle.profile(name).ok_or_else(|| {
                let known: Vec<&str> = bundle.profiles.iter().map(|p| p.name.as_str()).collect();
                RankError::Invalid(format!(
                    "profile: `{name}` is not a profile of model version {version} (it has: {})",
                    known.join(", ")
                ))
            })?,
        };
        let mut ms: Vec<usize> = profile.recall.iter().map(|s| s.m).collect();
        if let Some(m) = request.m {
            let Some(first) = ms.first_mut() else {
                return Err(RankError::Invalid(format!(
                    "m: profile `{}` has no recall, so there is no M to set",
                    profile.name
                )));
            };
            if m < 1 || m > profile.max_m as u64 {
                return Err(RankError::Invalid(format!(
                    "m: {m} is outside 1..={} (max_m of profile `{}` in model version {version})",
                    profile.max_m, profile.name
                )));
            }
            *first = m as usize;
        }
        let alpha = match request.alpha {
            None => profile.alpha,
            Some(_) if profile.rerank.is_none() => {
                return Err(RankError::Invalid(format!(
                    "alpha: profile `{}` has no rerank model, so there is nothing to weigh",
                    profile.name
                )))
            }
            Some(a) if (0.0..=1.0).contains(&a) => a,
            Some(a) => return Err(RankError::Invalid(format!("alpha: {a} is outside [0, 1]"))),
        };
        if request.timeout_ms == Some(0) {
            return Err(RankError::Invalid("timeout_ms: must be at least 1".into()));
        }
        let n = request.candidates.len();
        let k = match request.k {
            None => n,
            Some(0) => return Err(RankError::Invalid("k: must be at least 1".into())),
            Some(k) => usize::try_from(k).unwrap_or(usize::MAX).min(n),
        };
        Ok(Self {
            profile,
            ms,
            alpha,
            k,
        })
    }
}

impl Choice<'_> {
    /// Applies `planned` to the recall sizes: a smaller recalled set (each source's m cut
    /// in proportion) or none. `Err` when the request may not be degraded (`504`) or when
    /// nothing fits: `503` at once, `504` after the request waited for its slot.
    fn degrade(
        &mut self,
        planned: budget::Plan,
        allow_degraded: bool,
        deadline: Deadline,
    ) -> Result<Option<Degradation>, RankError> {
        let level = match planned {
            budget::Plan::Full => return Ok(None),
            budget::Plan::Refuse if deadline.waited_for_slot => {
                return Err(RankError::DeadlineExceeded(format!(
                    "after waiting for a scoring slot, not even the score model can rank this request within its deadline of {} ms",
                    deadline.length.as_millis()
                )))
            }
            budget::Plan::Refuse => {
                return Err(RankError::Overloaded(format!(
                    "not even the score model can rank this request within its deadline of {} ms; retry shortly",
                    deadline.length.as_millis()
                )))
            }
            budget::Plan::Reduced(_) => Degradation::ReducedM,
            budget::Plan::RecallOnly => Degradation::RecallOnly,
        };
        if !allow_degraded {
            return Err(RankError::DeadlineExceeded(format!(
                "the whole profile `{}` does not fit the request's deadline of {} ms, and allow_degraded is false",
                self.profile.name,
                deadline.length.as_millis()
            )));
        }
        match planned {
            budget::Plan::Reduced(fits) => {
                let total: usize = self.ms.iter().sum();
                for m in &mut self.ms {
                    *m = (*m * fits / total.max(1)).max(1);
                }
            }
            _ => self.ms.clear(),
        }
        Ok(Some(level))
    }
}

/// How long each stage of one ranking took.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StageTimes {
    /// The score model and the recall sources on every candidate, and the selections.
    pub recall: Duration,
    /// The rerank model on the recalled set and the final order; `None` without rerank.
    pub rerank: Option<Duration>,
}

/// Validates and ranks a decoded request on `serving` by its profile (DESIGN.md §1.1),
/// recording the ranking metrics. Blocking: it scores every candidate. Shared by every
/// transport.
pub fn rank_request(
    ranker: &Ranker,
    serving: &Arc<Serving>,
    request: &RankRequest<'_>,
    deadline: Deadline,
) -> Result<Ranked, RankError> {
    let n = request.candidates.len();
    if n > ranker.config.max_candidates {
        return Err(ranker.reject(
            "too_many_candidates",
            RankError::TooLarge(format!(
                "candidates: {n} candidates, more than the limit of {}",
                ranker.config.max_candidates
            )),
        ));
    }
    let conditions = Conditions {
        helper: ranker
            .helper()
            .filter(|_| n >= SPLIT_CANDIDATES && ranker.ranking_alone())
            .map(|helper| (helper, serving)),
        deadline: Some(deadline.capped(request.timeout_ms.map(Duration::from_millis))),
        fixed_cost_ns_per_row: match ranker.config.fixed_cost_ns_per_row {
            0 => None,
            ns => Some(ns as f64),
        },
    };
    let (ranked, times) = match rank(serving, request, conditions) {
        Ok(done) => done,
        Err(e @ RankError::Overloaded(_)) => return Err(ranker.reject("overloaded", e)),
        Err(e @ RankError::DeadlineExceeded(_)) => return Err(ranker.reject("deadline", e)),
        Err(e) => return Err(e),
    };
    // An answer after the request's own deadline is worth nothing to its caller (the
    // server's deadline is watched by the transport).
    if let Some(deadline) = conditions.deadline.filter(Deadline::has_passed) {
        return Err(ranker.deadline_exceeded(deadline, "while ranking"));
    }

    let metrics = &ranker.metrics;
    let profile = ranked.profile.as_str();
    metrics
        .stage_duration
        .with_label_values(&["recall", profile])
        .observe(times.recall.as_secs_f64());
    if let Some(rerank) = times.rerank {
        metrics
            .stage_duration
            .with_label_values(&["rerank", profile])
            .observe(rerank.as_secs_f64());
    }
    let outcome = match ranked.degraded {
        None => "full",
        Some(level) => {
            metrics.degraded.with_label_values(&[level.as_str()]).inc();
            "degraded"
        }
    };
    metrics
        .rank_requests
        .with_label_values(&[profile, outcome])
        .inc();
    metrics.candidates.observe(n as f64);
    metrics.recall_size_used.observe(ranked.m as f64);
    Ok(ranked)
}

/// Ranks `request` on a shadow version (DESIGN.md §9): the whole profile, no deadline, no
/// metrics of live traffic; every candidate's index, best first (the request's `k` aside).
pub fn shadow_rank(serving: &Serving, request: &RankRequest<'_>) -> Result<Vec<usize>, RankError> {
    let (ranked, _) = rank(serving, request, Conditions::default())?;
    Ok(ranked.items.iter().map(|i| i.index).collect())
}

impl Ranked {
    /// The candidate indices answered, best first.
    pub fn order(&self) -> Vec<usize> {
        self.items.iter().map(|i| i.index).collect()
    }
}

/// Ranks `request` on `serving` by its profile, without limits or metrics (those are
/// [`rank_request`]'s): the profile's models on the request's features and
/// `order::rank`, degraded as far as its deadline needs (`budget`): a `503`
/// ([`RankError::Overloaded`]) when not even the score model fits, a `504` when the
/// request does not allow degrading and the whole profile does not fit.
pub fn rank(
    serving: &Serving,
    request: &RankRequest<'_>,
    conditions: Conditions<'_>,
) -> Result<(Ranked, StageTimes), RankError> {
    let n = request.candidates.len();
    let mut choice = Choice::new(serving, request)?;
    let profile = choice.profile;
    let bundle = &serving.bundle;
    let batch = Batch::new(request, &serving.features)?;
    let allow_degraded = request.allow_degraded.unwrap_or(true);
    let costs = &serving.costs;
    let cost = |learned: &budget::Learned| conditions.fixed_cost_ns_per_row.or(learned.get());
    let rerank_cost = profile.rerank.and_then(|r| cost(&costs.rerank_per_row[r]));

    // Before scoring: does the profile fit the time left, and if not, what does?
    let mut degraded = None;
    if let Some(deadline) = conditions.deadline {
        // The models scored on every candidate: the score model and each source's model
        // (sources never repeat a model; one equal to the score model reuses its scores).
        let sources = profile.recall.iter().map(|s| s.model);
        let per_row: Option<f64> = std::iter::once(profile.score)
            .chain(sources.filter(|&m| m != profile.score))
            .map(|m| cost(&costs.score_per_row[m]))
            .sum();
        let score_ns = per_row.map(|c| c * n as f64);
        let recalled: usize = choice.ms.iter().sum::<usize>().min(n);
        let planned = budget::plan(deadline.remaining(), score_ns, rerank_cost, recalled);
        degraded = choice.degrade(planned, allow_degraded, deadline)?;
    }

    let recall_start = Instant::now();
    let mut matrices = Matrices::new(&batch, &serving.features, n, conditions.helper);
    let d = matrices.score_all(profile.score, bundle.model(profile.score), costs)?;
    // A source whose model is the score model reuses `d`.
    let other: Vec<Vec<f64>> = profile
        .recall
        .iter()
        .take(choice.ms.len())
        .map(|s| {
            if s.model == profile.score {
                Ok(Vec::new())
            } else {
                matrices.score_all(s.model, bundle.model(s.model), costs)
            }
        })
        .collect::<Result<_, _>>()?;
    // After scoring: does the rerank still fit what is left?
    if let (Some(deadline), Some(_)) = (conditions.deadline, rerank_cost) {
        let recalled: usize = choice.ms.iter().sum::<usize>().min(n);
        if recalled > 0 {
            let planned = budget::plan(deadline.remaining(), None, rerank_cost, recalled);
            degraded = choice
                .degrade(planned, allow_degraded, deadline)?
                .or(degraded);
        }
    }
    let sources: Vec<(&[f64], usize)> = profile
        .recall
        .iter()
        .zip(&other)
        .zip(&choice.ms)
        .map(|((s, scores), &m)| {
            let scores = if s.model == profile.score { &d } else { scores };
            (&scores[..], m)
        })
        .collect();
    let mut rerank_start = None;
    let ranking = order::rank(&d, &sources, choice.alpha, choice.k, |recalled| {
        let start = Instant::now();
        rerank_start = Some(start);
        // Called only for a non-empty R, so only when the profile has a rerank model.
        let which = profile.rerank.unwrap_or(profile.score);
        let model = bundle.model(which);
        let mut s = vec![0.0; recalled.len()];
        model.predict(&matrices.rows(which, model, recalled), &mut s);
        let per_row = start.elapsed().as_nanos() as f64 / recalled.len() as f64;
        costs.rerank_per_row[which].observe(per_row);
        s
    });
    let done = Instant::now();
    let times = StageTimes {
        recall: rerank_start.unwrap_or(done) - recall_start,
        rerank: rerank_start.map(|start| done - start),
    };

    let items = ranking
        .order
        .iter()
        .map(|placed| match placed.reranked {
            Some(r) => RankedItem {
                index: placed.index,
                score: ranking.keys[r],
                direct_score: d[placed.index],
                stage2_score: Some(ranking.s[r]),
            },
            None => RankedItem {
                index: placed.index,
                score: d[placed.index],
                direct_score: d[placed.index],
                stage2_score: None,
            },
        })
        .collect();
    let ranked = Ranked {
        profile: profile.name.clone(),
        m: ranking.recalled.len(),
        items,
        degraded,
    };
    Ok((ranked, times))
}

/// The feature matrices of one request, each input layout assembled at most once: models
/// that read the same columns the same way (the shipped ones all do) score from one
/// matrix, and the rerank model's rows are copied out of it rather than assembled again.
struct Matrices<'a> {
    batch: &'a Batch<'a>,
    index: &'a FeatureIndex,
    n: usize,
    /// Score the all-candidate matrices in two halves, the second on the helper thread.
    helper: Option<(&'a Helper, &'a Arc<Serving>)>,
    /// Per layout assembled: the matrix of every candidate, as one part or two halves
    /// (rows `0..n/2` and `n/2..n`).
    built: Vec<(usize, Vec<FeatureMatrix>)>,
}

impl<'a> Matrices<'a> {
    fn new(
        batch: &'a Batch<'a>,
        index: &'a FeatureIndex,
        n: usize,
        helper: Option<(&'a Helper, &'a Arc<Serving>)>,
    ) -> Self {
        Self {
            batch,
            index,
            n,
            helper,
            built: Vec::new(),
        }
    }

    /// Model `which` of the bundle on every candidate. Each row's score is independent
    /// of the others, so scoring in halves is exact.
    fn score_all(
        &mut self,
        which: usize,
        model: &Model,
        costs: &Costs,
    ) -> Result<Vec<f64>, RankError> {
        let start = Instant::now();
        let layout = self.index.layout(which);
        let at = match self.built.iter().position(|(l, _)| *l == layout) {
            Some(at) => at,
            None => {
                let all: Vec<usize> = (0..self.n).collect();
                let parts = match self.helper {
                    Some(_) => {
                        let (a, b) = all.split_at(self.n / 2);
                        vec![
                            self.batch.matrix(which, model, a),
                            self.batch.matrix(which, model, b),
                        ]
                    }
                    None => vec![self.batch.matrix(which, model, &all)],
                };
                self.built.push((layout, parts));
                self.built.len() - 1
            }
        };
        let parts = &mut self.built[at].1;
        let mut out = vec![0.0; self.n];
        match (self.helper, &mut parts[..]) {
            (Some((helper, serving)), [a, b]) => {
                let half = std::mem::replace(b, FeatureMatrix::missing(0, 0));
                let pending = helper.score(serving, which, half);
                let (out_a, out_b) = out.split_at_mut(a.num_rows());
                model.predict(a, out_a);
                let (half, scores) = pending.wait(model)?;
                out_b.copy_from_slice(&scores);
                *b = half;
            }
            (_, parts) => {
                let mut rest = &mut out[..];
                for part in parts.iter() {
                    let (here, after) = rest.split_at_mut(part.num_rows());
                    model.predict(part, here);
                    rest = after;
                }
            }
        }
        if self.n > 0 {
            // Per candidate on one thread: two halves on two threads took half the time.
            let threads = parts.len() as f64;
            let per_row = start.elapsed().as_nanos() as f64 * threads / self.n as f64;
            costs.score_per_row[which].observe(per_row);
        }
        Ok(out)
    }

    /// The matrix of model `which` for the candidates `rows`: copied from its layout's
    /// all-candidate matrix when there is one, else assembled from the request.
    fn rows(&self, which: usize, model: &Model, rows: &[usize]) -> FeatureMatrix {
        match self.parts(self.index.layout(which)) {
            Some(parts) => {
                let first = parts.first().map_or(0, FeatureMatrix::num_rows);
                let mut values = Vec::with_capacity(rows.len() * model.num_features());
                for &i in rows {
                    let row = match parts {
                        [a, b] if i >= first => b.row(i - first),
                        parts => parts[0].row(i),
                    };
                    values.extend_from_slice(row);
                }
                FeatureMatrix::from_rows(values, model.num_features())
            }
            None => self.batch.matrix(which, model, rows),
        }
    }

    fn parts(&self, layout: usize) -> Option<&[FeatureMatrix]> {
        self.built
            .iter()
            .find(|(l, _)| *l == layout)
            .map(|(_, parts)| &parts[..])
    }
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;
    use std::path::Path;

    use super::*;
    use crate::bundle::Bundle;

    #[test]
    fn halves_scored_by_the_helper_rank_exactly_as_one_thread_does() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let bundle = Bundle::load(&root.join("models/gift/2")).expect("shipped bundle");
        let serving = Arc::new(Serving::new(2, bundle));
        let helper = Helper::start().expect("a helper thread");
        let body = std::fs::read(root.join("examples/rank_request.json")).expect("example");
        let mut request: RankRequest<'_> = serde_json::from_slice(&body).expect("valid");
        request.k = None;
        // Hybrid scores two models on every candidate, each in halves.
        for profile in ["default", "hybrid"] {
            request.profile = Some(Cow::Borrowed(profile));
            let (alone, _) = rank(&serving, &request, Conditions::default()).expect("ranks");
            let shared = Conditions {
                helper: Some((&helper, &serving)),
                ..Conditions::default()
            };
            let (halves, _) = rank(&serving, &request, shared).expect("ranks");
            assert_eq!(halves, alone, "{profile}");
            assert_eq!(halves.items.len(), request.candidates.len());
        }
    }
}
