//! The trees of a model in flat, validated arrays: what each node decides and what each
//! leaf outputs. Every index stored here is checked once at load, so scoring needs no
//! checks of its own. How the trees are evaluated fast is `scorer.rs`'s concern; what a
//! model file means is `model.rs`'s.

use std::ops::Range;

use super::error::ModelError;
use super::text::{parse_list, parse_one, Block, Entry, TreeBlock};

/// `decision_type` bit 0: the split is categorical.
const CATEGORICAL_MASK: i8 = 1;
/// `decision_type` bit 1: missing values go left.
const DEFAULT_LEFT_MASK: i8 = 2;
/// `decision_type` bits 2-3: how a missing value is recognised.
const MISSING_TYPE_SHIFT: u32 = 2;
const KNOWN_BITS: i8 = 0b1111;

/// How one internal node chooses a side.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Rule {
    /// `x <= threshold` goes left. A NaN goes left iff `nan_left`; when `zero_is_missing`,
    /// an input of exactly 0 (inputs within LightGBM's zero threshold have already been
    /// made 0 by `FeatureMatrix`) goes the default way, `nan_left`.
    Numerical {
        threshold: f64,
        nan_left: bool,
        zero_is_missing: bool,
    },
    /// The integer part of `x` goes left iff its bit is set in `words`
    /// (a range into `Forest::cat_words`); NaN and negatives go right.
    Categorical { words: (u32, u32) },
}

/// One internal node. Children: `>= 0` is another node of the same tree, `< 0` is leaf `!child`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Node {
    pub rule: Rule,
    pub feature: u32,
    pub left: i32,
    pub right: i32,
}

/// One leaf: its constant output and, in a linear tree, its linear model.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Leaf {
    pub value: f64,
    /// Linear leaves only: the intercept, and the range of `Forest::terms` with the coefficients.
    pub linear: Option<(f64, Range<u32>)>,
}

/// One tree: where its nodes and leaves sit in the forest's arrays.
#[derive(Debug, Clone)]
pub(crate) struct Tree {
    nodes: Range<usize>,
    leaves: Range<usize>,
}

/// All trees of a model, stored contiguously.
#[derive(Debug, Default)]
pub(crate) struct Forest {
    trees: Vec<Tree>,
    nodes: Vec<Node>,
    leaves: Vec<Leaf>,
    /// `(feature, coefficient)` of linear leaves.
    terms: Vec<(u32, f64)>,
    cat_words: Vec<u32>,
}

impl Forest {
    pub fn len(&self) -> usize {
        self.trees.len()
    }

    pub fn num_leaves(&self) -> usize {
        self.leaves.len()
    }

    pub fn has_linear_leaves(&self) -> bool {
        self.leaves.iter().any(|leaf| leaf.linear.is_some())
    }

    /// Parses, checks and appends one tree block; `num_features` bounds every feature index.
    pub fn push(
        &mut self,
        block: &TreeBlock<'_>,
        index: usize,
        num_features: usize,
    ) -> Result<(), ModelError> {
        self.push_inner(block, num_features).map_err(|e| {
            let e = e.in_tree(index);
            if e.line.is_none() {
                e.at_line(block.line)
            } else {
                e
            }
        })
    }

