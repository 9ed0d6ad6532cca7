//! How one policy's outcomes go into the report.

use super::*;

/// Puts one policy's waste, false-timeout rate and waste breakdown in `s`.
pub(super) fn record_policy(s: &mut MetricSummary, name: &str, outcomes: &[Outcome]) {
    s.ratio(&format!("waste_{name}_s"), waste_s(outcomes, SCALE));
    s.ratio(&format!("false_rate_{name}"), false_rate(outcomes));
    s.note(format!(
        "{name}: waste by host {}",
        waste_breakdown(outcomes)
    ));
}

/// Where the waste fell: per host, real-scale seconds on requests that never
/// answer (and the longest such wait) and on requests cut off although they
/// would have answered.
pub(super) fn waste_breakdown(outcomes: &[Outcome]) -> String {
    HOSTS
        .iter()
        .enumerate()
        .map(|(i, h)| {
            let waits = |hung: bool| -> Vec<f64> {
                outcomes
                    .iter()
                    .filter(|o| o.request.host == i && o.timed_out)
                    .filter(|o| o.request.latency_ms.is_none() == hung)
                    .map(|o| o.waited.as_secs_f64() / SCALE)
                    .collect()
            };
            let (hangs, cut) = (waits(true), waits(false));
            let total = |v: &[f64]| v.iter().fold(0.0, |a, b| a + b);
            format!(
                "{} {:.1} s on {} hangs (longest {:.1} s) + {:.1} s on {} false timeouts",
                h.name,
                total(&hangs),
                hangs.len(),
                hangs.iter().copied().fold(0.0, f64::max),
                total(&cut),
                cut.len()
            )
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// Where the false timeouts fell: per host, and for the shifting host how many
/// in the 50 requests after its shift.
pub(super) fn false_breakdown(outcomes: &[Outcome], per_host: usize) -> String {
    HOSTS
        .iter()
        .enumerate()
        .map(|(i, h)| {
            let mine = outcomes
                .iter()
                .filter(|o| o.request.host == i && o.request.seq >= WARMUP && o.false_timeout());
            let n = mine.clone().count();
            match h.shifted_median_ms {
                Some(_) => {
                    let shift = per_host / 2;
                    let near = mine
                        .filter(|o| (shift..shift + 50).contains(&o.request.seq))
                        .count();
                    format!("{} {n} ({near} of them in the 50 after the shift)", h.name)
                }
                None => format!("{} {n}", h.name),
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}
