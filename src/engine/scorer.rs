//! Batch scoring: the forest recompiled at load into per-tree bitvector tests on integer
//! rank keys (QuickScorer's idea, evaluated 64 rows at a time) and, for trees with many
//! nodes per level, into a node table walked on the same keys; and the block loop that
//! sums tree outputs exactly as LightGBM does. `tree.rs` owns what a tree means; this
//! file owns how fast it is evaluated; `isa.rs` runs the block loop in the copy compiled
//! for the instruction set chosen at run time.
//!
//! # How a block is scored
//! Leaves of a tree are numbered left to right. Row `r` keeps one bit per leaf in
//! `v[r]`, all set at the start. A test is one internal node: for every row that goes
//! *right* at that node, the leaves of the node's *left* subtree can no longer be the
//! exit leaf, so their bits are cleared. After all tests of the tree, the lowest set bit
//! of `v[r]` is the leaf row `r` reaches (QuickScorer, Lucchese et al., SIGIR 2015: a
//! leaf left of the exit leaf always lies in the left subtree of a node where the row
//! went right; the exit leaf never does). Tests are independent of each other, so they
//! run in any order, with no data-dependent branch and no pointer chasing; each test is
//! the same few vector instructions over a column of 64 values, with `v` in registers.
//!
//! Trees of at most 32 leaves keep 32-bit vectors and compare `i32` keys (16 rows per
//! AVX-512 instruction); larger trees keep 64-bit words and compare the keys as f64
//! (integers, exact; every x86-64 compares f64 lanes). A tree of more than 64 leaves is
//! scored one word at a time, each with the tests whose left subtree reaches into it
//! (a [`Segment`]). The exit leaves' outputs are then gathered and added row by row, in
//! tree order, so every sum is LightGBM's to the last bit.
//!
//! # Rank keys: exact decisions with integer compares
//! A numerical test is not evaluated on the f64 value but on its *rank key*. A feature
//! that numerical tests read has the sorted distinct thresholds `t_0 < … < t_{n-1}` of
//! all those tests; a value `x` that is not missing gets the key `1 + #{j : t_j < x}`
//! (one binary search per row and feature). Then for the test on `t_i`:
//! `x <= t_i` ⇔ every `t_j < x` has `j < i` ⇔ `#{j : t_j < x} <= i` ⇔ `key <= i + 1`,
//! so "goes right" is exactly `key > i + 1`, for every f64 `x` (±0 compare equal, as in
//! f64). A missing value gets the key `0` (below every bound: left at every test) or
//! `n + 1` (above every bound: right); a key column is a feature with one such placement
//! ([`Missing`]), and LightGBM's missing-value rules all map onto one of them, so one
//! comparison decides every numerical node as LightGBM does, bit for bit. Keys fit in
//! `i32`: a feature has fewer thresholds than the model has nodes, and `tree.rs` refuses
//! a forest of 2^31 leaves or more.
//!
//! Categorical tests read one-hot words built per block: bit `c % w` of the word for
//! chunk `c / w` when the row's category is `c`, for words of `w` = 16, 32 or 64 bits; a
//! test keeps the row left when the word shares a bit with its bitset.
//!
//! A block computes `#{j : t_j < x}` by binary searches; in the AVX2 and AVX-512 copies
//! the 64 searches of a feature advance in lock step (one halving of every row's range
//! per pass, vectorized with gathers), in the portable copy row by row.
//!
//! # 16-bit words
//! A tree of at most 64 leaves can instead keep its bit vector as up to four 16-bit
//! words, one [`Segment`] each, and compare `i16` keys (when every feature has fewer
//! than 32,767 thresholds, so every key fits). A vector instruction then holds twice the
//! rows of 32-bit words and four times those of 64-bit ones, and a test runs only on the
//! words its left subtree reaches (most tests of a 31-leaf tree touch one of its two).
//! The exit leaf is the lowest set bit of the words joined in pairs, found through the
//! exponent of that bit converted to `f32`, which the compiler vectorizes where a bit
//! count would stay scalar. Which trees do is chosen per instruction set (`half_words`):
//! all that can, except that AVX-512 keeps 32-bit words for trees of at most 32 leaves.
//!
//! # Deep trees: the path walk
//! The tests of a tree cost about its number of nodes; a path walk costs about its
//! depth. A tree with many nodes per level of depth (255 leaves at a mean leaf depth of
//! 11, say) is instead walked: its nodes are a table of `[column, bound, left, right]`
//! on the same rank keys, "right" exactly when the key exceeds the bound, and 8 rows
//! step through it in lock step (a leaf is a node that sends a row back to itself, so
//! the rows that arrive first wait) until all 8 sit on leaves; the leaf position then
//! adds its output as above. A categorical node is compiled into a small search on the
//! row's category (`-1` for none, saturating at `i32::MAX`): its bitset is a union of
//! runs `a..=b` of categories, and the bounds `a - 1` and `b` of the runs send a key
//! left exactly when it lies in one of them, as LightGBM's bitset lookup does, so every
//! node is one comparison. Which trees are walked is chosen per instruction set by a
//! cost model, nodes per step of the walk (`walk_threshold`); the tests run all three
//! choices (none, all, the model's) against the node walk.
//!
//! # Measurements
//! The table in `mod.rs` has the numbers that chose this design over the alternatives.

use std::collections::HashMap;
use std::ops::{BitAnd, BitOr, Range};

use super::error::ModelError;
use super::isa::{self, Isa, Kernel, LeafGather};
use super::matrix::FeatureMatrix;
use super::tree::{Forest, Node, Rule};

/// Rows scored together: one bit vector per row, `ROWS` values per column.
const ROWS: usize = 64;

/// Where a key column places missing values: `Low` below every threshold (left at
/// every test), `High` above (right). The `Zero` variants also treat an exact 0 as
/// missing (missing type Zero).
///
/// A node is read through the column whose placement agrees with it: NaN left → `Low`;
/// NaN right → `High`; missing type None (NaN compared as 0) → `Low` when `0 <= t`,
/// else `High`; missing type Zero → `ZeroLow` / `ZeroHigh` by its default side, except
/// that when 0 already goes that side by comparison (default left with `0 <= t`,
/// default right with `t < 0`) the plain `Low` / `High` column serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Missing {
    Low,
    High,
    ZeroLow,
    ZeroHigh,
}

impl Missing {
    /// The placement that decides a numerical node exactly as LightGBM does.
    fn of(threshold: f64, nan_left: bool, zero_is_missing: bool) -> Self {
        match (zero_is_missing, nan_left) {
            (false, true) => Missing::Low,
            (false, false) => Missing::High,
            (true, true) if 0.0 <= threshold => Missing::Low,
            (true, true) => Missing::ZeroLow,
            (true, false) if threshold < 0.0 => Missing::High,
            (true, false) => Missing::ZeroHigh,
        }
    }
}

/// How a test decides that a row goes right. Tests are grouped by kind within a tree,
/// so the loop over a group has no branch on the kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    /// Numerical: right when the row's key exceeds the test's bound.
    Order,
    /// Categorical, all bitset bits in one chunk: right unless the row's
    /// one-hot chunk word shares a bit with the test's.
    Category,
    /// Categorical over several chunks (or none): right unless any chunk matches.
    CategoryChunks,
}

const KINDS: usize = 3;

/// One internal node of one tree, restricted to one 64-leaf word (its [`Segment`]).
#[derive(Debug, Clone, Copy)]
struct Test {
    /// [`Kind::Order`]: the key bound; [`Kind::Category`]: the chunk's category bits;
    /// [`Kind::CategoryChunks`]: the number of chunks.
    bound: u64,
    /// Bits to keep in the segment's word of a row that goes right: the left subtree's
    /// leaves are cleared.
    keep: u64,
    /// The key column ([`Kind::Order`]) or one-hot column ([`Kind::Category`]) read; for
    /// [`Kind::CategoryChunks`] the first entry of `Scorer::chunks`.
    column: u32,
}

/// The bit-vector layout of one tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Width {
    /// At most 32 leaves: one `u32` per row.
    Narrow,
    /// 33 to 64 leaves: one `u64` per row.
    Single,
    /// More than 64 leaves: this many `u64` words per row.
    Wide(u32),
}

/// Where one tree's tests and leaves sit in the scorer's arrays.
#[derive(Debug, Clone)]
struct TreeCode {
    /// Its [`Segment`]s, one per 32- or 64-leaf word: a range of `Scorer::tests`.
    segments: Range<u32>,
    /// First entry of `Scorer::leaf_values` (and `leaf_ids`): one per 64 leaves.
    first_leaf: u32,
    width: Width,
    /// The same tree as nodes for the path walk.
    walk: WalkTree,
    /// Whether blocks walk this tree (else they run its tests), for the scorer's
    /// instruction set.
    walks: bool,
    /// The same tests on 16-bit words (a range of `Scorer::half_tests`, one per 16 leaves),
    /// for a tree of at most 64 leaves when every key fits `i16`.
    half: Option<Range<u32>>,
    /// Whether blocks run `half` (else the 32- or 64-bit tests).
    halves: bool,
}