    fn push_inner(&mut self, block: &TreeBlock<'_>, num_features: usize) -> Result<(), ModelError> {
        let b = &block.block;
        let num_leaves = num_leaves(b)?;
        let num_internal = num_leaves - 1;
        let num_cat = num_cat(b, num_internal)?;
        let leaf_values: Vec<f64> =
            parse_list(required(b, "leaf_value")?, "leaf_value", Some(num_leaves))?;
        let is_linear = is_linear(b)?;
        let total_leaves = self.leaves.len() + num_leaves;
        if total_leaves > MAX_FOREST_LEAVES {
            return Err(ModelError::new(format!(
                "the trees so far have {total_leaves} leaves, more than the {MAX_FOREST_LEAVES} a model may have"
            ))
            .with_key("num_leaves")
            .at_line(required(b, "num_leaves")?.line));
        }

        let nodes = if num_internal > 0 {
            self.parse_nodes(block, num_internal, num_cat, num_features)?
        } else {
            Vec::new()
        };

        let leaves_start = self.leaves.len();
        if is_linear {
            self.push_linear_leaves(b, &leaf_values, num_features)?;
        } else {
            self.leaves.extend(leaf_values.iter().map(|&value| Leaf {
                value,
                linear: None,
            }));
        }

        let nodes_start = self.nodes.len();
        self.nodes.extend(nodes);
        self.trees.push(Tree {
            nodes: nodes_start..self.nodes.len(),
            leaves: leaves_start..self.leaves.len(),
        });
        Ok(())
    }

    /// Reads and checks the `num_internal` nodes of a tree; its category bitsets are
    /// appended to the forest's.
    fn parse_nodes(
        &mut self,
        block: &TreeBlock<'_>,
        num_internal: usize,
        num_cat: usize,
        num_features: usize,
    ) -> Result<Vec<Node>, ModelError> {
        let b = &block.block;
        let list = |key: &str| required(b, key);
        let split_feature: Vec<u32> =
            parse_list(list("split_feature")?, "split_feature", Some(num_internal))?;
        let threshold: Vec<f64> = parse_list(list("threshold")?, "threshold", Some(num_internal))?;
        let decision_type: Vec<i8> = match b.get("decision_type") {
            Some(entry) => parse_list(entry, "decision_type", Some(num_internal))?,
            None => vec![0; num_internal],
        };
        let left: Vec<i32> = parse_list(list("left_child")?, "left_child", Some(num_internal))?;
        let right: Vec<i32> = parse_list(list("right_child")?, "right_child", Some(num_internal))?;
        let cat_ranges = self.push_cat_bitsets(b, num_cat)?;

        let mut nodes = Vec::with_capacity(num_internal);
        for i in 0..num_internal {
            let feature = split_feature[i];
            if feature as usize >= num_features {
                return Err(ModelError::new(format!(
                    "node {i} splits on feature {feature}, but the model has {num_features} features"
                ))
                .with_key("split_feature")
                .at_line(list("split_feature")?.line));
            }
            let rule = rule(decision_type[i], threshold[i], &cat_ranges).map_err(|message| {
                ModelError::new(format!("node {i}: {message}"))
                    .with_key("decision_type")
                    .at_line(b.get("decision_type").map_or(block.line, |e| e.line))
            })?;
            nodes.push(Node {
                rule,
                feature,
                left: left[i],
                right: right[i],
            });
        }
        check_structure(&nodes, num_internal + 1).map_err(|message| {
            ModelError::new(message)
                .with_key("left_child")
                .at_line(b.get("left_child").map_or(block.line, |e| e.line))
        })?;
        Ok(nodes)
    }

