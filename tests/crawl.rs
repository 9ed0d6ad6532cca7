//! The crawl at the floor: each isolation mode's pages per second against a
//! raw-CDP client doing only what a crawl needs, in one run.

use tidepool::harness::run_contract;
use tidepool::testkit::ResourceCheck;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crawl_meets_its_contract() {
    let resources = ResourceCheck::start();
    let report = run_contract("crawl").await;
    let summary = &report.summary;
    for side in ["floor", "none", "wipe", "context"] {
        assert!(
            summary.ratios[&format!("{side}_cpu_ms_per_page")] > 0.0,
            "{side}: no CPU measured"
        );
    }
    tidepool::assert_contract_snapshot!("crawl", report);
    resources.assert_clean().await;
}
