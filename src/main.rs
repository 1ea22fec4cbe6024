//! The `giftrank` binary: parses the command line and hands each subcommand to the library.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use giftrank::config::{Config, LogFormat, Overrides};
use giftrank::server::{shutdown_signal, Server};
use tracing_subscriber::EnvFilter;

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
    /// Serve POST /rank, gRPC (and the admin listener) on the model repository.
    Serve {
        /// TOML configuration file (keys: see README); GIFTRANK_* variables override it.
        #[arg(long)]
        config: Option<PathBuf>,
        /// Public listener address, e.g. 0.0.0.0:8080.
        #[arg(long)]
        listen: Option<SocketAddr>,
        /// Admin listener address, e.g. 127.0.0.1:8081.
        #[arg(long)]
        admin_listen: Option<SocketAddr>,
        /// gRPC listener address, e.g. 0.0.0.0:9090.
        #[arg(long)]
        grpc_listen: Option<SocketAddr>,
        /// The model repository (numbered version directories).
        #[arg(long)]
        model_repo: Option<PathBuf>,
    },
    /// Validate one bundle directory exactly as the service would before serving it.
    Check {
        /// The bundle directory (any directory holding bundle.toml).
        #[arg(required_unless_present = "policy")]
        dir: Option<PathBuf>,
        /// Check a rollout policy (serving.toml) instead, and the versions it names in
        /// the repository holding it.
        #[arg(long, conflicts_with = "dir", value_name = "FILE")]
        policy: Option<PathBuf>,
    },
    /// Print one score per data row (comma-separated class scores for multi-output models).
    Score {
        /// LightGBM text model (Booster.save_model).
        #[arg(long)]
        model: PathBuf,
        /// CSV (or .csv.gz) with a header of feature names, or Parquet (.parquet).
        #[arg(long)]
        data: PathBuf,
    },
    /// The seed experiment's tables (and optionally JSON and charts) on labelled data.
    Eval {
        /// Bundle directory (any directory holding bundle.toml) whose models to evaluate.
        #[arg(long)]
        bundle: PathBuf,
        /// Labelled data: CSV, .csv.gz or Parquet (.parquet).
        #[arg(long)]
        data: PathBuf,
        /// The label column (e.g. the gift amount).
        #[arg(long)]
        label: String,
        /// Rank each group of rows with the same value of this column (integers or text,
        /// e.g. a session or request id) on its own and average the metrics over groups.
        #[arg(long)]
        group: Option<String>,
        /// Recall sizes to evaluate, comma-separated.
        #[arg(long, default_value = "50,100,200,500,1000")]
        m: String,
        /// Fusion weights to evaluate at every M, comma-separated (e.g. 0,0.25,0.5,0.75,1).
        #[arg(long)]
        alpha: Option<String>,
        /// A threshold every method row is checked against, METRIC>=VALUE (e.g.
        /// top1>=0.56); repeatable. Exit status 3 when the default profile fails one.
        #[arg(long = "gate")]
        gates: Vec<String>,
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
        /// Instruction set to score with: portable, avx2 or avx512 (default: the best
        /// this CPU has; a higher one than the CPU has falls back to the best it has).
        #[arg(long)]
        isa: Option<giftrank::engine::Isa>,
    },
}

/// Loads the configuration, starts logging, and serves until SIGTERM or SIGINT.
fn serve(file: Option<PathBuf>, flags: &Overrides) -> anyhow::Result<()> {
    let (config, warnings) = Config::load(file.as_deref(), std::env::vars(), flags)?;
    let filter = EnvFilter::try_new(&config.log_level)?;
    match config.log_format {
        LogFormat::Text => tracing_subscriber::fmt().with_env_filter(filter).init(),
        LogFormat::Json => tracing_subscriber::fmt()
            .json()
            .with_env_filter(filter)
            .init(),
    }
    for warning in warnings {
        tracing::warn!("{warning}");
    }
    let runtime = tokio::runtime::Runtime::new()?;
    let served = runtime.block_on(async {
        let shutdown = shutdown_signal();
        let server = Server::bind(config).await?;
        server.run(shutdown).await
    });
    // Dropping the runtime would wait for every blocking task, and a reload stuck on a
    // slow disk would hold the exit past the drain deadline: give them a moment, no more.
    runtime.shutdown_timeout(EXIT_GRACE);
    served
}

/// How long exit waits for blocking tasks (a reload) still running after the drain.
const EXIT_GRACE: std::time::Duration = std::time::Duration::from_secs(1);

fn main() -> ExitCode {
    let cli = Cli::parse();
    // Not locked for `serve`: its log lines go to stdout from many threads.
    let mut stdout = std::io::stdout();
    let result = match cli.command {
        Command::Serve {
            config,
            listen,
            admin_listen,
            grpc_listen,
            model_repo,
        } => {
            let flags = Overrides {
                listen,
                admin_listen,
                grpc_listen,
                model_repo,
            };
            serve(config, &flags)
        }
        Command::Check { dir, policy } => match (dir, policy) {
            (_, Some(policy)) => giftrank::commands::check::policy(&policy, &mut stdout),
            (Some(dir), None) => giftrank::commands::check::run(&dir, &mut stdout),
            (None, None) => unreachable!("clap requires one"),
        },
        Command::Score { model, data } => {
            giftrank::commands::score::run(&model, &data, &mut stdout)
        }
        Command::Eval {
            bundle,
            data,
            label,
            group,
            m,
            alpha,
            gates,
            json,
            plots,
        } => {
            let args = giftrank::commands::eval::EvalArgs {
                bundle,
                data,
                label,
                group,
                m,
                alpha,
                gates,
                json,
                plots,
            };
            giftrank::commands::eval::run(&args, &mut stdout)
        }
        Command::Bench { model, data, isa } => {
            giftrank::commands::bench::run(&model, &data, isa, &mut stdout)
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            if e.is::<giftrank::commands::eval::GateFailed>() {
                ExitCode::from(3)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}
