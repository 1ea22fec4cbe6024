//! The pandas category lists of a model (its `pandas_categorical:` line) and the one rule
//! every input path uses to turn a value of such a feature into what the trees read.
//!
//! The rule is what LightGBM's Python package does to a DataFrame before predicting
//! (`set_categories` with the training categories): a value equal to a category gets that
//! category's code, its position in the list; any other value is missing (NaN). Text
//! categories match text; numeric categories match numbers by value (3.0 is category 3),
//! and also text that parses as such a number, since text is all a CSV cell has.

use std::collections::hash_map::Entry as MapEntry;
use std::collections::HashMap;

use super::error::ModelError;
use super::text::{shorten, Entry};

/// The categories of one pandas category column; a category's code is its position.
#[derive(Debug)]
pub(crate) struct Categories {
    /// Every category as text, by code (a number as the model file writes it).
    labels: Vec<String>,
    /// The code of each text category.
    by_text: HashMap<String, u32>,
    /// The code of each numeric category, keyed by [`number_key`].
    by_number: HashMap<u64, u32>,
}

impl Categories {
    /// The categories as text, by code.
    pub fn labels(&self) -> &[String] {
        &self.labels
    }

    /// The code of `label`: a text category equal to it, else a numeric category equal
    /// to the number it spells.
    pub fn code_of_label(&self, label: &str) -> Option<u32> {
        if let Some(&code) = self.by_text.get(label) {
            return Some(code);
        }
        if self.by_number.is_empty() {
            return None;
        }
        label
            .parse::<f64>()
            .ok()
            .and_then(|x| self.code_of_number(x))
    }

    /// The code of the numeric category equal to `x` (none for NaN, nor for text
    /// categories: pandas does not equate 3 with "3").
    pub fn code_of_number(&self, x: f64) -> Option<u32> {
        if x.is_nan() {
            return None;
        }
        self.by_number.get(&number_key(x)).copied()
    }

    /// Builds the list from the JSON values of one column, refusing a category given
    /// twice (pandas refuses such a list, so LightGBM could not predict with it).
    fn from_json(values: Vec<serde_json::Value>) -> Result<Self, String> {
        let mut labels = Vec::with_capacity(values.len());
        let mut by_text = HashMap::new();
        let mut by_number = HashMap::new();
        for value in values {
            let code = u32::try_from(labels.len())
                .map_err(|_| "more than 2^32 categories in one column".to_owned())?;
            let (label, inserted) = match value {
                serde_json::Value::Number(n) => {
                    let x = n.as_f64().ok_or("a category is not a finite number")?;
                    (
                        n.to_string(),
                        insert_code(&mut by_number, number_key(x), code),
                    )
                }
                serde_json::Value::String(s) => (s.clone(), insert_code(&mut by_text, s, code)),
                // Booleans and the like: matched by their JSON text.
                other => {
                    let text = other.to_string();
                    (text.clone(), insert_code(&mut by_text, text, code))
                }
            };
            inserted.map_err(|first| {
                format!(
                    "category `{}` is listed twice (codes {first} and {code})",
                    shorten(&label)
                )
            })?;
            labels.push(label);
        }
        Ok(Self {
            labels,
            by_text,
            by_number,
        })
    }
}

/// Inserts `code` under `key`, or returns the code already there.
fn insert_code<K: std::hash::Hash + Eq>(
    map: &mut HashMap<K, u32>,
    key: K,
    code: u32,
) -> Result<(), u32> {
    match map.entry(key) {
        MapEntry::Occupied(first) => Err(*first.get()),
        MapEntry::Vacant(slot) => {
            slot.insert(code);
            Ok(())
        }
    }
}

/// Equal numbers give equal keys (-0 and +0 are one category, as in pandas).
fn number_key(x: f64) -> u64 {
    (x + 0.0).to_bits()
}

