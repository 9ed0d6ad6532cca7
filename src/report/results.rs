use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::{MachineInfo, ScenarioReport, SCHEMA_VERSION};
use crate::contract::Verdict;
use crate::error::{Error, Result};

/// A scenario's grade, from the margins of its thresholds.
///
/// The rule: a scenario with a failed threshold is **Poor**. Otherwise its
/// grade follows the smallest relative margin among its graded thresholds (how
/// far inside the limit the figure is, as a share of the limit): at least 50 %
/// is **Excellent**, at least 20 % **Good**, less **Fair**. Thresholds that are
/// all-or-nothing checks do not grade, only pass or fail: those with a limit of
/// 0 (no crashes, no errors) and those met exactly (every request served:
/// 1.0 >= 1.0). A scenario with no graded threshold that passes is Excellent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Grade {
    /// Every threshold holds by at least 50 %.
    Excellent,
    /// Every threshold holds by at least 20 %.
    Good,
    /// Every threshold holds.
    Fair,
    /// A threshold fails.
    Poor,
}

impl Grade {
    /// Grades one scenario's verdicts.
    pub fn of(verdicts: &[Verdict]) -> Grade {
        if verdicts.iter().any(|v| !v.passed) {
            return Grade::Poor;
        }
        let min = verdicts
            .iter()
            .filter(|v| v.limit != 0.0 && v.actual != v.limit)
            .map(|v| v.margin)
            .fold(f64::INFINITY, f64::min);
        if min >= 0.5 {
            Grade::Excellent
        } else if min >= 0.2 {
            Grade::Good
        } else {
            Grade::Fair
        }
    }
}

/// What `tidepool validate` writes: every scenario it ran, in one file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ValidationResults {
    /// [`SCHEMA_VERSION`].
    pub schema_version: u32,
    /// The tidepool that ran them.
    pub tidepool_version: String,
    /// The commit, when known.
    pub git_commit: Option<String>,
    /// Where they ran.
    pub machine: MachineInfo,
    /// When the run ended, RFC 3339.
    pub timestamp: String,
    /// False when the run was interrupted: some scenarios did not run.
    pub complete: bool,
    /// The contract file used.
    pub contract: String,
    /// Each scenario's report: its record and verdicts.
    pub scenarios: Vec<ScenarioReport>,
    /// Each scenario's grade.
    pub grades: BTreeMap<String, Grade>,
}

impl ValidationResults {
    /// Results of `scenarios`, graded.
    pub fn new(
        contract: &Path,
        scenarios: Vec<ScenarioReport>,
        complete: bool,
    ) -> ValidationResults {
        let grades = scenarios
            .iter()
            .map(|r| (r.summary.scenario.clone(), Grade::of(&r.verdicts)))
            .collect();
        ValidationResults {
            schema_version: SCHEMA_VERSION,
            tidepool_version: env!("CARGO_PKG_VERSION").to_owned(),
            git_commit: super::git_commit(),
            machine: MachineInfo::collect(),
            timestamp: humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
            complete,
            contract: contract.display().to_string(),
            scenarios,
            grades,
        }
    }

    /// Whether every threshold of every scenario held.
    pub fn passed(&self) -> bool {
        self.scenarios.iter().all(ScenarioReport::passed)
    }
}

/// Reads a tidepool JSON file and checks its schema version; the error names
/// the file and what is wrong (unreadable, not JSON, another version).
pub(crate) fn read_versioned(path: &Path) -> Result<serde_json::Value> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io("reading", path, e))?;
    let value: serde_json::Value = serde_json::from_str(&text).map_err(|e| Error::Report {
        path: path.into(),
        message: format!("not valid JSON: {e}"),
    })?;
    match value.get("schema_version").and_then(|v| v.as_u64()) {
        Some(v) if v == u64::from(SCHEMA_VERSION) => {}
        Some(v) => {
            return Err(Error::Report {
                path: path.into(),
                message: format!(
                    "schema version {v}, but this tidepool reads version {SCHEMA_VERSION}"
                ),
            })
        }
        None => {
            return Err(Error::Report {
                path: path.into(),
                message: "no schema_version field: not a tidepool report".into(),
            })
        }
    }
    Ok(value)
}

/// Reads either a `validate` results file or a single scenario report, and
/// returns its reports. Every failure names the file and what is wrong.
pub fn read_reports(path: &Path) -> Result<Vec<ScenarioReport>> {
    let value = read_versioned(path)?;
    let layout = |e: serde_json::Error| Error::Report {
        path: path.into(),
        message: format!("does not match the report layout: {e}"),
    };
    if value.get("scenarios").is_some() {
        let results: ValidationResults = serde_json::from_value(value).map_err(layout)?;
        Ok(results.scenarios)
    } else {
        Ok(vec![serde_json::from_value(value).map_err(layout)?])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contract::Op;

    fn verdict(actual: f64, limit: f64, op: Op) -> Verdict {
        let margin = match op {
            Op::AtMost => (limit - actual) / limit.abs(),
            Op::AtLeast => (actual - limit) / limit.abs(),
        };
        Verdict {
            threshold: "t".into(),
            figure: "f".into(),
            actual,
            op,
            limit,
            unit: "ratio".into(),
            margin,
            passed: margin >= 0.0,
            why: None,
        }
    }

    #[test]
    fn grades_follow_the_smallest_margin_and_ignore_exact_checks() {
        let exact = verdict(1.0, 1.0, Op::AtLeast);
        assert_eq!(
            Grade::of(&[verdict(0.1, 0.35, Op::AtMost), exact.clone()]),
            Grade::Excellent
        );
        assert_eq!(
            Grade::of(&[verdict(0.25, 0.35, Op::AtMost), exact.clone()]),
            Grade::Good
        );
        assert_eq!(Grade::of(&[verdict(0.34, 0.35, Op::AtMost)]), Grade::Fair);
        assert_eq!(
            Grade::of(&[verdict(0.36, 0.35, Op::AtMost), exact]),
            Grade::Poor
        );
    }
}
