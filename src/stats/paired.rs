//! Paired comparisons: the same figure measured by a baseline and a current
//! build in each of several interleaved rounds.
//!
//! The test is the Wilcoxon signed-rank test on the per-round differences
//! (exact distribution when there are no tied magnitudes and at most 60
//! pairs, the normal approximation otherwise), the family of figures is
//! corrected with Holm's step-down method, and the change is estimated as
//! the ratio of the two sides' means with a paired bootstrap interval.

use statrs::distribution::{ContinuousCDF, Normal};

/// Two-sided p-value of the Wilcoxon signed-rank test on paired differences
/// `diffs` (zeros dropped, as Wilcoxon did). No non-zero difference gives 1.
///
/// # Example
///
/// ```
/// use tidepool::stats::wilcoxon_signed_rank;
///
/// // Ten rounds, every one slower: p = 2 / 2^10.
/// let diffs: Vec<f64> = (1..=10).map(|i| i as f64).collect();
/// assert!((wilcoxon_signed_rank(&diffs) - 2.0 / 1024.0).abs() < 1e-12);
/// ```
pub fn wilcoxon_signed_rank(diffs: &[f64]) -> f64 {
    let mut d: Vec<f64> = diffs
        .iter()
        .copied()
        .filter(|x| x.is_finite() && *x != 0.0)
        .collect();
    let n = d.len();
    if n == 0 {
        return 1.0;
    }
    d.sort_by(|a, b| a.abs().total_cmp(&b.abs()));
    // Ranks of |d|, ties averaged; t^3 - t summed for the variance.
    let mut ranks = vec![0.0; n];
    let (mut tie_term, mut ties) = (0.0, false);
    let mut i = 0;
    while i < n {
        let mut j = i;
        while j + 1 < n && d[j + 1].abs() == d[i].abs() {
            j += 1;
        }
        let avg = (i + j) as f64 / 2.0 + 1.0;
        ranks[i..=j].iter_mut().for_each(|r| *r = avg);
        let t = (j - i + 1) as f64;
        tie_term += t * t * t - t;
        ties |= j > i;
        i = j + 1;
    }
    let w_plus: f64 = d
        .iter()
        .zip(&ranks)
        .filter(|(x, _)| **x > 0.0)
        .map(|(_, r)| r)
        .sum();
    if !ties && n <= 60 {
        return exact_two_sided(n, w_plus.round() as usize);
    }
    let nf = n as f64;
    let mean = nf * (nf + 1.0) / 4.0;
    let var = nf * (nf + 1.0) * (2.0 * nf + 1.0) / 24.0 - tie_term / 48.0;
    if var <= 0.0 {
        return 1.0;
    }
    let z = ((w_plus - mean).abs() - 0.5).max(0.0) / var.sqrt();
    (2.0 * standard_normal().sf(z)).clamp(0.0, 1.0)
}

/// Exact two-sided p of W+ = `w` with `n` untied pairs: the number of subsets
/// of the ranks 1..=n by their sum, counted by dynamic programming.
fn exact_two_sided(n: usize, w: usize) -> f64 {
    let max = n * (n + 1) / 2;
    let mut ways = vec![0.0f64; max + 1];
    ways[0] = 1.0;
    for rank in 1..=n {
        for s in (rank..=max).rev() {
            ways[s] += ways[s - rank];
        }
    }
    let total = 2f64.powi(n as i32);
    let w = w.min(max);
    let lower: f64 = ways[..=w].iter().sum::<f64>() / total;
    let upper: f64 = ways[w..].iter().sum::<f64>() / total;
    (2.0 * lower.min(upper)).min(1.0)
}

/// The smallest two-sided p the exact signed-rank test can give with `n`
/// pairs: every round moved the same way.
pub fn wilcoxon_min_p(n: usize) -> f64 {
    if n == 0 {
        1.0
    } else {
        (2.0 / 2f64.powi(n as i32)).min(1.0)
    }
}

/// Holm's step-down correction: each p-value adjusted so that rejecting where
/// the adjusted value is below alpha keeps the family-wise error at alpha.
///
/// ```
/// use tidepool::stats::holm;
///
/// assert_eq!(holm(&[0.01, 0.04, 0.03]), vec![0.03, 0.06, 0.06]);
/// ```
pub fn holm(p: &[f64]) -> Vec<f64> {
    let m = p.len();
    let mut order: Vec<usize> = (0..m).collect();
    order.sort_by(|&a, &b| p[a].total_cmp(&p[b]));
    let mut adjusted = vec![1.0; m];
    let mut running = 0.0f64;
    for (k, &i) in order.iter().enumerate() {
        running = running.max(((m - k) as f64 * p[i]).min(1.0));
        adjusted[i] = running;
    }
    adjusted
}

