//! Adaptive timeouts against a fixed 30 s timeout and a per-key oracle, on the
//! same seeded latency trace, driven through the real fixture server.
//!
//! Three hosts: fast (log-normal, median 50 ms, sigma 0.5), slow (median
//! 800 ms, sigma 0.6), and one whose median shifts from 200 ms to 800 ms
//! halfway (sigma 0.5); 2 % of requests never answer (`/hang`). Every
//! estimator runs the trace, and so do the two baselines. Waiting costs real
//! time, so the policy runs use compressed time: every latency and bound is
//! multiplied by [`SCALE`] (figures are reported back at real scale). One short
//! run keeps real, unscaled waits.

use std::sync::Arc;
use std::time::{Duration, Instant};

use statrs::distribution::{ContinuousCDF, Normal};
use tokio::sync::Semaphore;

use super::{Control, Scenario, ScenarioFuture};
use crate::error::{Error, Result};
use crate::profile::RunProfile;
use crate::summary::MetricSummary;
use crate::summary::{FigureSpec, ScenarioSpec};
use crate::testkit::{get_once, FixtureServer, SeededRng};
use crate::timeout::{AdaptiveTimeouts, AdaptiveTimeoutsConfig, EstimatorKind};

mod figures;
mod policy;
mod workload;
use figures::*;
use policy::*;
use workload::*;

pub(super) const SCENARIO: Scenario = Scenario {
    spec: ScenarioSpec {
        name: "adaptive_timeout",
        description: "learned per-host timeouts vs a fixed 30 s timeout and a p99 oracle on a seeded latency trace",
        figures: &[
            FigureSpec::measurement("answered_ms", "ms"),
            FigureSpec::ratio("waste_default_s"),
            FigureSpec::ratio("waste_rfc6298_s"),
            FigureSpec::ratio("waste_spec_s"),
            FigureSpec::ratio("waste_fixed_s"),
            FigureSpec::ratio("waste_oracle_s"),
            FigureSpec::ratio("false_rate_default"),
            FigureSpec::ratio("false_rate_rfc6298"),
            FigureSpec::ratio("false_rate_spec"),
            FigureSpec::ratio("false_rate_fixed"),
            FigureSpec::ratio("false_rate_oracle"),
            FigureSpec::ratio("shift_false_rate_after_50"),
            FigureSpec::ratio("real_cutoff_ratio"),
            FigureSpec::counter("real_false_timeouts"),
            FigureSpec::counter("requests").scales(),
            FigureSpec::counter("hangs").scales(),
        ],
    },
    run: start,
    needs_browser: false,
    controls: CONTROLS,
};

fn start(profile: RunProfile) -> ScenarioFuture {
    Box::pin(run(profile, Variant::Honest))
}

/// The policy and client the run uses: the real ones, or a bad variant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Variant {
    Honest,
    /// The learned policy replaced by a fixed 30 s timeout.
    FixedTimeouts,
    /// Timeouts at the median of recent latencies, floor 10 ms.
    MedianTimeouts,
    /// A ceiling (1.5 s) below the shifted host's p99.
    LowCeiling,
    /// A client that retries a timed-out request once, inside the deadline's back.
    HiddenRetry,
    /// A deadline counted from when the request was queued, not sent.
    DeadlineFromQueue,
}

/// The negative controls.
const CONTROLS: &[Control] = &[
    Control {
        name: "fixed_timeouts",
        what: "the learned timeouts replaced by a fixed 30 s",
        rejects: &["waste_vs_fixed_30s", "waste_vs_oracle"],
        run: |p| Box::pin(run(p, Variant::FixedTimeouts)),
    },
    Control {
        name: "median_timeouts",
        what: "timeouts at the median of recent latencies (safety factor 1, floor 10 ms)",
        rejects: &["few_false_timeouts", "real_run_no_false_timeouts"],
        run: |p| Box::pin(run(p, Variant::MedianTimeouts)),
    },
    Control {
        name: "low_ceiling",
        what: "a timeout ceiling of 1.5 s, below the shifted host's p99 (2.6 s)",
        rejects: &["recovers_from_a_shift"],
        run: |p| Box::pin(run(p, Variant::LowCeiling)),
    },
    Control {
        name: "hidden_retry",
        what: "a client that retries a timed-out request once before giving up",
        rejects: &["real_cutoff_is_on_time"],
        run: |p| Box::pin(run(p, Variant::HiddenRetry)),
    },
    Control {
        name: "deadline_from_queue",
        what: "a deadline counted from when the request was queued, not from when it was sent",
        rejects: &["real_cutoff_not_early"],
        run: |p| Box::pin(run(p, Variant::DeadlineFromQueue)),
    },
];

