//! Summaries, percentiles, confidence intervals, outliers, comparisons of
//! two sample sets and of paired rounds.
//!
//! Everything here errors on empty or non-finite input instead of returning NaN,
//! so a broken measurement fails loudly rather than passing a contract.

mod changepoint;
mod compare;
mod input;
mod paired;
mod prediction;
mod shift;
mod signed_rank;
mod summary;

pub use changepoint::{change_points, ChangePoint, ChangePointOptions};
pub use compare::Comparison;
pub use input::parse_samples;
pub use paired::{holm, mcnemar_p};
pub use prediction::prediction_p;
#[cfg(test)]
pub(crate) use shift::standard_normal;
pub use shift::{
    hodges_lehmann, lower_bound, min_detectable_shift, p_above, simulated_power, upper_bound,
};
pub use signed_rank::{signed_rank_min_p, signed_rank_p, Alternative, EXACT_MAX};
pub use summary::{percentile, Interval, Outliers, Statistic, Summary};

#[cfg(test)]
mod tests;
