use super::*;
use crate::profile::{Depth, RunProfile};
use crate::scenarios;

fn record(batch_ms: f64, waits: f64, crashes: u64) -> MetricSummary {
    let mut s = MetricSummary::new("cdp_pool", RunProfile::new(Depth::Quick, None));
    let samples: Vec<f64> = (0..20).map(|i| batch_ms + (i % 3) as f64 * 0.01).collect();
    s.measure("batch_ms", "ms", &samples).unwrap();
    s.ratio("wire_waits_per_command", waits);
    s.count("misattributed_results", crashes);
    s
}

fn contract() -> Contract {
    Contract::load(
        std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/perf-contract.toml")),
        &scenarios::catalog(),
    )
    .unwrap()
}

/// Rounds with a little noise on both sides; `slow` scales the current side.
fn rounds(n: usize, slow: f64, misattributed: u64) -> Vec<AbRound> {
    (0..n)
        .map(|i| {
            let wobble = 1.0 + ((i * 7) % 5) as f64 * 0.004;
            AbRound {
                baseline: vec![record(2.0 * wobble, 0.125, 0)],
                current: vec![record(
                    2.0 * slow * (2.0 - wobble),
                    0.125 * slow,
                    misattributed,
                )],
            }
        })
        .collect()
}

#[test]
fn the_same_build_flags_nothing() {
    let r = analyse(&rounds(12, 1.0, 0), &contract(), &AbOptions::default());
    assert_eq!(r.regressions().count(), 0, "{:#?}", r.figures);
    assert!(r.judged >= 3);
}

#[test]
fn a_slowdown_is_flagged_on_the_figures_it_moves_and_no_others() {
    let r = analyse(&rounds(12, 3.0, 0), &contract(), &AbOptions::default());
    let flagged: Vec<&str> = r.regressions().map(|f| f.figure.as_str()).collect();
    assert_eq!(flagged, vec!["batch_ms.p50", "wire_waits_per_command"]);
    let md = ab_markdown(&r, "base", "head");
    assert!(md.contains("2 regressions"), "{md}");
}

#[test]
fn a_counter_leaving_zero_always_regresses() {
    let r = analyse(&rounds(12, 1.0, 1), &contract(), &AbOptions::default());
    let f = r.regressions().next().expect("flagged");
    assert_eq!(f.figure, "misattributed_results");
    assert!(f.from_zero);
}

#[test]
fn five_rounds_say_they_cannot_reach_significance() {
    let r = analyse(&rounds(5, 3.0, 0), &contract(), &AbOptions::default());
    assert_eq!(r.regressions().count(), 0);
    assert!(r.figures.iter().all(|f| f.min_detectable_pct.is_none()));
    assert!(ab_markdown(&r, "a", "b").contains("cannot reach significance"));
}
