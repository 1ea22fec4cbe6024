//! `bundle.toml`, strictly (DESIGN.md §4): format 1 (a Direct and a Stage2 model, one
//! profile) and format 2 (named models and profiles), both read into one [`Spec`] whose
//! profiles name their models by index. Every error names the key or model at fault.
//! Loading the model files and running the canary is `bundle::mod`'s job.

use indexmap::IndexMap;
use serde::Deserialize;

/// A parsed and cross-checked `bundle.toml`: the model files to load, in order, and the
/// profiles over them.
#[derive(Debug, Clone, PartialEq)]
pub struct Spec {
    pub format_version: u32,
    /// `(name, file)` of every model; profiles refer to models by index into this list.
    pub models: Vec<(String, String)>,
    /// In declaration order.
    pub profiles: Vec<Profile>,
    /// Index into `profiles`.
    pub default_profile: usize,
    pub canary: Option<Canary>,
}

/// How one request is ranked (DESIGN.md §1.1), its models given by index.
#[derive(Debug, Clone, PartialEq)]
pub struct Profile {
    pub name: String,
    /// The model that scores every candidate (`d`).
    pub score: usize,
    /// The recall sources; empty: no rerank, the order is by `d`.
    pub recall: Vec<Source>,
    /// The model that scores the recalled set; `Some` exactly when `recall` is not empty.
    pub rerank: Option<usize>,
    /// Weight of the rerank score in the rerank key, in [0, 1]; 1 without a rerank model.
    pub alpha: f64,
    /// The largest `m` a request may ask for its first source; 0 without recall.
    pub max_m: usize,
}

/// One recall source: the Top-`m` candidates by `model`'s score.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Source {
    pub model: usize,
    pub m: usize,
}

/// `[canary]`: rows with the expected score of every model.
#[derive(Debug, Clone, PartialEq)]
pub struct Canary {
    pub file: String,
    pub tolerance: f64,
}

impl Profile {
    /// The M of the first recall source; `None` without recall.
    pub fn first_m(&self) -> Option<usize> {
        self.recall.first().map(|s| s.m)
    }
}

