//! The record of one scenario run: its measurements, counters and ratios, the
//! machine and build it ran on, and the figures each scenario promises to
//! report. The record knows nothing of the contract that judges it or of the
//! report that shows it: both are built on top of it.

mod machine;
mod spec;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub use machine::{git_commit, MachineInfo};
pub use spec::{FigureKind, FigureSpec, ScenarioSpec};

use crate::error::{Error, Result};
use crate::profile::{Depth, RunProfile};
use crate::stats::{Statistic, Summary};

/// The version of the report JSON layout. Readers reject other versions.
pub const SCHEMA_VERSION: u32 = 1;

/// Samples kept per measurement in a report; enough for a significance test
/// against a baseline, small enough that reports stay readable in a PR artifact.
pub const MAX_SAMPLES_KEPT: usize = 10_000;

/// Everything one scenario run measured: the unit of reports, contracts and
/// comparisons. The contract's verdicts on it live beside it, in
/// [`ScenarioReport`](crate::report::ScenarioReport).
///
/// # Example
///
/// ```
/// use tidepool::profile::{Depth, RunProfile};
/// use tidepool::summary::MetricSummary;
///
/// let mut summary = MetricSummary::new("demo", RunProfile::new(Depth::Quick, None));
/// summary.measure("request_ms", "ms", &[1.2, 1.4, 1.1])?;
/// summary.count("requests", 3);
/// summary.ratio("warm_vs_cold_p50", 0.25);
/// assert_eq!(summary.figure("request_ms.max"), Some(1.4));
/// assert_eq!(summary.figure("requests"), Some(3.0));
/// # Ok::<(), tidepool::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricSummary {
    /// [`SCHEMA_VERSION`] at the time of writing.
    pub schema_version: u32,
    /// The scenario that produced this summary.
    pub scenario: String,
    /// The tidepool version that measured it.
    pub tidepool_version: String,
    /// The git commit of the working tree, when known.
    pub git_commit: Option<String>,
    /// Where it was measured.
    pub machine: MachineInfo,
    /// When the run finished, RFC 3339 UTC.
    pub timestamp: String,
    /// Quick or full.
    pub depth: Depth,
    /// The base iteration count of the run.
    pub iterations: usize,
    /// False when the run was interrupted and these are partial results.
    pub complete: bool,
    /// Free-form remarks: which parts were active, scale factors, caveats.
    pub notes: Vec<String>,
    /// Timed or sized measurements, by name.
    pub metrics: BTreeMap<String, Measurement>,
    /// Event counts, by name.
    pub counters: BTreeMap<String, u64>,
    /// Derived figures, by name (a ratio of two medians, a hit rate).
    pub ratios: BTreeMap<String, f64>,
}

/// One named measurement: its unit, its statistics and (capped) raw samples.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Measurement {
    /// Unit of every sample (`ms`, `us`, `MB`...).
    pub unit: String,
    /// Statistics over all samples, including any not kept below.
    pub summary: Summary,
    /// The raw samples, at most [`MAX_SAMPLES_KEPT`] (evenly thinned beyond).
    pub samples: Vec<f64>,
}

impl MetricSummary {
    /// An empty summary for `scenario`, stamped with this machine and build.
    pub fn new(scenario: &str, profile: RunProfile) -> MetricSummary {
        MetricSummary {
            schema_version: SCHEMA_VERSION,
            scenario: scenario.to_owned(),
            tidepool_version: env!("CARGO_PKG_VERSION").to_owned(),
            git_commit: git_commit(),
            machine: MachineInfo::collect(),
            timestamp: humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
            depth: profile.depth,
            iterations: profile.iterations(),
            complete: true,
            notes: Vec::new(),
            metrics: BTreeMap::new(),
            counters: BTreeMap::new(),
            ratios: BTreeMap::new(),
        }
    }

    /// Records the samples of measurement `name` in `unit`; fails on empty or
    /// non-finite samples, so a broken measurement cannot slip into a report.
    pub fn measure(&mut self, name: &str, unit: &str, samples: &[f64]) -> Result<&Summary> {
        let summary = Summary::from_samples(name, samples)?;
        let kept = thin(samples, MAX_SAMPLES_KEPT);
        let m = self.metrics.entry(name.to_owned()).or_insert(Measurement {
            unit: unit.to_owned(),
            summary: summary.clone(),
            samples: Vec::new(),
        });
        *m = Measurement {
            unit: unit.to_owned(),
            summary,
            samples: kept,
        };
        Ok(&m.summary)
    }

    /// Sets counter `name`.
    pub fn count(&mut self, name: &str, value: u64) {
        self.counters.insert(name.to_owned(), value);
    }

    /// Sets ratio `name` and returns it. Use [`MetricSummary::ratio_of`] when the
    /// ratio is computed, so a division by zero fails instead of reporting infinity.
    pub fn ratio(&mut self, name: &str, value: f64) -> f64 {
        self.ratios.insert(name.to_owned(), value);
        value
    }

    /// Sets ratio `name` to `numerator / denominator`, failing on a zero or
    /// non-finite result.
    pub fn ratio_of(&mut self, name: &str, numerator: f64, denominator: f64) -> Result<f64> {
        let value = numerator / denominator;
        if !value.is_finite() {
            return Err(Error::NonFiniteSample {
                what: format!("ratio {name} = {numerator} / {denominator}"),
                index: 0,
                value,
            });
        }
        Ok(self.ratio(name, value))
    }

    /// Adds a remark to the report.
    pub fn note(&mut self, text: impl Into<String>) {
        self.notes.push(text.into());
    }

    /// Looks up a figure by the name a contract uses: `metric.statistic` for a
    /// measurement (`request_ms.p95`), or a bare counter or ratio name.
    pub fn figure(&self, name: &str) -> Option<f64> {
        if let Some((metric, stat)) = name.rsplit_once('.') {
            let stat = Statistic::parse(stat)?;
            return self.metrics.get(metric).map(|m| m.summary.get(stat));
        }
        self.counters
            .get(name)
            .map(|&c| c as f64)
            .or_else(|| self.ratios.get(name).copied())
    }

    /// The unit of a figure, for messages: a measurement's unit, `count` or `ratio`.
    pub fn unit_of(&self, name: &str) -> &str {
        match name.rsplit_once('.') {
            Some((_, "n")) => "samples",
            Some((metric, _)) => self.metrics.get(metric).map_or("", |m| m.unit.as_str()),
            None if self.counters.contains_key(name) => "count",
            None => "ratio",
        }
    }
}

/// Formats a figure with enough digits to read and no noise: 4 significant
/// decimals below 10, 2 below 1000, none above, scientific below 0.01.
pub fn format_figure(x: f64) -> String {
    if x == 0.0 || !x.is_finite() {
        return format!("{x}");
    }
    let a = x.abs();
    if a >= 1000.0 {
        format!("{x:.0}")
    } else if a >= 10.0 {
        format!("{x:.2}")
    } else if a >= 0.01 {
        format!("{x:.4}")
    } else {
        format!("{x:.3e}")
    }
}

/// Keeps at most `cap` samples, evenly spaced over the run.
fn thin(samples: &[f64], cap: usize) -> Vec<f64> {
    if samples.len() <= cap {
        return samples.to_vec();
    }
    (0..cap).map(|i| samples[i * samples.len() / cap]).collect()
}
