//! Family-wise correction and the exact test for events in paired rounds.

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

/// One-sided exact McNemar test on paired rounds where an event (a breach
/// of the contract's limit: a crash, a lost command, a leak past what the
/// contract allows) either happened or not on each side: the p of seeing
/// `current_only` or more rounds with an event on the current side alone,
/// out of the `baseline_only + current_only` rounds where the sides
/// disagree, if each such round were a coin toss. Rounds where both or
/// neither side had the event say nothing about a difference.
///
/// Unlike a rule of the form "0 in every baseline round and at least 1 in
/// most current rounds", it moves smoothly with the counts: 6 of 12 head
/// rounds against none gives p = 2^-6, 7 of 12 gives 2^-7, and a stray
/// baseline event barely moves it.
///
/// ```
/// use tidepool::stats::mcnemar_p;
///
/// assert!((mcnemar_p(0, 6) - 1.0 / 64.0).abs() < 1e-12);
/// assert!(mcnemar_p(1, 12) < 0.002);
/// assert_eq!(mcnemar_p(0, 0), 1.0);
/// ```
pub fn mcnemar_p(baseline_only: usize, current_only: usize) -> f64 {
    let n = baseline_only + current_only;
    if current_only == 0 {
        return 1.0;
    }
    // P(X >= c) for X ~ Binomial(n, 1/2), by the terms C(n, k) / 2^n built
    // up from k = 0 in logs, so n in the thousands stays finite.
    let ln_half_n = n as f64 * 0.5f64.ln();
    let mut ln_choose = 0.0f64;
    let mut tail = 0.0;
    for k in 0..=n {
        if k > 0 {
            ln_choose += ((n - k + 1) as f64).ln() - (k as f64).ln();
        }
        if k >= current_only {
            tail += (ln_choose + ln_half_n).exp();
        }
    }
    tail.min(1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holm_is_monotone_and_capped() {
        let a = holm(&[0.001, 0.5, 0.02, 0.9]);
        assert_eq!(a, vec![0.004, 1.0, 0.06, 1.0]);
    }

    #[test]
    fn mcnemar_is_continuous_in_the_counts() {
        // The old rule: 7 of 12 head rounds from a clean baseline regressed,
        // 6 of 12 did not, and one baseline event hid 12 of 12.
        assert!((mcnemar_p(0, 7) - 1.0 / 128.0).abs() < 1e-12);
        assert!((mcnemar_p(0, 6) - 1.0 / 64.0).abs() < 1e-12);
        assert!((mcnemar_p(1, 12) - 14.0 / 8192.0).abs() < 1e-12);
        assert!(mcnemar_p(3, 3) > 0.5);
    }
}
