//! The session pool's counters: a private recorder the pool and its batches
//! write, and the public snapshot ([`SessionPoolStats`]) read from it.

use std::time::Duration;

use serde::Serialize;

use crate::recording::{Counter, LatencyHistogram, LatencySummary};

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
    /// Sessions closed on their return because the pool already kept
    /// `max_sessions` idle ones. With `expired` and `discarded` this closes
    /// the books: `created - expired - discarded - surplus_closed` sessions
    /// are idle or in use.
    pub surplus_closed: u64,
    /// Commands sent through batches.
    pub batched_commands: u64,
    /// Batches sent.
    pub batches: u64,
    /// Round trips the batches waited through, counted from send and reply
    /// times (a pipelined batch waits once).
    pub batch_waits: u64,
    /// Batch latency, from sending to the last reply, over the pool's life.
    pub batch_latency: LatencySummary,
}

#[derive(Debug)]
pub(crate) struct SessionRecorder {
    pub(super) created: Counter,
    pub(super) reused: Counter,
    pub(super) resets: Counter,
    pub(super) expired: Counter,
    pub(super) discarded: Counter,
    pub(super) surplus_closed: Counter,
    batched_commands: Counter,
    batches: Counter,
    waits: Counter,
    batch_latency: LatencyHistogram,
}

impl Default for SessionRecorder {
    fn default() -> SessionRecorder {
        SessionRecorder {
            created: Counter::new("tidepool_cdp_sessions_created_total"),
            reused: Counter::new("tidepool_cdp_sessions_reused_total"),
            resets: Counter::new("tidepool_cdp_session_resets_total"),
            expired: Counter::new("tidepool_cdp_sessions_expired_total"),
            discarded: Counter::new("tidepool_cdp_sessions_discarded_total"),
            surplus_closed: Counter::new("tidepool_cdp_sessions_surplus_closed_total"),
            batched_commands: Counter::new("tidepool_cdp_batched_commands_total"),
            batches: Counter::new("tidepool_cdp_batches_total"),
            waits: Counter::new("tidepool_cdp_batch_waits_total"),
            batch_latency: LatencyHistogram::new("tidepool_cdp_batch_seconds"),
        }
    }
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
            surplus_closed: self.surplus_closed.get(),
            batched_commands: self.batched_commands.get(),
            batches: self.batches.get(),
            batch_waits: self.waits.get(),
            batch_latency: self.batch_latency.summary(),
        }
    }
}
