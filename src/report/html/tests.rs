use super::*;
use crate::contract::Op;
use crate::profile::{Depth, RunProfile};

fn verdict(name: &str, actual: f64, limit: f64, passed: bool) -> Verdict {
    Verdict {
        threshold: name.into(),
        figure: "warm_ms.p50 / cold_ms.p50".into(),
        actual,
        op: Op::AtMost,
        limit,
        unit: "ratio".into(),
        margin: (limit - actual) / limit,
        passed,
        why: Some("warm beats <cold>".into()),
    }
}

fn report(scenario: &str, verdicts: Vec<Verdict>) -> ScenarioReport {
    let mut s = MetricSummary::new(scenario, RunProfile::new(Depth::Quick, None));
    s.measure("warm_ms", "ms", &[10.0, 11.0, 12.5, 10.4, 30.0])
        .unwrap();
    s.measure("cold_ms", "ms", &[100.0, 120.0, 110.0]).unwrap();
    ScenarioReport::new(s, verdicts)
}

fn count(html: &str, needle: &str) -> usize {
    html.matches(needle).count()
}

#[test]
fn one_plot_per_measurement_and_per_threshold_and_nothing_to_fetch() {
    let reports = vec![
        report("alpha", vec![verdict("fast", 0.1, 0.5, true)]),
        report(
            "beta",
            vec![
                verdict("fast", 0.1, 0.5, true),
                verdict("faster", 0.1, 0.5, true),
            ],
        ),
    ];
    let html = HtmlReport::new(&reports).render().unwrap();
    assert_eq!(count(&html, "data-kind=\"measurement\"><svg"), 4);
    assert_eq!(count(&html, "data-kind=\"threshold\" id="), 3);
    assert_eq!(count(&html, "<svg"), 7);
    for forbidden in ["<script", "<link", "src=", "@import", "url("] {
        assert!(!html.contains(forbidden), "{forbidden} in the page");
    }
    assert!(html.contains("Every threshold holds."));
}

#[test]
fn a_failed_threshold_comes_first_in_the_failing_colour() {
    let reports = vec![
        report("alpha", vec![verdict("fine", 0.1, 0.5, true)]),
        report(
            "zulu",
            vec![
                verdict("fine", 0.1, 0.5, true),
                verdict("broken", 0.9, 0.5, false),
            ],
        ),
    ];
    let html = HtmlReport::new(&reports).render().unwrap();
    let failed_list = html.find("1 failed threshold").expect("the failed list");
    let first_scenario = html.find("<section class=\"scenario\"").unwrap();
    assert!(failed_list < first_scenario);
    // The failing scenario's section comes before the passing one, and its
    // failing threshold before its passing one.
    assert!(html.find("id=\"zulu\"").unwrap() < html.find("id=\"alpha\"").unwrap());
    let broken = html.find("id=\"zulu.broken\"").unwrap();
    assert!(broken < html.find("id=\"zulu.fine\"").unwrap());
    assert!(html[..broken].ends_with("class=\"fail\" data-kind=\"threshold\" "));
    // The failing bar is drawn in the failing colour.
    let bar = &html[broken..html[broken..].find("</figure>").unwrap() + broken];
    assert!(bar.contains("#C62828"), "{bar}");
}

#[test]
fn text_from_reports_is_escaped() {
    let reports = vec![report("a<b>", vec![verdict("t\"x", 0.1, 0.5, true)])];
    let html = HtmlReport::new(&reports).render().unwrap();
    assert!(html.contains("a&lt;b&gt;") && html.contains("warm beats &lt;cold&gt;"));
    assert!(!html.contains("id=\"a<b>\""));
}

#[test]
fn an_ab_check_plots_each_figure_with_its_interval_and_a_history_names_its_change_points() {
    use crate::report::{AbFigure, AbVerdict, Direction, Role, Test};
    use crate::stats::ChangePointOptions;

    let figure = |name: &str, verdict| AbFigure {
        scenario: "alpha".into(),
        figure: name.into(),
        thresholds: Vec::new(),
        role: Role::Contract,
        unit: "ms".into(),
        direction: Direction::UpIsWorse,
        test: Some(Test::LogRatio),
        baseline: vec![10.0; 6],
        current: vec![12.0; 6],
        events: None,
        change_pct: Some(20.0),
        interval_pct: Some([15.0, 25.0]),
        bound_pct: Some(12.0),
        p_value: 0.03,
        p_corrected: Some(0.03),
        min_detectable_pct: Some(4.5),
        note: None,
        cleared: false,
        verdict,
    };
    let ab = AbReport {
        rounds: 6,
        threshold_pct: 5.0,
        alpha: 0.05,
        confidence: 0.95,
        judged: 2,
        families: [("alpha".to_owned(), 2)].into_iter().collect(),
        seed: 1,
        figures: vec![
            figure("steady_ms.p50", AbVerdict::NoChange),
            figure("page_ms.p50", AbVerdict::Regression),
        ],
        order: Vec::new(),
        wall_s: 1.0,
        retried: Vec::new(),
    };
    let runs = crate::report::history::step_history();
    let shifts = crate::report::history_shifts(&runs, &ChangePointOptions::default());
    let html = HtmlReport::new(&[])
        .with_ab(&ab)
        .with_history(&runs, &shifts)
        .render()
        .unwrap();
    assert_eq!(count(&html, "data-kind=\"ab\"><svg"), 2);
    // The regression leads, with its interval and smallest detectable change.
    let regression = html.find("alpha.page_ms.p50").unwrap();
    assert!(regression < html.find("alpha.steady_ms.p50").unwrap());
    assert!(html[regression..]
        .contains("interval +15.0 % .. +25.0 %, worse by at least +12.0 %, smallest detectable worsening 4.5 %"));
    // One plot per figure of the history: page_ms.p50 and the crashes counter.
    assert_eq!(count(&html, "data-kind=\"history\"><svg"), 2);
    assert!(
        html.contains("moved +") && html.contains("(c9)"),
        "the change point names the commit after it"
    );
    let caption = html.find("<b>demo.page_ms.p50</b>").unwrap();
    let plot = &html[html[..caption].rfind("<svg").unwrap()..caption];
    assert!(plot.contains("c9"), "and the plot labels it");
}
