//! One model version in service: its bundle, and what requests need precomputed for it
//! (the feature tables, the learned costs). Which versions serve is `models`' business.

use std::time::SystemTime;

use super::budget::Costs;
use super::features::FeatureIndex;
use crate::bundle::Bundle;

/// One model version in service, with what requests need precomputed.
#[derive(Debug)]
pub struct Serving {
    pub version: u64,
    pub bundle: Bundle,
    pub loaded_at: SystemTime,
    pub(super) features: FeatureIndex,
    /// What each model costs here, learned while this version serves.
    pub(super) costs: Costs,
}

impl Serving {
    pub fn new(version: u64, bundle: Bundle) -> Self {
        let features = FeatureIndex::new(&bundle);
        let costs = Costs::new(bundle.models.len());
        Self {
            version,
            bundle,
            loaded_at: SystemTime::now(),
            features,
            costs,
        }
    }
}
