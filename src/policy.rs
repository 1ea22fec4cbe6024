//! The rollout policy, `serving.toml` at the model repository's root (DESIGN.md §9): a
//! durable pin, a canary version with its share of routing keys, a shadow version with
//! its sample rate — parsed strictly, every error naming its key. Which versions then
//! serve is the ranking core's business (`ranker::models`, `ranker::routing`).

use std::path::Path;

use serde::Deserialize;

/// The policy's file name, at the repository's root.
pub const POLICY_FILE: &str = "serving.toml";

/// Canary shares are counted in this many buckets of routing keys (0.01% each).
pub const BUCKETS: u32 = 10_000;

/// A parsed `serving.toml`. The default (no file) pins nothing and routes everything to
/// the main version.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Policy {
    /// Serve this version instead of the highest valid one.
    pub pin: Option<u64>,
    pub canary: Option<Canary>,
    pub shadow: Option<Shadow>,
}

/// `[canary]`: the version that answers `percent` of routing keys.
#[derive(Debug, Clone, PartialEq)]
pub struct Canary {
    pub version: u64,
    /// In [0, 100].
    pub percent: f64,
}

impl Canary {
    /// How many of the [`BUCKETS`] go to the canary.
    pub fn buckets(&self) -> u32 {
        (self.percent * f64::from(BUCKETS) / 100.0).round() as u32
    }
}

/// `[shadow]`: the version that also ranks `sample` of the requests, off the response path.
#[derive(Debug, Clone, PartialEq)]
pub struct Shadow {
    pub version: u64,
    /// In [0, 1].
    pub sample: f64,
}

