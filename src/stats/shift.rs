//! A paired change as one model: the per-round log ratios, their centre
//! (the Hodges-Lehmann estimate), a one-sided signed-rank test of "the
//! centre is at most a margin", and the confidence bounds got by inverting
//! that same test, so the verdict and the interval cannot disagree: the
//! test rejects at level a exactly when the one-sided (1 - a) lower bound
//! lies above the margin.
//!
//! What a run can detect is computed for this rule as implemented, by
//! simulating it ([`min_detectable_shift`]), not from a normal formula: the
//! exact test's discreteness and the margin both cost power.

use super::signed_rank::{signed_rank_min_p, signed_rank_p, Alternative};

/// The Hodges-Lehmann estimate of the centre of `x`: the median of its Walsh
/// averages `(x_i + x_j) / 2, i <= j`. `None` for no finite value.
///
/// ```
/// use tidepool::stats::hodges_lehmann;
///
/// // One wild round moves it little: the Walsh averages are 1, 1.5, 2, 2,
/// // 2.5, 3, 50.5, 51, 51.5 and 100, so the centre is (2.5 + 3) / 2.
/// assert_eq!(hodges_lehmann(&[1.0, 2.0, 3.0, 100.0]), Some(2.75));
/// ```
pub fn hodges_lehmann(x: &[f64]) -> Option<f64> {
    let w = walsh_averages(x);
    if w.is_empty() {
        return None;
    }
    let m = w.len();
    Some(if m % 2 == 1 {
        w[m / 2]
    } else {
        (w[m / 2 - 1] + w[m / 2]) / 2.0
    })
}

/// p of the one-sided exact signed-rank test of "the centre of `x` is at
/// most `margin`" against "above it".
pub fn p_above(x: &[f64], margin: f64) -> f64 {
    let shifted: Vec<f64> = x.iter().map(|v| v - margin).collect();
    signed_rank_p(&shifted, Alternative::Greater)
}

