//! A table handed over from Python (`giftrank/_frame.py` turns a DataFrame into a list of
//! `(kind, name, values[, categories])` tuples) as the library's `Frame`: numbers are
//! borrowed from their numpy arrays for as long as the frame is used, text and category
//! lists are copied. Groups come as numpy codes (pandas `factorize`, first appearance
//! first, as the CLI numbers them).

use std::borrow::Cow;

use numpy::PyReadonlyArray1;
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyList, PyTuple};

use giftrank::data::{Category, Column, Frame};

use crate::errors;

/// Runs `f` on the table `columns` of `rows` rows.
pub fn with_frame<'py, R>(
    rows: usize,
    columns: &Bound<'py, PyList>,
    f: impl FnOnce(&Frame<'_>) -> PyResult<R>,
) -> PyResult<R> {
    let tuples: Vec<Bound<'py, PyTuple>> = columns
        .iter()
        .map(|c| c.cast_into::<PyTuple>().map_err(PyErr::from))
        .collect::<PyResult<_>>()?;
    let mut arrays: Vec<Option<PyReadonlyArray1<'py, f64>>> = Vec::with_capacity(tuples.len());
    for tuple in &tuples {
        let kind: String = tuple.get_item(0)?.extract()?;
        arrays.push(if kind == "numbers" {
            Some(tuple.get_item(2)?.extract()?)
        } else {
            None
        });
    }
    let mut frame = Frame::new(rows);
    for (tuple, array) in tuples.iter().zip(&arrays) {
        let kind: String = tuple.get_item(0)?.extract()?;
        let name: String = tuple.get_item(1)?.extract()?;
        let column = match (kind.as_str(), array) {
            ("numbers", Some(array)) => {
                let values = array.as_slice().map_err(|_| {
                    PyValueError::new_err(format!("column `{name}`: not a contiguous array"))
                })?;
                Column::Numbers(Cow::Borrowed(values))
            }
            ("labels", _) => Column::Labels(tuple.get_item(2)?.extract()?),
            ("categorical", _) => {
                let codes: PyReadonlyArray1<'py, i64> = tuple.get_item(2)?.extract()?;
                let categories = tuple
                    .get_item(3)?
                    .cast_into::<PyList>()?
                    .iter()
                    .map(|c| category(&name, &c))
                    .collect::<PyResult<Vec<_>>>()?;
                Column::Categorical {
                    codes: codes.as_array().to_vec(),
                    categories,
                }
            }
            (other, _) => {
                return Err(PyValueError::new_err(format!(
                    "column `{name}`: unknown column kind `{other}`"
                )))
            }
        };
        frame.push(&name, column).map_err(errors::problem)?;
    }
    f(&frame)
}

/// One category of a pandas categorical column: text or a number.
fn category(column: &str, value: &Bound<'_, PyAny>) -> PyResult<Category> {
    if let Ok(text) = value.extract::<String>() {
        return Ok(Category::Label(text));
    }
    if let Ok(x) = value.extract::<f64>() {
        return Ok(Category::Number(x));
    }
    Err(PyTypeError::new_err(format!(
        "column `{column}`: the category {} is neither text nor a number",
        value.repr()?
    )))
}

/// Group codes (one per row, each below `count`) as the library's group numbers.
pub fn group_ids(
    codes: &PyReadonlyArray1<'_, i64>,
    count: usize,
    rows: usize,
) -> PyResult<Vec<u32>> {
    let codes = codes.as_array();
    if codes.len() != rows {
        return Err(PyValueError::new_err(format!(
            "{} group codes for {rows} rows",
            codes.len()
        )));
    }
    codes
        .iter()
        .enumerate()
        .map(|(row, &g)| {
            u32::try_from(g)
                .ok()
                .filter(|&g| (g as usize) < count)
                .ok_or_else(|| {
                    PyValueError::new_err(format!(
                        "row {row}: the group is missing (every row needs a group)"
                    ))
                })
        })
        .collect()
}
