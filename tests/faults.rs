//! Faults injected on purpose: killed, hung and crashed browsers, cancelled
//! acquires, bad cache entries, torn reports and malformed contracts; each
//! survived, nothing lost, the pool back within three launches.

use tidepool::harness::run_contract;
use tidepool::testkit::ResourceCheck;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_meets_its_contract() {
    let resources = ResourceCheck::start();
    let report = run_contract("faults").await;
    let summary = &report.summary;
    for kind in [
        "killed_mid_batch",
        "killed_mid_navigation",
        "hung_browser",
        "renderer_crash",
        "cancelled_acquire",
        "bad_cache_entry",
        "torn_report",
        "malformed_contract",
    ] {
        let injected = summary.counters[&format!("{kind}_injected")];
        assert!(injected >= 2, "{kind}: {injected} injected");
        assert_eq!(
            summary.counters[&format!("{kind}_survived")],
            injected,
            "{kind}: not every fault survived"
        );
    }
    tidepool::assert_contract_snapshot!("faults", report);
    resources.assert_clean().await;
}
