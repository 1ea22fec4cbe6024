//! `giftrank score`: one line of scores per data row, in row order, printed so each parses
//! back to the same f64 (multi-output models: the class scores of a row, comma-separated).
//! Rows are read, scored and written a block at a time, so any file size fits in memory.

use std::io::{BufWriter, Write};
use std::path::Path;

use super::progress::Progress;
use crate::eval::scoring::score_rows;

/// Scores every row of `data` with `model`, writing one line per row to `out`.
pub fn run(model: &Path, data: &Path, out: &mut impl Write) -> anyhow::Result<()> {
    let model = super::load_model(model)?;
    let models = [&model];
    let mut reader = super::open_data(&models, data)?;
    let bar = Progress::reading(reader.extent(), "scoring");
    let mut out = BufWriter::with_capacity(1 << 16, out);
    let k = model.num_outputs();
    while let Some(block) = reader.next_block()? {
        let scores = score_rows(&model, &block.matrices[0], None);
        for row in scores.chunks_exact(k) {
            for (i, score) in row.iter().enumerate() {
                let comma = if i == 0 { "" } else { "," };
                write!(out, "{comma}{score:?}")?;
            }
            out.write_all(b"\n")?;
        }
        bar.set(block.progress);
    }
    bar.finish();
    out.flush()?;
    Ok(())
}
