//! `tidepool validate`: run scenarios (or their negative controls), judge
//! them by the contract, write the combined results.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use tidepool::contract::{failure_message, Contract};
use tidepool::profile::{parse_iterations, Depth, RunProfile};
use tidepool::report::{self, Grade, ScenarioReport, ValidationResults};
use tidepool::scenarios::{self, end_to_end, Scenario};
use tidepool::Error;

use crate::{json, load_contract, progress_bar, Format};

#[derive(clap::Args)]
pub(crate) struct ValidateArgs {
    /// Run only these scenarios (repeatable); all by default.
    #[arg(long = "scenario", value_name = "NAME")]
    pub(crate) scenarios: Vec<String>,
    /// Base iteration count (default: the full count, 100); 20 runs the
    /// quick sizes of `make test`.
    #[arg(long, value_parser = parse_iterations)]
    pub(crate) iterations: Option<usize>,
    /// Where to write the combined results.
    #[arg(long, default_value = "target/tidepool/results.json")]
    pub(crate) output: PathBuf,
    /// The contract to check against.
    #[arg(long, default_value = "perf-contract.toml")]
    pub(crate) contract: PathBuf,
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub(crate) format: Format,
    /// List the scenarios and exit.
    #[arg(long)]
    pub(crate) list: bool,
    /// Run the negative controls instead: a bad variant per threshold, each
    /// of which the contract must reject (exit 1 if one is not rejected).
    #[arg(long, conflicts_with = "urls")]
    pub(crate) controls: bool,
    /// With `--scenario end_to_end`: crawl these URLs (one per line) instead of the fixture pages.
    #[arg(long, value_name = "FILE")]
    pub(crate) urls: Option<PathBuf>,
    /// Concurrent crawl workers with `--urls`.
    #[arg(long, default_value_t = end_to_end::DEFAULT_CONCURRENCY)]
    pub(crate) concurrency: usize,
}

/// Runs the chosen scenarios, or with `--controls` their negative controls.
pub(crate) async fn run(args: ValidateArgs) -> tidepool::Result<ExitCode> {
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
            Some(scenarios::read_urls(path)?)
        }
        None => None,
    };
    let profile = RunProfile::new(Depth::Full, args.iterations);
    if args.controls {
        return controls(&chosen, profile, &contract).await;
    }

    let interactive = std::io::stderr().is_terminal();
    let bar = progress_bar(chosen.len(), interactive);
    let mut done: Vec<ScenarioReport> = Vec::new();
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
                    scenarios::run_checked_on_urls(urls, args.concurrency, profile, &contract).await
                }
                None => scenarios::run_checked(name, profile, &contract).await,
            }
            .map(|outcome| outcome.report)
        };
        tokio::select! {
            report = run => {
                let report = report?;
                if !interactive {
                    eprintln!("[{}/{}] {name}: {:?} in {:.1}s", i + 1, chosen.len(), Grade::of(&report.verdicts), t.elapsed().as_secs_f64());
                }
                done.push(report);
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
    print!("{}", render(&results, args.format)?);
    eprintln!("results: {}", args.output.display());
    if interrupted {
        return Ok(ExitCode::from(130));
    }
    for r in &results.scenarios {
        if let Some(message) = failure_message(&r.summary.scenario, &r.verdicts) {
            eprint!("{message}");
        }
    }
    Ok(if results.passed() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// `validate --controls`: every control of the chosen scenarios, one line per
/// threshold it targets, then the thresholds that have none.
async fn controls(
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

/// The results of a run in `format`.
fn render(results: &ValidationResults, format: Format) -> tidepool::Result<String> {
    Ok(match format {
        Format::Json => json(results, "the results")? + "\n",
        Format::Table => report::results_table(results),
        Format::Md => report::results_markdown(results),
        Format::Csv => crate::csv::reports(&results.scenarios)?,
    })
}
