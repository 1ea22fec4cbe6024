//! Parquet input (DESIGN.md §6), as pandas, pyarrow and Spark write it, through the arrow
//! reader: only the wanted columns are decoded, a block of rows at a time. Numbers and
//! booleans are values (nulls missing); text and dictionary columns are read only for
//! features with a pandas category list (as strings are over HTTP) and for the group
//! column. Column types are checked once, when the file is opened.

use std::fs::File;
use std::path::Path;

use arrow_array::cast::AsArray;
use arrow_array::types::{
    Float32Type, Float64Type, Int16Type, Int32Type, Int64Type, Int8Type, UInt16Type, UInt32Type,
    UInt64Type, UInt8Type,
};
use arrow_array::{AnyDictionaryArray, Array, RecordBatch};
use arrow_schema::DataType;
use parquet::arrow::arrow_reader::{ParquetRecordBatchReader, ParquetRecordBatchReaderBuilder};
use parquet::arrow::ProjectionMask;

use crate::engine::{FeatureMatrix, Model};

use super::contain::contain;
use super::error::{Location, Problem};
use super::keys::GroupIds;
use super::plan::{feature_label, feature_number, Block, Plan, Wanted};

/// An open Parquet file, positioned after the rows already returned.
pub(crate) struct ParquetSource {
    batches: ParquetRecordBatchReader,
    plan: Plan,
    /// Every column of the file, by name.
    names: Vec<String>,
    /// The columns read (ascending file positions); a batch holds them in this order.
    read: Vec<usize>,
    total_rows: u64,
    next_row: u64,
    /// Set when the decoder failed: nothing more is read.
    damaged: bool,
}

impl std::fmt::Debug for ParquetSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ParquetSource")
            .field("next_row", &self.next_row)
            .field("total_rows", &self.total_rows)
            .finish_non_exhaustive()
    }
}

/// What a column holds, as far as reading it goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Integers, floats, booleans (1/0) or nulls only.
    Number,
    Text,
    Other,
}

fn kind(data_type: &DataType) -> Kind {
    use DataType::*;
    match data_type {
        Int8 | Int16 | Int32 | Int64 | UInt8 | UInt16 | UInt32 | UInt64 | Float32 | Float64
        | Boolean | Null => Kind::Number,
        Utf8 | LargeUtf8 | Utf8View => Kind::Text,
        Dictionary(_, values) => kind(values),
        _ => Kind::Other,
    }
}

/// Whether a column of this type can be a group column: integers or text.
fn is_key_type(data_type: &DataType) -> bool {
    use DataType::*;
    match data_type {
        Int8 | Int16 | Int32 | Int64 | UInt8 | UInt16 | UInt32 | UInt64 => true,
        Dictionary(_, values) => is_key_type(values),
        other => kind(other) == Kind::Text,
    }
}

impl ParquetSource {
    /// Opens `path`, reads its footer and checks the wanted columns' types.
    pub fn open(path: &Path, wanted: &Wanted<'_>, block_rows: usize) -> Result<Self, Problem> {
        contain(|| Self::open_file(path, wanted, block_rows))
            .map_err(|panic| Problem::Parquet(format!("the file is damaged ({panic})")))?
    }

    fn open_file(path: &Path, wanted: &Wanted<'_>, block_rows: usize) -> Result<Self, Problem> {
        let file = File::open(path).map_err(Problem::Open)?;
        if file.metadata().map_err(Problem::Open)?.len() == 0 {
            return Err(Problem::Empty);
        }
        let builder = ParquetRecordBatchReaderBuilder::try_new(file)
            .map_err(|e| Problem::Parquet(e.to_string()))?;
        let schema = builder.schema().clone();
        let names: Vec<String> = schema.fields().iter().map(|f| f.name().clone()).collect();
        let plan = Plan::new(&names, wanted)?;
        let type_of = |c: usize| schema.field(c).data_type();
        let refuse = |c: usize, wanted: String| Problem::ColumnType {
            column: names[c].clone(),
            found: format!("{}", type_of(c)),
            wanted,
        };
        for (model, layout) in wanted.models.iter().zip(&plan.features) {
            for (feature, column) in layout.iter().enumerate() {
                let Some(c) = *column else { continue };
                match kind(type_of(c)) {
                    Kind::Number => {}
                    Kind::Text if model.categories(feature).is_some() => {}
                    Kind::Text => {
                        return Err(refuse(
                            c,
                            "text is read only for features trained as pandas categories, and this one was not".into(),
                        ))
                    }
                    Kind::Other => {
                        return Err(refuse(
                            c,
                            "a feature column must hold numbers, booleans or category labels".into(),
                        ))
                    }
                }
            }
        }
        for &c in &plan.numeric {
            if kind(type_of(c)) != Kind::Number {
                return Err(refuse(c, "this column must hold numbers".into()));
            }
        }
        if let Some(c) = plan.group {
            if !is_key_type(type_of(c)) {
                return Err(refuse(
                    c,
                    "a group column must hold integers or text".into(),
                ));
            }
        }
        let read = plan.columns();
        let mask = ProjectionMask::roots(builder.parquet_schema(), read.iter().copied());
        let total_rows = u64::try_from(builder.metadata().file_metadata().num_rows()).unwrap_or(0);
        let batches = builder
            .with_projection(mask)
            .with_batch_size(block_rows.max(1))
            .build()
            .map_err(|e| Problem::Parquet(e.to_string()))?;
        Ok(Self {
            batches,
            plan,
            names,
            read,
            total_rows,
            next_row: 0,
            damaged: false,
        })
    }

