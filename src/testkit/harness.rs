use std::path::PathBuf;

use serde_json::{json, Map, Value};

use crate::contract::{failure_message, Contract};
use crate::profile::RunProfile;
use crate::report::MetricSummary;
use crate::scenarios;

/// Environment variable naming another contract file than the crate's own.
pub const CONTRACT_ENV: &str = "TIDEPOOL_CONTRACT";

/// The contract the suites check: `$TIDEPOOL_CONTRACT`, else this crate's
/// `perf-contract.toml`.
pub fn contract_path() -> PathBuf {
    std::env::var_os(CONTRACT_ENV).map_or_else(
        || PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/perf-contract.toml")),
        PathBuf::from,
    )
}

/// The log filter when `RUST_LOG` is unset. chromiumoxide is silenced: it logs
/// every CDP message of a newer Chromium it cannot model, and an error for every
/// socket a retired browser drops, which is expected and drowns what matters.
pub const DEFAULT_LOG_FILTER: &str = "warn,chromiumoxide=off,tidepool=info";

/// Sends `tracing` output to the test's captured output, filtered by `RUST_LOG`
/// (default [`DEFAULT_LOG_FILTER`]). Safe to call more than once.
pub fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(DEFAULT_LOG_FILTER));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_test_writer()
        .with_ansi(false)
        .try_init();
}

/// Runs scenario `name` at the depth the nextest profile asks for, checks it
/// against the contract, writes its report, prints its table, and panics with
/// one line per threshold (actual, limit, ratio, how far past) if any fails.
///
/// Returns the checked summary for the test's own assertions and snapshot.
pub async fn run_contract(name: &str) -> MetricSummary {
    init_tracing();
    let profile = RunProfile::from_env().unwrap_or_else(|e| panic!("{e}"));
    let contract = Contract::load(&contract_path(), &scenarios::catalog())
        .unwrap_or_else(|e| panic!("loading the contract: {e}"));
    let outcome = scenarios::run_checked(name, profile, &contract)
        .await
        .unwrap_or_else(|e| panic!("scenario {name}: {e}"));
    println!("{}", crate::report::to_table(&outcome.summary));
    println!("report: {}", outcome.report_path.display());
    if let Some(message) = failure_message(name, &outcome.summary.verdicts) {
        panic!("{message}report: {}", outcome.report_path.display());
    }
    outcome.summary
}

/// The deterministic part of a summary, for insta snapshots: the figures it
/// reports (names and units), its counters, and the contract's thresholds with
/// their verdicts. Timings are left out; counters named in `scaled` (those that
/// grow with the iteration count) are replaced by a marker, so the snapshot is
/// the same under every profile.
pub fn snapshot_view(summary: &MetricSummary, scaled: &[&str]) -> Value {
    let metrics: Map<String, Value> = summary
        .metrics
        .iter()
        .map(|(k, m)| (k.clone(), json!(m.unit)))
        .collect();
    let counters: Map<String, Value> = summary
        .counters
        .iter()
        .map(|(k, v)| {
            let v = if scaled.contains(&k.as_str()) {
                json!("[scales with iterations]")
            } else {
                json!(v)
            };
            (k.clone(), v)
        })
        .collect();
    let verdicts: Vec<Value> = summary
        .verdicts
        .iter()
        .map(|v| {
            json!({
                "threshold": v.threshold,
                "figure": v.figure,
                "op": v.op,
                "limit": v.limit,
                "unit": v.unit,
                "passed": v.passed,
            })
        })
        .collect();
    json!({
        "scenario": summary.scenario,
        "complete": summary.complete,
        "metrics": metrics,
        "counters": counters,
        "ratios": summary.ratios.keys().collect::<Vec<_>>(),
        "verdicts": verdicts,
    })
}
