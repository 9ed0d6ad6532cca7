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
use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use toml::Spanned;

use crate::error::{Error, Result};
use crate::summary::MetricSummary;
pub use crate::summary::{FigureKind, FigureSpec, ScenarioSpec};

/// A comparison operator of a threshold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Op {
    /// The figure must be at most the limit.
    #[serde(rename = "<=")]
    AtMost,
    /// The figure must be at least the limit.
    #[serde(rename = ">=")]
    AtLeast,
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Op::AtMost => "<=",
            Op::AtLeast => ">=",
        })
    }
}

/// What a threshold measures: one figure, or the ratio of two from the same run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Subject {
    /// A single figure.
    Figure(String),
    /// `numerator / denominator`.
    Ratio(String, String),
}

impl Subject {
    /// The figures it reads: one, or a ratio's two.
    pub fn figures(&self) -> Vec<&str> {
        match self {
            Subject::Figure(name) => vec![name],
            Subject::Ratio(a, b) => vec![a, b],
        }
    }
}

impl fmt::Display for Subject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Subject::Figure(name) => f.write_str(name),
            Subject::Ratio(a, b) => write!(f, "{a} / {b}"),
        }
    }
}

/// One named threshold of a scenario.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Threshold {
    /// Its name in the contract.
    pub name: String,
    /// What it measures.
    pub subject: Subject,
    /// How the figure must compare with `value`.
    pub op: Op,
    /// The limit.
    pub value: f64,
    /// The unit of the figure and the limit (`ratio` for ratios).
    pub unit: String,
    /// Why the limit is what it is, shown when it fails.
    pub why: Option<String>,
}

/// The contract's judgement of one threshold on one summary.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    /// The threshold's name.
    pub threshold: String,
    /// What was measured, e.g. `warm_ms.p50 / cold_ms.p50`.
    pub figure: String,
    /// The measured value.
    pub actual: f64,
    /// The operator.
    pub op: Op,
    /// The limit.
    pub limit: f64,
    /// Unit of `actual` and `limit`.
    pub unit: String,
    /// Headroom relative to the limit: positive when the threshold holds
    /// (0.25 = 25 % better than required), negative when it fails. When the
    /// limit is 0 it is the absolute difference.
    pub margin: f64,
    /// Whether the threshold holds.
    pub passed: bool,
    /// The threshold's reason, if the contract gives one.
    pub why: Option<String>,
}

impl Verdict {
    fn judge(t: &Threshold, actual: f64) -> Verdict {
        let diff = match t.op {
            Op::AtMost => t.value - actual,
            Op::AtLeast => actual - t.value,
        };
        let margin = if t.value == 0.0 {
            diff
        } else {
            diff / t.value.abs()
        };
        Verdict {
            threshold: t.name.clone(),
            figure: t.subject.to_string(),
            actual,
            op: t.op,
            limit: t.value,
            unit: t.unit.clone(),
            margin,
            passed: diff >= 0.0,
            why: t.why.clone(),
        }
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mark = if self.passed { "ok  " } else { "FAIL" };
        write!(
            f,
            "{mark} {}: {} = {} {}, limit {} {}",
            self.threshold,
            self.figure,
            crate::summary::format_figure(self.actual),
            self.unit,
            self.op,
            crate::summary::format_figure(self.limit),
        )?;
        if self.limit != 0.0 {
            write!(f, ", actual/limit = {:.3}", self.actual / self.limit)?;
        }
        if !self.passed {
            let past = if self.limit == 0.0 {
                format!(
                    "{} past the limit",
                    crate::summary::format_figure(-self.margin)
                )
            } else {
                format!("{:.1}% past the limit", -self.margin * 100.0)
            };
            write!(f, " ({past})")?;
            if let Some(why) = &self.why {
                write!(f, "\n       why: {why}")?;
            }
        }
        Ok(())
    }
}

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

/// How one judged figure that keeps no samples (a counter, a ratio, or a
/// ratio of them) moved between a baseline and the current run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FigureChange {
    /// The scenario.
    pub scenario: String,
    /// The threshold that judges the figure.
    pub threshold: String,
    /// The figure, e.g. `crashes` or `hits / lookups`.
    pub figure: String,
    /// Its value in the baseline (the median over the baseline runs).
    pub baseline: f64,
    /// Its value now.
    pub current: f64,
    /// Change, percent (infinite from a baseline of 0).
    pub percent_change: f64,
    /// Worse by more than the noise threshold in the direction the threshold
    /// guards, or a count that was 0 and no longer is.
    pub regression: bool,
}