    pub fn plan(&self) -> &Plan {
        &self.plan
    }

    /// The file's row count (from its footer): what `Block::progress` counts up to.
    pub fn total_rows(&self) -> u64 {
        self.total_rows
    }

    /// The next block of rows; `None` after the last.
    pub fn next_block(
        &mut self,
        models: &[&Model],
        groups: &mut GroupIds,
    ) -> Result<Option<Block>, Problem> {
        let damaged = |rows: u64, what: String| Problem::Read {
            rows,
            message: format!("the file is damaged ({what})"),
        };
        if self.damaged {
            return Err(damaged(self.next_row, "see the first error".into()));
        }
        let rows = self.next_row;
        contain(|| self.decode_block(models, groups)).unwrap_or_else(|panic| {
            self.damaged = true;
            Err(damaged(rows, panic))
        })
    }

    fn decode_block(
        &mut self,
        models: &[&Model],
        groups: &mut GroupIds,
    ) -> Result<Option<Block>, Problem> {
        let batch = match self.batches.next() {
            None => return Ok(None),
            Some(batch) => batch.map_err(|e| Problem::Read {
                rows: self.next_row,
                message: e.to_string(),
            })?,
        };
        let rows = batch.num_rows();
        let first_row = self.next_row;
        let block = self.convert(&batch, models, groups)?;
        self.next_row += rows as u64;
        Ok((rows > 0).then_some(Block {
            first_row,
            rows,
            progress: self.next_row,
            ..block
        }))
    }

    /// The batch's wanted values (`first_row`, `rows` and `progress` left for the caller).
    fn convert(
        &self,
        batch: &RecordBatch,
        models: &[&Model],
        groups: &mut GroupIds,
    ) -> Result<Block, Problem> {
        let rows = batch.num_rows();
        if batch.num_columns() != self.read.len() {
            return Err(Problem::Parquet(format!(
                "{} columns read, {} asked for",
                batch.num_columns(),
                self.read.len()
            )));
        }
        // `read` is ascending, and a batch holds those columns in that order.
        let at = |c: usize| self.read.binary_search(&c).unwrap_or_default();
        let changed =
            |c: usize| Problem::Parquet(format!("column `{}` changed type", self.names[c]));
        let mut cells: Vec<Option<Cells<'_>>> = self.read.iter().map(|_| None).collect();
        let valued = self.plan.features.iter().flatten().flatten();
        for &c in valued.chain(&self.plan.numeric) {
            if cells[at(c)].is_none() {
                let decoded = Cells::of(batch.column(at(c)).as_ref()).ok_or_else(|| changed(c))?;
                cells[at(c)] = Some(decoded);
            }
        }
        let cells_of = |c: usize| cells[at(c)].as_ref();
        let mut matrices = Vec::with_capacity(models.len());
        for (model, layout) in models.iter().zip(&self.plan.features) {
            let mut matrix = FeatureMatrix::missing(rows, model.num_features());
            for (feature, column) in layout.iter().enumerate() {
                let Some(c) = *column else { continue };
                match cells_of(c) {
                    Some(Cells::Numbers(values)) => {
                        for (r, &x) in values.iter().enumerate() {
                            matrix.set(r, feature, feature_number(model, feature, x));
                        }
                    }
                    Some(Cells::Text(labels)) => {
                        for (r, &label) in labels.iter().enumerate() {
                            matrix.set(r, feature, feature_label(model, feature, label));
                        }
                    }
                    None => {}
                }
            }
            matrices.push(matrix);
        }
        let mut numeric = Vec::with_capacity(self.plan.numeric.len());
        for &c in &self.plan.numeric {
            numeric.push(match cells_of(c) {
                Some(Cells::Numbers(values)) => values.clone(),
                _ => vec![f64::NAN; rows],
            });
        }
        let mut group_ids = Vec::new();
        if let Some(c) = self.plan.group {
            let keys = Keys::of(batch.column(at(c)).as_ref()).ok_or_else(|| changed(c))?;
            group_ids.reserve(rows);
            for r in 0..rows {
                let id = match &keys {
                    Keys::Integers(values) => values[r].map(|v| groups.id(&v.to_le_bytes())),
                    Keys::Text(values) => values[r].map(|v| groups.id(v.as_bytes())),
                };
                let id = id.ok_or_else(|| Problem::MissingGroup {
                    at: Location {
                        row: self.next_row + r as u64,
                        line: None,
                    },
                    column: self.names[c].clone(),
                })??;
                group_ids.push(id);
            }
        }
        Ok(Block {
            first_row: 0,
            rows,
            matrices,
            numeric,
            groups: group_ids,
            lines: Vec::new(),
            progress: 0,
        })
    }
}

