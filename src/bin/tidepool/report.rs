//! `tidepool report`: results files and scenario reports, rendered; with
//! `--format html`, one self-contained page with plots.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::ValueEnum;
use tidepool::report::{self, AbReport, HtmlReport, ScenarioReport};
use tidepool::stats::ChangePointOptions;
use tidepool::summary::MetricSummary;
use tidepool::Error;

use crate::json;
use tidepool_pools::Error as PoolError;

/// How `report` renders.
#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum ReportFormat {
    Table,
    Json,
    Md,
    Csv,
    /// One self-contained page with plots (needs --output).
    Html,
}

#[derive(clap::Args)]
pub(crate) struct ReportArgs {
    /// Scenario reports (`target/tidepool/reports/*.json`), `validate --output`
    /// files; with --format html also an `ab.json` and directories of past
    /// results (a history, as for `compare --history`).
    #[arg(required = true)]
    inputs: Vec<PathBuf>,
    #[arg(long, value_enum, default_value_t = ReportFormat::Table)]
    format: ReportFormat,
    /// Write here instead of standard output.
    #[arg(long)]
    output: Option<PathBuf>,
    /// With --format html: open the page in headless Chromium, check that
    /// every plot is there, that the console shows no error and that no
    /// request leaves the file, and save a full-page screenshot here.
    #[arg(long, requires = "output")]
    screenshot: Option<PathBuf>,
}

/// What the inputs held.
#[derive(Default)]
struct Inputs {
    reports: Vec<ScenarioReport>,
    ab: Vec<AbReport>,
    history: Vec<Vec<MetricSummary>>,
}

fn read_inputs(paths: &[PathBuf], html: bool) -> tidepool::Result<Inputs> {
    let mut inputs = Inputs::default();
    for path in paths {
        if path.is_dir() {
            if !html {
                return Err(not_here(path, "a history directory"));
            }
            inputs
                .history
                .extend(report::read_history(path)?.into_iter().map(|r| r.1));
        } else if let Some(ab) = read_ab(path)? {
            if !html {
                return Err(not_here(path, "an A/B report"));
            }
            inputs.ab.push(ab);
        } else {
            inputs.reports.extend(report::read_reports(path)?);
        }
    }
    Ok(inputs)
}

fn not_here(path: &Path, what: &str) -> Error {
    Error::config(
        "--format",
        format!("{} is {what}: only --format html shows it", path.display()),
    )
}

/// The A/B report at `path`, or `None` when the file is not one (an A/B
/// report has `figures` and `rounds`; scenario reports and results do not).
/// A file that cannot be read or parsed is left to the report reader, whose
/// errors name the file and the problem.
fn read_ab(path: &Path) -> tidepool::Result<Option<AbReport>> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return Ok(None);
    };
    let Ok(value) = serde_json::from_str::<serde_json::Value>(&text) else {
        return Ok(None);
    };
    if value.get("figures").is_none() || value.get("rounds").is_none() {
        return Ok(None);
    }
    serde_json::from_value(value)
        .map(Some)
        .map_err(|e| Error::Report {
            path: path.into(),
            message: format!("does not match the A/B report layout: {e}"),
        })
}

/// Renders the inputs in `args.format`.
pub(crate) fn run(args: &ReportArgs) -> tidepool::Result<ExitCode> {
    let html = args.format == ReportFormat::Html;
    if args.screenshot.is_some() && !html {
        return Err(Error::config("--screenshot", "needs --format html"));
    }
    let inputs = read_inputs(&args.inputs, html)?;
    let reports = &inputs.reports;
    let out = match args.format {
        ReportFormat::Json => json(reports, "the report")? + "\n",
        ReportFormat::Csv => crate::csv::reports(reports)?,
        ReportFormat::Md => reports
            .iter()
            .map(report::to_markdown)
            .collect::<Vec<_>>()
            .join("\n"),
        ReportFormat::Table => reports
            .iter()
            .map(report::to_table)
            .collect::<Vec<_>>()
            .join("\n"),
        ReportFormat::Html => {
            let shifts = report::history_shifts(&inputs.history, &ChangePointOptions::default());
            let mut page = HtmlReport::new(reports).with_history(&inputs.history, &shifts);
            for ab in &inputs.ab {
                page = page.with_ab(ab);
            }
            page.render()?
        }
    };
    match &args.output {
        Some(path) => tidepool::write_atomic(path, out.as_bytes())?,
        None => print!("{out}"),
    }
    if let (Some(page), Some(png)) = (&args.output, &args.screenshot) {
        return check_page(page, png, reports);
    }
    Ok(ExitCode::SUCCESS)
}

/// Opens the page in Chromium: exit 1 when a plot is missing, the console
/// shows an error or the page made a request.
fn check_page(page: &Path, png: &Path, reports: &[ScenarioReport]) -> tidepool::Result<ExitCode> {
    let runtime = tokio::runtime::Runtime::new().map_err(|e| PoolError::Task {
        what: "the async runtime".into(),
        message: e.to_string(),
    })?;
    let check = runtime.block_on(tidepool::testkit::check_report_page(page, Some(png)))?;
    let measurements: usize = reports.iter().map(|r| r.summary.metrics.len()).sum();
    let thresholds: usize = reports.iter().map(|r| r.verdicts.len()).sum();
    let mut problems = Vec::new();
    if check.measurement_plots != measurements {
        problems.push(format!(
            "{} measurement plots for {measurements} measurements",
            check.measurement_plots
        ));
    }
    if check.threshold_plots != thresholds {
        problems.push(format!(
            "{} threshold plots for {thresholds} thresholds",
            check.threshold_plots
        ));
    }
    problems.extend(check.console_errors.iter().map(|e| format!("console: {e}")));
    problems.extend(check.requests.iter().map(|r| format!("request: {r}")));
    eprintln!(
        "tidepool: {} in Chromium: {} plots ({} measurements, {} thresholds), {} console errors, {} requests; screenshot {}",
        page.display(),
        check.plots,
        check.measurement_plots,
        check.threshold_plots,
        check.console_errors.len(),
        check.requests.len(),
        png.display()
    );
    if problems.is_empty() {
        return Ok(ExitCode::SUCCESS);
    }
    for p in problems {
        eprintln!("tidepool: {p}");
    }
    Ok(ExitCode::from(1))
}
