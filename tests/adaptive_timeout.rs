//! Adaptive timeouts on a seeded trace through the real fixture server,
//! against a fixed 30 s timeout and a per-host p99 oracle.

use tidepool::harness::run_contract;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn adaptive_timeout_meets_its_contract() {
    let report = run_contract("adaptive_timeout").await;
    let summary = &report.summary;
    // All three estimators ran the trace, beside both baselines.
    for name in ["default", "rfc6298", "spec", "fixed", "oracle"] {
        assert!(
            summary.ratios.contains_key(&format!("waste_{name}_s")),
            "{name}"
        );
        assert!(
            summary.ratios.contains_key(&format!("false_rate_{name}")),
            "{name}"
        );
    }
    assert!(
        summary.counters["hangs"] > 0,
        "the trace must contain requests that never answer"
    );
    tidepool::assert_contract_snapshot!("adaptive_timeout", report);
}