/// One column of a batch, decoded.
#[derive(Debug)]
enum Cells<'a> {
    /// Numbers (booleans as 1 and 0), null as NaN.
    Numbers(Vec<f64>),
    /// Text, null as `None`.
    Text(Vec<Option<&'a str>>),
}

impl<'a> Cells<'a> {
    fn of(array: &'a dyn Array) -> Option<Self> {
        if let Some(dictionary) = array.as_any_dictionary_opt() {
            return Some(match Self::of(dictionary.values().as_ref())? {
                Cells::Numbers(values) => Cells::Numbers(look_up(dictionary, &values, f64::NAN)),
                Cells::Text(values) => Cells::Text(look_up(dictionary, &values, None)),
            });
        }
        numbers(array)
            .map(Cells::Numbers)
            .or_else(|| text(array).map(Cells::Text))
    }
}

/// Each row of a dictionary column as its entry's value (`values` holds one per entry),
/// `missing` for a null row.
fn look_up<T: Copy>(dictionary: &dyn AnyDictionaryArray, values: &[T], missing: T) -> Vec<T> {
    let rows = dictionary.len();
    if values.is_empty() {
        // Every row is null (and `normalized_keys` would panic).
        return vec![missing; rows];
    }
    let keys = dictionary.normalized_keys();
    (0..rows)
        .map(|i| match keys.get(i) {
            Some(&k) if dictionary.is_valid(i) => values.get(k).copied().unwrap_or(missing),
            _ => missing,
        })
        .collect()
}

/// A numeric or boolean column as f64s (nulls NaN); `None` for any other type.
fn numbers(array: &dyn Array) -> Option<Vec<f64>> {
    macro_rules! widen {
        ($type:ty) => {
            array
                .as_primitive_opt::<$type>()
                .map(|a| a.iter().map(|v| v.map_or(f64::NAN, |x| x as f64)).collect())
        };
    }
    match array.data_type() {
        DataType::Int8 => widen!(Int8Type),
        DataType::Int16 => widen!(Int16Type),
        DataType::Int32 => widen!(Int32Type),
        DataType::Int64 => widen!(Int64Type),
        DataType::UInt8 => widen!(UInt8Type),
        DataType::UInt16 => widen!(UInt16Type),
        DataType::UInt32 => widen!(UInt32Type),
        DataType::UInt64 => widen!(UInt64Type),
        DataType::Float32 => widen!(Float32Type),
        DataType::Float64 => widen!(Float64Type),
        DataType::Boolean => array.as_boolean_opt().map(|a| {
            a.iter()
                .map(|v| v.map_or(f64::NAN, |b| if b { 1.0 } else { 0.0 }))
                .collect()
        }),
        DataType::Null => Some(vec![f64::NAN; array.len()]),
        _ => None,
    }
}

/// A text column (nulls `None`); `None` for any other type.
fn text(array: &dyn Array) -> Option<Vec<Option<&str>>> {
    match array.data_type() {
        DataType::Utf8 => array.as_string_opt::<i32>().map(|a| a.iter().collect()),
        DataType::LargeUtf8 => array.as_string_opt::<i64>().map(|a| a.iter().collect()),
        DataType::Utf8View => array.as_string_view_opt().map(|a| a.iter().collect()),
        _ => None,
    }
}

/// A group column: integers (as their 64 bits) or text; null as `None`.
#[derive(Debug)]
enum Keys<'a> {
    Integers(Vec<Option<u64>>),
    Text(Vec<Option<&'a str>>),
}

impl<'a> Keys<'a> {
    fn of(array: &'a dyn Array) -> Option<Self> {
        if let Some(dictionary) = array.as_any_dictionary_opt() {
            return Some(match Self::of(dictionary.values().as_ref())? {
                Keys::Integers(values) => Keys::Integers(look_up(dictionary, &values, None)),
                Keys::Text(values) => Keys::Text(look_up(dictionary, &values, None)),
            });
        }
        macro_rules! bits {
            ($type:ty) => {
                array
                    .as_primitive_opt::<$type>()
                    .map(|a| Keys::Integers(a.iter().map(|v| v.map(|x| x as u64)).collect()))
            };
        }
        match array.data_type() {
            DataType::Int8 => bits!(Int8Type),
            DataType::Int16 => bits!(Int16Type),
            DataType::Int32 => bits!(Int32Type),
            DataType::Int64 => bits!(Int64Type),
            DataType::UInt8 => bits!(UInt8Type),
            DataType::UInt16 => bits!(UInt16Type),
            DataType::UInt32 => bits!(UInt32Type),
            DataType::UInt64 => bits!(UInt64Type),
            _ => text(array).map(Keys::Text),
        }
    }
}
