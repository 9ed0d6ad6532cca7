use serde::{Deserialize, Serialize};
use statrs::distribution::{ContinuousCDF, StudentsT};

use crate::error::{Error, Result};

/// The descriptive statistics of one set of samples.
///
/// Percentiles use linear interpolation between the closest ranks, the method of
/// numpy's default `percentile` (type 7 in Hyndman & Fan): for a sorted sample
/// `x[0..n]` and a fraction `p`, the rank is `h = (n - 1) * p` and the value is
/// `x[floor(h)] + (h - floor(h)) * (x[floor(h) + 1] - x[floor(h)])`.
///
/// The standard deviation is the sample one (`ddof = 1`); for a single sample it
/// is 0 and the confidence interval is absent.
///
/// # Example
///
/// ```
/// use tidepool::stats::Summary;
///
/// let s = Summary::from_samples("latency_ms", &[1.0, 2.0, 3.0, 4.0, 100.0])?;
/// assert_eq!(s.mean, 22.0);
/// assert_eq!(s.median, 3.0);
/// assert_eq!(s.outliers.indices, vec![4]);
/// # Ok::<(), tidepool::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// Number of samples.
    pub n: usize,
    /// Arithmetic mean.
    pub mean: f64,
    /// The median, equal to `p50`.
    pub median: f64,
    /// Sample standard deviation (`n - 1` in the denominator).
    pub stddev: f64,
    /// Smallest sample.
    pub min: f64,
    /// Largest sample.
    pub max: f64,
    /// 50th percentile.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 95th percentile.
    pub p95: f64,
    /// 99th percentile.
    pub p99: f64,
    /// 95% confidence interval of the mean (Student t with `n - 1` degrees of
    /// freedom); `None` for a single sample.
    pub ci95: Option<Interval>,
    /// Samples beyond the Tukey fences.
    pub outliers: Outliers,
}

/// A closed interval `[low, high]`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Interval {
    /// Lower bound.
    pub low: f64,
    /// Upper bound.
    pub high: f64,
}

/// Samples outside the Tukey fences `[Q1 - 1.5 IQR, Q3 + 1.5 IQR]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Outliers {
    /// `Q1 - 1.5 IQR`.
    pub low_fence: f64,
    /// `Q3 + 1.5 IQR`.
    pub high_fence: f64,
    /// How many samples lie outside the fences.
    pub count: usize,
    /// Their positions in the input, ascending.
    pub indices: Vec<usize>,
}

/// The statistic a contract or a comparison can name, e.g. `p95`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Statistic {
    /// Number of samples.
    N,
    /// Arithmetic mean.
    Mean,
    /// Median.
    Median,
    /// Sample standard deviation.
    Stddev,
    /// Minimum.
    Min,
    /// Maximum.
    Max,
    /// 50th percentile.
    P50,
    /// 90th percentile.
    P90,
    /// 95th percentile.
    P95,
    /// 99th percentile.
    P99,
}

impl Statistic {
    /// Every statistic, in the order reports print them.
    pub const ALL: [Statistic; 10] = [
        Statistic::N,
        Statistic::Mean,
        Statistic::Median,
        Statistic::Stddev,
        Statistic::Min,
        Statistic::Max,
        Statistic::P50,
        Statistic::P90,
        Statistic::P95,
        Statistic::P99,
    ];

    /// The lowercase name used in contracts (`p95`).
    pub fn name(self) -> &'static str {
        match self {
            Statistic::N => "n",
            Statistic::Mean => "mean",
            Statistic::Median => "median",
            Statistic::Stddev => "stddev",
            Statistic::Min => "min",
            Statistic::Max => "max",
            Statistic::P50 => "p50",
            Statistic::P90 => "p90",
            Statistic::P95 => "p95",
            Statistic::P99 => "p99",
        }
    }

    /// Parses a name as written in a contract.
    pub fn parse(name: &str) -> Option<Statistic> {
        Statistic::ALL.into_iter().find(|s| s.name() == name)
    }
}

