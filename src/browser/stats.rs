use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use serde::Serialize;

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
    pub(crate) launched: AtomicU64,
    pub(crate) acquires: AtomicU64,
    pub(crate) acquire_waits: AtomicU64,
    pub(crate) acquire_timeouts: AtomicU64,
    pub(crate) budget_waits: AtomicU64,
    pub(crate) crashed: AtomicU64,
    pub(crate) replaced: AtomicU64,
    retired_idle: AtomicU64,
    retired_lifetime: AtomicU64,
    retired_max_uses: AtomicU64,
    retired_unhealthy: AtomicU64,
    retired_closed: AtomicU64,
    pub(crate) memory_evictions: AtomicU64,
    pub(crate) soft_warnings: AtomicU64,
    pub(crate) peak_total_pss: AtomicU64,
    acquire_ms: Mutex<Vec<f64>>,
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
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn record_acquire(&self, d: Duration) {
        if let Ok(mut v) = self.acquire_ms.lock() {
            v.push(d.as_secs_f64() * 1e3);
        }
    }

    pub(crate) fn acquire_latencies_ms(&self) -> Vec<f64> {
        self.acquire_ms
            .lock()
            .map(|v| v.clone())
            .unwrap_or_default()
    }

    pub(crate) fn snapshot(
        &self,
        max_size: usize,
        idle: usize,
        in_use: usize,
        busy: usize,
    ) -> BrowserPoolStats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        BrowserPoolStats {
            max_size,
            launched: get(&self.launched),
            acquires: get(&self.acquires),
            acquire_waits: get(&self.acquire_waits),
            acquire_timeouts: get(&self.acquire_timeouts),
            budget_waits: get(&self.budget_waits),
            crashed: get(&self.crashed),
            replaced: get(&self.replaced),
            retired_idle: get(&self.retired_idle),
            retired_lifetime: get(&self.retired_lifetime),
            retired_max_uses: get(&self.retired_max_uses),
            retired_unhealthy: get(&self.retired_unhealthy),
            retired_closed: get(&self.retired_closed),
            memory_evictions: get(&self.memory_evictions),
            soft_warnings: get(&self.soft_warnings),
            peak_total_pss_bytes: get(&self.peak_total_pss),
            idle,
            in_use,
            busy,
        }
    }
}
