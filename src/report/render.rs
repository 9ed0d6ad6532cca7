use std::fmt::Write;

use super::{Grade, ScenarioReport, ValidationResults};
use crate::summary::{format_figure, MetricSummary};

/// Lays out rows as a left-aligned, space-padded table with a rule under the header.
pub fn layout_table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let line = |cells: Vec<String>, out: &mut String| {
        let padded: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        let _ = writeln!(out, "{}", padded.join("  ").trim_end());
    };
    line(header.iter().map(|h| h.to_string()).collect(), &mut out);
    line(widths.iter().map(|w| "-".repeat(*w)).collect(), &mut out);
    for row in rows {
        line(row.clone(), &mut out);
    }
    out
}

fn measurement_rows(s: &MetricSummary) -> Vec<Vec<String>> {
    s.metrics
        .iter()
        .map(|(name, m)| {
            let q = &m.summary;
            vec![
                name.clone(),
                m.unit.clone(),
                q.n.to_string(),
                format_figure(q.mean),
                format_figure(q.p50),
                format_figure(q.p95),
                format_figure(q.p99),
                format_figure(q.max),
            ]
        })
        .collect()
}

/// One verdict as table cells: threshold, figure, actual, limit, verdict
/// (the columns of every verdict table, in the reports and the CLI alike).
pub fn verdict_cells(v: &crate::contract::Verdict) -> Vec<String> {
    vec![
        v.threshold.clone(),
        v.figure.clone(),
        format_figure(v.actual),
        format!("{} {}", v.op, format_figure(v.limit)),
        if v.passed { "pass" } else { "FAIL" }.into(),
    ]
}

fn verdict_rows(r: &ScenarioReport) -> Vec<Vec<String>> {
    r.verdicts.iter().map(verdict_cells).collect()
}

const MEASUREMENT_HEADER: [&str; 8] = ["metric", "unit", "n", "mean", "p50", "p95", "p99", "max"];
const VERDICT_HEADER: [&str; 5] = ["threshold", "figure", "actual", "limit", "verdict"];

/// A plain-text table for terminals and CI logs.
pub fn to_table(r: &ScenarioReport) -> String {
    let s = &r.summary;
    let mut out = format!(
        "scenario {} ({:?}, {} iterations{})\n",
        s.scenario,
        s.depth,
        s.iterations,
        if s.complete { "" } else { ", INCOMPLETE" }
    );
    if !s.metrics.is_empty() {
        out += &layout_table(&MEASUREMENT_HEADER, &measurement_rows(s));
    }
    let scalars: Vec<Vec<String>> = s
        .counters
        .iter()
        .map(|(k, v)| vec![k.clone(), v.to_string()])
        .chain(
            s.ratios
                .iter()
                .map(|(k, v)| vec![k.clone(), format_figure(*v)]),
        )
        .collect();
    if !scalars.is_empty() {
        out += "\n";
        out += &layout_table(&["figure", "value"], &scalars);
    }
    if !r.verdicts.is_empty() {
        out += "\n";
        out += &layout_table(&VERDICT_HEADER, &verdict_rows(r));
    }
    for note in &s.notes {
        let _ = writeln!(out, "note: {note}");
    }
    out
}

/// Rows as a Markdown table.
pub fn markdown_table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut out = format!(
        "| {} |\n|{}\n",
        header.join(" | "),
        "---|".repeat(header.len())
    );
    for row in rows {
        let _ = writeln!(out, "| {} |", row.join(" | "));
    }
    out
}

/// Markdown, suitable for a pull-request comment.
pub fn to_markdown(r: &ScenarioReport) -> String {
    let s = &r.summary;
    let mut out = format!(
        "### {}\n\n{:?} run, {} iterations, commit {}, {} CPUs, build: {}{}\n\n",
        s.scenario,
        s.depth,
        s.iterations,
        s.git_commit
            .as_deref()
            .map_or("unknown", |c| &c[..c.len().min(12)]),
        s.machine.cpus,
        s.machine.build.as_deref().unwrap_or("unknown"),
        if s.complete {
            ""
        } else {
            " — **incomplete**"
        }
    );
    if !s.metrics.is_empty() {
        out += &markdown_table(&MEASUREMENT_HEADER, &measurement_rows(s));
        out += "\n";
    }
    if !s.counters.is_empty() || !s.ratios.is_empty() {
        let rows: Vec<Vec<String>> = s
            .counters
            .iter()
            .map(|(k, v)| vec![format!("`{k}`"), v.to_string()])
            .chain(
                s.ratios
                    .iter()
                    .map(|(k, v)| vec![format!("`{k}`"), format_figure(*v)]),
            )
            .collect();
        out += &markdown_table(&["figure", "value"], &rows);
        out += "\n";
    }
    if !r.verdicts.is_empty() {
        out += &markdown_table(&VERDICT_HEADER, &verdict_rows(r));
        out += "\n";
    }
    for note in &s.notes {
        let _ = writeln!(out, "> {note}");
    }
    out
}

/// The columns of [`results_rows`].
pub const RESULTS_HEADER: [&str; 8] = [
    "scenario",
    "threshold",
    "metric",
    "value",
    "limit",
    "verdict",
    "margin",
    "grade",
];

/// One row per threshold of every scenario of a `validate` run: its verdict
/// cells, its margin and its scenario's grade.
pub fn results_rows(results: &ValidationResults) -> Vec<Vec<String>> {
    results
        .scenarios
        .iter()
        .flat_map(|r| {
            let scenario = &r.summary.scenario;
            let grade = results.grades.get(scenario).copied().unwrap_or(Grade::Poor);
            r.verdicts.iter().map(move |v| {
                let mut row = vec![scenario.clone()];
                row.extend(verdict_cells(v));
                row.push(if v.limit == 0.0 {
                    "-".into()
                } else {
                    format!("{:+.1}%", v.margin * 100.0)
                });
                row.push(format!("{grade:?}"));
                row
            })
        })
        .collect()
}

/// A `validate` run as a plain-text table.
pub fn results_table(results: &ValidationResults) -> String {
    let mut out = layout_table(&RESULTS_HEADER, &results_rows(results));
    if !results.complete {
        out += "INCOMPLETE: the run was interrupted\n";
    }
    out
}

/// A `validate` run as Markdown: the verdicts, then each scenario's report.
pub fn results_markdown(results: &ValidationResults) -> String {
    let mut out = String::from("## tidepool performance contract\n\n");
    if !results.complete {
        out += "**Incomplete: the run was interrupted.**\n\n";
    }
    out += &markdown_table(&RESULTS_HEADER, &results_rows(results));
    for r in &results.scenarios {
        out += "\n";
        out += &to_markdown(r);
    }
    out
}
