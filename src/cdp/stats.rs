//! The session pool's counters: a private recorder the pool and its batches
//! write, and the public snapshot ([`SessionPoolStats`]) read from it.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use serde::Serialize;

/// A snapshot of a session pool: its counters and its size.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[non_exhaustive]
pub struct SessionPoolStats {
    /// Sessions the pool keeps at most (`max_sessions`).
    pub max_sessions: usize,
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
pub(crate) struct SessionRecorder {
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

impl SessionRecorder {
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

impl SessionRecorder {
    /// The counters so far, for a pool of `max_sessions`.
    pub(crate) fn snapshot(&self, max_sessions: usize) -> SessionPoolStats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        SessionPoolStats {
            max_sessions,
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
