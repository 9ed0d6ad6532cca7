//! What the pools record as they work: event counters and latency logs,
//! written lock-free (counters) from many tasks and copied into each pool's
//! public `stats()` snapshot.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

/// A count of events, shared between the tasks that record them.
///
/// Relaxed ordering throughout: a snapshot reads each counter on its own and
/// promises no consistency between two of them.
#[derive(Debug, Default)]
pub(crate) struct Counter(AtomicU64);

impl Counter {
    /// One more event.
    pub(crate) fn incr(&self) {
        self.add(1);
    }

    /// `n` more events.
    pub(crate) fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }

    /// Raises the value to `v` if it is lower: a high-water mark.
    pub(crate) fn raise_to(&self, v: u64) {
        self.0.fetch_max(v, Ordering::Relaxed);
    }

    /// The value now.
    pub(crate) fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// The durations of one kind of operation (acquires, batches), in the order
/// they were recorded.
///
/// Unbounded for now: the suites read every sample. The library issue
/// replaces it with a bounded histogram; every pool records through this
/// one type so that change is made here once.
#[derive(Debug, Default)]
pub(crate) struct LatencyLog(Mutex<Vec<Duration>>);

impl LatencyLog {
    /// Records one duration.
    pub(crate) fn record(&self, d: Duration) {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).push(d);
    }

    /// Every duration so far, in milliseconds.
    pub(crate) fn millis(&self) -> Vec<f64> {
        self.map(|d| d.as_secs_f64() * 1e3)
    }

    /// Every duration so far, in microseconds.
    pub(crate) fn micros(&self) -> Vec<f64> {
        self.map(|d| d.as_secs_f64() * 1e6)
    }

    fn map(&self, f: impl Fn(&Duration) -> f64) -> Vec<f64> {
        let log = self.0.lock().unwrap_or_else(|p| p.into_inner());
        log.iter().map(f).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_counter_adds_and_keeps_its_high_water_mark() {
        let c = Counter::default();
        c.incr();
        c.add(4);
        assert_eq!(c.get(), 5);
        c.raise_to(3);
        assert_eq!(c.get(), 5);
        c.raise_to(9);
        assert_eq!(c.get(), 9);
    }

    #[test]
    fn a_latency_log_reads_back_in_either_unit() {
        let log = LatencyLog::default();
        log.record(Duration::from_micros(1500));
        assert_eq!(log.millis(), vec![1.5]);
        assert_eq!(log.micros(), vec![1500.0]);
    }
}
