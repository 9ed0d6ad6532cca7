use super::*;
use crate::profile::{Depth, RunProfile};
use crate::scenarios;

fn contract() -> Contract {
    Contract::load(
        std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/perf-contract.toml")),
        &scenarios::catalog(),
    )
    .unwrap()
}

/// A small deterministic wobble for round `i`, about ±1 %.
fn wobble(i: usize, salt: usize) -> f64 {
    1.0 + (((i * 7 + salt * 3) % 5) as f64 - 2.0) * 0.005
}

fn cdp_record(batch_ms: f64, waits: f64, misattributed: u64) -> MetricSummary {
    let mut s = MetricSummary::new("cdp_pool", RunProfile::new(Depth::Quick, None));
    let samples: Vec<f64> = (0..20).map(|i| batch_ms + (i % 3) as f64 * 0.01).collect();
    s.measure("batch_ms", "ms", &samples).unwrap();
    s.ratio("wire_waits_per_command", waits);
    s.count("misattributed_results", misattributed);
    s
}

/// Rounds with a little noise on both sides; `slow` scales the current side.
fn rounds(n: usize, slow: f64, misattributed: u64) -> Vec<AbRound> {
    (0..n)
        .map(|i| AbRound {
            baseline: vec![cdp_record(2.0 * wobble(i, 0), 0.125 * wobble(i, 1), 0)],
            current: vec![cdp_record(
                2.0 * slow * wobble(i, 2),
                0.125 * slow * wobble(i, 3),
                misattributed,
            )],
        })
        .collect()
}

fn flagged(r: &AbReport) -> Vec<String> {
    r.regressions()
        .map(|f| format!("{}.{}", f.scenario, f.figure))
        .collect()
}

#[test]
fn the_same_build_flags_nothing() {
    let r = analyse(&rounds(12, 1.0, 0), &contract(), &AbOptions::default());
    assert!(flagged(&r).is_empty(), "{:#?}", r.figures);
    assert_eq!(r.families.get("cdp_pool"), Some(&2));
}

#[test]
fn a_slowdown_is_flagged_on_the_contract_figure_it_moves_and_no_other() {
    let r = analyse(&rounds(12, 3.0, 0), &contract(), &AbOptions::default());
    assert_eq!(flagged(&r), vec!["cdp_pool.wire_waits_per_command"]);
    // batch_ms is no contract figure: shown, not judged.
    let batch = r
        .figures
        .iter()
        .find(|f| f.figure == "batch_ms.p50")
        .unwrap();
    assert_eq!(batch.verdict, AbVerdict::NotJudged);
    assert!(ab_markdown(&r, "base", "head").contains("1 regression"));
}

#[test]
fn a_counter_breaching_its_limit_in_every_round_regresses() {
    let r = analyse(&rounds(12, 1.0, 1), &contract(), &AbOptions::default());
    let f = r.regressions().next().expect("flagged");
    assert_eq!(f.figure, "misattributed_results");
    assert_eq!(f.events, Some([0, 12, 0, 12]));
}

/// One memory_pressure record whose leak check read `fd_delta`.
fn memory_record(fd_delta: u64) -> MetricSummary {
    let mut s = MetricSummary::new("memory_pressure", RunProfile::new(Depth::Quick, None));
    s.count("fd_delta", fd_delta);
    s
}

#[test]
fn a_counter_moving_within_the_contracts_limit_is_no_regression() {
    // The old rule flagged fd_delta 0 -> 1 although the contract allows 4.
    let within: Vec<AbRound> = (0..12)
        .map(|_| AbRound {
            baseline: vec![memory_record(0)],
            current: vec![memory_record(1)],
        })
        .collect();
    let r = analyse(&within, &contract(), &AbOptions::default());
    assert!(flagged(&r).is_empty(), "{:#?}", r.figures);
    // Past the limit in 7 of 12 rounds it is one.
    let past: Vec<AbRound> = (0..12)
        .map(|i| AbRound {
            baseline: vec![memory_record(0)],
            current: vec![memory_record(if i < 7 { 6 } else { 0 })],
        })
        .collect();
    let r = analyse(&past, &contract(), &AbOptions::default());
    assert_eq!(flagged(&r), vec!["memory_pressure.fd_delta"]);
}

/// One faults record: the slowest recovery and the launch it is held to.
fn faults_record(recovery_ms: f64, launch_ms: f64) -> MetricSummary {
    let mut s = MetricSummary::new("faults", RunProfile::new(Depth::Quick, None));
    let samples: Vec<f64> = (0..10)
        .map(|i| recovery_ms * (0.8 + i as f64 * 0.02))
        .collect();
    s.measure("recovery_ms", "ms", &samples).unwrap();
    s.ratio("launch_p50_ms", launch_ms);
    s
}

#[test]
fn chromium_launching_faster_is_not_flagged() {
    // A PR that makes Chromium launch 10 % faster: the launch and the
    // recovery that contains one both drop. The old gate judged the
    // denominator `launch_p50_ms` down-is-worse and flagged it.
    let faster: Vec<AbRound> = (0..12)
        .map(|i| AbRound {
            baseline: vec![faults_record(500.0 * wobble(i, 0), 420.0 * wobble(i, 1))],
            current: vec![faults_record(450.0 * wobble(i, 2), 378.0 * wobble(i, 3))],
        })
        .collect();
    let r = analyse(&faster, &contract(), &AbOptions::default());
    assert!(flagged(&r).is_empty(), "{:#?}", r.figures);
    let launch = r
        .figures
        .iter()
        .find(|f| f.figure == "launch_p50_ms")
        .unwrap();
    assert_eq!(launch.direction, Direction::UpIsWorse);
    assert_eq!(launch.verdict, AbVerdict::Improvement);
}

