//! Metric summaries and their forms: versioned JSON on disk, Markdown for PR
//! comments, and a plain table for terminals.
//!
//! A test writes its scenario's summary to `target/tidepool/reports/<scenario>.json`
//! (see [`default_dir`]); the CLI reads the same files back for `compare` and
//! `report`.

mod compare;
mod machine;
mod render;
mod results;
mod summary;

use std::path::{Path, PathBuf};

pub use compare::{compare, compare_history, MetricChange, ALPHA};
pub use machine::{git_commit, MachineInfo};
pub use render::{
    format_figure, layout_table, markdown_table, to_markdown, to_table, verdict_cells,
};
pub use results::{read_summaries, Grade, ValidationResults};
pub use summary::{Measurement, MetricSummary, MAX_SAMPLES_KEPT, SCHEMA_VERSION};

use crate::error::{Error, Result};

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

/// Writes `summary` as pretty JSON to `<dir>/<scenario>.json`, atomically, and
/// returns the path.
pub fn write_json(summary: &MetricSummary, dir: &Path) -> Result<PathBuf> {
    let path = dir.join(format!("{}.json", summary.scenario));
    let json = serde_json::to_vec_pretty(summary).map_err(|source| Error::Json {
        what: format!("report of scenario {}", summary.scenario),
        source,
    })?;
    crate::atomic_file::write_atomic(&path, &json)?;
    Ok(path)
}

/// Reads a report written by [`write_json`], rejecting other schema versions
/// with a message that names the file and both versions.
pub fn read_json(path: &Path) -> Result<MetricSummary> {
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
        let path = write_json(&s, &dir).unwrap();
        assert_eq!(read_json(&path).unwrap(), s);

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
    fn samples_beyond_the_cap_are_thinned_but_the_summary_covers_all() {
        let mut s = MetricSummary::new("demo", RunProfile::new(Depth::Quick, None));
        let samples: Vec<f64> = (0..25_000).map(f64::from).collect();
        s.measure("x", "us", &samples).unwrap();
        let m = &s.metrics["x"];
        assert_eq!((m.samples.len(), m.summary.n), (MAX_SAMPLES_KEPT, 25_000));
        assert_eq!(m.summary.max, 24_999.0);
    }
}
