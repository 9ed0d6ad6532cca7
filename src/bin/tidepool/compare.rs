//! `tidepool compare`: a run against a baseline, or against the trailing runs
//! of a history; measurements by their samples, counters and ratios by the
//! contract's thresholds.

use std::path::PathBuf;
use std::process::ExitCode;

use tidepool::report::{self, format_figure, FigureShift, MetricChange, MetricSummary};
use tidepool::stats::ChangePointOptions;
use tidepool::Error;

use crate::{json, load_contract, parse_percent, Format};

/// The records of every report in a results file or report.
fn summaries(path: &std::path::Path) -> tidepool::Result<Vec<MetricSummary>> {
    Ok(report::read_reports(path)?
        .into_iter()
        .map(|r| r.summary)
        .collect())
}

#[derive(clap::Args)]
pub(crate) struct CompareArgs {
    /// The baseline results or report.
    #[arg(long, required_unless_present = "history")]
    pub(crate) baseline: Option<PathBuf>,
    /// The current results or report (with --history: default the newest file there).
    #[arg(long)]
    pub(crate) current: Option<PathBuf>,
    /// A directory of past results: compare with the median of the last
    /// `--last` runs, and list the change points of every figure over them all.
    #[arg(long, conflicts_with = "baseline")]
    pub(crate) history: Option<PathBuf>,
    /// Trailing runs of the history to compare with.
    #[arg(long, default_value_t = 5)]
    pub(crate) last: usize,
    /// Noise threshold: changes of the median within it are never regressions.
    #[arg(long, default_value = "5%", value_parser = parse_percent)]
    pub(crate) threshold: f64,
    /// The contract whose counters and ratios are compared too (their
    /// direction comes from its thresholds).
    #[arg(long, default_value = "perf-contract.toml")]
    pub(crate) contract: PathBuf,
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub(crate) format: Format,
}

/// Compares, prints the changes, and exits 1 on a regression.
pub(crate) fn run(args: &CompareArgs) -> tidepool::Result<ExitCode> {
    let contract = load_contract(&args.contract)?;
    let mut shifts: Vec<report::FigureShift> = Vec::new();
    let (changes, figures, against) = match (&args.baseline, &args.history) {
        (Some(baseline), _) => {
            let current = args
                .current
                .as_ref()
                .ok_or_else(|| Error::config("--current", "is required with --baseline"))?;
            let base = summaries(baseline)?;
            let cur = summaries(current)?;
            (
                report::compare(&base, &cur, args.threshold)?,
                contract.compare_figures(&[&base], &cur, args.threshold),
                baseline.display().to_string(),
            )
        }
        (None, Some(dir)) => {
            if args.last == 0 {
                return Err(Error::config("--last", "must be at least 1"));
            }
            let mut runs = report::read_history(dir)?;
            let current = match &args.current {
                Some(path) => {
                    runs.retain(|r| &r.0 != path);
                    summaries(path)?
                }
                None => runs.pop().map(|r| r.1).ok_or_else(|| {
                    Error::config("--history", format!("{} holds no reports", dir.display()))
                })?,
            };
            if runs.is_empty() {
                return Err(Error::config(
                    "--history",
                    format!("{} holds no run before the current one", dir.display()),
                ));
            }
            let history: Vec<Vec<MetricSummary>> = runs.into_iter().map(|r| r.1).collect();
            let mut whole = history.clone();
            whole.push(current.clone());
            shifts = report::history_shifts(&whole, &ChangePointOptions::default());
            let k = args.last.min(history.len());
            let window: Vec<&[MetricSummary]> = history[history.len() - k..]
                .iter()
                .map(Vec::as_slice)
                .collect();
            (
                report::compare_history(&history, &current, args.last, args.threshold)?,
                contract.compare_figures(&window, &current, args.threshold),
                format!("median of the last {k} runs in {}", dir.display()),
            )
        }
        (None, None) => {
            return Err(Error::config(
                "--baseline",
                "give --baseline FILE or --history DIR",
            ))
        }
    };
    if args.format == Format::Json {
        let both = serde_json::json!({ "measurements": changes, "figures": figures, "change_points": shifts });
        println!("{}", json(&both, "the comparison")?);
    } else {
        print!(
            "{}",
            render_changes(&changes, &against, args.threshold, args.format)?
        );
    }
    if args.format != Format::Json && !figures.is_empty() {
        println!("\ncounters and ratios (no samples: against three or more runs, judged by their spread; else by the noise threshold alone; a count regresses when it breaches its contract limit):");
        for f in &figures {
            println!(
                "  {}.{}: {} {} -> {} ({:+.1}%){}",
                f.scenario,
                f.threshold,
                f.figure,
                format_figure(f.baseline),
                format_figure(f.current),
                f.percent_change,
                if f.regression { "  REGRESSION" } else { "" }
            );
        }
    }
    if args.format != Format::Json && args.history.is_some() {
        print!("{}", render_shifts(&shifts));
    }
    let figure_regressions: Vec<_> = figures.iter().filter(|f| f.regression).collect();
    for f in &figure_regressions {
        eprintln!(
            "regression: {}.{} ({}) {} -> {} ({:+.1}%)",
            f.scenario,
            f.threshold,
            f.figure,
            format_figure(f.baseline),
            format_figure(f.current),
            f.percent_change
        );
    }
    let regressions: Vec<&MetricChange> = changes.iter().filter(|c| c.regression).collect();
    if regressions.is_empty() && figure_regressions.is_empty() {
        Ok(ExitCode::SUCCESS)
    } else {
        for c in &regressions {
            eprintln!(
                "regression: {}.{} median {} -> {} {} ({:+.1}%, p = {:.2e})",
                c.scenario,
                c.metric,
                format_figure(c.baseline_median),
                format_figure(c.current_median),
                c.unit,
                c.percent_change,
                c.p_value
            );
        }
        Ok(ExitCode::from(1))
    }
}

