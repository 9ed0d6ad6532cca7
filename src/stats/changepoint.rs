//! Change points in a history of runs, found as Hunter (Fleming et al.,
//! "Hunter: Using Change Point Detection to Hunt for Performance
//! Regressions", 2023) finds them, with one correction of ours:
//!
//! 1. **Split.** E-divisive means (Matteson & James 2014) by binary
//!    segmentation proposes the split of each segment that maximises the
//!    energy statistic; a split is kept as a candidate when Student's t-test
//!    between its two sides passes a relaxed first-pass level (ten times
//!    the final one, as Hunter's first pass).
//! 2. **Per-segment statistics.** Each candidate is then described by the
//!    segments it separates, from its left neighbour to its right one, not
//!    by the parent segment the search happened to split.
//! 3. **Merge.** The weakest candidate (the largest p, or else the smallest
//!    relative magnitude) is removed while its p is not below the level or
//!    its magnitude is not above the minimum (5 %), and its neighbours are
//!    described again, until every one left passes both.
//!
//! The correction: the split tested is the best of every position the
//! search could choose, so a t-test on it as if fixed in advance finds
//! "changes" in pure noise (2.5 to 15 % of 50-point i.i.d. series did so
//! here before). Each p is therefore multiplied by the number of positions
//! its segment offered (Bonferroni over the search), which holds the false
//! change points to under 1 % per such series (a test below simulates it).

use statrs::distribution::{ContinuousCDF, StudentsT};

/// A point where a series' level moved.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ChangePoint {
    /// Index of the first value after the change.
    pub index: usize,
    /// Mean of the segment before it (from the previous change point).
    pub mean_before: f64,
    /// Mean of the segment after it (to the next change point).
    pub mean_after: f64,
    /// Student's t-test p-value between those two segments, multiplied by
    /// the number of positions the split was chosen from.
    pub p_value: f64,
}

impl ChangePoint {
    /// `|after - before| / |before|`; infinite from a mean of 0.
    pub fn magnitude(&self) -> f64 {
        relative(self.mean_before, self.mean_after)
    }
}

/// How [`change_points`] searches.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ChangePointOptions {
    /// A change point is kept when its p-value is below this (default
    /// 0.001, Hunter's default).
    pub alpha: f64,
    /// Fewest values on each side of a split (default 3).
    pub min_segment: usize,
    /// A change point must move the level by more than this fraction
    /// (default 0.05, Hunter's 5 %): smaller steps are not worth a look even
    /// when certain (two constant stretches 1e-16 apart are a "certain" step).
    pub min_magnitude: f64,
}

impl Default for ChangePointOptions {
    fn default() -> Self {
        ChangePointOptions {
            alpha: 0.001,
            min_segment: 3,
            min_magnitude: 0.05,
        }
    }
}

/// The change points of `series` (in order).
///
/// ```
/// use tidepool::stats::{change_points, ChangePointOptions};
///
/// let mut series = vec![10.0, 10.2, 9.9, 10.1, 10.0, 9.8, 10.1];
/// series.extend([13.1, 12.9, 13.0, 13.2, 12.8, 13.0]);
/// let found = change_points(&series, &ChangePointOptions::default());
/// assert_eq!(found.len(), 1);
/// assert_eq!(found[0].index, 7);
/// ```
pub fn change_points(series: &[f64], options: &ChangePointOptions) -> Vec<ChangePoint> {
    let min_segment = options.min_segment.max(2);
    let first_pass = (options.alpha * 10.0).min(0.5);
    // 1. Split.
    let mut candidates = Vec::new();
    let mut segments = vec![(0, series.len())];
    while let Some((lo, hi)) = segments.pop() {
        let part = &series[lo..hi];
        let Some(at) = best_split(part, min_segment) else {
            continue;
        };
        if searched_p(part, at, min_segment) >= first_pass {
            continue;
        }
        candidates.push(lo + at);
        segments.push((lo, lo + at));
        segments.push((lo + at, hi));
    }
    candidates.sort_unstable();
    // 2 and 3. Describe each by its neighbours; merge away the weakest.
    loop {
        let described = describe(series, &candidates, min_segment);
        let weakest_p = described
            .iter()
            .enumerate()
            .max_by(|a, b| a.1.p_value.total_cmp(&b.1.p_value));
        let Some((i, worst)) = weakest_p else {
            return described;
        };
        if worst.p_value >= options.alpha {
            candidates.remove(i);
            continue;
        }
        let smallest = described
            .iter()
            .enumerate()
            .min_by(|a, b| a.1.magnitude().total_cmp(&b.1.magnitude()));
        match smallest {
            Some((i, c)) if c.magnitude() <= options.min_magnitude => {
                candidates.remove(i);
            }
            _ => return described,
        }
    }
}

