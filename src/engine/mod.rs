//! The model engine: loads LightGBM text models (`Booster.save_model`) and scores rows
//! exactly as LightGBM's `Booster.predict` does. It knows nothing of HTTP or bundles.
//!
//! - `text` cuts a file into sections; `tree` holds the validated flat trees (and the
//!   plain node walk the tests use as reference); `objective` is the output transform;
//!   `categories` maps values of pandas category features to codes; `model` ties them
//!   into [`Model`]; `matrix` is the input layout, [`FeatureMatrix`].
//! - `scorer` evaluates the forest fast (QuickScorer bitvectors on exact rank keys, or a
//!   lock-step path walk on the same keys for trees with many nodes per level);
//!   `isa` picks its AVX-512, AVX2 or portable copy at run time ([`Isa`]).
//!
//! # Measurements
//! Nanoseconds per row, 1,000 rows, one thread, one sitting (`tools/bench_engine.sh`) on
//! a 2-core Intel Xeon VM with AVX-512 (`lscpu`: "Intel(R) Xeon(R) Processor", family 6
//! model 167) whose load average other jobs' compiles kept near 4:
//!
//! | shape | LightGBM | lleaves | giftrank portable | giftrank avx2 | giftrank avx512 | LightGBM / giftrank best |
//! |---|---:|---:|---:|---:|---:|---:|
//! | fixture_t300_l63 | 16,671 | 4,235 | 4,178 | 2,120 | 1,009 | 16.5× |
//! | shipped_direct_t300_l31 | 4,242 | 524 | 1,096 | 654 | 401 | 10.6× |
//! | shipped_stage2_t300_l15 | 8,073 | 1,335 | 682 | 409 | 304 | 26.6× |
//! | t100_l31 | 6,267 | 1,478 | 529 | 354 | 225 | 27.9× |
//! | t300_l127 | 25,170 | 7,836 | 9,056 | 5,557 | 3,471 | 7.3× |
//! | t500_l255 | 93,871 | (compile did not finish in 13 min, 9.5 GB) | 15,539 | 17,864 | 11,492 | 8.2× |
//! | huber_t300_l255 (after the sitting, load 1.5) | 32,505 | 9,385 | 9,735 | 10,370 | 6,543 | 5.0× |
//! | wide_f250_t300_l63 | 18,026 | 5,753 | 6,409 | 4,012 | 2,720 | 6.6× |
//!
//! AVX2: 1.69× lleaves in geometric mean (0.80× on shipped Direct, 0.91× on huber),
//! 7.0× LightGBM; AVX-512: 2.71× and 11.2×. README "Speed" describes the shapes. Against the engine
//! before issue 17 (interleaved A/B, three pairs, time after / before): huber 1.01×
//! (AVX2), 0.54× (portable), 1.10× (AVX-512); t500_l255 0.99×, 0.50×, 1.01×; wide
//! 0.90×, 1.01×, 0.74×.
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
//!
//! Issue 17 (deep unbalanced trees, many features), same method, on the machine of the
//! table below while another engineer's builds loaded it (load average about 4 on 2
//! cores: compare within a line, not across lines); huber = `huber_t300_l255`, wide =
//! `wide_f250_t300_l63`:
//! - The lock-step searches again, now with gathers: wide 4,567 → 4,032 (AVX2),
//!   3,733 → 2,765 (AVX-512), fixture 2,316 → 2,236 (AVX2), but portable
//!   6,086 → 11,371; kept for AVX2 and AVX-512 only. Branch-free searches row by row:
//!   10,607 (AVX2) and 11,710 (portable) on wide, dropped.
//! - Path walk instead of the tests, every tree, 8 rows in lock step (tests → walk):
//!   huber 19,530 → 10,443 portable, 10,656 → 10,007 AVX2, 6,894 → 12,957 AVX-512;
//!   t500_l255 56,720 → 32,192 / 35,937 → 32,489 / 16,529 → 28,984; t300_l127
//!   19,616 → 16,336 / 9,410 → 14,792 / 4,805 → 11,322; fixture (63 leaves)
//!   8,917 → 11,765 portable. Hence the cost model: walk when a tree has more than 7
//!   (portable) or 14 (AVX2) nodes per step of its walk (mean leaf depth + 4); never
//!   with AVX-512, whose 16-lane tests stay ahead.
//! - Rows per lock step (huber, portable): 4: 14,510; 8: 10,516; 16: 10,939;
//!   32: 12,647; 64: 12,748.
//! - The walk with gathers (16 rows, four gathers per step: column, bound, key, next):
//!   huber 12,400 (AVX2) against 9,928 for the scalar walk in the same copy, and
//!   15,016 (AVX-512) against 6,968 for the tests; dropped.
//! - Categorical nodes as a branch on the node kind at every step (a bitset lookup):
//!   slower than the tests on huber (every tree has some 20 categorical nodes) in a
//!   first, noisier run; replaced by the search over the bitset's runs, which keeps
//!   every step one comparison.
//! - The lock-step searches with AVX-512 are not what makes huber slower than before
//!   (row-by-row searches instead: huber 1.03×, t500_l255 1.07× the time).
//! - Walk threshold 11 instead of 14 with AVX2 (A/B, three pairs): t500_l255 0.92×,
//!   huber 1.04×, t300_l127 1.04× the time; kept 14. The walk kept out of line (one
//!   portable copy called from all): huber 1.02×, t500_l255 1.05× (AVX2); dropped.
//! - The row-by-row searches instead of the lock-step ones with AVX2: wide 1.18×,
//!   t500_l255 1.04×, fixture 1.03× the time.

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
