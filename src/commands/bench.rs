//! `giftrank bench`: times single-threaded batch scoring of a CSV's rows, repeated until
//! the measurement is stable, and reports nanoseconds per row.

use std::hint::black_box;
use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::engine::Isa;

/// Each measurement scores the whole batch repeatedly for at least this long.
const MEASUREMENT: Duration = Duration::from_millis(300);
/// The report is the fastest of this many measurements.
const MEASUREMENTS: usize = 7;

/// Benchmarks `model` on the rows of `data` with instruction set `isa` (default: the
/// best this CPU has); the last line written is `ns_per_row=<n>`.
pub fn run(
    model: &Path,
    data: &Path,
    isa: Option<Isa>,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let (mut model, rows) = super::load_model_and_rows(model, data)?;
    if let Some(isa) = isa {
        model.set_isa(isa);
    }
    anyhow::ensure!(
        rows.num_rows() > 0,
        "{} has no rows to score",
        data.display()
    );
    let mut scores = vec![0.0; rows.num_rows() * model.num_outputs()];
    model.predict(&rows, &mut scores); // warm-up

    let mut best = f64::INFINITY;
    for _ in 0..MEASUREMENTS {
        let start = Instant::now();
        let mut batches = 0u64;
        while start.elapsed() < MEASUREMENT {
            model.predict(black_box(&rows), black_box(&mut scores));
            batches += 1;
        }
        let ns = start.elapsed().as_nanos() as f64 / (batches as f64 * rows.num_rows() as f64);
        best = best.min(ns);
    }
    writeln!(
        out,
        "model: {} trees, {} leaves, {} features; rows: {}",
        model.num_trees(),
        model.num_leaves(),
        model.num_features(),
        rows.num_rows()
    )?;
    writeln!(out, "isa={}", model.isa())?;
    writeln!(
        out,
        "ns_per_tree_row={:.3}",
        best / model.num_trees().max(1) as f64
    )?;
    writeln!(out, "ns_per_row={best:.1}")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_the_chosen_instruction_set_and_ends_with_ns_per_row() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/engine/single_leaf");
        let mut out = Vec::new();
        run(
            &dir.join("model.txt"),
            &dir.join("data.csv"),
            Some(Isa::Portable),
            &mut out,
        )
        .expect("bench runs");
        let text = String::from_utf8(out).expect("UTF-8");
        assert!(text.lines().any(|l| l == "isa=portable"), "{text}");
        let last = text.lines().last().expect("output");
        let ns: f64 = last
            .strip_prefix("ns_per_row=")
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("last line {last:?}"));
        assert!(ns > 0.0);
    }
}
