//! The library's errors as Python exceptions, at this one edge: a value of the wrong type
//! (text where a number must be, a category list where none is known) is a `TypeError`,
//! anything else the caller gave wrong a `ValueError`; each message names the column or
//! field at fault, as the service's and the CLI's do.

use pyo3::exceptions::{PyRuntimeError, PyTypeError, PyValueError};
use pyo3::PyErr;

use giftrank::data::Problem;
use giftrank::ranker::RankError;

/// A table that cannot be read as asked.
pub fn problem(e: Problem) -> PyErr {
    match e {
        Problem::ColumnType { .. } => PyTypeError::new_err(e.to_string()),
        other => PyValueError::new_err(other.to_string()),
    }
}

/// A ranking refused as `/rank` would refuse it (a `400`); anything else is ours.
pub fn rank(e: RankError) -> PyErr {
    match e {
        RankError::Invalid(message) | RankError::TooLarge(message) => {
            PyValueError::new_err(message)
        }
        other => PyRuntimeError::new_err(format!("{} ({other:?})", other.code())),
    }
}

/// Any other error of the caller's making, with its whole chain of causes.
pub fn value(e: impl std::error::Error) -> PyErr {
    let mut message = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    PyValueError::new_err(message)
}
