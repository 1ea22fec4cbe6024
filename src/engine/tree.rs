//! The trees of a model in flat, validated arrays: what each node decides and what each
//! leaf outputs. Every index stored here is checked once at load, so scoring needs no
//! checks of its own. How the trees are evaluated fast is `scorer.rs`'s concern; what a
//! model file means is `model.rs`'s.

use std::ops::Range;

use super::error::ModelError;
use super::text::{parse_list, parse_one, TreeBlock};

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
        let required = |key: &str| {
            b.get(key)
                .ok_or_else(|| ModelError::new("missing required key").with_key(key))
        };
        let num_leaves: usize = parse_one(required("num_leaves")?, "num_leaves")?;
        if num_leaves == 0 {
            return Err(ModelError::new("a tree needs at least one leaf")
                .with_key("num_leaves")
                .at_line(required("num_leaves")?.line));
        }
        if num_leaves > i32::MAX as usize / 2 {
            return Err(ModelError::new("too many leaves").with_key("num_leaves"));
        }
        let num_cat: usize = parse_one(required("num_cat")?, "num_cat")?;
        let leaf_values: Vec<f64> =
            parse_list(required("leaf_value")?, "leaf_value", Some(num_leaves))?;
        let is_linear = match b.get("is_linear") {
            Some(entry) => match parse_one::<u8>(entry, "is_linear")? {
                0 => false,
                1 => true,
                _ => {
                    return Err(ModelError::new("must be 0 or 1")
                        .with_key("is_linear")
                        .at_line(entry.line))
                }
            },
            None => false,
        };

        let num_internal = num_leaves - 1;
        let mut nodes = Vec::with_capacity(num_internal);
        if num_internal > 0 {
            let split_feature: Vec<u32> = parse_list(
                required("split_feature")?,
                "split_feature",
                Some(num_internal),
            )?;
            let threshold: Vec<f64> =
                parse_list(required("threshold")?, "threshold", Some(num_internal))?;
            let decision_type: Vec<i8> = match b.get("decision_type") {
                Some(entry) => parse_list(entry, "decision_type", Some(num_internal))?,
                None => vec![0; num_internal],
            };
            let left: Vec<i32> =
                parse_list(required("left_child")?, "left_child", Some(num_internal))?;
            let right: Vec<i32> =
                parse_list(required("right_child")?, "right_child", Some(num_internal))?;
            let cat_ranges = self.push_cat_bitsets(b, num_cat)?;

            for i in 0..num_internal {
                let feature = split_feature[i];
                if feature as usize >= num_features {
                    return Err(ModelError::new(format!(
                        "node {i} splits on feature {feature}, but the model has {num_features} features"
                    ))
                    .with_key("split_feature")
                    .at_line(required("split_feature")?.line));
                }
                let rule =
                    rule(decision_type[i], threshold[i], &cat_ranges).map_err(|message| {
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
            let children_line = required("left_child")?.line;
            check_structure(&nodes, num_leaves).map_err(|message| {
                ModelError::new(message)
                    .with_key("left_child")
                    .at_line(children_line)
            })?;
        }

        let leaves_start = self.leaves.len();
        if is_linear {
            let consts: Vec<f64> =
                parse_list(required("leaf_const")?, "leaf_const", Some(num_leaves))?;
            let counts: Vec<u32> =
                parse_list(required("num_features")?, "num_features", Some(num_leaves))?;
            let total: usize = counts.iter().map(|&c| c as usize).sum();
            let features: Vec<u32> = match b.get("leaf_features") {
                Some(entry) => parse_list(entry, "leaf_features", Some(total))?,
                None if total == 0 => Vec::new(),
                None => {
                    return Err(ModelError::new("missing required key").with_key("leaf_features"))
                }
            };
            let coeffs: Vec<f64> = match b.get("leaf_coeff") {
                Some(entry) => parse_list(entry, "leaf_coeff", Some(total))?,
                None if total == 0 => Vec::new(),
                None => return Err(ModelError::new("missing required key").with_key("leaf_coeff")),
            };
            if let Some(&bad) = features.iter().find(|&&f| f as usize >= num_features) {
                return Err(ModelError::new(format!(
                    "feature {bad} is out of range ({num_features} features)"
                ))
                .with_key("leaf_features")
                .at_line(required("leaf_features")?.line));
            }
            let mut next = 0usize;
            for (leaf, &count) in counts.iter().enumerate() {
                let start = self.terms.len();
                for j in next..next + count as usize {
                    self.terms.push((features[j], coeffs[j]));
                }
                next += count as usize;
                self.leaves.push(Leaf {
                    value: leaf_values[leaf],
                    linear: Some((consts[leaf], start as u32..self.terms.len() as u32)),
                });
            }
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

    /// Appends the tree's category bitsets; returns each categorical split's word range.
    fn push_cat_bitsets(
        &mut self,
        b: &super::text::Block<'_>,
        num_cat: usize,
    ) -> Result<Vec<(u32, u32)>, ModelError> {
        if num_cat == 0 {
            return Ok(Vec::new());
        }
        let boundaries_entry = b
            .get("cat_boundaries")
            .ok_or_else(|| ModelError::new("missing required key").with_key("cat_boundaries"))?;
        let boundaries: Vec<usize> =
            parse_list(boundaries_entry, "cat_boundaries", Some(num_cat + 1))?;
        let words_entry = b
            .get("cat_threshold")
            .ok_or_else(|| ModelError::new("missing required key").with_key("cat_threshold"))?;
        let words: Vec<u32> = parse_list(words_entry, "cat_threshold", None)?;
        let ordered = boundaries[0] == 0 && boundaries.windows(2).all(|w| w[0] <= w[1]);
        if !ordered || boundaries[num_cat] != words.len() {
            return Err(ModelError::new(format!(
                "must rise from 0 to the {} words of cat_threshold",
                words.len()
            ))
            .with_key("cat_boundaries")
            .at_line(boundaries_entry.line));
        }
        let base = self.cat_words.len();
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