/// Matches the `pandas_categorical` lists to the model's categorical features: one entry
/// per feature, `Some` for the features with a category list.
///
/// LightGBM's Python package stores one list per pandas `category` column, in column
/// order, and those columns are the model's categorical features: the
/// `[categorical_feature: …]` parameter when present, else the features whose
/// `feature_infos` list category values.
pub(crate) fn pandas_categories(
    entry: &Option<Entry<'_>>,
    parameters: &[Entry<'_>],
    feature_infos: &[&str],
) -> Result<Vec<Option<Categories>>, ModelError> {
    let mut categories: Vec<Option<Categories>> = feature_infos.iter().map(|_| None).collect();
    let Some(entry) = entry else {
        return Ok(categories);
    };
    let fail = |message: String| {
        ModelError::new(message)
            .with_key("pandas_categorical")
            .at_line(entry.line)
    };
    let lists: Option<Vec<Vec<serde_json::Value>>> =
        serde_json::from_str(entry.value).map_err(|e| fail(format!("not valid JSON: {e}")))?;
    let Some(lists) = lists else {
        return Ok(categories);
    };
    let features = categorical_features(parameters, feature_infos).map_err(fail)?;
    if features.len() != lists.len() || features.iter().any(|&f| f >= feature_infos.len()) {
        return Err(fail(format!(
            "{} category lists for {} categorical features",
            lists.len(),
            features.len()
        )));
    }
    for (feature, values) in features.into_iter().zip(lists) {
        let list = Categories::from_json(values)
            .map_err(|message| fail(format!("feature {feature}: {message}")))?;
        categories[feature] = Some(list);
    }
    Ok(categories)
}

/// The model's categorical features, in column order.
fn categorical_features(
    parameters: &[Entry<'_>],
    feature_infos: &[&str],
) -> Result<Vec<usize>, String> {
    let from_parameters = parameters.iter().find_map(|p| {
        p.value
            .strip_prefix("[categorical_feature: ")
            .and_then(|rest| rest.strip_suffix(']'))
    });
    match from_parameters {
        Some(list) if !list.trim().is_empty() => list
            .split(',')
            .map(|i| i.trim().parse::<usize>())
            .collect::<Result<_, _>>()
            .map_err(|_| format!("cannot read the categorical features `{}`", shorten(list))),
        _ => Ok(feature_infos
            .iter()
            .enumerate()
            .filter(|(_, info)| !info.starts_with('[') && **info != "none")
            .map(|(i, _)| i)
            .collect()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(json: &str) -> Result<Categories, String> {
        Categories::from_json(serde_json::from_str(json).expect("a JSON list"))
    }

    #[test]
    fn numeric_categories_match_numbers_by_value_and_text_spelling_them() {
        let categories = list("[3, 7.5, -0.0, 42]").expect("valid");
        assert_eq!(categories.labels(), ["3", "7.5", "-0.0", "42"]);
        for (x, code) in [(3.0, 0), (7.5, 1), (0.0, 2), (-0.0, 2), (42.0, 3)] {
            assert_eq!(categories.code_of_number(x), Some(code), "{x}");
        }
        for (text, code) in [("3", 0), ("3.0", 0), ("+3", 0), ("7.50", 1), ("0", 2)] {
            assert_eq!(categories.code_of_label(text), Some(code), "`{text}`");
        }
        for x in [f64::NAN, 3.5, 2.9999999999999996, f64::INFINITY] {
            assert_eq!(categories.code_of_number(x), None, "{x}");
        }
        for text in ["three", "", " 3", "NaN", "0x3"] {
            assert_eq!(categories.code_of_label(text), None, "`{text}`");
        }
    }

    #[test]
    fn text_categories_match_text_only() {
        let categories = list(r#"["3", "a", "New York"]"#).expect("valid");
        assert_eq!(categories.code_of_label("3"), Some(0));
        assert_eq!(categories.code_of_label("New York"), Some(2));
        assert_eq!(categories.code_of_label("3.0"), None);
        assert_eq!(categories.code_of_number(3.0), None);
    }

    #[test]
    fn a_category_listed_twice_is_refused() {
        for json in ["[3, 3.0]", "[0, -0.0]", r#"["a", "b", "a"]"#] {
            let error = list(json).expect_err("refused");
            assert!(error.contains("listed twice"), "{json}: {error}");
        }
        // The text "3" and the number 3 are different categories, in pandas too.
        assert!(list(r#"["3", 3]"#).is_ok());
    }
}
