//! The figures an A/B check compares: read from each round's records, with
//! the direction the contract gives them.

use std::collections::BTreeMap;

use super::{AbFigure, AbRound, AbVerdict, Direction};
use crate::contract::{Contract, Op, Subject};
use crate::report::MetricSummary;

/// Every figure present on both sides of every round, with its values.
pub(super) fn collect(rounds: &[AbRound], contract: &Contract) -> Vec<AbFigure> {
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
pub(crate) enum Kind {
    Measurement,
    Counter,
    Ratio,
}

/// One figure of one record.
pub(crate) struct FigureValue {
    pub(crate) name: String,
    pub(crate) unit: String,
    pub(crate) kind: Kind,
    pub(crate) value: f64,
}

/// The figures of one record: each measurement's median, every counter and ratio.
pub(crate) fn figure_values(s: &MetricSummary) -> Vec<FigureValue> {
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
