//! The model engine: loads LightGBM text models (`Booster.save_model`) and scores rows
//! exactly as LightGBM's `Booster.predict` does. It knows nothing of HTTP or bundles.
//!
//! - `text` cuts a file into sections; `tree` holds the validated flat trees (and the
//!   plain node walk the tests use as reference); `objective` is the output transform;
//!   `categories` maps values of pandas category features to codes; `model` ties them
//!   into [`Model`]; `matrix` is the input layout, [`FeatureMatrix`].
//! - `scorer` evaluates the forest fast (QuickScorer bitvectors on exact rank keys);
//!   `isa` picks its AVX-512, AVX2 or portable copy at run time ([`Isa`]).
//!
//! # Measurements
//! Nanoseconds per row, 1,000 rows, one thread, one sitting (`tools/bench_engine.sh`):
//!
//! | shape | LightGBM | lleaves | giftrank portable | giftrank avx2 | giftrank avx512 | LightGBM / giftrank best |
//! |---|---:|---:|---:|---:|---:|---:|
//! | fixture_t300_l63 | 22,374 | 5,003 | 4,782 | 2,479 | 1,323 | 16.9× |
//! | shipped_direct_t300_l31 | 5,159 | 605 | 1,240 | 752 | 570 | 9.1× |
//! | shipped_stage2_t300_l15 | 9,951 | 1,616 | 812 | 488 | 374 | 26.6× |
//! | t100_l31 | 7,364 | 1,732 | 613 | 459 | 327 | 22.5× |
//! | t300_l127 | 36,273 | 9,294 | 11,198 | 7,218 | 4,777 | 7.6× |
//! | t500_l255 | 126,639 | (compile did not finish in 13 min, 9.5 GB) | 35,659 | 21,224 | 15,614 | 8.1× |
//!
//! What the design was chosen over (interleaved A/B runs of `giftrank bench`, same
//! rows, medians; shipped Direct = 300 trees × 31 leaves, fixture = 300 × 63):
//! - Node-by-node walk, 64 rows per tree (the first engine): fixture 16,500 ns/row.
//! - 16 rows walked in lock step on order-preserving u64 keys: fixture 4,066.
//! - QuickScorer on the f64 values (four comparison kinds for the missing rules):
//!   fixture 1,066 (AVX-512); Direct 870 / 1,530 / 2,660 (AVX-512 / AVX2 / portable).
//! - Rank keys instead (this engine), with 32-bit vectors for trees of ≤ 32 leaves,
//!   gathered leaf lookups and per-word segments for trees of > 64 leaves:
//!   Direct 600 / 800 / 1,200; Stage2 (15 leaves) 540 → 380 on AVX-512; 127-leaf trees
//!   5,440 → 4,650.
//! - Tried and dropped: the 64 binary searches of a block advancing in lock step
//!   (Direct 583 → 890), and a two-level search over groups of 16 thresholds
//!   (583 → 680). Compiling each model to machine code, as lleaves does, would need a
//!   code generator inside the service, since models are swapped while it serves.

mod categories;
mod error;
mod isa;
mod matrix;
mod model;
mod objective;
mod scorer;
mod text;
mod tree;

pub use error::ModelError;
pub use isa::Isa;
pub use matrix::{normalize, FeatureMatrix, ZERO_THRESHOLD};
pub use model::Model;
