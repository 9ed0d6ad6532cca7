//! The tidepool command line.
//!
//! Exit codes: 0 success, 1 a contract threshold failed or a comparison found a
//! regression, 2 a usage, input or environment error (the message says what
//! and where), 130 interrupted by Ctrl-C (partial results written).

use std::io::{IsTerminal, Read};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use clap::{Parser, Subcommand, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use tidepool::contract::{failure_message, Contract};
use tidepool::profile::{parse_iterations, Depth, RunProfile};
use tidepool::report::{
    self, format_figure, Grade, MetricChange, MetricSummary, ValidationResults,
};
use tidepool::scenarios::{self, end_to_end, Scenario};
use tidepool::stats::{parse_samples, Summary};
use tidepool::Error;

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
    /// Render a results file or a scenario report.
    Report {
        /// A `validate --output` file or a `target/tidepool/reports/*.json` report.
        input: PathBuf,
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
    },
    /// Summarise numbers, one per line (blank lines and `#` comments skipped).
    Stats {
        /// A file of numbers, or `-` for standard input.
        input: PathBuf,
        #[arg(long, value_enum, default_value_t = StatsFormat::Json)]
        format: StatsFormat,
    },
}

#[derive(clap::Args)]
struct ValidateArgs {
    /// Run only these scenarios (repeatable); all by default.
    #[arg(long = "scenario", value_name = "NAME")]
    scenarios: Vec<String>,
    /// Base iteration count (default: the full count, 100); 20 runs the
    /// quick sizes of `make test`.
    #[arg(long, value_parser = parse_iterations)]
    iterations: Option<usize>,
    /// Where to write the combined results.
    #[arg(long, default_value = "target/tidepool/results.json")]
    output: PathBuf,
    /// The contract to check against.
    #[arg(long, default_value = "perf-contract.toml")]
    contract: PathBuf,
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
    /// List the scenarios and exit.
    #[arg(long)]
    list: bool,
    /// Run the negative controls instead: a bad variant per threshold, each
    /// of which the contract must reject (exit 1 if one is not rejected).
    #[arg(long, conflicts_with = "urls")]
    controls: bool,
    /// With `--scenario end_to_end`: crawl these URLs (one per line) instead of the fixture pages.
    #[arg(long, value_name = "FILE")]
    urls: Option<PathBuf>,
    /// Concurrent crawl workers with `--urls`.
    #[arg(long, default_value_t = end_to_end::DEFAULT_CONCURRENCY)]
    concurrency: usize,
}

