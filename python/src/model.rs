//! `giftrank._native.Model`: one LightGBM text model, scored by the service's engine on a
//! numpy matrix (columns in model order, values as given, like `Booster.predict` on an
//! array) or on a table's columns by name (the CLI's value rules: pandas categories mapped
//! through the model's category lists). Scoring releases the GIL and splits the rows over
//! `n_jobs` threads with `eval::scoring`, the CLI's parallel path.

use std::path::PathBuf;

use numpy::{IntoPyArray, PyArray1, PyReadonlyArray2};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyList;

use giftrank::data::Wanted;
use giftrank::engine::{FeatureMatrix, Model};
use giftrank::eval::scoring::{score_rows_as, Output};

use crate::{columns, errors};

#[pyclass(name = "Model", module = "giftrank._native", frozen)]
#[derive(Debug)]
pub struct PyModel {
    model: Model,
}

#[pymethods]
impl PyModel {
    #[new]
    fn new(path: PathBuf) -> PyResult<Self> {
        let model = Model::from_file(&path)
            .map_err(|e| PyValueError::new_err(format!("invalid model {}: {e}", path.display())))?;
        Ok(Self { model })
    }

    #[getter]
    fn feature_names(&self) -> Vec<String> {
        self.model.feature_names().to_vec()
    }

    #[getter]
    fn objective(&self) -> &str {
        self.model.objective()
    }

    #[getter]
    fn num_trees(&self) -> usize {
        self.model.num_trees()
    }

    #[getter]
    fn num_outputs(&self) -> usize {
        self.model.num_outputs()
    }

    /// Scores of a C-contiguous float64 matrix with one column per feature.
    fn predict_array<'py>(
        &self,
        py: Python<'py>,
        x: PyReadonlyArray2<'py, f64>,
        raw_score: bool,
        n_jobs: usize,
    ) -> PyResult<Bound<'py, PyArray1<f64>>> {
        let view = x.as_array();
        let (rows, width) = view.dim();
        let features = self.model.num_features();
        if width != features {
            return Err(PyValueError::new_err(format!(
                "X has {width} columns, but the model has {features} features ({})",
                self.model.feature_names().join(", ")
            )));
        }
        let values: Vec<f64> = match x.as_slice() {
            Ok(values) => values.to_vec(),
            Err(_) => view.iter().copied().collect(),
        };
        debug_assert_eq!(values.len(), rows * features);
        let matrix = FeatureMatrix::from_rows(values, features);
        Ok(self.score(py, &matrix, raw_score, n_jobs).into_pyarray(py))
    }

    /// Scores of a table's columns by name; also the features no column provides.
    fn predict_columns<'py>(
        &self,
        py: Python<'py>,
        rows: usize,
        columns: Bound<'py, PyList>,
        raw_score: bool,
        n_jobs: usize,
    ) -> PyResult<(Bound<'py, PyArray1<f64>>, Vec<String>)> {
        let models = [&self.model];
        let (matrix, absent) = columns::with_frame(rows, &columns, |frame| {
            let absent = frame.absent_features(&models).map_err(errors::problem)?;
            let wanted = Wanted {
                models: &models,
                numeric: &[],
                group: None,
            };
            let mut block = frame.block(&wanted).map_err(errors::problem)?;
            Ok((block.matrices.remove(0), absent.concat()))
        })?;
        let scores = self.score(py, &matrix, raw_score, n_jobs);
        Ok((scores.into_pyarray(py), absent))
    }
}

impl PyModel {
    /// The model's scores of every row, `num_outputs` per row, without the GIL.
    fn score(
        &self,
        py: Python<'_>,
        rows: &FeatureMatrix,
        raw_score: bool,
        n_jobs: usize,
    ) -> Vec<f64> {
        let output = if raw_score {
            Output::Raw
        } else {
            Output::Scores
        };
        let threads = (n_jobs > 0).then_some(n_jobs);
        py.detach(|| score_rows_as(&self.model, rows, threads, output))
    }
}
