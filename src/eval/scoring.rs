//! Batch scoring of every row of a feature matrix on all cores, for the offline `eval`:
//! contiguous row ranges on scoped threads, each scored chunk by chunk so the only extra
//! memory is one small chunk per thread. What the scores mean is the engine's business.

use std::num::NonZeroUsize;

use crate::engine::{FeatureMatrix, Model};

/// Rows copied out and scored together by one thread.
const CHUNK_ROWS: usize = 8192;

/// `Model::predict` of every row of `rows` (`num_outputs` scores per row, row after row),
/// on up to `threads` threads; `None` uses every core the process may use. The scores are
/// bit-for-bit those of one `predict` call on the whole matrix.
pub fn score_rows(model: &Model, rows: &FeatureMatrix, threads: Option<usize>) -> Vec<f64> {
    score_rows_as(model, rows, threads, Output::Scores)
}

/// What [`score_rows_as`] returns per row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    /// `Model::predict`: the objective's transform applied, as `Booster.predict` returns.
    Scores,
    /// `Model::predict_raw`: the sums of tree outputs (`raw_score=True`).
    Raw,
}

/// [`score_rows`], with the choice of scores or raw sums (the Python package's
/// `raw_score`).
pub fn score_rows_as(
    model: &Model,
    rows: &FeatureMatrix,
    threads: Option<usize>,
    output: Output,
) -> Vec<f64> {
    let n = rows.num_rows();
    let mut scores = vec![0.0; n * model.num_outputs()];
    let threads = threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, NonZeroUsize::get))
        .clamp(1, n.div_ceil(CHUNK_ROWS).max(1));
    let width = model.num_outputs();
    if threads == 1 || width == 0 {
        predict(model, rows, &mut scores, output);
        return scores;
    }
    let per_thread = n.div_ceil(threads);
    std::thread::scope(|scope| {
        for (part, out) in scores.chunks_mut(per_thread * width).enumerate() {
            let start = part * per_thread;
            scope.spawn(move || score_range(model, rows, start, out, output));
        }
    });
    scores
}

/// Scores rows `start..start + out.len() / width` into `out`, a chunk at a time.
fn score_range(model: &Model, rows: &FeatureMatrix, start: usize, out: &mut [f64], output: Output) {
    let width = model.num_outputs();
    for (i, chunk_out) in out.chunks_mut(CHUNK_ROWS * width).enumerate() {
        let from = start + i * CHUNK_ROWS;
        let chunk = rows.rows(from..from + chunk_out.len() / width);
        predict(model, &chunk, chunk_out, output);
    }
}

fn predict(model: &Model, rows: &FeatureMatrix, out: &mut [f64], output: Output) {
    match output {
        Output::Scores => model.predict(rows, out),
        Output::Raw => model.predict_raw(rows, out),
    }
}
