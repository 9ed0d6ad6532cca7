use super::*;
use crate::profile::{Depth, RunProfile};

const SPEC: ScenarioSpec = ScenarioSpec {
    name: "demo",
    description: "a demo",
    figures: &[
        FigureSpec::measurement("warm_ms", "ms"),
        FigureSpec::measurement("cold_ms", "ms"),
        FigureSpec::counter("crashes"),
        FigureSpec::ratio("hit_rate"),
    ],
};

fn parse(text: &str) -> Result<Contract> {
    Contract::parse(Path::new("perf-contract.toml"), text, &[SPEC])
}

fn err_of(text: &str) -> String {
    parse(text).unwrap_err().to_string()
}

#[test]
fn a_typo_in_a_metric_names_file_line_and_key() {
    let e = err_of(
        "[demo]\n\nwarm = { metric = \"warm_sm.p50\", op = \"<=\", value = 3.0, unit = \"ms\" }\n",
    );
    assert!(
        e.starts_with("perf-contract.toml:3: demo.warm.metric:"),
        "{e}"
    );
    assert!(e.contains("warm_sm"), "{e}");
}

#[test]
fn unknown_scenarios_statistics_fields_and_units_are_rejected() {
    let e = err_of("[dmeo]\nx = { metric = \"crashes\", op = \"<=\", value = 0 }\n");
    assert!(
        e.contains(":1:") && e.contains("unknown scenario") && e.contains("demo"),
        "{e}"
    );
    let e =
        err_of("[demo]\nx = { metric = \"warm_ms.p97\", op = \"<=\", value = 1, unit = \"ms\" }\n");
    assert!(e.contains("unknown statistic \"p97\""), "{e}");
    let e =
        err_of("[demo]\nx = { metric = \"warm_ms.p50\", op = \"<=\", value = 1, unit = \"us\" }\n");
    assert!(e.contains("demo.x.unit") && e.contains("\"ms\""), "{e}");
    let e = err_of("[demo]\nx = { metric = \"warm_ms.p50\", op = \"<=\", value = 1 }\n");
    assert!(e.contains("missing field `unit`"), "{e}");
    let e = err_of("[demo]\n\n[demo.x]\nmetric = \"crashes\"\nvalue = 0\n");
    assert!(e.contains(":3: demo.x: missing field `op`"), "{e}");
    let e = err_of("[demo]\nx = { metric = \"crashes\", op = \"<=\", value = \"zero\" }\n");
    assert!(
        e.contains(":2: demo.x.value: invalid type: string \"zero\""),
        "{e}"
    );
    let e = err_of("[demo]\n\n[demo.x]\nmetric = \"crashes\"\nop = 3\nvalue = 0\n");
    assert!(e.contains(":5: demo.x.op: invalid type"), "{e}");
    let e = err_of("[demo]\nx = { metric = \"crashes\", op = \"<\", value = 0 }\n");
    assert!(e.contains("demo.x.op"), "{e}");
    let e = err_of("[demo]\nx = { metric = \"crashes\", op = \"<=\", value = 0, limit = 2 }\n");
    assert!(e.contains("demo.x: unknown field `limit`"), "{e}");
}

#[test]
fn counters_and_ratios_are_compared_in_the_direction_their_threshold_guards() {
    let c = parse(
            "[demo]\nno_crashes = { metric = \"crashes\", op = \"<=\", value = 0 }\nhits = { metric = \"hit_rate\", op = \">=\", value = 0.9 }\nwarm = { ratio = [\"warm_ms.p50\", \"cold_ms.p50\"], op = \"<=\", value = 0.5 }\n",
        )
        .unwrap();
    let run = |crashes: u64, hit_rate: f64| {
        let mut s = MetricSummary::new("demo", RunProfile::new(Depth::Quick, None));
        s.count("crashes", crashes);
        s.ratio("hit_rate", hit_rate);
        s.measure("warm_ms", "ms", &[1.0, 2.0]).unwrap();
        s.measure("cold_ms", "ms", &[3.0, 4.0]).unwrap();
        s
    };
    let base = [run(0, 0.95)];
    let same = c.compare_figures(&[&base], &[run(0, 0.95)], 5.0);
    assert_eq!(
        same.len(),
        2,
        "measurements are left to the sample comparison: {same:?}"
    );
    assert!(same.iter().all(|f| !f.regression), "{same:?}");
    // One crash where there were none: a regression, whatever the noise.
    let crashed = c.compare_figures(&[&base], &[run(1, 0.95)], 50.0);
    assert!(
        crashed
            .iter()
            .any(|f| f.threshold == "no_crashes" && f.regression),
        "{crashed:?}"
    );
    // A hit rate down 20 %: worse, for a >= threshold.
    let fewer = c.compare_figures(&[&base], &[run(0, 0.76)], 5.0);
    assert!(
        fewer.iter().any(|f| f.threshold == "hits" && f.regression),
        "{fewer:?}"
    );
    // Up 4 %, inside the noise threshold; and up is better for hits.
    let more = c.compare_figures(&[&base], &[run(0, 0.99)], 5.0);
    assert!(more.iter().all(|f| !f.regression), "{more:?}");
}