/// One tree for the path walk: its nodes, a range of `Scorer::walk_nodes`, the
/// internal ones first (root at 0), then one per leaf in left-to-right order.
#[derive(Debug, Clone)]
struct WalkTree {
    nodes: Range<u32>,
    /// Where every row starts (the root, or the leaf of a tree that is one).
    start: u32,
    internal: u32,
    /// What the cost model weighs: the tree's nodes per step of the walk to a leaf
    /// (its mean leaf depth, in walk nodes, plus [`WALK_SLACK`]).
    nodes_per_step: f32,
}

/// One node of the path walk, as [`LeafGather::walk`] reads it: where its column
/// starts in the block's flattened `walk_keys` (a key column or a category column),
/// its bound as `i32` bits (right when the row's key exceeds it), and the next node
/// (an index into the tree's nodes) for left and for right. A leaf is a node that
/// sends every row back to itself: it reads the zero column with the bound
/// `i32::MAX`, and both its next nodes are it.
type WalkNode = [u32; 4];

/// The `next` fields (walk node, 0 for left or 1 for right) to point at a node once its
/// index is known, while a tree is compiled for the walk.
type Slots = Vec<(usize, usize)>;

/// A [`WalkNode`] reading the column that starts at `key`.
fn walk_node(key: u32, bound: i32, next: [u32; 2]) -> WalkNode {
    [key, bound as u32, next[0], next[1]]
}

/// The tests of one tree that touch one 64-leaf word of its bit vectors, run together
/// on a local copy of that word (which the compiler keeps in registers).
#[derive(Debug, Clone)]
struct Segment {
    /// First test; the tests of each kind follow in [`Kind`] order.
    first_test: u32,
    tests_per_kind: [u32; KINDS],
}

/// Compiled tests, and the [`Segment`]s that group them.
#[derive(Debug, Default)]
struct Tests {
    tests: Vec<Test>,
    segments: Vec<Segment>,
}

impl Tests {
    fn segments(&self, range: &Range<u32>) -> &[Segment] {
        &self.segments[range.start as usize..range.end as usize]
    }
}

/// A feature that numerical tests read: its sorted distinct thresholds and its key
/// columns (one per [`Missing`] placement its tests need).
#[derive(Debug, Clone)]
struct KeyFeature {
    feature: u32,
    /// A range of `Scorer::thresholds`.
    thresholds: Range<usize>,
    /// A range of `Scorer::key_columns`.
    columns: Range<usize>,
}

/// A one-hot column: the feature's category word for one chunk of 32 or 64 categories.
#[derive(Debug, Clone, Copy)]
struct OneHotColumn {
    feature: u32,
    chunk: u32,
}

/// The one-hot columns of a block in each width of bit vector: 16-category chunks for
/// the 16-bit words of small trees, 32 for trees of at most 32 leaves, 64 for the others
/// (a test's mask then has the width of the word it clears).
#[derive(Debug, Default)]
struct OneHotColumns {
    half: Vec<OneHotColumn>,
    narrow: Vec<OneHotColumn>,
    wide: Vec<OneHotColumn>,
}

impl OneHotColumns {
    fn of_width(&mut self, bits: u32) -> &mut Vec<OneHotColumn> {
        match bits {
            16 => &mut self.half,
            32 => &mut self.narrow,
            _ => &mut self.wide,
        }
    }
}

/// The whole forest in bitvector form; built once per model.
#[derive(Debug)]
pub(crate) struct Scorer {
    trees: Vec<TreeCode>,
    /// The tests on 32- and 64-bit words, and on 16-bit words, apart: a block reads
    /// one set only, so its tests lie together in memory.
    tests: Tests,
    half_tests: Tests,
    /// `(one-hot column, category bits)` of [`Kind::CategoryChunks`] tests.
    chunks: Vec<(u32, u64)>,
    /// Leaf outputs in left-to-right order, 64 per word (unused bits pad with 0).
    leaf_values: Vec<[f64; 64]>,
    /// Linear trees only: the forest leaf index behind each leaf position.
    leaf_ids: Vec<[u32; 64]>,
    linear: bool,
    key_features: Vec<KeyFeature>,
    /// Where each key column places missing values; its feature is the
    /// [`KeyFeature`] whose `columns` hold it.
    key_columns: Vec<Missing>,
    /// How many key columns a block fills in each type: all of them when some tree
    /// needs that type, else none.
    narrow_key_columns: usize,
    wide_key_columns: usize,
    half_key_columns: usize,
    thresholds: Vec<f64>,
    one_hot_columns: OneHotColumns,
    /// The widest tree, in 64-bit words.
    max_words: usize,
    walk_nodes: Vec<WalkNode>,
    /// The features whose category columns the walk reads (after the zero column and
    /// the key columns).
    walk_categories: Vec<u32>,
    /// How many columns a block fills for the walk (0 when no tree walks).
    walk_columns: usize,
    /// Which trees walk: as the cost model says, or all or none of them (tests).
    walk_choice: WalkChoice,
    /// Whether every tree that can runs on 16-bit words (`Some(true)`), none
    /// (`Some(false)`), or as [`half_words`] says (`None`); tests set it.
    half_choice: Option<bool>,
    isa: Isa,
}

/// Which trees [`Scorer`] walks instead of running their tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WalkChoice {
    /// Those the cost model finds cheaper to walk on the scorer's instruction set.
    Cost,
    /// All or none (the tests compare both with the node walk).
    #[cfg_attr(not(test), allow(dead_code))]
    All,
    #[cfg_attr(not(test), allow(dead_code))]
    None,
}

/// Column indices while the scorer is built.
#[derive(Debug, Default)]
struct ColumnIndex {
    /// By `(feature, missing)`: the key column and its [`KeyFeature`].
    key: HashMap<(u32, Missing), (u32, usize)>,
    /// By `(feature, chunk, chunk size)`.
    one_hot: HashMap<(u32, u32, u32), u32>,
    /// By feature: the walk's category column.
    walk_category: HashMap<u32, u32>,
}

impl Scorer {
    /// Compiles a validated forest. Every index stored is in range by construction; a
    /// forest too large to index in `u32` is refused.
    pub fn new(forest: &Forest) -> Result<Self, ModelError> {
        let mut scorer = Scorer {
            trees: Vec::with_capacity(forest.len()),
            tests: Tests::default(),
            half_tests: Tests::default(),
            chunks: Vec::new(),
            leaf_values: Vec::new(),
            leaf_ids: Vec::new(),
            linear: forest.has_linear_leaves(),
            key_features: Vec::new(),
            key_columns: Vec::new(),
            narrow_key_columns: 0,
            wide_key_columns: 0,
            half_key_columns: 0,
            thresholds: Vec::new(),
            one_hot_columns: OneHotColumns::default(),
            max_words: 1,
            walk_nodes: Vec::new(),
            walk_categories: Vec::new(),
            walk_columns: 0,
            walk_choice: WalkChoice::Cost,
            half_choice: None,
            isa: isa::detect(),
        };
        let mut index = ColumnIndex::default();
        scorer.build_key_columns(forest, &mut index)?;
        let keys_fit_i16 = scorer.keys_fit_i16();
        for t in 0..forest.len() {
            scorer.push_tree(forest, t, keys_fit_i16, &mut index)?;
        }
        scorer.choose_layouts();
        Ok(scorer)
    }

    /// The instruction set scoring uses.
    pub fn isa(&self) -> Isa {
        self.isa
    }

    /// Uses `isa` if this CPU has it (else the best it has below it); returns the choice.
    pub fn set_isa(&mut self, isa: Isa) -> Isa {
        self.isa = isa.min(isa::detect());
        self.choose_layouts();
        self.isa
    }

    /// Walks all trees, none, or those the cost model picks.
    #[cfg(test)]
    pub fn set_walk_choice(&mut self, choice: WalkChoice) {
        self.walk_choice = choice;
        self.choose_layouts();
    }

    /// Runs every tree that can on 16-bit words, none, or as the instruction set prefers.
    #[cfg(test)]
    pub fn set_half_choice(&mut self, choice: Option<bool>) {
        self.half_choice = choice;
        self.choose_layouts();
    }

