//! The verdict of an A/B check (`tidepool ab`): the same scenarios run by a
//! baseline and a current build in interleaved rounds, compared figure by
//! figure on the paired rounds.
//!
//! What is judged is what the contract promises, in the contract's
//! direction: each threshold's subject (a figure, or a ratio of two), and
//! the parts of its ratios and the statistics it names in their own
//! physical direction (a time or a size is worse up, a rate worse down;
//! a denominator is never judged inverted). Every other figure is shown,
//! not judged.
//!
//! A continuous figure is one model: per round the log ratio
//! `ln(current / baseline)`, oriented so that positive is worse; its centre
//! is estimated by Hodges-Lehmann; the decision is the exact one-sided
//! signed-rank test of "worse by at most the noise threshold" (5 %), and
//! the interval is that same test inverted, so the two cannot disagree.
//! A count, or a figure held in a band, is judged by the rounds in which
//! its contract limit is breached on one side only (exact McNemar), so a
//! counter moving within what the contract allows is no regression.
//!
//! Each scenario is a family: Holm's correction runs over its judged
//! figures (a handful), so the default rounds can flag them.

mod figures;
mod render;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::MetricSummary;
use crate::contract::Contract;
use crate::stats::{
    hodges_lehmann, holm, lower_bound, mcnemar_p, min_detectable_shift, p_above, signed_rank_min_p,
    upper_bound,
};
use figures::collect;
pub(super) use figures::figure_values;
pub use render::{ab_markdown, ab_rows, ab_table, AB_HEADER};

/// A log ratio stands in for "from zero" or "to zero" at this size (a
/// thousand-fold change), so every statistic stays finite.
const LN_CAP: f64 = 6.907_755_278_982_137;

/// How an A/B check judges its figures.
#[derive(Debug, Clone, PartialEq)]
pub struct AbOptions {
    /// Changes within this many percent are noise, never regressions (default 5).
    pub threshold_pct: f64,
    /// Significance level of each scenario's family (default 0.05).
    pub alpha: f64,
    /// Coverage of the change's two-sided interval (default 0.95).
    pub confidence: f64,
    /// Power at which the detectable change is stated (default 0.8).
    pub power: f64,
    /// Seed of the simulations behind the detectable change, so a report
    /// can be recomputed exactly.
    pub seed: u64,
}

impl Default for AbOptions {
    fn default() -> Self {
        AbOptions {
            threshold_pct: 5.0,
            alpha: 0.05,
            confidence: 0.95,
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

/// Why a figure is in the check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// The subject of a contract threshold: judged in the contract's direction.
    Contract,
    /// A part of a contract ratio, or a statistic it names: judged in its
    /// own physical direction where it has one.
    Part,
    /// Any other figure of the records: shown, never judged.
    Shown,
}

/// How a judged figure is tested.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Test {
    /// Log ratios per round: a one-sided exact signed-rank test of "worse by
    /// at most the threshold", with the Hodges-Lehmann estimate.
    LogRatio,
    /// Rounds breaching the contract's limit on one side only: exact McNemar.
    Events,
}

/// What the check says of one figure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AbVerdict {
    /// Worse beyond the noise threshold (or breaching its limit in more
    /// rounds), significantly so within its scenario's family.
    Regression,
    /// Better beyond the noise threshold: the whole interval past it.
    Improvement,
    /// Neither.
    NoChange,
    /// Shown for reading only.
    NotJudged,
}

