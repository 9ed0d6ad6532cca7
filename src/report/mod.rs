//! A scenario's record with the contract's verdicts on it, and its forms:
//! versioned JSON on disk, Markdown for PR comments, and a plain table for
//! terminals.
//!
//! A test writes its scenario's summary to `target/tidepool/reports/<scenario>.json`
//! (see [`default_dir`]); the CLI reads the same files back for `compare` and
//! `report`.

mod ab;
mod compare;
mod history;
#[cfg(feature = "html")]
mod html;
mod render;
mod results;

use std::path::{Path, PathBuf};

pub use crate::summary::{
    format_figure, git_commit, MachineInfo, Measurement, MetricSummary, MAX_SAMPLES_KEPT,
    SCHEMA_VERSION,
};
pub use ab::{
    ab_markdown, ab_rows, ab_table, analyse, AbFigure, AbOptions, AbReport, AbRound, AbVerdict,
    Direction, Role, Test, AB_HEADER,
};
pub use compare::{compare, compare_history, MetricChange, ALPHA};
pub use history::{history_shifts, read_history, FigureShift};
#[cfg(feature = "html")]
pub use html::HtmlReport;
pub use render::{
    layout_table, markdown_table, results_markdown, results_rows, results_table, to_markdown,
    to_table, verdict_cells, RESULTS_HEADER,
};
pub use results::{read_reports, Grade, ValidationResults};

use serde::{Deserialize, Serialize};

use crate::contract::Verdict;
use crate::error::{Error, Result};
use tidepool_pools::Error as PoolError;

/// One scenario's report: its record and the contract's verdicts on it.
///
/// The JSON is the record's fields with a `verdicts` array beside them, the
/// layout of every report since schema version 1.
///
/// # Example
///
/// ```
/// use tidepool::profile::{Depth, RunProfile};
/// use tidepool::report::ScenarioReport;
/// use tidepool::summary::MetricSummary;
///
/// let mut summary = MetricSummary::new("demo", RunProfile::new(Depth::Quick, None));
/// summary.count("requests", 3);
/// let report = ScenarioReport::new(summary, Vec::new());
/// assert!(report.passed());
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScenarioReport {
    /// What the run measured.
    #[serde(flatten)]
    pub summary: MetricSummary,
    /// The contract's verdicts on it (none when it was not judged).
    #[serde(default)]
    pub verdicts: Vec<Verdict>,
}

impl ScenarioReport {
    /// The report of `summary`, judged by `verdicts`.
    pub fn new(summary: MetricSummary, verdicts: Vec<Verdict>) -> ScenarioReport {
        ScenarioReport { summary, verdicts }
    }

    /// Whether every threshold held.
    pub fn passed(&self) -> bool {
        self.verdicts.iter().all(|v| v.passed)
    }
}

/// Environment variable that moves the report directory.
pub const REPORT_DIR_ENV: &str = "TIDEPOOL_REPORT_DIR";

/// Where reports go: `$TIDEPOOL_REPORT_DIR`, else `$CARGO_TARGET_DIR/tidepool/reports`,
/// else `target/tidepool/reports` under the current directory (the crate root,
/// under nextest).
pub fn default_dir() -> PathBuf {
    if let Ok(dir) = std::env::var(REPORT_DIR_ENV) {
        return PathBuf::from(dir);
    }
    let target = std::env::var("CARGO_TARGET_DIR").unwrap_or_else(|_| "target".into());
    Path::new(&target).join("tidepool").join("reports")
}

/// Writes `report` as pretty JSON to `<dir>/<scenario>.json`, atomically, and
/// returns the path.
pub fn write_json(report: &ScenarioReport, dir: &Path) -> Result<PathBuf> {
    let scenario = &report.summary.scenario;
    let path = dir.join(format!("{scenario}.json"));
    let json = serde_json::to_vec_pretty(report).map_err(|source| PoolError::Json {
        what: format!("report of scenario {scenario}"),
        source,
    })?;
    crate::write_atomic(&path, &json)?;
    Ok(path)
}

/// Reads a report written by [`write_json`], rejecting other schema versions
/// with a message that names the file and both versions.
pub fn read_json(path: &Path) -> Result<ScenarioReport> {
    let value = results::read_versioned(path)?;
    serde_json::from_value(value).map_err(|e| Error::Report {
        path: path.into(),
        message: format!("does not match the report layout: {e}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profile::{Depth, RunProfile};

    fn temp_dir(tag: &str) -> PathBuf {
        std::env::temp_dir().join(format!("tidepool-report-{tag}-{}", std::process::id()))
    }

    #[test]
    fn json_round_trips_and_other_versions_are_refused() {
        let dir = temp_dir("roundtrip");
        let mut s = MetricSummary::new("demo", RunProfile::new(Depth::Quick, None));
        s.measure("x_ms", "ms", &[1.0, 2.0, 3.0]).unwrap();
        s.count("n", 3);
        let report = ScenarioReport::new(s, Vec::new());
        let path = write_json(&report, &dir).unwrap();
        assert_eq!(read_json(&path).unwrap(), report);

        let mut v: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        v["schema_version"] = 99.into();
        std::fs::write(&path, v.to_string()).unwrap();
        let err = read_json(&path).unwrap_err().to_string();
        assert!(
            err.contains("schema version 99") && err.contains("demo.json"),
            "{err}"
        );
        std::fs::write(&path, "{ not json").unwrap();
        assert!(read_json(&path)
            .unwrap_err()
            .to_string()
            .contains("not valid JSON"));
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_report_written_before_the_record_and_its_verdicts_parted_still_reads() {
        // Written at b94790d, when the verdicts were a field of the record.
        let path = Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/data/report-v1-aot_cache.json"
        ));
        let report = read_json(path).unwrap();
        assert_eq!(report.summary.scenario, "aot_cache");
        assert_eq!(report.verdicts.len(), 3);
        assert!(report.passed());
        assert!(report.summary.figure("cache_load_ms.p50").is_some());
        let again: serde_json::Value = serde_json::to_value(&report).unwrap();
        let saved: serde_json::Value =
            serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
        assert_eq!(again, saved, "the same layout, field for field");
    }

    #[test]
    fn samples_beyond_the_cap_are_thinned_but_the_summary_covers_all() {
        let mut s = MetricSummary::new("demo", RunProfile::new(Depth::Quick, None));
        let samples: Vec<f64> = (0..25_000).map(f64::from).collect();
        s.measure("x", "us", &samples).unwrap();
        let m = &s.metrics["x"];
        assert_eq!((m.samples.len(), m.summary.n), (MAX_SAMPLES_KEPT, 25_000));
        assert_eq!(m.summary.max, 24_999.0);
    }
}
