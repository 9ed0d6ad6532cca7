//! Negative controls: every threshold of the contract is shown able to fail.
//!
//! Each test runs one known-bad variant of a scenario at quick size and
//! asserts that the contract rejects it: every threshold the control targets
//! fails, with the figure on the wrong side of its limit. A control that
//! passes means its thresholds certify nothing, and the test says which.

use rstest::rstest;
use tidepool::contract::Contract;
use tidepool::harness::contract_path;
use tidepool::profile::RunProfile;
use tidepool::scenarios::{self, all_controls, coverage_gaps, find_control, run_control};
use tidepool::testkit::{init_tracing, ResourceCheck};

/// Every control, as `scenario.control`: one test case each below.
const CONTROLS: &[&str] = &[
    "fixture_roundtrip.reconnecting_keepalive",
    "fixture_roundtrip.stale_address",
    "fixture_roundtrip.run_cut_short",
    "wasm_tiers.nothing_resident",
    "wasm_tiers.recency_not_frequency",
    "wasm_tiers.never_forgets",
    "wasm_tiers.fifo_both_sides",
    "wasm_tiers.fifo_instance_pool_both_sides",
    "wasm_tiers.trapping_extractor",
    "cdp_pool.sequential_batch",
    "cdp_pool.no_reuse",
    "cdp_pool.coalescing_batch",
    "cdp_pool.leaked_page",
    "aot_cache.copying_cache",
    "aot_cache.unverified_cache",
    "adaptive_timeout.fixed_timeouts",
    "adaptive_timeout.median_timeouts",
    "adaptive_timeout.low_ceiling",
    "adaptive_timeout.hidden_retry",
    "adaptive_timeout.deadline_from_queue",
    "browser_pool.launch_per_lease",
    "browser_pool.single_use_browsers",
    "browser_pool.shared_lease",
    "browser_pool.killed_browser",
    "browser_pool.abandoned_browser",
    "end_to_end.single_use_browsers",
    "end_to_end.millisecond_timeouts",
    "end_to_end.shared_page",
    "memory_pressure.summed_rss",
    "memory_pressure.undersized_pool",
    "memory_pressure.killed_under_load",
    "memory_pressure.unsampled_hard_limit",
    "memory_pressure.no_replacement",
    "memory_pressure.hard_limit_below_idle",
    "memory_pressure.long_soft_window",
    "memory_pressure.soft_as_hard",
    "memory_pressure.unlatched_soft_limit",
    "memory_pressure.leaking_client",
    "crawl.launch_per_lease",
    "crawl.shared_lease",
    "faults.no_hang_deadline",
    "faults.dropping_batch",
    "faults.no_replacement",
    "fleet.no_retry",
    "fleet.no_loss_detection",
    "fleet.no_rejoin",
];

fn contract() -> Contract {
    Contract::load(&contract_path(), &scenarios::catalog())
        .unwrap_or_else(|e| panic!("loading the contract: {e}"))
}

#[test]
fn every_threshold_has_a_negative_control_or_a_stated_reason() {
    let gaps = coverage_gaps(&contract());
    assert!(
        gaps.is_empty(),
        "thresholds that no control shows able to fail:\n  {}",
        gaps.join("\n  ")
    );
}

#[test]
fn every_control_has_a_test_case_here() {
    let registered: Vec<String> = all_controls()
        .map(|(s, c)| format!("{}.{}", s.spec.name, c.name))
        .collect();
    let mut listed: Vec<String> = CONTROLS.iter().map(|c| c.to_string()).collect();
    let mut sorted = registered.clone();
    sorted.sort();
    listed.sort();
    assert_eq!(listed, sorted, "tests/controls.rs must list every control");
}

