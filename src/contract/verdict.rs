//! What a contract says and decides: operators, subjects, thresholds, and
//! the verdict of one threshold on one run.

use std::fmt;

use serde::{Deserialize, Serialize};

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
    pub(super) fn judge(t: &Threshold, actual: f64) -> Verdict {
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
