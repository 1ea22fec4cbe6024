//! `giftrank eval`: the seed experiment's tables on labelled data (DESIGN.md §7). Loads
//! the bundle, opens the data file, has `eval::collect` read and score its rows block by
//! block with every model a profile uses, and hands the scores to `crate::eval` for the
//! metrics (all rows one ranking, or one ranking per `--group`), profile and fusion rows,
//! gates, tables, JSON and charts.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context;

use super::progress::Progress;
use crate::bundle::Bundle;
use crate::data::{Reader, Wanted};
use crate::eval::bundle::{measure, reference_pair, Scoring};
use crate::eval::collect;
use crate::eval::gate::{self, Gate};
use crate::eval::{self, plots, report};

/// Arguments of `giftrank eval`.
#[derive(Debug, Clone)]
pub struct EvalArgs {
    /// Version directory holding bundle.toml and its models.
    pub bundle: PathBuf,
    /// Labelled data: CSV, .csv.gz or Parquet.
    pub data: PathBuf,
    /// Name of the label column.
    pub label: String,
    /// The group column, when each group of rows is one ranking.
    pub group: Option<String>,
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
    let scoring = Scoring::new(&bundle);

    let started = Instant::now();
    let readers = scoring.readers(&bundle);
    let wanted = Wanted {
        models: &readers,
        numeric: &[args.label.as_str()],
        group: args.group.as_deref(),
    };
    let reader = Reader::open(&args.data, &wanted)?;
    super::warn_absent(&args.data, &reader.absent_features());
    let scorers = scoring.scorers(&bundle);
    let bar = Progress::reading(reader.extent(), "reading and scoring");
    let collected = collect::collect(reader, &args.label, &scorers, |at| bar.set(at))?;
    bar.finish();
    anyhow::ensure!(
        !collected.labels.is_empty(),
        "{}: no data rows: nothing to evaluate",
        args.data.display()
    );
    let read_time = started.elapsed();

    let spinner = Progress::working("ranking and measuring");
    let evaluation = measure(&bundle, &collected, args.group.as_deref(), &ms, &alphas)?;
    spinner.finish();
    eprintln!(
        "eval: read and scored {} rows with {} models in {:.1} s, ranked and measured {} methods{} in {:.1} s",
        evaluation.n,
        scoring.models_used(),
        read_time.as_secs_f64(),
        report::method_rows(&evaluation).len(),
        evaluation
            .groups
            .as_ref()
            .map_or(String::new(), |g| format!(" over {} groups", g.used)),
        (started.elapsed() - read_time).as_secs_f64()
    );
    let (d, s) = (
        &collected.scores[score_model],
        &collected.scores[rerank_model],
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
