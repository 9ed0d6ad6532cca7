//! The HTML report as a reader sees it: a report of a real run, rendered and
//! opened in headless Chromium through tidepool's own pool.

use std::path::Path;

use tidepool::contract::Contract;
use tidepool::harness::contract_path;
use tidepool::profile::{Depth, RunProfile};
use tidepool::report::{HtmlReport, ScenarioReport};
use tidepool::scenarios;
use tidepool::testkit::{check_report_page, init_tracing, scratch_dir, ResourceCheck};

/// A contract that asks the impossible of the same run: a cache hit at a
/// millionth of a compile.
const IMPOSSIBLE: &str = r#"
[aot_cache]
impossible_cache = { ratio = ["cache_load_ms.p50", "compile_ms.p50"], op = "<=", value = 0.000001, why = "a limit no cache can meet, so the report has a failure to show" }
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_runs_report_shows_every_plot_offline_with_the_failure_first() {
    init_tracing();
    let resources = ResourceCheck::start();
    let catalog = scenarios::catalog();
    let contract = Contract::load(&contract_path(), &catalog).unwrap();
    let impossible = Contract::parse(Path::new("impossible.toml"), IMPOSSIBLE, &catalog).unwrap();
    let profile = RunProfile::new(Depth::Quick, None);
    let summary = (scenarios::find("aot_cache").unwrap().run)(profile)
        .await
        .unwrap();
    let mut verdicts = contract.check(&summary).unwrap();
    assert!(verdicts.iter().all(|v| v.passed), "{verdicts:#?}");
    verdicts.extend(impossible.check(&summary).unwrap());
    let roundtrip = (scenarios::find("fixture_roundtrip").unwrap().run)(profile)
        .await
        .unwrap();
    let roundtrip_verdicts = contract.check(&roundtrip).unwrap();
    let reports = vec![
        ScenarioReport::new(roundtrip, roundtrip_verdicts),
        ScenarioReport::new(summary, verdicts),
    ];

    let dir = scratch_dir("tidepool-html-").unwrap();
    let page = dir.path().join("index.html");
    let html = HtmlReport::new(&reports).render().unwrap();
    std::fs::write(&page, &html).unwrap();
    let png = dir.path().join("index.png");
    let check = check_report_page(&page, Some(&png)).await.unwrap();

    let measurements: usize = reports.iter().map(|r| r.summary.metrics.len()).sum();
    let thresholds: usize = reports.iter().map(|r| r.verdicts.len()).sum();
    assert!(
        measurements >= 4 && thresholds >= 8,
        "{measurements} {thresholds}"
    );
    assert_eq!(
        (check.measurement_plots, check.threshold_plots),
        (measurements, thresholds),
        "one SVG per measurement and per threshold"
    );
    assert_eq!(check.plots, measurements + thresholds);
    assert!(
        check.console_errors.is_empty(),
        "{:?}",
        check.console_errors
    );
    assert!(
        check.requests.is_empty(),
        "the page requested {:?}",
        check.requests
    );
    assert_eq!(check.resources, 0, "resource timing entries");
    let shot = std::fs::read(&png).unwrap();
    assert!(
        shot.starts_with(b"\x89PNG") && shot.len() > 10_000,
        "{} bytes",
        shot.len()
    );

    // The failed threshold leads: in the summary's list, and as the first
    // threshold of the first scenario, drawn in the failing colour.
    let failed = html.find("<ul class=\"failed\">").expect("a failed list");
    assert!(html[failed..].starts_with(
        "<ul class=\"failed\">\n<li class=\"fail\"><a href=\"#aot_cache.impossible_cache\">"
    ));
    let first = html.find("data-kind=\"threshold\"").unwrap();
    assert!(html[..first].ends_with("<figure class=\"fail\" "));
    assert!(html[first..].starts_with("data-kind=\"threshold\" id=\"aot_cache.impossible_cache\""));
    let figure = &html[first..first + html[first..].find("</figure>").unwrap()];
    assert!(figure.contains("#C62828"), "the failing bar's colour");

    drop(dir);
    resources.assert_clean().await;
}