#[test]
fn a_count_within_its_limit_and_a_ratio_within_the_runs_spread_are_no_regression() {
    let c = parse(
        "[demo]
few_crashes = { metric = \"crashes\", op = \"<=\", value = 4 }
hits = { metric = \"hit_rate\", op = \">=\", value = 0.5 }
",
    )
    .unwrap();
    let run = |crashes: u64, hit_rate: f64| {
        let mut s = MetricSummary::new("demo", RunProfile::new(Depth::Quick, None));
        s.count("crashes", crashes);
        s.ratio("hit_rate", hit_rate);
        s
    };
    // 0 -> 1 where the contract allows 4: the old rule flagged it.
    let within = c.compare_figures(&[&[run(0, 0.9)]], &[run(1, 0.9)], 5.0);
    assert!(within.iter().all(|f| !f.regression), "{within:?}");
    let past = c.compare_figures(&[&[run(0, 0.9)]], &[run(5, 0.9)], 5.0);
    assert!(past
        .iter()
        .any(|f| f.threshold == "few_crashes" && f.regression));
    // Five runs whose hit rate wanders 0.80-0.95: 0.76 is within what they
    // predict; 0.5 is not.
    let history: Vec<Vec<MetricSummary>> = [0.95, 0.80, 0.90, 0.85, 0.93]
        .iter()
        .map(|&h| vec![run(0, h)])
        .collect();
    let window: Vec<&[MetricSummary]> = history.iter().map(Vec::as_slice).collect();
    let wander = c.compare_figures(&window, &[run(0, 0.76)], 5.0);
    assert!(wander.iter().all(|f| !f.regression), "{wander:?}");
    let drop = c.compare_figures(&window, &[run(0, 0.5)], 5.0);
    assert!(
        drop.iter().any(|f| f.threshold == "hits" && f.regression),
        "{drop:?}"
    );
}

#[test]
fn verdicts_compare_actual_with_limit_and_fail_when_past_it() {
    let c = parse(
            "[demo]\nwarm_vs_cold = { ratio = [\"warm_ms.p50\", \"cold_ms.p50\"], op = \"<=\", value = 0.35, why = \"the pool must pay for itself\" }\nno_crashes = { metric = \"crashes\", op = \"<=\", value = 0 }\nhits = { metric = \"hit_rate\", op = \">=\", value = 0.9 }\n",
        )
        .unwrap();
    let mut s = MetricSummary::new("demo", RunProfile::new(Depth::Quick, None));
    s.measure("warm_ms", "ms", &[10.0, 12.0, 11.0]).unwrap();
    s.measure("cold_ms", "ms", &[20.0, 22.0, 21.0]).unwrap();
    s.count("crashes", 0);
    s.ratio("hit_rate", 0.95);
    let verdicts = c.check(&s).unwrap();
    let ratio = verdicts
        .iter()
        .find(|v| v.threshold == "warm_vs_cold")
        .unwrap();
    assert!(!ratio.passed);
    assert!((ratio.actual - 11.0 / 21.0).abs() < 1e-12);
    assert!(verdicts
        .iter()
        .filter(|v| v.threshold != "warm_vs_cold")
        .all(|v| v.passed));
    let msg = failure_message("demo", &verdicts).unwrap();
    assert!(msg.contains("1 of 3 thresholds failed"), "{msg}");
    assert!(
        msg.contains("warm_ms.p50 / cold_ms.p50 = 0.5238 ratio, limit <= 0.3500"),
        "{msg}"
    );
    assert!(
        msg.contains("actual/limit = 1.497") && msg.contains("49.7% past the limit"),
        "{msg}"
    );
    assert!(msg.contains("why: the pool must pay for itself"), "{msg}");

    s.count("crashes", 2);
    s.metrics.remove("cold_ms");
    assert!(c
        .check(&s)
        .unwrap_err()
        .to_string()
        .contains("no figure \"cold_ms.p50\""));
}
