//! Why a data file cannot be used, and where in it: the file, the row (and, for CSV, the
//! line) and the column at fault. Callers add nothing but their own context.

use std::fmt;
use std::path::PathBuf;

/// A row of a data file: its index among the data rows (from 0) and, for CSV, the line it
/// starts on. Shown as `row 3 (line 4)` (rows count from 1 for people).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Location {
    pub row: u64,
    pub line: Option<u64>,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "row {}", self.row + 1)?;
        if let Some(line) = self.line {
            write!(f, " (line {line})")?;
        }
        Ok(())
    }
}

/// A data file that cannot be read, or not as asked.
#[derive(Debug, thiserror::Error)]
#[error("{}: {problem}", path.display())]
pub struct DataError {
    pub path: PathBuf,
    pub problem: Problem,
}

/// What is wrong with a data file.
#[derive(Debug, thiserror::Error)]
pub enum Problem {
    #[error("cannot open: {0}")]
    Open(std::io::Error),
    #[error("the file is empty")]
    Empty,
    #[error("cannot read after {rows} rows: {message}")]
    Read { rows: u64, message: String },
    #[error("not a readable Parquet file: {0}")]
    Parquet(String),
    #[error("no column `{0}`")]
    MissingColumn(String),
    #[error("column `{column}` holds {found}; {wanted}")]
    ColumnType {
        column: String,
        found: String,
        wanted: String,
    },
    #[error("line {line}: {found} fields, but the header has {expected}")]
    FieldCount {
        line: u64,
        found: usize,
        expected: usize,
    },
    #[error("{at}, column `{column}`: `{text}` is not a number")]
    NotANumber {
        at: Location,
        column: String,
        text: String,
    },
    #[error("{at}: the group column `{column}` is empty (every row needs a group)")]
    MissingGroup { at: Location, column: String },
    #[error("more than {} distinct values in the group column", u32::MAX)]
    TooManyGroups,
}

impl Problem {
    /// This problem in the file at `path`.
    pub fn at(self, path: impl Into<PathBuf>) -> DataError {
        DataError {
            path: path.into(),
            problem: self,
        }
    }
}
