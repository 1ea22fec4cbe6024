//! `giftrank eval`: the seed experiment's tables on labelled data (DESIGN.md §7). Loads
//! the bundle and the CSV, scores every row with every model a profile uses and hands the
//! scores to `crate::eval` for the metrics, profile and fusion rows, gates, tables, JSON
//! and charts.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context;

use crate::bundle::Bundle;
use crate::csv_input;
use crate::engine::Model;
use crate::eval::gate::{self, Gate};
use crate::eval::{self, metrics, plots, profiles, report, scoring, EvalError};

/// Arguments of `giftrank eval`.
#[derive(Debug, Clone)]
pub struct EvalArgs {
    /// Version directory holding bundle.toml and its models.
    pub bundle: PathBuf,
    /// Labelled CSV (or .csv.gz).
    pub data: PathBuf,
    /// Name of the label column.
    pub label: String,
    /// The comma-separated M list, as given (e.g. "50,100,200,500,1000").
    pub m: String,
    /// The comma-separated fusion alpha list, if any (e.g. "0,0.5,1").
    pub alpha: Option<String>,
    /// Thresholds, each `METRIC>=VALUE`.
    pub gates: Vec<String>,
    /// Where to write the JSON results, if anywhere.
    pub json: Option<PathBuf>,
    /// Directory for the PNG charts, if any.
    pub plots: Option<PathBuf>,
}

/// The evaluation ran, and the bundle's default profile failed a `--gate` (exit status 3).
#[derive(Debug, thiserror::Error)]
#[error("the default profile `{0}` fails the gates")]
pub struct GateFailed(pub String);