    /// Decides for every tree whether blocks walk it or run its tests on 16-bit words,
    /// and sizes the block's columns.
    fn choose_layouts(&mut self) {
        let threshold = walk_threshold(self.isa);
        for tree in &mut self.trees {
            tree.walks = match self.walk_choice {
                WalkChoice::All => true,
                WalkChoice::None => false,
                WalkChoice::Cost => threshold.is_some_and(|t| tree.walk.nodes_per_step > t),
            };
            let half = self
                .half_choice
                .unwrap_or_else(|| half_words(self.isa, tree.width));
            tree.halves = !tree.walks && tree.half.is_some() && half;
        }
        let columns = self.key_columns.len();
        let uses = |width: u32| {
            self.trees.iter().any(|t| {
                let bits = match t.width {
                    _ if t.halves => 16,
                    Width::Narrow => 32,
                    Width::Single | Width::Wide(_) => 64,
                };
                !t.walks && bits == width
            })
        };
        let sized = |width: u32| if uses(width) { columns } else { 0 };
        self.half_key_columns = sized(16);
        self.narrow_key_columns = sized(32);
        self.wide_key_columns = sized(64);
        self.walk_columns = if self.trees.iter().any(|t| t.walks) {
            1 + columns + self.walk_categories.len()
        } else {
            0
        };
    }

    /// Collects the key columns and, per feature, the sorted distinct thresholds of
    /// all its numerical tests (the key columns of one feature share them, so one
    /// search per row and feature serves them all).
    fn build_key_columns(
        &mut self,
        forest: &Forest,
        index: &mut ColumnIndex,
    ) -> Result<(), ModelError> {
        let mut thresholds: HashMap<u32, Vec<f64>> = HashMap::new();
        let mut columns = Vec::new();
        for t in 0..forest.len() {
            for node in forest.tree(t).0 {
                if let Rule::Numerical {
                    threshold,
                    nan_left,
                    zero_is_missing,
                } = node.rule
                {
                    let missing = Missing::of(threshold, nan_left, zero_is_missing);
                    thresholds.entry(node.feature).or_default().push(threshold);
                    columns.push((node.feature, missing as u8, missing));
                }
            }
        }
        // A fixed order, so that scoring does not depend on hash order; the columns of
        // one feature are adjacent.
        columns.sort_by_key(|&(feature, order, _)| (feature, order));
        columns.dedup_by_key(|&mut (feature, order, _)| (feature, order));
        for (feature, _, missing) in columns {
            let new_feature = self
                .key_features
                .last()
                .is_none_or(|f| f.feature != feature);
            if new_feature {
                let mut values = thresholds.remove(&feature).unwrap_or_default();
                // Thresholds are never NaN (`tree.rs` refuses them); -0 and +0 are one.
                values.sort_by(f64::total_cmp);
                values.dedup_by(|a, b| a == b);
                let start = self.thresholds.len();
                self.thresholds.extend(values);
                let column = self.key_columns.len();
                self.key_features.push(KeyFeature {
                    feature,
                    thresholds: start..self.thresholds.len(),
                    columns: column..column,
                });
            }
            let at = (
                index32(self.key_columns.len())?,
                self.key_features.len() - 1,
            );
            index.key.insert((feature, missing), at);
            self.key_columns.push(missing);
            if let Some(key_feature) = self.key_features.last_mut() {
                key_feature.columns.end = self.key_columns.len();
            }
        }
        Ok(())
    }

    /// Compiles tree `t`; on 16-bit words as well when it has at most 64 leaves and
    /// `keys_fit_i16`.
    fn push_tree(
        &mut self,
        forest: &Forest,
        t: usize,
        keys_fit_i16: bool,
        index: &mut ColumnIndex,
    ) -> Result<(), ModelError> {
        let (nodes, leaf_base) = forest.tree(t);
        let num_leaves = nodes.len() + 1;
        let (position, left_span) = leaf_positions(nodes);
        let words = num_leaves.div_ceil(64);
        self.max_words = self.max_words.max(words);

        let first_leaf = index32(self.leaf_values.len())?;
        let first = first_leaf as usize;
        self.leaf_values.resize(first + words, [0.0; 64]);
        if self.linear {
            self.leaf_ids.resize(first + words, [0; 64]);
        }
        for (leaf, &p) in position.iter().enumerate() {
            let p = p as usize;
            self.leaf_values[first + p / 64][p % 64] = forest.leaf_value(leaf_base + leaf);
            if self.linear {
                self.leaf_ids[first + p / 64][p % 64] = index32(leaf_base + leaf)?;
            }
        }

        let width = match num_leaves {
            0..=32 => Width::Narrow,
            33..=64 => Width::Single,
            _ => Width::Wide(index32(words)?),
        };
        let bits = if width == Width::Narrow { 32 } else { 64 };
        let segments = self.push_segments(forest, nodes, &left_span, bits, index)?;
        let half = if num_leaves <= 64 && keys_fit_i16 {
            Some(self.push_segments(forest, nodes, &left_span, 16, index)?)
        } else {
            None
        };
        let walk = self.push_walk(forest, nodes, &position, index)?;
        self.trees.push(TreeCode {
            segments,
            first_leaf,
            width,
            walk,
            walks: false,
            half,
            halves: false,
        });
        Ok(())
    }

    /// Whether every rank key (at most the number of a feature's thresholds plus one)
    /// fits `i16`, as the 16-bit words' tests compare them.
    fn keys_fit_i16(&self) -> bool {
        self.key_features
            .iter()
            .all(|f| f.thresholds.len() < i16::MAX as usize)
    }

    /// Compiles a tree's tests for bit vectors of `bits`-bit words (16, 32 or 64; one
    /// [`Segment`] per word) and returns their range of `segments`. `left_span` holds the
    /// positions of the leaves under each node's left child.
    fn push_segments(
        &mut self,
        forest: &Forest,
        nodes: &[Node],
        left_span: &[(usize, usize)],
        bits: usize,
        index: &mut ColumnIndex,
    ) -> Result<Range<u32>, ModelError> {
        let words = (nodes.len() + 1).div_ceil(bits);
        let mut tests = Vec::new();
        for (node, &(lo, hi)) in nodes.iter().zip(left_span) {
            let (kind, bound, column) = self.test_of(node, forest, bits as u32, index)?;
            for word in lo / bits..hi.div_ceil(bits) {
                let (a, b) = (
                    lo.max(word * bits) - word * bits,
                    hi.min(word * bits + bits) - word * bits,
                );
                let cleared = if b - a == 64 {
                    u64::MAX
                } else {
                    ((1u64 << (b - a)) - 1) << a
                };
                let test = Test {
                    bound,
                    keep: !cleared,
                    column,
                };
                tests.push((word, kind, test));
            }
        }
        // The order of tests is free: by word, then kind (and column, for locality).
        tests.sort_by_key(|&(word, kind, test)| (word, kind, test.column));
        let to = if bits == 16 {
            &mut self.half_tests
        } else {
            &mut self.tests
        };
        let first_segment = index32(to.segments.len())?;
        for word in 0..words {
            let mut tests_per_kind = [0u32; KINDS];
            let first_test = index32(to.tests.len())?;
            for &(_, kind, test) in tests.iter().filter(|&&(w, _, _)| w == word) {
                tests_per_kind[kind as usize] += 1;
                to.tests.push(test);
            }
            to.segments.push(Segment {
                first_test,
                tests_per_kind,
            });
        }
        Ok(first_segment..index32(to.segments.len())?)
    }

