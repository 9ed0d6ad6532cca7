//! The session pool's counters: a private recorder the pool and its batches
//! write, and the public snapshot ([`SessionPoolStats`]) read from it.

use std::time::Duration;

use serde::Serialize;

use crate::recording::{Counter, LatencyLog};

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
    pub(super) created: Counter,
    pub(super) reused: Counter,
    pub(super) resets: Counter,
    pub(super) expired: Counter,
    pub(super) discarded: Counter,
    batched_commands: Counter,
    batches: Counter,
    waits: Counter,
    batch_latency: LatencyLog,
}

impl SessionRecorder {
    pub(crate) fn record_batch(&self, commands: usize, waits: u64, took: Duration) {
        self.batches.incr();
        self.waits.add(waits);
        self.batched_commands.add(commands as u64);
        self.batch_latency.record(took);
    }
}

impl SessionRecorder {
    /// The counters so far, for a pool of `max_sessions`.
    pub(crate) fn snapshot(&self, max_sessions: usize) -> SessionPoolStats {
        SessionPoolStats {
            max_sessions,
            created: self.created.get(),
            reused: self.reused.get(),
            resets: self.resets.get(),
            expired: self.expired.get(),
            discarded: self.discarded.get(),
            batched_commands: self.batched_commands.get(),
            batches: self.batches.get(),
            batch_waits: self.waits.get(),
        }
    }

    /// Wall times of the batches sent so far, ms.
    pub(crate) fn batch_ms(&self) -> Vec<f64> {
        self.batch_latency.millis()
    }
}
