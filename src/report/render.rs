use std::fmt::Write;

use super::MetricSummary;

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

fn verdict_rows(s: &MetricSummary) -> Vec<Vec<String>> {
    s.verdicts.iter().map(verdict_cells).collect()
}

const MEASUREMENT_HEADER: [&str; 8] = ["metric", "unit", "n", "mean", "p50", "p95", "p99", "max"];
const VERDICT_HEADER: [&str; 5] = ["threshold", "figure", "actual", "limit", "verdict"];

/// A plain-text table for terminals and CI logs.
pub fn to_table(s: &MetricSummary) -> String {
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
    if !s.verdicts.is_empty() {
        out += "\n";
        out += &layout_table(&VERDICT_HEADER, &verdict_rows(s));
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
pub fn to_markdown(s: &MetricSummary) -> String {
    let mut out = format!(
        "### {}\n\n{:?} run, {} iterations, commit {}, {} CPUs{}\n\n",
        s.scenario,
        s.depth,
        s.iterations,
        s.git_commit
            .as_deref()
            .map_or("unknown", |c| &c[..c.len().min(12)]),
        s.machine.cpus,
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
    if !s.verdicts.is_empty() {
        out += &markdown_table(&VERDICT_HEADER, &verdict_rows(s));
        out += "\n";
    }
    for note in &s.notes {
        let _ = writeln!(out, "> {note}");
    }
    out
}
