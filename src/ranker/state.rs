//! The [`Ranker`]: the state every request and transport shares — configuration,
//! metrics, the model versions, readiness — and the admission and running of ranking
//! jobs under their deadlines.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};

use super::budget::{Learned, RESERVE};
use super::deadline::Deadline;
use super::error::RankError;
use super::helper::Helper;
use super::models::{self, PinError, ReloadOutcome};
use super::routing::Routing;
use super::serving::Serving;
use super::shadow::{ShadowQueue, ShadowRank};
use crate::config::Config;
use crate::metrics::Metrics;
use crate::repository::Scanner;

/// State shared by every request and transport.
#[derive(Debug)]
pub struct Ranker {
    pub config: Config,
    pub metrics: Metrics,
    pub models: models::Models,
    shutting_down: AtomicBool,
    inflight: Arc<Semaphore>,
    /// Scoring slots: how many admitted rankings score at once (`scoring_slots`).
    slots: Arc<Semaphore>,
    /// Their number, resolved once (the default asks the OS for the core count).
    slot_count: usize,
    /// Rankings waiting for a slot now.
    waiting: Arc<AtomicUsize>,
    /// Requests to rank again on the shadow version.
    shadow: ShadowQueue,
    /// How long a ranking holds its slot, learned.
    slot_time: Learned,
    /// Scores half of a large request ranked alone (none on a single core).
    helper: Option<Helper>,
    /// [`Ranker::is_ready`], for those who follow it (the gRPC health service).
    readiness: watch::Sender<bool>,
}

/// A ranking request's place among those in flight: held from admission (before its body
/// is read) until its ranking job ends, even by a panic. Counted in `inflight_requests`.
#[derive(Debug)]
pub struct Admission {
    _permit: OwnedSemaphorePermit,
    metrics: Metrics,
}

impl Drop for Admission {
    fn drop(&mut self) {
        self.metrics.inflight.dec();
    }
}

impl Ranker {
    /// Builds the core and loads the version to serve, if the repository has a valid one;
    /// with none it still starts (not ready) and serves the first valid version a later
    /// reload finds. Blocking: call it off the async runtime.
    pub fn start(config: Config) -> Arc<Self> {
        let metrics = Metrics::new();
        let slot_count = config.scoring_slots();
        let slots = Arc::new(Semaphore::new(slot_count));
        let waiting = Arc::new(AtomicUsize::new(0));
        let shadow = ShadowQueue::start(slots.clone(), waiting.clone(), metrics.clone());
        let ranker = Arc::new(Self {
            metrics,
            models: models::Models::new(Scanner::new(config.model_repo.clone())),
            shutting_down: AtomicBool::new(false),
            inflight: Arc::new(Semaphore::new(config.max_inflight_requests)),
            slots,
            slot_count,
            waiting,
            shadow,
            slot_time: Learned::default(),
            // One core, or an operator who asked for one scoring slot: no second core.
            helper: (slot_count > 1
                && std::thread::available_parallelism().is_ok_and(|cores| cores.get() > 1))
            .then(Helper::start)
            .flatten(),
            readiness: watch::Sender::new(false),
            config,
        });
        ranker.reload();
        if ranker.models.serving().is_none() {
            tracing::warn!(
                repository = %ranker.config.model_repo.display(),
                "no valid model version yet: not ready; serving starts when one appears"
            );
        }
        ranker
    }

    /// Rescans the repository and swaps in the version that should serve, if it changed.
    /// Blocking: call it off the async runtime.
    pub fn reload(&self) -> ReloadOutcome {
        let outcome = self.models.reload(&self.metrics);
        self.publish_readiness();
        outcome
    }

    /// Pins `version` (it must be valid) and serves it until unpinned. Blocking.
    pub fn pin(&self, version: u64) -> Result<ReloadOutcome, PinError> {
        let outcome = self.models.pin(version, &self.metrics);
        self.publish_readiness();
        outcome
    }

    /// Removes the pin: the highest valid version serves again. Blocking.
    pub fn unpin(&self) -> ReloadOutcome {
        let outcome = self.models.unpin(&self.metrics);
        self.publish_readiness();
        outcome
    }

    /// Counts a request answered without a ranking, by reason (`rejected_requests_total`).
    pub fn count_rejected(&self, reason: &str) {
        self.metrics.rejected.with_label_values(&[reason]).inc();
    }

