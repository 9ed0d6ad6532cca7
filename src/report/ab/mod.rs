//! The verdict of an A/B check (`tidepool ab`): the same scenarios run by a
//! baseline and a current build in interleaved rounds, compared figure by
//! figure on the paired rounds.
//!
//! A figure regresses when both hold:
//! - the bootstrap interval of its change lies entirely beyond the noise
//!   threshold, on the side the contract calls worse;
//! - its Wilcoxon signed-rank test is significant after Holm's correction
//!   across every figure with a direction in the run.
//!
//! A counter the contract holds down, read 0 in every baseline round and at
//! least 1 in most current rounds (a crash, a leak, a lost command), always
//! regresses.

mod figures;
mod render;
#[cfg(test)]
mod tests;

use serde::{Deserialize, Serialize};

use super::MetricSummary;
use crate::contract::Contract;
use crate::stats::{holm, min_detectable_effect, paired_change, wilcoxon_signed_rank};
use figures::collect;
pub(super) use figures::figure_values;
pub use render::{ab_markdown, ab_rows, ab_table, AB_HEADER};

/// How an A/B check judges its figures.
#[derive(Debug, Clone, PartialEq)]
pub struct AbOptions {
    /// Changes within this many percent are noise, never regressions (default 5).
    pub threshold_pct: f64,
    /// Family-wise significance level (default 0.05).
    pub alpha: f64,
    /// Coverage of the change's interval (default 0.95).
    pub confidence: f64,
    /// Bootstrap resamples per figure (default 4000).
    pub resamples: usize,
    /// Power at which the minimum detectable effect is stated (default 0.8).
    pub power: f64,
    /// Seed of the bootstrap, so a report can be recomputed exactly.
    pub seed: u64,
}

impl Default for AbOptions {
    fn default() -> Self {
        AbOptions {
            threshold_pct: 5.0,
            alpha: 0.05,
            confidence: 0.95,
            resamples: 4000,
            power: 0.8,
            seed: 0x7eed,
        }
    }
}

/// One round: every chosen scenario's record from each build.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AbRound {
    /// The baseline build's records.
    pub baseline: Vec<MetricSummary>,
    /// The current build's records.
    pub current: Vec<MetricSummary>,
}

/// Which way a figure gets worse.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// A cost: time, memory, failures.
    UpIsWorse,
    /// A benefit: reuse, hit rate.
    DownIsWorse,
    /// No threshold says: reported, never judged.
    Unknown,
}

/// What the check says of one figure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AbVerdict {
    /// Worse beyond the noise threshold, and significantly so.
    Regression,
    /// Better beyond the noise threshold, and significantly so.
    Improvement,
    /// Neither.
    NoChange,
    /// Shown for reading only: no threshold gives it a direction.
    NotJudged,
}

/// One figure across the rounds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AbFigure {
    /// The scenario.
    pub scenario: String,
    /// The figure: `metric.p50` for a measurement (each run's median), or a
    /// counter or ratio name.
    pub figure: String,
    /// Its unit.
    pub unit: String,
    /// Which way it gets worse.
    pub direction: Direction,
    /// The baseline's value in each round.
    pub baseline: Vec<f64>,
    /// The current build's value in each round.
    pub current: Vec<f64>,
    /// `current / baseline` in each round (`None` where the baseline read 0).
    pub round_ratios: Vec<Option<f64>>,
    /// Relative change of the means, percent (`None` if the baseline mean is 0).
    pub change_pct: Option<f64>,
    /// Bootstrap interval of the change, percent.
    pub interval_pct: Option<[f64; 2]>,
    /// Two-sided signed-rank p-value of the per-round differences.
    pub p_value: f64,
    /// The p-value after Holm's correction (`None` for a figure not judged).
    pub p_corrected: Option<f64>,
    /// The smallest change, percent, this run could detect at its measured
    /// noise (never below the noise threshold); `None` when the rounds are
    /// too few to reach significance at all, or the noise is unknown.
    pub min_detectable_pct: Option<f64>,
    /// A counter held at 0 by the baseline that the current build raises.
    pub from_zero: bool,
    /// The verdict.
    pub verdict: AbVerdict,
}

