//! The Wilcoxon signed-rank test, exact with ties.
//!
//! Zeros are dropped (Wilcoxon's own rule, scipy's `zero_method="wilcox"`).
//! Tied magnitudes get their mid-rank; doubled, every mid-rank is an
//! integer, so the distribution of the (doubled) positive rank sum under
//! "each sign is a coin toss", conditional on the ranks observed, is counted
//! exactly by a small dynamic programme: the p of all 2^n sign flips, which
//! scipy computes as `wilcoxon(method=PermutationMethod(n_resamples=inf))`
//! (its `method="exact"` reads a tied statistic against the untied
//! distribution instead). The normal approximation, which a tie used to
//! switch on even at n = 2, is kept only for more than [`EXACT_MAX`]
//! non-zero differences, where the programme's cost (n³) is no longer small
//! and the approximation is good.

use statrs::distribution::{ContinuousCDF, Normal};

/// Above this many non-zero differences the normal approximation is used.
pub const EXACT_MAX: usize = 200;

/// Which way the alternative hypothesis points.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Alternative {
    /// The differences are centred above zero.
    Greater,
    /// The differences are centred below zero.
    Less,
    /// Either.
    TwoSided,
}

/// p-value of the signed-rank test of "the differences are centred on 0"
/// against `alternative`. No non-zero difference gives 1; a NaN is dropped
/// like a zero (it carries no sign); an infinite difference takes the
/// largest rank.
///
/// # Example
///
/// ```
/// use tidepool::stats::{signed_rank_p, Alternative};
///
/// // Five equal differences: the exact p is 2 / 2^5, not the normal
/// // approximation's 0.037.
/// let p = signed_rank_p(&[1.0; 5], Alternative::TwoSided);
/// assert!((p - 0.0625).abs() < 1e-12);
/// ```
pub fn signed_rank_p(diffs: &[f64], alternative: Alternative) -> f64 {
    let ranked = Ranked::of(diffs);
    if ranked.doubled.is_empty() {
        return 1.0;
    }
    let (greater, less) = if ranked.doubled.len() <= EXACT_MAX {
        ranked.exact_tails()
    } else {
        ranked.normal_tails()
    };
    match alternative {
        Alternative::Greater => greater,
        Alternative::Less => less,
        Alternative::TwoSided => (2.0 * greater.min(less)).min(1.0),
    }
}

/// The smallest one-sided p the exact test can give with `n` non-zero
/// differences: every one of the same sign, `1 / 2^n`.
pub fn signed_rank_min_p(n: usize) -> f64 {
    0.5f64.powi(n.min(i32::MAX as usize) as i32)
}

/// Non-zero differences, ranked by magnitude.
struct Ranked {
    /// Doubled mid-ranks of |d|, each an integer.
    doubled: Vec<u64>,
    /// The doubled rank sum of the positive differences.
    positive: u64,
}

impl Ranked {
    fn of(diffs: &[f64]) -> Ranked {
        let mut d: Vec<f64> = diffs
            .iter()
            .copied()
            .filter(|x| !x.is_nan() && *x != 0.0)
            .collect();
        d.sort_by(|a, b| a.abs().total_cmp(&b.abs()));
        let n = d.len();
        let mut doubled = vec![0u64; n];
        let mut i = 0;
        while i < n {
            let mut j = i;
            while j + 1 < n && d[j + 1].abs() == d[i].abs() {
                j += 1;
            }
            // The mid-rank of 1-based ranks i+1..=j+1, doubled.
            let rank2 = (i + j + 2) as u64;
            doubled[i..=j].iter_mut().for_each(|r| *r = rank2);
            i = j + 1;
        }
        let positive = d
            .iter()
            .zip(&doubled)
            .filter(|(x, _)| **x > 0.0)
            .map(|(_, r)| r)
            .sum();
        Ranked { doubled, positive }
    }

    /// `P(S >= observed)` and `P(S <= observed)` for S the doubled positive
    /// rank sum under random signs, counted exactly.
    fn exact_tails(&self) -> (f64, f64) {
        let total: u64 = self.doubled.iter().sum();
        // prob[s]: probability that the ranks seen so far sum to s over the
        // positive signs. Halving at each step keeps it a probability.
        let mut prob = vec![0.0f64; total as usize + 1];
        prob[0] = 1.0;
        let mut reach = 0usize;
        for &r in &self.doubled {
            let r = r as usize;
            reach += r;
            for s in (0..=reach).rev() {
                let with = if s >= r { prob[s - r] } else { 0.0 };
                prob[s] = 0.5 * (prob[s] + with);
            }
        }
        let at = self.positive as usize;
        let greater: f64 = prob[at..].iter().sum();
        let less: f64 = prob[..=at].iter().sum();
        (greater.min(1.0), less.min(1.0))
    }