    /// Counts a request answered without a ranking, by reason, and returns the error.
    pub fn reject(&self, reason: &str, error: RankError) -> RankError {
        self.count_rejected(reason);
        error
    }

    /// A place among the ranking requests in flight. Refused at once, never queued, when
    /// all are taken (`503`, shed) or when no version serves yet.
    pub fn admit(&self) -> Result<Admission, RankError> {
        if self.models.serving_version().is_none() {
            return Err(self.reject(
                "not_ready",
                RankError::NotReady("no model version is serving yet".into()),
            ));
        }
        let Ok(permit) = self.inflight.clone().try_acquire_owned() else {
            return Err(self.reject(
                "overloaded",
                RankError::Overloaded(format!(
                    "{} ranking requests are already in flight; retry shortly",
                    self.config.max_inflight_requests
                )),
            ));
        };
        self.metrics.inflight.inc();
        Ok(Admission {
            _permit: permit,
            metrics: self.metrics.clone(),
        })
    }

    /// Runs an admitted ranking job off the async runtime on one snapshot of the versions
    /// in service, answering `504` once `deadline` passes (the job still holds its place
    /// until it ends). The job is handed the deadline, marked when it waited for its
    /// scoring slot. Shared by every transport.
    pub async fn run<T: Send + 'static>(
        self: &Arc<Self>,
        admission: Admission,
        deadline: Deadline,
        job: impl FnOnce(&Ranker, &Routing, Deadline) -> Result<T, RankError> + Send + 'static,
    ) -> Result<T, RankError> {
        let Some(routing) = self.models.routing() else {
            return Err(self.reject(
                "not_ready",
                RankError::NotReady("no model version is serving yet".into()),
            ));
        };
        if deadline.has_passed() {
            return Err(self.deadline_exceeded(deadline, "before ranking began"));
        }
        let (slot, waited_for_slot) = self.scoring_slot(deadline).await?;
        let deadline = Deadline {
            waited_for_slot,
            ..deadline
        };
        let worker = self.clone();
        let work = tokio::task::spawn_blocking(move || {
            let _admission = admission;
            let held = Instant::now();
            let result = job(&worker, &routing, deadline);
            drop(slot);
            let ns = held.elapsed().as_nanos() as f64;
            worker.slot_time.observe(ns);
            result
        });
        match tokio::time::timeout_at(deadline.at.into(), work).await {
            Ok(Ok(result)) => result,
            Ok(Err(join)) => Err(RankError::Internal(format!("ranking task failed: {join}"))),
            Err(_) => Err(self.deadline_exceeded(deadline, "while ranking")),
        }
    }

    /// A scoring slot, waited for only while `deadline` leaves room to rank. A request
    /// whose turn, as the slots' learned holding time predicts it (every slot busy,
    /// `waiting` ahead of it), would come too late is refused at once with `503`; one whose
    /// room runs out while it waits gets `504`. Queueing is bounded by each request's own
    /// deadline, never by a count. Also says whether the request had to wait.
    async fn scoring_slot(
        &self,
        deadline: Deadline,
    ) -> Result<(OwnedSemaphorePermit, bool), RankError> {
        if let Ok(permit) = self.slots.clone().try_acquire_owned() {
            return Ok((permit, false));
        }
        let latest_start = deadline.at.checked_sub(RESERVE).unwrap_or(deadline.at);
        let slots = self.slot_count as f64;
        let ahead = self.waiting.load(Ordering::Relaxed) as f64 + 1.0;
        // Its turn comes when those ahead of it and itself have shared out the slots.
        let predicted = self.slot_time.get().map_or(Duration::ZERO, |ns| {
            Duration::from_nanos((ns * ahead / slots) as u64)
        });
        if Instant::now() + predicted >= latest_start {
            return Err(self.reject(
                "overloaded",
                RankError::Overloaded(format!(
                    "every scoring slot is busy and the request's deadline of {} ms leaves no time to wait; retry shortly",
                    deadline.length.as_millis()
                )),
            ));
        }
        let waited = {
            // Counted while waiting, even when the wait is cancelled (client gone).
            struct Waiting<'a>(&'a AtomicUsize);
            impl Drop for Waiting<'_> {
                fn drop(&mut self) {
                    self.0.fetch_sub(1, Ordering::Relaxed);
                }
            }
            self.waiting.fetch_add(1, Ordering::Relaxed);
            let _waiting = Waiting(&self.waiting);
            tokio::time::timeout_at(latest_start.into(), self.slots.clone().acquire_owned()).await
        };
        match waited {
            Ok(Ok(permit)) => Ok((permit, true)),
            Ok(Err(_)) | Err(_) => Err(self.deadline_exceeded(
                deadline,
                "while it waited for a scoring slot (every slot stayed busy)",
            )),
        }
    }

    /// The version that answers a request with this `routing_key`, else `request_id`
    /// (`None`: a random draw): the canary for its share of keys, else the main version.
    /// Counts the canary's answers.
    pub fn answerer<'r>(&self, routing: &'r Routing, key: Option<&str>) -> &'r Arc<Serving> {
        let (serving, canary) = routing.answerer(key);
        if canary {
            self.metrics
                .canary_requests
                .with_label_values(&[&serving.version.to_string()])
                .inc();
        }
        serving
    }

    /// Offers an answered request to the shadow version, when there is one and the
    /// request is sampled: `rank` ranks it again there, later, off the response path.
    /// `served` (the indices answered) is only built for a sampled request.
    pub fn shadow(
        &self,
        routing: &Routing,
        served: impl FnOnce() -> Vec<usize>,
        request_id: Option<&str>,
        rank: impl FnOnce(&Serving) -> Result<Vec<usize>, RankError> + Send + 'static,
    ) {
        if let Some(shadow) = routing.shadow_for() {
            let rank: ShadowRank = Box::new(rank);
            self.shadow
                .offer(shadow.clone(), served(), request_id, rank);
        }
    }

    /// Rankings waiting for a scoring slot now.
    pub fn waiting_for_slot(&self) -> usize {
        self.waiting.load(Ordering::Relaxed)
    }

    /// Holds one scoring slot until the permit is dropped, as a long ranking would: for
    /// load drills and tests of what waiting requests do.
    pub async fn occupy_scoring_slot(&self) -> OwnedSemaphorePermit {
        self.slots
            .clone()
            .acquire_owned()
            .await
            .unwrap_or_else(|_| unreachable!("the slot semaphore is never closed"))
    }

    /// Sets how long a ranking is taken to hold its scoring slot, as if every recent one had
    /// held it that long (learning goes on from there): for load drills and tests of the
    /// refusals a predicted wait decides.
    pub fn assume_slot_time(&self, held: Duration) {
        self.slot_time.set(held.as_nanos() as f64);
    }

    /// The `504` of a request whose deadline passed `when`; counted as `deadline`.
    pub fn deadline_exceeded(&self, deadline: Deadline, when: &str) -> RankError {
        self.reject(
            "deadline",
            RankError::DeadlineExceeded(format!(
                "the request's deadline of {} ms (counted from its arrival) passed {when}",
                deadline.length.as_millis()
            )),
        )
    }

    /// The thread that scores half of a large request ranked alone, if there is one.
    pub fn helper(&self) -> Option<&Helper> {
        self.helper.as_ref()
    }

    /// Whether the calling ranking job is the only one admitted: then a second core is
    /// free to share its scoring.
    pub fn ranking_alone(&self) -> bool {
        self.inflight.available_permits() + 1 >= self.config.max_inflight_requests
    }

    pub fn is_ready(&self) -> bool {
        !self.shutting_down.load(Ordering::SeqCst) && self.models.serving_version().is_some()
    }

    /// True once shutdown has begun (it never ends).
    pub fn is_shutting_down(&self) -> bool {
        self.shutting_down.load(Ordering::SeqCst)
    }

    /// A receiver of [`Ranker::is_ready`] that changes when readiness does.
    pub fn subscribe_readiness(&self) -> watch::Receiver<bool> {
        self.readiness.subscribe()
    }

    fn publish_readiness(&self) {
        let ready = self.is_ready();
        self.readiness
            .send_if_modified(|published| std::mem::replace(published, ready) != ready);
    }

    /// Readiness turns false; in-flight requests still finish.
    pub fn begin_shutdown(&self) {
        self.shutting_down.store(true, Ordering::SeqCst);
        self.publish_readiness();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_scoring_slot_means_no_helper_thread() {
        let repo = std::env::temp_dir().join("giftrank-no-such-repository");
        let start = |slots: usize| {
            Ranker::start(Config {
                scoring_slots: slots,
                model_repo: repo.clone(),
                ..Config::default()
            })
        };
        assert!(start(1).helper().is_none());
        let several = std::thread::available_parallelism().is_ok_and(|c| c.get() > 1);
        assert_eq!(start(2).helper().is_some(), several);
    }
}