/// The one-sided `1 - alpha` lower confidence bound of the centre of `x`:
/// the least upper bound of the margins the exact test rejects at `alpha`
/// (`p_above(x, margin) < alpha`). `None` when no margin can be rejected
/// (too few values for `alpha`).
///
/// ```
/// use tidepool::stats::{lower_bound, p_above};
///
/// let x = [0.11, 0.09, 0.12, 0.10, 0.13, 0.08, 0.10, 0.11, 0.12, 0.09];
/// let lo = lower_bound(&x, 0.05).unwrap();
/// // The test and the bound agree on either side of it.
/// assert!(p_above(&x, lo - 1e-9) < 0.05);
/// assert!(p_above(&x, lo + 1e-9) >= 0.05);
/// ```
pub fn lower_bound(x: &[f64], alpha: f64) -> Option<f64> {
    let w = walsh_averages(x);
    if w.is_empty() {
        return None;
    }
    // Candidate margins in increasing order: below every Walsh average, each
    // average, and each midpoint between neighbours. The p is constant
    // between neighbours and (near enough) monotone in the margin, so the
    // rejected margins are a prefix of this list.
    let mut candidates = Vec::with_capacity(2 * w.len() + 1);
    candidates.push(w[0] - 1.0 - w[0].abs());
    for (i, &v) in w.iter().enumerate() {
        candidates.push(v);
        if let Some(&next) = w.get(i + 1) {
            if next > v {
                candidates.push((v + next) / 2.0);
            }
        }
    }
    let rejects = |m: f64| p_above(x, m) < alpha;
    if !rejects(candidates[0]) {
        return None;
    }
    // The last candidate that rejects, by bisection over the prefix.
    let (mut lo, mut hi) = (0usize, candidates.len());
    while hi - lo > 1 {
        let mid = (lo + hi) / 2;
        if rejects(candidates[mid]) {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    // The bound is the Walsh average at or just above the last rejected
    // candidate: beyond it the statistic changes.
    let last = candidates[lo];
    Some(
        w.iter()
            .copied()
            .find(|&v| v >= last)
            .unwrap_or(w[w.len() - 1]),
    )
}

/// The one-sided `1 - alpha` upper confidence bound of the centre of `x`.
pub fn upper_bound(x: &[f64], alpha: f64) -> Option<f64> {
    let negated: Vec<f64> = x.iter().map(|v| -v).collect();
    lower_bound(&negated, alpha).map(|b| -b)
}

/// Sorted Walsh averages of the finite values of `x`.
fn walsh_averages(x: &[f64]) -> Vec<f64> {
    let v: Vec<f64> = x.iter().copied().filter(|v| v.is_finite()).collect();
    let mut w = Vec::with_capacity(v.len() * (v.len() + 1) / 2);
    for i in 0..v.len() {
        for j in i..v.len() {
            w.push((v[i] + v[j]) / 2.0);
        }
    }
    w.sort_by(f64::total_cmp);
    w
}

/// The probability that the rule `p_above(x, margin) < level` flags `n`
/// rounds whose log ratios are normal with centre `shift` and spread `sd`,
/// estimated from `draws` seeded simulations.
pub fn simulated_power(
    n: usize,
    sd: f64,
    shift: f64,
    margin: f64,
    level: f64,
    draws: usize,
    seed: u64,
) -> f64 {
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut x = vec![0.0; n];
    let mut hits = 0usize;
    for _ in 0..draws {
        for v in x.iter_mut() {
            *v = shift + sd * standard_normal(&mut rng);
        }
        if p_above(&x, margin) < level {
            hits += 1;
        }
    }
    hits as f64 / draws.max(1) as f64
}

/// The smallest centre of the log ratios (above `margin`) that the rule
/// `p_above(x, margin) < level` flags with probability `power` over `n`
/// rounds of normal noise with spread `sd`: found by bisection on
/// [`simulated_power`] with common random numbers, so it is the rule as
/// implemented, discreteness and margin included. `None` when `n` rounds
/// cannot reach `level` at all.
///
/// ```
/// use tidepool::stats::min_detectable_shift;
///
/// // 12 rounds, 3 % noise per round, a 5 % margin, level 0.005.
/// let mde = min_detectable_shift(12, 0.03, 0.05f64.ln_1p(), 0.005, 0.8, 1).unwrap();
/// assert!(mde > 0.05f64.ln_1p() && mde < 0.15);
/// // Three rounds can never reach p < 0.005.
/// assert_eq!(min_detectable_shift(3, 0.03, 0.05, 0.005, 0.8, 1), None);
/// ```
pub fn min_detectable_shift(
    n: usize,
    sd: f64,
    margin: f64,
    level: f64,
    power: f64,
    seed: u64,
) -> Option<f64> {
    if n == 0 || signed_rank_min_p(n) >= level || !sd.is_finite() || sd < 0.0 {
        return None;
    }
    if sd == 0.0 {
        return Some(margin);
    }
    const DRAWS: usize = 400;
    let power_at = |shift: f64| simulated_power(n, sd, shift, margin, level, DRAWS, seed);
    let (mut lo, mut hi) = (margin, margin + sd);
    while power_at(hi) < power {
        lo = hi;
        hi = margin + 2.0 * (hi - margin);
        if hi - margin > 1e3 * sd.max(1e-9) {
            return None;
        }
    }
    for _ in 0..30 {
        let mid = (lo + hi) / 2.0;
        if power_at(mid) >= power {
            hi = mid;
        } else {
            lo = mid;
        }
        if hi - lo < 1e-4 * sd {
            break;
        }
    }
    Some(hi)
}

/// One standard normal draw (Box-Muller).
pub(crate) fn standard_normal(rng: &mut fastrand::Rng) -> f64 {
    let u1 = rng.f64().max(f64::MIN_POSITIVE);
    let u2 = rng.f64();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_estimate_is_the_median_of_walsh_averages() {
        assert_eq!(hodges_lehmann(&[3.0]), Some(3.0));
        assert_eq!(hodges_lehmann(&[]), None);
        // Walsh averages of 1, 2, 4: 1, 1.5, 2, 2.5, 3, 4.
        assert_eq!(hodges_lehmann(&[1.0, 2.0, 4.0]), Some(2.25));
    }

    #[test]
    fn the_test_and_the_bound_never_disagree() {
        let mut rng = fastrand::Rng::with_seed(3);
        for case in 0..200 {
            let n = 6 + case % 15;
            let x: Vec<f64> = (0..n)
                .map(|_| 0.05 + 0.04 * standard_normal(&mut rng))
                .collect();
            let alpha = [0.05, 0.01, 0.005][case % 3];
            let Some(lo) = lower_bound(&x, alpha) else {
                assert!(signed_rank_min_p(n) >= alpha);
                continue;
            };
            for margin in [lo - 0.02, lo - 1e-9, lo + 1e-9, lo + 0.02] {
                let rejects = p_above(&x, margin) < alpha;
                assert_eq!(rejects, margin < lo, "n {n}, margin {margin}, bound {lo}");
            }
        }
    }

    #[test]
    fn the_printed_detectable_change_has_the_power_it_claims() {
        // Acceptance: the printed value and an independent simulation's
        // 80 %-power change agree within 20 %.
        let margin = 0.05f64.ln_1p();
        for (n, sd, level) in [(12, 0.03, 0.005), (12, 0.08, 0.05), (20, 0.05, 0.0025)] {
            let printed = min_detectable_shift(n, sd, margin, level, 0.8, 11).unwrap();
            // Another seed, ten times the draws, scanned on a grid.
            let mut shift = margin;
            while simulated_power(n, sd, shift, margin, level, 4000, 99) < 0.8 {
                shift += sd / 200.0;
            }
            let rel = (printed - shift).abs() / shift;
            assert!(
                rel < 0.2,
                "n {n} sd {sd}: printed {printed}, simulated {shift}"
            );
        }
    }
}
