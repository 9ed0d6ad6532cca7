//! What a scenario promises to report: the names a contract may use.

use crate::stats::Statistic;

/// What kind of figure a scenario reports under a name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FigureKind {
    /// A measurement with samples in this unit; contracts name its statistics.
    Measurement(&'static str),
    /// An event count.
    Counter,
    /// A derived figure (rate, ratio).
    Ratio,
}

/// A figure a scenario promises to report, and what is true of it.
///
/// # Example
///
/// ```
/// use tidepool::summary::{FigureKind, FigureSpec};
///
/// const PAGES: FigureSpec = FigureSpec::counter("pages").scales();
/// assert_eq!(PAGES.kind, FigureKind::Counter);
/// assert!(PAGES.scales_with_iterations);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FigureSpec {
    /// Its name in the summary.
    pub name: &'static str,
    /// Its kind (and unit).
    pub kind: FigureKind,
    /// A count that grows with the run's iterations: a snapshot shows a
    /// marker instead of its value, so it is the same under every profile.
    pub scales_with_iterations: bool,
    /// Measured on the fixture server's own pages: a crawl of other URLs
    /// (`validate --urls`) reports it, but no threshold on it is judged.
    pub fixture_only: bool,
    /// A count that depends on timing (how many pages a loss caught in
    /// flight): a snapshot shows a marker instead of its value.
    pub varies: bool,
}

impl FigureSpec {
    /// A measurement with samples in `unit`.
    pub const fn measurement(name: &'static str, unit: &'static str) -> FigureSpec {
        FigureSpec::of(name, FigureKind::Measurement(unit))
    }

    /// An event count.
    pub const fn counter(name: &'static str) -> FigureSpec {
        FigureSpec::of(name, FigureKind::Counter)
    }

    /// A derived figure (a rate, a ratio).
    pub const fn ratio(name: &'static str) -> FigureSpec {
        FigureSpec::of(name, FigureKind::Ratio)
    }

    const fn of(name: &'static str, kind: FigureKind) -> FigureSpec {
        FigureSpec {
            name,
            kind,
            scales_with_iterations: false,
            fixture_only: false,
            varies: false,
        }
    }

    /// The same figure, growing with the run's iterations.
    pub const fn scales(mut self) -> FigureSpec {
        self.scales_with_iterations = true;
        self
    }

    /// The same figure, its value set by the run's timing.
    pub const fn varies(mut self) -> FigureSpec {
        self.varies = true;
        self
    }

    /// The same figure, meaningful on the fixture server's pages only.
    pub const fn only_on_fixtures(mut self) -> FigureSpec {
        self.fixture_only = true;
        self
    }
}

/// What a scenario is and which figures it reports: what a contract may name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScenarioSpec {
    /// The scenario's name: its report file, its contract table, its test binary.
    pub name: &'static str,
    /// One line for `--list`.
    pub description: &'static str,
    /// Every figure it reports.
    pub figures: &'static [FigureSpec],
}

impl ScenarioSpec {
    /// The spec of figure `name`: a counter's or ratio's name, or a
    /// measurement's with or without its statistic (`page_ms.p95`).
    pub fn figure(&self, name: &str) -> Option<&'static FigureSpec> {
        self.figures.iter().find(|f| f.name == name).or_else(|| {
            let (metric, _) = name.rsplit_once('.')?;
            self.figures.iter().find(|f| f.name == metric)
        })
    }
}

impl ScenarioSpec {
    /// The unit of a figure reference (`page_ms.p95`, `crashes`), or why it is unknown.
    pub(crate) fn unit_of(&self, figure: &str) -> std::result::Result<&'static str, String> {
        let known = || {
            self.figures
                .iter()
                .map(|f| match f.kind {
                    FigureKind::Measurement(_) => format!("{}.<stat>", f.name),
                    _ => f.name.to_string(),
                })
                .collect::<Vec<_>>()
                .join(", ")
        };
        if let Some((metric, stat)) = figure.rsplit_once('.') {
            let spec = self.figures.iter().find(|f| f.name == metric);
            return match spec.map(|f| f.kind) {
                Some(FigureKind::Measurement(unit)) => match Statistic::parse(stat) {
                    Some(Statistic::N) => Ok("samples"),
                    Some(_) => Ok(unit),
                    None => Err(format!(
                        "unknown statistic {stat:?} of {metric} (known: n, mean, median, stddev, min, max, p50, p90, p95, p99)"
                    )),
                },
                _ => Err(format!(
                    "scenario {} reports no measurement {metric:?} (it reports: {})",
                    self.name,
                    known()
                )),
            };
        }
        match self
            .figures
            .iter()
            .find(|f| f.name == figure)
            .map(|f| f.kind)
        {
            Some(FigureKind::Counter) => Ok("count"),
            Some(FigureKind::Ratio) => Ok("ratio"),
            Some(FigureKind::Measurement(_)) => Err(format!(
                "{figure:?} is a measurement: name one of its statistics, e.g. {figure}.p95"
            )),
            None => Err(format!(
                "scenario {} reports no figure {figure:?} (it reports: {})",
                self.name,
                known()
            )),
        }
    }
}
