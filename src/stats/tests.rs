use assert_matches::assert_matches;
use proptest::prelude::*;
use serde::Deserialize;

use super::*;
use crate::Error;
use tidepool_pools::Error as PoolError;

fn one_to_hundred() -> Vec<f64> {
    (1..=100).map(f64::from).collect()
}

fn assert_close(actual: f64, expected: f64, rel: f64, what: &str) {
    let scale = expected.abs().max(f64::MIN_POSITIVE);
    assert!(
        (actual - expected).abs() / scale <= rel,
        "{what}: actual {actual:e}, expected {expected:e}, relative error {:e} > {rel:e}",
        (actual - expected).abs() / scale
    );
}

#[test]
fn one_to_hundred_matches_known_values() {
    let s = Summary::from_samples("1..=100", &one_to_hundred()).unwrap();
    assert_eq!(s.n, 100);
    assert_close(s.mean, 50.5, 1e-12, "mean");
    assert_close(s.median, 50.5, 1e-12, "median");
    assert_close(s.p95, 95.05, 1e-12, "p95");
    assert_close(s.p99, 99.01, 1e-12, "p99");
    assert_close(s.stddev, 29.011_491_975_882_016, 1e-12, "stddev");
    assert_eq!((s.min, s.max), (1.0, 100.0));
    assert_eq!(s.outliers.count, 0);
    let ci = s.ci95.unwrap();
    // scipy: t.ppf(0.975, 99) * std(ddof=1) / sqrt(100)
    assert_close(
        ci.high - s.mean,
        5.756_509_416_935_843,
        1e-9,
        "ci half-width",
    );
}

#[test]
fn a_far_sample_is_a_tukey_outlier() {
    let s = Summary::from_samples("x", &[1.0, 2.0, 3.0, 4.0, 100.0]).unwrap();
    assert_eq!(s.mean, 22.0);
    assert_eq!(s.median, 3.0);
    assert_eq!(s.outliers.indices, vec![4]);
    assert_eq!((s.outliers.low_fence, s.outliers.high_fence), (-1.0, 7.0));
}

#[test]
fn a_single_sample_has_no_interval_and_zero_spread() {
    let s = Summary::from_samples("x", &[7.5]).unwrap();
    assert_eq!((s.n, s.mean, s.p99, s.stddev), (1, 7.5, 7.5, 0.0));
    assert_eq!(s.ci95, None);
}

#[test]
fn empty_and_non_finite_input_are_errors_that_name_the_sample() {
    assert_matches!(
        Summary::from_samples("latency", &[]),
        Err(Error::EmptySamples { what }) if what == "latency"
    );
    assert_matches!(
        Summary::from_samples("latency", &[1.0, f64::NAN]),
        Err(Error::NonFiniteSample { index: 1, .. })
    );
    assert_matches!(
        Comparison::of("latency", &[1.0], &[f64::INFINITY]),
        Err(Error::NonFiniteSample { index: 0, .. })
    );
    assert_matches!(
        percentile("x", &[1.0], 1.5),
        Err(Error::Pool(PoolError::Config { .. }))
    );
}

#[derive(Deserialize)]
struct Reference {
    cases: Vec<RefCase>,
    comparisons: Vec<RefComparison>,
}

#[derive(Deserialize)]
struct RefCase {
    name: String,
    samples: Vec<f64>,
    mean: f64,
    std_ddof1: f64,
    min: f64,
    max: f64,
    percentiles: std::collections::BTreeMap<String, f64>,
    ci95: [f64; 2],
}

#[derive(Deserialize)]
struct RefComparison {
    baseline: Vec<f64>,
    current: Vec<f64>,
    u: f64,
    p_value: f64,
}

