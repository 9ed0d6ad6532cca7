//! The whole path: a crawl through pooled browsers, a warm WASM extractor and
//! adaptive timeouts, against launching and compiling per page.

use tidepool::harness::run_contract;
use tidepool::testkit::ResourceCheck;

/// Starts the CLI from the crate root with `args`, its output piped and its
/// scenario reports in `dir`, not over the suites' own reports.
fn spawn_cli(dir: &std::path::Path, args: &[&str]) -> tokio::process::Child {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_tidepool"))
        .env(tidepool::report::REPORT_DIR_ENV, dir)
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn end_to_end_meets_its_contract() {
    let resources = ResourceCheck::start();
    let report = run_contract("end_to_end").await;
    let summary = &report.summary;
    assert_eq!(
        summary.metrics["pooled_page_ms"].summary.n as u64,
        summary.counters["pooled_pages"]
    );
    assert_eq!(
        summary.metrics["naive_page_ms"].summary.n as u64,
        summary.counters["naive_pages"]
    );
    for side in [
        "pooled (the headline):",
        "pooled shared (reported, not judged):",
    ] {
        assert!(
            summary.notes.iter().any(|n| n.starts_with(side)),
            "the report must say what each side did: no note on {side}"
        );
    }
    tidepool::assert_contract_snapshot!("end_to_end", report);
    resources.assert_clean().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn your_own_urls_run_the_same_comparison_and_unreachable_ones_are_counted_per_host() {
    let resources = ResourceCheck::start();
    let server = tidepool::testkit::FixtureServer::start().await.unwrap();
    let dir = std::env::temp_dir().join(format!("tidepool-urls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let urls = dir.join("urls.txt");
    let mut list: Vec<String> = (0..5).map(|i| server.url(&format!("/page/{i}"))).collect();
    list.push("http://127.0.0.1:1/unreachable".into());
    std::fs::write(&urls, format!("# my pages\n{}\n", list.join("\n"))).unwrap();
    let output = dir.join("results.json");
    let child = spawn_cli(
        &dir,
        &[
            "validate",
            "--scenario",
            "end_to_end",
            "--concurrency",
            "2",
            "--urls",
            urls.to_str().unwrap(),
            "--output",
            output.to_str().unwrap(),
        ],
    );
    let cli_pid = child.id().unwrap();
    let out = child.wait_with_output().await.unwrap();
    // The CLI's browsers carry its pid in their tag: none may outlive it.
    let left = tidepool::testkit::tagged_processes(&format!("{cli_pid}-"));
    assert!(left.is_empty(), "the CLI left browser processes: {left:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        matches!(out.status.code(), Some(0 | 1)),
        "the run must not be aborted: {stderr}"
    );
    let results: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&output).unwrap()).unwrap();
    let e2e = &results["scenarios"][0];
    assert_eq!(
        e2e["counters"]["page_errors"], 3,
        "one unreachable page on each crawl: pooled, naive, pooled shared"
    );
    let notes = e2e["notes"].to_string();
    assert!(
        notes.contains("127.0.0.1:1"),
        "failures must be reported per host: {notes}"
    );
    assert!(e2e["metrics"]["pooled_page_ms"]["summary"]["n"] == 5);
    let judged: Vec<String> = e2e["verdicts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["figure"].to_string())
        .collect();
    assert!(
        !judged.iter().any(|f| f.contains("page_errors")),
        "{judged:?}"
    );
    server.shutdown().await;
    std::fs::remove_dir_all(dir).unwrap();
    resources.assert_clean().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_stops_validate_cleanly_with_partial_results() {
    let dir = std::env::temp_dir().join(format!("tidepool-sigint-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let output = dir.join("results.json");
    let child = spawn_cli(
        &dir,
        &[
            "validate",
            "--scenario",
            "fixture_roundtrip",
            "--scenario",
            "browser_pool",
            "--iterations",
            "20",
            "--output",
            output.to_str().unwrap(),
        ],
    );
    let pid = child.id().unwrap();
    // Wait until browser_pool has browsers running, then interrupt.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while tidepool::testkit::tagged_processes(&format!("{pid}-")).is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "the CLI never launched a browser"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await; // polling another process's state
    }
    assert!(tidepool::testkit::interrupt_process(pid));
    let out = tokio::time::timeout(std::time::Duration::from_secs(30), child.wait_with_output())
        .await
        .expect("the CLI did not stop")
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(130),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let results: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&output).unwrap()).unwrap();
    assert_eq!(results["complete"], false);
    assert_eq!(
        results["scenarios"].as_array().unwrap().len(),
        1,
        "fixture_roundtrip finished before the interrupt"
    );
    let left =
        tidepool::testkit::leftover_browser_processes(std::time::Duration::from_secs(3)).await;
    assert!(left.is_empty());
    let left = tidepool::testkit::tagged_processes(&format!("{pid}-"));
    assert!(
        left.is_empty(),
        "browsers outlived the interrupted CLI: {left:?}"
    );
    let profiles: Vec<_> = std::fs::read_dir(std::env::temp_dir())
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(&format!("{}{pid}-", tidepool::browser::PROFILE_PREFIX)))
        .collect();
    assert!(profiles.is_empty(), "profiles left: {profiles:?}");
    std::fs::remove_dir_all(dir).unwrap();
}
