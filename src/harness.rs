//! The contract suites' harness, above the scenarios: run one at the depth
//! the nextest profile asks for, judge it by `perf-contract.toml`, write its
//! report, fail with one readable line per broken threshold, and snapshot its
//! deterministic part (feature `testkit`).
//!
//! A contract suite reads:
//!
//! ```no_run
//! # async fn suite() {
//! let report = tidepool::harness::run_contract("fixture_roundtrip").await;
//! assert!(report.passed());
//! // in a test: tidepool::assert_contract_snapshot!("fixture_roundtrip", report);
//! # }
//! ```

use std::path::PathBuf;

use serde_json::{json, Map, Value};

use crate::contract::{failure_message, Contract};
use crate::profile::RunProfile;
use crate::report::ScenarioReport;
use crate::scenarios;
use crate::testkit::init_tracing;

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

/// Runs scenario `name` at the depth the nextest profile asks for, checks it
/// against the contract, writes its report, prints its table, and panics with
/// one line per threshold (actual, limit, ratio, how far past) if any fails.
///
/// Returns the report for the test's own assertions and snapshot.
pub async fn run_contract(name: &str) -> ScenarioReport {
    init_tracing();
    let profile = RunProfile::from_env().unwrap_or_else(|e| panic!("{e}"));
    let contract = Contract::load(&contract_path(), &scenarios::catalog())
        .unwrap_or_else(|e| panic!("loading the contract: {e}"));
    let outcome = scenarios::run_checked(name, profile, &contract)
        .await
        .unwrap_or_else(|e| panic!("scenario {name}: {e}"));
    println!("{}", crate::report::to_table(&outcome.report));
    println!("report: {}", outcome.report_path.display());
    if let Some(message) = failure_message(name, &outcome.report.verdicts) {
        panic!("{message}report: {}", outcome.report_path.display());
    }
    outcome.report
}

/// The deterministic part of a report, for insta snapshots: the figures it
/// reports (names and units), its counters, and the contract's thresholds with
/// their verdicts. Timings are left out, and so are the values of counters
/// whose [`FigureSpec`](crate::summary::FigureSpec) says they scale with the
/// iterations or vary with the run's timing: the snapshot is the same under
/// every profile and every run.
pub fn snapshot_view(report: &ScenarioReport) -> Value {
    let summary = &report.summary;
    let spec = scenarios::find(&summary.scenario).ok().map(|s| s.spec);
    let figure = |name: &str| spec.and_then(|s| s.figure(name));
    let metrics: Map<String, Value> = summary
        .metrics
        .iter()
        .map(|(k, m)| (k.clone(), json!(m.unit)))
        .collect();
    let counters: Map<String, Value> = summary
        .counters
        .iter()
        .map(|(k, v)| {
            let v = match figure(k) {
                Some(f) if f.scales_with_iterations => json!("[scales with iterations]"),
                Some(f) if f.varies => json!("[varies run to run]"),
                _ => json!(v),
            };
            (k.clone(), v)
        })
        .collect();
    let verdicts: Vec<Value> = report
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

/// Snapshots a contract suite's report (see [`snapshot_view`]) as
/// `snapshots/<name>.snap` at the crate root, with the settings every suite
/// shares. Expands to `insta` calls: the test crate depends on `insta`.
#[macro_export]
macro_rules! assert_contract_snapshot {
    ($name:expr, $report:expr) => {
        insta::with_settings!({ snapshot_path => "../snapshots", prepend_module_to_snapshot => false }, {
            insta::assert_json_snapshot!($name, $crate::harness::snapshot_view(&$report));
        })
    };
}