impl Variant {
    /// The config of the learned ("default") policy.
    fn config(self) -> AdaptiveTimeoutsConfig {
        let defaults = AdaptiveTimeoutsConfig::default();
        match self {
            Variant::MedianTimeouts => AdaptiveTimeoutsConfig {
                estimator: EstimatorKind::Percentile {
                    quantile: 0.5,
                    window: 200,
                    safety_factor: 1.0,
                },
                min: Duration::from_millis(10),
                ..defaults
            },
            Variant::LowCeiling => AdaptiveTimeoutsConfig {
                max: Duration::from_millis(1500),
                default: Duration::from_millis(1500),
                ..defaults
            },
            _ => defaults,
        }
    }
}

async fn run(profile: RunProfile, variant: Variant) -> Result<MetricSummary> {
    let per_host = profile.scaled(MIN_PER_HOST, 1000).max(MIN_PER_HOST);
    let requests = trace(per_host, SEED);
    let server = FixtureServer::start().await?;
    let defaults = AdaptiveTimeoutsConfig::default();
    let learned = variant.config();
    let mut s = MetricSummary::new(SCENARIO.spec.name, profile);
    let scaled_trace = matches!(
        variant,
        Variant::Honest | Variant::FixedTimeouts | Variant::MedianTimeouts | Variant::LowCeiling
    );
    let real_run = matches!(
        variant,
        Variant::Honest
            | Variant::MedianTimeouts
            | Variant::HiddenRetry
            | Variant::DeadlineFromQueue
    );

    let clamp = |ms: f64| Duration::from_secs_f64(ms / 1e3).clamp(defaults.min, defaults.max);
    let oracle: Vec<Duration> = HOSTS
        .iter()
        .map(|h| clamp(true_p99_ms(h)).mul_f64(SCALE))
        .collect();
    let mut estimators = vec![("default", learned.estimator.clone())];
    if variant == Variant::Honest {
        estimators.push(("rfc6298", EstimatorKind::Rfc6298));
        estimators.push((
            "spec",
            EstimatorKind::Spec {
                window: 200,
                buffer_floor: 0.5,
            },
        ));
    }
    let mut policies: Vec<(&str, Policy)> = Vec::new();
    for (name, estimator) in estimators.into_iter().filter(|_| scaled_trace) {
        let policy = if variant == Variant::FixedTimeouts {
            Policy::Fixed(FIXED.mul_f64(SCALE))
        } else {
            let config = AdaptiveTimeoutsConfig {
                estimator,
                ..learned.clone()
            }
            .scaled(SCALE);
            Policy::Adaptive(AdaptiveTimeouts::new(config)?)
        };
        policies.push((name, policy));
    }
    if matches!(variant, Variant::Honest | Variant::FixedTimeouts) {
        policies.push(("fixed", Policy::Fixed(FIXED.mul_f64(SCALE))));
        policies.push(("oracle", Policy::PerHost(oracle.clone())));
    }
    let mut default_outcomes = Vec::new();
    for (name, policy) in &policies {
        let outcomes = run_policy(
            &server,
            &requests,
            policy,
            SCALE,
            CONCURRENCY,
            Variant::Honest,
        )
        .await?;
        record_policy(&mut s, name, &outcomes);
        if *name == "default" {
            default_outcomes = outcomes;
        }
    }

    if scaled_trace {
        let answered: Vec<f64> = default_outcomes
            .iter()
            .filter(|o| !o.timed_out)
            .map(|o| o.waited.as_secs_f64() * 1e3 / SCALE)
            .collect();
        s.measure("answered_ms", "ms", &answered)?;
        let shifting = HOSTS
            .iter()
            .position(|h| h.shifted_median_ms.is_some())
            .unwrap_or(2);
        let after_shift: Vec<&Outcome> = default_outcomes
            .iter()
            .filter(|o| o.request.host == shifting && o.request.seq >= per_host / 2 + 50)
            .collect();
        s.ratio(
            "shift_false_rate_after_50",
            after_shift.iter().filter(|o| o.false_timeout()).count() as f64
                / after_shift.len().max(1) as f64,
        );
        s.note(format!(
            "default estimator, false timeouts past warm-up: {}",
            false_breakdown(&default_outcomes, per_host)
        ));
        s.count("requests", requests.len() as u64);
        s.count(
            "hangs",
            requests.iter().filter(|r| r.latency_ms.is_none()).count() as u64,
        );
    }

    // Real, unscaled waits: the fast host past its warm-up, with one request
    // that never answers, under the default config.
    if real_run {
        let mut real = trace(60, SEED ^ 1)
            .into_iter()
            .filter(|r| r.host == 0)
            .map(|r| Request {
                latency_ms: Some(r.latency_ms.unwrap_or(50.0)),
                ..r
            })
            .collect::<Vec<_>>();
        if let Some(r) = real.get_mut(40) {
            r.latency_ms = None;
        }
        let policy = Policy::Adaptive(AdaptiveTimeouts::new(learned.clone())?);
        // One request in flight: the hung request is queued behind the one
        // before it for that one's whole latency, so a deadline counted from
        // the queue (the deadline_from_queue control) is always early. With
        // four in flight its wait was whatever remained of the slowest of
        // four, near zero in some runs, and that control passed.
        let outcomes = run_policy(&server, &real, &policy, 1.0, 1, variant).await?;
        let hung = outcomes.iter().find(|o| o.request.latency_ms.is_none());
        s.ratio(
            "real_cutoff_ratio",
            hung.map_or(f64::NAN, |o| {
                o.waited.as_secs_f64() / o.applied.as_secs_f64()
            }),
        );
        s.count(
            "real_false_timeouts",
            outcomes.iter().filter(|o| o.false_timeout()).count() as u64,
        );
    }
    server.shutdown().await;

    s.note(format!(
        "policy runs in compressed time: every latency and bound x{SCALE}; waste reported in real-scale seconds; {per_host} requests per host, {CONCURRENCY} in flight"
    ));
    s.note(format!(
        "oracle timeouts (true p99, clamped to 1 s..60 s): {}",
        HOSTS
            .iter()
            .zip(&oracle)
            .map(|(h, d)| format!("{} {:.0} ms", h.name, d.as_secs_f64() * 1e3 / SCALE))
            .collect::<Vec<_>>()
            .join(", ")
    ));
    s.note("one real-scale run: 60 fast-host requests with the default config, the 41st never answering");
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn true_p99_matches_the_closed_form_for_a_plain_log_normal() {
        let p99 = true_p99_ms(&HOSTS[0]);
        assert!(
            (p99 - 50.0 * (2.326_347_874 * 0.5_f64).exp()).abs() < 1e-6,
            "{p99}"
        );
        let mix = true_p99_ms(&HOSTS[2]);
        assert!(
            mix > true_p99_ms(&Host {
                shifted_median_ms: None,
                ..HOSTS[2]
            })
        );
    }

    #[test]
    fn the_trace_is_seeded_and_hangs_about_two_percent() {
        let a = trace(1000, SEED);
        let b = trace(1000, SEED);
        assert!(a.iter().zip(&b).all(|(x, y)| x.latency_ms == y.latency_ms));
        let hangs = a.iter().filter(|r| r.latency_ms.is_none()).count() as f64 / a.len() as f64;
        assert!((0.01..0.03).contains(&hangs), "{hangs}");
    }
}