/// The relative change `mean(current) / mean(baseline) - 1` of paired rounds,
/// with a percentile bootstrap interval (rounds resampled as pairs,
/// `resamples` times, seeded so a report can be reproduced). `None` when the
/// baseline's mean is 0 (no relative change exists).
pub fn paired_change(
    baseline: &[f64],
    current: &[f64],
    confidence: f64,
    resamples: usize,
    seed: u64,
) -> Option<PairedChange> {
    let n = baseline.len().min(current.len());
    if n == 0 {
        return None;
    }
    let ratio = |idx: &mut dyn Iterator<Item = usize>| {
        let (mut b, mut c) = (0.0, 0.0);
        for i in idx {
            b += baseline[i];
            c += current[i];
        }
        (b != 0.0).then(|| c / b - 1.0)
    };
    let estimate = ratio(&mut (0..n))?;
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut boot: Vec<f64> = (0..resamples)
        .filter_map(|_| ratio(&mut (0..n).map(|_| rng.usize(..n))))
        .collect();
    boot.sort_by(f64::total_cmp);
    let (lower, upper) = if boot.is_empty() {
        (estimate, estimate)
    } else {
        let tail = (1.0 - confidence) / 2.0;
        let at = |q: f64| boot[((boot.len() - 1) as f64 * q).round() as usize];
        (at(tail), at(1.0 - tail))
    };
    Some(PairedChange {
        estimate,
        lower,
        upper,
    })
}

/// A relative change and its interval, as fractions (0.05 is +5 %).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PairedChange {
    /// The point estimate.
    pub estimate: f64,
    /// Lower end of the interval.
    pub lower: f64,
    /// Upper end of the interval.
    pub upper: f64,
}

/// The smallest relative change (a fraction) a paired test at level `alpha`
/// detects with probability `power`, given the per-round ratios' relative
/// spread `relative_sd` over `n` rounds: `(z(1-alpha/2) + z(power)) * sd /
/// sqrt(n)`, inflated by 1/0.955 (the signed-rank test's worst efficiency
/// against the t-test on near-normal data is 3/pi). `None` when `n` rounds
/// cannot reach `alpha` at all with the exact test.
pub fn min_detectable_effect(relative_sd: f64, n: usize, alpha: f64, power: f64) -> Option<f64> {
    if n < 2 || wilcoxon_min_p(n) >= alpha || !relative_sd.is_finite() {
        return None;
    }
    let z = standard_normal();
    let efficiency = (3.0 / std::f64::consts::PI).sqrt();
    Some(
        (z.inverse_cdf(1.0 - alpha / 2.0) + z.inverse_cdf(power)) * relative_sd
            / (n as f64).sqrt()
            / efficiency,
    )
}

fn standard_normal() -> Normal {
    // Mean 0, sd 1 are valid parameters; the constructor cannot fail on them.
    Normal::standard()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_signed_rank_matches_the_table() {
        // n = 8, W+ = 3: P(W+ <= 3) = 5/256, two-sided 10/256.
        let d = [-1.0, -2.0, 3.0, -4.0, -5.0, -6.0, -7.0, -8.0];
        assert!((wilcoxon_signed_rank(&d) - 10.0 / 256.0).abs() < 1e-12);
        // Symmetric: p = 1 at the centre.
        assert!(wilcoxon_signed_rank(&[1.0, -1.5, 2.0, -2.5]) > 0.6);
        assert_eq!(wilcoxon_signed_rank(&[0.0, 0.0]), 1.0);
    }

    #[test]
    fn ties_fall_back_to_the_normal_approximation() {
        let p = wilcoxon_signed_rank(&[1.0; 12]);
        assert!(p < 0.01 && p > 1e-6, "{p}");
    }

    #[test]
    fn holm_is_monotone_and_capped() {
        let a = holm(&[0.001, 0.5, 0.02, 0.9]);
        assert_eq!(a, vec![0.004, 1.0, 0.06, 1.0]);
    }

    #[test]
    fn the_bootstrap_interval_brackets_the_estimate() {
        let base: Vec<f64> = (0..12).map(|i| 100.0 + (i % 5) as f64).collect();
        let cur: Vec<f64> = base.iter().map(|x| x * 1.3).collect();
        let c = paired_change(&base, &cur, 0.95, 2000, 7).unwrap();
        assert!((c.estimate - 0.3).abs() < 1e-9);
        assert!(c.lower <= c.estimate && c.estimate <= c.upper);
        assert!(paired_change(&[0.0, 0.0], &[1.0, 1.0], 0.95, 100, 1).is_none());
    }

    #[test]
    fn too_few_rounds_detect_nothing() {
        assert_eq!(min_detectable_effect(0.05, 5, 0.05, 0.8), None);
        let mde = min_detectable_effect(0.05, 12, 0.05, 0.8).unwrap();
        assert!(mde > 0.03 && mde < 0.06, "{mde}");
    }
}
