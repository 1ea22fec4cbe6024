//! A second core for a request ranked alone: one long-lived thread that scores the second
//! half of a large request's candidates while the request's own thread scores the first.
//! The thread sleeps between jobs; waking it costs some 30 µs on the 2-core VMs we measure
//! on. Waking it ahead, when the request starts, to wait for its half spinning, gained
//! nothing measurable (c=1 p50 711 → 724 µs, `tools/request_ab.sh`, 3 rounds); starting a
//! thread per request (`std::thread::scope`) cost more than the half it saved (see
//! `pipeline`).

use std::sync::mpsc;
use std::sync::Arc;

use super::error::RankError;
use super::serving::Serving;
use crate::engine::{FeatureMatrix, Model};

/// Rows to score with model `which` of `serving`; the rows and their scores go back on
/// `done`.
struct Job {
    serving: Arc<Serving>,
    which: usize,
    rows: FeatureMatrix,
    done: mpsc::SyncSender<(FeatureMatrix, Vec<f64>)>,
}

/// The helper thread's queue.
#[derive(Debug)]
pub struct Helper {
    jobs: mpsc::Sender<Job>,
}

/// A half handed to the helper, or kept when the helper could not take it.
#[derive(Debug)]
pub enum Pending {
    Sent(mpsc::Receiver<(FeatureMatrix, Vec<f64>)>),
    Kept(FeatureMatrix),
}

impl Helper {
    /// Starts the helper thread; `None` when the OS refuses a thread (ranking then
    /// stays on one thread).
    pub fn start() -> Option<Self> {
        let (jobs, queue) = mpsc::channel::<Job>();
        let spawned = std::thread::Builder::new()
            .name("giftrank-helper".into())
            .spawn(move || {
                for job in queue {
                    let model = job.serving.bundle.model(job.which);
                    let scores = score(model, &job.rows);
                    // The requester may have given up; nothing is lost then.
                    let _ = job.done.send((job.rows, scores));
                }
            });
        match spawned {
            Ok(_) => Some(Self { jobs }),
            Err(e) => {
                tracing::warn!(error = %e, "no helper thread: large requests score on one core");
                None
            }
        }
    }

    /// Hands `rows` to the helper to score with model `which` of `serving`.
    pub fn score(&self, serving: &Arc<Serving>, which: usize, rows: FeatureMatrix) -> Pending {
        let (done, receiver) = mpsc::sync_channel(1);
        let job = Job {
            serving: serving.clone(),
            which,
            rows,
            done,
        };
        match self.jobs.send(job) {
            Ok(()) => Pending::Sent(receiver),
            Err(mpsc::SendError(job)) => Pending::Kept(job.rows),
        }
    }
}

impl Pending {
    /// The rows and their scores by `model`: the helper's, or scored here when it did
    /// not take them.
    pub fn wait(self, model: &Model) -> Result<(FeatureMatrix, Vec<f64>), RankError> {
        match self {
            Pending::Sent(receiver) => receiver
                .recv()
                .map_err(|_| RankError::Internal("the helper thread stopped".into())),
            Pending::Kept(rows) => {
                let scores = score(model, &rows);
                Ok((rows, scores))
            }
        }
    }
}

/// One score per row (the models served have one output).
fn score(model: &Model, rows: &FeatureMatrix) -> Vec<f64> {
    let mut scores = vec![0.0; rows.num_rows()];
    model.predict(rows, &mut scores);
    scores
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::bundle::Bundle;

    /// The shipped version 2 and 300 rows for its first model, some values missing.
    fn shipped() -> (Arc<Serving>, FeatureMatrix) {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let bundle = Bundle::load(&root.join("models/gift/2")).expect("shipped bundle");
        let features = bundle.model(0).num_features();
        let values = (0..300 * features)
            .map(|i| {
                if i % 7 == 0 {
                    f64::NAN
                } else {
                    (i % 97) as f64
                }
            })
            .collect();
        let rows = FeatureMatrix::from_rows(values, features);
        (Arc::new(Serving::new(2, bundle)), rows)
    }

    /// The rows come back with the model's scores of them, whoever scored them.
    fn assert_scored(pending: Pending, model: &Model, rows: &FeatureMatrix) {
        let (back, scores) = pending.wait(model).expect("scored");
        // Debug forms: NaN ≠ NaN.
        assert_eq!(
            format!("{back:?}"),
            format!("{rows:?}"),
            "the rows come back"
        );
        assert_eq!(scores, score(model, rows));
    }

    #[test]
    fn the_helper_scores_what_it_is_handed_and_gives_the_rows_back() {
        let (serving, rows) = shipped();
        let helper = Helper::start().expect("a helper thread");
        let pending = helper.score(&serving, 0, rows.clone());
        assert!(matches!(pending, Pending::Sent(_)), "the helper took it");
        assert_scored(pending, serving.bundle.model(0), &rows);
    }

    #[test]
    fn rows_the_helper_cannot_take_are_scored_by_the_caller() {
        let (serving, rows) = shipped();
        let (jobs, queue) = mpsc::channel();
        drop(queue);
        let gone = Helper { jobs };
        let pending = gone.score(&serving, 0, rows.clone());
        assert!(matches!(pending, Pending::Kept(_)), "no helper to take it");
        assert_scored(pending, serving.bundle.model(0), &rows);
    }
}
