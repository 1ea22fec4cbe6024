//! Deadlines spent well (DESIGN.md §10): what each model costs per candidate, learned from
//! this process's own rankings, and the plan for one request given the time it has left —
//! the full profile, a smaller recalled set (`reduced_m`), no rerank (`recall_only`), or a
//! refusal when not even the score model fits.
//!
//! Why cost estimates and not a concurrency limit alone: a ranking's cost is known before
//! it starts (candidates × models × a per-row cost that hardly varies between requests),
//! so the service can decide, per request, the best ranking that fits its own deadline —
//! which an adaptive concurrency limit (Netflix's concurrency-limits, tower's load shed)
//! cannot, as it only says "run" or "shed". Queueing is bounded by time, not by a count:
//! `Ranker::scoring_slot` (`state.rs`) lets a request wait for a slot only as long as its
//! deadline still leaves room to score. Costs are exponentially weighted averages (weight
//! 1/8 per observation), measured per model as time per candidate while holding a slot,
//! so they track the machine under its current load. A planned time is the estimate
//! times [`SAFETY`] plus [`RESERVE`], for the encoding and hand-off around the stages.
//!
//! A `503` is answered at once or not at all: a refusal decided after the request waited
//! for its slot (its deadline spent in the queue) is a `504`. The body is decoded inside
//! the slot (decoded requests hold several times their body's memory), so the transports
//! learn a request's own deadline before it queues without decoding it: gRPC's
//! `grpc-timeout` and message, and for HTTP bodies `http::early_deadline`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Estimates are inflated by this factor before they are compared with the time left.
pub const SAFETY: f64 = 1.25;
/// Time kept free for what follows the stages (encoding, hand-off to the transport).
pub const RESERVE: Duration = Duration::from_micros(500);

/// How a request is answered when its deadline cannot hold the whole profile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Degradation {
    /// Fewer candidates recalled and reranked.
    ReducedM,
    /// No rerank: the whole order is the score model's.
    RecallOnly,
}

impl Degradation {
    /// The `level` label and the response's `"degraded"` value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ReducedM => "reduced_m",
            Self::RecallOnly => "recall_only",
        }
    }

    pub const ALL: [Degradation; 2] = [Self::ReducedM, Self::RecallOnly];
}

/// What one request will do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Plan {
    /// The whole profile fits (or costs are not known yet).
    Full,
    /// Rerank at most this many candidates (≥ 1, fewer than the profile's).
    Reduced(usize),
    /// Score, and order by the score model alone.
    RecallOnly,
    /// Not even the score model fits.
    Refuse,
}

/// The plan for a request with `left` time, whose score stage costs `score_ns` in all
/// and whose rerank costs `rerank_ns_per_row` for each of up to `recalled` candidates.
/// `None` costs are unknown: then the request is not degraded for them.
pub fn plan(
    left: Duration,
    score_ns: Option<f64>,
    rerank_ns_per_row: Option<f64>,
    recalled: usize,
) -> Plan {
    let budget = left.saturating_sub(RESERVE).as_nanos() as f64 / SAFETY;
    let score = score_ns.unwrap_or(0.0);
    if score > budget {
        return Plan::Refuse;
    }
    let Some(per_row) = rerank_ns_per_row.filter(|c| *c > 0.0) else {
        return Plan::Full;
    };
    if score + per_row * recalled as f64 <= budget {
        return Plan::Full;
    }
    let fits = ((budget - score) / per_row).floor() as usize;
    if fits >= 1 {
        Plan::Reduced(fits)
    } else {
        Plan::RecallOnly
    }
}

/// A cost learned from observations: an exponentially weighted mean, 0 until the first.
#[derive(Debug, Default)]
pub struct Learned(AtomicU64);

impl Learned {
    /// Adds one observation (nanoseconds).
    pub fn observe(&self, ns: f64) {
        if !ns.is_finite() || ns < 0.0 {
            return;
        }
        let _ = self
            .0
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |bits| {
                let old = f64::from_bits(bits);
                let new = if old > 0.0 {
                    old + (ns - old) / 8.0
                } else {
                    ns
                };
                Some(new.max(f64::MIN_POSITIVE).to_bits())
            });
    }

    /// Replaces the estimate (nanoseconds, > 0).
    pub fn set(&self, ns: f64) {
        if ns.is_finite() && ns > 0.0 {
            self.0.store(ns.to_bits(), Ordering::Relaxed);
        }
    }

    /// The current estimate; `None` before any observation.
    pub fn get(&self) -> Option<f64> {
        let value = f64::from_bits(self.0.load(Ordering::Relaxed));
        (value > 0.0).then_some(value)
    }
}

/// Per model of one serving version: the cost per candidate of scoring every candidate
/// (feature assembly included) and of reranking one candidate.
#[derive(Debug, Default)]
pub struct Costs {
    pub score_per_row: Vec<Learned>,
    pub rerank_per_row: Vec<Learned>,
}

impl Costs {
    pub fn new(models: usize) -> Self {
        Self {
            score_per_row: (0..models).map(|_| Learned::default()).collect(),
            rerank_per_row: (0..models).map(|_| Learned::default()).collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn the_plan_degrades_in_order() {
        // Budget for 100 ms left: (100 - 0.5) / 1.25 = 79.6 ms.
        assert_eq!(plan(ms(100), Some(40e6), Some(1e5), 200), Plan::Full);
        // 40 ms + 200 × 0.2 ms = 80 ms > 79.6 ms: rerank what fits, 198 candidates.
        assert_eq!(
            plan(ms(100), Some(40e6), Some(2e5), 200),
            Plan::Reduced(198)
        );
        assert_eq!(plan(ms(100), Some(79e6), Some(1e6), 200), Plan::RecallOnly);
        assert_eq!(plan(ms(100), Some(80e6), Some(1e5), 200), Plan::Refuse);
        // Unknown costs never degrade; an unknown score cost counts as free.
        assert_eq!(plan(ms(1), None, None, 200), Plan::Full);
        assert_eq!(plan(ms(100), None, Some(1e6), 200), Plan::Reduced(79));
        assert_eq!(plan(Duration::ZERO, None, None, 0), Plan::Full);
    }

    #[test]
    fn learned_costs_follow_observations() {
        let cost = Learned::default();
        assert_eq!(cost.get(), None);
        cost.observe(800.0);
        assert_eq!(cost.get(), Some(800.0));
        cost.observe(0.0);
        assert_eq!(cost.get(), Some(700.0));
        cost.observe(f64::NAN);
        assert_eq!(cost.get(), Some(700.0));
    }
}
