//! The session pool's counters: a private recorder the pool and its batches
//! write, and the public snapshot read from it.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use serde::Serialize;

/// Counters of a session pool.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct SessionCounts {
    /// Page sessions created (target created, attached, domains enabled).
    pub created: u64,
    /// Acquisitions served by an existing session.
    pub reused: u64,
    /// Resets between uses.
    pub resets: u64,
    /// Sessions closed for idleness or age.
    pub expired: u64,
    /// Sessions thrown away: failed probe, failed reset, crashed or detached target.
    pub discarded: u64,
    /// Commands sent through batches.
    pub batched_commands: u64,
    /// Batches sent.
    pub batches: u64,
    /// Round trips the batches waited through, counted from send and reply
    /// times (a pipelined batch waits once).
    pub batch_waits: u64,
}

#[derive(Debug, Default)]
pub(crate) struct SessionStats {
    pub(super) created: AtomicU64,
    pub(super) reused: AtomicU64,
    pub(super) resets: AtomicU64,
    pub(super) expired: AtomicU64,
    pub(super) discarded: AtomicU64,
    batched_commands: AtomicU64,
    batches: AtomicU64,
    waits: AtomicU64,
    batch_ms: Mutex<Vec<f64>>,
}

impl SessionStats {
    pub(crate) fn record_batch(&self, commands: usize, waits: u64, took: Duration) {
        self.batches.fetch_add(1, Ordering::Relaxed);
        self.waits.fetch_add(waits, Ordering::Relaxed);
        self.batched_commands
            .fetch_add(commands as u64, Ordering::Relaxed);
        if let Ok(mut v) = self.batch_ms.lock() {
            v.push(millis(took));
        }
    }
}

impl SessionStats {
    /// The counters so far.
    pub(crate) fn snapshot(&self) -> SessionCounts {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        SessionCounts {
            created: get(&self.created),
            reused: get(&self.reused),
            resets: get(&self.resets),
            expired: get(&self.expired),
            discarded: get(&self.discarded),
            batched_commands: get(&self.batched_commands),
            batches: get(&self.batches),
            batch_waits: get(&self.waits),
        }
    }

    /// Wall times of the batches sent so far, ms.
    pub(crate) fn batch_ms(&self) -> Vec<f64> {
        self.batch_ms.lock().map(|v| v.clone()).unwrap_or_default()
    }
}

/// A duration in milliseconds.
pub(crate) fn millis(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}