    /// Appends the leaves of a linear tree: each leaf's intercept and its
    /// `num_features` terms, read in turn from `leaf_features` and `leaf_coeff`.
    fn push_linear_leaves(
        &mut self,
        b: &Block<'_>,
        leaf_values: &[f64],
        num_features: usize,
    ) -> Result<(), ModelError> {
        let num_leaves = leaf_values.len();
        let consts: Vec<f64> =
            parse_list(required(b, "leaf_const")?, "leaf_const", Some(num_leaves))?;
        let counts_entry = required(b, "num_features")?;
        let counts: Vec<u32> = parse_list(counts_entry, "num_features", Some(num_leaves))?;
        let total = counts
            .iter()
            .try_fold(0usize, |sum, &c| sum.checked_add(c as usize))
            .ok_or_else(|| {
                ModelError::new("the counts add up past any length")
                    .with_key("num_features")
                    .at_line(counts_entry.line)
            })?;
        let features: Vec<u32> = terms_list(b, "leaf_features", total)?;
        let coeffs: Vec<f64> = terms_list(b, "leaf_coeff", total)?;
        if let Some(&bad) = features.iter().find(|&&f| f as usize >= num_features) {
            return Err(ModelError::new(format!(
                "feature {bad} is out of range ({num_features} features)"
            ))
            .with_key("leaf_features")
            .at_line(required(b, "leaf_features")?.line));
        }
        let too_many = || {
            ModelError::new("more than 2^32 linear terms in the model").with_key("leaf_features")
        };
        let mut terms = features.into_iter().zip(coeffs);
        for ((&value, &constant), &count) in leaf_values.iter().zip(&consts).zip(&counts) {
            let start = u32::try_from(self.terms.len()).map_err(|_| too_many())?;
            self.terms.extend(terms.by_ref().take(count as usize));
            let end = u32::try_from(self.terms.len()).map_err(|_| too_many())?;
            self.leaves.push(Leaf {
                value,
                linear: Some((constant, start..end)),
            });
        }
        Ok(())
    }

    /// Appends the tree's category bitsets; returns each categorical split's word range.
    fn push_cat_bitsets(
        &mut self,
        b: &Block<'_>,
        num_cat: usize,
    ) -> Result<Vec<(u32, u32)>, ModelError> {
        if num_cat == 0 {
            return Ok(Vec::new());
        }
        // `num_cat` is at most the number of internal nodes, so `+ 1` cannot overflow.
        let boundaries_entry = required(b, "cat_boundaries")?;
        let boundaries: Vec<usize> =
            parse_list(boundaries_entry, "cat_boundaries", Some(num_cat + 1))?;
        let words: Vec<u32> = parse_list(required(b, "cat_threshold")?, "cat_threshold", None)?;
        let ordered = boundaries[0] == 0 && boundaries.windows(2).all(|w| w[0] <= w[1]);
        if !ordered || boundaries[num_cat] != words.len() {
            return Err(ModelError::new(format!(
                "must rise from 0 to the {} words of cat_threshold",
                words.len()
            ))
            .with_key("cat_boundaries")
            .at_line(boundaries_entry.line));
        }
        // Every boundary is at most `words.len()`, so the sums below fit once the last does.
        let base = self.cat_words.len();
        u32::try_from(base + words.len()).map_err(|_| {
            ModelError::new("more than 2^32 category words in the model")
                .with_key("cat_threshold")
                .at_line(boundaries_entry.line)
        })?;
        self.cat_words.extend(words);
        Ok(boundaries
            .windows(2)
            .map(|w| ((base + w[0]) as u32, (base + w[1]) as u32))
            .collect())
    }

    /// Tree `t`'s internal nodes and the forest index of its leaf 0.
    pub fn tree(&self, t: usize) -> (&[Node], usize) {
        let tree = &self.trees[t];
        (&self.nodes[tree.nodes.clone()], tree.leaves.start)
    }

    pub fn leaf_value(&self, leaf: usize) -> f64 {
        self.leaves[leaf].value
    }

    pub fn cat_words(&self, start: u32, end: u32) -> &[u32] {
        &self.cat_words[start as usize..end as usize]
    }

    /// Output of forest leaf `leaf` for `row`.
    pub fn leaf_output(&self, leaf: usize, row: &[f64]) -> f64 {
        let leaf = &self.leaves[leaf];
        match &leaf.linear {
            None => leaf.value,
            Some((constant, terms)) => self.linear_output(leaf.value, *constant, terms, row),
        }
    }