#[derive(clap::Args)]
struct CompareArgs {
    /// The baseline results or report.
    #[arg(long, required_unless_present = "history")]
    baseline: Option<PathBuf>,
    /// The current results or report (with --history: default the newest file there).
    #[arg(long)]
    current: Option<PathBuf>,
    /// A directory of past results; compare with the median of the last `--last` runs.
    #[arg(long, conflicts_with = "baseline")]
    history: Option<PathBuf>,
    /// Trailing runs of the history to compare with.
    #[arg(long, default_value_t = 5)]
    last: usize,
    /// Noise threshold: changes of the median within it are never regressions.
    #[arg(long, default_value = "5%", value_parser = parse_percent)]
    threshold: f64,
    /// The contract whose counters and ratios are compared too (their
    /// direction comes from its thresholds).
    #[arg(long, default_value = "perf-contract.toml")]
    contract: PathBuf,
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Format {
    Table,
    Json,
    Md,
    Csv,
}

#[derive(Clone, Copy, ValueEnum)]
enum StatsFormat {
    Json,
    Table,
}

fn parse_percent(text: &str) -> Result<f64, String> {
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
        Command::Stats { input, format } => stats(&input, format),
        Command::Report { input, format } => report_cmd(&input, format),
        Command::Compare(args) => compare_cmd(&args),
        Command::Validate(args) => match tokio::runtime::Runtime::new() {
            Ok(rt) => rt.block_on(validate(args)),
            Err(e) => Err(Error::Task {
                what: "the async runtime".into(),
                message: e.to_string(),
            }),
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

fn json<T: serde::Serialize>(value: &T, what: &str) -> tidepool::Result<String> {
    serde_json::to_string_pretty(value).map_err(|source| Error::Json {
        what: what.into(),
        source,
    })
}

async fn validate(args: ValidateArgs) -> tidepool::Result<ExitCode> {
    if args.list {
        for s in scenarios::SCENARIOS {
            println!(
                "{:<20} {}{}",
                s.spec.name,
                s.spec.description,
                if s.needs_browser { " [Chromium]" } else { "" }
            );
        }
        return Ok(ExitCode::SUCCESS);
    }
    let contract = load_contract(&args.contract)?;
    let chosen: Vec<&'static Scenario> = if args.scenarios.is_empty() {
        scenarios::SCENARIOS.iter().collect()
    } else {
        args.scenarios
            .iter()
            .map(|n| scenarios::find(n))
            .collect::<tidepool::Result<_>>()?
    };
    if chosen.iter().any(|s| s.needs_browser) {
        tidepool::browser::locate_chromium(None).map_err(|e| {
            Error::config("environment", format!("{e}. Run `make deps` (or apt-get install chromium), or leave out the scenarios marked [Chromium] in --list"))
        })?;
    }
    let urls = match &args.urls {
        Some(path) => {
            if chosen.len() != 1 || chosen[0].spec.name != "end_to_end" {
                return Err(Error::config(
                    "--urls",
                    "goes with --scenario end_to_end alone",
                ));
            }
            if args.concurrency == 0 {
                return Err(Error::config("--concurrency", "must be at least 1"));
            }
            let text = std::fs::read_to_string(path).map_err(|e| Error::io("reading", path, e))?;
            let urls: Vec<String> = text
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with('#'))
                .map(str::to_owned)
                .collect();
            if let Some((line, bad)) = text
                .lines()
                .enumerate()
                .map(|(i, l)| (i + 1, l.trim()))
                .find(|(_, l)| {
                    !(l.is_empty()
                        || l.starts_with('#')
                        || l.starts_with("http://")
                        || l.starts_with("https://"))
                })
            {
                return Err(Error::BadInputLine {
                    source_name: path.display().to_string(),
                    line,
                    text: bad.to_owned(),
                    reason: "not an http:// or https:// URL".into(),
                });
            }
            if urls.is_empty() {
                return Err(Error::config(
                    "--urls",
                    format!("{} lists no URLs", path.display()),
                ));
            }
            Some(urls)
        }
        None => None,
    };
    let profile = RunProfile::new(Depth::Full, args.iterations);
    if args.controls {
        return validate_controls(&chosen, profile, &contract).await;
    }

    let interactive = std::io::stderr().is_terminal();
    let bar = progress_bar(chosen.len(), interactive);
    let mut done: Vec<MetricSummary> = Vec::new();
    let mut interrupted = false;
    for (i, scenario) in chosen.iter().enumerate() {
        let name = scenario.spec.name;
        bar.set_message(format!("running {name}"));
        if !interactive {
            eprintln!("[{}/{}] running {name} ...", i + 1, chosen.len());
        }
        let t = Instant::now();
        let run = async {
            match &urls {
                Some(urls) => {
                    let mut s =
                        end_to_end::compare_crawls(profile, urls, urls, args.concurrency, false)
                            .await?;
                    s.note(format!(
                        "crawled {} URLs from {}",
                        urls.len(),
                        args.urls.as_deref().unwrap_or(Path::new("")).display()
                    ));
                    contract.apply(&mut s)?;
                    // Your pages may be down or slow for reasons of their own;
                    // the checks that every fixture page loads and extracts
                    // right do not apply. Failures are reported per host.
                    const FIXTURE_ONLY: [&str; 2] = ["page_errors", "wrong_extractions"];
                    s.verdicts
                        .retain(|v| !FIXTURE_ONLY.contains(&v.figure.as_str()));
                    s.note(format!(
                        "with --urls, fixture-only thresholds are not judged: {}",
                        FIXTURE_ONLY.join(", ")
                    ));
                    report::write_json(&s, &report::default_dir())?;
                    Ok(s)
                }
                None => scenarios::run_checked(name, profile, &contract)
                    .await
                    .map(|o| o.summary),
            }
        };
        tokio::select! {
            summary = run => {
                let summary = summary?;
                if !interactive {
                    eprintln!("[{}/{}] {name}: {:?} in {:.1}s", i + 1, chosen.len(), Grade::of(&summary.verdicts), t.elapsed().as_secs_f64());
                }
                done.push(summary);
                bar.inc(1);
            }
            _ = tokio::signal::ctrl_c() => {
                // Dropping the scenario's future drops its pools, whose
                // browsers are killed and reaped and their profiles removed.
                interrupted = true;
                bar.abandon_with_message(format!("interrupted during {name}"));
                eprintln!("tidepool: interrupted during {name}; writing partial results");
                break;
            }
        }
    }
    bar.finish_and_clear();
    let results = ValidationResults::new(&args.contract, done, !interrupted);
    if let Some(dir) = args.output.parent() {
        std::fs::create_dir_all(dir).map_err(|e| Error::io("creating", dir, e))?;
    }
    tidepool::write_atomic(&args.output, json(&results, "the results")?.as_bytes())?;
    print!("{}", render_results(&results, args.format)?);
    eprintln!("results: {}", args.output.display());
    if interrupted {
        return Ok(ExitCode::from(130));
    }
    for s in &results.scenarios {
        if let Some(message) = failure_message(&s.scenario, &s.verdicts) {
            eprint!("{message}");
        }
    }
    Ok(if results.passed() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// The contract at `path`; a missing file says where to run from.
fn load_contract(path: &Path) -> tidepool::Result<Contract> {
    Contract::load(path, &scenarios::catalog()).map_err(|e| match e {
        Error::Io { .. } => Error::config(
            "--contract",
            format!("{e}; run from the repository root or pass --contract PATH"),
        ),
        other => other,
    })
}

/// A progress bar of `len` steps on a terminal; hidden otherwise (the callers
/// print plain lines instead).
fn progress_bar(len: usize, interactive: bool) -> ProgressBar {
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

/// `validate --controls`: every control of the chosen scenarios, one line per
/// threshold it targets, then the thresholds that have none.
async fn validate_controls(
    chosen: &[&'static Scenario],
    profile: RunProfile,
    contract: &Contract,
) -> tidepool::Result<ExitCode> {
    let controls: Vec<_> = scenarios::all_controls()
        .filter(|(s, _)| chosen.iter().any(|c| c.spec.name == s.spec.name))
        .collect();
    let interactive = std::io::stderr().is_terminal();
    let bar = progress_bar(controls.len(), interactive);
    let mut all_rejected = true;
    let mut lines = Vec::new();
    for (i, (scenario, control)) in controls.iter().enumerate() {
        let id = format!("{}.{}", scenario.spec.name, control.name);
        bar.set_message(format!("running {id}"));
        if !interactive {
            eprintln!("[{}/{}] running {id} ...", i + 1, controls.len());
        }
        let outcome = tokio::select! {
            outcome = scenarios::run_control(scenario, control, profile, contract) => outcome?,
            _ = tokio::signal::ctrl_c() => {
                bar.abandon_with_message(format!("interrupted during {id}"));
                eprintln!("tidepool: interrupted during {id}");
                return Ok(ExitCode::from(130));
            }
        };
        all_rejected &= outcome.rejected();
        lines.extend(outcome.lines());
        bar.inc(1);
    }
    bar.finish_and_clear();
    println!("threshold -> control: verdict (figure)");
    for line in &lines {
        println!("{line}");
    }
    for (threshold, why) in scenarios::WITHOUT_CONTROL {
        if chosen
            .iter()
            .any(|s| threshold.starts_with(&format!("{}.", s.spec.name)))
        {
            println!("{threshold} -> no control yet: {why}");
        }
    }
    for gap in scenarios::coverage_gaps(contract) {
        println!("{gap}");
        all_rejected = false;
    }
    Ok(if all_rejected {
        ExitCode::SUCCESS
    } else {
        eprintln!("tidepool: a threshold passed its negative control, or has none: it cannot tell that regression apart");
        ExitCode::from(1)
    })
}

fn verdict_rows(results: &ValidationResults) -> Vec<Vec<String>> {
    results
        .scenarios
        .iter()
        .flat_map(|s| {
            let grade = results
                .grades
                .get(&s.scenario)
                .copied()
                .unwrap_or(Grade::Poor);
            s.verdicts.iter().map(move |v| {
                let mut row = vec![s.scenario.clone()];
                row.extend(report::verdict_cells(v));
                row.push(if v.limit == 0.0 {
                    "-".into()
                } else {
                    format!("{:+.1}%", v.margin * 100.0)
                });
                row.push(format!("{grade:?}"));
                row
            })
        })
        .collect()
}

const VERDICT_HEADER: [&str; 8] = [
    "scenario",
    "threshold",
    "metric",
    "value",
    "limit",
    "verdict",
    "margin",
    "grade",
];

fn render_results(results: &ValidationResults, format: Format) -> tidepool::Result<String> {
    let rows = verdict_rows(results);
    Ok(match format {
        Format::Json => json(results, "the results")? + "\n",
        Format::Table => {
            let mut out = tidepool::report::layout_table(&VERDICT_HEADER, &rows);
            if !results.complete {
                out += "INCOMPLETE: the run was interrupted\n";
            }
            out
        }
        Format::Md => {
            let mut out = String::from("## tidepool performance contract\n\n");
            if !results.complete {
                out += "**Incomplete: the run was interrupted.**\n\n";
            }
            out += &tidepool::report::markdown_table(&VERDICT_HEADER, &rows);
            for s in &results.scenarios {
                out += "\n";
                out += &tidepool::report::to_markdown(s);
            }
            out
        }
        Format::Csv => csv(&results.scenarios),
    })
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_owned()
    }
}

fn csv(summaries: &[MetricSummary]) -> String {
    let mut out =
        String::from("scenario,kind,name,unit,n,mean,p50,p95,p99,max,value,limit,verdict\n");
    for s in summaries {
        let sc = csv_field(&s.scenario);
        for (name, m) in &s.metrics {
            let q = &m.summary;
            out += &format!(
                "{sc},measurement,{},{},{},{},{},{},{},{},,,\n",
                csv_field(name),
                csv_field(&m.unit),
                q.n,
                q.mean,
                q.p50,
                q.p95,
                q.p99,
                q.max
            );
        }
        for (name, v) in &s.counters {
            out += &format!("{sc},counter,{},count,,,,,,,{v},,\n", csv_field(name));
        }
        for (name, v) in &s.ratios {
            out += &format!("{sc},ratio,{},ratio,,,,,,,{v},,\n", csv_field(name));
        }
        for v in &s.verdicts {
            out += &format!(
                "{sc},threshold,{},{},,,,,,,{},{} {},{}\n",
                csv_field(&v.threshold),
                csv_field(&v.unit),
                v.actual,
                v.op,
                v.limit,
                if v.passed { "pass" } else { "FAIL" }
            );
        }
    }
    out
}

fn report_cmd(input: &Path, format: Format) -> tidepool::Result<ExitCode> {
    let summaries = report::read_summaries(input)?;
    let out = match format {
        Format::Json => json(&summaries, "the report")? + "\n",
        Format::Csv => csv(&summaries),
        Format::Md => summaries
            .iter()
            .map(report::to_markdown)
            .collect::<Vec<_>>()
            .join("\n"),
        Format::Table => summaries
            .iter()
            .map(report::to_table)
            .collect::<Vec<_>>()
            .join("\n"),
    };
    print!("{out}");
    Ok(ExitCode::SUCCESS)
}

fn compare_cmd(args: &CompareArgs) -> tidepool::Result<ExitCode> {
    let contract = load_contract(&args.contract)?;
    let (changes, figures, against) = match (&args.baseline, &args.history) {
        (Some(baseline), _) => {
            let current = args
                .current
                .as_ref()
                .ok_or_else(|| Error::config("--current", "is required with --baseline"))?;
            let base = report::read_summaries(baseline)?;
            let cur = report::read_summaries(current)?;
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
            let mut runs: Vec<(String, PathBuf, Vec<MetricSummary>)> = Vec::new();
            let entries =
                std::fs::read_dir(dir).map_err(|e| Error::io("listing the history", dir, e))?;
            for entry in entries.filter_map(|e| e.ok()) {
                let path = entry.path();
                if path.extension().is_some_and(|x| x == "json") {
                    let summaries = report::read_summaries(&path)?;
                    let stamp = summaries
                        .first()
                        .map(|s| s.timestamp.clone())
                        .unwrap_or_default();
                    runs.push((stamp, path, summaries));
                }
            }
            runs.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.cmp(&b.1)));
            let current = match &args.current {
                Some(path) => {
                    runs.retain(|r| &r.1 != path);
                    report::read_summaries(path)?
                }
                None => runs.pop().map(|r| r.2).ok_or_else(|| {
                    Error::config("--history", format!("{} holds no reports", dir.display()))
                })?,
            };
            if runs.is_empty() {
                return Err(Error::config(
                    "--history",
                    format!("{} holds no run before the current one", dir.display()),
                ));
            }
            let history: Vec<Vec<MetricSummary>> = runs.into_iter().map(|r| r.2).collect();
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
        let both = serde_json::json!({ "measurements": changes, "figures": figures });
        println!("{}", json(&both, "the comparison")?);
    } else {
        print!(
            "{}",
            render_changes(&changes, &against, args.threshold, args.format)?
        );
    }
    if args.format != Format::Json && !figures.is_empty() {
        println!("\ncounters and ratios (no samples: judged against the noise threshold alone; a count off 0 always counts):");
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
        Format::Csv => {
            let mut out = header.join(",") + "\n";
            for r in &rows {
                out += &(r.iter().map(|f| csv_field(f)).collect::<Vec<_>>().join(",") + "\n");
            }
            out
        }
        Format::Md => format!(
            "### tidepool: performance compared with {against}\n\nA regression is a median change beyond {threshold}% that is significant (Mann-Whitney U, p < {}).\n\n{}",
            report::ALPHA,
            tidepool::report::markdown_table(&header, &rows)
        ),
        Format::Table => format!("compared with {against} (threshold {threshold}%)\n{}", tidepool::report::layout_table(&header, &rows)),
    })
}

fn stats(input: &Path, format: StatsFormat) -> tidepool::Result<ExitCode> {
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
