//! The measuring path end to end, without a browser: the fixture server's round
//! trip over a real socket, judged by perf-contract.toml, reported and
//! snapshotted.

use tidepool::testkit::{run_contract, snapshot_view};

#[tokio::test]
async fn fixture_roundtrip_meets_its_contract() {
    let summary = run_contract("fixture_roundtrip").await;

    // Exact bookkeeping, independent of the contract: every request sent was
    // answered, and each measurement has one sample per iteration.
    let sent = summary.counters["requests_sent"];
    assert_eq!(sent, 2 * summary.iterations as u64);
    assert_eq!(summary.counters["requests_served"], sent);
    assert_eq!(
        summary.metrics["keepalive_us"].summary.n,
        summary.iterations
    );
    assert_eq!(summary.verdicts.len(), 4);

    insta::with_settings!({ snapshot_path => "../snapshots", prepend_module_to_snapshot => false }, {
        insta::assert_json_snapshot!(
            "fixture_roundtrip",
            snapshot_view(&summary, &["requests_sent", "requests_served"])
        );
    });
}
