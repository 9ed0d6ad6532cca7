//! The command line's contract with its users: output, exit codes, messages.

use std::io::Write;
use std::process::{Command, Output, Stdio};

fn tidepool(args: &[&str], stdin: &str) -> Output {
    // Scenario reports go to a directory of the test's own, never over the
    // reports of the contract suites in target/tidepool/reports.
    let reports = scratch().join("reports");
    let mut child = Command::new(env!("CARGO_BIN_EXE_tidepool"))
        .env(tidepool::report::REPORT_DIR_ENV, reports)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

#[test]
fn stats_prints_the_summary_as_json_and_flags_outliers() {
    let out = tidepool(&["stats", "-"], "1\n2\n3\n4\n100\n");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["mean"], 22.0);
    assert_eq!(v["median"], 3.0);
    assert_eq!(v["outliers"]["indices"], serde_json::json!([4]));
}

#[test]
fn stats_skips_blank_lines_and_comments_and_prints_a_table() {
    let out = tidepool(
        &["stats", "-", "--format", "table"],
        "# latencies\n\n5\n7 # slow one\n",
    );
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("n                         2"), "{text}");
    assert!(text.contains("mean                      6.0000"), "{text}");
}

#[test]
fn a_bad_line_exits_2_naming_line_and_text() {
    let out = tidepool(&["stats", "-"], "1\n\nabc\n");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.contains("<stdin>:3") && err.contains("\"abc\""),
        "{err}"
    );
    assert!(out.stdout.is_empty());
}

#[test]
fn no_numbers_and_missing_files_exit_2_with_a_reason() {
    let out = tidepool(&["stats", "-"], "# nothing\n");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no samples"));
    let out = tidepool(&["stats", "/no/such/file"], "");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/no/such/file"));
}

thread_local! {
    /// Each test's own scratch directory (a test runs on a thread of its
    /// own), removed when its thread ends.
    static SCRATCH: tempfile::TempDir = tempfile::Builder::new()
        .prefix("tidepool-cli-")
        .tempdir()
        .unwrap();
}

fn scratch() -> std::path::PathBuf {
    SCRATCH.with(|dir| dir.path().to_owned())
}

fn temp(name: &str) -> std::path::PathBuf {
    scratch().join(name)
}

fn run_validate(contract: &std::path::Path, output: &std::path::Path) -> Output {
    tidepool(
        &[
            "validate",
            "--scenario",
            "fixture_roundtrip",
            "--iterations",
            "20",
            "--contract",
            contract.to_str().unwrap(),
            "--output",
            output.to_str().unwrap(),
        ],
        "",
    )
}

const CONTRACT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/perf-contract.toml");

#[test]
fn validate_exits_0_and_writes_json_then_1_on_an_impossible_threshold() {
    let out_path = temp("results.json");
    let out = run_validate(std::path::Path::new(CONTRACT), &out_path);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let results: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&out_path).unwrap()).unwrap();
    assert_eq!(results["complete"], true);
    assert_eq!(results["scenarios"][0]["scenario"], "fixture_roundtrip");
    assert!(String::from_utf8_lossy(&out.stdout).contains("keepalive_beats_new_connection"));

    // The same contract with the keep-alive threshold made impossible.
    let text = std::fs::read_to_string(CONTRACT).unwrap().replace(
        "op = \"<=\", value = 0.9, why = \"reusing a connection",
        "op = \"<=\", value = 0.001, why = \"reusing a connection",
    );
    let impossible = temp("impossible.toml");
    std::fs::write(&impossible, text).unwrap();
    let out = run_validate(&impossible, &temp("results-impossible.json"));
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let table = String::from_utf8_lossy(&out.stdout);
    let row = table
        .lines()
        .find(|l| l.contains("keepalive_beats_new_connection"))
        .unwrap();
    assert!(
        row.contains("FAIL") && row.contains("<= 1.000e-3") && row.contains("Poor"),
        "{row}"
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("past the limit"));
}

