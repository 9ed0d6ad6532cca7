//! `tidepool ab`: a baseline build against a current one in randomized,
//! interleaved rounds (RMIT, Abedi & Brecht 2017), judged figure by figure
//! on the paired rounds (see `tidepool::report::analyse`).
//!
//! Each round runs every chosen scenario once with each build: the
//! scenarios in a random order, and for each scenario the two builds back
//! to back in a random order. A drift of the machine then falls on both
//! sides of a pair instead of reading as a change.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use tidepool::profile::parse_iterations;
use tidepool::report::{self, AbOptions, AbRound, MetricSummary};
use tidepool::scenarios;
use tidepool::Error;

use crate::{json, load_contract, parse_percent, progress_bar, Format};

#[derive(clap::Args)]
pub(crate) struct AbArgs {
    /// The baseline build's `tidepool` binary.
    #[arg(long, value_name = "BIN")]
    pub(crate) baseline_bin: PathBuf,
    /// The current build's `tidepool` binary.
    #[arg(long, value_name = "BIN")]
    pub(crate) current_bin: PathBuf,
    /// Where the baseline runs, so it reads its own `perf-contract.toml`
    /// (default: the current directory).
    #[arg(long, value_name = "DIR")]
    pub(crate) baseline_dir: Option<PathBuf>,
    /// The commit the baseline's reports are labelled with.
    #[arg(long)]
    pub(crate) baseline_commit: Option<String>,
    /// The commit the current build's reports are labelled with.
    #[arg(long)]
    pub(crate) current_commit: Option<String>,
    /// Run only these scenarios (repeatable); all by default.
    #[arg(long = "scenario", value_name = "NAME")]
    pub(crate) scenarios: Vec<String>,
    /// Most rounds. With n rounds the one-sided signed-rank test cannot go
    /// below p = 1/2^n: 12 decide a scenario's family of up to 200 figures.
    #[arg(long, default_value_t = 12)]
    pub(crate) rounds: usize,
    /// Fewest rounds: from here on the check stops as soon as nothing is
    /// flagged and every judged figure is shown not worse by the threshold
    /// (stopping then can only give up a flag, never add one).
    #[arg(long, default_value_t = 8)]
    pub(crate) min_rounds: usize,
    /// Base iteration count of each run (default: 20, the quick sizes).
    #[arg(long, value_parser = parse_iterations, default_value = "20")]
    pub(crate) iterations: usize,
    /// Noise threshold: changes within it are never regressions.
    #[arg(long, default_value = "5%", value_parser = parse_percent)]
    pub(crate) threshold: f64,
    /// The contract that says which way each counter and ratio is worse.
    #[arg(long, default_value = "perf-contract.toml")]
    pub(crate) contract: PathBuf,
    /// Where the runs' results, logs, `ab.json` and `ab.md` go.
    #[arg(long, default_value = "target/tidepool/ab")]
    pub(crate) out_dir: PathBuf,
    /// Seed of the order and the bootstrap (default: from the clock; the
    /// report prints it).
    #[arg(long)]
    pub(crate) seed: Option<u64>,
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub(crate) format: Format,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    Baseline,
    Current,
}

impl Side {
    fn name(self) -> &'static str {
        match self {
            Side::Baseline => "baseline",
            Side::Current => "current",
        }
    }
}