/// One figure across the rounds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AbFigure {
    /// The scenario.
    pub scenario: String,
    /// The figure: `metric.stat`, a counter or ratio name, or a contract
    /// ratio `a / b`.
    pub figure: String,
    /// The contract thresholds whose subject it is.
    #[serde(default)]
    pub thresholds: Vec<String>,
    /// Why it is in the check.
    pub role: Role,
    /// Its unit.
    pub unit: String,
    /// Which way it gets worse.
    pub direction: Direction,
    /// How it is tested; `None` when it is not judged.
    pub test: Option<Test>,
    /// The baseline's value in each round.
    pub baseline: Vec<f64>,
    /// The current build's value in each round.
    pub current: Vec<f64>,
    /// For a figure judged by events: rounds breaching its limit
    /// `[baseline, current, baseline only, current only]`.
    pub events: Option<[usize; 4]>,
    /// The change, percent: the Hodges-Lehmann centre of the per-round
    /// ratios `current / baseline` (`None` where no ratio exists).
    pub change_pct: Option<f64>,
    /// Two-sided interval of the change at the report's confidence, percent.
    pub interval_pct: Option<[f64; 2]>,
    /// How much worse, percent, it is at least, at the level its family's
    /// Holm step judged it: a regression exactly when this exceeds the
    /// threshold.
    pub bound_pct: Option<f64>,
    /// One-sided p of "worse by at most the threshold" (log ratios), or of
    /// "no more breaches than the baseline" (events).
    pub p_value: f64,
    /// The p-value after Holm's correction in its scenario's family (`None`
    /// for a figure not judged).
    pub p_corrected: Option<f64>,
    /// The smallest worsening, percent, this run would flag with the
    /// report's power at its measured noise, for the rule as implemented
    /// (simulated); `None` when the rounds cannot reach the family's level
    /// at all, or the figure is not judged by log ratios.
    pub min_detectable_pct: Option<f64>,
    /// Why a figure that could be judged was not (e.g. a value at or below 0).
    pub note: Option<String>,
    /// The rounds so far show it is not worse by the threshold: the
    /// one-sided upper bound of its worsening at the family's level lies
    /// below it (log ratios), or no further round could make it significant
    /// (events). Rounds stop early when every judged figure is cleared.
    #[serde(default)]
    pub cleared: bool,
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
    /// Significance level of each scenario's family.
    pub alpha: f64,
    /// Coverage of the intervals.
    pub confidence: f64,
    /// Judged figures in all.
    pub judged: usize,
    /// Judged figures per scenario: the families Holm's correction runs over.
    #[serde(default)]
    pub families: BTreeMap<String, usize>,
    /// The seed of the simulations.
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

impl AbFigure {
    /// `current / baseline` in each round (`None` where the baseline read 0).
    pub fn round_ratios(&self) -> Vec<Option<f64>> {
        self.baseline
            .iter()
            .zip(&self.current)
            .map(|(&b, &c)| (b != 0.0).then(|| c / b))
            .collect()
    }
}

impl AbReport {
    /// The figures that regressed.
    pub fn regressions(&self) -> impl Iterator<Item = &AbFigure> {
        self.figures
            .iter()
            .filter(|f| f.verdict == AbVerdict::Regression)
    }

    /// Whether `more` further rounds are worth running: false only when
    /// every judged figure is cleared (and so nothing is flagged). Stopping
    /// then only gives up chances to flag, so the false-alarm rate is kept;
    /// a flagged figure runs every round, its verdict judged at the end.
    pub fn undecided(&self, more: usize) -> bool {
        self.figures
            .iter()
            .filter(|f| f.test.is_some())
            .any(|f| match (f.test, f.events) {
                (Some(Test::Events), Some(e)) => {
                    let m = self.families.get(&f.scenario).copied().unwrap_or(1);
                    mcnemar_p(e[2], e[3] + more) < self.alpha / m as f64
                }
                _ => !f.cleared,
            })
    }

    /// The families whose size the rounds cannot decide: the smallest p
    /// `rounds` can give is not below the family's strictest Holm level.
    pub fn undecidable_families(&self) -> Vec<&str> {
        self.families
            .iter()
            .filter(|(_, &m)| m > 0 && signed_rank_min_p(self.rounds) >= self.alpha / m as f64)
            .map(|(s, _)| s.as_str())
            .collect()
    }
}

/// Judges `rounds` figure by figure; see the module docs for the rule.
pub fn analyse(rounds: &[AbRound], contract: &Contract, options: &AbOptions) -> AbReport {
    let mut figures = collect(rounds, contract);
    let n = rounds.len();
    let t = options.threshold_pct / 100.0;
    for f in figures.iter_mut() {
        describe(f, t, options.confidence);
    }
    let mut families: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for (i, f) in figures.iter().enumerate() {
        if f.test.is_some() {
            families.entry(f.scenario.clone()).or_default().push(i);
        }
    }
    for members in families.values() {
        let m = members.len();
        let p: Vec<f64> = members.iter().map(|&i| figures[i].p_value).collect();
        let corrected = holm(&p);
        let mut order: Vec<usize> = (0..m).collect();
        order.sort_by(|&a, &b| p[a].total_cmp(&p[b]));
        for (rank, &k) in order.iter().enumerate() {
            let f = &mut figures[members[k]];
            f.p_corrected = Some(corrected[k]);
            if f.test == Some(Test::LogRatio) {
                // The level Holm's step holds this figure to, and the
                // strictest one (what a lone real change must beat).
                let level = options.alpha / (m - rank) as f64;
                let strictest = options.alpha / m as f64;
                let worse = worse_log_ratios(f);
                let margin = margin(f.direction, t);
                f.bound_pct = lower_bound(&worse, level).map(|b| worse_pct(f.direction, b));
                f.cleared = upper_bound(&worse, options.alpha).is_some_and(|u| u < margin);
                let seed = options.seed ^ hash(&f.scenario, &f.figure);
                f.min_detectable_pct = sample_sd(&worse)
                    .and_then(|sd| {
                        min_detectable_shift(n, sd, margin, strictest, options.power, seed)
                    })
                    .map(|s| worse_pct(f.direction, s).max(options.threshold_pct));
            }
        }
    }
    for f in &mut figures {
        f.verdict = verdict(f, options);
    }
    AbReport {
        rounds: n,
        threshold_pct: options.threshold_pct,
        alpha: options.alpha,
        confidence: options.confidence,
        judged: families.values().map(Vec::len).sum(),
        families: families
            .into_iter()
            .map(|(s, members)| (s, members.len()))
            .collect(),
        seed: options.seed,
        figures,
        order: Vec::new(),
        wall_s: 0.0,
        retried: Vec::new(),
    }
}

