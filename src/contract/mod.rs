//! The performance contract: named thresholds per scenario, loaded from
//! `perf-contract.toml` and checked against [`MetricSummary`]s.
//!
//! ```toml
//! [fixture_roundtrip]
//! # a figure against a value
//! no_failed_requests = { metric = "failed_requests", op = "<=", value = 0, unit = "count" }
//! # a ratio of two figures measured side by side in the same run
//! reuse_beats_reconnect = { ratio = ["keepalive_ms.p50", "new_connection_ms.p50"], op = "<=", value = 0.9 }
//! ```
//!
//! A figure is `metric.statistic` for a measurement (`page_ms.p95`; statistics:
//! n, mean, median, stddev, min, max, p50, p90, p95, p99) or the bare name of a
//! counter or ratio. Loading checks every name against the [`ScenarioSpec`]s of
//! the scenarios that exist, so a typo fails at load time with the file, line and
//! key, not as a silently skipped threshold.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

use crate::error::{Error, Result};
use crate::summary::MetricSummary;
pub use crate::summary::{FigureKind, FigureSpec, ScenarioSpec};

mod compare;
mod verdict;

pub use compare::FigureChange;
pub use verdict::{failure_message, Op, Subject, Threshold, Verdict};

/// Every threshold of every scenario, validated against the scenario catalog.
#[derive(Debug, Clone, PartialEq)]
pub struct Contract {
    /// The file it was loaded from.
    pub path: PathBuf,
    /// Thresholds by scenario, in file order of names.
    pub scenarios: BTreeMap<String, Vec<Threshold>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawThreshold {
    metric: Option<Spanned<String>>,
    ratio: Option<Spanned<Vec<String>>>,
    op: Spanned<String>,
    value: f64,
    unit: Option<Spanned<String>>,
    why: Option<String>,
}

type RawContract = BTreeMap<Spanned<String>, BTreeMap<Spanned<String>, Spanned<RawThreshold>>>;

impl Contract {
    /// Loads and validates the contract at `path` against `catalog`, the
    /// scenarios that exist.
    ///
    /// Every error names the file, the line and the key: an unknown scenario or
    /// figure, a missing or unknown field, a wrong type, a unit that disagrees
    /// with what the scenario reports.
    pub fn load(path: &Path, catalog: &[ScenarioSpec]) -> Result<Contract> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io("reading", path, e))?;
        Contract::parse(path, &text, catalog)
    }

    /// Parses contract `text` as if read from `path`.
    pub fn parse(path: &Path, text: &str, catalog: &[ScenarioSpec]) -> Result<Contract> {
        let err = |span: Option<std::ops::Range<usize>>, message: String| Error::Contract {
            path: path.to_owned(),
            line: span.map(|s| line_of(text, s.start)),
            message,
        };
        let raw: RawContract = toml::from_str(text).map_err(|e| {
            let message = e.message().trim();
            let key = e.span().and_then(|s| key_at(text, s.start));
            err(
                e.span(),
                key.map_or_else(|| message.to_owned(), |k| format!("{k}: {message}")),
            )
        })?;
        let mut scenarios = BTreeMap::new();
        for (scenario, thresholds) in raw {
            let spec = catalog
                .iter()
                .find(|s| s.name == scenario.get_ref())
                .ok_or_else(|| {
                    let known: Vec<&str> = catalog.iter().map(|s| s.name).collect();
                    err(
                        Some(scenario.span()),
                        format!(
                            "[{}]: unknown scenario (known: {})",
                            scenario.get_ref(),
                            known.join(", ")
                        ),
                    )
                })?;
            let mut list = Vec::new();
            for (name, raw) in thresholds {
                let key = format!("{}.{}", spec.name, name.get_ref());
                let span = raw.span();
                let raw = raw.into_inner();
                let (subject, unit) = match (raw.metric, raw.ratio) {
                    (Some(metric), None) => {
                        let unit = spec
                            .unit_of(metric.get_ref())
                            .map_err(|m| err(Some(metric.span()), format!("{key}.metric: {m}")))?;
                        (Subject::Figure(metric.into_inner()), unit)
                    }
                    (None, Some(ratio)) => {
                        let parts = ratio.get_ref();
                        if parts.len() != 2 {
                            return Err(err(
                                Some(ratio.span()),
                                format!("{key}.ratio: needs exactly two figures, [numerator, denominator], got {}", parts.len()),
                            ));
                        }
                        for part in parts {
                            spec.unit_of(part).map_err(|m| {
                                err(Some(ratio.span()), format!("{key}.ratio: {m}"))
                            })?;
                        }
                        (Subject::Ratio(parts[0].clone(), parts[1].clone()), "ratio")
                    }
                    (Some(m), Some(_)) => {
                        return Err(err(
                            Some(m.span()),
                            format!("{key}: give `metric` or `ratio`, not both"),
                        ))
                    }
                    (None, None) => {
                        return Err(err(
                            Some(span),
                            format!("{key}: missing field `metric` (or `ratio`)"),
                        ))
                    }
                };
                let op = match raw.op.get_ref().as_str() {
                    "<=" => Op::AtMost,
                    ">=" => Op::AtLeast,
                    other => {
                        return Err(err(
                            Some(raw.op.span()),
                            format!(
                                "{key}.op: {other:?} is not an operator (use \"<=\" or \">=\")"
                            ),
                        ))
                    }
                };
                if !raw.value.is_finite() {
                    return Err(err(
                        Some(span),
                        format!("{key}.value: must be a finite number"),
                    ));
                }
                match &raw.unit {
                    Some(u) if u.get_ref() != unit => {
                        return Err(err(
                            Some(u.span()),
                            format!("{key}.unit: {:?}, but the figure is in {unit:?}", u.get_ref()),
                        ))
                    }
                    None if !matches!(unit, "ratio" | "count" | "samples") => {
                        return Err(err(
                            Some(span),
                            format!("{key}: missing field `unit` (the figure is in {unit:?}; say so, so a changed unit cannot pass unnoticed)"),
                        ))
                    }
                    _ => {}
                }
                list.push(Threshold {
                    name: name.into_inner(),
                    subject,
                    op,
                    value: raw.value,
                    unit: unit.to_owned(),
                    why: raw.why,
                });
            }
            scenarios.insert(spec.name.to_owned(), list);
        }
        Ok(Contract {
            path: path.to_owned(),
            scenarios,
        })
    }

    /// The thresholds of `scenario` (empty if the contract names none).
    pub fn thresholds(&self, scenario: &str) -> &[Threshold] {
        self.scenarios.get(scenario).map_or(&[], Vec::as_slice)
    }

    /// Judges every threshold of the summary's scenario, one verdict each.
    ///
    /// Fails when the summary lacks a figure the contract names: a scenario that
    /// stops reporting a figure must not pass by omission.
    pub fn check(&self, summary: &MetricSummary) -> Result<Vec<Verdict>> {
        self.judge(summary, self.thresholds(&summary.scenario).iter())
    }

    /// Judges only the named thresholds of the summary's scenario, in the
    /// order named: what a negative control, which measures only the figures
    /// it must fail, is judged by.
    ///
    /// Fails when a name is not a threshold of that scenario, or the summary
    /// lacks a figure one of them needs.
    pub fn check_only(&self, summary: &MetricSummary, names: &[&str]) -> Result<Vec<Verdict>> {
        let all = self.thresholds(&summary.scenario);
        let chosen = names
            .iter()
            .map(|name| {
                all.iter()
                    .find(|t| t.name == *name)
                    .ok_or_else(|| Error::Contract {
                        path: self.path.clone(),
                        line: None,
                        message: format!(
                            "{}.{name}: no such threshold (it has: {})",
                            summary.scenario,
                            all.iter()
                                .map(|t| t.name.as_str())
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    })
            })
            .collect::<Result<Vec<_>>>()?;
        self.judge(summary, chosen.into_iter())
    }

    fn judge<'t>(
        &self,
        summary: &MetricSummary,
        thresholds: impl Iterator<Item = &'t Threshold>,
    ) -> Result<Vec<Verdict>> {
        let figure = |name: &str, threshold: &str| {
            summary.figure(name).ok_or_else(|| Error::Contract {
                path: self.path.clone(),
                line: None,
                message: format!(
                    "{}.{threshold}: the run reported no figure {name:?}",
                    summary.scenario
                ),
            })
        };
        thresholds
            .map(|t| {
                let actual = match &t.subject {
                    Subject::Figure(name) => figure(name, &t.name)?,
                    Subject::Ratio(a, b) => {
                        let (a, b) = (figure(a, &t.name)?, figure(b, &t.name)?);
                        if b == 0.0 {
                            return Err(Error::Contract {
                                path: self.path.clone(),
                                line: None,
                                message: format!(
                                    "{}.{}: denominator {} is 0",
                                    summary.scenario, t.name, t.subject
                                ),
                            });
                        }
                        a / b
                    }
                };
                Ok(Verdict::judge(t, actual))
            })
            .collect()
    }
}

