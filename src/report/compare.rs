use serde::Serialize;

use super::MetricSummary;
use crate::error::Result;
use crate::stats::{percentile, prediction_p, Comparison};

/// Significance level of the regression test.
pub const ALPHA: f64 = 0.05;

/// How one measurement changed between a baseline and the current run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MetricChange {
    /// The scenario.
    pub scenario: String,
    /// The measurement.
    pub metric: String,
    /// Its unit.
    pub unit: String,
    /// Median of the baseline samples.
    pub baseline_median: f64,
    /// Median of the current samples.
    pub current_median: f64,
    /// Change of the median, percent.
    pub percent_change: f64,
    /// Against one baseline run: the two-sided Mann-Whitney p over the two
    /// runs' samples. Against a history: the one-sided prediction p on run
    /// medians, in the direction the median moved.
    pub p_value: f64,
    /// The change is beyond the noise threshold and significant at [`ALPHA`].
    pub significant: bool,
    /// A significant increase beyond the threshold. Every measurement tidepool
    /// reports is a cost (time, memory), so up is worse.
    pub regression: bool,
    /// A significant decrease beyond the threshold.
    pub improvement: bool,
}

fn change(
    scenario: &str,
    metric: &str,
    unit: &str,
    baseline: &[f64],
    current: &[f64],
    threshold_pct: f64,
) -> Result<MetricChange> {
    let c = Comparison::of(metric, baseline, current)?;
    let beyond = c.percent_change.abs() > threshold_pct;
    let significant = beyond && c.is_significant(ALPHA);
    Ok(MetricChange {
        scenario: scenario.to_owned(),
        metric: metric.to_owned(),
        unit: unit.to_owned(),
        baseline_median: c.baseline_median,
        current_median: c.current_median,
        percent_change: c.percent_change,
        p_value: c.p_value,
        significant,
        regression: significant && c.percent_change > 0.0,
        improvement: significant && c.percent_change < 0.0,
    })
}

/// Compares every measurement present in both `baseline` and `current` (by
/// scenario and name), using the raw samples the reports keep. A regression
/// needs both: a median change beyond `threshold_pct` percent, and a
/// significant difference between the sample sets.
pub fn compare(
    baseline: &[MetricSummary],
    current: &[MetricSummary],
    threshold_pct: f64,
) -> Result<Vec<MetricChange>> {
    let mut out = Vec::new();
    for cur in current {
        let Some(base) = baseline.iter().find(|b| b.scenario == cur.scenario) else {
            continue;
        };
        for (name, m) in &cur.metrics {
            let Some(b) = base.metrics.get(name) else {
                continue;
            };
            out.push(change(
                &cur.scenario,
                name,
                &m.unit,
                &b.samples,
                &m.samples,
                threshold_pct,
            )?);
        }
    }
    Ok(out)
}

