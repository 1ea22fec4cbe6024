//! The Python package's native module, `giftrank._native`: the service's engine, profile
//! ranking and eval behind PyO3 classes. It only converts between Python and the library
//! (`columns` for tables, `errors` for exceptions); every score, order and metric comes
//! from the `giftrank` crate itself, so the package cannot drift from what is served. The
//! Python-facing API (DataFrame handling, docstrings) is `giftrank/__init__.py`.

mod bundle;
mod columns;
mod errors;
mod model;

use pyo3::prelude::*;

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<model::PyModel>()?;
    m.add_class::<bundle::PyBundle>()?;
    Ok(())
}