    /// The same tails by the normal approximation with the tie correction
    /// and a continuity correction of half a (doubled) rank unit.
    fn normal_tails(&self) -> (f64, f64) {
        let n = self.doubled.len() as f64;
        // In doubled units: mean n(n+1)/2, variance sum(r^2)/4.
        let mean = n * (n + 1.0) / 2.0;
        let var: f64 = self.doubled.iter().map(|&r| (r * r) as f64).sum::<f64>() / 4.0;
        if var <= 0.0 {
            return (1.0, 1.0);
        }
        let sd = var.sqrt();
        let z = Normal::standard();
        let w = self.positive as f64;
        let greater = z.sf((w - mean - 1.0) / sd);
        let less = z.cdf((w - mean + 1.0) / sd);
        (greater.clamp(0.0, 1.0), less.clamp(0.0, 1.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Vectors with tied magnitudes and scipy 1.17.1's exact conditional
    /// p-values for them, `wilcoxon(x, method=PermutationMethod(n_resamples=
    /// np.inf), alternative=...)`: (two-sided, greater, less). scipy's
    /// `method="exact"` is not conditional on ties: it reads the tied
    /// statistic against the untied distribution of ranks 1..n, so for
    /// `[1, 1, 2, 2, -3, 4, 4, 5]` it says P(W+ >= 31) = 10/256 where all
    /// 256 sign flips of these ranks give 11/256.
    const SCIPY: &[(&[f64], [f64; 3])] = &[
        (&[1.0, 1.0, 1.0, 1.0, 1.0], [0.0625, 0.03125, 1.0]),
        (
            &[1., 2., 3., 4., 5., 6., 7., 8., 9., 10., 11., 11.],
            [0.00048828125, 0.000244140625, 1.0],
        ),
        (
            &[1., 1., 2., 2., -3., 4., 4., 5.],
            [0.0859375, 0.04296875, 0.9765625],
        ),
        (
            &[0.5, -0.5, 1., 1., 1., -2., 3., 3., 3., 3.],
            [0.037109375, 0.0185546875, 0.9833984375],
        ),
        (
            &[2., 2., 2., -2., 4., -4., 6., 6.],
            [0.2109375, 0.10546875, 0.92578125],
        ),
        (
            &[1., -1., 1., -1., 1., 1., 1., 2., 2., -3.],
            [0.365234375, 0.1826171875, 0.837890625],
        ),
        (
            &[3., 3., 3., 3., 3., 3., -3., 3., 3.],
            [0.0390625, 0.01953125, 0.998046875],
        ),
        (
            &[1., 2., 2., 3., 3., 3., -4., 4., 4., 4., 5., 5., 6., -6.],
            [0.056640625, 0.0283203125, 0.975830078125],
        ),
        (
            &[
                0.1, 0.2, 0.2, -0.2, 0.3, 0.3, 0.3, 0.4, -0.5, 0.5, 0.6, 0.7, 0.7, 0.8,
            ],
            [0.009033203125, 0.0045166015625, 0.9959716796875],
        ),
        (
            &[
                1., 1., 1., 1., 2., 2., 2., 2., -1., -2., 3., 3., 3., 3., 3., 3., 4., 4., 4., 4.,
            ],
            [
                0.0001068115234375,
                5.340576171875e-05,
                0.999_970_436_096_191_4,
            ],
        ),
        (
            &[5., 5., -5., 5., 5., 5., -5., 5., 5., 5., 5., 5.],
            [0.03857421875, 0.019287109375, 0.996826171875],
        ),
        (&[1.0, 1.0], [0.5, 0.25, 1.0]),
    ];

    #[test]
    fn tied_inputs_match_scipys_exact_conditional_p_to_1e9() {
        for (x, want) in SCIPY {
            for (alt, want) in [
                Alternative::TwoSided,
                Alternative::Greater,
                Alternative::Less,
            ]
            .into_iter()
            .zip(want)
            {
                let got = signed_rank_p(x, alt);
                assert!(
                    (got - want).abs() < 1e-9,
                    "{x:?} {alt:?}: got {got}, scipy {want}"
                );
            }
        }
    }

    #[test]
    fn five_equal_differences_are_not_significant_at_5_percent_two_sided() {
        // The old code's normal approximation said 0.037.
        assert_eq!(signed_rank_p(&[1.0; 5], Alternative::TwoSided), 0.0625);
    }

    #[test]
    fn one_tie_among_twelve_of_one_sign_keeps_the_exact_floor() {
        // The old code said 2.5e-3; the exact conditional p is 2/2^12.
        let x = [1., 2., 3., 4., 5., 6., 7., 8., 9., 10., 11., 11.];
        assert_eq!(signed_rank_p(&x, Alternative::TwoSided), 2.0 / 4096.0);
    }

    #[test]
    fn untied_inputs_match_the_table() {
        // n = 8, W+ = 3: P(W+ <= 3) = 5/256.
        let d = [-1.0, -2.0, 3.0, -4.0, -5.0, -6.0, -7.0, -8.0];
        assert!((signed_rank_p(&d, Alternative::Less) - 5.0 / 256.0).abs() < 1e-12);
        assert_eq!(signed_rank_p(&[0.0, 0.0], Alternative::TwoSided), 1.0);
    }

    #[test]
    fn large_samples_use_an_approximation_close_to_the_exact_count() {
        let x: Vec<f64> = (0..EXACT_MAX + 40)
            .map(|i| ((i * 37) % 23) as f64 - 10.0)
            .collect();
        let approx = signed_rank_p(&x, Alternative::Greater);
        let exact = Ranked::of(&x).exact_tails().0;
        assert!((approx - exact).abs() < 0.01, "{approx} against {exact}");
    }
}