impl Contract {
    /// Compares every figure the contract judges that keeps no samples: the
    /// counters and ratios. Their direction comes from the threshold (`<=`:
    /// up is worse; `>=`: down is worse). A single value has no spread to
    /// test, so a change is a regression when it is worse by more than
    /// `threshold_pct`; and a figure held at 0 (a crash, a leak, a lost
    /// command) regresses when it becomes at least 1, whatever the noise.
    /// Thresholds on measurements are judged by the samples' own comparison
    /// (`report::compare`). `baseline` holds one or more runs; each figure's
    /// baseline is its median over them.
    pub fn compare_figures(
        &self,
        baseline: &[&[MetricSummary]],
        current: &[MetricSummary],
        threshold_pct: f64,
    ) -> Vec<FigureChange> {
        let value = |s: &MetricSummary, subject: &Subject| match subject {
            Subject::Figure(f) => s.figure(f),
            Subject::Ratio(a, b) => match (s.figure(a), s.figure(b)) {
                (Some(a), Some(b)) if b != 0.0 => Some(a / b),
                _ => None,
            },
        };
        let sampled = |name: &str| name.contains('.');
        let mut out = Vec::new();
        for cur in current {
            for t in self.thresholds(&cur.scenario) {
                let names = match &t.subject {
                    Subject::Figure(f) => vec![f.as_str()],
                    Subject::Ratio(a, b) => vec![a.as_str(), b.as_str()],
                };
                if names.iter().any(|n| sampled(n)) {
                    continue;
                }
                let Some(now) = value(cur, &t.subject) else {
                    continue;
                };
                let mut before: Vec<f64> = baseline
                    .iter()
                    .filter_map(|run| run.iter().find(|s| s.scenario == cur.scenario))
                    .filter_map(|s| value(s, &t.subject))
                    .collect();
                if before.is_empty() {
                    continue;
                }
                before.sort_by(f64::total_cmp);
                let base = before[before.len() / 2];
                let percent_change = if base == 0.0 {
                    if now == 0.0 {
                        0.0
                    } else {
                        f64::INFINITY.copysign(now)
                    }
                } else {
                    (now / base - 1.0) * 100.0
                };
                let worse = match t.op {
                    Op::AtMost => percent_change > threshold_pct,
                    Op::AtLeast => percent_change < -threshold_pct,
                };
                let from_zero = t.op == Op::AtMost && base == 0.0 && now >= 1.0;
                out.push(FigureChange {
                    scenario: cur.scenario.clone(),
                    threshold: t.name.clone(),
                    figure: t.subject.to_string(),
                    baseline: base,
                    current: now,
                    percent_change,
                    regression: worse || from_zero,
                });
            }
        }
        out
    }
}