/// Fills a figure's change, interval and p-value; a figure whose log ratio
/// does not exist (a value below 0) is left unjudged with a note.
fn describe(f: &mut AbFigure, t: f64, confidence: f64) {
    if let Some(e) = f.events {
        f.p_value = mcnemar_p(e[2], e[3]);
    }
    let Some(natural) = log_ratios(&f.baseline, &f.current) else {
        if f.test == Some(Test::LogRatio) {
            f.test = None;
            f.note = Some("a value below 0: no ratio between the builds".into());
        }
        return;
    };
    let tail = (1.0 - confidence) / 2.0;
    f.change_pct = hodges_lehmann(&natural).map(pct);
    if let (Some(lo), Some(hi)) = (lower_bound(&natural, tail), upper_bound(&natural, tail)) {
        f.interval_pct = Some([pct(lo), pct(hi)]);
    }
    if f.test == Some(Test::LogRatio) {
        f.p_value = p_above(&worse_log_ratios(f), margin(f.direction, t));
    }
}

/// `ln(current / baseline)` per round, or `None` when a value is below 0
/// or not finite. Two zeros are no change; one zero is a thousand-fold one.
fn log_ratios(baseline: &[f64], current: &[f64]) -> Option<Vec<f64>> {
    baseline
        .iter()
        .zip(current)
        .map(|(&b, &c)| {
            if !(b.is_finite() && c.is_finite()) || b < 0.0 || c < 0.0 {
                return None;
            }
            Some(match (b == 0.0, c == 0.0) {
                (true, true) => 0.0,
                (true, false) => LN_CAP,
                (false, true) => -LN_CAP,
                (false, false) => (c / b).ln().clamp(-LN_CAP, LN_CAP),
            })
        })
        .collect()
}

/// The log ratios oriented so that positive is worse.
fn worse_log_ratios(f: &AbFigure) -> Vec<f64> {
    let natural = log_ratios(&f.baseline, &f.current).unwrap_or_default();
    match f.direction {
        Direction::DownIsWorse => natural.into_iter().map(|x| -x).collect(),
        _ => natural,
    }
}

/// "Worse by the threshold" on the worse-oriented log scale: up by t is
/// `ln(1 + t)`, down by t is `-ln(1 - t)`.
fn margin(direction: Direction, t: f64) -> f64 {
    match direction {
        Direction::DownIsWorse => -(1.0 - t.min(0.999)).ln(),
        _ => t.ln_1p(),
    }
}

/// A worse-oriented log shift as "worse by" percent.
fn worse_pct(direction: Direction, shift: f64) -> f64 {
    match direction {
        Direction::DownIsWorse => (1.0 - (-shift).exp()) * 100.0,
        _ => shift.exp_m1() * 100.0,
    }
}

fn pct(log_ratio: f64) -> f64 {
    log_ratio.exp_m1() * 100.0
}

fn sample_sd(x: &[f64]) -> Option<f64> {
    if x.len() < 2 {
        return None;
    }
    let n = x.len() as f64;
    let mean = x.iter().sum::<f64>() / n;
    Some((x.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt())
}

/// A stable per-figure seed offset (FNV-1a), so each figure's simulation
/// is reproducible and independent of the others' order.
fn hash(scenario: &str, figure: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in scenario.bytes().chain([0]).chain(figure.bytes()) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

fn verdict(f: &AbFigure, options: &AbOptions) -> AbVerdict {
    let Some(p) = f.p_corrected else {
        return AbVerdict::NotJudged;
    };
    if p < options.alpha {
        return AbVerdict::Regression;
    }
    let t = options.threshold_pct;
    let better = match (f.direction, f.interval_pct) {
        (Direction::UpIsWorse, Some([_, hi])) => hi < -t,
        (Direction::DownIsWorse, Some([lo, _])) => lo > t,
        _ => false,
    };
    if better && f.test == Some(Test::LogRatio) {
        AbVerdict::Improvement
    } else {
        AbVerdict::NoChange
    }
}