/// Each candidate with the statistics of the segments on either side of
/// it, up to its neighbours.
fn describe(series: &[f64], candidates: &[usize], min_segment: usize) -> Vec<ChangePoint> {
    (0..candidates.len())
        .map(|k| {
            let lo = if k == 0 { 0 } else { candidates[k - 1] };
            let hi = candidates.get(k + 1).copied().unwrap_or(series.len());
            let part = &series[lo..hi];
            let at = candidates[k] - lo;
            ChangePoint {
                index: candidates[k],
                mean_before: mean(&part[..at]),
                mean_after: mean(&part[at..]),
                p_value: searched_p(part, at, min_segment),
            }
        })
        .collect()
}

/// Student's t-test p between `part[..at]` and `part[at..]`, times the
/// positions a split of `part` could take.
fn searched_p(part: &[f64], at: usize, min_segment: usize) -> f64 {
    let positions = (part.len() + 1).saturating_sub(2 * min_segment).max(1);
    (student_p(&part[..at], &part[at..]) * positions as f64).min(1.0)
}

/// The split of `x` that maximises the energy statistic.
fn best_split(x: &[f64], min_segment: usize) -> Option<usize> {
    let n = x.len();
    if n < 2 * min_segment {
        return None;
    }
    let mut best: Option<(usize, f64)> = None;
    for tau in min_segment..=n - min_segment {
        let (a, b) = x.split_at(tau);
        let (na, nb) = (a.len() as f64, b.len() as f64);
        let q =
            na * nb / (na + nb) * (2.0 * mean_distance(a, b) - mean_pairwise(a) - mean_pairwise(b));
        if best.is_none_or(|(_, bq)| q > bq) {
            best = Some((tau, q));
        }
    }
    best.map(|(tau, _)| tau)
}

fn mean_distance(a: &[f64], b: &[f64]) -> f64 {
    let sum: f64 = a
        .iter()
        .flat_map(|x| b.iter().map(move |y| (x - y).abs()))
        .sum();
    sum / (a.len() * b.len()) as f64
}

fn mean_pairwise(a: &[f64]) -> f64 {
    let n = a.len();
    if n < 2 {
        return 0.0;
    }
    let mut sum = 0.0;
    for i in 0..n {
        for j in i + 1..n {
            sum += (a[i] - a[j]).abs();
        }
    }
    sum / (n * (n - 1) / 2) as f64
}

fn mean(x: &[f64]) -> f64 {
    x.iter().sum::<f64>() / x.len().max(1) as f64
}

fn relative(before: f64, after: f64) -> f64 {
    if before == after {
        0.0
    } else if before == 0.0 {
        f64::INFINITY
    } else {
        (after - before).abs() / before.abs()
    }
}