    /// Compiles a tree for the path walk (`position`: each leaf's left-to-right
    /// position). A numerical node becomes one walk node
    /// on its key column. A categorical node becomes a small search tree of walk nodes
    /// on the feature's category column: its bitset is a union of runs of categories,
    /// so "left" is "between some run's ends", and the runs' ends are the bounds.
    fn push_walk(
        &mut self,
        forest: &Forest,
        nodes: &[Node],
        position: &[u32],
        index: &mut ColumnIndex,
    ) -> Result<WalkTree, ModelError> {
        let first = self.walk_nodes.len();
        let category_base = 1 + self.key_columns.len();
        // The walk nodes' `next` slots that lead to each tree node or leaf, filled
        // once its index is known (leaves: after all internal nodes).
        let mut leaf_slots: Vec<Slots> = vec![Vec::new(); position.len()];
        let mut start = None;
        let mut start_leaf = None;
        let mut depth_sum = 0.0f32;
        // (child as in `Node`, slots that lead to it, its depth in walk steps)
        let mut work: Vec<(i32, Slots, f32)> =
            vec![(if nodes.is_empty() { -1 } else { 0 }, Vec::new(), 0.0)];
        while let Some((child, slots, depth)) = work.pop() {
            if child < 0 {
                let leaf = !child as usize;
                depth_sum += depth;
                if slots.is_empty() {
                    start_leaf = Some(leaf);
                }
                leaf_slots[leaf].extend(slots);
                continue;
            }
            let at = self.walk_nodes.len() - first;
            let node = &nodes[child as usize];
            let (left, right, steps) = match node.rule {
                Rule::Numerical { .. } => {
                    let (column, bound) = self.key_bound(node, index);
                    let at = self.walk_nodes.len();
                    let bound = i32::try_from(bound).map_err(|_| too_large())?;
                    let key = walk_offset(1 + column as usize)?;
                    self.walk_nodes.push(walk_node(key, bound, [0, 0]));
                    (vec![(at, 0)], vec![(at, 1)], 1.0)
                }
                Rule::Categorical {
                    words: (start, end),
                } => {
                    let column = match index.walk_category.get(&node.feature) {
                        Some(&column) => column,
                        None => {
                            let column = index32(self.walk_categories.len())?;
                            self.walk_categories.push(node.feature);
                            index.walk_category.insert(node.feature, column);
                            column
                        }
                    };
                    let key = walk_offset(category_base + column as usize)?;
                    let ends = run_ends(forest.cat_words(start, end))?;
                    let slots = self.push_search(first, key, &ends)?;
                    // About the steps of the search, for the cost model.
                    let steps = (ends.len() as f32 + 1.0).log2().ceil();
                    (slots.0, slots.1, steps)
                }
            };
            if self.walk_nodes.len() - first == at {
                // Nothing was pushed (an empty bitset): every row goes right, so what
                // leads here leads there.
                work.push((node.right, slots, depth));
                continue;
            }
            for &(node, side) in &slots {
                self.walk_nodes[node][2 + side] = index32(at)?;
            }
            if slots.is_empty() {
                start = Some(at);
            }
            work.push((node.right, right, depth + steps));
            work.push((node.left, left, depth + steps));
        }
        let internal = index32(self.walk_nodes.len() - first)?;
        for (leaf, slots) in leaf_slots.iter().enumerate() {
            let at = internal + position[leaf];
            for &(node, side) in slots {
                self.walk_nodes[node][2 + side] = at;
            }
        }
        for leaf in 0..index32(position.len())? {
            let at = internal + leaf;
            self.walk_nodes.push(walk_node(0, i32::MAX, [at, at]));
        }
        let start = match (start, start_leaf) {
            (Some(at), _) => index32(at)?,
            (None, Some(leaf)) => internal + position[leaf],
            (None, None) => internal,
        };
        Ok(WalkTree {
            nodes: index32(first)?..index32(self.walk_nodes.len())?,
            start,
            internal,
            nodes_per_step: nodes.len() as f32 / (depth_sum / position.len() as f32 + WALK_SLACK),
        })
    }

    /// Pushes the search tree that sends a category key left when it lies in one of
    /// the runs `ends` (pairs `(a - 1, b)` for each run `a..=b`, ascending), right
    /// otherwise; returns the `next` slots of its left and right outcomes (none when
    /// `ends` is empty: then every row goes right, and nothing is pushed).
    fn push_search(
        &mut self,
        first: usize,
        key: u32,
        ends: &[i32],
    ) -> Result<(Slots, Slots), ModelError> {
        // Segment `s` of the integers is `(ends[s - 1], ends[s]]`; odd segments are
        // inside a run (left), even ones outside (right).
        let mut outcomes = (Vec::new(), Vec::new());
        // (first segment, last segment, the slot that leads here)
        let mut work = vec![(0usize, ends.len(), None::<(usize, usize)>)];
        while let Some((lo, hi, slot)) = work.pop() {
            if lo == hi {
                if let Some(slot) = slot {
                    if lo % 2 == 1 {
                        outcomes.0.push(slot);
                    } else {
                        outcomes.1.push(slot);
                    }
                }
                continue;
            }
            let mid = (lo + hi) / 2;
            let node = self.walk_nodes.len();
            if let Some((parent, side)) = slot {
                self.walk_nodes[parent][2 + side] = index32(node - first)?;
            }
            self.walk_nodes.push(walk_node(key, ends[mid], [0, 0]));
            work.push((mid + 1, hi, Some((node, 1))));
            work.push((lo, mid, Some((node, 0))));
        }
        Ok(outcomes)
    }

    /// The key column and the bound of a numerical node: right when the key exceeds it.
    fn key_bound(&self, node: &Node, index: &ColumnIndex) -> (u32, usize) {
        let Rule::Numerical {
            threshold,
            nan_left,
            zero_is_missing,
        } = node.rule
        else {
            return (0, 0);
        };
        let missing = Missing::of(threshold, nan_left, zero_is_missing);
        let (column, key_feature) = index.key[&(node.feature, missing)];
        let range = self.key_features[key_feature].thresholds.clone();
        // The threshold's position among the feature's: `i`, the bound is `i + 1`.
        let i = self.thresholds[range].partition_point(|&t| t < threshold);
        (column, i + 1)
    }

    /// The kind, bound and column of a node's test on bit-vector words of `word_bits` bits
    /// (16, 32 or 64; categorical tests then read one-hot chunks of as many categories).
    fn test_of(
        &mut self,
        node: &Node,
        forest: &Forest,
        word_bits: u32,
        index: &mut ColumnIndex,
    ) -> Result<(Kind, u64, u32), ModelError> {
        match node.rule {
            Rule::Numerical { .. } => {
                let (column, bound) = self.key_bound(node, index);
                Ok((Kind::Order, bound as u64, column))
            }
            Rule::Categorical {
                words: (start, end),
            } => {
                // LightGBM's bitset words are 32 categories; 64-bit words pair them,
                // 16-bit words halve them.
                let words = forest.cat_words(start, end);
                // A bitset's words are within the forest's, whose count fits `u32`.
                let chunks: Vec<(u32, u64)> = match word_bits {
                    16 => words
                        .iter()
                        .flat_map(|&w| [w & 0xffff, w >> 16])
                        .enumerate()
                        .map(|(c, bits)| (c as u32, u64::from(bits)))
                        .collect(),
                    32 => words
                        .iter()
                        .enumerate()
                        .map(|(c, &bits)| (c as u32, u64::from(bits)))
                        .collect(),
                    _ => {
                        let pair = |w: &[u32]| {
                            u64::from(w[0]) | w.get(1).map_or(0, |&h| u64::from(h) << 32)
                        };
                        words
                            .chunks(2)
                            .map(pair)
                            .enumerate()
                            .map(|(c, bits)| (c as u32, bits))
                            .collect()
                    }
                };
                let chunks: Vec<(u32, u64)> =
                    chunks.into_iter().filter(|&(_, bits)| bits != 0).collect();
                let feature = node.feature;
                if let [(chunk, bits)] = chunks[..] {
                    let column = self.one_hot(feature, chunk, word_bits, index)?;
                    return Ok((Kind::Category, bits, column));
                }
                let first = index32(self.chunks.len())?;
                for &(chunk, bits) in &chunks {
                    let column = self.one_hot(feature, chunk, word_bits, index)?;
                    self.chunks.push((column, bits));
                }
                Ok((Kind::CategoryChunks, chunks.len() as u64, first))
            }
        }
    }

    fn one_hot(
        &mut self,
        feature: u32,
        chunk: u32,
        bits: u32,
        index: &mut ColumnIndex,
    ) -> Result<u32, ModelError> {
        if let Some(&column) = index.one_hot.get(&(feature, chunk, bits)) {
            return Ok(column);
        }
        let columns = self.one_hot_columns.of_width(bits);
        let column = index32(columns.len())?;
        columns.push(OneHotColumn { feature, chunk });
        index.one_hot.insert((feature, chunk, bits), column);
        Ok(column)
    }

    /// Sums the tree outputs of every row into `out` (`k` per row), in tree order, as
    /// LightGBM does.
    pub fn predict_raw(&self, forest: &Forest, rows: &FeatureMatrix, k: usize, out: &mut [f64]) {
        let mut block = Block {
            half_keys: vec![Column([0; ROWS]); self.half_key_columns],
            half_one_hot: vec![Column([0; ROWS]); self.one_hot_columns.half.len()],
            narrow_keys: vec![Column([0; ROWS]); self.narrow_key_columns],
            wide_keys: vec![Column([0.0; ROWS]); self.wide_key_columns],
            narrow_one_hot: vec![Column([0; ROWS]); self.one_hot_columns.narrow.len()],
            wide_one_hot: vec![Column([0; ROWS]); self.one_hot_columns.wide.len()],
            words: vec![Column([u64::MAX; ROWS]); self.max_words],
            walk_keys: vec![[0; ROWS]; self.walk_columns],
            sums: vec![Column([0.0; ROWS]); k],
        };
        for start in (0..rows.num_rows()).step_by(ROWS) {
            let len = ROWS.min(rows.num_rows() - start);
            block.sums.iter_mut().for_each(|s| s.0 = [0.0; ROWS]);
            let mut kernel = BlockKernel {
                scorer: self,
                forest,
                rows,
                start,
                block: &mut block,
            };
            isa::run(self.isa, &mut kernel);
            for (r, scores) in out[start * k..(start + len) * k]
                .chunks_exact_mut(k)
                .enumerate()
            {
                for (score, sums) in scores.iter_mut().zip(&block.sums) {
                    *score = sums[r];
                }
            }
        }
    }

