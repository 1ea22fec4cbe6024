//! giftrank: an online recall-rerank ranking service for live-stream gift allocation.
//!
//! Module map:
//! - [`engine`] — LightGBM text models, loaded and checked once, scored exactly and fast.
//! - [`csv_input`] — CSV files (`.csv`, `.csv.gz`) of feature rows, read into model columns.
//! - [`bundle`] — one model-repository version: bundle.toml, both models, the canary check.
//! - [`ranking`] — the recall-rerank order of DESIGN.md §1, free of models and HTTP.
//! - [`repository`] — the versions on disk, their states, and which one should serve.
//! - [`config`] — service configuration: defaults, file, environment, flags.
//! - [`service`] — the HTTP service: state, routes, metrics, reloader, graceful shutdown.
//! - [`proto`] — the API's protobuf schema (`proto/`), compiled at build time.
//! - [`grpc`] — the gRPC listener: `giftrank.v1.Ranker` on the shared ranking path, and health.
//! - [`commands`] — the `score` and `bench` command-line tools.
//! - [`eval`] — offline evaluation (`giftrank eval`): §7 metrics, tables, JSON and charts.

pub mod bundle;
pub mod commands;
pub mod config;
pub mod csv_input;
pub mod engine;
pub mod eval;
pub mod grpc;
pub mod proto;
pub mod ranking;
pub mod repository;
pub mod service;
