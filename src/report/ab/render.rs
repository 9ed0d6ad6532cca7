//! An A/B check as rows, a Markdown summary and a terminal table.

use super::{AbFigure, AbReport, AbVerdict, Role, Test};
use crate::report::{format_figure, layout_table, markdown_table};
use crate::stats::percentile;

/// The columns of [`ab_rows`].
pub const AB_HEADER: [&str; 11] = [
    "scenario",
    "figure",
    "judged as",
    "baseline",
    "current",
    "change",
    "interval",
    "worse by at least",
    "corrected p",
    "detectable",
    "verdict",
];

/// One row per figure: regressions first, then the judged ones, then the
/// figures shown for reading.
pub fn ab_rows(report: &AbReport) -> Vec<Vec<String>> {
    let mut figures: Vec<&AbFigure> = report.figures.iter().collect();
    let rank = |v: AbVerdict| match v {
        AbVerdict::Regression => 0,
        AbVerdict::Improvement => 1,
        AbVerdict::NoChange => 2,
        AbVerdict::NotJudged => 3,
    };
    figures.sort_by_key(|f| (rank(f.verdict), f.role != Role::Contract));
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
            let judged_as = match (f.role, f.test) {
                (_, None) => f.note.clone().unwrap_or_else(|| "shown".into()),
                (Role::Contract, Some(Test::Events)) => "contract, limit breaches".into(),
                (Role::Contract, Some(Test::LogRatio)) => "contract".into(),
                (_, Some(_)) => "part, physical direction".into(),
            };
            vec![
                f.scenario.clone(),
                f.figure.clone(),
                judged_as,
                format!("{} {}", format_figure(median(&f.baseline)), f.unit),
                format!("{} {}", format_figure(median(&f.current)), f.unit),
                f.change_pct.map_or("n/a".into(), pct),
                match (f.events, f.interval_pct) {
                    (Some(e), _) => format!("breached in {} → {} rounds", e[0], e[1]),
                    (None, Some([lo, hi])) => format!("[{}, {}]", pct(lo), pct(hi)),
                    (None, None) => "n/a".into(),
                },
                f.bound_pct.map_or(String::new(), pct),
                f.p_corrected
                    .map_or_else(String::new, |p| format!("{p:.2e}")),
                match (f.test, f.min_detectable_pct) {
                    (Some(Test::LogRatio), Some(m)) => format!("{m:.1}%"),
                    (Some(Test::LogRatio), None) => "none".into(),
                    _ => String::new(),
                },
                match f.verdict {
                    AbVerdict::Regression => "REGRESSION".into(),
                    AbVerdict::Improvement => "improvement".into(),
                    AbVerdict::NoChange => "no change".into(),
                    AbVerdict::NotJudged => "not judged".into(),
                },
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
    let undecidable = report.undecidable_families();
    format!(
        "### tidepool ab: {current} against {baseline}\n\n{headline}\n\n\
         {rounds} interleaved rounds ({wall:.0} s); each round ran every scenario once with each build, the order drawn at random. \
         Judged: what the contract promises ({m} figures in {fams} families, one per scenario): each threshold's subject in the contract's direction, \
         the parts of its ratios and the statistics it names in their own direction (a time is worse up, a rate down). \
         A figure regresses when the exact one-sided signed-rank test of its per-round log ratios rejects \"worse by at most {t}%\" \
         after Holm's correction in its scenario (p < {alpha}); \"worse by at least\" is the same test inverted, so it exceeds {t}% exactly then. \
         A count or a band is judged by the rounds breaching its contract limit on one side only (exact McNemar). \
         \"detectable\" is the worsening this run flags with 80 % power at the noise it measured, simulated for the rule as implemented.{warn}\n\n{table}",
        rounds = report.rounds,
        wall = report.wall_s,
        m = report.judged,
        fams = report.families.len(),
        t = report.threshold_pct,
        alpha = report.alpha,
        warn = if undecidable.is_empty() {
            String::new()
        } else {
            format!(
                "\n\n**{} rounds cannot reach significance in {}** (the smallest possible p is {:.2e}): raise the rounds.",
                report.rounds,
                undecidable.join(", "),
                crate::stats::signed_rank_min_p(report.rounds)
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
        "{} rounds, {} judged figures in {} families, threshold {}%, {:.0} s\n{}",
        report.rounds,
        report.judged,
        report.families.len(),
        report.threshold_pct,
        report.wall_s,
        layout_table(&AB_HEADER, &ab_rows(report))
    )
}
