//! An A/B check as rows, a Markdown summary and a terminal table.

use super::{AbFigure, AbReport, AbVerdict};
use crate::report::{format_figure, layout_table, markdown_table};
use crate::stats::{percentile, wilcoxon_min_p};

/// The columns of [`ab_rows`].
pub const AB_HEADER: [&str; 10] = [
    "scenario",
    "figure",
    "baseline",
    "current",
    "change",
    "interval",
    "corrected p",
    "detectable",
    "verdict",
    "unit",
];

/// One row per figure, judged ones first, regressions at the top.
pub fn ab_rows(report: &AbReport) -> Vec<Vec<String>> {
    let mut figures: Vec<&AbFigure> = report.figures.iter().collect();
    let rank = |v: AbVerdict| match v {
        AbVerdict::Regression => 0,
        AbVerdict::Improvement => 1,
        AbVerdict::NoChange => 2,
        AbVerdict::NotJudged => 3,
    };
    figures.sort_by_key(|f| rank(f.verdict));
    let pct = |x: f64| {
        if x.abs() >= 1e4 {
            format!("{:+.0e}%", x)
        } else {
            format!("{x:+.1}%")
        }
    };
    figures
        .iter()
        .map(|f| {
            vec![
                f.scenario.clone(),
                f.figure.clone(),
                format_figure(median(&f.baseline)),
                format_figure(median(&f.current)),
                f.change_pct.map_or("n/a".into(), pct),
                f.interval_pct.map_or("n/a".into(), |[lo, hi]| {
                    format!("[{}, {}]", pct(lo), pct(hi))
                }),
                f.p_corrected
                    .map_or_else(|| format!("({:.2e})", f.p_value), |p| format!("{p:.2e}")),
                f.min_detectable_pct
                    .map_or("none".into(), |m| format!("±{m:.1}%")),
                match f.verdict {
                    AbVerdict::Regression if f.from_zero => "REGRESSION (from 0)".into(),
                    AbVerdict::Regression => "REGRESSION".into(),
                    AbVerdict::Improvement => "improvement".into(),
                    AbVerdict::NoChange => "no change".into(),
                    AbVerdict::NotJudged => "not judged".into(),
                },
                f.unit.clone(),
            ]
        })
        .collect()
}

fn median(xs: &[f64]) -> f64 {
    percentile("a figure over the rounds", xs, 0.5).unwrap_or(f64::NAN)
}

/// The check as Markdown, for a job summary or a PR comment.
pub fn ab_markdown(report: &AbReport, baseline: &str, current: &str) -> String {
    let regressions: Vec<&AbFigure> = report.regressions().collect();
    let headline = if regressions.is_empty() {
        "no regression".to_owned()
    } else {
        format!(
            "**{} regression{}**: {}",
            regressions.len(),
            if regressions.len() == 1 { "" } else { "s" },
            regressions
                .iter()
                .map(|f| format!("`{}.{}`", f.scenario, f.figure))
                .collect::<Vec<_>>()
                .join(", ")
        )
    };
    let reachable = wilcoxon_min_p(report.rounds) < report.alpha / report.judged.max(1) as f64;
    format!(
        "### tidepool ab: {current} against {baseline}\n\n{headline}\n\n\
         {rounds} interleaved rounds ({wall:.0} s); each round ran every scenario once with each build, the order drawn at random. \
         A figure regresses when the {conf:.0} % bootstrap interval of its change lies entirely beyond ±{t}% on its worse side \
         *and* its Wilcoxon signed-rank test is significant after Holm's correction across the {m} judged figures (p < {alpha}); \
         a counter the contract holds down that leaves 0 always regresses. \
         \"detectable\" is the smallest change this run could have caught (80 % power) at the noise it measured.{warn}\n\n{table}",
        rounds = report.rounds,
        wall = report.wall_s,
        conf = report.confidence * 100.0,
        t = report.threshold_pct,
        m = report.judged,
        alpha = report.alpha,
        warn = if reachable {
            String::new()
        } else {
            format!(
                "\n\n**{} rounds cannot reach significance over {} figures** (the smallest possible p is {:.2e}): only counters leaving 0 can be flagged. Raise the rounds.",
                report.rounds,
                report.judged,
                wilcoxon_min_p(report.rounds)
            )
        },
        table = markdown_table(&AB_HEADER, &ab_rows(report)),
    ) + &retried(report)
}

/// The runs that failed once and were run again, if any.
fn retried(report: &AbReport) -> String {
    if report.retried.is_empty() {
        return String::new();
    }
    format!(
        "\n\nRun again after a failure (the first error):\n{}\n",
        report
            .retried
            .iter()
            .map(|r| format!("- {r}"))
            .collect::<Vec<_>>()
            .join("\n")
    )
}

/// The check as a plain table for terminals.
pub fn ab_table(report: &AbReport) -> String {
    format!(
        "{} rounds, {} judged figures, threshold {}%, {:.0} s\n{}",
        report.rounds,
        report.judged,
        report.threshold_pct,
        report.wall_s,
        layout_table(&AB_HEADER, &ab_rows(report))
    )
}
