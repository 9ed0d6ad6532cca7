//! Summaries, percentiles, confidence intervals, outliers and comparisons.
//!
//! Everything here errors on empty or non-finite input instead of returning NaN,
//! so a broken measurement fails loudly rather than passing a contract.

mod compare;
mod input;
mod summary;

pub use compare::Comparison;
pub use input::parse_samples;
pub use summary::{percentile, Interval, Outliers, Statistic, Summary};

#[cfg(test)]
mod tests;