impl Summary {
    /// Summarises `samples`, which describe `what` (used in error messages).
    ///
    /// Fails on an empty slice or on any NaN or infinite sample.
    pub fn from_samples(what: &str, samples: &[f64]) -> Result<Summary> {
        let sorted = sorted_finite(what, samples)?;
        let n = sorted.len();
        let mean = mean_of(&sorted);
        let stddev = if n > 1 {
            let ss: f64 = sorted.iter().map(|x| (x - mean) * (x - mean)).sum();
            (ss / (n - 1) as f64).sqrt()
        } else {
            0.0
        };
        let ci95 = if n > 1 {
            // n > 1 so the degrees of freedom are positive and finite: the
            // distribution always constructs.
            let t = StudentsT::new(0.0, 1.0, (n - 1) as f64)
                .map(|d| d.inverse_cdf(0.975))
                .unwrap_or(f64::NAN);
            let half = t * stddev / (n as f64).sqrt();
            Some(Interval {
                low: mean - half,
                high: mean + half,
            })
        } else {
            None
        };
        let q1 = percentile_sorted(&sorted, 0.25);
        let q3 = percentile_sorted(&sorted, 0.75);
        let iqr = q3 - q1;
        let (low_fence, high_fence) = (q1 - 1.5 * iqr, q3 + 1.5 * iqr);
        let indices: Vec<usize> = samples
            .iter()
            .enumerate()
            .filter(|(_, &x)| x < low_fence || x > high_fence)
            .map(|(i, _)| i)
            .collect();
        let p50 = percentile_sorted(&sorted, 0.50);
        Ok(Summary {
            n,
            mean,
            median: p50,
            stddev,
            min: sorted[0],
            max: sorted[n - 1],
            p50,
            p90: percentile_sorted(&sorted, 0.90),
            p95: percentile_sorted(&sorted, 0.95),
            p99: percentile_sorted(&sorted, 0.99),
            ci95,
            outliers: Outliers {
                low_fence,
                high_fence,
                count: indices.len(),
                indices,
            },
        })
    }

    /// The value of one statistic.
    pub fn get(&self, statistic: Statistic) -> f64 {
        match statistic {
            Statistic::N => self.n as f64,
            Statistic::Mean => self.mean,
            Statistic::Median => self.median,
            Statistic::Stddev => self.stddev,
            Statistic::Min => self.min,
            Statistic::Max => self.max,
            Statistic::P50 => self.p50,
            Statistic::P90 => self.p90,
            Statistic::P95 => self.p95,
            Statistic::P99 => self.p99,
        }
    }
}

/// The `p`-quantile (`0.0..=1.0`) of `samples`, by the interpolation documented on
/// [`Summary`].
pub fn percentile(what: &str, samples: &[f64], p: f64) -> Result<f64> {
    if !(0.0..=1.0).contains(&p) {
        return Err(Error::config(
            "percentile",
            format!("must be within 0..=1, got {p}"),
        ));
    }
    Ok(percentile_sorted(&sorted_finite(what, samples)?, p))
}

/// Checks the samples and returns them sorted ascending.
pub(crate) fn sorted_finite(what: &str, samples: &[f64]) -> Result<Vec<f64>> {
    if samples.is_empty() {
        return Err(Error::EmptySamples { what: what.into() });
    }
    if let Some((index, &value)) = samples.iter().enumerate().find(|(_, x)| !x.is_finite()) {
        return Err(Error::NonFiniteSample {
            what: what.into(),
            index,
            value,
        });
    }
    let mut sorted = samples.to_vec();
    sorted.sort_by(f64::total_cmp);
    Ok(sorted)
}

pub(crate) fn mean_of(xs: &[f64]) -> f64 {
    xs.iter().sum::<f64>() / xs.len() as f64
}

/// Linear interpolation between closest ranks on a sorted, non-empty slice.
pub(crate) fn percentile_sorted(sorted: &[f64], p: f64) -> f64 {
    let h = (sorted.len() - 1) as f64 * p;
    let lo = h.floor() as usize;
    let hi = (lo + 1).min(sorted.len() - 1);
    let frac = h - lo as f64;
    let (a, b) = (sorted[lo], sorted[hi]);
    // numpy's `_lerp` interpolates from whichever end is nearer, which keeps the
    // result monotone in `p` and equal to numpy's to the last bits.
    if frac >= 0.5 {
        b - (b - a) * (1.0 - frac)
    } else {
        a + (b - a) * frac
    }
}