    /// Output of tree `t` for one row of normalized feature values, node by node: the
    /// plain reading of LightGBM's rules, kept as the reference the scorer is tested
    /// against.
    #[cfg(test)]
    pub fn predict_tree(&self, t: usize, row: &[f64]) -> f64 {
        let tree = &self.trees[t];
        let nodes = &self.nodes[tree.nodes.clone()];
        let mut next: i32 = if nodes.is_empty() { -1 } else { 0 };
        while next >= 0 {
            let node = &nodes[next as usize];
            let x = row[node.feature as usize];
            next = if self.goes_left(&node.rule, x) {
                node.left
            } else {
                node.right
            };
        }
        let leaf = &self.leaves[tree.leaves.start + !next as usize];
        match &leaf.linear {
            None => leaf.value,
            Some((constant, terms)) => self.linear_output(leaf.value, *constant, terms, row),
        }
    }

    #[cfg(test)]
    fn goes_left(&self, rule: &Rule, x: f64) -> bool {
        match *rule {
            Rule::Numerical {
                threshold,
                nan_left,
                zero_is_missing,
            } => {
                if x.is_nan() || (zero_is_missing && x == 0.0) {
                    nan_left
                } else {
                    x <= threshold
                }
            }
            Rule::Categorical {
                words: (start, end),
            } => {
                // NaN and x <= -1 go right; `as` truncates toward zero, so -0.5 is category 0.
                if x.is_nan() || x <= -1.0 {
                    return false;
                }
                let category = x as u32;
                let word = start as usize + (category / 32) as usize;
                word < end as usize && (self.cat_words[word] >> (category % 32)) & 1 == 1
            }
        }
    }

    /// A linear leaf: intercept plus coefficients; any NaN input falls back to the constant.
    fn linear_output(&self, fallback: f64, constant: f64, terms: &Range<u32>, row: &[f64]) -> f64 {
        let mut output = constant;
        for &(feature, coeff) in &self.terms[terms.start as usize..terms.end as usize] {
            let x = row[feature as usize];
            if x.is_nan() {
                return fallback;
            }
            output += coeff * x;
        }
        output
    }
}

/// LightGBM's largest `num_leaves` (its parameter check refuses more): every tree
/// index fits `i32` with room, and the scorer's per-tree arrays stay small.
const MAX_LEAVES: usize = 131_072;

/// The most leaves a whole forest may have: leaf indices, and the rank keys the scorer
/// derives from node counts, then fit in `i32` / `u32`.
const MAX_FOREST_LEAVES: usize = i32::MAX as usize;

fn required<'b, 'a>(b: &'b Block<'a>, key: &str) -> Result<&'b Entry<'a>, ModelError> {
    b.get(key)
        .ok_or_else(|| ModelError::new("missing required key").with_key(key))
}

/// `num_leaves`: from 1 to [`MAX_LEAVES`].
fn num_leaves(b: &Block<'_>) -> Result<usize, ModelError> {
    let entry = required(b, "num_leaves")?;
    let num_leaves: usize = parse_one(entry, "num_leaves")?;
    if num_leaves == 0 || num_leaves > MAX_LEAVES {
        return Err(ModelError::new(format!(
            "a tree has from 1 to {MAX_LEAVES} leaves, not {num_leaves}"
        ))
        .with_key("num_leaves")
        .at_line(entry.line));
    }
    Ok(num_leaves)
}

/// `num_cat`: the number of categorical splits, so at most the number of internal nodes.
fn num_cat(b: &Block<'_>, num_internal: usize) -> Result<usize, ModelError> {
    let entry = required(b, "num_cat")?;
    let num_cat: usize = parse_one(entry, "num_cat")?;
    if num_cat > num_internal {
        return Err(ModelError::new(format!(
            "{num_cat} categorical splits in a tree of {num_internal} internal nodes"
        ))
        .with_key("num_cat")
        .at_line(entry.line));
    }
    Ok(num_cat)
}

/// The `total` values of `key`; the key may be left out when there are none.
fn terms_list<T: std::str::FromStr>(
    b: &Block<'_>,
    key: &str,
    total: usize,
) -> Result<Vec<T>, ModelError> {
    match b.get(key) {
        Some(entry) => parse_list(entry, key, Some(total)),
        None if total == 0 => Ok(Vec::new()),
        None => Err(ModelError::new("missing required key").with_key(key)),
    }
}

