//! Tabular input for the command-line tools and canary files (DESIGN.md §6): CSV, gzip CSV
//! and Parquet, read a block of rows at a time into one feature matrix per model, the
//! numeric columns asked for (labels, expected scores) and group numbers.
//!
//! - `reader` opens a file by its name and hands out [`Block`]s; `read_all` for small files.
//! - `plan` matches wanted names to columns and holds the value rules every format shares.
//! - `csv` and `parquet` read their format (`contain` turns the Parquet decoder's panics on
//!   damaged files into errors); `keys` numbers group values; `error` says what is wrong
//!   and where.
//! - `frame` is the in-memory table (a pandas DataFrame from the Python package), turned
//!   into the same blocks by the same rules.

mod contain;
mod csv;
mod error;
mod frame;
mod keys;
mod parquet;
mod plan;
mod reader;

pub use error::{DataError, Location, Problem};
pub use frame::{Category, Column, Frame};
pub use plan::{is_missing, Block, Wanted};
pub use reader::{is_parquet, read_all, Extent, Loaded, Reader, BLOCK_ROWS};
