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
//! the 2-core AMD EPYC VM we build on (`lscpu`: "AMD EPYC", family 26 model 2, which also
//! has AVX-512), nothing else running:
//!
//! | shape | LightGBM | lleaves | giftrank portable | giftrank avx2 | giftrank avx512 | LightGBM / giftrank best |
//! |---|---:|---:|---:|---:|---:|---:|
//! | fixture_t300_l63 | 16,398 | 5,096 | 2,355 | 1,601 | 644 | 25.5× |
//! | shipped_direct_t300_l31 | 4,467 | 508 | 784 | 431 | 362 | 12.3× |
//! | shipped_stage2_t300_l15 | 6,461 | 1,482 | 465 | 295 | 279 | 23.2× |
//! | t100_l31 | 5,520 | 1,570 | 382 | 212 | 179 | 30.8× |
//! | t300_l127 | 26,302 | 9,125 | 5,930 | 4,478 | 2,599 | 10.1× |
//! | t500_l255 | 69,148 | (not run) | 10,849 | 10,948 | 8,306 | 8.3× |
//! | huber_t300_l255 | 35,080 | 11,977 | 7,509 | 7,156 | 4,754 | 7.4× |
//! | wide_f250_t300_l63 | 18,689 | 6,732 | 5,008 | 2,387 | 1,368 | 13.7× |
//!
//! AVX2: 2.80× lleaves in geometric mean (at least 1.18×, on shipped Direct), 9.8×
//! LightGBM; AVX-512: 4.19× and 14.5×; portable: 1.80× lleaves, but 0.65× on shipped
//! Direct. README "Speed" describes the shapes. (LightGBM and lleaves ran some 10%
//! slower in this sitting than in the one before the 16-bit words, below: compare
//! within a line.)
//!
//! The table before the 16-bit words and aligned columns (same machine, an earlier
//! sitting):
//!
//! | shape | LightGBM | lleaves | giftrank portable | giftrank avx2 | giftrank avx512 |
//! |---|---:|---:|---:|---:|---:|
//! | fixture_t300_l63 | 15,327 | 4,797 | 3,718 | 1,623 | 769 |
//! | shipped_direct_t300_l31 | 3,961 | 463 | 1,009 | 439 | 339 |
//! | shipped_stage2_t300_l15 | 5,716 | 1,327 | 604 | 313 | 292 |
//! | t100_l31 | 4,941 | 1,434 | 476 | 260 | 191 |
//! | t300_l127 | 24,130 | 8,319 | 5,534 | 4,469 | 2,710 |
//! | t500_l255 | 65,597 | (not run) | 10,384 | 10,249 | 8,930 |
//! | huber_t300_l255 | 32,447 | 10,616 | 6,862 | 6,750 | 5,037 |
//! | wide_f250_t300_l63 | 16,586 | 6,146 | 5,038 | 2,625 | 1,936 |
//!
//! The same table on a 2-core Intel Xeon VM with AVX-512 (family 6 model 167) while other
//! jobs kept its load average near 4, before the changes listed last below:
//!
//! | shape | LightGBM | lleaves | giftrank portable | giftrank avx2 | giftrank avx512 |
//! |---|---:|---:|---:|---:|---:|
//! | fixture_t300_l63 | 16,671 | 4,235 | 4,178 | 2,120 | 1,009 |
//! | shipped_direct_t300_l31 | 4,242 | 524 | 1,096 | 654 | 401 |
//! | shipped_stage2_t300_l15 | 8,073 | 1,335 | 682 | 409 | 304 |
//! | t100_l31 | 6,267 | 1,478 | 529 | 354 | 225 |
//! | t300_l127 | 25,170 | 7,836 | 9,056 | 5,557 | 3,471 |
//! | t500_l255 | 93,871 | (compile did not finish in 13 min, 9.5 GB) | 15,539 | 17,864 | 11,492 |
//! | huber_t300_l255 (after the sitting, load 1.5) | 32,505 | 9,385 | 9,735 | 10,370 | 6,543 |
//! | wide_f250_t300_l63 | 18,026 | 5,753 | 6,409 | 4,012 | 2,720 |
//!
//! There AVX2 was 1.69× lleaves in geometric mean (0.80× on shipped Direct, 0.91× on
//! huber), 7.0× LightGBM; AVX-512 2.71× and 11.2×. Against the engine
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
//! Issue 17 (deep unbalanced trees, many features), same method, on the Intel Xeon of the
//! second table while another engineer's builds loaded it (load average about 4 on 2
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
//!
//! On the AMD EPYC of the first table (`giftrank bench --isa`, quiet, ns/row):
//! - The walk pays from fewer nodes per step than on the Xeon. Sweeping the threshold
//!   (AVX2, 6 / 8 / 10 / 12 / 14): t500_l255 10,600 / 10,550 / 10,500 / 13,100 /
//!   15,500; huber 7,000 / 6,950 / 7,150 / 8,400–11,600 / 9,000; t300_l127 5,300 /
//!   4,950 / 4,850 / 4,650 / 4,850; fixture and wide within 3% up to 12. Portable
//!   (3 / 4 / 5 / 6 / 7): t300_l127 5,730 / 5,730 / 5,780 / 6,760 / 8,280, fixture
//!   4,520 / 3,800 / 3,700 / 3,900 / 3,930, huber within 2%. Hence 10 (AVX2) and 5
//!   (portable), where the Xeon had put 14 and 7.
//! - Leaves added row by row instead of 4-row gathers with AVX2 (three interleaved
//!   pairs): shipped Direct 482 → 465, gift_prob 508 → 490, Stage2 332 → 316, deeper
//!   shapes unchanged; kept. With AVX-512 the same made Direct 354 → 374 and Stage2
//!   296 → 315, so its 8-row gathers stay.
//! - Walk nodes laid out in sibling pairs, so a step adds `key > bound` to the pair's
//!   index instead of loading the next index (a shorter dependency chain per step):
//!   huber 1.04×, t500_l255 1.03× the time (AVX2, three pairs); dropped. The walk is not
//!   bound by that chain but by the instructions of 8 rows per step and the steps the
//!   first rows to reach a leaf wait for the last (about 13.4 steps per tree for 8 rows
//!   of huber against a mean of 8.0 for one).
//! - Scoring 4, 8 or 16 blocks of 64 rows tree by tree, so a tree's nodes are loaded
//!   once for more rows: huber 0.94×, t500_l255 0.98× with 4 blocks, but wide 1.01× to
//!   1.41× and shipped Direct 1.01× to 1.08× as blocks grew; dropped.
//! - 16-bit words for trees of at most 32 leaves (two words, i16 keys), against 32-bit
//!   words, before the exit leaf was vectorized (two runs each): shipped Direct 993 →
//!   820 portable, 472 → 454 AVX2, 360 → 406 AVX-512; Stage2 608 → 535, 319 → 296,
//!   310 → 303; t100_l31 480 → 397, 248 → 225, 207 → 220. The exit leaf from the f32
//!   exponent of the lowest set bit instead of a scalar bit count then took Direct 880
//!   → 780 (portable) and 449 → 432 (AVX2), Stage2 580 → 462 and 300 → 288. Hence
//!   16-bit words for these trees on portable and AVX2, 32-bit ones on AVX-512.
//! - The same for trees of 33 to 64 leaves (four words): fixture 3,650 → 2,250
//!   (portable), 1,630 → 1,520 (AVX2), 770 → 670 (AVX-512); wide 5,060 → 4,780,
//!   2,540 → 2,300, 1,920 → 1,395; kept on every instruction set. One function for
//!   both sizes (four words, the upper pair chosen per row) made the 31-leaf trees
//!   slower than 32-bit words (Direct 1,025 portable, 683 AVX2); two functions.
//! - Block columns aligned to 64 bytes (`giftrank bench --isa avx512`, six interleaved
//!   pairs, time after / before): shipped Direct 0.95×, Stage2 0.86–0.89×. Unaligned,
//!   Direct's key columns sat 16 bytes past a cache line, so every 64-byte load
//!   straddled two, and Direct moved by +4% and +17% with changes that only moved
//!   allocations (the inner loops' instructions were identical).
//! - The tests run on 32 rows at a time instead of 64 (fewer bit vectors live at once,
//!   so fewer spilled with SSE2): the compiled loops lost their vectorization, Direct
//!   2.5× slower on every instruction set; dropped.

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