/// One readable message for the failed verdicts, or `None` when all hold.
///
/// Each failed line gives actual, limit, their ratio and how far past the limit.
pub fn failure_message(scenario: &str, verdicts: &[Verdict]) -> Option<String> {
    let failed: Vec<&Verdict> = verdicts.iter().filter(|v| !v.passed).collect();
    if failed.is_empty() {
        return None;
    }
    let mut msg = format!(
        "contract of scenario {scenario}: {} of {} thresholds failed\n",
        failed.len(),
        verdicts.len()
    );
    for v in verdicts {
        msg += &format!("  {v}\n");
    }
    Some(msg)
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
mod tests {
    use super::*;
    use crate::profile::{Depth, RunProfile};

    const SPEC: ScenarioSpec = ScenarioSpec {
        name: "demo",
        description: "a demo",
        figures: &[
            FigureSpec::measurement("warm_ms", "ms"),
            FigureSpec::measurement("cold_ms", "ms"),
            FigureSpec::counter("crashes"),
            FigureSpec::ratio("hit_rate"),
        ],
    };

    fn parse(text: &str) -> Result<Contract> {
        Contract::parse(Path::new("perf-contract.toml"), text, &[SPEC])
    }

    fn err_of(text: &str) -> String {
        parse(text).unwrap_err().to_string()
    }

    #[test]
    fn a_typo_in_a_metric_names_file_line_and_key() {
        let e = err_of("[demo]\n\nwarm = { metric = \"warm_sm.p50\", op = \"<=\", value = 3.0, unit = \"ms\" }\n");
        assert!(
            e.starts_with("perf-contract.toml:3: demo.warm.metric:"),
            "{e}"
        );
        assert!(e.contains("warm_sm"), "{e}");
    }

    #[test]
    fn unknown_scenarios_statistics_fields_and_units_are_rejected() {
        let e = err_of("[dmeo]\nx = { metric = \"crashes\", op = \"<=\", value = 0 }\n");
        assert!(
            e.contains(":1:") && e.contains("unknown scenario") && e.contains("demo"),
            "{e}"
        );
        let e = err_of(
            "[demo]\nx = { metric = \"warm_ms.p97\", op = \"<=\", value = 1, unit = \"ms\" }\n",
        );
        assert!(e.contains("unknown statistic \"p97\""), "{e}");
        let e = err_of(
            "[demo]\nx = { metric = \"warm_ms.p50\", op = \"<=\", value = 1, unit = \"us\" }\n",
        );
        assert!(e.contains("demo.x.unit") && e.contains("\"ms\""), "{e}");
        let e = err_of("[demo]\nx = { metric = \"warm_ms.p50\", op = \"<=\", value = 1 }\n");
        assert!(e.contains("missing field `unit`"), "{e}");
        let e = err_of("[demo]\n\n[demo.x]\nmetric = \"crashes\"\nvalue = 0\n");
        assert!(e.contains(":3: demo.x: missing field `op`"), "{e}");
        let e = err_of("[demo]\nx = { metric = \"crashes\", op = \"<=\", value = \"zero\" }\n");
        assert!(
            e.contains(":2: demo.x.value: invalid type: string \"zero\""),
            "{e}"
        );
        let e = err_of("[demo]\n\n[demo.x]\nmetric = \"crashes\"\nop = 3\nvalue = 0\n");
        assert!(e.contains(":5: demo.x.op: invalid type"), "{e}");
        let e = err_of("[demo]\nx = { metric = \"crashes\", op = \"<\", value = 0 }\n");
        assert!(e.contains("demo.x.op"), "{e}");
        let e = err_of("[demo]\nx = { metric = \"crashes\", op = \"<=\", value = 0, limit = 2 }\n");
        assert!(e.contains("demo.x: unknown field `limit`"), "{e}");
    }

    #[test]
    fn counters_and_ratios_are_compared_in_the_direction_their_threshold_guards() {
        let c = parse(
            "[demo]\nno_crashes = { metric = \"crashes\", op = \"<=\", value = 0 }\nhits = { metric = \"hit_rate\", op = \">=\", value = 0.9 }\nwarm = { ratio = [\"warm_ms.p50\", \"cold_ms.p50\"], op = \"<=\", value = 0.5 }\n",
        )
        .unwrap();
        let run = |crashes: u64, hit_rate: f64| {
            let mut s = MetricSummary::new("demo", RunProfile::new(Depth::Quick, None));
            s.count("crashes", crashes);
            s.ratio("hit_rate", hit_rate);
            s.measure("warm_ms", "ms", &[1.0, 2.0]).unwrap();
            s.measure("cold_ms", "ms", &[3.0, 4.0]).unwrap();
            s
        };
        let base = [run(0, 0.95)];
        let same = c.compare_figures(&[&base], &[run(0, 0.95)], 5.0);
        assert_eq!(
            same.len(),
            2,
            "measurements are left to the sample comparison: {same:?}"
        );
        assert!(same.iter().all(|f| !f.regression), "{same:?}");
        // One crash where there were none: a regression, whatever the noise.
        let crashed = c.compare_figures(&[&base], &[run(1, 0.95)], 50.0);
        assert!(
            crashed
                .iter()
                .any(|f| f.threshold == "no_crashes" && f.regression),
            "{crashed:?}"
        );
        // A hit rate down 20 %: worse, for a >= threshold.
        let fewer = c.compare_figures(&[&base], &[run(0, 0.76)], 5.0);
        assert!(
            fewer.iter().any(|f| f.threshold == "hits" && f.regression),
            "{fewer:?}"
        );
        // Up 4 %, inside the noise threshold; and up is better for hits.
        let more = c.compare_figures(&[&base], &[run(0, 0.99)], 5.0);
        assert!(more.iter().all(|f| !f.regression), "{more:?}");
    }

    #[test]
    fn verdicts_compare_actual_with_limit_and_fail_when_past_it() {
        let c = parse(
            "[demo]\nwarm_vs_cold = { ratio = [\"warm_ms.p50\", \"cold_ms.p50\"], op = \"<=\", value = 0.35, why = \"the pool must pay for itself\" }\nno_crashes = { metric = \"crashes\", op = \"<=\", value = 0 }\nhits = { metric = \"hit_rate\", op = \">=\", value = 0.9 }\n",
        )
        .unwrap();
        let mut s = MetricSummary::new("demo", RunProfile::new(Depth::Quick, None));
        s.measure("warm_ms", "ms", &[10.0, 12.0, 11.0]).unwrap();
        s.measure("cold_ms", "ms", &[20.0, 22.0, 21.0]).unwrap();
        s.count("crashes", 0);
        s.ratio("hit_rate", 0.95);
        let verdicts = c.check(&s).unwrap();
        let ratio = verdicts
            .iter()
            .find(|v| v.threshold == "warm_vs_cold")
            .unwrap();
        assert!(!ratio.passed);
        assert!((ratio.actual - 11.0 / 21.0).abs() < 1e-12);
        assert!(verdicts
            .iter()
            .filter(|v| v.threshold != "warm_vs_cold")
            .all(|v| v.passed));
        let msg = failure_message("demo", &verdicts).unwrap();
        assert!(msg.contains("1 of 3 thresholds failed"), "{msg}");
        assert!(
            msg.contains("warm_ms.p50 / cold_ms.p50 = 0.5238 ratio, limit <= 0.3500"),
            "{msg}"
        );
        assert!(
            msg.contains("actual/limit = 1.497") && msg.contains("49.7% past the limit"),
            "{msg}"
        );
        assert!(msg.contains("why: the pool must pay for itself"), "{msg}");

        s.count("crashes", 2);
        s.metrics.remove("cold_ms");
        assert!(c
            .check(&s)
            .unwrap_err()
            .to_string()
            .contains("no figure \"cold_ms.p50\""));
    }
}
