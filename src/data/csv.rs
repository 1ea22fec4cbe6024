//! CSV input (DESIGN.md §6): a header of column names, one row per record, optionally
//! gzip-compressed (`.gz`). Cells are text: missing spellings, numbers and category labels
//! follow `plan.rs`. Records are read one block at a time; nothing else is kept.

use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use flate2::read::MultiGzDecoder;

use crate::engine::{FeatureMatrix, Model};

use super::error::{Location, Problem};
use super::keys::GroupIds;
use super::plan::{feature_cell, number_cell, Block, Plan, Wanted};

/// An open CSV file, positioned after the rows already returned.
pub(crate) struct CsvSource {
    reader: csv::Reader<Box<dyn Read + Send>>,
    header: csv::StringRecord,
    record: csv::StringRecord,
    plan: Plan,
    /// Bytes of the file (compressed, for `.gz`) read so far.
    consumed: Arc<AtomicU64>,
    size: u64,
    next_row: u64,
}

impl std::fmt::Debug for CsvSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CsvSource")
            .field("next_row", &self.next_row)
            .finish_non_exhaustive()
    }
}

impl CsvSource {
    /// Opens `path` and reads its header.
    pub fn open(path: &Path, wanted: &Wanted<'_>) -> Result<Self, Problem> {
        let file = File::open(path).map_err(Problem::Open)?;
        let size = file.metadata().map_err(Problem::Open)?.len();
        if size == 0 {
            return Err(Problem::Empty);
        }
        let consumed = Arc::new(AtomicU64::new(0));
        let counted = BufReader::new(Counted {
            inner: file,
            consumed: Arc::clone(&consumed),
        });
        let input: Box<dyn Read + Send> = if path.extension().is_some_and(|ext| ext == "gz") {
            Box::new(MultiGzDecoder::new(counted))
        } else {
            Box::new(counted)
        };
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(true)
            .from_reader(input);
        let header = reader.headers().map_err(|e| csv_problem(e, 0))?.clone();
        if header.is_empty() || header.iter().all(str::is_empty) {
            return Err(Problem::Empty);
        }
        let names: Vec<&str> = header.iter().collect();
        let plan = Plan::new(&names, wanted)?;
        Ok(Self {
            reader,
            header,
            record: csv::StringRecord::new(),
            plan,
            consumed,
            size,
            next_row: 0,
        })
    }

    pub fn plan(&self) -> &Plan {
        &self.plan
    }

    /// The file's size in bytes: what `Block::progress` counts up to.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The next up to `max_rows` rows; `None` at the end of the file.
    pub fn next_block(
        &mut self,
        models: &[&Model],
        max_rows: usize,
        groups: &mut GroupIds,
    ) -> Result<Option<Block>, Problem> {
        let first_row = self.next_row;
        let mut values: Vec<Vec<f64>> = models
            .iter()
            .map(|m| Vec::with_capacity(max_rows * m.num_features()))
            .collect();
        let mut numeric: Vec<Vec<f64>> = self
            .plan
            .numeric
            .iter()
            .map(|_| Vec::with_capacity(max_rows))
            .collect();
        let mut group_ids = Vec::new();
        let mut lines = Vec::with_capacity(max_rows);
        while lines.len() < max_rows {
            let more = self
                .reader
                .read_record(&mut self.record)
                .map_err(|e| csv_problem(e, self.next_row))?;
            if !more {
                break;
            }
            let at = Location {
                row: self.next_row,
                line: Some(self.record.position().map_or(0, csv::Position::line)),
            };
            self.read_row(models, at, &mut values, &mut numeric)?;
            if let Some(c) = self.plan.group {
                let cell = self.cell(c);
                if cell.is_empty() {
                    return Err(Problem::MissingGroup {
                        at,
                        column: self.column_name(c),
                    });
                }
                group_ids.push(groups.id(cell.as_bytes())?);
            }
            lines.push(at.line.unwrap_or(0));
            self.next_row += 1;
        }
        if lines.is_empty() {
            return Ok(None);
        }
        Ok(Some(Block {
            first_row,
            rows: lines.len(),
            matrices: models
                .iter()
                .zip(values)
                .map(|(m, v)| FeatureMatrix::from_rows(v, m.num_features()))
                .collect(),
            numeric,
            groups: group_ids,
            lines,
            progress: self.consumed.load(Ordering::Relaxed),
        }))
    }

    /// Appends the current record's feature values and numeric cells.
    fn read_row(
        &self,
        models: &[&Model],
        at: Location,
        values: &mut [Vec<f64>],
        numeric: &mut [Vec<f64>],
    ) -> Result<(), Problem> {
        for ((model, layout), out) in models.iter().zip(&self.plan.features).zip(values) {
            for (feature, column) in layout.iter().enumerate() {
                let value = match *column {
                    None => f64::NAN,
                    Some(c) => feature_cell(model, feature, self.cell(c))
                        .ok_or_else(|| self.not_a_number(at, c))?,
                };
                out.push(value);
            }
        }
        for (&c, out) in self.plan.numeric.iter().zip(numeric) {
            out.push(number_cell(self.cell(c)).ok_or_else(|| self.not_a_number(at, c))?);
        }
        Ok(())
    }

    fn cell(&self, column: usize) -> &str {
        self.record.get(column).unwrap_or_default().trim()
    }

    fn column_name(&self, column: usize) -> String {
        self.header
            .get(column)
            .unwrap_or_default()
            .trim()
            .to_owned()
    }

    fn not_a_number(&self, at: Location, column: usize) -> Problem {
        Problem::NotANumber {
            at,
            column: self.column_name(column),
            text: self.cell(column).to_owned(),
        }
    }
}

/// A CSV reading error in words, with its line.
fn csv_problem(error: csv::Error, rows: u64) -> Problem {
    match error.into_kind() {
        csv::ErrorKind::UnequalLengths {
            pos,
            expected_len,
            len,
        } => Problem::FieldCount {
            line: pos.map_or(0, |p| p.line()),
            found: len as usize,
            expected: expected_len as usize,
        },
        csv::ErrorKind::Utf8 { pos, err } => Problem::Read {
            rows,
            message: format!(
                "line {}: not UTF-8 text ({err})",
                pos.map_or(0, |p| p.line())
            ),
        },
        csv::ErrorKind::Io(e) => Problem::Read {
            rows,
            message: e.to_string(),
        },
        other => Problem::Read {
            rows,
            message: format!("{:?}", other),
        },
    }
}

/// A reader that counts the bytes it hands on (for the progress bar).
struct Counted<R> {
    inner: R,
    consumed: Arc<AtomicU64>,
}

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.consumed.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}
