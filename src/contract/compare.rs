//! Counters and ratios judged for regression between runs, in the direction
//! of the thresholds that read them.

use serde::Serialize;

use super::{Contract, Op, Subject};
use crate::report::ALPHA;
use crate::stats::prediction_p;
use crate::summary::MetricSummary;

/// How one judged figure that keeps no samples (a counter, a ratio, or a
/// ratio of them) moved between a baseline and the current run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FigureChange {
    /// The scenario.
    pub scenario: String,
    /// The threshold that judges the figure.
    pub threshold: String,
    /// The figure, e.g. `crashes` or `hits / lookups`.
    pub figure: String,
    /// Its value in the baseline (the median over the baseline runs).
    pub baseline: f64,
    /// Its value now.
    pub current: f64,
    /// Change, percent (infinite from a baseline of 0).
    pub percent_change: f64,
    /// Worse by more than the noise threshold in the direction the threshold
    /// guards (beyond the runs' spread, given three or more), or a count
    /// now breaching the limit the baseline held.
    pub regression: bool,
}

impl Contract {
    /// Compares every figure the contract judges that keeps no samples: the
    /// counters and ratios. Their direction comes from the threshold (`<=`:
    /// up is worse; `>=`: down is worse). Against three or more baseline
    /// runs, a figure regresses when the current run lies more than
    /// `threshold_pct` worse than what the runs' own spread predicts
    /// ([`prediction_p`], one value per run); against fewer, when it is
    /// worse by more than `threshold_pct`, for a single value has no spread
    /// to test. A count regresses when it breaches the contract's limit and
    /// the baseline did not: a count moving within what the contract allows
    /// is no regression. Thresholds on measurements are judged by the
    /// samples' own comparison (`report::compare`). Each figure's baseline
    /// is its median over the baseline runs.
    pub fn compare_figures(
        &self,
        baseline: &[&[MetricSummary]],
        current: &[MetricSummary],
        threshold_pct: f64,
    ) -> Vec<FigureChange> {
        let value = |s: &MetricSummary, subject: &Subject| match subject {
            Subject::Figure(f) => s.figure(f),
            Subject::Ratio(a, b) => match (s.figure(a), s.figure(b)) {
                (Some(a), Some(b)) if b != 0.0 => Some(a / b),
                _ => None,
            },
        };
        let sampled = |name: &str| name.contains('.');
        let mut out = Vec::new();
        for cur in current {
            for t in self.thresholds(&cur.scenario) {
                let names = match &t.subject {
                    Subject::Figure(f) => vec![f.as_str()],
                    Subject::Ratio(a, b) => vec![a.as_str(), b.as_str()],
                };
                if names.iter().any(|n| sampled(n)) {
                    continue;
                }
                let Some(now) = value(cur, &t.subject) else {
                    continue;
                };
                let mut before: Vec<f64> = baseline
                    .iter()
                    .filter_map(|run| run.iter().find(|s| s.scenario == cur.scenario))
                    .filter_map(|s| value(s, &t.subject))
                    .collect();
                if before.is_empty() {
                    continue;
                }
                before.sort_by(f64::total_cmp);
                let base = before[before.len() / 2];
                let percent_change = if base == 0.0 {
                    if now == 0.0 {
                        0.0
                    } else {
                        f64::INFINITY.copysign(now)
                    }
                } else {
                    (now / base - 1.0) * 100.0
                };
                let holds = |v: f64| match t.op {
                    Op::AtMost => v <= t.value,
                    Op::AtLeast => v >= t.value,
                };
                let worse = if t.unit == "count" {
                    !holds(now) && holds(base)
                } else if before.len() >= 3 {
                    prediction_p(&before, now, threshold_pct, t.op == Op::AtMost) < ALPHA
                } else {
                    match t.op {
                        Op::AtMost => percent_change > threshold_pct,
                        Op::AtLeast => percent_change < -threshold_pct,
                    }
                };
                out.push(FigureChange {
                    scenario: cur.scenario.clone(),
                    threshold: t.name.clone(),
                    figure: t.subject.to_string(),
                    baseline: base,
                    current: now,
                    percent_change,
                    regression: worse,
                });
            }
        }
        out
    }
}
