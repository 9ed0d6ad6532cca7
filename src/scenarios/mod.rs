//! The measured workloads, shared by the contract suites and the CLI.
//!
//! Each scenario registers itself once in [`SCENARIOS`] with the
//! [`ScenarioSpec`] of the figures it reports; the contract is validated against
//! those specs, the tests run scenarios through [`run_checked`], and so does
//! `tidepool validate`. One scenario, three consumers; no figure is computed twice.

mod adaptive_timeout;
mod aot_cache;
mod browser_pool;
mod cdp_pool;
pub mod control;
mod crawl;
pub mod end_to_end;
mod faults;
mod fixture_roundtrip;
mod fleet;
mod memory_pressure;
mod naive;
mod urls;
pub(crate) mod wasm_tiers;

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;

use crate::contract::Contract;
use crate::error::{Error, Result};
use crate::profile::RunProfile;
use crate::report::{self, ScenarioReport};
use crate::summary::MetricSummary;
use crate::summary::ScenarioSpec;
use tidepool_pools::Error as PoolError;

pub use control::{
    all_controls, coverage_gaps, find_control, run_control, Control, ControlOutcome,
    WITHOUT_CONTROL,
};
pub use urls::{parse_urls, read_urls};

/// The future a scenario run returns.
pub type ScenarioFuture = Pin<Box<dyn Future<Output = Result<MetricSummary>> + Send>>;

/// A registered scenario: what it reports, and how to run it.
#[derive(Debug, Clone, Copy)]
pub struct Scenario {
    /// Name, description and figures.
    pub spec: ScenarioSpec,
    /// Runs it at the given depth.
    pub run: fn(RunProfile) -> ScenarioFuture,
    /// Whether it launches Chromium (the CLI checks for it before running).
    pub needs_browser: bool,
    /// Its negative controls: bad variants the contract must reject.
    pub controls: &'static [control::Control],
}

/// Runs a scenario whose work is synchronous (compiling, instantiating) on the
/// blocking pool, so it neither stalls nor is stalled by the async runtime.
/// Waits until `pool` has `n` idle browsers before a measurement starts, and
/// fails the run if it does not: a measurement begun on a pool still warming
/// up would time the warm-up, not the pool.
pub(crate) async fn warm_before(
    pool: &crate::browser::BrowserPool,
    n: usize,
    timeout: std::time::Duration,
    what: &str,
) -> Result<()> {
    if pool.wait_until_idle(n, timeout).await {
        Ok(())
    } else {
        Err(PoolError::Timeout {
            key: format!("{n} idle browsers before {what} (pool: {:?})", pool.stats()),
            after: timeout,
        }
        .into())
    }
}

/// Milliseconds since `t`.
pub(crate) fn ms_since(t: std::time::Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1e3
}

/// Waits, polling every 20 ms, until `done` holds or `timeout` passes;
/// returns whether it held. For state that another task moves on its own
/// clock (a pool's sampler, its maintenance) and no notification covers.
pub(crate) async fn wait_for(timeout: std::time::Duration, mut done: impl FnMut() -> bool) -> bool {
    let deadline = std::time::Instant::now() + timeout;
    while !done() {
        if std::time::Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    true
}

pub(crate) fn blocking(
    name: &'static str,
    profile: RunProfile,
    run: fn(RunProfile) -> Result<MetricSummary>,
) -> ScenarioFuture {
    Box::pin(async move {
        tokio::task::spawn_blocking(move || run(profile))
            .await
            .map_err(|e| Error::task(format!("scenario {name}"), e))?
    })
}

/// Every scenario, in the order `--list` prints them.
pub static SCENARIOS: &[Scenario] = &[
    fixture_roundtrip::SCENARIO,
    browser_pool::SCENARIO,
    cdp_pool::SCENARIO,
    memory_pressure::SCENARIO,
    adaptive_timeout::SCENARIO,
    aot_cache::SCENARIO,
    wasm_tiers::SCENARIO,
    end_to_end::SCENARIO,
    crawl::SCENARIO,
    faults::SCENARIO,
    fleet::SCENARIO,
];

/// The specs of every scenario: what a contract may name.
pub fn catalog() -> Vec<ScenarioSpec> {
    SCENARIOS.iter().map(|s| s.spec).collect()
}

/// The scenario called `name`.
pub fn find(name: &str) -> Result<&'static Scenario> {
    SCENARIOS
        .iter()
        .find(|s| s.spec.name == name)
        .ok_or_else(|| Error::UnknownScenario {
            name: name.to_owned(),
            known: SCENARIOS
                .iter()
                .map(|s| s.spec.name)
                .collect::<Vec<_>>()
                .join(", "),
        })
}

/// A checked run: its report (the record and its verdicts), and where the
/// report was written.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The record and the contract's verdicts on it.
    pub report: ScenarioReport,
    /// The JSON report written for it.
    pub report_path: PathBuf,
}

impl Outcome {
    /// Whether every threshold held.
    pub fn passed(&self) -> bool {
        self.report.passed()
    }
}

/// Runs scenario `name`, judges it by `contract`, and writes its report to
/// [`report::default_dir`].
pub async fn run_checked(name: &str, profile: RunProfile, contract: &Contract) -> Result<Outcome> {
    let scenario = find(name)?;
    let _span = tracing::info_span!("scenario", name).entered();
    tracing::info!(iterations = profile.iterations(), depth = ?profile.depth, "running");
    drop(_span);
    let mut summary = (scenario.run)(profile).await?;
    if scenario.needs_browser {
        summary.machine.sandbox = Some(crate::browser::Sandbox::Auto.describe());
    }
    let verdicts = contract.check(&summary)?;
    let report = ScenarioReport::new(summary, verdicts);
    let report_path = report::write_json(&report, &report::default_dir())?;
    Ok(Outcome {
        report,
        report_path,
    })
}

/// Runs the end-to-end crawl on `urls` instead of the fixture pages, judges
/// it by every end_to_end threshold except those on fixture-only figures
/// (your pages may be down or slow for reasons of their own; failures are
/// reported per host), and writes its report like any other scenario's.
pub async fn run_checked_on_urls(
    urls: &[String],
    concurrency: usize,
    profile: RunProfile,
    contract: &Contract,
) -> Result<Outcome> {
    let spec = find("end_to_end")?.spec;
    let mut summary = end_to_end::compare_crawls(profile, urls, urls, concurrency, false).await?;
    let fixture_only = |figure: &str| spec.figure(figure).is_some_and(|f| f.fixture_only);
    let (skipped, judged): (Vec<_>, Vec<_>) = contract
        .thresholds(spec.name)
        .iter()
        .partition(|t| t.subject.figures().into_iter().any(fixture_only));
    summary.note(format!(
        "crawled {} URLs with {concurrency} workers",
        urls.len()
    ));
    if !skipped.is_empty() {
        summary.note(format!(
            "fixture-only thresholds, not judged on these URLs: {}",
            skipped
                .iter()
                .map(|t| t.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    let names: Vec<&str> = judged.iter().map(|t| t.name.as_str()).collect();
    let verdicts = contract.check_only(&summary, &names)?;
    let report = ScenarioReport::new(summary, verdicts);
    let report_path = report::write_json(&report, &report::default_dir())?;
    Ok(Outcome {
        report,
        report_path,
    })
}
