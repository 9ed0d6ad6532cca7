//! What the pools record as they work: event counters and latency histograms,
//! written from many tasks, copied into each pool's public `stats()` snapshot
//! and reported through the [`metrics`] facade.
//!
//! Everything here is bounded: a pool that serves leases for months keeps a
//! fixed number of counters and one fixed-size histogram per kind of
//! operation. The raw samples a contract judges are timed by the scenario
//! that drives the pool, never kept by the pool.
//!
//! The metric names, their kinds and labels are listed on
//! [`crate::metrics_catalog`].

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;

/// A count of events, shared between the tasks that record them, and
/// reported as the counter `name` (with an optional label) when a
/// [`metrics`] recorder is installed.
///
/// Relaxed ordering throughout: a snapshot reads each counter on its own and
/// promises no consistency between two of them.
#[derive(Debug)]
pub(crate) struct Counter {
    value: AtomicU64,
    name: &'static str,
    label: Option<(&'static str, &'static str)>,
}

impl Counter {
    /// A counter reported as `name`.
    pub(crate) const fn new(name: &'static str) -> Counter {
        Counter {
            value: AtomicU64::new(0),
            name,
            label: None,
        }
    }

    /// A counter reported as `name{key="value"}`: one series of a family
    /// (retirements by reason, serves by tier).
    pub(crate) const fn labelled(
        name: &'static str,
        key: &'static str,
        value: &'static str,
    ) -> Counter {
        Counter {
            value: AtomicU64::new(0),
            name,
            label: Some((key, value)),
        }
    }

    /// One more event.
    pub(crate) fn incr(&self) {
        self.add(1);
    }

    /// `n` more events.
    pub(crate) fn add(&self, n: u64) {
        self.value.fetch_add(n, Ordering::Relaxed);
        match self.label {
            Some((key, value)) => metrics::counter!(self.name, key => value).increment(n),
            None => metrics::counter!(self.name).increment(n),
        }
    }

    /// The value now.
    pub(crate) fn get(&self) -> u64 {
        self.value.load(Ordering::Relaxed)
    }
}

/// A high-water mark, reported as the gauge `name`.
#[derive(Debug)]
pub(crate) struct Peak {
    value: AtomicU64,
    name: &'static str,
}

impl Peak {
    /// A high-water mark reported as `name`.
    pub(crate) const fn new(name: &'static str) -> Peak {
        Peak {
            value: AtomicU64::new(0),
            name,
        }
    }

    /// Raises the mark to `v` if it is lower.
    pub(crate) fn raise_to(&self, v: u64) {
        let before = self.value.fetch_max(v, Ordering::Relaxed);
        if v > before {
            metrics::gauge!(self.name).set(v as f64);
        }
    }

    /// The mark now.
    pub(crate) fn get(&self) -> u64 {
        self.value.load(Ordering::Relaxed)
    }
}

/// Moves the gauge `name` by `delta`. Pools publish their sizes as changes,
/// never as absolute values, so that a gauge sums every pool of the process.
pub(crate) fn gauge_add(name: &'static str, delta: f64) {
    if delta != 0.0 {
        metrics::gauge!(name).increment(delta);
    }
}

/// The longest duration a histogram resolves, in microseconds (one hour);
/// longer ones are recorded as one hour.
const MAX_MICROS: u64 = 3_600_000_000;

/// The distribution of one kind of operation's durations (acquires,
/// launches, batches), in constant memory: an HDR histogram of microseconds
/// from 1 µs to an hour at three significant digits (about 30 KiB), and the
/// histogram `name` in seconds for a [`metrics`] recorder.
#[derive(Debug)]
pub(crate) struct LatencyHistogram {
    histogram: Mutex<Histogram<u64>>,
    name: &'static str,
    label: Option<(&'static str, &'static str)>,
}

impl LatencyHistogram {
    /// A histogram reported as `name`.
    pub(crate) fn new(name: &'static str) -> LatencyHistogram {
        LatencyHistogram {
            histogram: Mutex::new(empty_histogram()),
            name,
            label: None,
        }
    }

    /// A histogram reported as `name{key="value"}`.
    #[cfg_attr(not(feature = "wasm"), allow(dead_code))]
    pub(crate) fn labelled(
        name: &'static str,
        key: &'static str,
        value: &'static str,
    ) -> LatencyHistogram {
        LatencyHistogram {
            label: Some((key, value)),
            ..LatencyHistogram::new(name)
        }
    }

