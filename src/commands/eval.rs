//! `giftrank eval`: the seed experiment's tables on labelled data (DESIGN.md §7).

use std::io::Write;
use std::path::PathBuf;

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
    pub json: Option<PathBuf>,
    pub plots: Option<PathBuf>,
}

/// Runs the evaluation, printing the tables to `out`.
pub fn run(args: &EvalArgs, out: &mut impl Write) -> anyhow::Result<()> {
    let _ = (args, out);
    anyhow::bail!("eval is not implemented yet")
}
