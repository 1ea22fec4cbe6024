//! [`Model`]: a LightGBM text model checked at load, its feature names and categories,
//! and batch prediction (tree sums, averaging, objective transform).

use std::collections::HashMap;
use std::path::Path;

use super::categories::{pandas_categories, Categories};
use super::error::ModelError;
use super::isa::Isa;
use super::matrix::FeatureMatrix;
use super::objective::{Objective, Transform};
use super::scorer::Scorer;
use super::text::{parse_list, parse_one, sections, shorten, Block, Entry, Sections};
use super::tree::Forest;

/// A loaded, validated LightGBM model. Scoring cannot fail or read out of bounds: every
/// index in it was checked by [`Model::parse`].
#[derive(Debug)]
pub struct Model {
    feature_names: Vec<String>,
    /// Per feature: the pandas category labels, by code, when the model carries them.
    categories: Vec<Option<Categories>>,
    objective: Objective,
    num_outputs: usize,
    num_iterations: usize,
    average_output: bool,
    forest: Forest,
    scorer: Scorer,
}

impl Model {
    /// Reads and parses a model file.
    pub fn from_file(path: &Path) -> Result<Self, ModelError> {
        let bytes = std::fs::read(path)
            .map_err(|e| ModelError::new(format!("cannot read {}: {e}", path.display())))?;
        let text = std::str::from_utf8(&bytes).map_err(|e| {
            let line = bytes[..e.valid_up_to()]
                .iter()
                .filter(|&&b| b == b'\n')
                .count()
                + 1;
            ModelError::new("the model file is not UTF-8 text").at_line(line)
        })?;
        Self::parse(text)
    }

    /// Parses LightGBM's text model format, refusing anything malformed, truncated or
    /// inconsistent with the line (and tree and key) at fault.
    pub fn parse(text: &str) -> Result<Self, ModelError> {
        let sections = sections(text)?;
        let header = &sections.header;
        let required = |key: &str| {
            header.get(key).ok_or_else(|| {
                ModelError::new("missing required header key")
                    .with_key(key)
                    .at_line(sections.header_end_line)
            })
        };

        if let Some(version) = header.get("version") {
            if !matches!(version.value, "v2" | "v3" | "v4") {
                return Err(ModelError::new(format!(
                    "unsupported model version `{}`",
                    shorten(version.value)
                ))
                .with_key("version")
                .at_line(version.line));
            }
        }
        let num_class: usize = parse_one(required("num_class")?, "num_class")?;
        let num_outputs: usize = match header.get("num_tree_per_iteration") {
            Some(entry) => parse_one(entry, "num_tree_per_iteration")?,
            None => num_class,
        };
        if num_outputs == 0 || num_outputs != num_class {
            let entry = required("num_class")?;
            return Err(ModelError::new(format!(
                "num_class={num_class} with num_tree_per_iteration={num_outputs} is not a model LightGBM writes"
            ))
            .with_key("num_class")
            .at_line(entry.line));
        }
        let _label_index: i64 = parse_one(required("label_index")?, "label_index")?;
        let max_feature_entry = required("max_feature_idx")?;
        let max_feature_idx: usize = parse_one(max_feature_entry, "max_feature_idx")?;
        let num_features = max_feature_idx.checked_add(1).ok_or_else(|| {
            ModelError::new("out of range")
                .with_key("max_feature_idx")
                .at_line(max_feature_entry.line)
        })?;

        let names_entry = required("feature_names")?;
        let feature_names: Vec<String> = names_entry.value.split(' ').map(str::to_owned).collect();
        if feature_names.len() != num_features {
            return Err(ModelError::new(format!(
                "{} names for max_feature_idx={max_feature_idx}",
                feature_names.len()
            ))
            .with_key("feature_names")
            .at_line(names_entry.line));
        }
        check_unique_names(&feature_names, names_entry)?;
        let infos_entry = required("feature_infos")?;
        let feature_infos: Vec<&str> = infos_entry.value.split(' ').collect();
        if feature_infos.len() != num_features {
            return Err(ModelError::new(format!(
                "{} entries for max_feature_idx={max_feature_idx}",
                feature_infos.len()
            ))
            .with_key("feature_infos")
            .at_line(infos_entry.line));
        }

        let objective = match header.get("objective") {
            Some(entry) => Objective::parse(entry.value)
                .map_err(|e| e.with_key("objective").at_line(entry.line))?,
            None => Objective::none(),
        };
        if objective.num_class.is_some_and(|n| n != num_outputs) {
            let entry = required("objective")?;
            return Err(
                ModelError::new(format!("num_class disagrees with num_class={num_class}"))
                    .with_key("objective")
                    .at_line(entry.line),
            );
        }
        if objective.transform == Transform::Softmax && num_outputs < 2 {
            return Err(ModelError::new("softmax over a single output").with_key("objective"));
        }

        let mut forest = Forest::default();
        for (index, block) in sections.trees.iter().enumerate() {
            forest.push(block, index, num_features)?;
        }
        check_tree_sizes(header, &sections)?;
        check_iterations(forest.len(), num_outputs, &sections)?;

        let categories = pandas_categories(
            &sections.pandas_categorical,
            &sections.parameters,
            &feature_infos,
        )?;

        Ok(Self {
            feature_names,
            categories,
            objective,
            num_outputs,
            num_iterations: forest.len() / num_outputs,
            average_output: header.get("average_output").is_some(),
            scorer: Scorer::new(&forest)?,
            forest,
        })
    }

