use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

use crate::recording::{gauge_add, Counter, LatencyHistogram, LatencySummary, Peak};

/// Why a browser left the pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
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
    /// A lifecycle hook failed or vetoed its reuse.
    Hook,
    /// The acquire taking it was cancelled midway (its future dropped).
    Cancelled,
    /// A remote slot closed on an endpoint holding more than its share, so
    /// that its replacement opens on one with room (see
    /// [`FleetPolicy`](super::FleetPolicy)).
    Rebalanced,
}

/// A snapshot of a browser pool: its counters and sizes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct BrowserPoolStats {
    /// Slots (leases at once) the pool holds at most (`max_size`); with
    /// `leases_per_browser` above 1, several slots share a browser.
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
    /// Retirements because a lifecycle hook failed or vetoed reuse.
    pub retired_hook: u64,
    /// Retirements of browsers whose acquire was cancelled midway.
    pub retired_cancelled: u64,
    /// Remote slots closed to move their endpoint's excess to another.
    pub retired_rebalanced: u64,
    /// Evictions for memory over the hard limit.
    pub memory_evictions: u64,
    /// Soft-limit warnings (one per crossing).
    pub soft_warnings: u64,
    /// The largest total PSS of the pool's browsers in one sample, bytes.
    pub peak_total_pss_bytes: u64,
    /// JavaScript dialogs (`alert`, `confirm`, `prompt`, `beforeunload`)
    /// the pool answered on leases' pages, which would have stalled them.
    pub dialogs_answered: u64,
    /// Popups (pages a lease's page opened with `window.open` or a
    /// `target=_blank` link) the pool closed as they opened
    /// ([`Popups::Close`](super::Popups::Close)).
    pub popups_closed: u64,
    /// Idle slots now, ready for a lease.
    pub idle: usize,
    /// Leased slots now.
    pub in_use: usize,
    /// Slots starting (their browser launching or connecting, or the slot
    /// opening), being probed or being readied after a lease, now.
    pub busy: usize,
    /// Acquire latency, from the call to the lease in hand, over the pool's
    /// life (a bounded histogram).
    pub acquire_latency: LatencySummary,
    /// Launch latency, from spawning (or connecting) to the first context
    /// ready, over the pool's life.
    pub launch_latency: LatencySummary,
}

#[derive(Debug)]
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
    retired_hook: Counter,
    retired_cancelled: Counter,
    retired_rebalanced: Counter,
    pub(crate) memory_evictions: Counter,
    pub(crate) soft_warnings: Counter,
    /// Shared with every page's dialog answerer.
    pub(crate) dialogs_answered: Arc<Counter>,
    /// Shared with every browser's popup closer.
    pub(crate) popups_closed: Arc<Counter>,
    pub(crate) peak_total_pss: Peak,
    /// The pool's total PSS as last added to the process-wide gauge.
    published_pss: AtomicU64,
    acquire_latency: LatencyHistogram,
    launch_latency: LatencyHistogram,
}

/// The name of the retirement counter family, labelled by `reason`.
const RETIRED: &str = "tidepool_browser_retirements_total";

impl Default for BrowserRecorder {
    fn default() -> BrowserRecorder {
        BrowserRecorder {
            launched: Counter::new("tidepool_browser_launches_total"),
            acquires: Counter::new("tidepool_browser_acquires_total"),
            acquire_waits: Counter::new("tidepool_browser_acquire_waits_total"),
            acquire_timeouts: Counter::new("tidepool_browser_acquire_timeouts_total"),
            budget_waits: Counter::new("tidepool_browser_budget_waits_total"),
            crashed: Counter::labelled(RETIRED, "reason", "crashed"),
            replaced: Counter::new("tidepool_browser_replacements_total"),
            retired_idle: Counter::labelled(RETIRED, "reason", "idle_timeout"),
            retired_lifetime: Counter::labelled(RETIRED, "reason", "lifetime"),
            retired_max_uses: Counter::labelled(RETIRED, "reason", "max_uses"),
            retired_unhealthy: Counter::labelled(RETIRED, "reason", "unhealthy"),
            retired_closed: Counter::labelled(RETIRED, "reason", "closed"),
            retired_hook: Counter::labelled(RETIRED, "reason", "hook"),
            retired_cancelled: Counter::labelled(RETIRED, "reason", "cancelled"),
            retired_rebalanced: Counter::labelled(RETIRED, "reason", "rebalanced"),
            memory_evictions: Counter::labelled(RETIRED, "reason", "memory"),
            soft_warnings: Counter::new("tidepool_browser_soft_warnings_total"),
            dialogs_answered: Arc::new(Counter::new("tidepool_browser_dialogs_answered_total")),
            popups_closed: Arc::new(Counter::new("tidepool_browser_popups_closed_total")),
            peak_total_pss: Peak::new("tidepool_browser_peak_total_pss_bytes"),
            published_pss: AtomicU64::new(0),
            acquire_latency: LatencyHistogram::new("tidepool_browser_acquire_seconds"),
            launch_latency: LatencyHistogram::new("tidepool_browser_launch_seconds"),
        }
    }
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
            RetireReason::Hook => &self.retired_hook,
            RetireReason::Cancelled => &self.retired_cancelled,
            RetireReason::Rebalanced => &self.retired_rebalanced,
        };
        counter.incr();
    }

    pub(crate) fn record_acquire(&self, d: Duration) {
        self.acquire_latency.record(d);
    }

    pub(crate) fn record_launch(&self, d: Duration) {
        self.launch_latency.record(d);
    }

    /// One memory sample: the pool's total PSS and each browser's exact
    /// figure. The total joins the process-wide gauge as a change, so the
    /// gauge sums the pools of a process.
    pub(crate) fn memory_sampled(&self, total: u64, browsers: impl Iterator<Item = u64>) {
        self.peak_total_pss.raise_to(total);
        let before = self.published_pss.swap(total, Ordering::Relaxed);
        gauge_add(
            "tidepool_browser_pss_bytes_total",
            total as f64 - before as f64,
        );
        for bytes in browsers {
            metrics::histogram!("tidepool_browser_pss_bytes").record(bytes as f64);
        }
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
            retired_hook: self.retired_hook.get(),
            retired_cancelled: self.retired_cancelled.get(),
            retired_rebalanced: self.retired_rebalanced.get(),
            memory_evictions: self.memory_evictions.get(),
            soft_warnings: self.soft_warnings.get(),
            peak_total_pss_bytes: self.peak_total_pss.get(),
            dialogs_answered: self.dialogs_answered.get(),
            popups_closed: self.popups_closed.get(),
            idle,
            in_use,
            busy,
            acquire_latency: self.acquire_latency.summary(),
            launch_latency: self.launch_latency.summary(),
        }
    }
}

impl Drop for BrowserRecorder {
    fn drop(&mut self) {
        // A closed pool's memory leaves the process-wide total.
        let last = *self.published_pss.get_mut();
        gauge_add("tidepool_browser_pss_bytes_total", -(last as f64));
    }
}