/// Runs the rounds, judges them, writes `ab.json` and `ab.md`, prints the
/// chosen format; exit 1 on a regression.
pub(crate) fn run(args: &AbArgs) -> tidepool::Result<ExitCode> {
    if args.rounds < 2 {
        return Err(Error::config("--rounds", "must be at least 2"));
    }
    if args.min_rounds > args.rounds {
        return Err(Error::config(
            "--min-rounds",
            format!("must be at most --rounds ({})", args.rounds),
        ));
    }
    for (flag, bin) in [
        ("--baseline-bin", &args.baseline_bin),
        ("--current-bin", &args.current_bin),
    ] {
        if !bin.is_file() {
            return Err(Error::config(
                flag,
                format!("{} is not a file", bin.display()),
            ));
        }
    }
    let contract = load_contract(&args.contract)?;
    let chosen: Vec<&'static str> = if args.scenarios.is_empty() {
        scenarios::SCENARIOS.iter().map(|s| s.spec.name).collect()
    } else {
        args.scenarios
            .iter()
            .map(|n| scenarios::find(n).map(|s| s.spec.name))
            .collect::<tidepool::Result<_>>()?
    };
    let seed = args.seed.unwrap_or_else(|| {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64)
    });
    let runs_dir = args.out_dir.join("runs");
    std::fs::create_dir_all(&runs_dir).map_err(|e| Error::io("creating", &runs_dir, e))?;
    let options = AbOptions {
        threshold_pct: args.threshold,
        seed,
        ..AbOptions::default()
    };
    let mut rng = fastrand::Rng::with_seed(seed);
    let interactive = std::io::stderr().is_terminal();
    let total = args.rounds * chosen.len() * 2;
    let bar = progress_bar(total, interactive);
    let started = Instant::now();
    let mut rounds = Vec::with_capacity(args.rounds);
    let mut order = Vec::new();
    let mut retried = Vec::new();
    let mut done = 0;
    for round in 1..=args.rounds {
        let mut scenarios = chosen.clone();
        rng.shuffle(&mut scenarios);
        let mut this = AbRound::default();
        for scenario in scenarios {
            let sides = if rng.bool() {
                [Side::Baseline, Side::Current]
            } else {
                [Side::Current, Side::Baseline]
            };
            for side in sides {
                done += 1;
                let what = format!("round {round}/{} {scenario} {}", args.rounds, side.name());
                bar.set_message(what.clone());
                if !interactive {
                    eprintln!("[{done}/{total}] {what}");
                }
                // One broken run (a browser that hung at start on a loaded
                // machine) must not void the rounds around it; a second
                // failure in a row is the build's, and ends the check.
                let summaries = match run_one(args, side, round, scenario, &runs_dir, "") {
                    Ok(s) => s,
                    Err(first) => {
                        eprintln!("tidepool ab: {first}; running it once more");
                        retried.push(format!("r{round} {scenario} {}: {first}", side.name()));
                        run_one(args, side, round, scenario, &runs_dir, "-retry")?
                    }
                };
                match side {
                    Side::Baseline => this.baseline.extend(summaries),
                    Side::Current => this.current.extend(summaries),
                }
                order.push(format!("r{round} {scenario} {}", side.name()));
                bar.inc(1);
            }
        }
        rounds.push(this);
        if round >= args.min_rounds && round < args.rounds {
            let so_far = report::analyse(&rounds, &contract, &options);
            if !so_far.undecided(args.rounds - round) {
                eprintln!(
                    "tidepool ab: stopping after {round} of {} rounds: nothing flagged and every judged figure cleared",
                    args.rounds
                );
                break;
            }
        }
    }
    bar.finish_and_clear();
    let mut verdict = report::analyse(&rounds, &contract, &options);
    verdict.order = order;
    verdict.retried = retried;
    verdict.wall_s = started.elapsed().as_secs_f64();
    let baseline = label(&args.baseline_bin, args.baseline_commit.as_deref());
    let current = label(&args.current_bin, args.current_commit.as_deref());
    let markdown = report::ab_markdown(&verdict, &baseline, &current);
    let json_text = json(&verdict, "the A/B report")?;
    tidepool::write_atomic(&args.out_dir.join("ab.json"), json_text.as_bytes())?;
    tidepool::write_atomic(&args.out_dir.join("ab.md"), markdown.as_bytes())?;
    match args.format {
        Format::Json => println!("{json_text}"),
        Format::Md => println!("{markdown}"),
        Format::Table => println!("{}", report::ab_table(&verdict)),
        Format::Csv => print!(
            "{}",
            crate::csv::rows(&report::AB_HEADER, &report::ab_rows(&verdict))?
        ),
    }
    let regressions: Vec<_> = verdict.regressions().collect();
    eprintln!(
        "tidepool ab: {} rounds in {:.0} s, seed {seed}; {}",
        verdict.rounds,
        verdict.wall_s,
        if regressions.is_empty() {
            "no regression".to_owned()
        } else {
            format!("{} regression(s)", regressions.len())
        }
    );
    for f in &regressions {
        let how = match (f.events, f.bound_pct) {
            (Some(e), _) => format!("its limit breached in {} rounds, {} before", e[1], e[0]),
            (None, Some(b)) => format!(
                "{:+.1}%, worse by at least {b:.1}%",
                f.change_pct.unwrap_or(f64::NAN)
            ),
            (None, None) => "worse".to_owned(),
        };
        eprintln!(
            "regression: {}.{}: {how} (corrected p {:.2e} in a family of {})",
            f.scenario,
            f.figure,
            f.p_corrected.unwrap_or(1.0),
            verdict.families.get(&f.scenario).copied().unwrap_or(0)
        );
    }
    Ok(if regressions.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// One scenario run by one build: its records. A run whose contract failed
/// (exit 1) still counts, since its figures are what is compared; any other
/// exit is an error naming the run and its log.
fn run_one(
    args: &AbArgs,
    side: Side,
    round: usize,
    scenario: &str,
    runs_dir: &Path,
    attempt: &str,
) -> tidepool::Result<Vec<MetricSummary>> {
    let stem = format!("r{round:02}-{scenario}-{}{attempt}", side.name());
    let output = runs_dir.join(format!("{stem}.json"));
    let log_path = runs_dir.join(format!("{stem}.log"));
    let log = std::fs::File::create(&log_path).map_err(|e| Error::io("creating", &log_path, e))?;
    let (bin, dir, commit) = match side {
        Side::Baseline => (
            &args.baseline_bin,
            args.baseline_dir.as_deref(),
            args.baseline_commit.as_deref(),
        ),
        Side::Current => (&args.current_bin, None, args.current_commit.as_deref()),
    };
    // The output path must survive a change of directory.
    let output_abs = absolute(&output)?;
    let mut cmd = Command::new(absolute(bin)?);
    cmd.args(["validate", "--scenario", scenario, "--format", "json"])
        .arg("--iterations")
        .arg(args.iterations.to_string())
        .arg("--output")
        .arg(&output_abs)
        .stdout(Stdio::null())
        .stderr(log);
    // Each side's per-scenario reports go beside its runs, never over the
    // reports of `make perf` in target/tidepool/reports.
    let reports = absolute(&runs_dir.join(format!("reports-{}", side.name())))?;
    cmd.env(tidepool::report::REPORT_DIR_ENV, reports);
    if let Some(dir) = dir {
        cmd.current_dir(dir);
    }
    if let Some(commit) = commit {
        cmd.env("TIDEPOOL_GIT_COMMIT", commit);
    }
    let status = cmd
        .status()
        .map_err(|e| Error::io("running", bin.as_path(), e))?;
    match status.code() {
        Some(0 | 1) => {}
        code => {
            return Err(Error::config(
                "environment",
                format!(
                    "{} ({}) exited with {} in round {round} on {scenario}; its log: {}",
                    bin.display(),
                    side.name(),
                    code.map_or("a signal".to_owned(), |c| format!("code {c}")),
                    log_path.display()
                ),
            ))
        }
    }
    Ok(report::read_reports(&output_abs)?
        .into_iter()
        .map(|r| r.summary)
        .collect())
}

fn absolute(path: &Path) -> tidepool::Result<PathBuf> {
    std::path::absolute(path).map_err(|e| Error::io("resolving", path, e))
}

fn label(bin: &Path, commit: Option<&str>) -> String {
    match commit {
        Some(c) => format!("`{}`", &c[..c.len().min(12)]),
        None => format!("`{}`", bin.display()),
    }
}
