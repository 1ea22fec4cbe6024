//! giftrank: an online recall-rerank ranking service for live-stream gift allocation.
//!
//! Module map:
//! - [`engine`] — LightGBM text models, loaded and checked once, scored exactly and fast.
//! - [`csv_input`] — CSV files (`.csv`, `.csv.gz`) of feature rows, read into model columns.
//! - [`bundle`] — one model-repository version: bundle.toml, both models, the canary check.
//! - [`commands`] — the `score` and `bench` command-line tools.

pub mod bundle;
pub mod commands;
pub mod csv_input;
pub mod engine;