    /// Computes the key and one-hot columns of rows `start..start + len`; the block's
    /// rows past the end read as the value 0 (their scores are never copied out).
    #[inline(always)]
    fn fill_columns<G: LeafGather>(
        &self,
        rows: &FeatureMatrix,
        start: usize,
        len: usize,
        block: &mut Block,
    ) {
        for key_feature in &self.key_features {
            let mut values = [0.0; ROWS];
            for (r, value) in values.iter_mut().enumerate().take(len) {
                *value = rows.row(start + r)[key_feature.feature as usize];
            }
            let thresholds = &self.thresholds[key_feature.thresholds.clone()];
            let below = if G::GATHERS {
                count_below(thresholds, &values)
            } else {
                values.map(|x| thresholds.partition_point(|&t| t < x) as i32)
            };
            let columns = key_feature.columns.clone();
            for (column, &missing) in columns.clone().zip(&self.key_columns[columns]) {
                let keys = rank_keys(&values, &below, missing, thresholds.len());
                if let Some(half) = block.half_keys.get_mut(column) {
                    // Exact: the scorer has half key columns only when every key fits.
                    half.0 = keys.map(|k| k as i16);
                }
                if let Some(narrow) = block.narrow_keys.get_mut(column) {
                    narrow.0 = keys;
                }
                if let Some(wide) = block.wide_keys.get_mut(column) {
                    wide.0 = keys.map(f64::from);
                }
                if let Some(walk) = block.walk_keys.get_mut(1 + column) {
                    *walk = keys;
                }
            }
        }
        if !block.walk_keys.is_empty() {
            let base = 1 + self.key_columns.len();
            for (codes, &feature) in block.walk_keys[base..]
                .iter_mut()
                .zip(&self.walk_categories)
            {
                for (r, code) in codes.iter_mut().enumerate() {
                    let x = if r < len {
                        rows.row(start + r)[feature as usize]
                    } else {
                        0.0
                    };
                    *code = category_key(x);
                }
            }
        }
        let row_value = |r: usize, column: &OneHotColumn| {
            (r < len).then(|| rows.row(start + r)[column.feature as usize])
        };
        for (words, column) in block
            .half_one_hot
            .iter_mut()
            .zip(&self.one_hot_columns.half)
        {
            for (r, word) in words.0.iter_mut().enumerate() {
                *word = row_value(r, column).map_or(0, |x| one_hot(x, column.chunk, 16) as u16);
            }
        }
        for (words, column) in block
            .narrow_one_hot
            .iter_mut()
            .zip(&self.one_hot_columns.narrow)
        {
            for (r, word) in words.0.iter_mut().enumerate() {
                *word = row_value(r, column).map_or(0, |x| one_hot(x, column.chunk, 32) as u32);
            }
        }
        for (words, column) in block
            .wide_one_hot
            .iter_mut()
            .zip(&self.one_hot_columns.wide)
        {
            for (r, word) in words.0.iter_mut().enumerate() {
                *word = row_value(r, column).map_or(0, |x| one_hot(x, column.chunk, 64));
            }
        }
    }

    /// Scores rows `start..start + ROWS` (or to the end) into `block.sums`. Inlined into one
    /// copy per instruction set through [`BlockKernel`], so the loops below are compiled
    /// (and vectorized) for each.
    #[inline(always)]
    fn score_block_inline<G: LeafGather>(
        &self,
        gather: G,
        forest: &Forest,
        rows: &FeatureMatrix,
        start: usize,
        block: &mut Block,
    ) {
        let k = block.sums.len();
        let len = ROWS.min(rows.num_rows() - start);
        self.fill_columns::<G>(rows, start, len, block);
        for (t, tree) in self.trees.iter().enumerate() {
            let segments = self.tests.segments(&tree.segments);
            let half = (&block.half_keys[..], &block.half_one_hot[..]);
            let narrow = (&block.narrow_keys[..], &block.narrow_one_hot[..]);
            let wide = (&block.wide_keys[..], &block.wide_one_hot[..]);
            let positions = match (tree.width, &tree.half) {
                _ if tree.walks => self.walk_positions(&tree.walk, block.walk_keys.as_flattened()),
                (width, Some(words)) if tree.halves => {
                    let words = self.half_tests.segments(words);
                    if width == Width::Narrow {
                        self.pair_exit_positions(words, half)
                    } else {
                        self.quad_exit_positions(words, half)
                    }
                }
                (Width::Narrow, _) => self.exit_positions::<u32>(segments, narrow),
                (Width::Single, _) => self.exit_positions::<u64>(segments, wide),
                (Width::Wide(words), _) => {
                    let v = &mut block.words[..words as usize];
                    self.wide_exit_positions(segments, wide, v)
                }
            };
            let leaves = (tree.first_leaf as usize, tree.width);
            let sums = &mut block.sums[t % k].0;
            self.add_leaves(gather, forest, rows, start, len, leaves, &positions, sums);
        }
    }

    /// The exit leaf position of every row in a tree of several 64-bit words, `v` (one
    /// per segment), counted from its first word.
    #[inline(always)]
    fn wide_exit_positions(
        &self,
        segments: &[Segment],
        columns: (&[Column<f64>], &[Column<u64>]),
        v: &mut [Column<u64>],
    ) -> [u32; ROWS] {
        for (word, segment) in v.iter_mut().zip(segments) {
            // A local copy, which the compiler keeps in registers.
            let mut bits = [u64::MAX; ROWS];
            self.run_tests(&mut bits, &self.tests, segment, columns);
            word.0 = bits;
        }
        let mut positions = [0u32; ROWS];
        for (r, position) in positions.iter_mut().enumerate() {
            // The exit leaf's bit is never cleared, so some word is non-zero.
            let word = v.iter().position(|w| w[r] != 0).unwrap_or(0);
            *position = word as u32 * 64 + v[word][r].trailing_zeros();
        }
        positions
    }

    /// The exit leaf position of every row in a tree of at most 32 leaves run on 16-bit
    /// words, one [`Segment`] per word (one or two).
    #[inline(always)]
    fn pair_exit_positions(
        &self,
        segments: &[Segment],
        columns: (&[Column<i16>], &[Column<u16>]),
    ) -> [u32; ROWS] {
        let mut low = [u16::MAX; ROWS];
        let mut high = [u16::MAX; ROWS];
        if let Some(segment) = segments.first() {
            self.run_tests(&mut low, &self.half_tests, segment, columns);
        }
        if let Some(segment) = segments.get(1) {
            self.run_tests(&mut high, &self.half_tests, segment, columns);
        }
        // The exit leaf's bit is never cleared: the lowest set bit of the pair is it.
        let mut positions = [0u32; ROWS];
        for ((position, &low), &high) in positions.iter_mut().zip(&low).zip(&high) {
            *position = lowest_bit(u32::from(high) << 16 | u32::from(low));
        }
        positions
    }

    /// The same for a tree of 33 to 64 leaves: three or four 16-bit words.
    #[inline(always)]
    fn quad_exit_positions(
        &self,
        segments: &[Segment],
        columns: (&[Column<i16>], &[Column<u16>]),
    ) -> [u32; ROWS] {
        let mut words = [[u16::MAX; ROWS]; 4];
        for (word, segment) in words.iter_mut().zip(segments) {
            // A local copy, which the compiler keeps in registers.
            let mut bits = [u16::MAX; ROWS];
            self.run_tests(&mut bits, &self.half_tests, segment, columns);
            *word = bits;
        }
        let pair = |r: usize, w: usize| u32::from(words[w + 1][r]) << 16 | u32::from(words[w][r]);
        let mut positions = [0u32; ROWS];
        for (r, position) in positions.iter_mut().enumerate() {
            let low = pair(r, 0);
            *position = if low != 0 {
                lowest_bit(low)
            } else {
                32 + lowest_bit(pair(r, 2))
            };
        }
        positions
    }

