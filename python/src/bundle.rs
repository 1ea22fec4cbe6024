//! `giftrank._native.Bundle`: one bundle directory, loaded and validated as the service
//! loads a version (canary included). `rank` ranks a table's rows, per group, through
//! `ranker::table::rank_rows` — the service's pipeline, so the order and the scores are
//! `/rank`'s; `evaluate` scores the rows with the models `eval::bundle::Scoring` names and
//! measures them with `eval::bundle::measure`, `giftrank eval`'s own code, returning its
//! JSON. Both release the GIL while they score.

use std::collections::HashMap;
use std::path::PathBuf;

use numpy::{IntoPyArray, PyReadonlyArray1};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};

use giftrank::bundle::{Bundle, Profile};
use giftrank::data::Wanted;
use giftrank::eval::bundle::{measure, Scoring};
use giftrank::eval::groups::Groups;
use giftrank::eval::metrics::describe_label;
use giftrank::eval::{collect, parse_alpha_list, parse_m_list, report};
use giftrank::ranker::table::{rank_rows, TableOptions};
use giftrank::ranker::Serving;

use crate::{columns, errors};

#[pyclass(name = "Bundle", module = "giftrank._native", frozen)]
#[derive(Debug)]
pub struct PyBundle {
    serving: Serving,
}

/// One table's ranking, column by column (one entry per ranked row).
#[derive(Debug, Default)]
struct Ranking {
    group: Vec<i64>,
    row: Vec<i64>,
    rank: Vec<i64>,
    score: Vec<f64>,
    direct_score: Vec<f64>,
    stage2_score: Vec<f64>,
    reranked: Vec<bool>,
    m: Vec<i64>,
    profile: String,
}

#[pymethods]
impl PyBundle {
    #[new]
    fn new(path: PathBuf) -> PyResult<Self> {
        let bundle = Bundle::load(&path)
            .map_err(|e| errors::value(Context(format!("bundle {}", path.display()), e)))?;
        // A directory named by a number is a repository version; messages say which.
        let version = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        Ok(Self {
            serving: Serving::new(version, bundle),
        })
    }

    #[getter]
    fn default_profile(&self) -> &str {
        &self.serving.bundle.default_profile().name
    }

    #[getter]
    fn model_names(&self) -> Vec<String> {
        self.serving
            .bundle
            .models
            .iter()
            .map(|m| m.name.clone())
            .collect()
    }

    /// Every feature some model of the bundle reads, each once, in model order.
    #[getter]
    fn feature_names(&self) -> Vec<String> {
        let mut names: Vec<String> = Vec::new();
        for named in &self.serving.bundle.models {
            for name in named.model.feature_names() {
                if !names.contains(name) {
                    names.push(name.clone());
                }
            }
        }
        names
    }