/// Two-sided p of Student's t-test (pooled variance) between `a` and `b`,
/// as Hunter uses.
fn student_p(a: &[f64], b: &[f64]) -> f64 {
    let (na, nb) = (a.len() as f64, b.len() as f64);
    let df = na + nb - 2.0;
    if df < 1.0 {
        return 1.0;
    }
    let (ma, mb) = (mean(a), mean(b));
    let ss = |x: &[f64], m: f64| x.iter().map(|v| (v - m).powi(2)).sum::<f64>();
    let pooled = (ss(a, ma) + ss(b, mb)) / df;
    let se = (pooled * (1.0 / na + 1.0 / nb)).sqrt();
    if se == 0.0 {
        // Two constant sides: apart or the same, with certainty; the
        // minimum magnitude decides whether "apart" matters.
        return if ma == mb { 1.0 } else { 0.0 };
    }
    let t = (ma - mb).abs() / se;
    match StudentsT::new(0.0, 1.0, df) {
        Ok(dist) => (2.0 * dist.sf(t)).clamp(0.0, 1.0),
        Err(_) => 1.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::standard_normal;

    #[test]
    fn a_flat_noisy_series_has_no_change_point() {
        let series: Vec<f64> = (0..30).map(|i| 10.0 + ((i * 7) % 5) as f64 * 0.1).collect();
        assert!(change_points(&series, &ChangePointOptions::default()).is_empty());
    }

    #[test]
    fn two_steps_are_both_found_each_described_by_its_own_segments() {
        let mut s: Vec<f64> = (0..10).map(|i| 5.0 + (i % 3) as f64 * 0.05).collect();
        s.extend((0..10).map(|i| 8.0 + (i % 3) as f64 * 0.05));
        s.extend((0..10).map(|i| 6.0 + (i % 3) as f64 * 0.05));
        let found = change_points(&s, &ChangePointOptions::default());
        let at: Vec<usize> = found.iter().map(|c| c.index).collect();
        assert_eq!(at, vec![10, 20]);
        // The step at 10 is 5 -> 8 (+60 %); its parent segment (0..30)
        // would have said 5 -> 7 (+40 %).
        let step = found[0].mean_after / found[0].mean_before - 1.0;
        assert!((step - 0.6).abs() < 0.01, "{:?}", found[0]);
    }

    #[test]
    fn a_step_below_the_minimum_magnitude_is_no_change_point() {
        // Two constant stretches 5.5e-17 apart: a t-test says p = 0.
        let mut s = vec![0.3; 5];
        s.extend([0.1 + 0.2; 5]);
        assert!(change_points(&s, &ChangePointOptions::default()).is_empty());
        // A real 10 % step between constant stretches is one.
        let mut s = vec![1.0; 5];
        s.extend([1.1; 5]);
        assert_eq!(change_points(&s, &ChangePointOptions::default()).len(), 1);
    }

    #[test]
    fn pure_noise_gives_a_false_change_point_in_under_1_percent_of_series() {
        let mut rng = fastrand::Rng::with_seed(2026);
        let series_count = 2000;
        let mut false_alarms = 0;
        for _ in 0..series_count {
            // 50 i.i.d. points, 10 % spread: wide enough to pass the
            // minimum magnitude, so only the test guards against noise.
            let s: Vec<f64> = (0..50)
                .map(|_| 100.0 + 10.0 * standard_normal(&mut rng))
                .collect();
            if !change_points(&s, &ChangePointOptions::default()).is_empty() {
                false_alarms += 1;
            }
        }
        let rate = false_alarms as f64 / series_count as f64;
        assert!(rate <= 0.01, "{false_alarms} of {series_count} series");
    }

    #[test]
    fn a_real_step_in_noise_is_found() {
        let mut rng = fastrand::Rng::with_seed(7);
        let mut found = 0;
        for _ in 0..100 {
            let s: Vec<f64> = (0..50)
                .map(|i| {
                    let level = if i < 25 { 100.0 } else { 120.0 };
                    level + 5.0 * standard_normal(&mut rng)
                })
                .collect();
            let cps = change_points(&s, &ChangePointOptions::default());
            found += usize::from(cps.iter().any(|c| c.index.abs_diff(25) <= 2));
        }
        assert!(found >= 95, "found in {found} of 100");
    }
}