/// The whole check.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AbReport {
    /// Rounds run.
    pub rounds: usize,
    /// The noise threshold, percent.
    pub threshold_pct: f64,
    /// Family-wise significance level.
    pub alpha: f64,
    /// Coverage of the intervals.
    pub confidence: f64,
    /// Figures with a direction: the family Holm's correction runs over.
    pub judged: usize,
    /// The bootstrap seed.
    pub seed: u64,
    /// Every figure, by scenario and name.
    pub figures: Vec<AbFigure>,
    /// What ran, in order (filled by the runner).
    #[serde(default)]
    pub order: Vec<String>,
    /// Wall time of the rounds, seconds (filled by the runner).
    #[serde(default)]
    pub wall_s: f64,
    /// Runs that failed once and were run again, with their first error.
    #[serde(default)]
    pub retried: Vec<String>,
}

impl AbReport {
    /// The figures that regressed.
    pub fn regressions(&self) -> impl Iterator<Item = &AbFigure> {
        self.figures
            .iter()
            .filter(|f| f.verdict == AbVerdict::Regression)
    }
}

/// Judges `rounds` figure by figure; see the module docs for the rule.
/// Measurements are costs (up is worse); a counter's or ratio's direction
/// comes from the contract's thresholds on it.
pub fn analyse(rounds: &[AbRound], contract: &Contract, options: &AbOptions) -> AbReport {
    let mut figures = collect(rounds, contract);
    let n = rounds.len();
    let judged: Vec<usize> = (0..figures.len())
        .filter(|&i| figures[i].direction != Direction::Unknown)
        .collect();
    let m = judged.len().max(1);
    // The strictest level Holm applies: what one real change among m must beat.
    let strictest = options.alpha / m as f64;
    for (i, f) in figures.iter_mut().enumerate() {
        let diffs: Vec<f64> = f
            .current
            .iter()
            .zip(&f.baseline)
            .map(|(c, b)| c - b)
            .collect();
        f.p_value = wilcoxon_signed_rank(&diffs);
        let seed = options.seed.wrapping_add(i as u64);
        if let Some(c) = paired_change(
            &f.baseline,
            &f.current,
            options.confidence,
            options.resamples,
            seed,
        ) {
            f.change_pct = Some(c.estimate * 100.0);
            f.interval_pct = Some([c.lower * 100.0, c.upper * 100.0]);
        }
        let ratios: Vec<f64> = f.round_ratios.iter().flatten().copied().collect();
        f.min_detectable_pct = relative_sd(&ratios)
            .and_then(|sd| min_detectable_effect(sd, n, strictest, options.power))
            .map(|mde| (mde * 100.0).max(options.threshold_pct));
    }
    let corrected = holm(
        &judged
            .iter()
            .map(|&i| figures[i].p_value)
            .collect::<Vec<_>>(),
    );
    for (&i, p) in judged.iter().zip(corrected) {
        figures[i].p_corrected = Some(p);
    }
    for f in &mut figures {
        f.verdict = verdict(f, options);
    }
    AbReport {
        rounds: n,
        threshold_pct: options.threshold_pct,
        alpha: options.alpha,
        confidence: options.confidence,
        judged: judged.len(),
        seed: options.seed,
        figures,
        order: Vec::new(),
        wall_s: 0.0,
        retried: Vec::new(),
    }
}

fn verdict(f: &AbFigure, options: &AbOptions) -> AbVerdict {
    let Some(p) = f.p_corrected else {
        return AbVerdict::NotJudged;
    };
    if f.from_zero {
        return AbVerdict::Regression;
    }
    let t = options.threshold_pct;
    let significant = p < options.alpha;
    let (up, down) = match f.interval_pct {
        Some([lo, hi]) => (lo > t, hi < -t),
        None => (false, false),
    };
    match (f.direction, significant) {
        (Direction::UpIsWorse, true) if up => AbVerdict::Regression,
        (Direction::UpIsWorse, true) if down => AbVerdict::Improvement,
        (Direction::DownIsWorse, true) if down => AbVerdict::Regression,
        (Direction::DownIsWorse, true) if up => AbVerdict::Improvement,
        _ => AbVerdict::NoChange,
    }
}

/// Sample standard deviation of the per-round ratios around their mean.
fn relative_sd(ratios: &[f64]) -> Option<f64> {
    if ratios.len() < 2 {
        return None;
    }
    let n = ratios.len() as f64;
    let mean = ratios.iter().sum::<f64>() / n;
    let var = ratios.iter().map(|r| (r - mean).powi(2)).sum::<f64>() / (n - 1.0);
    Some(var.sqrt() / mean.abs().max(f64::MIN_POSITIVE))
}
