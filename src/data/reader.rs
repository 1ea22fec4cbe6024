//! One reader for every data file format: picks CSV or Parquet by the file name, hands
//! out blocks of rows, numbers the groups, and names the file in every error. Whole-file
//! reading ([`read_all`]) is for small files (canaries, `bench`).

use std::path::{Path, PathBuf};

use crate::engine::{FeatureMatrix, Model};

use super::csv::CsvSource;
use super::error::DataError;
use super::keys::GroupIds;
use super::parquet::ParquetSource;
use super::plan::{Block, Plan, Wanted};

/// Rows per block unless asked otherwise: large enough to keep every core busy scoring,
/// small enough that a block's feature matrices stay a few MB.
pub const BLOCK_ROWS: usize = 65_536;

/// Whether `path` names a Parquet file (`.parquet`, `.parq` or `.pq`); anything else is
/// read as CSV (gzip-compressed when it ends in `.gz`).
pub fn is_parquet(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| ["parquet", "parq", "pq"].contains(&e.to_ascii_lowercase().as_str()))
}

/// What `Block::progress` counts, and up to where.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Extent {
    /// Bytes of the file (CSV: compressed bytes for `.gz`).
    Bytes(u64),
    /// Rows (Parquet: from the footer).
    Rows(u64),
}

#[derive(Debug)]
enum Source {
    Csv(CsvSource),
    Parquet(ParquetSource),
}

/// An open data file, read block by block.
#[derive(Debug)]
pub struct Reader<'m> {
    path: PathBuf,
    source: Source,
    models: Vec<&'m Model>,
    groups: GroupIds,
    block_rows: usize,
}

impl<'m> Reader<'m> {
    /// Opens `path` for `wanted`, reading blocks of [`BLOCK_ROWS`] rows.
    pub fn open(path: &Path, wanted: &Wanted<'m>) -> Result<Self, DataError> {
        Self::with_block_rows(path, wanted, BLOCK_ROWS)
    }

    /// Opens `path` for `wanted`, reading blocks of up to `block_rows` rows (at least 1).
    pub fn with_block_rows(
        path: &Path,
        wanted: &Wanted<'m>,
        block_rows: usize,
    ) -> Result<Self, DataError> {
        let block_rows = block_rows.max(1);
        let source = if is_parquet(path) {
            ParquetSource::open(path, wanted, block_rows).map(Source::Parquet)
        } else {
            CsvSource::open(path, wanted).map(Source::Csv)
        };
        Ok(Self {
            path: path.to_owned(),
            source: source.map_err(|p| p.at(path))?,
            models: wanted.models.to_vec(),
            groups: GroupIds::default(),
            block_rows,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn plan(&self) -> &Plan {
        match &self.source {
            Source::Csv(csv) => csv.plan(),
            Source::Parquet(parquet) => parquet.plan(),
        }
    }

    /// Per wanted model, its features that no column provides (missing in every row).
    pub fn absent_features(&self) -> Vec<Vec<String>> {
        self.plan().absent_features(&self.models)
    }

    /// How far `Block::progress` goes by the end of the file.
    pub fn extent(&self) -> Extent {
        match &self.source {
            Source::Csv(csv) => Extent::Bytes(csv.size()),
            Source::Parquet(parquet) => Extent::Rows(parquet.total_rows()),
        }
    }

    /// The number of distinct group values read so far.
    pub fn group_count(&self) -> usize {
        self.groups.len()
    }

    /// The next block of rows; `None` after the last.
    pub fn next_block(&mut self) -> Result<Option<Block>, DataError> {
        let block = match &mut self.source {
            Source::Csv(csv) => csv.next_block(&self.models, self.block_rows, &mut self.groups),
            Source::Parquet(parquet) => parquet.next_block(&self.models, &mut self.groups),
        };
        block.map_err(|p| p.at(&self.path))
    }
}

/// A whole file in memory.
#[derive(Debug)]
pub struct Loaded {
    pub num_rows: usize,
    /// One per wanted model.
    pub matrices: Vec<FeatureMatrix>,
    /// One per wanted numeric column.
    pub columns: Vec<Vec<f64>>,
    /// Each row's group (empty without a group column).
    pub groups: Vec<u32>,
    /// Per model, the features that no column provides (missing in every row).
    pub absent_features: Vec<Vec<String>>,
}

/// Reads all of `path` (for small files: canaries, benchmarks, tests).
pub fn read_all(path: &Path, wanted: &Wanted<'_>) -> Result<Loaded, DataError> {
    let mut reader = Reader::open(path, wanted)?;
    let mut loaded = Loaded {
        num_rows: 0,
        matrices: wanted
            .models
            .iter()
            .map(|m| FeatureMatrix::missing(0, m.num_features()))
            .collect(),
        columns: wanted.numeric.iter().map(|_| Vec::new()).collect(),
        groups: Vec::new(),
        absent_features: reader.absent_features(),
    };
    while let Some(block) = reader.next_block()? {
        loaded.num_rows += block.rows;
        for (all, part) in loaded.matrices.iter_mut().zip(&block.matrices) {
            all.append(part);
        }
        for (all, part) in loaded.columns.iter_mut().zip(block.numeric) {
            all.extend(part);
        }
        loaded.groups.extend(block.groups);
    }
    Ok(loaded)
}