    /// The model's feature names, in column order.
    pub fn feature_names(&self) -> &[String] {
        &self.feature_names
    }

    pub fn num_features(&self) -> usize {
        self.feature_names.len()
    }

    /// Scores per row: 1, or the number of classes of a multiclass model.
    pub fn num_outputs(&self) -> usize {
        self.num_outputs
    }

    /// The objective's name as the model file gives it (`regression`, `binary`, …).
    pub fn objective(&self) -> &str {
        &self.objective.name
    }

    pub fn num_trees(&self) -> usize {
        self.forest.len()
    }

    pub fn num_leaves(&self) -> usize {
        self.forest.num_leaves()
    }

    pub fn has_linear_leaves(&self) -> bool {
        self.forest.has_linear_leaves()
    }

    /// Whether `other` takes the same inputs: the same feature names in the same order and
    /// the same pandas category lists, so that any feature matrix of one serves the other.
    pub fn same_inputs_as(&self, other: &Model) -> bool {
        self.feature_names() == other.feature_names()
            && (0..self.num_features()).all(|f| self.categories(f) == other.categories(f))
    }

    /// The pandas categories of `feature`, as text by code, when the model was trained
    /// on a pandas category column.
    pub fn categories(&self, feature: usize) -> Option<&[String]> {
        self.categories[feature].as_ref().map(Categories::labels)
    }

    /// The value the trees read for the text `label` of `feature`, as LightGBM's Python
    /// package maps a pandas category column: the code of the category equal to it (for
    /// numeric categories, equal to the number it spells: `"3"` and `"3.0"` are category
    /// 3), else NaN (unseen). `None` when the feature has no category list; then the
    /// text means nothing to the model.
    pub fn category_value(&self, feature: usize, label: &str) -> Option<f64> {
        let categories = self.categories[feature].as_ref()?;
        Some(code_value(categories.code_of_label(label)))
    }

    /// The value the trees read for the number `x` of `feature` when the feature has a
    /// category list: the code of the numeric category equal to `x` (`3.0` is category
    /// 3), else NaN, as pandas maps it. `None` when the feature has no category list;
    /// then `x` itself is the value (for a categorical feature, the raw code).
    #[inline]
    pub fn category_value_of_number(&self, feature: usize, x: f64) -> Option<f64> {
        let categories = self.categories[feature].as_ref()?;
        Some(code_value(categories.code_of_number(x)))
    }

    /// Scores every row of `rows` into `out` (`num_outputs` values per row, row after row),
    /// as `Booster.predict` does.
    ///
    /// # Panics
    /// When `rows` does not have this model's column count or `out` has the wrong length.
    pub fn predict(&self, rows: &FeatureMatrix, out: &mut [f64]) {
        self.predict_raw(rows, out);
        let k = self.num_outputs;
        let divisor = if self.average_output {
            self.num_iterations as f64
        } else {
            1.0
        };
        for scores in out.chunks_exact_mut(k) {
            if self.average_output {
                scores.iter_mut().for_each(|s| *s /= divisor);
            }
            self.objective.transform.apply(scores);
        }
    }

