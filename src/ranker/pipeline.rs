//! The ranking pipeline of one request, shared by every transport (DESIGN.md §1): limits
//! and parameters checked, features assembled, Direct on every candidate, Top-M, Stage2 on
//! those M, and the final order, with the ranking metrics recorded. Blocking: it scores.

use std::time::Instant;

use super::error::RankError;
use super::features::{Batch, Side};
use super::models::Serving;
use super::request::RankRequest;
use super::state::Ranker;
use crate::order;

/// From this many candidates on, a request ranked while no other is in flight scores
/// Direct on two threads: below it the thread start-up eats the gain.
const SPLIT_CANDIDATES: usize = 2048;

/// One ranked candidate: its index in the request and its scores.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RankedItem {
    pub index: usize,
    pub direct_score: f64,
    /// `Some` for the reranked (Top-M) items only.
    pub stage2_score: Option<f64>,
}

/// The outcome of ranking one request, whatever its wire format.
#[derive(Debug, Clone, PartialEq)]
pub struct Ranked {
    /// The M used.
    pub m: usize,
    /// The first k items of the final order.
    pub items: Vec<RankedItem>,
}

/// Validates and ranks a decoded request on `serving` (DESIGN.md §1), recording the
/// ranking metrics. Blocking: it scores every candidate. Shared by every transport.
pub fn rank_request(
    ranker: &Ranker,
    serving: &Serving,
    request: &RankRequest<'_>,
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
    let bundle = &serving.bundle;
    let m_asked = match request.m {
        None => bundle.default_m,
        Some(m) if m >= 1 && m <= bundle.max_m as u64 => m as usize,
        Some(m) => {
            return Err(RankError::Invalid(format!(
                "m: {m} is outside 1..={} (max_m of model version {})",
                bundle.max_m, serving.version
            )))
        }
    };
    let k = match request.k {
        None => n,
        Some(0) => return Err(RankError::Invalid("k: must be at least 1".into())),
        Some(k) => usize::try_from(k).unwrap_or(usize::MAX).min(n),
    };
    let batch = Batch::new(request, &serving.features)?;

    let recall_start = Instant::now();
    let all: Vec<usize> = (0..n).collect();
    let mut d = vec![0.0; n];
    let score = |rows: &[usize], out: &mut [f64]| {
        let matrix = batch.matrix(Side::Direct, &bundle.direct, rows);
        bundle.direct.predict(&matrix, out);
    };
    if n >= SPLIT_CANDIDATES && ranker.ranking_alone() {
        // Each row's score is independent of the others, so the halves are exact.
        let (rows_a, rows_b) = all.split_at(n / 2);
        let (d_a, d_b) = d.split_at_mut(n / 2);
        std::thread::scope(|scope| {
            scope.spawn(|| score(rows_b, d_b));
            score(rows_a, d_a);
        });
    } else {
        score(&all, &mut d);
    }
    let recalled = order::recall(&d, m_asked);
    let rerank_start = Instant::now();
    let mut s = vec![0.0; recalled.len()];
    bundle.stage2.predict(
        &batch.matrix(Side::Stage2, &bundle.stage2, &recalled),
        &mut s,
    );
    let order = order::order(&d, &recalled, &s, k);
    let done = Instant::now();

    let metrics = &ranker.metrics;
    metrics
        .stage_duration
        .with_label_values(&["recall"])
        .observe((rerank_start - recall_start).as_secs_f64());
    metrics
        .stage_duration
        .with_label_values(&["rerank"])
        .observe((done - rerank_start).as_secs_f64());
    metrics.candidates.observe(n as f64);
    metrics.recall_size_used.observe(recalled.len() as f64);

    let items = order
        .into_iter()
        .map(|(index, stage2_score)| RankedItem {
            index,
            direct_score: d[index],
            stage2_score,
        })
        .collect();
    Ok(Ranked {
        m: recalled.len(),
        items,
    })
}
