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

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{format_figure, markdown_table, MetricSummary};
use crate::contract::{Contract, Op, Subject};
use crate::stats::{
    holm, min_detectable_effect, paired_change, percentile, wilcoxon_min_p, wilcoxon_signed_rank,
};

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

/// Every figure present on both sides of every round, with its values.
fn collect(rounds: &[AbRound], contract: &Contract) -> Vec<AbFigure> {
    // By (scenario, figure name).
    let mut seen: BTreeMap<(String, String), Paired> = BTreeMap::new();
    for (r, round) in rounds.iter().enumerate() {
        for cur in &round.current {
            let Some(base) = round.baseline.iter().find(|b| b.scenario == cur.scenario) else {
                continue;
            };
            for v in figure_values(cur) {
                let Some(b) = base.figure(&v.name) else {
                    continue;
                };
                let entry = seen
                    .entry((cur.scenario.clone(), v.name))
                    .or_insert_with(|| Paired {
                        unit: v.unit,
                        kind: v.kind,
                        pairs: Vec::new(),
                    });
                // Only figures read in every round so far stay comparable.
                if entry.pairs.len() == r {
                    entry.pairs.push((b, v.value));
                }
            }
        }
    }
    seen.into_iter()
        .filter(|(_, p)| p.pairs.len() == rounds.len() && !p.pairs.is_empty())
        .map(|((scenario, figure), Paired { unit, kind, pairs })| {
            let direction = match kind {
                Kind::Measurement => Direction::UpIsWorse,
                Kind::Counter | Kind::Ratio => direction_of(contract, &scenario, &figure),
            };
            let baseline: Vec<f64> = pairs.iter().map(|p| p.0).collect();
            let current: Vec<f64> = pairs.iter().map(|p| p.1).collect();
            let from_zero = kind == Kind::Counter
                && direction == Direction::UpIsWorse
                && baseline.iter().all(|&b| b == 0.0)
                && current.iter().filter(|&&c| c >= 1.0).count() * 2 > current.len();
            AbFigure {
                round_ratios: pairs
                    .iter()
                    .map(|&(b, c)| (b != 0.0).then(|| c / b))
                    .collect(),
                scenario,
                figure,
                unit,
                direction,
                baseline,
                current,
                change_pct: None,
                interval_pct: None,
                p_value: 1.0,
                p_corrected: None,
                min_detectable_pct: None,
                from_zero,
                verdict: AbVerdict::NotJudged,
            }
        })
        .collect()
}

/// One figure's values in every round so far.
struct Paired {
    unit: String,
    kind: Kind,
    /// (baseline, current) per round.
    pairs: Vec<(f64, f64)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    Measurement,
    Counter,
    Ratio,
}

/// One figure of one record.
pub(super) struct FigureValue {
    pub(super) name: String,
    pub(super) unit: String,
    pub(super) kind: Kind,
    pub(super) value: f64,
}

/// The figures of one record: each measurement's median, every counter and ratio.
pub(super) fn figure_values(s: &MetricSummary) -> Vec<FigureValue> {
    let value = |name: String, unit: &str, kind, value| FigureValue {
        name,
        unit: unit.to_owned(),
        kind,
        value,
    };
    let measurements = s.metrics.iter().map(|(name, m)| {
        value(
            format!("{name}.p50"),
            &m.unit,
            Kind::Measurement,
            m.summary.median,
        )
    });
    let counters = s
        .counters
        .iter()
        .map(|(name, &c)| value(name.clone(), "count", Kind::Counter, c as f64));
    let ratios = s
        .ratios
        .iter()
        .map(|(name, &r)| value(name.clone(), "ratio", Kind::Ratio, r));
    measurements.chain(counters).chain(ratios).collect()
}

