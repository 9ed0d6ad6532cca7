//! Summaries, percentiles, confidence intervals, outliers, comparisons of
//! two sample sets and of paired rounds.
//!
//! Everything here errors on empty or non-finite input instead of returning NaN,
//! so a broken measurement fails loudly rather than passing a contract.

mod changepoint;
mod compare;
mod input;
mod paired;
mod summary;

pub use changepoint::{change_points, ChangePoint, ChangePointOptions};
pub use compare::Comparison;
pub use input::parse_samples;
pub use paired::{
    holm, min_detectable_effect, paired_change, wilcoxon_min_p, wilcoxon_signed_rank, PairedChange,
};
pub use summary::{percentile, Interval, Outliers, Statistic, Summary};

#[cfg(test)]
mod tests;