    /// Every profile in declaration order, as dictionaries.
    #[getter]
    fn profiles<'py>(&self, py: Python<'py>) -> PyResult<Vec<Bound<'py, PyDict>>> {
        self.serving
            .bundle
            .profiles
            .iter()
            .map(|p| self.profile_dict(py, p))
            .collect()
    }

    #[allow(clippy::too_many_arguments)]
    #[pyo3(signature = (rows, columns, groups, group_count, profile, m, alpha))]
    fn rank<'py>(
        &self,
        py: Python<'py>,
        rows: usize,
        columns: Bound<'py, PyList>,
        groups: Option<PyReadonlyArray1<'py, i64>>,
        group_count: usize,
        profile: Option<String>,
        m: Option<i64>,
        alpha: Option<f64>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let m = match m {
            Some(m) if m < 1 => {
                return Err(PyValueError::new_err(format!("m: {m} must be at least 1")))
            }
            m => m.map(|m| m as u64),
        };
        let options = TableOptions {
            profile: profile.as_deref(),
            m,
            alpha,
        };
        let (ids, count) = match &groups {
            Some(codes) => (columns::group_ids(codes, group_count, rows)?, group_count),
            None => (vec![0; rows], usize::from(rows > 0)),
        };
        let ranking = columns::with_frame(rows, &columns, |frame| {
            py.detach(|| self.rank_groups(frame, &ids, count, &options))
        })?;
        let out = PyDict::new(py);
        out.set_item("group", ranking.group.into_pyarray(py))?;
        out.set_item("row", ranking.row.into_pyarray(py))?;
        out.set_item("rank", ranking.rank.into_pyarray(py))?;
        out.set_item("score", ranking.score.into_pyarray(py))?;
        out.set_item("direct_score", ranking.direct_score.into_pyarray(py))?;
        out.set_item("stage2_score", ranking.stage2_score.into_pyarray(py))?;
        out.set_item("reranked", ranking.reranked.into_pyarray(py))?;
        out.set_item("m", ranking.m.into_pyarray(py))?;
        out.set_item("profile", ranking.profile)?;
        Ok(out)
    }

    #[allow(clippy::too_many_arguments)]
    #[pyo3(signature = (rows, columns, label, groups, group_count, group_name, m, alpha))]
    fn evaluate<'py>(
        &self,
        py: Python<'py>,
        rows: usize,
        columns: Bound<'py, PyList>,
        label: String,
        groups: Option<PyReadonlyArray1<'py, i64>>,
        group_count: usize,
        group_name: Option<String>,
        m: String,
        alpha: Option<String>,
    ) -> PyResult<(String, Vec<String>)> {
        let ms = parse_m_list(&m).map_err(errors::value)?;
        let alphas = match &alpha {
            Some(text) => parse_alpha_list(text).map_err(errors::value)?,
            None => Vec::new(),
        };
        let ids = match &groups {
            Some(codes) => columns::group_ids(codes, group_count, rows)?,
            None => Vec::new(),
        };
        let bundle = &self.serving.bundle;
        let scoring = Scoring::new(bundle);
        let readers = scoring.readers(bundle);
        let scorers = scoring.scorers(bundle);
        columns::with_frame(rows, &columns, |frame| {
            let absent = frame.absent_features(&readers).map_err(errors::problem)?;
            let wanted = Wanted {
                models: &readers,
                numeric: &[label.as_str()],
                group: None,
            };
            let mut block = frame.block(&wanted).map_err(errors::problem)?;
            block.groups = ids;
            if rows == 0 {
                return Err(PyValueError::new_err("no rows: nothing to evaluate"));
            }
            let json = py.detach(|| {
                let collected =
                    collect::from_block(&block, &scorers, group_count).map_err(|(at, value)| {
                        PyValueError::new_err(format!(
                            "label column `{label}`, {at}: the label is {}",
                            describe_label(value)
                        ))
                    })?;
                let evaluation = measure(bundle, &collected, group_name.as_deref(), &ms, &alphas)
                    .map_err(errors::value)?;
                Ok::<_, PyErr>(report::json(&evaluation))
            })?;
            let mut names: Vec<String> = absent.concat();
            names.dedup();
            let mut seen = std::collections::HashSet::new();
            names.retain(|n| seen.insert(n.clone()));
            Ok((json, names))
        })
    }
}

impl PyBundle {
    fn profile_dict<'py>(&self, py: Python<'py>, p: &Profile) -> PyResult<Bound<'py, PyDict>> {
        let name = |i: usize| self.serving.bundle.models[i].name.clone();
        let out = PyDict::new(py);
        out.set_item("name", &p.name)?;
        out.set_item("score", name(p.score))?;
        let recall: Vec<HashMap<&str, Py<PyAny>>> = p
            .recall
            .iter()
            .map(|s| {
                Ok(HashMap::from([
                    (
                        "model",
                        name(s.model).into_pyobject(py)?.into_any().unbind(),
                    ),
                    ("m", s.m.into_pyobject(py)?.into_any().unbind()),
                ]))
            })
            .collect::<PyResult<_>>()?;
        out.set_item("recall", recall)?;
        out.set_item("rerank", p.rerank.map(name))?;
        out.set_item("alpha", p.rerank.map(|_| p.alpha))?;
        out.set_item("max_m", (!p.recall.is_empty()).then_some(p.max_m))?;
        Ok(out)
    }

    /// Every group of the table ranked on its own, groups in number order.
    fn rank_groups(
        &self,
        frame: &giftrank::data::Frame<'_>,
        ids: &[u32],
        count: usize,
        options: &TableOptions<'_>,
    ) -> PyResult<Ranking> {
        let groups = Groups::new(ids, count).map_err(errors::value)?;
        let mut out = Ranking {
            profile: options
                .profile
                .unwrap_or(&self.serving.bundle.default_profile().name)
                .to_owned(),
            ..Ranking::default()
        };
        for g in 0..groups.len() {
            let rows: Vec<usize> = groups.rows(g).iter().map(|&r| r as usize).collect();
            let ranked = rank_rows(&self.serving, frame, &rows, options).map_err(errors::rank)?;
            out.profile = ranked.profile;
            for (position, item) in ranked.items.iter().enumerate() {
                out.group.push(g as i64);
                out.row.push(rows[item.index] as i64);
                out.rank.push(position as i64);
                out.score.push(item.score);
                out.direct_score.push(item.direct_score);
                out.stage2_score.push(item.stage2_score.unwrap_or(f64::NAN));
                out.reranked.push(item.stage2_score.is_some());
                out.m.push(ranked.m as i64);
            }
        }
        Ok(out)
    }
}

/// An error with what was being done when it happened.
#[derive(Debug)]
struct Context<E>(String, E);

impl<E: std::error::Error> std::fmt::Display for Context<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.0, self.1)
    }
}

impl<E: std::error::Error> std::error::Error for Context<E> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.1.source()
    }
}
