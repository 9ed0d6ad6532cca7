//! The figures an A/B check compares, read from each round's records: the
//! subjects of the contract's thresholds (judged in the contract's
//! direction), the parts of its ratios and the statistics it names (judged
//! in their own physical direction, never inverted), and every other figure
//! of the records (shown, not judged).

use std::collections::BTreeMap;

use super::{AbFigure, AbRound, AbVerdict, Direction, Role, Test};
use crate::contract::{Contract, Op, Subject, Threshold};
use crate::report::MetricSummary;

/// What one figure is and how it is judged, before its values are read.
struct Plan {
    role: Role,
    direction: Direction,
    test: Option<Test>,
    unit: String,
    /// The contract thresholds it carries.
    thresholds: Vec<Threshold>,
    subject: Subject,
}

/// Every figure of every scenario present on both sides of every round.
pub(super) fn collect(rounds: &[AbRound], contract: &Contract) -> Vec<AbFigure> {
    let Some(first) = rounds.first() else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for record in &first.current {
        let scenario = record.scenario.as_str();
        let in_every_round = rounds.iter().all(|r| {
            r.current.iter().any(|s| s.scenario == scenario)
                && r.baseline.iter().any(|s| s.scenario == scenario)
        });
        if !in_every_round {
            continue;
        }
        for (name, plan) in plans(record, contract.thresholds(scenario)) {
            let mut baseline = Vec::with_capacity(rounds.len());
            let mut current = Vec::with_capacity(rounds.len());
            for r in rounds {
                let read = |side: &[MetricSummary]| {
                    side.iter()
                        .find(|s| s.scenario == scenario)
                        .and_then(|s| value_of(s, &plan.subject))
                };
                if let (Some(b), Some(c)) = (read(&r.baseline), read(&r.current)) {
                    baseline.push(b);
                    current.push(c);
                }
            }
            if baseline.len() != rounds.len() {
                // A figure missing from some round is not comparable.
                continue;
            }
            out.push(AbFigure {
                scenario: scenario.to_owned(),
                figure: name,
                thresholds: plan.thresholds.iter().map(|t| t.name.clone()).collect(),
                role: plan.role,
                unit: plan.unit,
                direction: plan.direction,
                test: plan.test,
                events: plan
                    .test
                    .filter(|t| *t == Test::Events)
                    .map(|_| events(&plan.thresholds, &baseline, &current)),
                baseline,
                current,
                change_pct: None,
                interval_pct: None,
                bound_pct: None,
                p_value: 1.0,
                p_corrected: None,
                min_detectable_pct: None,
                note: None,
                cleared: false,
                verdict: AbVerdict::NotJudged,
            });
        }
    }
    out
}

/// What is judged in one scenario, by display name.
fn plans(record: &MetricSummary, thresholds: &[Threshold]) -> BTreeMap<String, Plan> {
    let mut plans: BTreeMap<String, Plan> = BTreeMap::new();
    // The contract's subjects, each once, with every threshold on it.
    let mut by_subject: BTreeMap<String, Vec<Threshold>> = BTreeMap::new();
    for t in thresholds {
        by_subject
            .entry(t.subject.to_string())
            .or_default()
            .push(t.clone());
    }
    for (name, ts) in by_subject {
        let subject = ts[0].subject.clone();
        let ups = ts.iter().filter(|t| t.op == Op::AtMost).count();
        let counted = ts.iter().all(|t| t.unit == "count" || t.unit == "samples");
        // A band (limits on both sides) or a count is judged by how often its
        // limit is breached; a continuous figure by how far it moved.
        let (direction, test) = if counted || (ups > 0 && ups < ts.len()) {
            (Direction::UpIsWorse, Test::Events)
        } else if ups > 0 {
            (Direction::UpIsWorse, Test::LogRatio)
        } else {
            (Direction::DownIsWorse, Test::LogRatio)
        };
        plans.insert(
            name,
            Plan {
                role: Role::Contract,
                direction,
                test: Some(test),
                unit: ts[0].unit.clone(),
                thresholds: ts,
                subject,
            },
        );
    }
    // The parts of the contract's ratios, and the statistics it names: a
    // time or a size is worse up, a rate worse down, whatever side of a
    // ratio it stands on.
    let parts: Vec<String> = thresholds
        .iter()
        .flat_map(|t| match &t.subject {
            Subject::Ratio(a, b) => vec![a.clone(), b.clone()],
            Subject::Figure(_) => Vec::new(),
        })
        .collect();
    for part in parts {
        if plans.contains_key(&part) {
            continue;
        }
        let unit = record.unit_of(&part).to_owned();
        let direction = physical_direction(&part, &unit);
        let judged = direction != Direction::Unknown;
        plans.insert(
            part.clone(),
            Plan {
                role: Role::Part,
                direction,
                test: judged.then_some(Test::LogRatio),
                unit,
                thresholds: Vec::new(),
                subject: Subject::Figure(part),
            },
        );
    }
    // Everything else the records hold, shown for reading.
    let shown = record
        .metrics
        .keys()
        .map(|m| format!("{m}.p50"))
        .chain(record.counters.keys().cloned())
        .chain(record.ratios.keys().cloned());
    for name in shown {
        if plans.contains_key(&name) {
            continue;
        }
        plans.insert(
            name.clone(),
            Plan {
                role: Role::Shown,
                direction: Direction::Unknown,
                test: None,
                unit: record.unit_of(&name).to_owned(),
                thresholds: Vec::new(),
                subject: Subject::Figure(name),
            },
        );
    }
    plans
}

