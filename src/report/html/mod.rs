//! The HTML report: one self-contained file to look at, for a reviewer
//! deciding on a pull request or a developer chasing a failing scenario.
//!
//! Every plot is an inline SVG drawn with plotters; the page has no script,
//! no font and no request of its own, so it opens offline from a CI
//! artifact. At the top, a summary: each scenario's grade, the failed
//! thresholds first, the machine and the commit. Then, per scenario (failing
//! ones first): each threshold as a margin bar against its limit, coloured by
//! verdict, with its `why` as the caption, and each measurement's
//! distribution. Then, when given, an A/B check's paired ratios per figure and
//! a history's figures over the runs with their change points.

mod plots;

use std::fmt::Write as _;

use super::ab::figure_values;
use super::{AbReport, FigureShift, Grade, MetricSummary, ScenarioReport};
use crate::contract::Verdict;
use crate::error::Result;

/// What one HTML report shows.
///
/// # Example
///
/// ```
/// use tidepool::profile::{Depth, RunProfile};
/// use tidepool::report::{HtmlReport, ScenarioReport};
/// use tidepool::summary::MetricSummary;
///
/// let mut summary = MetricSummary::new("demo", RunProfile::new(Depth::Quick, None));
/// summary.measure("page_ms", "ms", &[12.0, 14.5, 13.1, 15.2]).unwrap();
/// let reports = vec![ScenarioReport::new(summary, Vec::new())];
/// let html = HtmlReport::new(&reports).render().unwrap();
/// assert!(html.contains("<svg") && !html.contains("<script"));
/// ```
#[derive(Debug, Clone)]
pub struct HtmlReport<'a> {
    reports: &'a [ScenarioReport],
    ab: Vec<&'a AbReport>,
    history: &'a [Vec<MetricSummary>],
    shifts: &'a [FigureShift],
}

/// One figure of a history, keyed by (scenario, figure): its unit and its
/// (run, value) points.
type Series = (String, Vec<(usize, f64)>);