    /// The exit leaf position of every row, by walking the tree from the root,
    /// `WALK_ROWS` rows in lock step until all of them sit on leaves (which send rows
    /// back to themselves).
    #[inline(always)]
    fn walk_positions(&self, walk: &WalkTree, keys: &[i32]) -> [u32; ROWS] {
        let nodes = &self.walk_nodes[walk.nodes.start as usize..walk.nodes.end as usize];
        let mut positions = [walk.start; ROWS];
        let (Some(last_node), Some(last_key)) =
            (nodes.len().checked_sub(1), keys.len().checked_sub(1))
        else {
            return [0; ROWS];
        };
        for (group, at) in positions
            .as_chunks_mut::<WALK_ROWS>()
            .0
            .iter_mut()
            .enumerate()
        {
            let first = group * WALK_ROWS;
            loop {
                for (r, at) in at.iter_mut().enumerate() {
                    let node = nodes[(*at as usize).min(last_node)];
                    let key = keys[(node[0] as usize + first + r).min(last_key)];
                    *at = node[2 + usize::from(key > node[1] as i32)];
                }
                if at.iter().all(|&a| a >= walk.internal) {
                    break;
                }
            }
        }
        positions.map(|at| at - walk.internal)
    }

    /// The exit leaf position of every row in a tree of one word (`W` wide).
    #[inline(always)]
    fn exit_positions<W: Word>(
        &self,
        segments: &[Segment],
        columns: (&[Column<W::Key>], &[Column<W>]),
    ) -> [u32; ROWS] {
        let mut v = [W::ALL; ROWS];
        if let Some(segment) = segments.first() {
            self.run_tests(&mut v, &self.tests, segment, columns);
        }
        v.map(W::lowest_set)
    }

    /// Adds each row's exit leaf output to its sum; `leaves` are the tree's first leaf
    /// word and its width, `positions` count from that word (so they index the tree's
    /// leaf table).
    #[inline(always)]
    #[allow(clippy::too_many_arguments)]
    fn add_leaves(
        &self,
        gather: impl LeafGather,
        forest: &Forest,
        rows: &FeatureMatrix,
        start: usize,
        len: usize,
        (first_leaf, width): (usize, Width),
        positions: &[u32; ROWS],
        sums: &mut [f64; ROWS],
    ) {
        let words = match width {
            Width::Wide(words) => words as usize,
            Width::Narrow | Width::Single => 1,
        };
        if self.linear {
            let ids = self.leaf_ids.get(first_leaf..first_leaf + words);
            let ids = ids.unwrap_or_default().as_flattened();
            for (r, (sum, &position)) in sums.iter_mut().zip(positions).enumerate().take(len) {
                let leaf = ids.get(position as usize).copied().unwrap_or(0);
                *sum += forest.leaf_output(leaf as usize, rows.row(start + r));
            }
        } else {
            let values = self.leaf_values.get(first_leaf..first_leaf + words);
            gather.add(values.unwrap_or_default().as_flattened(), positions, sums);
        }
    }

    /// Applies one segment's tests to its word of the bit vectors, `v`.
    #[inline(always)]
    fn run_tests<W: Word>(
        &self,
        v: &mut [W; ROWS],
        tests: &Tests,
        segment: &Segment,
        (keys, one_hot): (&[Column<W::Key>], &[Column<W>]),
    ) {
        let per_kind = &segment.tests_per_kind;
        let first = segment.first_test as usize;
        let count = per_kind.iter().sum::<u32>() as usize;
        let tests = tests.tests.get(first..first + count).unwrap_or_default();
        let (order, rest) = tests.split_at(per_kind[Kind::Order as usize] as usize);
        let (category, chunked) = rest.split_at(per_kind[Kind::Category as usize] as usize);
        for test in order {
            let (bound, keep) = (W::key(test.bound), W::from_keep(test.keep));
            let Some(x) = keys.get(test.column as usize) else {
                continue;
            };
            for r in 0..ROWS {
                v[r] = v[r] & if x[r] > bound { keep } else { W::ALL };
            }
        }
        for test in category {
            let (bits, keep) = (W::from_keep(test.bound), W::from_keep(test.keep));
            let Some(x) = one_hot.get(test.column as usize) else {
                continue;
            };
            for r in 0..ROWS {
                v[r] = v[r] & if x[r] & bits == W::NONE { keep } else { W::ALL };
            }
        }
        for test in chunked {
            let first = test.column as usize;
            let mut hit = [W::NONE; ROWS];
            for &(column, bits) in self.chunks.iter().skip(first).take(test.bound as usize) {
                let bits = W::from_keep(bits);
                let Some(x) = one_hot.get(column as usize) else {
                    continue;
                };
                for r in 0..ROWS {
                    hit[r] = hit[r] | (x[r] & bits);
                }
            }
            let keep = W::from_keep(test.keep);
            for r in 0..ROWS {
                v[r] = v[r] & if hit[r] == W::NONE { keep } else { W::ALL };
            }
        }
    }
}

/// A row's bit vector (or one 64-leaf word of it), and the type its rank keys are
/// compared in: one as wide as the word, so a comparison's lane mask is the word's.
trait Word: Copy + Eq + BitAnd<Output = Self> + BitOr<Output = Self> {
    type Key: Copy + PartialOrd;
    const ALL: Self;
    const NONE: Self;
    /// The low bits of a 64-bit keep mask.
    fn from_keep(keep: u64) -> Self;
    /// A key (or bound) as `Key`; exact, as every key fits the type.
    fn key(key: u64) -> Self::Key;
    /// The position of the lowest set bit (the exit leaf).
    fn lowest_set(self) -> u32;
}

/// Words compared on signed integer keys of their own width (`i16` keys only where every
/// key fits, see `Scorer::keys_fit_i16`).
macro_rules! integer_word {
    ($word:ty, $key:ty) => {
        impl Word for $word {
            type Key = $key;
            const ALL: Self = <$word>::MAX;
            const NONE: Self = 0;
            #[inline(always)]
            fn from_keep(keep: u64) -> Self {
                keep as $word
            }
            #[inline(always)]
            fn key(key: u64) -> $key {
                key as $key
            }
            #[inline(always)]
            fn lowest_set(self) -> u32 {
                self.trailing_zeros()
            }
        }
    };
}

integer_word!(u16, i16);
integer_word!(u32, i32);

/// Keys as f64 (integers, exact below 2^53): every x86-64 compares f64 lanes, while a
/// 64-bit integer compare needs SSE4.2.
impl Word for u64 {
    type Key = f64;
    const ALL: Self = u64::MAX;
    const NONE: Self = 0;
    #[inline(always)]
    fn from_keep(keep: u64) -> Self {
        keep
    }
    #[inline(always)]
    fn key(key: u64) -> f64 {
        key as f64
    }
    #[inline(always)]
    fn lowest_set(self) -> u32 {
        self.trailing_zeros()
    }
}

/// One block's scoring, for `isa::run` to compile per instruction set.
struct BlockKernel<'a> {
    scorer: &'a Scorer,
    forest: &'a Forest,
    rows: &'a FeatureMatrix,
    start: usize,
    block: &'a mut Block,
}

impl Kernel for BlockKernel<'_> {
    #[inline(always)]
    fn score(&mut self, gather: impl LeafGather) {
        let (forest, rows, start) = (self.forest, self.rows, self.start);
        self.scorer
            .score_block_inline(gather, forest, rows, start, self.block);
    }
}

/// A length as a stored `u32` index; a model whose arrays outgrow `u32` is refused.
fn index32(len: usize) -> Result<u32, ModelError> {
    u32::try_from(len).map_err(|_| too_large())
}

fn too_large() -> ModelError {
    ModelError::new("the model is too large to score")
}

/// Where walk column `column` starts in a block's flattened `walk_keys`.
fn walk_offset(column: usize) -> Result<u32, ModelError> {
    column.checked_mul(ROWS).map_or(Err(too_large()), index32)
}

/// The runs of categories in a bitset, as the search bounds of [`Scorer::push_search`]:
/// `a - 1` and `b` for each run `a..=b` of set bits, ascending. Categories must stay
/// below `i32::MAX` (a bitset of 2^26 words is refused).
fn run_ends(words: &[u32]) -> Result<Vec<i32>, ModelError> {
    let top = i32::try_from(words.len() * 32).map_err(|_| too_large())?;
    let has = |c: i32| (words[(c / 32) as usize] >> (c % 32)) & 1 == 1;
    let mut ends = Vec::new();
    let mut c = 0;
    while c < top {
        if has(c) {
            let a = c;
            while c < top && has(c) {
                c += 1;
            }
            ends.extend([a - 1, c - 1]);
        } else {
            c += 1;
        }
    }
    Ok(ends)
}

/// Steps added to a tree's mean leaf depth to count a walk's steps: rows walk in lock
/// step until the deepest of them is done.
const WALK_SLACK: f32 = 4.0;

