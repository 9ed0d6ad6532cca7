//! The measuring path end to end, without a browser: the fixture server's round
//! trip over a real socket, judged by perf-contract.toml, reported and
//! snapshotted.

use tidepool::harness::run_contract;

#[tokio::test]
async fn fixture_roundtrip_meets_its_contract() {
    let report = run_contract("fixture_roundtrip").await;
    let summary = &report.summary;

    // Exact bookkeeping, independent of the contract: every request sent was
    // answered, and each measurement has one sample per iteration.
    let sent = summary.counters["requests_sent"];
    assert_eq!(sent, 2 * summary.iterations as u64);
    assert_eq!(summary.counters["requests_served"], sent);
    assert_eq!(
        summary.metrics["keepalive_us"].summary.n,
        summary.iterations
    );
    assert_eq!(report.verdicts.len(), 4);

    tidepool::assert_contract_snapshot!("fixture_roundtrip", report);
}
