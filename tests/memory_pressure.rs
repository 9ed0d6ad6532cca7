//! Memory pressure on real Chromium: the contract, and that the figures are
//! the truth (an independent measurement agrees).

use std::process::Command;

use tidepool::browser::{BrowserPool, BrowserPoolConfig};
use tidepool::memory::tree_memory;
use tidepool::testkit::{init_tracing, run_contract, snapshot_view, FixtureServer, ResourceCheck};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_pressure_meets_its_contract() {
    let resources = ResourceCheck::start();
    let summary = run_contract("memory_pressure").await;
    insta::with_settings!({ snapshot_path => "../snapshots", prepend_module_to_snapshot => false }, {
        insta::assert_json_snapshot!("memory_pressure", snapshot_view(&summary, &["leak_cycles", "fd_delta", "hard_evictions"]));
    });
    resources.assert_clean().await;
}

/// Descendants by `pgrep -P`, walked here independently of the library.
fn pgrep_tree(root: u32) -> Vec<u32> {
    let mut all = vec![root];
    let mut i = 0;
    while i < all.len() {
        let out = Command::new("pgrep")
            .arg("-P")
            .arg(all[i].to_string())
            .output()
            .unwrap();
        all.extend(
            String::from_utf8_lossy(&out.stdout)
                .lines()
                .filter_map(|l| l.trim().parse::<u32>().ok()),
        );
        i += 1;
    }
    all
}

fn field_kb(path: &str, key: &str) -> u64 {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with(key))
        .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reported_pss_matches_an_independent_sum_and_is_below_summed_rss() {
    init_tracing();
    let resources = ResourceCheck::start();
    let server = FixtureServer::start().await.unwrap();
    let pool = BrowserPool::new(BrowserPoolConfig {
        min_idle: 1,
        max_size: 1,
        warm_up: 1,
        ..BrowserPoolConfig::default()
    })
    .await
    .unwrap();
    let lease = pool.acquire().await.unwrap();
    lease.goto(&server.url("/page/3")).await.unwrap();
    let pid = lease.pid().unwrap();

    let ours = tree_memory(pid);
    let pids = pgrep_tree(pid);
    let pss_kb: u64 = pids
        .iter()
        .map(|p| field_kb(&format!("/proc/{p}/smaps_rollup"), "Pss:"))
        .sum();
    let rss_kb: u64 = pids
        .iter()
        .map(|p| field_kb(&format!("/proc/{p}/status"), "VmRSS:"))
        .sum();
    let independent = (pss_kb * 1024) as f64;
    let ratio = ours.total_bytes as f64 / independent;
    assert!(
        (0.9..=1.1).contains(&ratio),
        "ours {} vs independent {independent} (ratio {ratio:.3})",
        ours.total_bytes
    );
    assert!(!ours.any_rss_fallback);
    assert!(
        ours.total_bytes < rss_kb * 1024,
        "PSS {} must be below summed RSS {}",
        ours.total_bytes,
        rss_kb * 1024
    );
    assert!(
        ours.by_kind.contains_key("browser") && ours.by_kind.contains_key("renderer"),
        "{:?}",
        ours.by_kind.keys()
    );
    let (used, total) = lease.v8_heap().await.unwrap();
    assert!(used > 0 && used <= total, "V8 heap {used}/{total}");

    drop(lease);
    pool.close().await;
    server.shutdown().await;
    resources.assert_clean().await;
}