/// The cost model that picks walked trees: a tree is walked when it has more nodes
/// per step of the walk (`WalkTree::nodes_per_step`) than this, on `isa`. The tests
/// cost about the nodes, the walk about the steps; where the crossover lies was
/// measured per instruction set on the 2-core AMD EPYC we build on (module docs; an
/// Intel Xeon had put it at 7 and 14). AVX-512 runs the tests fastest of all and never
/// walks.
fn walk_threshold(isa: Isa) -> Option<f32> {
    match isa {
        Isa::Portable => Some(5.0),
        Isa::Avx2 => Some(10.0),
        Isa::Avx512 => None,
    }
}

/// Whether trees of `width` (at most 64 leaves) run their tests on 16-bit words on
/// `isa`: twice the rows per vector instruction of 32-bit words, four times those of
/// 64-bit words, each test clearing only the words its left subtree reaches. AVX-512
/// keeps 32-bit words for trees of at most 32 leaves, which it scores faster (module
/// docs of `mod.rs`).
fn half_words(isa: Isa, width: Width) -> bool {
    match width {
        Width::Narrow => isa != Isa::Avx512,
        Width::Single => true,
        Width::Wide(_) => false,
    }
}

/// The position of the lowest set bit of `word` (not 0), in a form the compiler
/// vectorizes without a vector bit count: the lowest bit alone, as an `f32`, has that
/// position as its exponent (bit 31 reads as -2^31, whose exponent is 31 too).
#[inline(always)]
fn lowest_bit(word: u32) -> u32 {
    let lowest = word & word.wrapping_neg();
    (((lowest as i32 as f32).to_bits() >> 23) & 0xff).wrapping_sub(127)
}

/// Scratch space for one block, allocated once per `predict_raw` call.
#[derive(Debug)]
struct Block {
    /// Key columns for 16-bit words, for trees of at most 32 leaves, and for the others.
    half_keys: Vec<Column<i16>>,
    narrow_keys: Vec<Column<i32>>,
    wide_keys: Vec<Column<f64>>,
    /// One-hot columns in 16-, 32- and 64-category chunks.
    half_one_hot: Vec<Column<u16>>,
    narrow_one_hot: Vec<Column<u32>>,
    wide_one_hot: Vec<Column<u64>>,
    /// Bit vectors of the current tree when it has more than 64 leaves.
    words: Vec<Column<u64>>,
    /// The walk's columns: zeros, then the key columns, then the category columns
    /// (each row's category, `u32::MAX` for none, as `i32` bits).
    walk_keys: Vec<[i32; ROWS]>,
    /// Per output: the running sum of each row.
    sums: Vec<Column<f64>>,
}

/// One value per row of a block, aligned to a cache line, so that no vector load of a
/// column straddles two lines. (Unaligned, the key columns of the shipped Direct model
/// sat 16 bytes past a line, and its AVX-512 scoring time moved by up to 17% with
/// unrelated changes to the allocations before them.)
#[derive(Debug, Clone, Copy)]
#[repr(C, align(64))]
struct Column<T>([T; ROWS]);

impl<T> std::ops::Deref for Column<T> {
    type Target = [T; ROWS];
    fn deref(&self) -> &[T; ROWS] {
        &self.0
    }
}

/// The rank keys (module docs) of a block's values in one key column, given
/// `below = #{thresholds < x}` of each value: `0` or `n + 1` when missing, else
/// `1 + below`.
#[inline(always)]
fn rank_keys(values: &[f64; ROWS], below: &[i32; ROWS], missing: Missing, n: usize) -> [i32; ROWS] {
    let mut keys = [0; ROWS];
    let (zero_is_missing, missing_key) = match missing {
        Missing::Low => (false, 0),
        Missing::High => (false, n as i32 + 1),
        Missing::ZeroLow => (true, 0),
        Missing::ZeroHigh => (true, n as i32 + 1),
    };
    for ((key, &x), &below) in keys.iter_mut().zip(values).zip(below) {
        let is_missing = x.is_nan() || (zero_is_missing && x == 0.0);
        *key = if is_missing { missing_key } else { 1 + below };
    }
    keys
}

/// `#{j : thresholds[j] < x}` for each value of a block (`thresholds` sorted): binary
/// searches that advance in lock step, one halving of every row's range per pass, with
/// no branch on the data (0 for NaN, which compares below nothing).
#[inline(always)]
fn count_below(thresholds: &[f64], values: &[f64; ROWS]) -> [i32; ROWS] {
    let Some(last) = thresholds.len().checked_sub(1) else {
        return [0; ROWS];
    };
    let mut base = [0usize; ROWS];
    let mut len = thresholds.len();
    while len > 1 {
        let half = len / 2;
        for (base, &x) in base.iter_mut().zip(values) {
            let probe = (*base + half).min(last);
            if thresholds[probe] < x {
                *base = probe;
            }
        }
        len -= half;
    }
    let mut below = [0; ROWS];
    for ((below, &base), &x) in below.iter_mut().zip(&base).zip(values) {
        *below = (base + usize::from(thresholds[base.min(last)] < x)) as i32;
    }
    below
}

/// Rows walked in lock step.
const WALK_ROWS: usize = 8;

/// The walk's key of `x` at a categorical split: `-1` for none (NaN and `x <= -1`,
/// below every run), else the category, `x` truncated toward zero, saturating at
/// `i32::MAX` (above every run: bitsets end below it).
#[inline(always)]
fn category_key(x: f64) -> i32 {
    if x.is_nan() || x <= -1.0 {
        -1
    } else {
        x as i32
    }
}

/// The one-hot word of `x` for category chunk `chunk` (categories `32 * chunk` to
/// `32 * chunk + 31`, one word of LightGBM's bitsets): NaN and `x <= -1` are in no
/// category (they go right at every categorical split, as in LightGBM), else the
/// category is `x` truncated toward zero.
#[inline]
fn one_hot(x: f64, chunk: u32, chunk_size: u32) -> u64 {
    if x.is_nan() || x <= -1.0 {
        return 0;
    }
    // Saturating: huge values land past every bitset.
    let category = x as u32;
    if category / chunk_size == chunk {
        1 << (category % chunk_size)
    } else {
        0
    }
}

/// For a validated tree: each leaf's left-to-right position, and for each internal node
/// the positions `[lo, hi)` of the leaves under its left child.
fn leaf_positions(nodes: &[Node]) -> (Vec<u32>, Vec<(usize, usize)>) {
    let mut position = vec![0u32; nodes.len() + 1];
    if nodes.is_empty() {
        return (position, Vec::new());
    }
    // Preorder, left before right: leaves come out left to right, and every node comes
    // before its children.
    let mut preorder = Vec::with_capacity(nodes.len());
    let mut stack = vec![0i32];
    let mut next = 0u32;
    while let Some(child) = stack.pop() {
        if child < 0 {
            position[!child as usize] = next;
            next += 1;
        } else {
            let node = &nodes[child as usize];
            preorder.push(child as usize);
            stack.push(node.right);
            stack.push(node.left);
        }
    }
    // Leaf span of every subtree, children before parents.
    let mut span = vec![(0usize, 0usize); nodes.len()];
    let span_of = |child: i32, span: &[(usize, usize)]| {
        if child < 0 {
            let p = position[!child as usize] as usize;
            (p, p + 1)
        } else {
            span[child as usize]
        }
    };
    for &i in preorder.iter().rev() {
        let (lo, _) = span_of(nodes[i].left, &span);
        let (_, hi) = span_of(nodes[i].right, &span);
        span[i] = (lo, hi);
    }
    let left_span = nodes.iter().map(|n| span_of(n.left, &span)).collect();
    (position, left_span)
}

#[cfg(test)]
mod tests {
    //! The scorer against the plain node-by-node walk of `tree.rs`, on every committed
    //! LightGBM fixture model and every instruction set this CPU has, with rows built
    //! from the values where decisions flip: each threshold and its neighbouring f64s,
    //! ±0, values inside LightGBM's zero threshold, NaN, ±inf, and categories inside,
    //! at the edge of and beyond every bitset.

    use std::path::Path;
    use std::sync::OnceLock;

    use proptest::prelude::*;
    use proptest::sample::Index;

    use super::*;
    use crate::engine::{FeatureMatrix, Model};

    /// A fixture model and, per feature, the values worth trying.
    struct Case {
        name: String,
        model: Model,
        values: Vec<Vec<f64>>,
    }

    const EVERYWHERE: [f64; 10] = [
        0.0,
        -0.0,
        1e-36,
        -1e-36,
        f64::NAN,
        f64::INFINITY,
        f64::NEG_INFINITY,
        1e300,
        -1e300,
        0.5,
    ];

