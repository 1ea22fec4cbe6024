//! `giftrank eval`: the seed experiment's tables on labelled data (DESIGN.md §7). Loads
//! the bundle and the CSV, scores every row with both models and hands the scores to
//! `crate::eval` for the metrics, tables, JSON and charts.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context;

use crate::bundle::Bundle;
use crate::csv_input;
use crate::engine::Model;
use crate::eval::{self, metrics, plots, report, scoring, EvalError};

/// Arguments of `giftrank eval`.
#[derive(Debug, Clone)]
pub struct EvalArgs {
    /// Version directory holding bundle.toml and both models.
    pub bundle: PathBuf,
    /// Labelled CSV (or .csv.gz).
    pub data: PathBuf,
    /// Name of the label column.
    pub label: String,
    /// The comma-separated M list, as given (e.g. "50,100,200,500,1000").
    pub m: String,
    /// Where to write the JSON results, if anywhere.
    pub json: Option<PathBuf>,
    /// Directory for the PNG charts, if any.
    pub plots: Option<PathBuf>,
}

/// Runs the evaluation, printing the tables to `out` (progress notes go to stderr).
pub fn run(args: &EvalArgs, out: &mut impl Write) -> anyhow::Result<()> {
    let ms = eval::parse_m_list(&args.m)?;
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

    let started = Instant::now();
    // One feature matrix serves both models when they read the same columns the same way.
    let shared = same_inputs(&bundle.direct, &bundle.stage2);
    let models: Vec<&Model> = if shared {
        vec![&bundle.direct]
    } else {
        vec![&bundle.direct, &bundle.stage2]
    };
    let mut loaded = csv_input::read(&args.data, &models, &[args.label.as_str()])?;
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

    let direct_rows = &loaded.matrices[0];
    let stage2_rows = loaded.matrices.get(1).unwrap_or(direct_rows);
    let direct = scoring::score_rows(&bundle.direct, direct_rows, None);
    let stage2 = scoring::score_rows(&bundle.stage2, stage2_rows, None);
    drop(loaded);
    let score_time = started.elapsed() - read_time;

    let evaluation = eval::evaluate(&direct, &stage2, &labels, &ms)?;
    eprintln!(
        "eval: read {} rows in {:.1} s, scored them with both models in {:.1} s, metrics in {:.1} s",
        evaluation.n,
        read_time.as_secs_f64(),
        score_time.as_secs_f64(),
        (started.elapsed() - read_time - score_time).as_secs_f64()
    );

    let shown = report::shown_m(&evaluation, bundle.default_m);
    writeln!(
        out,
        "## giftrank eval: bundle {} on {}\n",
        args.bundle.display(),
        args.data.display()
    )?;
    write!(out, "{}", report::markdown(&evaluation, shown))?;
    if let Some(path) = &args.json {
        std::fs::write(path, report::json(&evaluation))
            .with_context(|| format!("cannot write {}", path.display()))?;
        writeln!(out, "\nJSON: {}", path.display())?;
    }
    if let Some(dir) = &args.plots {
        let written = plots::write_all(&evaluation, shown, dir)?;
        let names: Vec<String> = written.iter().map(|p| p.display().to_string()).collect();
        writeln!(out, "\nCharts: {}", names.join(", "))?;
    }
    out.flush()?;
    Ok(())
}

/// Whether two models take the same features, by name and (for pandas categories) by the
/// same label-to-code mapping, so that one matrix read from the CSV serves both.
fn same_inputs(a: &Model, b: &Model) -> bool {
    a.feature_names() == b.feature_names()
        && (0..a.num_features()).all(|f| a.categories(f) == b.categories(f))
}
