//! In-memory tables (a pandas DataFrame handed over by the Python package): named
//! columns turned into the same [`Block`] a file reader hands out, by the same value rules
//! (`plan`), so a table and a file holding the same cells give the same scores. Numbers
//! are borrowed, not copied, until they are laid out in a model's feature order.

use std::borrow::Cow;

use crate::engine::{FeatureMatrix, Model};

use super::error::Problem;
use super::plan::{feature_label, feature_number, Block, Plan, Wanted};

/// One category of a pandas categorical column.
#[derive(Debug, Clone, PartialEq)]
pub enum Category {
    Number(f64),
    Label(String),
}

/// The values of one column.
#[derive(Debug, Clone, PartialEq)]
pub enum Column<'a> {
    /// Numbers (booleans as 0 and 1); NaN is missing.
    Numbers(Cow<'a, [f64]>),
    /// Text, `None` missing: only for features trained as pandas categories.
    Labels(Vec<Option<String>>),
    /// A pandas categorical column: each row's code (-1 missing) into `categories`.
    Categorical {
        codes: Vec<i64>,
        categories: Vec<Category>,
    },
}

impl Column<'_> {
    fn len(&self) -> usize {
        match self {
            Column::Numbers(values) => values.len(),
            Column::Labels(labels) => labels.len(),
            Column::Categorical { codes, .. } => codes.len(),
        }
    }

    /// Whether the column holds text: labels, or categories some of which are labels.
    pub fn has_text(&self) -> bool {
        match self {
            Column::Numbers(_) => false,
            Column::Labels(_) => true,
            Column::Categorical { categories, .. } => {
                categories.iter().any(|c| matches!(c, Category::Label(_)))
            }
        }
    }

    /// What the column holds, for messages.
    fn kind(&self) -> &'static str {
        match self {
            Column::Numbers(_) => "numbers",
            Column::Labels(_) => "text",
            Column::Categorical { .. } => "categories",
        }
    }
}

/// A table of named columns of equal length.
#[derive(Debug, Clone, Default)]
pub struct Frame<'a> {
    names: Vec<String>,
    columns: Vec<Column<'a>>,
    rows: usize,
}

impl<'a> Frame<'a> {
    /// An empty table of `rows` rows.
    pub fn new(rows: usize) -> Self {
        Self {
            rows,
            ..Self::default()
        }
    }

    pub fn num_rows(&self) -> usize {
        self.rows
    }

    /// Every column with its name, in the order added.
    pub fn columns(&self) -> impl Iterator<Item = (&str, &Column<'a>)> {
        self.names.iter().map(String::as_str).zip(&self.columns)
    }

    /// Adds a column: it must have the table's row count and a name not yet used, and a
    /// categorical column's codes must point into its categories.
    pub fn push(&mut self, name: &str, column: Column<'a>) -> Result<(), Problem> {
        let refuse = |found: String, wanted: &str| Problem::ColumnType {
            column: name.to_owned(),
            found,
            wanted: wanted.to_owned(),
        };
        if column.len() != self.rows {
            return Err(refuse(
                format!("{} values", column.len()),
                &format!("every column must have the table's {} rows", self.rows),
            ));
        }
        if self.names.iter().any(|n| n == name) {
            return Err(refuse(
                "a second column of that name".into(),
                "column names must be unique",
            ));
        }
        if let Column::Categorical { codes, categories } = &column {
            if let Some(code) = codes
                .iter()
                .find(|&&c| c < -1 || c >= categories.len() as i64)
            {
                return Err(refuse(
                    format!("the code {code}"),
                    &format!(
                        "codes must be -1 (missing) or below its {} categories",
                        categories.len()
                    ),
                ));
            }
        }
        self.names.push(name.to_owned());
        self.columns.push(column);
        Ok(())
    }