    fn cases() -> &'static [Case] {
        static CASES: OnceLock<Vec<Case>> = OnceLock::new();
        CASES.get_or_init(|| {
            let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/engine");
            let mut dirs: Vec<_> = std::fs::read_dir(root)
                .expect("fixtures")
                .map(|e| e.expect("entry").path())
                .filter(|p| p.join("model.txt").exists())
                .collect();
            dirs.sort();
            dirs.iter()
                .map(|dir| {
                    let model = Model::from_file(&dir.join("model.txt")).expect("fixture model");
                    let values = interesting_values(&model);
                    let name = dir.file_name().unwrap().to_string_lossy().into_owned();
                    Case {
                        name,
                        model,
                        values,
                    }
                })
                .collect()
        })
    }

    fn interesting_values(model: &Model) -> Vec<Vec<f64>> {
        let forest = model.forest();
        let mut values = vec![EVERYWHERE.to_vec(); model.num_features()];
        for t in 0..forest.len() {
            for node in forest.tree(t).0 {
                let pool = &mut values[node.feature as usize];
                match node.rule {
                    Rule::Numerical { threshold, .. } => {
                        pool.extend([threshold, threshold.next_up(), threshold.next_down()]);
                    }
                    Rule::Categorical {
                        words: (start, end),
                    } => {
                        let top = (end - start) * 32;
                        pool.extend((0..=top).map(f64::from));
                        pool.extend([-0.5, -1.0, -1.5, 63.9, 64.0, 4e9, 1e20]);
                    }
                }
            }
        }
        values
    }

    /// The node walk's raw scores, summed in tree order per output.
    fn reference(model: &Model, rows: &FeatureMatrix) -> Vec<f64> {
        let (forest, k) = (model.forest(), model.num_outputs());
        let mut out = vec![0.0; rows.num_rows() * k];
        for r in 0..rows.num_rows() {
            for t in 0..forest.len() {
                out[r * k + t % k] += forest.predict_tree(t, rows.row(r));
            }
        }
        out
    }

    #[test]
    fn category_runs_end_where_bits_change() {
        assert_eq!(run_ends(&[]).unwrap(), Vec::<i32>::new());
        assert_eq!(run_ends(&[0]).unwrap(), Vec::<i32>::new());
        // Categories 0, 2..=3 and 31..=32.
        assert_eq!(
            run_ends(&[0b1101 | 1 << 31, 1]).unwrap(),
            [-1, 0, 1, 3, 30, 32]
        );
    }

    #[test]
    fn the_cost_model_walks_deep_trees_and_tests_small_ones() {
        let case = |name: &str| {
            let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/engine");
            Model::from_file(&dir.join(name).join("model.txt")).expect("fixture model")
        };
        let (deep, small) = (case("deep"), case("binary"));
        for isa in Isa::ALL {
            let mut scorer = Scorer::new(deep.forest()).expect("compiles");
            if scorer.set_isa(isa) != isa {
                continue;
            }
            let walked = scorer.trees.iter().filter(|t| t.walks).count();
            let want = if walk_threshold(isa).is_some() {
                scorer.trees.len()
            } else {
                0
            };
            assert_eq!(walked, want, "{isa}: deep trees walked");
            let mut scorer = Scorer::new(small.forest()).expect("compiles");
            scorer.set_isa(isa);
            assert!(
                scorer.trees.iter().all(|t| !t.walks),
                "{isa}: a small tree walked"
            );
        }
    }

    /// A model of `trees` one-split trees on feature 0 at thresholds 0.5, 1.5, …: as many
    /// distinct thresholds, so rank keys up to `trees + 1`.
    fn stumps(trees: usize) -> Model {
        let mut text = String::from(
            "tree\nversion=v4\nnum_class=1\nnum_tree_per_iteration=1\nlabel_index=0\n\
             max_feature_idx=0\nobjective=regression\nfeature_names=x\nfeature_infos=[0:1]\n\n",
        );
        for t in 0..trees {
            let leaves = format!("{} {}", t % 7, t % 5);
            text.push_str(&format!(
                "Tree={t}\nnum_leaves=2\nnum_cat=0\nsplit_feature=0\nthreshold={}.5\n\
                 decision_type=2\nleft_child=-1\nright_child=-2\nleaf_value={leaves}\n\
                 shrinkage=1\n\n\n",
                t
            ));
        }
        text.push_str("end of trees\n\nparameters:\nend of parameters\n");
        Model::parse(&text).expect("stumps parse")
    }

    #[test]
    fn sixteen_bit_words_are_used_only_when_every_key_fits_i16() {
        // 32,766 thresholds: keys up to 32,767 = i16::MAX; one more and they do not fit.
        for (trees, fits) in [(32_766, true), (32_767, false)] {
            let model = stumps(trees);
            let mut scorer = Scorer::new(model.forest()).expect("compiles");
            assert!(
                scorer.trees.iter().all(|t| t.half.is_some() == fits),
                "{trees} thresholds"
            );
            let top = trees as f64 - 0.5;
            let values = [
                top,
                top.next_up(),
                top - 1.0,
                top + 1.0,
                0.0,
                f64::NAN,
                -1.0,
            ];
            let mut rows = FeatureMatrix::missing(values.len(), 1);
            for (r, &x) in values.iter().enumerate() {
                rows.set(r, 0, x);
            }
            let want = reference(&model, &rows);
            for isa in Isa::ALL {
                if scorer.set_isa(isa) != isa {
                    continue;
                }
                scorer.set_half_choice(Some(true));
                let mut got = vec![0.0; want.len()];
                scorer.predict_raw(model.forest(), &rows, 1, &mut got);
                assert_eq!(got, want, "{trees} thresholds, {isa}");
            }
        }
    }

    #[test]
    fn sixteen_bit_words_serve_every_tested_small_tree_but_avx512s_narrow_ones() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/engine");
        // Trees of 15 leaves (32-bit words otherwise) and of 63 (64-bit words otherwise).
        for name in ["binary", "bench"] {
            let model = Model::from_file(&dir.join(name).join("model.txt")).expect("fixture");
            let mut scorer = Scorer::new(model.forest()).expect("compiles");
            for isa in Isa::ALL {
                if scorer.set_isa(isa) != isa {
                    continue;
                }
                for tree in &scorer.trees {
                    assert!(tree.half.is_some(), "{name}: every key fits i16");
                    // A walked tree runs no tests at all.
                    let want = !tree.walks && (isa != Isa::Avx512 || tree.width != Width::Narrow);
                    assert_eq!(tree.halves, want, "{name}, {isa}, {:?}", tree.width);
                }
            }
        }
    }

    #[test]
    fn a_scorer_never_uses_more_than_the_cpu_has() {
        let mut scorer = Scorer::new(&Forest::default()).expect("empty forest");
        assert_eq!(scorer.isa(), isa::detect());
        assert_eq!(scorer.set_isa(Isa::Avx512), isa::detect());
        assert_eq!(scorer.set_isa(Isa::Portable), Isa::Portable);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]

        #[test]
        fn scorer_equals_the_node_walk_bit_for_bit(
            case in 0..cases().len(),
            num_rows in 1usize..150,
            picks in prop::collection::vec(any::<Index>(), 4096),
        ) {
            let Case { name, model, values } = &cases()[case];
            let mut rows = FeatureMatrix::missing(num_rows, model.num_features());
            let mut pick = picks.iter().cycle();
            for r in 0..num_rows {
                for (f, pool) in values.iter().enumerate() {
                    let index = pick.next().expect("cycle never ends");
                    rows.set(r, f, pool[index.index(pool.len())]);
                }
            }
            let want = reference(model, &rows);
            let mut scorer = Scorer::new(model.forest()).expect("a loaded model compiles");
            let walks = [WalkChoice::None, WalkChoice::All, WalkChoice::Cost];
            let halves = [None, Some(true), Some(false)];
            for isa in Isa::ALL {
                for (choice, half) in walks.into_iter().flat_map(|w| halves.map(|h| (w, h))) {
                    if scorer.set_isa(isa) != isa {
                        continue;
                    }
                    scorer.set_walk_choice(choice);
                    scorer.set_half_choice(half);
                    let mut got = vec![0.0; want.len()];
                    scorer.predict_raw(model.forest(), &rows, model.num_outputs(), &mut got);
                    for (i, (g, w)) in got.iter().zip(&want).enumerate() {
                        prop_assert!(
                            g.to_bits() == w.to_bits() || (g.is_nan() && w.is_nan()),
                            "{name}, {isa}, {choice:?}, 16-bit words {half:?}, output {i}: \
                             scorer {g:?}, node walk {w:?}"
                        );
                    }
                }
            }
        }
    }
}
