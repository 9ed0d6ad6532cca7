//! The tidepool command line: one file per command.
//!
//! Exit codes: 0 success, 1 a contract threshold failed or a comparison found a
//! regression, 2 a usage, input or environment error (the message says what
//! and where), 130 interrupted by Ctrl-C (partial results written).

mod ab;
mod compare;
mod csv;
mod report;
mod stats;
mod validate;

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use tidepool::contract::Contract;
use tidepool::scenarios;
use tidepool::Error;

use ab::AbArgs;
use compare::CompareArgs;
use report::ReportArgs;
use tidepool_pools::Error as PoolError;
use validate::ValidateArgs;

#[derive(Parser)]
#[command(
    name = "tidepool",
    version,
    about = "Warm, bounded browser and WASM pools, with performance contracts"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run scenarios, check them against the contract, write the results.
    Validate(ValidateArgs),
    /// Compare a run with a baseline (or with the trailing runs of a history).
    Compare(CompareArgs),
    /// Compare a baseline build with a current one in interleaved rounds
    /// (the pull-request check): exit 1 on a regression.
    Ab(AbArgs),
    /// Render results files and scenario reports (as a table, JSON, Markdown,
    /// CSV, or one self-contained HTML page with plots).
    Report(ReportArgs),
    /// Summarise numbers, one per line (blank lines and `#` comments skipped).
    Stats {
        /// A file of numbers, or `-` for standard input.
        input: PathBuf,
        #[arg(long, value_enum, default_value_t = StatsFormat::Json)]
        format: StatsFormat,
    },
}

/// How a command prints its results.
#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Format {
    Table,
    Json,
    Md,
    Csv,
}

/// How `stats` prints its summary.
#[derive(Clone, Copy, ValueEnum)]
pub(crate) enum StatsFormat {
    Json,
    Table,
}

pub(crate) fn parse_percent(text: &str) -> Result<f64, String> {
    let number = text.trim().trim_end_matches('%');
    match number.parse::<f64>() {
        Ok(x) if x.is_finite() && x >= 0.0 => Ok(x),
        _ => Err(format!("{text:?} is not a percentage like 5% or 2.5")),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn,chromiumoxide=off"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .try_init();
    let outcome = match cli.command {
        Command::Stats { input, format } => stats::run(&input, format),
        Command::Report(args) => report::run(&args),
        Command::Compare(args) => compare::run(&args),
        Command::Ab(args) => ab::run(&args),
        Command::Validate(args) => match tokio::runtime::Runtime::new() {
            Ok(rt) => rt.block_on(validate::run(args)),
            Err(e) => Err(PoolError::Task {
                what: "the async runtime".into(),
                message: e.to_string(),
            }
            .into()),
        },
    };
    match outcome {
        Ok(code) => code,
        Err(e) => {
            eprintln!("tidepool: {e}");
            ExitCode::from(2)
        }
    }
}

pub(crate) fn json<T: serde::Serialize>(value: &T, what: &str) -> tidepool::Result<String> {
    serde_json::to_string_pretty(value).map_err(|source| {
        PoolError::Json {
            what: what.into(),
            source,
        }
        .into()
    })
}

/// The contract at `path`; a missing file says where to run from.
pub(crate) fn load_contract(path: &Path) -> tidepool::Result<Contract> {
    Contract::load(path, &scenarios::catalog()).map_err(|e| match e {
        Error::Pool(PoolError::Io { .. }) => Error::config(
            "--contract",
            format!("{e}; run from the repository root or pass --contract PATH"),
        ),
        other => other,
    })
}

/// A progress bar of `len` steps on a terminal; hidden otherwise (the callers
/// print plain lines instead).
pub(crate) fn progress_bar(len: usize, interactive: bool) -> ProgressBar {
    if !interactive {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(len as u64);
    if let Ok(style) = ProgressStyle::with_template("{spinner} [{pos}/{len}] {msg} ({elapsed})") {
        bar.set_style(style);
    }
    bar.enable_steady_tick(std::time::Duration::from_millis(120));
    bar
}
