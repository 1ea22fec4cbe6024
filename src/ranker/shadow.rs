//! Shadow ranking (DESIGN.md §9): a sampled request, once answered, is ranked again by the
//! shadow version and the two orders are compared — never changing or delaying an answer.
//!
//! Jobs go to a bounded queue (a full queue skips the job) served by one thread that runs
//! a job only when a scoring slot is free and no live request waits for one: shadow work
//! yields to live traffic, and a busy service skips it (counted `skipped`). The job holds
//! the request's body (already read) and re-decodes it, so nothing borrowed outlives the
//! answer. Compared: `shadow_top_overlap` = |served top-k ∩ shadow top-k| / k, and
//! `shadow_rank_correlation` = Spearman's ρ between the served order of the top-k items
//! and the order the shadow version gives those same items (the shadow ranks every
//! candidate, so each served item has a shadow position).

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::Arc;

use tokio::sync::Semaphore;

use super::error::RankError;
use super::serving::Serving;
use crate::metrics::Metrics;

/// Shadow jobs waiting at most; more are skipped.
const QUEUE: usize = 8;

/// Ranks the request again on the given version: every candidate's index, best first.
pub type ShadowRank = Box<dyn FnOnce(&Serving) -> Result<Vec<usize>, RankError> + Send>;

/// One request to rank again.
struct Job {
    shadow: Arc<Serving>,
    /// The candidate indices answered, best first.
    served: Vec<usize>,
    request_id: Option<String>,
    rank: ShadowRank,
}

/// The shadow queue and its worker thread (which ends when the queue is dropped).
#[derive(Debug)]
pub struct ShadowQueue {
    jobs: SyncSender<Job>,
    metrics: Metrics,
}

impl ShadowQueue {
    /// Starts the worker. It takes a slot of `slots` for each job, only when one is free
    /// and `waiting` (live requests waiting for a slot) is zero.
    pub fn start(slots: Arc<Semaphore>, waiting: Arc<AtomicUsize>, metrics: Metrics) -> Self {
        let (jobs, queue) = sync_channel(QUEUE);
        let worker_metrics = metrics.clone();
        let spawned = std::thread::Builder::new()
            .name("giftrank-shadow".into())
            .spawn(move || work(queue, &slots, &waiting, &worker_metrics));
        if let Err(e) = spawned {
            tracing::error!(error = %e, "cannot start the shadow worker; shadow requests will be skipped");
        }
        Self { jobs, metrics }
    }

    /// Queues `served` (the answer given) to be ranked again on `shadow` by `rank`;
    /// skipped (and counted) when the queue is full.
    pub fn offer(
        &self,
        shadow: Arc<Serving>,
        served: Vec<usize>,
        request_id: Option<&str>,
        rank: ShadowRank,
    ) {
        let job = Job {
            shadow,
            served,
            request_id: request_id.map(str::to_owned),
            rank,
        };
        if let Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) = self.jobs.try_send(job)
        {
            self.count("skipped");
        }
    }

    fn count(&self, outcome: &str) {
        self.metrics
            .shadow_requests
            .with_label_values(&[outcome])
            .inc();
    }
}

fn work(queue: Receiver<Job>, slots: &Semaphore, waiting: &AtomicUsize, metrics: &Metrics) {
    let count = |outcome: &str| metrics.shadow_requests.with_label_values(&[outcome]).inc();
    for job in queue {
        let slot = match waiting.load(Ordering::Relaxed) {
            0 => slots.try_acquire().ok(),
            _ => None,
        };
        let Some(_slot) = slot else {
            count("skipped");
            continue;
        };
        let Job {
            shadow,
            served,
            request_id,
            rank,
        } = job;
        let ranked = catch_unwind(AssertUnwindSafe(|| rank(&shadow)))
            .unwrap_or_else(|_| Err(RankError::Internal("shadow ranking panicked".into())));
        let order: Vec<usize> = match ranked {
            Ok(order) => order,
            Err(e) => {
                count("failed");
                tracing::debug!(version = shadow.version, request_id, error = %e, "shadow ranking failed");
                continue;
            }
        };
        count("scored");
        metrics.shadow_overlap.observe(top_overlap(&served, &order));
        if let Some(rho) = rank_correlation(&served, &order) {
            metrics.shadow_correlation.observe(rho);
        }
        tracing::debug!(
            version = shadow.version,
            request_id,
            served_top5 = ?&served[..served.len().min(5)],
            shadow_top5 = ?&order[..order.len().min(5)],
            "shadow ranking compared"
        );
    }
}

/// |served ∩ shadow's first k| / k, k = `served.len()` (1 when nothing was served).
pub fn top_overlap(served: &[usize], shadow: &[usize]) -> f64 {
    let k = served.len();
    if k == 0 {
        return 1.0;
    }
    let top = &shadow[..k.min(shadow.len())];
    let common = served.iter().filter(|i| top.contains(i)).count();
    common as f64 / k as f64
}

/// Spearman's ρ between the served order of `served` and the order of the same items in
/// `shadow` (every candidate, best first); `None` for fewer than two items or an item
/// the shadow order lacks.
pub fn rank_correlation(served: &[usize], shadow: &[usize]) -> Option<f64> {
    let k = served.len();
    if k < 2 {
        return None;
    }
    let mut position = vec![usize::MAX; shadow.iter().max().map_or(0, |m| m + 1)];
    for (at, &index) in shadow.iter().enumerate() {
        position[index] = at;
    }
    let mut shadow_positions = served
        .iter()
        .map(|&i| position.get(i).copied().filter(|&p| p != usize::MAX))
        .collect::<Option<Vec<usize>>>()?;
    // Ranks among the served items in the shadow's order (positions are distinct).
    let mut by_position: Vec<usize> = (0..k).collect();
    by_position.sort_by_key(|&j| shadow_positions[j]);
    for (rank, j) in by_position.into_iter().enumerate() {
        shadow_positions[j] = rank;
    }
    let d2: f64 = shadow_positions
        .iter()
        .enumerate()
        .map(|(served_rank, &shadow_rank)| (served_rank as f64 - shadow_rank as f64).powi(2))
        .sum();
    let k = k as f64;
    Some(1.0 - 6.0 * d2 / (k * (k * k - 1.0)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_order_overlaps_fully_and_correlates_one() {
        let order = [4, 2, 0, 1, 3];
        assert_eq!(top_overlap(&order[..3], &order), 1.0);
        assert_eq!(rank_correlation(&order[..3], &order), Some(1.0));
    }

    #[test]
    fn a_reversed_top_correlates_minus_one() {
        let served = [0, 1, 2];
        let shadow = [2, 1, 0, 3, 4];
        assert_eq!(top_overlap(&served, &shadow), 1.0);
        assert_eq!(rank_correlation(&served, &shadow), Some(-1.0));
    }

    #[test]
    fn overlap_counts_shared_items_of_the_top_k() {
        // Shadow's top 4 is {3, 0, 5, 1}: 0 and 1 are shared with the served top 4.
        let served = [0, 1, 2, 4];
        let shadow = [3, 0, 5, 1, 2, 4];
        assert_eq!(top_overlap(&served, &shadow), 0.5);
        // Shadow order of the served items: 0 (pos 1), 1 (3), 2 (4), 4 (5): same order.
        assert_eq!(rank_correlation(&served, &shadow), Some(1.0));
        assert_eq!(rank_correlation(&[7], &shadow), None);
        assert_eq!(rank_correlation(&[0, 9], &shadow), None);
        assert_eq!(top_overlap(&[], &shadow), 1.0);
    }
}
