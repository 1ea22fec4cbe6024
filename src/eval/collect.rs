//! The rows of an evaluation, read and scored block by block: one thread reads blocks
//! from the data file while all cores score the block before, and only what the metrics
//! need stays: each used model's score, the label and the group of every row (8 bytes per
//! score and label, 4 per group). Labels are checked as they arrive.

use std::path::PathBuf;
use std::sync::mpsc;

use super::metrics::{check_labels, describe_label, EvalError};
use super::scoring::score_rows;
use crate::data::{Block, DataError, Location, Reader};
use crate::engine::Model;

/// Blocks read ahead of the one being scored.
const READ_AHEAD: usize = 1;

/// Every row's scores, label and group.
#[derive(Debug, Default)]
pub struct Collected {
    /// Per bundle model, its score of every row; empty for a model not used.
    pub scores: Vec<Vec<f64>>,
    pub labels: Vec<f64>,
    /// Each row's group, when a group column was read.
    pub groups: Vec<u32>,
    /// The number of distinct groups.
    pub group_count: usize,
}

/// Why the rows could not be collected.
#[derive(Debug, thiserror::Error)]
pub enum CollectError {
    #[error(transparent)]
    Data(#[from] DataError),
    /// A label that is missing, infinite or negative.
    #[error("{}: label column `{column}`, {at}: the label is {}", path.display(), describe_label(*value))]
    Label {
        path: PathBuf,
        column: String,
        at: Location,
        value: f64,
    },
}

/// What to score with: per bundle model, `Some((model, m))` when it is used, `m` being
/// the index of the reader's feature matrix it reads.
pub type Scorers<'a> = [Option<(&'a Model, usize)>];

/// Reads every block of `reader` (whose first numeric column is the label `label`),
/// scores it with every used model and keeps the results. `progress` is told how far
/// into the file each block ends (in the reader's `extent` unit).
pub fn collect(
    mut reader: Reader<'_>,
    label: &str,
    scorers: &Scorers<'_>,
    mut progress: impl FnMut(u64),
) -> Result<Collected, CollectError> {
    // Nothing is reserved from the row count a Parquet footer states: a damaged footer
    // may state any number. The vectors grow as blocks arrive.
    let mut collected = Collected {
        scores: scorers.iter().map(|_| Vec::new()).collect(),
        ..Collected::default()
    };
    let path = reader.path().to_owned();
    std::thread::scope(|scope| {
        let (sender, blocks) = mpsc::sync_channel::<Result<Block, DataError>>(READ_AHEAD);
        let read = scope.spawn(move || {
            loop {
                let next = reader.next_block().transpose();
                let done = !matches!(next, Some(Ok(_)));
                if let Some(next) = next {
                    if sender.send(next).is_err() {
                        break;
                    }
                }
                if done {
                    break;
                }
            }
            reader.group_count()
        });
        for block in blocks {
            let block = block?;
            add_block(&mut collected, &block, scorers).map_err(|(at, value)| {
                CollectError::Label {
                    path: path.clone(),
                    column: label.to_owned(),
                    at,
                    value,
                }
            })?;
            progress(block.progress);
        }
        collected.group_count = read.join().unwrap_or_else(|e| std::panic::resume_unwind(e));
        Ok(collected)
    })
}

/// The rows of one in-memory block (a table, not a file), whose first numeric column is
/// the label and whose groups, if any, are numbered below `group_count`; a bad label is
/// returned with its row.
pub fn from_block(
    block: &Block,
    scorers: &Scorers<'_>,
    group_count: usize,
) -> Result<Collected, (Location, f64)> {
    let mut collected = Collected {
        scores: scorers.iter().map(|_| Vec::new()).collect(),
        group_count,
        ..Collected::default()
    };
    add_block(&mut collected, block, scorers)?;
    Ok(collected)
}

/// Checks the block's labels and appends its labels, groups and scores; a bad label is
/// returned with where it is.
fn add_block(
    collected: &mut Collected,
    block: &Block,
    scorers: &Scorers<'_>,
) -> Result<(), (Location, f64)> {
    let labels = block.numeric.first().map_or(&[][..], Vec::as_slice);
    if let Err(EvalError::Label { row, value }) = check_labels(labels) {
        return Err((block.location(row), value));
    }
    collected.labels.extend_from_slice(labels);
    collected.groups.extend_from_slice(&block.groups);
    for (scorer, out) in scorers.iter().zip(&mut collected.scores) {
        if let Some((model, matrix)) = scorer {
            out.extend(score_rows(model, &block.matrices[*matrix], None));
        }
    }
    Ok(())
}