/// `is_linear`: 0 or 1, absent meaning 0.
fn is_linear(b: &Block<'_>) -> Result<bool, ModelError> {
    let Some(entry) = b.get("is_linear") else {
        return Ok(false);
    };
    match parse_one::<u8>(entry, "is_linear")? {
        0 => Ok(false),
        1 => Ok(true),
        _ => Err(ModelError::new("must be 0 or 1")
            .with_key("is_linear")
            .at_line(entry.line)),
    }
}

/// Decodes one `decision_type` into a rule.
fn rule(decision_type: i8, threshold: f64, cat_ranges: &[(u32, u32)]) -> Result<Rule, String> {
    if decision_type & !KNOWN_BITS != 0 {
        return Err(format!("unknown decision_type bits in {decision_type}"));
    }
    let default_left = decision_type & DEFAULT_LEFT_MASK != 0;
    if decision_type & CATEGORICAL_MASK != 0 {
        let index = threshold as usize;
        if threshold < 0.0 || threshold.fract() != 0.0 || index >= cat_ranges.len() {
            return Err(format!(
                "categorical threshold {threshold} names no bitset ({} in the tree)",
                cat_ranges.len()
            ));
        }
        return Ok(Rule::Categorical {
            words: cat_ranges[index],
        });
    }
    if threshold.is_nan() {
        // LightGBM writes bin bounds, never NaN; refusing one keeps every comparison of
        // the scorer a plain ordered one.
        return Err("numerical threshold is NaN".to_owned());
    }
    match (decision_type >> MISSING_TYPE_SHIFT) & 0b11 {
        // None: a NaN is compared as 0.
        0 => Ok(Rule::Numerical {
            threshold,
            nan_left: 0.0 <= threshold,
            zero_is_missing: false,
        }),
        // Zero: NaN is made 0, and 0 goes the default way.
        1 => Ok(Rule::Numerical {
            threshold,
            nan_left: default_left,
            zero_is_missing: true,
        }),
        // NaN: NaN goes the default way.
        2 => Ok(Rule::Numerical {
            threshold,
            nan_left: default_left,
            zero_is_missing: false,
        }),
        _ => Err(format!(
            "missing type 3 in decision_type {decision_type} is undefined"
        )),
    }
}

/// Checks that the children form one tree rooted at node 0: every node and every leaf is
/// the child of exactly one parent and reachable from the root, so no walk can loop or
/// leave the arrays.
fn check_structure(nodes: &[Node], num_leaves: usize) -> Result<(), String> {
    let mut node_seen = vec![false; nodes.len()];
    let mut leaf_seen = vec![false; num_leaves];
    node_seen[0] = true;
    let mut stack = vec![0usize];
    while let Some(i) = stack.pop() {
        for child in [nodes[i].left, nodes[i].right] {
            if child >= 0 {
                let c = child as usize;
                if c >= nodes.len() {
                    return Err(format!(
                        "node {i} has child {child}, past the {} internal nodes",
                        nodes.len()
                    ));
                }
                if std::mem::replace(&mut node_seen[c], true) {
                    return Err(format!(
                        "node {c} is reached twice (a cycle or shared child)"
                    ));
                }
                stack.push(c);
            } else {
                let leaf = !child as usize;
                if leaf >= num_leaves {
                    return Err(format!(
                        "node {i} points to leaf {leaf}, past the {num_leaves} leaves"
                    ));
                }
                if std::mem::replace(&mut leaf_seen[leaf], true) {
                    return Err(format!("leaf {leaf} is reached twice"));
                }
            }
        }
    }
    if let Some(i) = node_seen.iter().position(|seen| !seen) {
        return Err(format!("node {i} is not reachable from the root"));
    }
    if let Some(leaf) = leaf_seen.iter().position(|seen| !seen) {
        return Err(format!("leaf {leaf} is not reachable from the root"));
    }
    Ok(())
}
