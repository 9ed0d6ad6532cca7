//! CSV out, through the `csv` crate: quoting is its business, not ours.

use tidepool::report::ScenarioReport;
use tidepool::Error;
use tidepool_pools::Error as PoolError;

fn failed(e: impl std::fmt::Display) -> Error {
    PoolError::Task {
        what: "writing CSV".into(),
        message: e.to_string(),
    }
    .into()
}

/// A header and rows as CSV.
pub(crate) fn rows(header: &[&str], rows: &[Vec<String>]) -> tidepool::Result<String> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(header).map_err(failed)?;
    for row in rows {
        w.write_record(row).map_err(failed)?;
    }
    finish(w)
}

/// Every measurement, counter, ratio and verdict of `reports`, one row each.
pub(crate) fn reports(reports: &[ScenarioReport]) -> tidepool::Result<String> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record([
        "scenario", "kind", "name", "unit", "n", "mean", "p50", "p95", "p99", "max", "value",
        "limit", "verdict",
    ])
    .map_err(failed)?;
    for r in reports {
        let s = &r.summary;
        let sc = s.scenario.as_str();
        for (name, m) in &s.metrics {
            let q = &m.summary;
            let stats = [q.mean, q.p50, q.p95, q.p99, q.max].map(|x| x.to_string());
            let mut row = vec![sc, "measurement", name, &m.unit];
            let n = q.n.to_string();
            row.push(&n);
            row.extend(stats.iter().map(String::as_str));
            row.extend(["", "", ""]);
            w.write_record(&row).map_err(failed)?;
        }
        for (name, v) in &s.counters {
            let v = v.to_string();
            w.write_record([
                sc, "counter", name, "count", "", "", "", "", "", "", &v, "", "",
            ])
            .map_err(failed)?;
        }
        for (name, v) in &s.ratios {
            let v = v.to_string();
            w.write_record([
                sc, "ratio", name, "ratio", "", "", "", "", "", "", &v, "", "",
            ])
            .map_err(failed)?;
        }
        for v in &r.verdicts {
            let (actual, limit) = (v.actual.to_string(), format!("{} {}", v.op, v.limit));
            let verdict = if v.passed { "pass" } else { "FAIL" };
            w.write_record([
                sc,
                "threshold",
                &v.threshold,
                &v.unit,
                "",
                "",
                "",
                "",
                "",
                "",
                &actual,
                &limit,
                verdict,
            ])
            .map_err(failed)?;
        }
    }
    finish(w)
}

fn finish(w: csv::Writer<Vec<u8>>) -> tidepool::Result<String> {
    let bytes = w.into_inner().map_err(failed)?;
    String::from_utf8(bytes).map_err(failed)
}
