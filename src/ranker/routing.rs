//! The versions in service under the rollout policy (DESIGN.md §9) as one snapshot: the
//! main version, the canary with its share of routing-key buckets, the shadow with its
//! sample rate — and which of them answers a request. What the policy says and how the
//! versions are loaded is `models`'; shadow ranking is `shadow`'s.

use std::hash::{BuildHasher, RandomState};
use std::sync::Arc;

use super::serving::Serving;
use crate::policy::{bucket, BUCKETS};

/// The loaded versions a request may meet, swapped in whole by a reload.
#[derive(Debug)]
pub struct Routing {
    pub main: Arc<Serving>,
    /// The canary version and how many of the [`BUCKETS`] it answers.
    pub canary: Option<(Arc<Serving>, u32)>,
    /// The shadow version and the share of requests it also ranks.
    pub shadow: Option<(Arc<Serving>, f64)>,
}

impl Routing {
    /// Only the main version.
    pub fn main_only(main: Arc<Serving>) -> Self {
        Self {
            main,
            canary: None,
            shadow: None,
        }
    }

    /// The version that answers a request with this key (its `routing_key`, else its
    /// `request_id`; `None`: a random draw), and whether it is the canary.
    pub fn answerer(&self, key: Option<&str>) -> (&Arc<Serving>, bool) {
        match &self.canary {
            Some((canary, buckets)) if draw(key) < *buckets => (canary, true),
            _ => (&self.main, false),
        }
    }

    /// Whether this request is also ranked by the shadow version, and by which.
    pub fn shadow_for(&self) -> Option<&Arc<Serving>> {
        let (shadow, sample) = self.shadow.as_ref()?;
        let u = (RandomState::new().hash_one(0u8) >> 11) as f64 / (1u64 << 53) as f64;
        (u < *sample).then_some(shadow)
    }

    /// Every version resident here.
    pub fn resident(&self) -> impl Iterator<Item = &Arc<Serving>> {
        std::iter::once(&self.main)
            .chain(self.canary.as_ref().map(|(s, _)| s))
            .chain(self.shadow.as_ref().map(|(s, _)| s))
    }
}

/// The bucket of `key`, or a random one.
fn draw(key: Option<&str>) -> u32 {
    match key {
        Some(key) => bucket(key),
        None => (RandomState::new().hash_one(0u8) % u64::from(BUCKETS)) as u32,
    }
}
