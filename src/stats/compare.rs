use serde::{Deserialize, Serialize};
use statrs::distribution::{ContinuousCDF, Normal};

use super::summary::{percentile_sorted, sorted_finite};
use crate::error::Result;

/// How one set of samples differs from another, and how sure we are of it.
///
/// The significance test is the two-sided Mann-Whitney U test (normal
/// approximation with tie and continuity corrections). It compares whole
/// distributions by rank, so it suits latencies, whose long right tails break the
/// normality a t-test assumes. With fewer than about eight samples per side the
/// approximation is rough; reports keep at least twenty.
///
/// # Example
///
/// ```
/// use tidepool::stats::Comparison;
///
/// let before: Vec<f64> = (0..50).map(|i| 10.0 + (i % 7) as f64).collect();
/// let after: Vec<f64> = before.iter().map(|x| x * 1.5).collect();
/// let c = Comparison::of("page_ms", &before, &after)?;
/// assert!((c.ratio_of_medians - 1.5).abs() < 1e-12);
/// assert!(c.is_significant(0.05));
/// # Ok::<(), tidepool::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Comparison {
    /// Median of the baseline samples.
    pub baseline_median: f64,
    /// Median of the current samples.
    pub current_median: f64,
    /// `current_median / baseline_median` (infinite when the baseline median is 0
    /// and the current one is not; 1 when both are 0).
    pub ratio_of_medians: f64,
    /// `(ratio_of_medians - 1) * 100`.
    pub percent_change: f64,
    /// The Mann-Whitney U statistic of the baseline sample.
    pub u: f64,
    /// Two-sided p-value of the Mann-Whitney U test.
    pub p_value: f64,
    /// Samples on each side.
    pub n_baseline: usize,
    /// Samples on the current side.
    pub n_current: usize,
}

impl Comparison {
    /// Compares `current` with `baseline`; both describe `what`.
    pub fn of(what: &str, baseline: &[f64], current: &[f64]) -> Result<Comparison> {
        let a = sorted_finite(&format!("{what} (baseline)"), baseline)?;
        let b = sorted_finite(&format!("{what} (current)"), current)?;
        let baseline_median = percentile_sorted(&a, 0.5);
        let current_median = percentile_sorted(&b, 0.5);
        let ratio_of_medians = if baseline_median == current_median {
            1.0
        } else if baseline_median == 0.0 {
            f64::INFINITY.copysign(current_median)
        } else {
            current_median / baseline_median
        };
        let (u, p_value) = mann_whitney_u(&a, &b);
        Ok(Comparison {
            baseline_median,
            current_median,
            ratio_of_medians,
            percent_change: (ratio_of_medians - 1.0) * 100.0,
            u,
            p_value,
            n_baseline: a.len(),
            n_current: b.len(),
        })
    }

    /// Whether the difference is significant at level `alpha` (e.g. 0.05).
    pub fn is_significant(&self, alpha: f64) -> bool {
        self.p_value < alpha
    }
}

/// U statistic of `a` and the two-sided p-value, both inputs sorted.
fn mann_whitney_u(a: &[f64], b: &[f64]) -> (f64, f64) {
    let (n1, n2) = (a.len() as f64, b.len() as f64);
    // Rank the pooled sample, averaging the ranks of ties.
    let mut pooled: Vec<(f64, bool)> = a
        .iter()
        .map(|&x| (x, true))
        .chain(b.iter().map(|&x| (x, false)))
        .collect();
    pooled.sort_by(|x, y| x.0.total_cmp(&y.0));
    let (mut rank_sum_a, mut tie_term) = (0.0, 0.0);
    let mut i = 0;
    while i < pooled.len() {
        let mut j = i;
        while j + 1 < pooled.len() && pooled[j + 1].0 == pooled[i].0 {
            j += 1;
        }
        let avg_rank = (i + j) as f64 / 2.0 + 1.0;
        let t = (j - i + 1) as f64;
        tie_term += t * t * t - t;
        rank_sum_a += avg_rank * pooled[i..=j].iter().filter(|p| p.1).count() as f64;
        i = j + 1;
    }
    let u = rank_sum_a - n1 * (n1 + 1.0) / 2.0;
    let n = n1 + n2;
    let mean_u = n1 * n2 / 2.0;
    let var_u = n1 * n2 / 12.0 * ((n + 1.0) - tie_term / (n * (n - 1.0)));
    if var_u <= 0.0 {
        // Every sample is equal: nothing distinguishes the two sets.
        return (u, 1.0);
    }
    let z = ((u - mean_u).abs() - 0.5).max(0.0) / var_u.sqrt();
    let p = match Normal::new(0.0, 1.0) {
        Ok(normal) => 2.0 * normal.sf(z),
        Err(_) => 1.0,
    };
    (u, p.clamp(0.0, 1.0))
}