#[rstest]
#[case::fixture_roundtrip_reconnecting_keepalive("fixture_roundtrip.reconnecting_keepalive")]
#[case::fixture_roundtrip_stale_address("fixture_roundtrip.stale_address")]
#[case::fixture_roundtrip_run_cut_short("fixture_roundtrip.run_cut_short")]
#[case::wasm_tiers_nothing_resident("wasm_tiers.nothing_resident")]
#[case::wasm_tiers_recency_not_frequency("wasm_tiers.recency_not_frequency")]
#[case::wasm_tiers_never_forgets("wasm_tiers.never_forgets")]
#[case::wasm_tiers_fifo_both_sides("wasm_tiers.fifo_both_sides")]
#[case::wasm_tiers_fifo_instance_pool_both_sides("wasm_tiers.fifo_instance_pool_both_sides")]
#[case::wasm_tiers_trapping_extractor("wasm_tiers.trapping_extractor")]
#[case::cdp_pool_sequential_batch("cdp_pool.sequential_batch")]
#[case::cdp_pool_no_reuse("cdp_pool.no_reuse")]
#[case::cdp_pool_coalescing_batch("cdp_pool.coalescing_batch")]
#[case::cdp_pool_leaked_page("cdp_pool.leaked_page")]
#[case::aot_cache_copying_cache("aot_cache.copying_cache")]
#[case::aot_cache_unverified_cache("aot_cache.unverified_cache")]
#[case::adaptive_timeout_fixed_timeouts("adaptive_timeout.fixed_timeouts")]
#[case::adaptive_timeout_median_timeouts("adaptive_timeout.median_timeouts")]
#[case::adaptive_timeout_low_ceiling("adaptive_timeout.low_ceiling")]
#[case::adaptive_timeout_hidden_retry("adaptive_timeout.hidden_retry")]
#[case::adaptive_timeout_deadline_from_queue("adaptive_timeout.deadline_from_queue")]
#[case::browser_pool_launch_per_lease("browser_pool.launch_per_lease")]
#[case::browser_pool_single_use_browsers("browser_pool.single_use_browsers")]
#[case::browser_pool_shared_lease("browser_pool.shared_lease")]
#[case::browser_pool_killed_browser("browser_pool.killed_browser")]
#[case::browser_pool_abandoned_browser("browser_pool.abandoned_browser")]
#[case::end_to_end_single_use_browsers("end_to_end.single_use_browsers")]
#[case::end_to_end_millisecond_timeouts("end_to_end.millisecond_timeouts")]
#[case::end_to_end_shared_page("end_to_end.shared_page")]
#[case::memory_pressure_summed_rss("memory_pressure.summed_rss")]
#[case::memory_pressure_undersized_pool("memory_pressure.undersized_pool")]
#[case::memory_pressure_killed_under_load("memory_pressure.killed_under_load")]
#[case::memory_pressure_unsampled_hard_limit("memory_pressure.unsampled_hard_limit")]
#[case::memory_pressure_no_replacement("memory_pressure.no_replacement")]
#[case::memory_pressure_hard_limit_below_idle("memory_pressure.hard_limit_below_idle")]
#[case::memory_pressure_long_soft_window("memory_pressure.long_soft_window")]
#[case::memory_pressure_soft_as_hard("memory_pressure.soft_as_hard")]
#[case::memory_pressure_unlatched_soft_limit("memory_pressure.unlatched_soft_limit")]
#[case::memory_pressure_leaking_client("memory_pressure.leaking_client")]
#[case::crawl_launch_per_lease("crawl.launch_per_lease")]
#[case::crawl_shared_lease("crawl.shared_lease")]
#[case::faults_no_hang_deadline("faults.no_hang_deadline")]
#[case::faults_dropping_batch("faults.dropping_batch")]
#[case::faults_no_replacement("faults.no_replacement")]
#[case::fleet_no_retry("fleet.no_retry")]
#[case::fleet_no_loss_detection("fleet.no_loss_detection")]
#[case::fleet_no_rejoin("fleet.no_rejoin")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_contract_rejects_the_control(#[case] id: &str) {
    init_tracing();
    let resources = ResourceCheck::start();
    let profile = RunProfile::from_env().unwrap_or_else(|e| panic!("{e}"));
    let (scenario, control) = find_control(id).unwrap_or_else(|e| panic!("{e}"));
    let outcome = run_control(scenario, control, profile, &contract())
        .await
        .unwrap_or_else(|e| panic!("control {id}: {e}"));
    for line in outcome.lines() {
        println!("{line}");
    }
    println!("report: {}", outcome.report_path.display());
    assert_eq!(
        outcome.verdicts.len(),
        control.rejects.len(),
        "control {id} was judged on {} thresholds, it names {}",
        outcome.verdicts.len(),
        control.rejects.len()
    );
    let passed: Vec<String> = outcome
        .verdicts
        .iter()
        .filter(|v| v.passed)
        .map(|v| format!("  {v}"))
        .collect();
    assert!(
        passed.is_empty(),
        "control {id} ({}) passed thresholds it must fail: they cannot tell this regression apart:\n{}\nreport: {}",
        control.what,
        passed.join("\n"),
        outcome.report_path.display()
    );
    resources.assert_clean().await;
}