    /// The rows as a [`Block`] for `wanted`: one feature matrix per model, by column name
    /// (a feature with no column is missing in every row), and the wanted numeric columns,
    /// which must hold numbers. A group column is not read here: the caller numbers the
    /// groups (`Block::groups`).
    pub fn block(&self, wanted: &Wanted<'_>) -> Result<Block, Problem> {
        let plan = Plan::new(
            &self.names,
            &Wanted {
                group: None,
                ..*wanted
            },
        )?;
        let matrices = wanted
            .models
            .iter()
            .zip(&plan.features)
            .map(|(model, layout)| self.matrix(model, layout))
            .collect::<Result<Vec<_>, _>>()?;
        let numeric = plan
            .numeric
            .iter()
            .map(|&c| match &self.columns[c] {
                Column::Numbers(values) => Ok(values.to_vec()),
                other => Err(Problem::ColumnType {
                    column: self.names[c].clone(),
                    found: other.kind().into(),
                    wanted: "this column must hold numbers".into(),
                }),
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Block {
            first_row: 0,
            rows: self.rows,
            matrices,
            numeric,
            groups: Vec::new(),
            lines: Vec::new(),
            progress: self.rows as u64,
        })
    }

    /// Per model of `models`, its features that no column provides.
    pub fn absent_features(&self, models: &[&Model]) -> Result<Vec<Vec<String>>, Problem> {
        let wanted = Wanted {
            models,
            numeric: &[],
            group: None,
        };
        Ok(Plan::new(&self.names, &wanted)?.absent_features(models))
    }

    /// `model`'s matrix, feature `f` read from column `layout[f]`.
    fn matrix(&self, model: &Model, layout: &[Option<usize>]) -> Result<FeatureMatrix, Problem> {
        let mut matrix = FeatureMatrix::missing(self.rows, model.num_features());
        for (feature, column) in layout.iter().enumerate() {
            let Some(c) = *column else { continue };
            let text_refused = || {
                Problem::ColumnType {
                column: self.names[c].clone(),
                found: self.columns[c].kind().into(),
                wanted: "text is read only for features trained as pandas categories, and this one was not".into(),
            }
            };
            match &self.columns[c] {
                Column::Numbers(values) => {
                    for (row, &x) in values.iter().enumerate() {
                        matrix.set(row, feature, feature_number(model, feature, x));
                    }
                }
                Column::Labels(labels) => {
                    if model.categories(feature).is_none() {
                        return Err(text_refused());
                    }
                    for (row, label) in labels.iter().enumerate() {
                        matrix.set(
                            row,
                            feature,
                            feature_label(model, feature, label.as_deref()),
                        );
                    }
                }
                Column::Categorical { codes, categories } => {
                    let values = categories
                        .iter()
                        .map(|category| match category {
                            Category::Number(x) => Ok(feature_number(model, feature, *x)),
                            Category::Label(_) if model.categories(feature).is_none() => {
                                Err(text_refused())
                            }
                            Category::Label(l) => Ok(feature_label(model, feature, Some(l))),
                        })
                        .collect::<Result<Vec<f64>, _>>()?;
                    for (row, &code) in codes.iter().enumerate() {
                        let value = usize::try_from(code).map_or(f64::NAN, |c| values[c]);
                        matrix.set(row, feature, value);
                    }
                }
            }
        }
        Ok(matrix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_by_name_absent_features_and_refusals() {
        // Features `x0, colour, x1, city, x2, x3`; colour and city are pandas categories.
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/engine/pandas_categorical/model.txt"
        );
        let model = Model::from_file(std::path::Path::new(path)).expect("model");
        let models = [&model];
        let mut frame = Frame::new(2);
        let numbers = |v: &[f64]| Column::Numbers(Cow::Owned(v.to_vec()));
        frame.push("x1", numbers(&[0.0, 1.0])).expect("x1");
        frame.push("y", numbers(&[3.0, 4.0])).expect("y");
        let codes = vec![1, -1];
        let categories = vec![
            Category::Label("nope".into()),
            Category::Label("black".into()),
        ];
        frame
            .push("colour", Column::Categorical { codes, categories })
            .expect("colour");
        let wanted = Wanted {
            models: &models,
            numeric: &["y"],
            group: None,
        };
        let block = frame.block(&wanted).expect("block");
        let black = model
            .category_value(1, "black")
            .expect("a category feature");
        assert_eq!(block.matrices[0].row(0)[1..3], [black, 0.0]);
        assert!(block.matrices[0].row(1)[1].is_nan(), "code -1 is missing");
        assert!(block.matrices[0].row(0)[0].is_nan(), "no column `x0`");
        assert_eq!(block.numeric, vec![vec![3.0, 4.0]]);
        let absent = frame.absent_features(&models).expect("plan");
        assert_eq!(absent, vec![vec!["x0", "city", "x2", "x3"]]);

        let short = frame.push("c", numbers(&[1.0]));
        assert!(short.expect_err("short").to_string().contains("column `c`"));
        let twice = frame.push("y", numbers(&[1.0, 2.0]));
        assert!(twice.expect_err("twice").to_string().contains("unique"));
        let bad_code = Column::Categorical {
            codes: vec![0, 5],
            categories: vec![Category::Number(1.0)],
        };
        assert!(frame.push("x2", bad_code).is_err());
        frame
            .push("x0", Column::Labels(vec![Some("a".into()), None]))
            .expect("x0");
        let text = frame.block(&wanted).expect_err("text for a plain feature");
        assert!(text.to_string().contains("column `x0`"), "{text}");
        let no_label = Wanted {
            numeric: &["colour"],
            ..wanted
        };
        assert!(
            frame.block(&no_label).is_err(),
            "a label column must hold numbers"
        );
    }
}