    /// The raw sums of tree outputs (no averaging, no transform), `num_outputs` per row.
    pub fn predict_raw(&self, rows: &FeatureMatrix, out: &mut [f64]) {
        assert_eq!(
            rows.num_features(),
            self.num_features(),
            "feature matrix has the wrong column count"
        );
        let k = self.num_outputs;
        assert_eq!(
            out.len(),
            rows.num_rows() * k,
            "output buffer has the wrong length"
        );
        self.scorer
            .predict_raw(&self.forest, rows, self.num_outputs, out);
    }

    /// The validated trees, for the scorer's tests.
    #[cfg(test)]
    pub(crate) fn forest(&self) -> &Forest {
        &self.forest
    }

    /// The instruction set scoring uses: the best this CPU has, unless lowered with
    /// [`Model::set_isa`].
    pub fn isa(&self) -> Isa {
        self.scorer.isa()
    }

    /// Scores with `isa`, or the best this CPU has below it (for benchmarks and tests;
    /// every choice gives the same scores, bit for bit). Returns the choice.
    pub fn set_isa(&mut self, isa: Isa) -> Isa {
        self.scorer.set_isa(isa)
    }
}

/// When `tree_sizes` is given, each size must be the byte length of its tree's text,
/// as LightGBM (which seeks by these sizes) requires.
fn check_tree_sizes(header: &Block<'_>, sections: &Sections<'_>) -> Result<(), ModelError> {
    let Some(entry) = header.get("tree_sizes") else {
        return Ok(());
    };
    let sizes: Vec<usize> =
        parse_list(entry, "tree_sizes", Some(sections.trees.len())).map_err(|e| ModelError {
            message: format!(
                "{} (the file holds {} trees)",
                e.message,
                sections.trees.len()
            ),
            ..e
        })?;
    let mut ends: Vec<usize> = sections.trees.iter().skip(1).map(|t| t.offset).collect();
    ends.push(sections.trees_end_offset);
    for (i, (tree, end)) in sections.trees.iter().zip(ends).enumerate() {
        if tree.offset.checked_add(sizes[i]) != Some(end) {
            return Err(ModelError::new(format!(
                "tree_sizes gives tree {i} {} bytes, but it spans {} in the file",
                sizes[i],
                end - tree.offset
            ))
            .with_key("tree_sizes")
            .at_line(entry.line));
        }
    }
    Ok(())
}

/// A code as the value the trees read; no code is missing.
fn code_value(code: Option<u32>) -> f64 {
    code.map_or(f64::NAN, f64::from)
}

/// Refuses a name given to two features: a row given by name would be ambiguous.
fn check_unique_names(names: &[String], entry: &Entry<'_>) -> Result<(), ModelError> {
    let mut first = HashMap::with_capacity(names.len());
    for (i, name) in names.iter().enumerate() {
        if let Some(j) = first.insert(name.as_str(), i) {
            return Err(ModelError::new(format!(
                "feature `{}` is named twice (features {j} and {i})",
                shorten(name)
            ))
            .with_key("feature_names")
            .at_line(entry.line));
        }
    }
    Ok(())
}

/// The trees must make whole iterations of `num_outputs`, and there must be at least as
/// many trees as outputs (a model with more classes than trees is not one LightGBM
/// writes, and its outputs would only size buffers).
fn check_iterations(
    num_trees: usize,
    num_outputs: usize,
    sections: &Sections<'_>,
) -> Result<(), ModelError> {
    let message = if !num_trees.is_multiple_of(num_outputs) {
        format!("{num_trees} trees do not divide into iterations of {num_outputs}")
    } else if num_outputs > num_trees.max(1) {
        format!("{num_outputs} outputs, but only {num_trees} trees")
    } else {
        return Ok(());
    };
    let line = sections
        .header
        .get("num_class")
        .map_or(sections.header_end_line, |e| e.line);
    Err(ModelError::new(message).with_key("num_class").at_line(line))
}
