use std::time::Duration;

use serde::Serialize;

use crate::recording::{Counter, LatencyLog};

/// Why a browser left the pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RetireReason {
    /// Idle longer than `idle_timeout` with more than `min_idle` idle.
    IdleTimeout,
    /// Older than `max_lifetime`.
    Lifetime,
    /// Served `max_uses` leases.
    MaxUses,
    /// Failed a health probe or could not be re-prepared.
    Unhealthy,
    /// Its process exited or its connection died.
    Crashed,
    /// Its memory passed the hard limit.
    Memory,
    /// The pool closed.
    Closed,
}

/// A snapshot of a browser pool: its counters and sizes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct BrowserPoolStats {
    /// Browsers the pool runs at most (`max_size`).
    pub max_size: usize,
    /// Browsers launched (or connected) and made ready.
    pub launched: u64,
    /// Leases handed out.
    pub acquires: u64,
    /// Acquires that found every slot leased and had to queue.
    pub acquire_waits: u64,
    /// Acquires that gave up after `acquire_timeout`.
    pub acquire_timeouts: u64,
    /// Acquires that waited for a browser although a slot was free, because
    /// the pool's memory budget was used up.
    pub budget_waits: u64,
    /// Browsers found crashed (process gone, connection lost).
    pub crashed: u64,
    /// Browsers launched by the maintainer to make up for a retired one.
    pub replaced: u64,
    /// Retirements for idleness.
    pub retired_idle: u64,
    /// Retirements for age.
    pub retired_lifetime: u64,
    /// Retirements for use count.
    pub retired_max_uses: u64,
    /// Retirements for failed probes or recycling.
    pub retired_unhealthy: u64,
    /// Retirements at close.
    pub retired_closed: u64,
    /// Evictions for memory over the hard limit.
    pub memory_evictions: u64,
    /// Soft-limit warnings (one per crossing).
    pub soft_warnings: u64,
    /// The largest total PSS of the pool's browsers in one sample, bytes.
    pub peak_total_pss_bytes: u64,
    /// Idle browsers now.
    pub idle: usize,
    /// Leased browsers now.
    pub in_use: usize,
    /// Browsers starting, being probed or being recycled now.
    pub busy: usize,
}

#[derive(Debug, Default)]
pub(crate) struct BrowserRecorder {
    pub(crate) launched: Counter,
    pub(crate) acquires: Counter,
    pub(crate) acquire_waits: Counter,
    pub(crate) acquire_timeouts: Counter,
    pub(crate) budget_waits: Counter,
    pub(crate) crashed: Counter,
    pub(crate) replaced: Counter,
    retired_idle: Counter,
    retired_lifetime: Counter,
    retired_max_uses: Counter,
    retired_unhealthy: Counter,
    retired_closed: Counter,
    pub(crate) memory_evictions: Counter,
    pub(crate) soft_warnings: Counter,
    pub(crate) peak_total_pss: Counter,
    acquire_latency: LatencyLog,
}

impl BrowserRecorder {
    pub(crate) fn retired(&self, reason: RetireReason) {
        let counter = match reason {
            RetireReason::IdleTimeout => &self.retired_idle,
            RetireReason::Lifetime => &self.retired_lifetime,
            RetireReason::MaxUses => &self.retired_max_uses,
            RetireReason::Unhealthy => &self.retired_unhealthy,
            RetireReason::Crashed => &self.crashed,
            RetireReason::Memory => &self.memory_evictions,
            RetireReason::Closed => &self.retired_closed,
        };
        counter.incr();
    }

    pub(crate) fn record_acquire(&self, d: Duration) {
        self.acquire_latency.record(d);
    }

    pub(crate) fn acquire_latencies_ms(&self) -> Vec<f64> {
        self.acquire_latency.millis()
    }

    pub(crate) fn snapshot(
        &self,
        max_size: usize,
        idle: usize,
        in_use: usize,
        busy: usize,
    ) -> BrowserPoolStats {
        BrowserPoolStats {
            max_size,
            launched: self.launched.get(),
            acquires: self.acquires.get(),
            acquire_waits: self.acquire_waits.get(),
            acquire_timeouts: self.acquire_timeouts.get(),
            budget_waits: self.budget_waits.get(),
            crashed: self.crashed.get(),
            replaced: self.replaced.get(),
            retired_idle: self.retired_idle.get(),
            retired_lifetime: self.retired_lifetime.get(),
            retired_max_uses: self.retired_max_uses.get(),
            retired_unhealthy: self.retired_unhealthy.get(),
            retired_closed: self.retired_closed.get(),
            memory_evictions: self.memory_evictions.get(),
            soft_warnings: self.soft_warnings.get(),
            peak_total_pss_bytes: self.peak_total_pss.get(),
            idle,
            in_use,
            busy,
        }
    }
}
