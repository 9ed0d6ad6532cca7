//! The report's plots, each an SVG string drawn by plotters.

use std::ops::Range;

use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::super::{AbFigure, FigureShift, Measurement};
use crate::contract::Verdict;
use crate::error::{Error, Result};

const WIDTH: u32 = 720;
const PASS: RGBColor = RGBColor(46, 125, 50);
const FAIL: RGBColor = RGBColor(198, 40, 40);
const BOX: RGBColor = RGBColor(66, 133, 244);
const FONT: (&str, u32) = ("sans-serif", 13);

/// A chart of every plot here: f64 on both axes, drawn into a string.
type Chart<'a, 'b> = ChartContext<'a, SVGBackend<'b>, Cartesian2d<RangedCoordf64, RangedCoordf64>>;
/// What plotters returns when drawing into a string fails.
type Drawing = std::result::Result<(), DrawingAreaErrorKind<std::io::Error>>;

/// The frame of a plot: its height, its ranges, and its axis captions. A
/// plot without a y caption has no y axis (a strip along x).
struct Frame<'t> {
    height: u32,
    x: Range<f64>,
    y: Range<f64>,
    x_desc: &'t str,
    y_desc: Option<&'t str>,
}

/// Draws `body` in `frame`, on white, and returns the SVG; a failure is an
/// error naming `what`.
fn plot(
    what: &str,
    frame: Frame<'_>,
    body: impl FnOnce(&mut Chart<'_, '_>) -> Drawing,
) -> Result<String> {
    let mut svg = String::new();
    let drawn = (|| -> Drawing {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, frame.height)).into_drawing_area();
        root.fill(&WHITE)?;
        let mut chart = ChartBuilder::on(&root)
            .margin(8)
            .x_label_area_size(30)
            .y_label_area_size(if frame.y_desc.is_some() { 60 } else { 0 })
            .build_cartesian_2d(frame.x, frame.y)?;
        let mut mesh = chart.configure_mesh();
        mesh.x_desc(frame.x_desc).label_style(FONT);
        match frame.y_desc {
            Some(desc) => mesh.y_desc(desc),
            None => mesh.disable_y_mesh().disable_y_axis(),
        };
        mesh.draw()?;
        body(&mut chart)?;
        root.present()
    })();
    drawn.map_err(|e| Error::Render {
        what: what.to_owned(),
        message: format!("{e:?}"),
    })?;
    Ok(svg)
}

/// A range around `values` with a margin, never empty.
fn span(values: impl IntoIterator<Item = f64>) -> Range<f64> {
    let (lo, hi) = values
        .into_iter()
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
            (lo.min(v), hi.max(v))
        });
    if !lo.is_finite() {
        return 0.0..1.0;
    }
    let pad = if hi > lo {
        (hi - lo) * 0.06
    } else {
        lo.abs().max(1.0) * 0.1
    };
    lo - pad..hi + pad
}

/// A deterministic spread of `i` over 0..1, so samples do not hide each other.
fn jitter(i: usize) -> f64 {
    (i as f64 * 0.618_033_988_75).fract()
}

/// A line from `a` to `b`.
fn line(a: (f64, f64), b: (f64, f64), style: ShapeStyle) -> PathElement<(f64, f64)> {
    PathElement::new(vec![a, b], style)
}

/// A measurement's distribution: the samples as points, the middle half as
/// a box, min to max as a whisker, the p50 as a thick line, the p95 and the
/// 95 % confidence interval of the mean marked.
pub(super) fn distribution(name: &str, m: &Measurement) -> Result<String> {
    let mut sorted: Vec<f64> = m
        .samples
        .iter()
        .copied()
        .filter(|v| v.is_finite())
        .collect();
    sorted.sort_by(f64::total_cmp);
    let quantile = |q: f64| -> f64 {
        if sorted.is_empty() {
            return m.summary.p50;
        }
        let pos = q * (sorted.len() - 1) as f64;
        let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
        sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo as f64)
    };
    let s = &m.summary;
    let (q1, q3) = (quantile(0.25), quantile(0.75));
    let mut extent = vec![s.min, s.max, s.p95];
    if let Some(ci) = &s.ci95 {
        extent.extend([ci.low, ci.high]);
    }
    let frame = Frame {
        height: 150,
        x: span(extent),
        y: 0.0..1.0,
        x_desc: &m.unit,
        y_desc: None,
    };
    plot(&format!("the distribution of {name}"), frame, |chart| {
        if let Some(ci) = &s.ci95 {
            chart.draw_series([Rectangle::new(
                [(ci.low, 0.0), (ci.high, 1.0)],
                BOX.mix(0.12).filled(),
            )])?;
        }
        chart.draw_series([line((s.min, 0.5), (s.max, 0.5), BLACK.stroke_width(1))])?;
        chart.draw_series([Rectangle::new(
            [(q1, 0.3), (q3, 0.7)],
            BOX.mix(0.35).filled(),
        )])?;
        chart.draw_series([
            line((s.p50, 0.22), (s.p50, 0.78), BLACK.stroke_width(3)),
            line((s.p95, 0.15), (s.p95, 0.85), FAIL.stroke_width(2)),
        ])?;
        chart.draw_series(
            m.samples
                .iter()
                .enumerate()
                .filter(|(_, v)| v.is_finite())
                .map(|(i, &v)| {
                    Circle::new((v, 0.1 + 0.8 * jitter(i)), 2, BLACK.mix(0.45).filled())
                }),
        )?;
        chart.draw_series([
            Text::new("p50", (s.p50, 0.92), FONT),
            Text::new("p95", (s.p95, 0.92), FONT.into_font().color(&FAIL)),
        ])?;
        Ok(())
    })
}