/// Which way the contract says `figure` gets worse: as a threshold's subject
/// or numerator its direction, as a denominator the opposite.
fn direction_of(contract: &Contract, scenario: &str, figure: &str) -> Direction {
    let mut found = None;
    for t in contract.thresholds(scenario) {
        let worse_up = t.op == Op::AtMost;
        let says = match &t.subject {
            Subject::Figure(f) if f == figure => Some(worse_up),
            Subject::Ratio(a, _) if a == figure => Some(worse_up),
            Subject::Ratio(_, b) if b == figure => Some(!worse_up),
            _ => None,
        };
        match (found, says) {
            (_, None) => {}
            (None, Some(s)) => found = Some(s),
            (Some(f), Some(s)) if f != s => return Direction::Unknown,
            _ => {}
        }
    }
    match found {
        Some(true) => Direction::UpIsWorse,
        Some(false) => Direction::DownIsWorse,
        None => Direction::Unknown,
    }
}

/// The columns of [`ab_rows`].
pub const AB_HEADER: [&str; 10] = [
    "scenario",
    "figure",
    "baseline",
    "current",
    "change",
    "interval",
    "corrected p",
    "detectable",
    "verdict",
    "unit",
];

/// One row per figure, judged ones first, regressions at the top.
pub fn ab_rows(report: &AbReport) -> Vec<Vec<String>> {
    let mut figures: Vec<&AbFigure> = report.figures.iter().collect();
    let rank = |v: AbVerdict| match v {
        AbVerdict::Regression => 0,
        AbVerdict::Improvement => 1,
        AbVerdict::NoChange => 2,
        AbVerdict::NotJudged => 3,
    };
    figures.sort_by_key(|f| rank(f.verdict));
    let pct = |x: f64| {
        if x.abs() >= 1e4 {
            format!("{:+.0e}%", x)
        } else {
            format!("{x:+.1}%")
        }
    };
    figures
        .iter()
        .map(|f| {
            vec![
                f.scenario.clone(),
                f.figure.clone(),
                format_figure(median(&f.baseline)),
                format_figure(median(&f.current)),
                f.change_pct.map_or("n/a".into(), pct),
                f.interval_pct.map_or("n/a".into(), |[lo, hi]| {
                    format!("[{}, {}]", pct(lo), pct(hi))
                }),
                f.p_corrected
                    .map_or_else(|| format!("({:.2e})", f.p_value), |p| format!("{p:.2e}")),
                f.min_detectable_pct
                    .map_or("none".into(), |m| format!("±{m:.1}%")),
                match f.verdict {
                    AbVerdict::Regression if f.from_zero => "REGRESSION (from 0)".into(),
                    AbVerdict::Regression => "REGRESSION".into(),
                    AbVerdict::Improvement => "improvement".into(),
                    AbVerdict::NoChange => "no change".into(),
                    AbVerdict::NotJudged => "not judged".into(),
                },
                f.unit.clone(),
            ]
        })
        .collect()
}

fn median(xs: &[f64]) -> f64 {
    percentile("a figure over the rounds", xs, 0.5).unwrap_or(f64::NAN)
}

/// The check as Markdown, for a job summary or a PR comment.
pub fn ab_markdown(report: &AbReport, baseline: &str, current: &str) -> String {
    let regressions: Vec<&AbFigure> = report.regressions().collect();
    let headline = if regressions.is_empty() {
        "no regression".to_owned()
    } else {
        format!(
            "**{} regression{}**: {}",
            regressions.len(),
            if regressions.len() == 1 { "" } else { "s" },
            regressions
                .iter()
                .map(|f| format!("`{}.{}`", f.scenario, f.figure))
                .collect::<Vec<_>>()
                .join(", ")
        )
    };
    let reachable = wilcoxon_min_p(report.rounds) < report.alpha / report.judged.max(1) as f64;
    format!(
        "### tidepool ab: {current} against {baseline}\n\n{headline}\n\n\
         {rounds} interleaved rounds ({wall:.0} s); each round ran every scenario once with each build, the order drawn at random. \
         A figure regresses when the {conf:.0} % bootstrap interval of its change lies entirely beyond ±{t}% on its worse side \
         *and* its Wilcoxon signed-rank test is significant after Holm's correction across the {m} judged figures (p < {alpha}); \
         a counter the contract holds down that leaves 0 always regresses. \
         \"detectable\" is the smallest change this run could have caught (80 % power) at the noise it measured.{warn}\n\n{table}",
        rounds = report.rounds,
        wall = report.wall_s,
        conf = report.confidence * 100.0,
        t = report.threshold_pct,
        m = report.judged,
        alpha = report.alpha,
        warn = if reachable {
            String::new()
        } else {
            format!(
                "\n\n**{} rounds cannot reach significance over {} figures** (the smallest possible p is {:.2e}): only counters leaving 0 can be flagged. Raise the rounds.",
                report.rounds,
                report.judged,
                wilcoxon_min_p(report.rounds)
            )
        },
        table = markdown_table(&AB_HEADER, &ab_rows(report)),
    )
}

