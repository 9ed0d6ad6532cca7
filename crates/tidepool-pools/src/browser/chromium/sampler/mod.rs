//! The pool's memory watch: which browsers are measured and how (a launched
//! one by the PSS of its process tree, a connected one by the V8 heaps of the
//! pool's pages in it), one round of measurement, and the memory policy's
//! judgement of it (warn on the soft limit, mark gone over the hard one).
//! Acting on the judgement, retiring a browser, is the maintenance loop's.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chromiumoxide::Browser;
use serde::Serialize;
use tokio::sync::watch;

use super::connection::OwnContexts;
use super::watch::Gone;
use crate::memory::{MemoryPolicy, SoftLimitTracker};

mod judge;
mod measure;

/// What the memory policy did, and when.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
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
    /// Its figure at the time, bytes: the PSS of its process tree, or for a
    /// connected browser the V8 heaps of the pool's pages. A warning can
    /// clear on the tree's summed RSS, an upper bound of its PSS read when
    /// it is below the soft limit less the hysteresis anyway.
    pub bytes: u64,
    /// Since the pool started.
    pub at: Duration,
}

/// What a browser's memory is read from.
#[derive(Clone)]
pub(crate) enum Gauge {
    /// A launched browser: the PSS of its process tree.
    Process(u32),
    /// A connected browser: the V8 heaps of the pages in the pool's contexts.
    Remote {
        browser: Arc<Browser>,
        contexts: OwnContexts,
    },
}

impl Gauge {
    fn pid(&self) -> Option<u32> {
        match self {
            Gauge::Process(pid) => Some(*pid),
            Gauge::Remote { .. } => None,
        }
    }
}

pub(crate) struct Member {
    pub(crate) gauge: Gauge,
    gone: Arc<watch::Sender<Option<Gone>>>,
    tracker: Option<SoftLimitTracker>,
    /// The last exact figure (PSS, or V8 heaps): what is reported.
    pub(crate) last_bytes: u64,
    /// Samples in a row taken as an RSS bound instead of an exact PSS.
    bounded: usize,
}

/// One browser's figure of one sampling round.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Sample {
    pub(crate) id: u64,
    pub(crate) bytes: u64,
    /// An exact PSS (or V8 heaps), or only an upper bound of the PSS: the
    /// summed RSS, read instead when it is below every limit anyway.
    pub(crate) exact: bool,
}

/// Launched browsers (measured when the pool has a memory policy), by pool
/// id, and the policy's events so far.
#[derive(Default)]
pub(crate) struct Members {
    by_id: Mutex<HashMap<u64, Member>>,
    pub(crate) events: Mutex<Vec<MemoryEvent>>,
    /// Soft-limit trackers without their latch: the negative control of
    /// `one_warning_per_crossing` only.
    #[cfg(feature = "controls")]
    unlatched_for_control: std::sync::atomic::AtomicBool,
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

    /// Registers a browser; `bytes` is its first figure, so a budget counts
    /// it before the first sample.
    pub(crate) fn add(
        &self,
        id: u64,
        gauge: Gauge,
        gone: Arc<watch::Sender<Option<Gone>>>,
        policy: Option<&MemoryPolicy>,
        bytes: u64,
    ) {
        #[cfg_attr(not(feature = "controls"), allow(unused_mut))]
        let mut tracker = policy.map(|p| match gauge {
            Gauge::Process(_) => SoftLimitTracker::new(p),
            Gauge::Remote { .. } => SoftLimitTracker::new_v8(p),
        });
        #[cfg(feature = "controls")]
        if self
            .unlatched_for_control
            .load(std::sync::atomic::Ordering::Relaxed)
        {
            if let Some(t) = tracker.as_mut() {
                t.unlatch_for_control();
            }
        }
        let member = Member {
            gauge,
            gone,
            tracker,
            last_bytes: bytes,
            bounded: 0,
        };
        self.lock().insert(id, member);
    }

    /// Takes the latch off every soft-limit tracker, present and future: a
    /// soft limit that warns on every sample over it. For the negative
    /// control of `one_warning_per_crossing` only.
    #[cfg(feature = "controls")]
    pub(crate) fn unlatch_for_control(&self) {
        self.unlatched_for_control
            .store(true, std::sync::atomic::Ordering::Relaxed);
        for member in self.lock().values_mut() {
            if let Some(t) = member.tracker.as_mut() {
                t.unlatch_for_control();
            }
        }
    }

    /// Process ids of the launched browsers.
    #[cfg(feature = "controls")]
    pub(crate) fn pids(&self) -> Vec<u32> {
        self.lock().values().filter_map(|m| m.gauge.pid()).collect()
    }

    /// The latest figures of every browser, summed: what the budget is held to.
    pub(crate) fn total_bytes(&self) -> u64 {
        self.lock().values().map(|m| m.last_bytes).sum()
    }

    pub(crate) fn remove(&self, id: u64) {
        self.lock().remove(&id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::browser::stats::BrowserRecorder;

    fn watched(policy: &MemoryPolicy) -> Members {
        let members = Members::default();
        let (gone, _) = watch::channel(None);
        let pid = std::process::id();
        members.add(1, Gauge::Process(pid), Arc::new(gone), Some(policy), 0);
        members
    }

    #[tokio::test]
    async fn far_below_the_limits_the_rss_bound_stands_in_and_an_exact_pss_comes_every_window() {
        let policy = MemoryPolicy {
            window: 3,
            ..MemoryPolicy::default()
        };
        let members = watched(&policy);
        let recorder = BrowserRecorder::default();
        let mut kinds = Vec::new();
        for _ in 0..6 {
            let round = members.measure(&policy, false).await;
            kinds.push(round[0].exact);
            let last = members.lock()[&1].last_bytes;
            members.judge(round.clone(), &policy, &recorder, Duration::ZERO);
            let now = members.lock()[&1].last_bytes;
            if round[0].exact {
                assert_eq!(now, round[0].bytes, "an exact figure is reported");
            } else {
                assert_eq!(now, last, "a bound is never reported as the figure");
            }
        }
        assert_eq!(kinds, [false, false, true, false, false, true]);
        // Under a budget every figure is exact: they are added up.
        assert!(members.measure(&policy, true).await[0].exact);
    }

    #[tokio::test]
    async fn near_the_soft_limit_every_sample_is_exact() {
        let policy = MemoryPolicy {
            // This test process is above it: the bound says nothing.
            soft_limit_bytes: 1_000_000,
            hard_limit_bytes: u64::MAX,
            hysteresis_bytes: 0,
            ..MemoryPolicy::default()
        };
        let members = watched(&policy);
        for _ in 0..3 {
            assert!(members.measure(&policy, false).await[0].exact);
        }
    }
}
