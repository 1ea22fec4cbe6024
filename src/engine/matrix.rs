//! Row-major feature values in a model's column order, normalized on entry the way
//! LightGBM's dense-row predictor sees them.

/// LightGBM's `kZeroThreshold` (the float `1e-35f`, widened): dense inputs whose magnitude
/// is at most this are stored as 0 before any tree sees them.
pub const ZERO_THRESHOLD: f64 = 1e-35_f32 as f64;

/// LightGBM's view of one input value: NaN stays NaN (missing); `|x| <= 1e-35f` becomes 0.
#[inline]
pub fn normalize(x: f64) -> f64 {
    if x.abs() <= ZERO_THRESHOLD {
        0.0
    } else {
        x
    }
}

/// Rows of feature values, `num_features` per row, all normalized with [`normalize`].
#[derive(Debug, Clone, PartialEq)]
pub struct FeatureMatrix {
    values: Vec<f64>,
    num_features: usize,
}

impl FeatureMatrix {
    /// `num_rows` rows with every value missing.
    pub fn missing(num_rows: usize, num_features: usize) -> Self {
        Self {
            values: vec![f64::NAN; num_rows * num_features],
            num_features,
        }
    }

    /// Wraps row-major values (`values.len()` must be a multiple of `num_features`).
    pub fn from_rows(mut values: Vec<f64>, num_features: usize) -> Self {
        assert!(
            num_features == 0 && values.is_empty()
                || num_features > 0 && values.len().is_multiple_of(num_features),
            "{} values do not make rows of {num_features}",
            values.len()
        );
        values.iter_mut().for_each(|x| *x = normalize(*x));
        Self {
            values,
            num_features,
        }
    }

    pub fn num_rows(&self) -> usize {
        self.values
            .len()
            .checked_div(self.num_features)
            .unwrap_or(0)
    }

    pub fn num_features(&self) -> usize {
        self.num_features
    }

    #[inline]
    pub fn set(&mut self, row: usize, feature: usize, value: f64) {
        self.values[row * self.num_features + feature] = normalize(value);
    }

    /// Overwrites row `row` with `values` (one per feature).
    #[inline]
    pub fn set_row(&mut self, row: usize, values: &[f64]) {
        let n = self.num_features;
        for (slot, &x) in self.values[row * n..(row + 1) * n].iter_mut().zip(values) {
            *slot = normalize(x);
        }
    }

    #[inline]
    pub fn row(&self, row: usize) -> &[f64] {
        &self.values[row * self.num_features..(row + 1) * self.num_features]
    }

    /// Appends the rows of `other`, which has the same number of features.
    pub fn append(&mut self, other: &FeatureMatrix) {
        debug_assert_eq!(self.num_features, other.num_features);
        self.values.extend_from_slice(&other.values);
    }

    /// Rows `range` as a matrix of their own (copies).
    pub fn rows(&self, range: std::ops::Range<usize>) -> Self {
        Self {
            values: self.values[range.start * self.num_features..range.end * self.num_features]
                .to_vec(),
            num_features: self.num_features,
        }
    }
}
