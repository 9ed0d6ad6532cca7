//! The pool's memory watch: which browsers are measured and how (a launched
//! one by the PSS of its process tree, a connected one by the V8 heaps of the
//! pool's pages in it), one round of measurement, and the memory policy's
//! judgement of it (warn on the soft limit, mark gone over the hard one).
//! Acting on the judgement, retiring a browser, is the maintenance loop's.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chromiumoxide::cdp::browser_protocol::target::GetTargetsParams;
use chromiumoxide::cdp::js_protocol::runtime::{GetHeapUsageParams, GetIsolateIdParams};
use chromiumoxide::Browser;
use serde::Serialize;
use tokio::sync::watch;

use super::instance::{own_contexts, OwnContexts};
use super::stats::BrowserRecorder;
use super::watch::{mark_gone, EVICTED};
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
    /// Its figure at the time, bytes: the PSS of its process tree, or for a
    /// connected browser the V8 heaps of the pool's pages.
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
    /// Soft-limit trackers without their latch: the negative control of
    /// `one_warning_per_crossing` only.
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
        gone: Arc<watch::Sender<Option<String>>>,
        policy: Option<&MemoryPolicy>,
        bytes: u64,
    ) {
        let mut tracker = policy.map(|p| match gauge {
            Gauge::Process(_) => SoftLimitTracker::new(p),
            Gauge::Remote { .. } => SoftLimitTracker::new_v8(p),
        });
        if self.unlatched_for_control.load(Ordering::Relaxed) {
            if let Some(t) = tracker.as_mut() {
                t.unlatch_for_control();
            }
        }
        let member = Member {
            gauge,
            gone,
            tracker,
            last_bytes: bytes,
        };
        self.lock().insert(id, member);
    }

    /// Takes the latch off every soft-limit tracker, present and future: a
    /// soft limit that warns on every sample over it. For the negative
    /// control of `one_warning_per_crossing` only.
    pub(crate) fn unlatch_for_control(&self) {
        self.unlatched_for_control.store(true, Ordering::Relaxed);
        for member in self.lock().values_mut() {
            if let Some(t) = member.tracker.as_mut() {
                t.unlatch_for_control();
            }
        }
    }

    /// Process ids of the launched browsers.
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

impl Members {
    /// Measures every browser once: the PSS of a launched browser's process
    /// tree, the V8 heaps of the pool's pages in a connected one. Returns
    /// (pool id, bytes) per browser that could be measured.
    pub(crate) async fn measure(&self, policy: &MemoryPolicy) -> Vec<(u64, u64)> {
        let gauges: Vec<(u64, Gauge)> = self
            .lock()
            .iter()
            .map(|(id, m)| (*id, m.gauge.clone()))
            .collect();
        if gauges.is_empty() {
            return Vec::new();
        }
        let (local, remote): (Vec<_>, Vec<_>) = gauges
            .into_iter()
            .partition(|(_, g)| matches!(g, Gauge::Process(_)));
        // Reading smaps_rollup costs milliseconds per process: off the runtime.
        let local = tokio::task::spawn_blocking(move || {
            local
                .into_iter()
                .filter_map(|(id, g)| Some((id, tree_memory(g.pid()?).total_bytes)))
                .collect::<Vec<_>>()
        });
        let interval = policy.sample_interval;
        let remote = futures::future::join_all(remote.into_iter().map(|(id, g)| async move {
            let Gauge::Remote { browser, contexts } = g else {
                return None;
            };
            // A browser too busy to answer within the interval skips a sample.
            let heap = tokio::time::timeout(interval, v8_heap(&browser, &contexts));
            Some((id, heap.await.ok()??))
        }));
        let (local, remote) = futures::join!(local, remote);
        let Ok(local) = local else {
            return Vec::new();
        };
        local
            .into_iter()
            .chain(remote.into_iter().flatten())
            .collect()
    }

    /// Applies `policy` to one round of figures: records them, warns on the
    /// soft limit (once per crossing), marks a browser over the hard limit
    /// gone and forgets it. Returns the ids to retire; retiring them is the
    /// maintenance loop's business.
    pub(crate) fn judge(
        &self,
        measured: Vec<(u64, u64)>,
        policy: &MemoryPolicy,
        recorder: &BrowserRecorder,
        at: Duration,
    ) -> Vec<u64> {
        let local_total: u64 = {
            let members = self.lock();
            measured
                .iter()
                .filter(|(id, _)| members.get(id).is_some_and(|m| m.gauge.pid().is_some()))
                .map(|(_, bytes)| bytes)
                .sum()
        };
        recorder.peak_total_pss.raise_to(local_total);
        let mut evict = Vec::new();
        let mut members = self.lock();
        let mut events = self.events.lock().unwrap_or_else(|p| p.into_inner());
        for (id, bytes) in measured {
            let Some(m) = members.get_mut(&id) else {
                continue;
            };
            let local = m.gauge.pid().is_some();
            if bytes == 0 && local {
                continue; // the process has just gone; its death is handled elsewhere
            }
            m.last_bytes = bytes;
            let (soft, hard, what) = if local {
                (
                    policy.soft_limit_bytes,
                    policy.hard_limit_bytes,
                    "PSS of its process tree",
                )
            } else {
                (
                    policy.v8_soft_limit_bytes,
                    policy.v8_hard_limit_bytes,
                    "V8 heaps of the pool's pages",
                )
            };
            match m.tracker.as_mut().and_then(|t| t.sample(bytes)) {
                Some(SoftEvent::Exceeded) => {
                    tracing::warn!(
                        browser = id,
                        mb = bytes / 1_000_000,
                        limit_mb = soft / 1_000_000,
                        measure = what,
                        "browser memory over the soft limit"
                    );
                    recorder.soft_warnings.incr();
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
            if bytes > hard {
                let reason = format!(
                    "{EVICTED}memory {} MB ({what}) over the hard limit {} MB",
                    bytes / 1_000_000,
                    hard / 1_000_000
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
        evict
    }
}

/// The V8 heap in use by the pages of `contexts`, counted once per isolate
/// (pages of one site in one context can share a renderer, and with it a
/// heap). `None` when the browser does not answer.
async fn v8_heap(browser: &Browser, contexts: &OwnContexts) -> Option<u64> {
    let ours: Vec<_> = own_contexts(contexts).clone();
    if ours.is_empty() {
        return Some(0);
    }
    let targets = browser.execute(GetTargetsParams::default()).await.ok()?;
    let pages: HashSet<_> = targets
        .result
        .target_infos
        .into_iter()
        .filter(|t| t.r#type == "page")
        .filter(|t| {
            t.browser_context_id
                .as_ref()
                .is_some_and(|c| ours.contains(c))
        })
        .map(|t| t.target_id)
        .collect();
    let reads = browser
        .pages()
        .await
        .ok()?
        .into_iter()
        .filter(|p| pages.contains(p.target_id()))
        .map(|page| async move {
            let (isolate, heap) = futures::join!(
                page.execute(GetIsolateIdParams::default()),
                page.execute(GetHeapUsageParams::default())
            );
            Some((isolate.ok()?.result.id, heap.ok()?.result.used_size as u64))
        });
    let by_isolate: HashMap<String, u64> = futures::future::join_all(reads)
        .await
        .into_iter()
        .flatten()
        .collect();
    Some(by_isolate.values().sum())
}
