//! The tidepool command line.
//!
//! Exit codes: 0 success, 1 a contract threshold or comparison failed, 2 a usage,
//! input or environment error (the message says what and where).

use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use tidepool::report::format_figure;
use tidepool::stats::{parse_samples, Summary};

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
    /// Summarise numbers, one per line (blank lines and `#` comments skipped).
    Stats {
        /// A file of numbers, or `-` for standard input.
        input: PathBuf,
        /// Output format.
        #[arg(long, value_enum, default_value_t = StatsFormat::Json)]
        format: StatsFormat,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum StatsFormat {
    Json,
    Table,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("tidepool: {e}");
            ExitCode::from(2)
        }
    }
}

fn run(cli: Cli) -> tidepool::Result<ExitCode> {
    match cli.command {
        Command::Stats { input, format } => stats(&input, format),
    }
}

fn stats(input: &std::path::Path, format: StatsFormat) -> tidepool::Result<ExitCode> {
    let (name, text) = if input.as_os_str() == "-" {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .map_err(|e| tidepool::Error::io("reading", "<stdin>", e))?;
        ("<stdin>".to_owned(), text)
    } else {
        let text =
            std::fs::read_to_string(input).map_err(|e| tidepool::Error::io("reading", input, e))?;
        (input.display().to_string(), text)
    };
    let samples = parse_samples(&name, &text)?;
    let summary = Summary::from_samples(&name, &samples)?;
    match format {
        StatsFormat::Json => {
            let json =
                serde_json::to_string_pretty(&summary).map_err(|source| tidepool::Error::Json {
                    what: "the summary".into(),
                    source,
                })?;
            println!("{json}");
        }
        StatsFormat::Table => {
            let ci = summary.ci95.map_or("n/a".to_owned(), |ci| {
                format!("[{}, {}]", format_figure(ci.low), format_figure(ci.high))
            });
            let rows = [
                ("n", summary.n.to_string()),
                ("mean", format_figure(summary.mean)),
                ("median", format_figure(summary.median)),
                ("stddev", format_figure(summary.stddev)),
                ("min", format_figure(summary.min)),
                ("max", format_figure(summary.max)),
                ("p90", format_figure(summary.p90)),
                ("p95", format_figure(summary.p95)),
                ("p99", format_figure(summary.p99)),
                ("ci95 of mean", ci),
                (
                    "outliers (Tukey 1.5 IQR)",
                    format!(
                        "{} at {:?}",
                        summary.outliers.count, summary.outliers.indices
                    ),
                ),
            ];
            for (k, v) in rows {
                println!("{k:<26}{v}");
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
