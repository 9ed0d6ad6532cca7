//! `tidepool report`: a results file or a scenario report, rendered.

use std::path::Path;
use std::process::ExitCode;

use tidepool::report;

use crate::{json, Format};

/// Prints the reports in `input` in `format`.
pub(crate) fn run(input: &Path, format: Format) -> tidepool::Result<ExitCode> {
    let reports = report::read_reports(input)?;
    let out = match format {
        Format::Json => json(&reports, "the report")? + "\n",
        Format::Csv => crate::csv::reports(&reports)?,
        Format::Md => reports
            .iter()
            .map(report::to_markdown)
            .collect::<Vec<_>>()
            .join("\n"),
        Format::Table => reports
            .iter()
            .map(report::to_table)
            .collect::<Vec<_>>()
            .join("\n"),
    };
    print!("{out}");
    Ok(ExitCode::SUCCESS)
}