/// Compares `current` against the trailing runs in `history` (oldest first;
/// the last `k` are used), on run-level units: each past run gives one
/// value, its median, so the spread between runs (a machine's mood, a
/// Chromium warm-up) is part of the noise, as it is between this run and
/// the next. Pooling the runs' raw samples instead treats every sample as
/// independent and calls about 12 % of unchanged runs a regression at a 4 %
/// run-level spread.
///
/// The test is one-sided on log medians: is the current run's median more
/// than `threshold_pct` worse than the past runs' centre, beyond what the
/// past runs' own spread predicts for one new run (Student's t prediction
/// test, `k - 1` degrees of freedom)? A measurement reported by fewer than
/// three past runs has no spread to judge by: its change is shown, never
/// significant.
pub fn compare_history(
    history: &[Vec<MetricSummary>],
    current: &[MetricSummary],
    k: usize,
    threshold_pct: f64,
) -> Result<Vec<MetricChange>> {
    let window = &history[history.len().saturating_sub(k)..];
    let mut out = Vec::new();
    for cur in current {
        for (name, m) in &cur.metrics {
            let medians: Vec<f64> = window
                .iter()
                .filter_map(|run| run.iter().find(|s| s.scenario == cur.scenario))
                .filter_map(|s| s.metrics.get(name))
                .map(|p| p.summary.median)
                .collect();
            if medians.is_empty() {
                continue;
            }
            let trailing = percentile(name, &medians, 0.5)?;
            let current_median = m.summary.median;
            let percent_change = (current_median / trailing - 1.0) * 100.0;
            let worse = prediction_p(&medians, current_median, threshold_pct, true);
            let better = prediction_p(&medians, current_median, threshold_pct, false);
            let regression = worse < ALPHA;
            let improvement = better < ALPHA;
            out.push(MetricChange {
                scenario: cur.scenario.clone(),
                metric: name.clone(),
                unit: m.unit.clone(),
                baseline_median: trailing,
                current_median,
                percent_change,
                p_value: if percent_change >= 0.0 { worse } else { better },
                significant: regression || improvement,
                regression,
                improvement,
            });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profile::{Depth, RunProfile};

    fn summary(scale: f64) -> MetricSummary {
        let mut s = MetricSummary::new("demo", RunProfile::new(Depth::Quick, None));
        let samples: Vec<f64> = (0..60)
            .map(|i| (20.0 + ((i * 37) % 13) as f64) * scale)
            .collect();
        s.measure("page_ms", "ms", &samples).unwrap();
        s
    }

    #[test]
    fn a_fifty_percent_slowdown_regresses_and_one_percent_does_not() {
        let base = [summary(1.0)];
        let same = compare(&base, &base, 5.0).unwrap();
        assert!(!same[0].regression && same[0].percent_change == 0.0);
        let slow = compare(&base, &[summary(1.5)], 5.0).unwrap();
        assert!(slow[0].regression, "{:?}", slow[0]);
        let tiny = compare(&base, &[summary(1.01)], 5.0).unwrap();
        assert!(!tiny[0].regression, "{:?}", tiny[0]);
        let fast = compare(&base, &[summary(0.5)], 5.0).unwrap();
        assert!(fast[0].improvement && !fast[0].regression);
    }

    #[test]
    fn a_median_past_the_threshold_on_small_overlapping_samples_is_not_a_regression() {
        let run = |samples: &[f64]| {
            let mut s = MetricSummary::new("demo", RunProfile::new(Depth::Quick, None));
            s.measure("page_ms", "ms", samples).unwrap();
            s
        };
        let base = [run(&[10.0, 20.0, 30.0, 40.0, 50.0])];
        let cur = [run(&[12.0, 22.0, 33.0, 41.0, 52.0])];
        let c = &compare(&base, &cur, 5.0).unwrap()[0];
        assert!(c.percent_change > 5.0, "the median moved 10 %: {c:?}");
        assert!(c.p_value > ALPHA, "{c:?}");
        assert!(!c.regression, "not significant, so not a regression: {c:?}");
    }

    #[test]
    fn an_unchanged_run_is_rarely_called_a_regression_at_a_4_percent_run_spread() {
        // Every run draws its own level (4 % spread between runs) and 60
        // samples around it (2 % within). Pooled samples flagged ~12 %.
        let mut rng = fastrand::Rng::with_seed(41);
        let run = |rng: &mut fastrand::Rng| {
            let level = 20.0 * (0.04 * crate::stats::standard_normal(rng)).exp();
            let samples: Vec<f64> = (0..60)
                .map(|_| level * (0.02 * crate::stats::standard_normal(rng)).exp())
                .collect();
            let mut s = MetricSummary::new("demo", RunProfile::new(Depth::Quick, None));
            s.measure("page_ms", "ms", &samples).unwrap();
            s
        };
        let trials = 400;
        let mut flagged = 0;
        for _ in 0..trials {
            let history: Vec<Vec<MetricSummary>> = (0..5).map(|_| vec![run(&mut rng)]).collect();
            let current = [run(&mut rng)];
            let c = compare_history(&history, &current, 5, 5.0).unwrap();
            flagged += usize::from(c[0].regression);
        }
        let rate = flagged as f64 / trials as f64;
        assert!(rate <= 0.05, "{flagged} of {trials}");
    }

    #[test]
    fn history_compares_against_the_trailing_median() {
        let history = [
            vec![summary(1.0)],
            vec![summary(1.02)],
            vec![summary(0.98)],
            vec![summary(3.0)],
        ];
        // With k = 3 the 3x outlier run is in the window, but the median of
        // medians ignores it.
        let changes = compare_history(&history[1..], &[summary(1.0)], 3, 5.0).unwrap();
        assert!(!changes[0].regression, "{:?}", changes[0]);
        let changes = compare_history(&history[..3], &[summary(1.6)], 3, 5.0).unwrap();
        assert!(changes[0].regression);
    }
}