/// Runs the evaluation, printing the tables to `out` (progress notes go to stderr). With
/// gates, a failing default profile is a [`GateFailed`] error after everything is written.
pub fn run(args: &EvalArgs, out: &mut impl Write) -> anyhow::Result<()> {
    let ms = eval::parse_m_list(&args.m)?;
    let alphas = match &args.alpha {
        Some(text) => eval::parse_alpha_list(text)?,
        None => Vec::new(),
    };
    let gates = args
        .gates
        .iter()
        .map(|g| Gate::parse(g))
        .collect::<Result<Vec<_>, _>>()?;
    // Fail before the slow part when the JSON cannot be written where asked.
    if let Some(path) = &args.json {
        let dir = path.parent().unwrap_or(Path::new(""));
        anyhow::ensure!(
            dir.as_os_str().is_empty() || dir.is_dir(),
            "cannot write --json {}: no directory {}",
            path.display(),
            dir.display()
        );
    }
    let bundle =
        Bundle::load(&args.bundle).with_context(|| format!("bundle {}", args.bundle.display()))?;
    let (score_model, rerank_model) = reference_pair(&bundle);
    let mut used = vec![false; bundle.models.len()];
    used[score_model] = true;
    used[rerank_model] = true;
    for profile in &bundle.profiles {
        used[profile.score] = true;
        profile.recall.iter().for_each(|s| used[s.model] = true);
        profile.rerank.iter().for_each(|&r| used[r] = true);
    }

    let started = Instant::now();
    // One feature matrix serves every model that reads the same columns the same way.
    let mut layouts: Vec<usize> = Vec::new();
    let mut layout_of = vec![usize::MAX; bundle.models.len()];
    for (i, named) in bundle.models.iter().enumerate().filter(|(i, _)| used[*i]) {
        let model = &named.model;
        let existing = layouts
            .iter()
            .position(|&j| bundle.model(j).same_inputs_as(model));
        layout_of[i] = existing.unwrap_or_else(|| {
            layouts.push(i);
            layouts.len() - 1
        });
    }
    let readers: Vec<&Model> = layouts.iter().map(|&i| bundle.model(i)).collect();
    let mut loaded = csv_input::read(&args.data, &readers, &[args.label.as_str()])?;
    let mut warned = Vec::new();
    for name in loaded.absent_features.iter().flatten() {
        if !warned.contains(name) {
            eprintln!(
                "warning: no column `{name}` in {}: that feature is missing in every row",
                args.data.display()
            );
            warned.push(name.clone());
        }
    }
    anyhow::ensure!(
        loaded.num_rows > 0,
        "{}: no data rows (only a header): nothing to evaluate",
        args.data.display()
    );
    let labels = loaded.columns.swap_remove(0);
    metrics::check_labels(&labels).map_err(|e| match e {
        EvalError::Label { row, value } => anyhow::anyhow!(
            "{}: label column `{}`, row {} (line {}): the label is {}",
            args.data.display(),
            args.label,
            row + 1,
            row + 2,
            metrics::describe_label(value)
        ),
        other => other.into(),
    })?;
    let read_time = started.elapsed();

    let scores: Vec<Vec<f64>> = (0..bundle.models.len())
        .map(|i| {
            if used[i] {
                scoring::score_rows(bundle.model(i), &loaded.matrices[layout_of[i]], None)
            } else {
                Vec::new()
            }
        })
        .collect();
    drop(loaded);
    let score_time = started.elapsed() - read_time;

    let (d, s) = (&scores[score_model], &scores[rerank_model]);
    let truth = metrics::Truth::new(&labels);
    let mut evaluation = metrics::evaluate_with(&truth, d, s, &labels, &ms)?;
    evaluation.fusion = profiles::fusion(&truth, &labels, d, s, &ms, &alphas);
    evaluation.profiles = profiles::profiles(&truth, &labels, &bundle.profiles, &scores);
    evaluation.default_profile = Some(bundle.default_profile().name.clone());
    eprintln!(
        "eval: read {} rows in {:.1} s, scored them with {} models in {:.1} s, ranked and measured {} methods in {:.1} s",
        evaluation.n,
        read_time.as_secs_f64(),
        used.iter().filter(|&&u| u).count(),
        score_time.as_secs_f64(),
        report::method_rows(&evaluation).len(),
        (started.elapsed() - read_time - score_time).as_secs_f64()
    );

    let default_m = bundle.default_profile().first_m().unwrap_or(0);
    let shown = report::shown_m(&evaluation, default_m);
    writeln!(
        out,
        "## giftrank eval: bundle {} on {}\n",
        args.bundle.display(),
        args.data.display()
    )?;
    writeln!(
        out,
        "Direct = model `{}`, Stage2 = model `{}` (the default profile's score and rerank models).\n",
        bundle.models[score_model].name, bundle.models[rerank_model].name
    )?;
    write!(out, "{}", report::markdown(&evaluation, shown))?;
    write!(out, "{}", report::markdown_profiles(&evaluation))?;
    let rows = report::method_rows(&evaluation);
    let default_row = format!("profile:{}", bundle.default_profile().name);
    let default_passes = rows
        .iter()
        .find(|r| r.name == default_row)
        .is_some_and(|r| gate::passes(&gates, r));
    if !gates.is_empty() {
        write!(out, "\n{}", gate::table(&gates, &rows))?;
        writeln!(
            out,
            "\nDefault profile `{}`: {}",
            bundle.default_profile().name,
            if default_passes { "PASS" } else { "FAIL" }
        )?;
    }
    if let Some(path) = &args.json {
        std::fs::write(path, report::json(&evaluation))
            .with_context(|| format!("cannot write {}", path.display()))?;
        writeln!(out, "\nJSON: {}", path.display())?;
    }
    if let Some(dir) = &args.plots {
        let charts = plots::Charts {
            evaluation: &evaluation,
            shown,
            direct: d,
            stage2: s,
        };
        let written = plots::write_all(&charts, dir)?;
        let names: Vec<String> = written.iter().map(|p| p.display().to_string()).collect();
        writeln!(out, "\nCharts: {}", names.join(", "))?;
    }
    out.flush()?;
    if !gates.is_empty() && !default_passes {
        return Err(GateFailed(bundle.default_profile().name.clone()).into());
    }
    Ok(())
}

/// The models behind the `direct`, `stage2`, `recall_rerank` and `fusion` rows: the
/// default profile's score and rerank models; when it has no rerank model, those of the
/// first profile that has one; when none has, the score model for both.
fn reference_pair(bundle: &Bundle) -> (usize, usize) {
    let default = bundle.default_profile();
    match default.rerank {
        Some(rerank) => (default.score, rerank),
        None => bundle
            .profiles
            .iter()
            .find_map(|p| p.rerank.map(|r| (p.score, r)))
            .unwrap_or((default.score, default.score)),
    }
}
