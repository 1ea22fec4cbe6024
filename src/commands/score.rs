//! `giftrank score`: one line of scores per CSV row, printed so each parses back to the
//! same f64 (multi-output models: the class scores of a row, comma-separated).

use std::io::Write;
use std::path::Path;

/// Scores every row of `data` with `model`, writing one line per row to `out`.
pub fn run(model: &Path, data: &Path, out: &mut impl Write) -> anyhow::Result<()> {
    let (model, rows) = super::load_model_and_rows(model, data)?;
    let k = model.num_outputs();
    let mut scores = vec![0.0; rows.num_rows() * k];
    model.predict(&rows, &mut scores);
    for row in scores.chunks_exact(k) {
        let line: Vec<String> = row.iter().map(|s| format!("{s:?}")).collect();
        writeln!(out, "{}", line.join(","))?;
    }
    out.flush()?;
    Ok(())
}
