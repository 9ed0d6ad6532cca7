//! `tidepool stats`: summarise a column of numbers.

use std::io::Read;
use std::path::Path;
use std::process::ExitCode;

use tidepool::report::format_figure;
use tidepool::stats::{parse_samples, Summary};
use tidepool::Error;

use crate::{json, StatsFormat};

/// Prints the summary of the numbers in `input` (`-`: standard input).
pub(crate) fn run(input: &Path, format: StatsFormat) -> tidepool::Result<ExitCode> {
    let (name, text) = if input.as_os_str() == "-" {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .map_err(|e| Error::io("reading", "<stdin>", e))?;
        ("<stdin>".to_owned(), text)
    } else {
        let text = std::fs::read_to_string(input).map_err(|e| Error::io("reading", input, e))?;
        (input.display().to_string(), text)
    };
    let samples = parse_samples(&name, &text)?;
    let summary = Summary::from_samples(&name, &samples)?;
    match format {
        StatsFormat::Json => println!("{}", json(&summary, "the summary")?),
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
