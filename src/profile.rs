//! How much work a measurement does: the one place that reads the run profile.
//!
//! nextest sets `NEXTEST_PROFILE` for every test it runs. Under `perf` the
//! scenarios run their full iteration counts (at least 100, so p95 and p99 rest on
//! real samples); under any other profile, and outside nextest, they run quick
//! counts that still exercise every code path and every assertion.
//! `TIDEPOOL_ITERATIONS` overrides the base count for either.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Environment variable that overrides the base iteration count.
pub const ITERATIONS_ENV: &str = "TIDEPOOL_ITERATIONS";

/// Which depth of measurement a run asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Depth {
    /// Quick iteration counts: the `default` and `ci` nextest profiles.
    Quick,
    /// Full iteration counts: the `perf` nextest profile.
    Full,
}

/// The iteration budget of one run.
///
/// # Example
///
/// ```
/// use tidepool::profile::{Depth, RunProfile};
///
/// let p = RunProfile::new(Depth::Full, None);
/// assert_eq!(p.iterations(), 100);
/// // Larger workloads scale from their own quick/full pair.
/// assert_eq!(p.scaled(100, 1000), 1000);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunProfile {
    /// The depth chosen from the nextest profile.
    pub depth: Depth,
    /// The explicit base count, when `TIDEPOOL_ITERATIONS` or `--iterations` set one.
    pub override_iterations: Option<usize>,
}

impl RunProfile {
    /// Base iterations under [`Depth::Quick`].
    pub const QUICK_ITERATIONS: usize = 20;
    /// Base iterations under [`Depth::Full`].
    pub const FULL_ITERATIONS: usize = 100;

    /// A profile of `depth`, with an optional explicit base count.
    pub fn new(depth: Depth, override_iterations: Option<usize>) -> RunProfile {
        RunProfile {
            depth,
            override_iterations,
        }
    }

    /// Reads `NEXTEST_PROFILE` and `TIDEPOOL_ITERATIONS`.
    ///
    /// Fails when `TIDEPOOL_ITERATIONS` is set but is not a positive integer.
    pub fn from_env() -> Result<RunProfile> {
        let depth = match std::env::var("NEXTEST_PROFILE").as_deref() {
            Ok("perf") => Depth::Full,
            _ => Depth::Quick,
        };
        let override_iterations = match std::env::var(ITERATIONS_ENV) {
            Ok(text) => Some(parse_iterations(&text).map_err(|problem| {
                Error::config(ITERATIONS_ENV, format!("{problem} (got {text:?})"))
            })?),
            Err(_) => None,
        };
        Ok(RunProfile::new(depth, override_iterations))
    }

    /// The base iteration count: the override, or 20 quick / 100 full.
    pub fn iterations(&self) -> usize {
        self.override_iterations.unwrap_or(match self.depth {
            Depth::Quick => Self::QUICK_ITERATIONS,
            Depth::Full => Self::FULL_ITERATIONS,
        })
    }

    /// A count for a workload whose own sizes are `quick` and `full`.
    ///
    /// An override of 20 (the quick base) gives the quick size and 100 (the
    /// full base) the full size, so `--iterations 20` runs what `make test`
    /// runs. Between the two the size is interpolated; outside them it scales
    /// in proportion, so `TIDEPOOL_ITERATIONS=200` doubles every full-size
    /// workload and `TIDEPOOL_ITERATIONS=10` halves every quick one.
    pub fn scaled(&self, quick: usize, full: usize) -> usize {
        let (q, f) = (Self::QUICK_ITERATIONS, Self::FULL_ITERATIONS);
        let count = match self.override_iterations {
            None => match self.depth {
                Depth::Quick => quick,
                Depth::Full => full,
            },
            Some(n) if n <= q => (quick * n).div_ceil(q),
            Some(n) if n <= f => {
                let along = (n - q) as f64 / (f - q) as f64;
                (quick as f64 + (full as f64 - quick as f64) * along).ceil() as usize
            }
            Some(n) => (full * n).div_ceil(f),
        };
        count.max(1)
    }
}

/// Parses a positive iteration count.
pub fn parse_iterations(text: &str) -> std::result::Result<usize, String> {
    match text.trim().parse::<usize>() {
        Ok(0) => Err("must be at least 1".into()),
        Ok(n) => Ok(n),
        Err(_) => Err("must be a positive integer".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_override_of_20_runs_the_quick_sizes_and_100_the_full_ones() {
        let with = |n| RunProfile::new(Depth::Full, Some(n));
        assert_eq!(with(50).iterations(), 50);
        assert_eq!(with(20).scaled(100, 1000), 100, "20 is the quick profile");
        assert_eq!(with(100).scaled(100, 1000), 1000, "100 is the full profile");
        assert_eq!(with(60).scaled(100, 1000), 550);
        assert_eq!(with(10).scaled(100, 1000), 50);
        assert_eq!(with(200).scaled(100, 1000), 2000);
        assert_eq!(with(1).scaled(2, 5), 1);
        assert_eq!(RunProfile::new(Depth::Quick, None).scaled(100, 1000), 100);
    }

    #[test]
    fn zero_and_garbage_are_rejected() {
        assert!(parse_iterations("0").is_err());
        assert!(parse_iterations("ten").is_err());
        assert_eq!(parse_iterations(" 7 "), Ok(7));
    }
}