/// Which way a quantity gets worse by its nature: a time or a size up, a
/// rate down; anything else is not known. A measurement says so by its
/// unit; a figure stored as a plain number (`launch_p50_ms`,
/// `naive_pages_per_s`) by its name's suffix.
fn physical_direction(name: &str, unit: &str) -> Direction {
    const UP: [&str; 12] = [
        "ns", "us", "µs", "ms", "s", "B", "KB", "KiB", "MB", "MiB", "GB", "GiB",
    ];
    if UP.contains(&unit) {
        return Direction::UpIsWorse;
    }
    if unit.ends_with("/s") || name.ends_with("_per_s") {
        return Direction::DownIsWorse;
    }
    let suffix = name.rsplit('_').next().unwrap_or("");
    if name.contains('_') && ["ns", "us", "ms", "s", "mb", "kb"].contains(&suffix) {
        return Direction::UpIsWorse;
    }
    Direction::Unknown
}

/// A subject's value in one record: a figure, or a ratio's quotient.
fn value_of(s: &MetricSummary, subject: &Subject) -> Option<f64> {
    match subject {
        Subject::Figure(f) => s.figure(f),
        Subject::Ratio(a, b) => Some(s.figure(a)? / s.figure(b)?),
    }
}

/// Rounds in which any of `thresholds` is breached on each side:
/// `[baseline, current, baseline only, current only]`.
fn events(thresholds: &[Threshold], baseline: &[f64], current: &[f64]) -> [usize; 4] {
    // A NaN breaches every limit: it is no reading within one.
    let breached = |v: f64| {
        thresholds.iter().any(|t| match t.op {
            Op::AtMost => v.is_nan() || v > t.value,
            Op::AtLeast => v.is_nan() || v < t.value,
        })
    };
    let mut e = [0usize; 4];
    for (&b, &c) in baseline.iter().zip(current) {
        let (b, c) = (breached(b), breached(c));
        e[0] += usize::from(b);
        e[1] += usize::from(c);
        e[2] += usize::from(b && !c);
        e[3] += usize::from(c && !b);
    }
    e
}

/// One figure of one record.
pub(crate) struct FigureValue {
    pub(crate) name: String,
    // Read by the HTML report's history plots only.
    #[cfg_attr(not(feature = "html"), allow(dead_code))]
    pub(crate) unit: String,
    pub(crate) value: f64,
}

/// The figures of one record, for a history: each measurement's median,
/// every counter and ratio.
pub(crate) fn figure_values(s: &MetricSummary) -> Vec<FigureValue> {
    let value = |name: String, unit: &str, value| FigureValue {
        name,
        unit: unit.to_owned(),
        value,
    };
    let measurements = s
        .metrics
        .iter()
        .map(|(name, m)| value(format!("{name}.p50"), &m.unit, m.summary.median));
    let counters = s
        .counters
        .iter()
        .map(|(name, &c)| value(name.clone(), "count", c as f64));
    let ratios = s
        .ratios
        .iter()
        .map(|(name, &r)| value(name.clone(), "ratio", r));
    measurements.chain(counters).chain(ratios).collect()
}