/// CSS of the page: inline, with system fonts only.
const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:2em auto;max-width:72em;color:#1b1b1b;padding:0 1em}\
h1,h2,h3{font-weight:600}table{border-collapse:collapse;margin:1em 0}\
td,th{border:1px solid #ccc;padding:.3em .6em;text-align:left}\
.fail{color:#b71c1c}.pass{color:#1b5e20}\
figure{margin:1em 0;padding:.5em;border:1px solid #e0e0e0;border-radius:4px}\
figure.fail{border-color:#b71c1c;background:#fff5f5}\
figcaption{font-size:.9em;margin-top:.3em}.why{color:#555}\
code{font-size:.95em}";

impl<'a> HtmlReport<'a> {
    /// A report of `reports` (scenario reports, or a `validate` run's).
    pub fn new(reports: &'a [ScenarioReport]) -> HtmlReport<'a> {
        HtmlReport {
            reports,
            ab: Vec::new(),
            history: &[],
            shifts: &[],
        }
    }

    /// Adds an A/B check's figures (one section per check: CI splits the
    /// scenarios over runners).
    pub fn with_ab(mut self, ab: &'a AbReport) -> HtmlReport<'a> {
        self.ab.push(ab);
        self
    }

    /// Adds a history of runs (oldest first) and its change points (see
    /// [`history_shifts`](super::history_shifts)).
    pub fn with_history(
        mut self,
        runs: &'a [Vec<MetricSummary>],
        shifts: &'a [FigureShift],
    ) -> HtmlReport<'a> {
        self.history = runs;
        self.shifts = shifts;
        self
    }

    /// The page.
    pub fn render(&self) -> Result<String> {
        let mut out = String::with_capacity(64 * 1024);
        out.push_str("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">");
        out.push_str("<meta name=\"viewport\" content=\"width=device-width\">");
        out.push_str("<title>tidepool report</title><style>");
        out.push_str(STYLE);
        out.push_str("</style></head><body>\n<h1>tidepool report</h1>\n");
        let mut order: Vec<&ScenarioReport> = self.reports.iter().collect();
        // Failing scenarios first, then by name: what needs a look comes first.
        order.sort_by(|a, b| {
            a.passed()
                .cmp(&b.passed())
                .then_with(|| a.summary.scenario.cmp(&b.summary.scenario))
        });
        self.summary(&mut out, &order);
        for report in &order {
            scenario(&mut out, report)?;
        }
        for ab in &self.ab {
            ab_section(&mut out, ab)?;
        }
        if !self.history.is_empty() {
            self.history_section(&mut out)?;
        }
        out.push_str("</body></html>\n");
        Ok(out)
    }

    fn summary(&self, out: &mut String, order: &[&ScenarioReport]) {
        let failed: Vec<(&str, &Verdict)> = order
            .iter()
            .flat_map(|r| {
                r.verdicts
                    .iter()
                    .filter(|v| !v.passed)
                    .map(|v| (r.summary.scenario.as_str(), v))
            })
            .collect();
        out.push_str("<section id=\"summary\"><h2>Summary</h2>\n");
        if let Some(first) = self.reports.first() {
            let s = &first.summary;
            let m = &s.machine;
            let _ = writeln!(
                out,
                "<p>Commit <code>{}</code>, {} profile, {}. Build: {}. Machine: {} CPUs, {:.1} GiB, {}, kernel {}{}.</p>",
                escape(s.git_commit.as_deref().unwrap_or("unknown")),
                if s.depth == crate::profile::Depth::Full { "perf" } else { "quick" },
                escape(&s.timestamp),
                escape(m.build.as_deref().unwrap_or("unknown")),
                m.cpus,
                m.memory_bytes as f64 / f64::from(1u32 << 30),
                escape(&m.os),
                escape(m.kernel.as_deref().unwrap_or("unknown")),
                order
                    .iter()
                    .find_map(|r| r.summary.machine.chromium.as_deref())
                    .map(|c| format!(", {}", escape(c)))
                    .unwrap_or_default(),
            );
        }
        if failed.is_empty() {
            out.push_str("<p class=\"pass\">Every threshold holds.</p>\n");
        } else {
            let _ = writeln!(
                out,
                "<h3 class=\"fail\">{} failed threshold{}</h3><ul class=\"failed\">",
                failed.len(),
                if failed.len() == 1 { "" } else { "s" }
            );
            for (scenario, v) in &failed {
                let _ = writeln!(
                    out,
                    "<li class=\"fail\"><a href=\"#{}\">{}</a>.{}: {}</li>",
                    anchor(scenario, &v.threshold),
                    escape(scenario),
                    escape(&v.threshold),
                    escape(&verdict_line(v)),
                );
            }
            out.push_str("</ul>\n");
        }
        out.push_str("<table><tr><th>scenario</th><th>grade</th><th>thresholds held</th><th>depth</th></tr>\n");
        for r in order {
            let grade = Grade::of(&r.verdicts);
            let held = r.verdicts.iter().filter(|v| v.passed).count();
            let _ = writeln!(
                out,
                "<tr class=\"{}\"><td><a href=\"#{}\">{}</a></td><td>{:?}</td><td>{held} of {}</td><td>{:?}</td></tr>",
                if r.passed() { "pass" } else { "fail" },
                escape(&r.summary.scenario),
                escape(&r.summary.scenario),
                grade,
                r.verdicts.len(),
                r.summary.depth,
            );
        }
        out.push_str("</table></section>\n");
    }

    fn history_section(&self, out: &mut String) -> Result<()> {
        out.push_str("<section id=\"history\"><h2>History</h2>\n");
        let _ = writeln!(
            out,
            "<p>{} runs, oldest first; a dashed line marks a change point (E-divisive means), named by the commit after it.</p>",
            self.history.len()
        );
        let mut series: std::collections::BTreeMap<(String, String), Series> =
            std::collections::BTreeMap::new();
        for (i, run) in self.history.iter().enumerate() {
            for s in run {
                for v in figure_values(s) {
                    series
                        .entry((s.scenario.clone(), v.name))
                        .or_insert_with(|| (v.unit.clone(), Vec::new()))
                        .1
                        .push((i, v.value));
                }
            }
        }
        for ((scenario, figure), (unit, points)) in &series {
            let shifts: Vec<&FigureShift> = self
                .shifts
                .iter()
                .filter(|s| &s.scenario == scenario && &s.figure == figure)
                .collect();
            let svg = plots::history(figure, unit, points, &shifts)?;
            let _ = writeln!(
                out,
                "<figure data-kind=\"history\">{svg}<figcaption><b>{}.{}</b> ({}){}</figcaption></figure>",
                escape(scenario),
                escape(figure),
                escape(unit),
                shifts
                    .iter()
                    .map(|s| format!(
                        "; moved {:+.1} % at run {} ({})",
                        s.percent_change,
                        s.run,
                        escape(s.commit.as_deref().unwrap_or("unknown commit"))
                    ))
                    .collect::<String>(),
            );
        }
        out.push_str("</section>\n");
        Ok(())
    }
}

fn scenario(out: &mut String, r: &ScenarioReport) -> Result<()> {
    let s = &r.summary;
    let _ = writeln!(
        out,
        "<section class=\"scenario\" id=\"{}\"><h2 class=\"{}\">{}</h2>",
        escape(&s.scenario),
        if r.passed() { "pass" } else { "fail" },
        escape(&s.scenario),
    );
    if !r.verdicts.is_empty() {
        out.push_str("<h3>Thresholds</h3>\n");
    }
    let mut verdicts: Vec<&Verdict> = r.verdicts.iter().collect();
    verdicts.sort_by_key(|v| v.passed);
    for v in verdicts {
        let class = if v.passed { "pass" } else { "fail" };
        let svg = plots::threshold(v)?;
        let _ = writeln!(
            out,
            "<figure class=\"{class}\" data-kind=\"threshold\" id=\"{}\">{svg}<figcaption><b class=\"{class}\">{} {}</b>: <code>{}</code> {}{}</figcaption></figure>",
            anchor(&s.scenario, &v.threshold),
            escape(&v.threshold),
            if v.passed { "holds" } else { "FAILS" },
            escape(&v.figure),
            escape(&verdict_line(v)),
            v.why
                .as_deref()
                .map(|w| format!("<br><span class=\"why\">{}</span>", escape(w)))
                .unwrap_or_default(),
        );
    }
    if !s.metrics.is_empty() {
        out.push_str("<h3>Measurements</h3>\n");
    }
    for (name, m) in &s.metrics {
        let svg = plots::distribution(name, m)?;
        let sm = &m.summary;
        let ci = sm
            .ci95
            .as_ref()
            .map(|c| format!(", 95 % CI of the mean {:.4}..{:.4}", c.low, c.high))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "<figure data-kind=\"measurement\">{svg}<figcaption><b>{}</b> ({}): n {}, p50 {:.4}, p95 {:.4}{ci}; the box spans the middle half, the points are the samples{}</figcaption></figure>",
            escape(name),
            escape(&m.unit),
            sm.n,
            sm.p50,
            sm.p95,
            if m.samples.len() < sm.n {
                format!(" ({} of {}, evenly thinned)", m.samples.len(), sm.n)
            } else {
                String::new()
            },
        );
    }
    if !s.notes.is_empty() {
        out.push_str("<h3>Notes</h3><ul>");
        for n in &s.notes {
            let _ = write!(out, "<li>{}</li>", escape(n));
        }
        out.push_str("</ul>\n");
    }
    out.push_str("</section>\n");
    Ok(())
}

fn ab_section(out: &mut String, ab: &AbReport) -> Result<()> {
    let _ = writeln!(
        out,
        "<section class=\"ab\"><h2>A/B check: {}</h2><p>{} rounds, noise threshold {:.1} %, family-wise alpha {}, {:.0} % bootstrap intervals; {} regression(s).</p>",
        escape(&scenarios_of(ab)),
        ab.rounds,
        ab.threshold_pct,
        ab.alpha,
        ab.confidence * 100.0,
        ab.regressions().count(),
    );
    // The judged figures only: the shown ones are in ab.md's table.
    let mut figures: Vec<&super::AbFigure> =
        ab.figures.iter().filter(|f| f.test.is_some()).collect();
    figures.sort_by_key(|f| f.verdict != super::AbVerdict::Regression);
    for f in figures {
        let svg = plots::ab(f)?;
        let bad = f.verdict == super::AbVerdict::Regression;
        let _ = writeln!(
            out,
            "<figure class=\"{}\" data-kind=\"ab\">{svg}<figcaption><b>{}.{}</b> ({}): {:?}; change {}, interval {}, worse by at least {}, smallest detectable worsening {}</figcaption></figure>",
            if bad { "fail" } else { "pass" },
            escape(&f.scenario),
            escape(&f.figure),
            escape(&f.unit),
            f.verdict,
            f.change_pct.map_or("n/a".into(), |c| format!("{c:+.1} %")),
            f.interval_pct
                .map_or("n/a".into(), |[lo, hi]| format!("{lo:+.1} % .. {hi:+.1} %")),
            f.bound_pct.map_or("n/a".into(), |b| format!("{b:+.1} %")),
            f.min_detectable_pct
                .map_or("n/a (too few rounds)".into(), |m| format!("{m:.1} %")),
        );
    }
    out.push_str("</section>\n");
    Ok(())
}

/// The scenarios an A/B check covered, in order.
fn scenarios_of(ab: &AbReport) -> String {
    let mut names: Vec<&str> = ab.figures.iter().map(|f| f.scenario.as_str()).collect();
    names.dedup();
    names.join(", ")
}

/// `0.8456 <= 0.93 (margin 9.1 %)`.
fn verdict_line(v: &Verdict) -> String {
    format!(
        "{} {} {} {} (margin {:.1} %)",
        super::format_figure(v.actual),
        v.op,
        super::format_figure(v.limit),
        v.unit,
        v.margin * 100.0
    )
}

fn anchor(scenario: &str, threshold: &str) -> String {
    escape(&format!("{scenario}.{threshold}"))
}

/// Text made safe for HTML content and attribute values.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests;