fn reference() -> Reference {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/stats/numpy_reference.json"
    );
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn summaries_agree_with_numpy_to_1e_9() {
    let reference = reference();
    assert!(reference.cases.len() >= 30);
    for case in &reference.cases {
        let s = Summary::from_samples(&case.name, &case.samples).unwrap();
        let name = &case.name;
        assert_close(s.mean, case.mean, 1e-9, &format!("{name} mean"));
        assert_close(s.stddev, case.std_ddof1, 1e-9, &format!("{name} std"));
        assert_eq!((s.min, s.max), (case.min, case.max), "{name} min/max");
        for (p, expected) in &case.percentiles {
            let fraction = p.parse::<f64>().unwrap() / 100.0;
            let actual = percentile(name, &case.samples, fraction).unwrap();
            assert_close(actual, *expected, 1e-9, &format!("{name} p{p}"));
        }
        assert_close(s.p95, case.percentiles["95"], 1e-9, &format!("{name} p95"));
        let ci = s.ci95.unwrap();
        // The interval is mean +- half-width; compare the half-width, which is
        // what the t quantile determines, so a large mean cannot hide an error.
        let expected_half = (case.ci95[1] - case.ci95[0]) / 2.0;
        assert_close(
            (ci.high - ci.low) / 2.0,
            expected_half,
            1e-7,
            &format!("{name} ci"),
        );
    }
}

#[test]
fn mann_whitney_agrees_with_scipy() {
    for (i, c) in reference().comparisons.iter().enumerate() {
        let cmp = Comparison::of("ref", &c.baseline, &c.current).unwrap();
        assert_close(cmp.u, c.u, 1e-12, &format!("comparison {i} U"));
        assert_close(cmp.p_value, c.p_value, 1e-6, &format!("comparison {i} p"));
    }
}

#[test]
fn a_fifty_percent_shift_is_significant_and_one_percent_is_small() {
    let base: Vec<f64> = (0..100).map(|i| 20.0 + ((i * 37) % 11) as f64).collect();
    let slower: Vec<f64> = base.iter().map(|x| x * 1.5).collect();
    let c = Comparison::of("x", &base, &slower).unwrap();
    assert!(c.is_significant(0.01), "p = {}", c.p_value);
    assert!((c.percent_change - 50.0).abs() < 1e-9);
    let same = Comparison::of("x", &base, &base).unwrap();
    assert_eq!((same.ratio_of_medians, same.p_value), (1.0, 1.0));
}

proptest! {
    #[test]
    fn percentiles_are_ordered_and_mean_is_bounded(
        xs in prop::collection::vec(-1e9f64..1e9, 1..300)
    ) {
        let s = Summary::from_samples("prop", &xs).unwrap();
        prop_assert!(s.min <= s.p50 && s.p50 <= s.p90 && s.p90 <= s.p95);
        prop_assert!(s.p95 <= s.p99 && s.p99 <= s.max);
        // The mean of finite values lies within their range, up to rounding.
        let slack = 1e-12 * s.max.abs().max(s.min.abs());
        prop_assert!(s.min - slack <= s.mean && s.mean <= s.max + slack);
        // The sample standard deviation never exceeds the range (it is at most
        // range * sqrt(n / (4 (n - 1))) <= range for n >= 2), and is 0 exactly
        // when every sample is equal.
        prop_assert!(s.stddev <= (s.max - s.min) * (1.0 + 1e-9) + 1e-300);
        prop_assert_eq!(s.stddev == 0.0, s.min == s.max);
        prop_assert_eq!(s.outliers.count, s.outliers.indices.len());
    }

    #[test]
    fn order_of_samples_does_not_matter(
        xs in prop::collection::vec(-1e6f64..1e6, 2..200),
        seed in any::<u64>()
    ) {
        let mut shuffled = xs.clone();
        // A deterministic Fisher-Yates driven by the seed.
        let mut state = seed | 1;
        for i in (1..shuffled.len()).rev() {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            shuffled.swap(i, (state % (i as u64 + 1)) as usize);
        }
        let a = Summary::from_samples("a", &xs).unwrap();
        let b = Summary::from_samples("b", &shuffled).unwrap();
        prop_assert_eq!((a.p50, a.p90, a.p95, a.p99, a.min, a.max), (b.p50, b.p90, b.p95, b.p99, b.min, b.max));
        let rel = |x: f64, y: f64| (x - y).abs() <= 1e-9 * x.abs().max(1.0);
        prop_assert!(rel(a.mean, b.mean) && rel(a.stddev, b.stddev));
        prop_assert_eq!(a.outliers.count, b.outliers.count);
    }
}