/// One browser_pool record whose acquires have the given median and tail.
fn acquire_record(p50: f64, p95: f64) -> MetricSummary {
    let mut s = MetricSummary::new("browser_pool", RunProfile::new(Depth::Quick, None));
    let acquire: Vec<f64> = (0..100).map(|i| if i < 90 { p50 } else { p95 }).collect();
    s.measure("acquire_ms", "ms", &acquire).unwrap();
    s.measure("launch_ms", "ms", &[400.0; 20]).unwrap();
    s
}

#[test]
fn a_p95_the_contract_names_is_judged() {
    // The median holds; the tail the contract bounds grows 30 %.
    let r: Vec<AbRound> = (0..12)
        .map(|i| AbRound {
            baseline: vec![acquire_record(0.2, 2.0 * wobble(i, 0))],
            current: vec![acquire_record(0.2, 2.6 * wobble(i, 1))],
        })
        .collect();
    let r = analyse(&r, &contract(), &AbOptions::default());
    let got = flagged(&r);
    assert!(
        got.contains(&"browser_pool.acquire_ms.p95".to_owned()),
        "{got:?}"
    );
}

#[test]
fn one_tie_among_twelve_rounds_of_one_sign_still_decides_a_family() {
    // Twelve rounds 10 % slower, two of them exactly alike: the old
    // normal fallback gave p = 2.5e-3, too large for a family of ~100.
    let r: Vec<AbRound> = (0..12)
        .map(|i| {
            let cur = if i < 2 { 1.1 } else { 1.1 * wobble(i, 4) };
            AbRound {
                baseline: vec![cdp_record(2.0, 0.125, 0)],
                current: vec![cdp_record(2.0, 0.125 * cur * 1.02, 0)],
            }
        })
        .collect();
    let r = analyse(&r, &contract(), &AbOptions::default());
    assert_eq!(flagged(&r), vec!["cdp_pool.wire_waits_per_command"]);
    let f = r.regressions().next().unwrap();
    assert!(f.bound_pct.unwrap() > r.threshold_pct, "{f:?}");
}

#[test]
fn a_quiet_check_settles_before_its_last_round_and_a_slow_one_does_not() {
    let quiet = analyse(&rounds(8, 1.0, 0), &contract(), &AbOptions::default());
    assert!(!quiet.undecided(4), "{:#?}", quiet.figures);
    let slow = analyse(&rounds(8, 1.1, 0), &contract(), &AbOptions::default());
    assert!(slow.undecided(4));
    // A clean counter could still be flagged by four more rounds of breaches.
    let few = analyse(&rounds(8, 1.0, 0), &contract(), &AbOptions::default());
    assert!(few.undecided(8));
}

#[test]
fn too_few_rounds_say_so() {
    let r = analyse(&rounds(3, 3.0, 0), &contract(), &AbOptions::default());
    assert!(flagged(&r).is_empty());
    assert_eq!(r.undecidable_families(), vec!["cdp_pool"]);
    assert!(ab_markdown(&r, "a", "b").contains("cannot reach significance"));
}

/// The whole rule, simulated: a family of `m` figures over `n` rounds with
/// log-normal noise `sd`, one figure worse by `change`; the share of runs
/// in which that figure is flagged.
fn detection_rate(n: usize, m: usize, sd: f64, change: f64, runs: usize, seed: u64) -> f64 {
    use crate::stats::standard_normal;
    let mut rng = fastrand::Rng::with_seed(seed);
    let names: Vec<String> = (0..m).map(|k| format!("f{k}")).collect();
    let contract = Contract {
        path: "sim.toml".into(),
        scenarios: [(
            "sim".to_owned(),
            names
                .iter()
                .map(|name| crate::contract::Threshold {
                    name: name.clone(),
                    subject: crate::contract::Subject::Figure(name.clone()),
                    op: crate::contract::Op::AtMost,
                    value: 1e9,
                    unit: "ratio".into(),
                    why: None,
                })
                .collect(),
        )]
        .into_iter()
        .collect(),
    };
    let mut hits = 0;
    for run in 0..runs {
        let rounds: Vec<AbRound> = (0..n)
            .map(|_| {
                let mut b = MetricSummary::new("sim", RunProfile::new(Depth::Quick, None));
                let mut c = MetricSummary::new("sim", RunProfile::new(Depth::Quick, None));
                for (k, name) in names.iter().enumerate() {
                    let shift = if k == 0 { change.ln_1p() } else { 0.0 };
                    b.ratio(name, 100.0);
                    c.ratio(name, 100.0 * (shift + sd * standard_normal(&mut rng)).exp());
                }
                AbRound {
                    baseline: vec![b],
                    current: vec![c],
                }
            })
            .collect();
        let options = AbOptions {
            seed: seed + run as u64,
            ..AbOptions::default()
        };
        let r = analyse(&rounds, &contract, &options);
        hits += usize::from(r.regressions().any(|f| f.figure == "f0"));
    }
    hits as f64 / runs as f64
}

#[test]
fn the_printed_detectable_change_is_what_the_whole_rule_detects() {
    // The old column printed 5.3 % where 80 % power needed 9.2 % (12
    // rounds, 13 figures). Now: print it, then run the whole analysis at
    // that change; about 80 % of runs must flag it.
    let (n, m, sd) = (12, 8, 0.03);
    let level = 0.05 / m as f64;
    let printed = crate::stats::min_detectable_shift(n, sd, 0.05f64.ln_1p(), level, 0.8, 1)
        .unwrap()
        .exp_m1();
    let rate = detection_rate(n, m, sd, printed, 300, 77);
    assert!(
        (0.7..=0.9).contains(&rate),
        "printed {:.1} %, detected in {:.0} % of runs",
        printed * 100.0,
        rate * 100.0
    );
}