/// Names the threshold, and the field when there is one, that a TOML error at
/// `offset` points into: serde's errors know the place but not the key.
///
/// The threshold is the last one that starts at or before `offset`, which holds
/// for inline tables and `[scenario.name]` tables alike; the field is the key
/// written just before the offending value.
fn key_at(text: &str, offset: usize) -> Option<String> {
    type Outline = BTreeMap<Spanned<String>, BTreeMap<Spanned<String>, Spanned<toml::Value>>>;
    let outline: Outline = toml::from_str(text).ok()?;
    let (scenario, threshold) = outline
        .iter()
        .flat_map(|(s, m)| m.iter().map(move |(name, t)| (s, name, t.span().start)))
        .filter(|&(_, _, start)| start <= offset)
        .max_by_key(|&(_, _, start)| start)
        .map(|(s, name, _)| (s.get_ref(), name.get_ref()))?;
    let mut key = format!("{scenario}.{threshold}");
    if let Some(lhs) = text.get(..offset)?.trim_end().strip_suffix('=') {
        let lhs = lhs.trim_end();
        let start = lhs
            .rfind(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '-'))
            .map_or(0, |i| i + 1);
        if start < lhs.len() {
            key = format!("{key}.{}", &lhs[start..]);
        }
    }
    Some(key)
}

fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

#[cfg(test)]
mod tests;
