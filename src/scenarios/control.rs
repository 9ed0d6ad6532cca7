//! Negative controls: a realistic bad variant of each scenario that the
//! contract must reject.
//!
//! A threshold is evidence only if a regression would fail it. So every
//! threshold of `perf-contract.toml` is named by at least one [`Control`]: a
//! real code path that a plausible regression could produce (a batch sent one
//! command at a time, a pool that never pre-warms, a cache that skips
//! verification), chosen through public config or a clearly named test-only
//! variant, never a patched number. A control measures only the figures of the
//! thresholds it targets; [`run_control`] judges exactly those, and the control
//! is *rejected*, as it must be, when every one of them fails.
//!
//! `tidepool validate --controls` runs them all; `tests/controls.rs` runs one
//! test per control, and checks that no threshold is left without one.

use std::collections::BTreeSet;
use std::path::PathBuf;

use super::{Scenario, ScenarioFuture, SCENARIOS};
use crate::contract::{Contract, Verdict};
use crate::error::{Error, Result};
use crate::profile::RunProfile;
use crate::report::{self, ScenarioReport};
use crate::summary::MetricSummary;

/// A known-bad variant of a scenario, and the thresholds it must fail.
#[derive(Debug, Clone, Copy)]
pub struct Control {
    /// Its name, unique within its scenario (`sequential_batch`).
    pub name: &'static str,
    /// What is wrong with it, in a few words, for the controls table.
    pub what: &'static str,
    /// The thresholds of its scenario it must fail, every one of them.
    pub rejects: &'static [&'static str],
    /// Runs it at the given depth; the summary holds at least the figures
    /// those thresholds name.
    pub run: fn(RunProfile) -> ScenarioFuture,
}

/// Every control of every scenario, with its scenario.
pub fn all_controls() -> impl Iterator<Item = (&'static Scenario, &'static Control)> {
    SCENARIOS
        .iter()
        .flat_map(|s| s.controls.iter().map(move |c| (s, c)))
}

/// The control `scenario.name` (as `tests/controls.rs` and `--controls` name it).
pub fn find_control(id: &str) -> Result<(&'static Scenario, &'static Control)> {
    all_controls()
        .find(|(s, c)| format!("{}.{}", s.spec.name, c.name) == id)
        .ok_or_else(|| {
            Error::config(
                "control",
                format!(
                    "unknown control {id:?}; known: {}",
                    all_controls()
                        .map(|(s, c)| format!("{}.{}", s.spec.name, c.name))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            )
        })
}

/// One control's run, judged.
#[derive(Debug, Clone)]
pub struct ControlOutcome {
    /// `scenario.control`.
    pub id: String,
    /// What is wrong with the variant.
    pub what: &'static str,
    /// The verdicts of the thresholds it targets, in the order it names them.
    pub verdicts: Vec<Verdict>,
    /// The bad variant's summary (its verdicts are in `verdicts`).
    pub summary: MetricSummary,
    /// Where its report went.
    pub report_path: PathBuf,
}

impl ControlOutcome {
    /// Whether the contract rejected the variant: every targeted threshold failed.
    pub fn rejected(&self) -> bool {
        !self.verdicts.is_empty() && self.verdicts.iter().all(|v| !v.passed)
    }

    /// One line per targeted threshold: `threshold -> control: rejected (figure)`.
    pub fn lines(&self) -> Vec<String> {
        self.verdicts
            .iter()
            .map(|v| {
                format!(
                    "{}.{} -> {}: {} ({} = {} {}, limit {} {})",
                    self.summary.scenario,
                    v.threshold,
                    self.id,
                    if v.passed { "NOT REJECTED" } else { "rejected" },
                    v.figure,
                    report::format_figure(v.actual),
                    v.unit,
                    v.op,
                    report::format_figure(v.limit),
                )
            })
            .collect()
    }
}

/// Runs a control, judges the thresholds it targets, and writes its report to
/// `<reports>/controls/<scenario>.<control>.json` (never over the scenario's
/// own report).
pub async fn run_control(
    scenario: &Scenario,
    control: &Control,
    profile: RunProfile,
    contract: &Contract,
) -> Result<ControlOutcome> {
    let id = format!("{}.{}", scenario.spec.name, control.name);
    tracing::info!(control = %id, what = control.what, "running negative control");
    let mut summary = (control.run)(profile).await?;
    summary.note(format!(
        "negative control {id}: {}; judged only by {}",
        control.what,
        control.rejects.join(", ")
    ));
    let verdicts = contract.check_only(&summary, control.rejects)?;
    let dir = report::default_dir().join("controls");
    let mut named = ScenarioReport::new(summary.clone(), verdicts.clone());
    named.summary.scenario = id.clone();
    let report_path = report::write_json(&named, &dir)?;
    Ok(ControlOutcome {
        id,
        what: control.what,
        verdicts,
        summary,
        report_path,
    })
}

/// Thresholds that have no negative control yet, each with the reason: what
/// [`coverage_gaps`] forgives, and what `validate --controls` lists as pending.
pub const WITHOUT_CONTROL: &[(&str, &str)] = &[];

/// What is wrong with the controls' coverage of `contract`: a threshold no
/// control targets (unless [`WITHOUT_CONTROL`] names it), or a control naming
/// a threshold the contract lacks. Empty when every threshold has a control.
pub fn coverage_gaps(contract: &Contract) -> Vec<String> {
    let mut gaps = Vec::new();
    let targeted: BTreeSet<(String, String)> = all_controls()
        .flat_map(|(s, c)| {
            c.rejects
                .iter()
                .map(move |t| (s.spec.name.to_owned(), (*t).to_owned()))
        })
        .collect();
    for (scenario, thresholds) in &contract.scenarios {
        for t in thresholds {
            let id = format!("{scenario}.{}", t.name);
            let pending = WITHOUT_CONTROL.iter().any(|(p, _)| *p == id);
            if !targeted.contains(&(scenario.clone(), t.name.clone())) && !pending {
                gaps.push(format!("{scenario}.{}: no negative control", t.name));
            }
        }
    }
    for (s, c) in all_controls() {
        for t in c.rejects {
            if !contract
                .thresholds(s.spec.name)
                .iter()
                .any(|x| x.name == *t)
            {
                gaps.push(format!(
                    "{}.{}: targets {t:?}, which the contract does not have",
                    s.spec.name, c.name
                ));
            }
        }
    }
    gaps
}