#[test]
fn compare_flags_a_real_slowdown_and_nothing_else() {
    let report = temp("base.json");
    let out = run_validate(std::path::Path::new(CONTRACT), &report);
    assert_eq!(out.status.code(), Some(0));
    let scaled = |factor: f64, name: &str| {
        let mut v: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
        let samples = v["scenarios"][0]["metrics"]["keepalive_us"]["samples"]
            .as_array_mut()
            .unwrap();
        for x in samples.iter_mut() {
            *x = (x.as_f64().unwrap() * factor).into();
        }
        let path = temp(name);
        std::fs::write(&path, v.to_string()).unwrap();
        path
    };
    let compare = |current: &std::path::Path| {
        tidepool(
            &[
                "compare",
                "--baseline",
                report.to_str().unwrap(),
                "--current",
                current.to_str().unwrap(),
                "--format",
                "md",
            ],
            "",
        )
    };
    assert_eq!(compare(&report).status.code(), Some(0));
    let slower = compare(&scaled(1.5, "x150.json"));
    assert_eq!(slower.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&slower.stderr).contains("fixture_roundtrip.keepalive_us"));
    assert!(String::from_utf8_lossy(&slower.stdout).contains("| REGRESSION |"));
    assert_eq!(compare(&scaled(1.01, "x101.json")).status.code(), Some(0));

    // A counter the contract holds at 0 that becomes 1 regresses, whatever
    // the noise threshold.
    let mut v: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    v["scenarios"][0]["counters"]["failed_requests"] = 1.into();
    let failed = temp("failed.json");
    std::fs::write(&failed, v.to_string()).unwrap();
    let out = compare(&failed);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("fixture_roundtrip.no_failed_requests"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn bad_inputs_exit_2_naming_the_problem() {
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec!["report", "/no/such/results.json"],
            "/no/such/results.json",
        ),
        (
            vec!["validate", "--scenario", "no_such_scenario"],
            "unknown scenario \"no_such_scenario\"",
        ),
        (vec!["compare", "--history", "/no/such/dir"], "/no/such/dir"),
    ];
    for (args, needle) in cases {
        let out = tidepool(&args, "");
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains(needle),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let invalid = temp("invalid.json");
    std::fs::write(&invalid, "{ nope").unwrap();
    let out = tidepool(&["report", invalid.to_str().unwrap()], "");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not valid JSON"));
    let future = temp("future.json");
    std::fs::write(&future, r#"{"schema_version": 99, "scenario": "x"}"#).unwrap();
    let out = tidepool(&["report", future.to_str().unwrap()], "");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("schema version 99"));
}

#[test]
fn report_writes_one_html_page_and_says_what_only_html_can_show() {
    use tidepool::profile::{Depth, RunProfile};
    use tidepool::report::ScenarioReport;
    use tidepool::summary::MetricSummary;

    let mut s = MetricSummary::new("demo", RunProfile::new(Depth::Quick, None));
    s.measure("page_ms", "ms", &[12.0, 14.5, 13.1, 15.2, 40.0])
        .unwrap();
    let dir = temp("html-history");
    std::fs::create_dir_all(&dir).unwrap();
    let path = tidepool::report::write_json(&ScenarioReport::new(s, Vec::new()), &dir).unwrap();
    let page = temp("report.html");
    let out = tidepool(
        &[
            "report",
            path.to_str().unwrap(),
            dir.to_str().unwrap(),
            "--format",
            "html",
            "--output",
            page.to_str().unwrap(),
        ],
        "",
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(html.starts_with("<!DOCTYPE html>") && html.contains("<svg"));
    assert!(
        html.contains("id=\"history\""),
        "the directory is read as a history"
    );

    let out = tidepool(&["report", dir.to_str().unwrap(), "--format", "md"], "");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(dir.to_str().unwrap()) && err.contains("only --format html"),
        "{err}"
    );
    let out = tidepool(
        &[
            "report",
            path.to_str().unwrap(),
            "--output",
            page.to_str().unwrap(),
            "--screenshot",
            "x.png",
        ],
        "",
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--screenshot"));
}

#[test]
fn list_names_every_scenario_and_marks_the_browser_ones() {
    let out = tidepool(&["validate", "--list"], "");
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8(out.stdout).unwrap();
    for name in [
        "fixture_roundtrip",
        "browser_pool",
        "adaptive_timeout",
        "aot_cache",
        "wasm_tiers",
        "end_to_end",
    ] {
        assert!(
            text.lines().any(|l| l.starts_with(name)),
            "{name} missing from:\n{text}"
        );
    }
    assert!(text
        .lines()
        .find(|l| l.starts_with("browser_pool"))
        .unwrap()
        .ends_with("[Chromium]"));
}
