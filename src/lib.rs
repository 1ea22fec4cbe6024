//! giftrank: an online recall-rerank ranking service for live-stream gift allocation.
//!
//! Module map, each layer using only those below it:
//! - [`server`] — wiring: listeners with connection limits, the reloader task, signals, drain.
//! - [`http`] — the HTTP adapter: routes, the JSON codec, admin routes, errors as responses.
//! - [`grpc`] — the gRPC adapter: `giftrank.v1.Ranker` and health, errors as statuses.
//! - [`proto`] — the API's protobuf schema (`proto/`), compiled at build time, and its
//!   conversion to and from the core's types.
//! - [`ranker`] — the transport-neutral core: the versions in service (main, canary,
//!   shadow), reload/pin/policy control, admission and deadlines, feature assembly, the
//!   ranking pipeline, shadow comparison, the domain error.
//! - [`metrics`] — every Prometheus metric, one struct with its own registry.
//! - [`repository`] — the versions on disk, their states, and which one should serve.
//! - [`policy`] — `serving.toml`, the rollout policy: pin, canary share, shadow sample.
//! - [`bundle`] — one bundle directory: bundle.toml, both models, the canary check.
//! - [`order`] — the recall-rerank order of DESIGN.md §1, free of models and transports.
//! - [`config`] — service configuration: defaults, file, environment, flags.
//! - [`commands`] — the `check`, `score` and `bench` command-line tools, and `eval`'s driver.
//! - [`eval`] — offline evaluation (`giftrank eval`): §7 metrics, tables, JSON and charts.
//! - [`data`] — data files (`.csv`, `.csv.gz`, `.parquet`) read in blocks into model columns.
//! - [`engine`] — LightGBM text models, loaded and checked once, scored exactly and fast.

pub mod bundle;
pub mod commands;
pub mod config;
pub mod data;
pub mod engine;
pub mod eval;
pub mod grpc;
pub mod http;
pub mod metrics;
pub mod order;
pub mod policy;
pub mod proto;
pub mod ranker;
pub mod repository;
pub mod server;
