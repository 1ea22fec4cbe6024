//! The model engine: loads LightGBM text models (`Booster.save_model`) and scores rows
//! exactly as LightGBM's `Booster.predict` does. It knows nothing of HTTP or bundles.
//!
//! - `text` cuts a file into sections; `tree` holds the validated flat trees and walks them;
//!   `objective` is the output transform; `model` ties them into [`Model`];
//!   `matrix` is the input layout, [`FeatureMatrix`].

mod error;
mod isa;
mod matrix;
mod model;
mod objective;
mod scorer;
mod text;
mod tree;

pub use error::ModelError;
pub use isa::Isa;
pub use matrix::{normalize, FeatureMatrix, ZERO_THRESHOLD};
pub use model::Model;