/// The check as a plain table for terminals.
pub fn ab_table(report: &AbReport) -> String {
    format!(
        "{} rounds, {} judged figures, threshold {}%, {:.0} s\n{}",
        report.rounds,
        report.judged,
        report.threshold_pct,
        report.wall_s,
        super::layout_table(&AB_HEADER, &ab_rows(report))
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profile::{Depth, RunProfile};
    use crate::scenarios;

    fn record(batch_ms: f64, waits: f64, crashes: u64) -> MetricSummary {
        let mut s = MetricSummary::new("cdp_pool", RunProfile::new(Depth::Quick, None));
        let samples: Vec<f64> = (0..20).map(|i| batch_ms + (i % 3) as f64 * 0.01).collect();
        s.measure("batch_ms", "ms", &samples).unwrap();
        s.ratio("wire_waits_per_command", waits);
        s.count("misattributed_results", crashes);
        s
    }

    fn contract() -> Contract {
        Contract::load(
            std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/perf-contract.toml")),
            &scenarios::catalog(),
        )
        .unwrap()
    }

    /// Rounds with a little noise on both sides; `slow` scales the current side.
    fn rounds(n: usize, slow: f64, misattributed: u64) -> Vec<AbRound> {
        (0..n)
            .map(|i| {
                let wobble = 1.0 + ((i * 7) % 5) as f64 * 0.004;
                AbRound {
                    baseline: vec![record(2.0 * wobble, 0.125, 0)],
                    current: vec![record(
                        2.0 * slow * (2.0 - wobble),
                        0.125 * slow,
                        misattributed,
                    )],
                }
            })
            .collect()
    }

    #[test]
    fn the_same_build_flags_nothing() {
        let r = analyse(&rounds(12, 1.0, 0), &contract(), &AbOptions::default());
        assert_eq!(r.regressions().count(), 0, "{:#?}", r.figures);
        assert!(r.judged >= 3);
    }

    #[test]
    fn a_slowdown_is_flagged_on_the_figures_it_moves_and_no_others() {
        let r = analyse(&rounds(12, 3.0, 0), &contract(), &AbOptions::default());
        let flagged: Vec<&str> = r.regressions().map(|f| f.figure.as_str()).collect();
        assert_eq!(flagged, vec!["batch_ms.p50", "wire_waits_per_command"]);
        let md = ab_markdown(&r, "base", "head");
        assert!(md.contains("2 regressions"), "{md}");
    }

    #[test]
    fn a_counter_leaving_zero_always_regresses() {
        let r = analyse(&rounds(12, 1.0, 1), &contract(), &AbOptions::default());
        let f = r.regressions().next().expect("flagged");
        assert_eq!(f.figure, "misattributed_results");
        assert!(f.from_zero);
    }

    #[test]
    fn five_rounds_say_they_cannot_reach_significance() {
        let r = analyse(&rounds(5, 3.0, 0), &contract(), &AbOptions::default());
        assert_eq!(r.regressions().count(), 0);
        assert!(r.figures.iter().all(|f| f.min_detectable_pct.is_none()));
        assert!(ab_markdown(&r, "a", "b").contains("cannot reach significance"));
    }
}
