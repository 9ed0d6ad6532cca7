//! Change points in a history of runs: E-divisive means (Matteson & James
//! 2014) by binary segmentation, each split kept only when a Welch t-test
//! between its two sides is significant, as Hunter (DataStax) does.

use statrs::distribution::{ContinuousCDF, StudentsT};

/// A point where a series' level moved.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ChangePoint {
    /// Index of the first value after the change.
    pub index: usize,
    /// Mean of the segment before it.
    pub mean_before: f64,
    /// Mean of the segment after it.
    pub mean_after: f64,
    /// Welch t-test p-value between the two sides of the split.
    pub p_value: f64,
}

/// How [`change_points`] searches.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ChangePointOptions {
    /// A split is kept when its p-value is below this (default 0.001, as
    /// Hunter's default: the split tested is the best of many, so the test
    /// is optimistic and the level strict).
    pub alpha: f64,
    /// Fewest values on each side of a split (default 3).
    pub min_segment: usize,
}

impl Default for ChangePointOptions {
    fn default() -> Self {
        ChangePointOptions {
            alpha: 0.001,
            min_segment: 3,
        }
    }
}

/// The change points of `series` (in order), found by E-divisive means.
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
    let mut found = Vec::new();
    let mut segments = vec![(0, series.len())];
    while let Some((lo, hi)) = segments.pop() {
        let part = &series[lo..hi];
        let Some((at, _)) = best_split(part, options.min_segment) else {
            continue;
        };
        let p_value = welch_p(&part[..at], &part[at..]);
        if p_value >= options.alpha {
            continue;
        }
        found.push(ChangePoint {
            index: lo + at,
            mean_before: mean(&part[..at]),
            mean_after: mean(&part[at..]),
            p_value,
        });
        segments.push((lo, lo + at));
        segments.push((lo + at, hi));
    }
    found.sort_by_key(|c| c.index);
    found
}

/// The split of `x` that maximises the energy statistic, and its value.
fn best_split(x: &[f64], min_segment: usize) -> Option<(usize, f64)> {
    let n = x.len();
    let min_segment = min_segment.max(1);
    if n < 2 * min_segment {
        return None;
    }
    let mut best: Option<(usize, f64)> = None;
    for tau in min_segment..=n - min_segment {
        let (a, b) = x.split_at(tau);
        let between = mean_distance(a, b);
        let within_a = mean_pairwise(a);
        let within_b = mean_pairwise(b);
        let (na, nb) = (a.len() as f64, b.len() as f64);
        let q = na * nb / (na + nb) * (2.0 * between - within_a - within_b);
        if best.is_none_or(|(_, bq)| q > bq) {
            best = Some((tau, q));
        }
    }
    best
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

/// Two-sided p-value of Welch's t-test between `a` and `b`.
fn welch_p(a: &[f64], b: &[f64]) -> f64 {
    let var = |x: &[f64], m: f64| {
        x.iter().map(|v| (v - m).powi(2)).sum::<f64>() / (x.len() as f64 - 1.0).max(1.0)
    };
    let (ma, mb) = (mean(a), mean(b));
    let (na, nb) = (a.len() as f64, b.len() as f64);
    let (sa, sb) = (var(a, ma) / na, var(b, mb) / nb);
    let se2 = sa + sb;
    if se2 == 0.0 {
        // Two constant sides: apart or the same, with certainty.
        return if ma == mb { 1.0 } else { 0.0 };
    }
    let t = (ma - mb).abs() / se2.sqrt();
    let df = se2 * se2 / (sa * sa / (na - 1.0).max(1.0) + sb * sb / (nb - 1.0).max(1.0));
    match StudentsT::new(0.0, 1.0, df) {
        Ok(dist) => (2.0 * dist.sf(t)).clamp(0.0, 1.0),
        Err(_) => 1.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flat_noisy_series_has_no_change_point() {
        let series: Vec<f64> = (0..30).map(|i| 10.0 + ((i * 7) % 5) as f64 * 0.1).collect();
        assert!(change_points(&series, &ChangePointOptions::default()).is_empty());
    }

    #[test]
    fn two_steps_are_both_found() {
        let mut s: Vec<f64> = (0..10).map(|i| 5.0 + (i % 3) as f64 * 0.05).collect();
        s.extend((0..10).map(|i| 8.0 + (i % 3) as f64 * 0.05));
        s.extend((0..10).map(|i| 6.0 + (i % 3) as f64 * 0.05));
        let found: Vec<usize> = change_points(&s, &ChangePointOptions::default())
            .iter()
            .map(|c| c.index)
            .collect();
        assert_eq!(found, vec![10, 20]);
    }
}