/// The only thing read before the format is known.
#[derive(Deserialize)]
struct Version {
    format_version: Option<i64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FormatOne {
    #[allow(dead_code)]
    format_version: u32,
    recall: RecallOne,
    rerank: RerankOne,
    canary: Option<CanaryFile>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RecallOne {
    model: String,
    default_m: usize,
    max_m: usize,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RerankOne {
    model: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CanaryFile {
    file: String,
    #[serde(default = "default_tolerance")]
    tolerance: f64,
}

fn default_tolerance() -> f64 {
    1e-9
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FormatTwo {
    #[allow(dead_code)]
    format_version: u32,
    default_profile: String,
    models: IndexMap<String, String>,
    profiles: IndexMap<String, ProfileFile>,
    canary: Option<CanaryFile>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ProfileFile {
    #[serde(default = "default_score")]
    score: String,
    #[serde(default)]
    recall: Vec<SourceFile>,
    rerank: Option<String>,
    alpha: Option<f64>,
    max_m: Option<usize>,
}

fn default_score() -> String {
    "direct".into()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SourceFile {
    model: String,
    m: usize,
}

/// Parses `bundle.toml`'s text. The error is a sentence naming the key at fault.
pub fn parse(text: &str) -> Result<Spec, String> {
    let version: Version = toml::from_str(text).map_err(|e| e.to_string())?;
    let spec = match version.format_version {
        Some(1) => format_one(toml::from_str(text).map_err(|e| e.to_string())?)?,
        Some(2) => format_two(toml::from_str(text).map_err(|e| e.to_string())?)?,
        Some(other) => {
            return Err(format!(
                "format_version = {other} is not supported (only 1 and 2)"
            ))
        }
        None => return Err("format_version is missing (1 or 2)".into()),
    };
    if let Some(canary) = &spec.canary {
        if !(canary.tolerance >= 0.0 && canary.tolerance.is_finite()) {
            return Err(format!(
                "canary.tolerance = {} must be a finite number >= 0",
                canary.tolerance
            ));
        }
    }
    Ok(spec)
}

/// Format 1 is format 2 with models `direct` and `stage2` and one profile, `default`.
fn format_one(file: FormatOne) -> Result<Spec, String> {
    if file.recall.default_m < 1 || file.recall.default_m > file.recall.max_m {
        return Err(format!(
            "recall.default_m = {} must be between 1 and recall.max_m = {}",
            file.recall.default_m, file.recall.max_m
        ));
    }
    Ok(Spec {
        format_version: 1,
        models: vec![
            ("direct".into(), file.recall.model),
            ("stage2".into(), file.rerank.model),
        ],
        profiles: vec![Profile {
            name: "default".into(),
            score: 0,
            recall: vec![Source {
                model: 0,
                m: file.recall.default_m,
            }],
            rerank: Some(1),
            alpha: 1.0,
            max_m: file.recall.max_m,
        }],
        default_profile: 0,
        canary: file.canary.map(canary),
    })
}

fn canary(file: CanaryFile) -> Canary {
    Canary {
        file: file.file,
        tolerance: file.tolerance,
    }
}

fn format_two(file: FormatTwo) -> Result<Spec, String> {
    if file.models.is_empty() {
        return Err("[models] names no model: give at least one `name = \"file.txt\"`".into());
    }
    for name in file.models.keys() {
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            return Err(format!(
                "models.\"{name}\": a model name may hold only letters, digits, `_` and `-` (it names the canary column expected_<name>)"
            ));
        }
    }
    if file.profiles.is_empty() {
        return Err("[profiles] is empty: declare at least one profile".into());
    }
    let model = |name: &str, key: &str| {
        file.models.get_index_of(name).ok_or_else(|| {
            format!(
                "{key} = \"{name}\" is not a model of [models] (they are: {})",
                join(file.models.keys())
            )
        })
    };
    let mut profiles = Vec::with_capacity(file.profiles.len());
    for (name, p) in &file.profiles {
        let at = |key: &str| format!("profiles.{name}.{key}");
        let score = model(&p.score, &at("score"))?;
        let mut recall: Vec<Source> = Vec::with_capacity(p.recall.len());
        for (i, source) in p.recall.iter().enumerate() {
            let key = at(&format!("recall[{i}]"));
            let index = model(&source.model, &format!("{key}.model"))?;
            if source.m < 1 {
                return Err(format!("{key}.m = 0: a recall source takes at least 1"));
            }
            if recall.iter().any(|s| s.model == index) {
                return Err(format!(
                    "{key}.model = \"{}\" is already a recall source of this profile",
                    source.model
                ));
            }
            recall.push(Source {
                model: index,
                m: source.m,
            });
        }
        let rerank = match (&p.rerank, recall.is_empty()) {
            (Some(r), false) => Some(model(r, &at("rerank"))?),
            (None, true) => None,
            (None, false) => {
                return Err(format!(
                    "{}: a profile with recall sources needs a rerank model",
                    at("rerank")
                ))
            }
            (Some(_), true) => {
                return Err(format!(
                    "{}: a rerank model needs recall sources (profiles.{name}.recall is empty)",
                    at("rerank")
                ))
            }
        };
        let alpha = match (p.alpha, rerank) {
            (None, _) => 1.0,
            (Some(a), Some(_)) if (0.0..=1.0).contains(&a) => a,
            (Some(a), Some(_)) => {
                return Err(format!("{} = {a} must be between 0 and 1", at("alpha")))
            }
            (Some(_), None) => {
                return Err(format!(
                    "{}: alpha weighs the rerank score, and this profile has no rerank model",
                    at("alpha")
                ))
            }
        };
        let max_m = match (p.max_m, recall.first()) {
            (None, Some(first)) => first.m,
            (Some(max_m), Some(first)) if max_m >= first.m => max_m,
            (Some(max_m), Some(first)) => {
                return Err(format!(
                    "{} = {max_m} is below recall[0].m = {}",
                    at("max_m"),
                    first.m
                ))
            }
            (None, None) => 0,
            (Some(_), None) => {
                return Err(format!(
                    "{}: max_m bounds a request's m, and this profile has no recall sources",
                    at("max_m")
                ))
            }
        };
        profiles.push(Profile {
            name: name.clone(),
            score,
            recall,
            rerank,
            alpha,
            max_m,
        });
    }
    let default_profile = file
        .profiles
        .get_index_of(&file.default_profile)
        .ok_or_else(|| {
            format!(
                "default_profile = \"{}\" is not a profile (they are: {})",
                file.default_profile,
                join(file.profiles.keys())
            )
        })?;
    Ok(Spec {
        format_version: 2,
        models: file.models.into_iter().collect(),
        profiles,
        default_profile,
        canary: file.canary.map(canary),
    })
}

fn join<'a>(names: impl Iterator<Item = &'a String>) -> String {
    names.map(String::as_str).collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    const TWO: &str = r#"
format_version = 2
default_profile = "default"
[models]
direct = "direct.txt"
stage2 = "stage2.txt"
gift_prob = "gift_prob.txt"
[profiles.default]
recall = [{ model = "direct", m = 200 }]
rerank = "stage2"
max_m = 1000
[profiles.direct]
score = "direct"
[profiles.hybrid]
score = "direct"
recall = [{ model = "direct", m = 150 }, { model = "gift_prob", m = 100 }]
rerank = "stage2"
alpha = 0.7
"#;

    #[test]
    fn format_two_keeps_declaration_order_and_defaults() {
        let spec = parse(TWO).expect("valid");
        let names: Vec<&str> = spec.profiles.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["default", "direct", "hybrid"]);
        assert_eq!(spec.models[2], ("gift_prob".into(), "gift_prob.txt".into()));
        let hybrid = &spec.profiles[2];
        assert_eq!(
            hybrid.recall,
            [Source { model: 0, m: 150 }, Source { model: 2, m: 100 }]
        );
        assert_eq!(
            (hybrid.rerank, hybrid.alpha, hybrid.max_m),
            (Some(1), 0.7, 150)
        );
        let direct = &spec.profiles[1];
        assert_eq!(
            (direct.score, direct.rerank, direct.alpha, direct.max_m),
            (0, None, 1.0, 0)
        );
        assert_eq!(spec.profiles[0].score, 0);
    }

    #[test]
    fn format_one_is_one_default_profile() {
        let spec = parse(
            "format_version = 1\n[recall]\nmodel = \"d.txt\"\ndefault_m = 20\nmax_m = 30\n[rerank]\nmodel = \"s.txt\"\n",
        )
        .expect("valid");
        assert_eq!(
            spec.models,
            [
                ("direct".into(), "d.txt".into()),
                ("stage2".into(), "s.txt".into())
            ]
        );
        assert_eq!(
            spec.profiles,
            [Profile {
                name: "default".into(),
                score: 0,
                recall: vec![Source { model: 0, m: 20 }],
                rerank: Some(1),
                alpha: 1.0,
                max_m: 30
            }]
        );
    }

    #[test]
    fn every_error_names_its_key() {
        let cases = [
            (
                TWO.replace("alpha = 0.7", "alpha = 1.5"),
                "profiles.hybrid.alpha = 1.5",
            ),
            (
                TWO.replace("\"gift_prob\", m", "\"gift\", m"),
                "profiles.hybrid.recall[1].model = \"gift\" is not a model",
            ),
            (
                TWO.replace(
                    "default_profile = \"default\"",
                    "default_profile = \"main\"",
                ),
                "default_profile = \"main\"",
            ),
            (
                TWO.replace(
                    "score = \"direct\"\n[profiles.hybrid]",
                    "score = \"direct\"\nalpha = 0.5\n[profiles.hybrid]",
                ),
                "profiles.direct.alpha",
            ),
            (
                TWO.replace("max_m = 1000", "max_m = 10"),
                "profiles.default.max_m = 10",
            ),
            (
                TWO.replace("rerank = \"stage2\"\nmax_m", "max_m"),
                "profiles.default.rerank",
            ),
            (
                TWO.replace("m = 150", "m = 0"),
                "profiles.hybrid.recall[0].m = 0",
            ),
            (
                TWO.replace("gift_prob\", m = 100", "direct\", m = 100"),
                "profiles.hybrid.recall[1].model = \"direct\" is already",
            ),
            (
                TWO.replace("[profiles.direct]", "[profiles.direct]\nrecal = []"),
                "unknown field `recal`",
            ),
            (
                TWO.replace("format_version = 2", "format_version = 3"),
                "format_version = 3",
            ),
            (
                TWO.replace(
                    "gift_prob = \"gift_prob.txt\"",
                    "\"gift prob\" = \"gift_prob.txt\"",
                ),
                "models.\"gift prob\"",
            ),
            (
                TWO.replace(
                    "score = \"direct\"\n[profiles.hybrid]",
                    "score = \"stage3\"\n[profiles.hybrid]",
                ),
                "profiles.direct.score = \"stage3\"",
            ),
        ];
        for (text, wanted) in cases {
            let error = parse(&text).expect_err(wanted);
            assert!(
                error.contains(wanted),
                "{error:?} should contain {wanted:?}"
            );
        }
    }

    proptest::proptest! {
        /// Any truncation or single-character damage of a valid bundle.toml parses or is
        /// refused with a message; it never panics, and what parses is cross-checked.
        #[test]
        fn damaged_bundles_never_panic(cut in 0usize..600, at in 0usize..600, byte in 0u8..128) {
            let mut text: Vec<u8> = TWO.as_bytes().to_vec();
            let at = at.min(text.len().saturating_sub(1));
            text[at] = byte;
            text.truncate(cut.max(1));
            if let Ok(text) = std::str::from_utf8(&text) {
                if let Ok(spec) = parse(text) {
                    proptest::prop_assert!(spec.default_profile < spec.profiles.len());
                    for p in &spec.profiles {
                        proptest::prop_assert!(p.score < spec.models.len());
                        proptest::prop_assert!(p.recall.iter().all(|s| s.model < spec.models.len() && s.m >= 1));
                        proptest::prop_assert_eq!(p.rerank.is_some(), !p.recall.is_empty());
                        proptest::prop_assert!((0.0..=1.0).contains(&p.alpha));
                    }
                }
            }
        }
    }
}
