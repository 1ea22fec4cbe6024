//! From a decoded request to the feature matrix of any model of the bundle: names are resolved
//! to model columns once per request (dense form) or through a cache keyed on the previous
//! candidate's key order (sparse form), so the per-value work is a string comparison, not
//! a hash lookup. Candidate values win over `context`; `null` and absent are missing.
//!
//! # Measured (`cargo bench --bench rank -- assemble`, 2-core Intel Xeon with AVX-512)
//! Checking and assembling the Direct matrix of the example request: 80 µs for 1,000
//! candidates and 480 µs for 5,000 when every sparse name was resolved twice (once to
//! check labels, once to fill the matrix); 53 µs and 424 µs now that only labels are
//! resolved while checking and ids go in a hashbrown set instead of SipHash's. The growth
//! from 1,000 to 5,000 (8×) is the memory, not the work: a decoded sparse candidate takes
//! about 1 KB (a name and a value are 56 bytes a feature), so 5,000 of them (5 MB) no
//! longer fit a core's 2 MB L2, and a profile shows the same functions in the same shares
//! at both sizes, each slower.

use std::borrow::Cow;
use std::collections::HashMap;

use super::error::RankError;
use super::request::{Candidate, FeatureValue, RankRequest};
use crate::bundle::Bundle;
use crate::engine::{FeatureMatrix, Model};

/// A feature name known to some model of the serving bundle: an index into the
/// [`FeatureIndex`]'s per-model column tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Slot(u32);

/// Feature name → slot, and slot → column in each model of the bundle, built once when a
/// bundle starts serving. Per value, the ranking pays an array index, not a hash lookup.
#[derive(Debug, Default)]
pub struct FeatureIndex {
    slots: HashMap<String, Slot>,
    /// Per model, per slot: its column in that model.
    columns: Vec<Vec<Option<u32>>>,
    /// Per slot: category labels are accepted (some model has pandas categories for this
    /// feature, and every model that uses it does).
    accepts_labels: Vec<bool>,
    /// Per model: the first model of the bundle that reads the same columns the same way
    /// (same feature names in the same order, same category lists), so that one matrix
    /// serves both.
    layouts: Vec<usize>,
}

impl FeatureIndex {
    pub fn new(bundle: &Bundle) -> Self {
        let mut slots: HashMap<String, Slot> = HashMap::new();
        let mut accepts_labels: Vec<bool> = Vec::new();
        for named in &bundle.models {
            for (column, name) in named.model.feature_names().iter().enumerate() {
                let next = Slot(slots.len() as u32);
                let slot = *slots.entry(name.clone()).or_insert(next);
                if slot == next {
                    accepts_labels.push(true);
                }
                accepts_labels[slot.0 as usize] &= named.model.categories(column).is_some();
            }
        }
        let columns = bundle
            .models
            .iter()
            .map(|named| {
                let mut table = vec![None; slots.len()];
                for (column, name) in named.model.feature_names().iter().enumerate() {
                    table[slots[name].0 as usize] = Some(column as u32);
                }
                table
            })
            .collect();
        let models: Vec<&Model> = bundle.models.iter().map(|m| &m.model).collect();
        let layouts = models
            .iter()
            .map(|model| {
                models
                    .iter()
                    .position(|other| other.same_inputs_as(model))
                    .unwrap_or(0)
            })
            .collect();
        Self {
            slots,
            columns,
            accepts_labels,
            layouts,
        }
    }

    /// The input layout of model `model`: models with the same layout take the same
    /// feature matrix.
    pub fn layout(&self, model: usize) -> usize {
        self.layouts[model]
    }

    pub(super) fn get(&self, name: &str) -> Option<Slot> {
        self.slots.get(name).copied()
    }

    pub(super) fn accepts_labels(&self, slot: Slot) -> bool {
        self.accepts_labels[slot.0 as usize]
    }

    /// The column of `slot` in model `model` (its index in the bundle).
    #[inline]
    fn column(&self, model: usize, slot: Slot) -> Option<usize> {
        self.columns[model][slot.0 as usize].map(|c| c as usize)
    }
}

/// A request checked against the serving bundle, ready to fill matrices for either model.
#[derive(Debug)]
pub struct Batch<'r> {
    request: &'r RankRequest<'r>,
    index: &'r FeatureIndex,
    /// Dense form: the slot of each `feature_names` entry.
    dense: Option<Vec<Option<Slot>>>,
    /// `context` values, resolved.
    context: Vec<(Slot, &'r FeatureValue<'r>)>,
}

impl<'r> Batch<'r> {
    /// Checks the request's shape (one form, lengths, ids, labels) and resolves its names.
    pub fn new(request: &'r RankRequest<'r>, index: &'r FeatureIndex) -> Result<Self, RankError> {
        let dense = request
            .feature_names
            .as_ref()
            .map(|names| names.iter().map(|n| index.get(n)).collect::<Vec<_>>());
        if let Some(names) = &request.feature_names {
            check_unique(names)?;
        }
        let mut context = Vec::new();
        if let Some(features) = &request.context {
            for (name, value) in &features.0 {
                match index.get(name) {
                    Some(slot) => {
                        check_label(index, Some(slot), value, || format!("context.{name}"))?;
                        context.push((slot, value));
                    }
                    None => check_label(index, None, value, || format!("context.{name}"))?,
                }
            }
        }
        let batch = Self {
            request,
            index,
            dense,
            context,
        };
        batch.check_candidates()?;
        Ok(batch)
    }

