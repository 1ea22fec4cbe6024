//! `giftrank check DIR`: validates one bundle directory (any directory holding
//! `bundle.toml`) exactly as the service does before serving
//! it, for ops to run before publishing. `giftrank check --policy FILE` does the same for
//! a rollout policy (`serving.toml`) and every version it names.

use std::io::Write;
use std::path::Path;

use crate::bundle::{Bundle, Profile};
use crate::policy::Policy;

/// Prints a summary and succeeds when `dir` would serve; otherwise fails with the reason.
pub fn run(dir: &Path, out: &mut impl Write) -> anyhow::Result<()> {
    let bundle =
        Bundle::load(dir).map_err(|e| anyhow::anyhow!("{} cannot serve: {e}", dir.display()))?;
    writeln!(
        out,
        "ok: {} — format {}, {} canary rows match",
        dir.display(),
        bundle.format_version,
        bundle.canary_rows
    )?;
    for named in &bundle.models {
        let model = &named.model;
        writeln!(
            out,
            "  model {}: {} — {} ({} trees, {} features)",
            named.name,
            named.file,
            model.objective(),
            model.num_trees(),
            model.num_features()
        )?;
    }
    for (i, profile) in bundle.profiles.iter().enumerate() {
        let default = if i == bundle.default_profile {
            " (default)"
        } else {
            ""
        };
        writeln!(
            out,
            "  profile {}{default}: {}",
            profile.name,
            describe(&bundle, profile)
        )?;
    }
    Ok(())
}

/// A profile in words: `score direct; recall direct Top-200 ∪ gift_prob Top-100; rerank
/// stage2, alpha 0.7; max_m 1000`.
pub fn describe(bundle: &Bundle, profile: &Profile) -> String {
    let name = |i: usize| bundle.models[i].name.as_str();
    let mut text = format!("score {}", name(profile.score));
    if profile.recall.is_empty() {
        text.push_str("; no recall (everything by the score model)");
    } else {
        let sources: Vec<String> = profile
            .recall
            .iter()
            .map(|s| format!("{} Top-{}", name(s.model), s.m))
            .collect();
        text.push_str(&format!("; recall {}", sources.join(" ∪ ")));
    }
    if let Some(rerank) = profile.rerank {
        text.push_str(&format!("; rerank {}", name(rerank)));
        if profile.alpha < 1.0 {
            text.push_str(&format!(", alpha {}", profile.alpha));
        }
        text.push_str(&format!("; max_m {}", profile.max_m));
    }
    text
}

/// Checks a `serving.toml` as the service reads it, and that every version it names can
/// serve from the repository the file sits in; fails naming the first problem.
pub fn policy(file: &Path, out: &mut impl Write) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(file)
        .map_err(|e| anyhow::anyhow!("{}: cannot read it: {e}", file.display()))?;
    let policy = Policy::parse(&text).map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
    writeln!(out, "ok: {} parses", file.display())?;
    let show = |v: Option<u64>| v.map_or("none".to_owned(), |v| v.to_string());
    writeln!(out, "  pin: {}", show(policy.pin))?;
    match &policy.canary {
        Some(c) => writeln!(
            out,
            "  canary: version {} for {}% of routing keys",
            c.version, c.percent
        )?,
        None => writeln!(out, "  canary: none")?,
    }
    match &policy.shadow {
        Some(s) => writeln!(
            out,
            "  shadow: version {} on {} of requests",
            s.version, s.sample
        )?,
        None => writeln!(out, "  shadow: none")?,
    }
    let repository = file
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    for version in policy.versions() {
        let dir = repository.join(version.to_string());
        Bundle::load(&dir).map_err(|e| {
            anyhow::anyhow!("{}: version {version} cannot serve: {e}", file.display())
        })?;
        writeln!(out, "  version {version}: ok ({})", dir.display())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_policy_is_checked_with_the_versions_it_names() {
        let repo = tempfile::tempdir().expect("temp dir");
        let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("models/gift/1");
        let version = repo.path().join("1");
        std::fs::create_dir(&version).expect("dir");
        for file in ["direct.txt", "stage2.txt", "canary.csv", "bundle.toml"] {
            std::fs::copy(shipped.join(file), version.join(file)).expect("copy");
        }
        let file = repo.path().join("serving.toml");
        std::fs::write(&file, "pin = \"1\"\n").expect("write");
        let mut out = Vec::new();
        policy(&file, &mut out).expect("valid");
        assert!(String::from_utf8(out)
            .expect("text")
            .contains("version 1: ok"));

        std::fs::write(&file, "[canary]\nversion = \"2\"\npercent = 5\n").expect("write");
        let error = policy(&file, &mut Vec::new()).expect_err("version 2 is absent");
        assert!(
            error.to_string().contains("version 2 cannot serve"),
            "{error}"
        );
        std::fs::write(&file, "[shadow]\nversion = \"1\"\nsample = 2\n").expect("write");
        let error = policy(&file, &mut Vec::new()).expect_err("out of range");
        assert!(error.to_string().contains("shadow.sample = 2"), "{error}");
    }
}