    /// Records one duration. The lock is held for one bucket increment, never
    /// across an allocation: the histogram's buckets are all allocated up
    /// front.
    pub(crate) fn record(&self, d: Duration) {
        let micros = u64::try_from(d.as_micros()).unwrap_or(MAX_MICROS);
        self.histogram
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .saturating_record(micros.clamp(1, MAX_MICROS));
        match self.label {
            Some((key, value)) => {
                metrics::histogram!(self.name, key => value).record(d.as_secs_f64())
            }
            None => metrics::histogram!(self.name).record(d.as_secs_f64()),
        }
    }

    /// The distribution so far.
    pub(crate) fn summary(&self) -> LatencySummary {
        let h = self.histogram.lock().unwrap_or_else(|p| p.into_inner());
        LatencySummary::of(&h)
    }
}

fn empty_histogram() -> Histogram<u64> {
    match Histogram::new_with_bounds(1, MAX_MICROS, 3) {
        Ok(h) => h,
        // Constant bounds, checked by the tests below: never taken.
        Err(e) => unreachable!("1 us .. 1 h at 3 digits is a valid histogram: {e:?}"),
    }
}

/// A latency distribution as a pool's `stats()` reports it: percentiles read
/// from a bounded histogram (three significant digits), in milliseconds.
///
/// ```
/// # async fn demo(pool: &tidepool_pools::browser::BrowserPool) {
/// let acquire = pool.stats().acquire_latency;
/// println!("{} acquires, p95 {:.1} ms", acquire.count, acquire.p95_ms);
/// # }
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
#[non_exhaustive]
pub struct LatencySummary {
    /// Durations recorded.
    pub count: u64,
    /// Their mean, ms.
    pub mean_ms: f64,
    /// The median, ms.
    pub p50_ms: f64,
    /// The 95th percentile, ms.
    pub p95_ms: f64,
    /// The 99th percentile, ms.
    pub p99_ms: f64,
    /// The longest, ms.
    pub max_ms: f64,
}

impl LatencySummary {
    fn of(h: &Histogram<u64>) -> LatencySummary {
        let ms = |us: u64| us as f64 / 1e3;
        if h.is_empty() {
            return LatencySummary::default();
        }
        LatencySummary {
            count: h.len(),
            mean_ms: h.mean() / 1e3,
            p50_ms: ms(h.value_at_quantile(0.50)),
            p95_ms: ms(h.value_at_quantile(0.95)),
            p99_ms: ms(h.value_at_quantile(0.99)),
            max_ms: ms(h.max()),
        }
    }
}

// `Eq` for the stats snapshots that derive it: the figures are never NaN.
impl Eq for LatencySummary {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_counter_adds_and_a_peak_keeps_its_high_water_mark() {
        let c = Counter::new("test_events_total");
        c.incr();
        c.add(4);
        assert_eq!(c.get(), 5);
        let p = Peak::new("test_peak");
        p.raise_to(9);
        p.raise_to(3);
        assert_eq!(p.get(), 9);
    }

    #[test]
    fn a_histogram_reads_percentiles_within_its_precision() {
        let h = LatencyHistogram::new("test_seconds");
        assert_eq!(h.summary(), LatencySummary::default());
        for us in 1..=1000u64 {
            h.record(Duration::from_micros(us * 10));
        }
        let s = h.summary();
        assert_eq!(s.count, 1000);
        // Three significant digits: within 0.1 % of the exact figures.
        for (got, want) in [
            (s.p50_ms, 5.0),
            (s.p95_ms, 9.5),
            (s.p99_ms, 9.9),
            (s.max_ms, 10.0),
        ] {
            assert!((got - want).abs() <= want * 1e-3, "{got} vs {want}");
        }
        assert!((s.mean_ms - 5.005).abs() < 0.01, "{}", s.mean_ms);
    }

    #[test]
    fn a_duration_out_of_range_is_clamped_not_lost() {
        let h = LatencyHistogram::new("test_seconds");
        h.record(Duration::ZERO);
        h.record(Duration::from_secs(10 * 3600));
        let s = h.summary();
        assert_eq!(s.count, 2);
        assert!(s.max_ms >= 3_599_000.0, "{}", s.max_ms);
    }
}