    fn check_candidates(&self) -> Result<(), RankError> {
        let mut ids = hashbrown::HashSet::with_capacity(self.request.candidates.len());
        let mut cache = KeyCache::default();
        for (i, candidate) in self.request.candidates.iter().enumerate() {
            if !ids.insert(candidate.id.as_ref()) {
                return Err(RankError::Invalid(format!(
                    "candidates[{i}].id: `{}` is a duplicate id",
                    candidate.id
                )));
            }
            match (&self.dense, &candidate.features, &candidate.values) {
                (Some(slots), None, Some(values)) => {
                    if values.len() != slots.len() {
                        return Err(RankError::Invalid(format!(
                            "candidates[{i}].values: {} values for {} feature_names",
                            values.len(),
                            slots.len()
                        )));
                    }
                    for (j, (slot, value)) in slots.iter().zip(values).enumerate() {
                        check_label(self.index, *slot, value, || format!("candidates[{i}].values[{j}]"))?;
                    }
                }
                (Some(_), _, None) => {
                    return Err(RankError::Invalid(format!(
                        "candidates[{i}].values: a dense request (with feature_names) needs `values` on every candidate"
                    )))
                }
                (Some(_), Some(_), Some(_)) => {
                    return Err(RankError::Invalid(format!(
                        "candidates[{i}].features: a dense request (with feature_names) takes `values`, not `features`"
                    )))
                }
                (None, _, Some(_)) => {
                    return Err(RankError::Invalid(format!(
                        "candidates[{i}].values: `values` needs a top-level `feature_names`"
                    )))
                }
                (None, features, None) => {
                    // Only a label can be refused, so only a label's name is resolved here.
                    for (j, (name, value)) in features.iter().flat_map(|f| f.0.iter()).enumerate() {
                        if matches!(value, FeatureValue::Label(_)) {
                            let slot = cache.slot(j, name, self.index);
                            check_label(self.index, slot, value, || {
                                format!("candidates[{i}].features.{name}")
                            })?;
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// The feature matrix of `model` (the bundle's model number `which`) for the
    /// candidates `rows`.
    pub fn matrix(&self, which: usize, model: &Model, rows: &[usize]) -> FeatureMatrix {
        let index = self.index;
        let mut base = vec![f64::NAN; model.num_features()];
        for (slot, value) in &self.context {
            if let Some(column) = index.column(which, *slot) {
                base[column] = number(model, column, value);
            }
        }
        let mut matrix = FeatureMatrix::missing(rows.len(), model.num_features());
        let mut cache = KeyCache::default();
        for (r, &c) in rows.iter().enumerate() {
            matrix.set_row(r, &base);
            let candidate: &Candidate<'_> = &self.request.candidates[c];
            match (&self.dense, &candidate.values, &candidate.features) {
                (Some(slots), Some(values), _) => {
                    for (slot, value) in slots.iter().zip(values) {
                        if let Some(column) = slot.and_then(|s| index.column(which, s)) {
                            matrix.set(r, column, number(model, column, value));
                        }
                    }
                }
                (_, _, Some(features)) => {
                    for (j, (name, value)) in features.0.iter().enumerate() {
                        if let Some(column) = cache
                            .slot(j, name, index)
                            .and_then(|s| index.column(which, s))
                        {
                            matrix.set(r, column, number(model, column, value));
                        }
                    }
                }
                _ => {}
            }
        }
        matrix
    }
}

/// A value as the model sees it. For a feature with a pandas category list, a number is
/// a category too, mapped through that list as pandas does (`3.0` is category 3; one not
/// in the list is missing), exactly as a label and as a CSV cell are; for any other
/// feature a number is itself (for a categorical one, the raw code). Labels were checked
/// by [`Batch::new`], so an unknown label here is an unseen category (missing).
fn number(model: &Model, column: usize, value: &FeatureValue<'_>) -> f64 {
    match value {
        FeatureValue::Number(x) => model.category_value_of_number(column, *x).unwrap_or(*x),
        FeatureValue::Missing => f64::NAN,
        FeatureValue::Label(label) => model.category_value(column, label).unwrap_or(f64::NAN),
    }
}

/// Every name of a dense request's `feature_names` once: a duplicate is refused, naming
/// both positions. One hash set pass, so a body of millions of names costs O(n).
fn check_unique(names: &[Cow<'_, str>]) -> Result<(), RankError> {
    let mut first_at: HashMap<&str, usize> = HashMap::with_capacity(names.len());
    for (j, name) in names.iter().enumerate() {
        if let Some(i) = first_at.insert(name, j) {
            return Err(RankError::Invalid(format!(
                "feature_names[{j}]: `{name}` appears twice (first at feature_names[{i}])"
            )));
        }
    }
    Ok(())
}

fn check_label(
    index: &FeatureIndex,
    slot: Option<Slot>,
    value: &FeatureValue<'_>,
    field: impl FnOnce() -> String,
) -> Result<(), RankError> {
    match value {
        FeatureValue::Label(label) if !slot.is_some_and(|s| index.accepts_labels(s)) => Err(RankError::Invalid(format!(
            "{}: `{label}` is a string, but the feature is not categorical with category labels in the serving models",
            field()
        ))),
        _ => Ok(()),
    }
}

/// Remembers the slots of the previous candidate's keys by position: when candidates list
/// their features in the same order, each key costs one string comparison.
#[derive(Debug, Default)]
struct KeyCache<'r> {
    keys: Vec<(&'r str, Option<Slot>)>,
}

impl<'r> KeyCache<'r> {
    #[inline]
    fn slot(&mut self, position: usize, name: &'r str, index: &FeatureIndex) -> Option<Slot> {
        if let Some((key, slot)) = self.keys.get(position) {
            if *key == name {
                return *slot;
            }
        }
        let slot = index.get(name);
        if position < self.keys.len() {
            self.keys[position] = (name, slot);
        } else {
            self.keys.push((name, slot));
        }
        slot
    }
}