fn render_changes(
    changes: &[MetricChange],
    against: &str,
    threshold: f64,
    format: Format,
) -> tidepool::Result<String> {
    let header = [
        "scenario",
        "metric",
        "unit",
        "baseline p50",
        "current p50",
        "change",
        "p-value",
        "verdict",
    ];
    let rows: Vec<Vec<String>> = changes
        .iter()
        .map(|c| {
            vec![
                c.scenario.clone(),
                c.metric.clone(),
                c.unit.clone(),
                format_figure(c.baseline_median),
                format_figure(c.current_median),
                format!("{:+.1}%", c.percent_change),
                format!("{:.2e}", c.p_value),
                if c.regression {
                    "REGRESSION".into()
                } else if c.improvement {
                    "improvement".into()
                } else {
                    "no change".into()
                },
            ]
        })
        .collect();
    Ok(match format {
        Format::Json => json(&changes, "the comparison")? + "\n",
        Format::Csv => crate::csv::rows(&header, &rows)?,
        Format::Md => format!(
            "### tidepool: performance compared with {against}\n\nA regression is a median change beyond {threshold}% that is significant (Mann-Whitney U, p < {}).\n\n{}",
            report::ALPHA,
            report::markdown_table(&header, &rows)
        ),
        Format::Table => format!("compared with {against} (threshold {threshold}%)\n{}", report::layout_table(&header, &rows)),
    })
}

/// The change points of a history, one line each, naming the commit after
/// which each figure moved.
fn render_shifts(shifts: &[FigureShift]) -> String {
    let mut out =
        String::from("\nchange points over the history (E-divisive means, Welch p < 0.001):\n");
    if shifts.is_empty() {
        out.push_str("  none: no figure moved\n");
    }
    for s in shifts {
        out.push_str(&format!(
            "  {}.{}: {} -> {} ({:+.1}%) from run {} ({}, {}), p = {:.3}\n",
            s.scenario,
            s.figure,
            format_figure(s.mean_before),
            format_figure(s.mean_after),
            s.percent_change,
            s.run + 1,
            s.commit
                .as_deref()
                .map_or("no commit", |c| &c[..c.len().min(12)]),
            s.timestamp,
            s.p_value
        ));
    }
    out
}
