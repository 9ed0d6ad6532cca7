//! The pool's memory sampler: measures every launched browser's process tree
//! each `sample_interval`, warns on the soft limit, evicts on the hard one.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use serde::Serialize;
use tokio::sync::watch;

use super::instance::{mark_gone, EVICTED};
use super::pool::PoolInner;
use super::stats::RetireReason;
use crate::memory::{tree_memory, MemoryPolicy, SoftEvent, SoftLimitTracker};

/// What the memory policy did, and when.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MemoryEventKind {
    /// Over the soft limit for most of the window.
    SoftExceeded,
    /// Back under the soft limit minus the hysteresis.
    SoftCleared,
    /// Over the hard limit: evicted.
    Evicted,
}

/// One memory-policy event of a browser.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MemoryEvent {
    /// The browser's pool id.
    pub browser: u64,
    /// What happened.
    pub kind: MemoryEventKind,
    /// Its process tree's PSS at the time, bytes.
    pub bytes: u64,
    /// Since the pool started.
    pub at: Duration,
}

pub(crate) struct Member {
    pub(crate) pid: u32,
    gone: Arc<watch::Sender<Option<String>>>,
    tracker: Option<SoftLimitTracker>,
    pub(crate) last_bytes: u64,
}

/// Launched browsers (measured when the pool has a memory policy), by pool
/// id, and the policy's events so far.
#[derive(Default)]
pub(crate) struct Members {
    by_id: Mutex<HashMap<u64, Member>>,
    pub(crate) events: Mutex<Vec<MemoryEvent>>,
}

impl std::fmt::Debug for Members {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Members").finish_non_exhaustive()
    }
}

impl Members {
    /// The registry; its lock guards plain data, so a poisoned one is still read.
    pub(crate) fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Member>> {
        self.by_id.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn add(
        &self,
        id: u64,
        pid: u32,
        gone: Arc<watch::Sender<Option<String>>>,
        policy: Option<&MemoryPolicy>,
    ) {
        let member = Member {
            pid,
            gone,
            tracker: policy.map(SoftLimitTracker::new),
            last_bytes: 0,
        };
        self.lock().insert(id, member);
    }

    pub(crate) fn remove(&self, id: u64) {
        self.lock().remove(&id);
    }
}

/// Samples until the pool is gone or closed.
pub(crate) async fn run(weak: Weak<PoolInner>, policy: MemoryPolicy) {
    let mut ticks = tokio::time::interval(policy.sample_interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let Some(inner) = weak.upgrade() else { return };
        if inner.closed.load(Ordering::SeqCst) {
            return;
        }
        let targets: Vec<(u64, u32)> = inner
            .members
            .lock()
            .iter()
            .map(|(id, m)| (*id, m.pid))
            .collect();
        if targets.is_empty() {
            continue;
        }
        // Reading smaps_rollup costs milliseconds per process: off the runtime.
        let Ok(measured) = tokio::task::spawn_blocking(move || {
            targets
                .into_iter()
                .map(|(id, pid)| (id, tree_memory(pid).total_bytes))
                .collect::<Vec<_>>()
        })
        .await
        else {
            continue;
        };
        let total: u64 = measured.iter().map(|m| m.1).sum();
        inner
            .stats
            .peak_total_pss
            .fetch_max(total, Ordering::Relaxed);
        let mut evict = Vec::new();
        {
            let mut members = inner.members.lock();
            let mut events = inner
                .members
                .events
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            let at = inner.started.elapsed();
            for (id, bytes) in measured {
                let Some(m) = members.get_mut(&id) else {
                    continue;
                };
                m.last_bytes = bytes;
                if bytes == 0 {
                    continue; // the process has just gone; its death is handled elsewhere
                }
                match m.tracker.as_mut().and_then(|t| t.sample(bytes)) {
                    Some(SoftEvent::Exceeded) => {
                        tracing::warn!(
                            browser = id,
                            mb = bytes / 1_000_000,
                            limit_mb = policy.soft_limit_bytes / 1_000_000,
                            "browser memory over the soft limit"
                        );
                        inner.stats.soft_warnings.fetch_add(1, Ordering::Relaxed);
                        events.push(MemoryEvent {
                            browser: id,
                            kind: MemoryEventKind::SoftExceeded,
                            bytes,
                            at,
                        });
                    }
                    Some(SoftEvent::Cleared) => {
                        tracing::info!(
                            browser = id,
                            mb = bytes / 1_000_000,
                            "browser memory back under the soft limit"
                        );
                        events.push(MemoryEvent {
                            browser: id,
                            kind: MemoryEventKind::SoftCleared,
                            bytes,
                            at,
                        });
                    }
                    None => {}
                }
                if bytes > policy.hard_limit_bytes {
                    let reason = format!(
                        "{EVICTED}memory {} MB (PSS of its process tree) over the hard limit {} MB",
                        bytes / 1_000_000,
                        policy.hard_limit_bytes / 1_000_000
                    );
                    tracing::warn!(browser = id, "{reason}");
                    mark_gone(&m.gone, &reason);
                    events.push(MemoryEvent {
                        browser: id,
                        kind: MemoryEventKind::Evicted,
                        bytes,
                        at,
                    });
                    evict.push(id);
                }
            }
            for id in &evict {
                members.remove(id);
            }
        }
        // An idle evicted browser goes now; a leased one when its lease ends
        // (its lease's calls fail with BrowserEvicted from this moment).
        for id in evict {
            if let Some(instance) = inner.take_idle(id) {
                inner.retire(instance, RetireReason::Memory);
            }
        }
    }
}
