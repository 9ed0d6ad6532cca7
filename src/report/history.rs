//! Where figures moved over a history of runs (`compare --history`): change
//! points as Hunter finds them (see [`crate::stats::change_points`]), each
//! named by the run (and commit) after it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::ab::figure_values;
use super::MetricSummary;
use crate::error::{Error, Result};
use crate::stats::{change_points, ChangePointOptions};

/// The runs of a history directory: every `*.json` results file or report in
/// `dir`, oldest first (by the timestamp of its first record, then by name),
/// each with its path. A file that is not a report is an error naming it.
pub fn read_history(dir: &Path) -> Result<Vec<(PathBuf, Vec<MetricSummary>)>> {
    let entries = std::fs::read_dir(dir).map_err(|e| Error::io("listing the history", dir, e))?;
    let mut runs: Vec<(String, PathBuf, Vec<MetricSummary>)> = Vec::new();
    for entry in entries.filter_map(|e| e.ok()) {
        let path = entry.path();
        if path.extension().is_some_and(|x| x == "json") {
            let summaries: Vec<MetricSummary> = super::read_reports(&path)?
                .into_iter()
                .map(|r| r.summary)
                .collect();
            let stamp = summaries
                .first()
                .map(|s| s.timestamp.clone())
                .unwrap_or_default();
            runs.push((stamp, path, summaries));
        }
    }
    runs.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.cmp(&b.1)));
    Ok(runs.into_iter().map(|(_, path, s)| (path, s)).collect())
}

/// A figure whose level moved at one run of a history.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FigureShift {
    /// The scenario.
    pub scenario: String,
    /// The figure (`metric.p50`, a counter or a ratio).
    pub figure: String,
    /// Position in the history (oldest first) of the first run after the change.
    pub run: usize,
    /// That run's commit, when its report names one.
    pub commit: Option<String>,
    /// That run's timestamp.
    pub timestamp: String,
    /// Mean of the figure before the change.
    pub mean_before: f64,
    /// Mean after it.
    pub mean_after: f64,
    /// `(after / before - 1) * 100`, or infinite from 0.
    pub percent_change: f64,
    /// Student's t-test p-value between the segments on either side,
    /// corrected for the positions the split was chosen from.
    pub p_value: f64,
}

/// Change points of every figure over `runs` (oldest first). A figure is
/// followed over the runs that report it.
pub fn history_shifts(
    runs: &[Vec<MetricSummary>],
    options: &ChangePointOptions,
) -> Vec<FigureShift> {
    // (scenario, figure) -> [(run index, value)]
    let mut series: BTreeMap<(String, String), Vec<(usize, f64)>> = BTreeMap::new();
    for (i, run) in runs.iter().enumerate() {
        for s in run {
            for v in figure_values(s) {
                series
                    .entry((s.scenario.clone(), v.name))
                    .or_default()
                    .push((i, v.value));
            }
        }
    }
    let mut out = Vec::new();
    for ((scenario, figure), points) in series {
        let values: Vec<f64> = points.iter().map(|p| p.1).collect();
        for c in change_points(&values, options) {
            let run = points[c.index].0;
            let record = runs[run].iter().find(|s| s.scenario == scenario);
            let percent_change = if c.mean_before == 0.0 {
                f64::INFINITY.copysign(c.mean_after)
            } else {
                (c.mean_after / c.mean_before - 1.0) * 100.0
            };
            out.push(FigureShift {
                scenario: scenario.clone(),
                figure: figure.clone(),
                run,
                commit: record.and_then(|s| s.git_commit.clone()),
                timestamp: record.map(|s| s.timestamp.clone()).unwrap_or_default(),
                mean_before: c.mean_before,
                mean_after: c.mean_after,
                percent_change,
                p_value: c.p_value,
            });
        }
    }
    out
}

/// A history of 16 runs of scenario `demo` whose `page_ms` steps from about
/// 20 to about 26 ms at run 9; run `i` is commit `c{i}`.
#[cfg(test)]
pub(crate) fn step_history() -> Vec<Vec<MetricSummary>> {
    use crate::profile::{Depth, RunProfile};
    (0..16)
        .map(|i| {
            let mut s = MetricSummary::new("demo", RunProfile::new(Depth::Quick, None));
            s.git_commit = Some(format!("c{i}"));
            let level = if i < 9 { 20.0 } else { 26.0 };
            let samples: Vec<f64> = (0..20)
                .map(|k| level + ((k + i) % 4) as f64 * 0.1)
                .collect();
            s.measure("page_ms", "ms", &samples).unwrap();
            s.count("crashes", 0);
            vec![s]
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_step_in_a_history_names_the_run_and_commit_after_it() {
        let runs = step_history();
        let shifts = history_shifts(&runs, &ChangePointOptions::default());
        assert_eq!(shifts.len(), 1, "{shifts:#?}");
        assert_eq!(shifts[0].figure, "page_ms.p50");
        assert_eq!(shifts[0].commit.as_deref(), Some("c9"));
        assert!((shifts[0].percent_change - 30.0).abs() < 2.0);
    }
}