/// A `serving.toml` that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{POLICY_FILE}: {0}")]
pub struct PolicyError(pub String);

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    pin: Option<VersionName>,
    canary: Option<CanaryTable>,
    shadow: Option<ShadowTable>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CanaryTable {
    version: VersionName,
    percent: f64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ShadowTable {
    version: VersionName,
    sample: f64,
}

/// A version as written: `"7"` (as DESIGN.md spells it) or `7`.
#[derive(Deserialize)]
#[serde(untagged)]
enum VersionName {
    Number(i64),
    Text(String),
}

impl VersionName {
    fn resolve(self, key: &str) -> Result<u64, PolicyError> {
        let bad = |shown: String| {
            PolicyError(format!(
                "{key} = {shown} is not a version (a canonical decimal number such as \"7\")"
            ))
        };
        match self {
            VersionName::Number(n) => u64::try_from(n).map_err(|_| bad(n.to_string())),
            VersionName::Text(text) => match text.parse::<u64>() {
                Ok(v) if v.to_string() == text => Ok(v),
                _ => Err(bad(format!("{text:?}"))),
            },
        }
    }
}

impl Policy {
    /// Parses the text of a `serving.toml`.
    pub fn parse(text: &str) -> Result<Self, PolicyError> {
        let file: File = toml::from_str(text).map_err(|e| PolicyError(one_line(&e)))?;
        let pin = file.pin.map(|v| v.resolve("pin")).transpose()?;
        let canary = match file.canary {
            None => None,
            Some(t) => Some(Canary {
                version: t.version.resolve("canary.version")?,
                percent: within(t.percent, 100.0, "canary.percent")?,
            }),
        };
        let shadow = match file.shadow {
            None => None,
            Some(t) => Some(Shadow {
                version: t.version.resolve("shadow.version")?,
                sample: within(t.sample, 1.0, "shadow.sample")?,
            }),
        };
        Ok(Self {
            pin,
            canary,
            shadow,
        })
    }

    /// Reads the policy of the repository at `root`: `Ok(None)` when it has no
    /// `serving.toml`.
    pub fn read(root: &Path) -> Result<Option<Self>, PolicyError> {
        let path = root.join(POLICY_FILE);
        match std::fs::read_to_string(&path) {
            Ok(text) => Self::parse(&text).map(Some),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(PolicyError(format!("cannot read it: {e}"))),
        }
    }

    /// Every version the policy names, each once.
    pub fn versions(&self) -> Vec<u64> {
        let mut named: Vec<u64> = self
            .pin
            .into_iter()
            .chain(self.canary.as_ref().map(|c| c.version))
            .chain(self.shadow.as_ref().map(|s| s.version))
            .collect();
        named.sort_unstable();
        named.dedup();
        named
    }
}

/// `value` when it lies in [0, `max`], else the error naming `key`.
fn within(value: f64, max: f64, key: &str) -> Result<f64, PolicyError> {
    if (0.0..=max).contains(&value) {
        Ok(value)
    } else {
        Err(PolicyError(format!(
            "{key} = {value} is outside 0 to {max}"
        )))
    }
}

/// A TOML error on one line: its message with the line and column it points at.
fn one_line(error: &toml::de::Error) -> String {
    error
        .to_string()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(str::trim)
        .collect::<Vec<_>>()
        .join(" ")
}

/// The canary bucket of a routing key: FNV-1a (64-bit) of its UTF-8 bytes, modulo
/// [`BUCKETS`]. Fixed here forever, so that every replica, release and restart agrees.
pub fn bucket(key: &str) -> u32 {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let hash = key
        .bytes()
        .fold(OFFSET, |h, b| (h ^ u64::from(b)).wrapping_mul(PRIME));
    (hash % u64::from(BUCKETS)) as u32
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn the_documented_example_parses() {
        let policy = Policy::parse(
            "pin = \"5\"\n[canary]\nversion = \"7\"\npercent = 10\n[shadow]\nversion = \"8\"\nsample = 0.25\n",
        )
        .expect("valid");
        assert_eq!(policy.pin, Some(5));
        assert_eq!(
            policy.canary,
            Some(Canary {
                version: 7,
                percent: 10.0
            })
        );
        assert_eq!(policy.canary.as_ref().map(Canary::buckets), Some(1_000));
        assert_eq!(
            policy.shadow,
            Some(Shadow {
                version: 8,
                sample: 0.25
            })
        );
        assert_eq!(policy.versions(), vec![5, 7, 8]);
        assert_eq!(Policy::parse("").expect("empty"), Policy::default());
    }

    #[test]
    fn every_mistake_names_its_key() {
        for (text, expected) in [
            ("pinn = \"5\"", "pinn"),
            (
                "[canary]\nversion = \"7\"\npercent = 10\nweight = 1",
                "weight",
            ),
            (
                "[canary]\nversion = \"7\"\npercent = 101",
                "canary.percent = 101",
            ),
            (
                "[canary]\nversion = \"7\"\npercent = -1",
                "canary.percent = -1",
            ),
            ("[canary]\nversion = \"7\"", "percent"),
            (
                "[shadow]\nversion = \"8\"\nsample = 1.5",
                "shadow.sample = 1.5",
            ),
            (
                "[shadow]\nversion = \"08\"\nsample = 0.5",
                "shadow.version = \"08\"",
            ),
            ("pin = \"latest\"", "pin = \"latest\""),
            ("pin = -3", "pin = -3"),
            ("pin = \"5", "line 1"),
        ] {
            let error = Policy::parse(text).expect_err(text).to_string();
            assert!(error.contains(expected), "{text:?}: {error}");
            assert!(error.starts_with("serving.toml: "), "{error}");
        }
    }

    #[test]
    fn buckets_are_fixed_forever() {
        // FNV-1a 64 test vectors: "" → cbf29ce484222325, "a" → af63dc4c8601ec8c.
        assert_eq!(bucket(""), (0xcbf2_9ce4_8422_2325_u64 % 10_000) as u32);
        assert_eq!(bucket("a"), (0xaf63_dc4c_8601_ec8c_u64 % 10_000) as u32);
        assert_eq!(bucket("user-42"), bucket("user-42"));
    }

    proptest! {
        #[test]
        fn no_text_panics_the_parser(text in "\\PC{0,200}") {
            let _ = Policy::parse(&text);
        }

        #[test]
        fn a_share_in_range_always_parses(percent in 0.0f64..=100.0, sample in 0.0f64..=1.0) {
            let text = format!("[canary]\nversion = 2\npercent = {percent:?}\n[shadow]\nversion = 3\nsample = {sample:?}\n");
            let policy = Policy::parse(&text).expect("in range");
            prop_assert!(policy.canary.expect("canary").buckets() <= BUCKETS);
        }
    }
}
