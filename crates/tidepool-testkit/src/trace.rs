/// A small, seeded, version-stable random source for workload traces.
///
/// splitmix64, with Box-Muller for normal deviates. It is written out here
/// rather than taken from `rand` so that a seed names the same trace forever:
/// snapshots of seeded workloads must not change when a dependency does.
///
/// # Example
///
/// ```
/// use tidepool_testkit::SeededRng;
///
/// let mut a = SeededRng::new(7);
/// let mut b = SeededRng::new(7);
/// assert_eq!(a.lognormal(50.0, 0.5), b.lognormal(50.0, 0.5));
/// ```
#[derive(Debug, Clone)]
pub struct SeededRng(u64);

impl SeededRng {
    /// A generator for `seed`.
    pub fn new(seed: u64) -> SeededRng {
        SeededRng(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, 1)`.
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// A standard normal deviate.
    pub fn normal(&mut self) -> f64 {
        // 1 - u is in (0, 1], so the log is finite.
        let (u1, u2) = (1.0 - self.next_f64(), self.next_f64());
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }

    /// A log-normal deviate with the given median and shape `sigma`.
    pub fn lognormal(&mut self, median: f64, sigma: f64) -> f64 {
        median * (sigma * self.normal()).exp()
    }

    /// True with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        self.next_f64() < p
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lognormal_has_the_asked_median_and_spread() {
        let mut rng = SeededRng::new(42);
        let xs: Vec<f64> = (0..20_000).map(|_| rng.lognormal(50.0, 0.5)).collect();
        let mut sorted = xs.clone();
        sorted.sort_by(f64::total_cmp);
        let (median, p99) = (sorted[10_000], sorted[19_800]);
        assert!((median / 50.0 - 1.0).abs() < 0.03, "median {median}");
        // p99 of a log-normal: median * exp(2.3263 sigma) = 159.9
        assert!((p99 / 159.9 - 1.0).abs() < 0.08, "p99 {p99}");
    }
}
