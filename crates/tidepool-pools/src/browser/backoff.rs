//! The jitter on every wait between two tries: a lost endpoint's retries
//! and a failed lease's. Many clients that failed together must not retry
//! in step.

use std::time::Duration;

/// `base`, ±25 %.
pub(super) fn jittered(base: Duration) -> Duration {
    base.mul_f64(0.75 + fastrand::f64() * 0.5)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jitter_stays_within_a_quarter() {
        for _ in 0..1000 {
            let j = jittered(Duration::from_millis(100));
            assert!(
                j >= Duration::from_millis(75) && j <= Duration::from_millis(125),
                "{j:?}"
            );
        }
    }
}
