//! The `giftrank` binary: parses the command line and hands each subcommand to the library.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "giftrank",
    version,
    about = "Recall-rerank ranking for live-stream gift allocation"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Print one score per CSV row (comma-separated class scores for multi-output models).
    Score {
        /// LightGBM text model (Booster.save_model).
        #[arg(long)]
        model: PathBuf,
        /// CSV (or .csv.gz) with a header of feature names.
        #[arg(long)]
        data: PathBuf,
    },
    /// The seed experiment's tables (and optionally JSON and charts) on labelled data.
    Eval {
        /// Version directory (holding bundle.toml) whose models to evaluate.
        #[arg(long)]
        bundle: PathBuf,
        /// Labelled CSV (or .csv.gz).
        #[arg(long)]
        data: PathBuf,
        /// The label column (e.g. the gift amount).
        #[arg(long)]
        label: String,
        /// Recall sizes to evaluate, comma-separated.
        #[arg(long, default_value = "50,100,200,500,1000")]
        m: String,
        /// Also write the results as JSON to this file.
        #[arg(long)]
        json: Option<PathBuf>,
        /// Also write PNG charts into this directory.
        #[arg(long)]
        plots: Option<PathBuf>,
    },
    /// Time single-threaded batch scoring of the CSV's rows; last line `ns_per_row=<n>`.
    Bench {
        #[arg(long)]
        model: PathBuf,
        #[arg(long)]
        data: PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let mut stdout = std::io::stdout().lock();
    let result = match cli.command {
        Command::Score { model, data } => {
            giftrank::commands::score::run(&model, &data, &mut stdout)
        }
        Command::Eval {
            bundle,
            data,
            label,
            m,
            json,
            plots,
        } => {
            let args = giftrank::commands::eval::EvalArgs {
                bundle,
                data,
                label,
                m,
                json,
                plots,
            };
            giftrank::commands::eval::run(&args, &mut stdout)
        }
        Command::Bench { model, data } => {
            giftrank::commands::bench::run(&model, &data, &mut stdout)
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