/// A threshold: the figure as a bar, coloured by verdict, against its limit
/// as a black line.
pub(super) fn threshold(v: &Verdict) -> Result<String> {
    let colour = if v.passed { PASS } else { FAIL };
    let x = span([0.0, v.actual, v.limit]);
    // The label reads away from the nearer edge, so it is never cut off.
    let toward = if v.limit > (x.start + x.end) / 2.0 {
        HPos::Right
    } else {
        HPos::Left
    };
    let frame = Frame {
        height: 90,
        x,
        y: 0.0..1.0,
        x_desc: "",
        y_desc: None,
    };
    plot(&format!("the threshold {}", v.threshold), frame, |chart| {
        chart.draw_series([Rectangle::new(
            [(0.0, 0.2), (v.actual, 0.6)],
            colour.filled(),
        )])?;
        chart.draw_series([line(
            (v.limit, 0.05),
            (v.limit, 0.75),
            BLACK.stroke_width(2),
        )])?;
        chart.draw_series([Text::new(
            format!(" limit {} {} ", v.op, crate::report::format_figure(v.limit)),
            (v.limit, 0.95),
            TextStyle::from(FONT).pos(Pos::new(toward, VPos::Top)),
        )])?;
        Ok(())
    })
}

/// An A/B figure: current / baseline in each round as points, 1.0 as a
/// line, the interval of the change as a band.
pub(super) fn ab(f: &AbFigure) -> Result<String> {
    let ratios = f.round_ratios();
    let points: Vec<(f64, f64)> = ratios
        .iter()
        .enumerate()
        .filter_map(|(i, r)| r.map(|r| ((i + 1) as f64, r)))
        .collect();
    let band = f
        .interval_pct
        .map(|[lo, hi]| (1.0 + lo / 100.0, 1.0 + hi / 100.0));
    let mut ys: Vec<f64> = points.iter().map(|p| p.1).chain([1.0]).collect();
    if let Some((lo, hi)) = band {
        ys.extend([lo, hi]);
    }
    let end = ratios.len().max(1) as f64 + 0.5;
    let frame = Frame {
        height: 180,
        x: 0.5..end,
        y: span(ys),
        x_desc: "round",
        y_desc: Some("current / baseline"),
    };
    plot(
        &format!("the A/B figure {}.{}", f.scenario, f.figure),
        frame,
        |chart| {
            if let Some((lo, hi)) = band {
                chart.draw_series([Rectangle::new(
                    [(0.5, lo), (end, hi)],
                    BOX.mix(0.15).filled(),
                )])?;
            }
            chart.draw_series([line((0.5, 1.0), (end, 1.0), BLACK.stroke_width(1))])?;
            chart.draw_series(points.iter().map(|&p| Circle::new(p, 3, BOX.filled())))?;
            Ok(())
        },
    )
}

/// A figure over a history's runs, with its change points as dashed lines
/// named by the commit after them.
pub(super) fn history(
    figure: &str,
    unit: &str,
    points: &[(usize, f64)],
    shifts: &[&FigureShift],
) -> Result<String> {
    let y = span(points.iter().map(|p| p.1));
    let last = points.iter().map(|p| p.0).max().unwrap_or(0) as f64;
    let frame = Frame {
        height: 180,
        x: -0.5..last + 0.5,
        y: y.clone(),
        x_desc: "run",
        y_desc: Some(unit),
    };
    plot(&format!("the history of {figure}"), frame, |chart| {
        let xy = |&(i, v): &(usize, f64)| (i as f64, v);
        chart.draw_series(LineSeries::new(points.iter().map(xy), BOX.stroke_width(2)))?;
        chart.draw_series(points.iter().map(|p| Circle::new(xy(p), 3, BOX.filled())))?;
        for shift in shifts {
            // Between the last run before the change and the first after it.
            let x = shift.run as f64 - 0.5;
            chart.draw_series(DashedLineSeries::new(
                vec![(x, y.start), (x, y.end)],
                6,
                4,
                FAIL.stroke_width(2),
            ))?;
            let commit: String = shift
                .commit
                .as_deref()
                .unwrap_or("?")
                .chars()
                .take(8)
                .collect();
            chart.draw_series([Text::new(
                commit,
                (x, y.end - (y.end - y.start) * 0.08),
                FONT.into_font().color(&FAIL),
            )])?;
        }
        Ok(())
    })
}
