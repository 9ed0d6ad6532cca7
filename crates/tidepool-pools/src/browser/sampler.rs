//! The pool's memory watch: which browsers are measured and how (a launched
//! one by the PSS of its process tree, a connected one by the V8 heaps of the
//! pool's pages in it), one round of measurement, and the memory policy's
//! judgement of it (warn on the soft limit, mark gone over the hard one).
//! Acting on the judgement, retiring a browser, is the maintenance loop's.

use std::collections::{HashMap, HashSet};
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
use crate::memory::{tree_memory, tree_rss_bytes, MemoryPolicy, SoftEvent, SoftLimitTracker};

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
    gone: Arc<watch::Sender<Option<String>>>,
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
        gone: Arc<watch::Sender<Option<String>>>,
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

impl Members {
    /// Measures every browser once: the PSS of a launched browser's process
    /// tree, the V8 heaps of the pool's pages in a connected one.
    ///
    /// Far below the limits, the PSS is not read: the tree's summed RSS,
    /// an upper bound of it read at a fraction of the cost, already says
    /// that every judgement comes out as the PSS would make it (under the
    /// soft limit less its hysteresis: no warning, a warning cleared, no
    /// eviction). An exact PSS is still read every `window` samples, so the
    /// reported figures stay fresh, and always under a pool budget, which
    /// adds the figures up. Returns one sample per browser measured.
    pub(crate) async fn measure(&self, policy: &MemoryPolicy, budget: bool) -> Vec<Sample> {
        let gauges: Vec<(u64, Gauge, bool)> = self
            .lock()
            .iter()
            .map(|(id, m)| {
                (
                    *id,
                    m.gauge.clone(),
                    budget || m.bounded + 1 >= policy.window,
                )
            })
            .collect();
        if gauges.is_empty() {
            return Vec::new();
        }
        let (local, remote): (Vec<_>, Vec<_>) = gauges
            .into_iter()
            .partition(|(_, g, _)| matches!(g, Gauge::Process(_)));
        let bound_below = policy
            .soft_limit_bytes
            .saturating_sub(policy.hysteresis_bytes);
        // Reading smaps_rollup costs milliseconds per process: off the runtime.
        let local = tokio::task::spawn_blocking(move || {
            local
                .into_iter()
                .filter_map(|(id, g, exact_due)| {
                    let pid = g.pid()?;
                    if !exact_due {
                        let rss = tree_rss_bytes(pid);
                        if rss > 0 && rss < bound_below {
                            return Some(Sample {
                                id,
                                bytes: rss,
                                exact: false,
                            });
                        }
                    }
                    Some(Sample {
                        id,
                        bytes: tree_memory(pid).total_bytes,
                        exact: true,
                    })
                })
                .collect::<Vec<_>>()
        });
        let interval = policy.sample_interval;
        let remote = futures::future::join_all(remote.into_iter().map(|(id, g, _)| async move {
            let Gauge::Remote { browser, contexts } = g else {
                return None;
            };
            // A browser too busy to answer within the interval skips a sample.
            let heap = tokio::time::timeout(interval, v8_heap(&browser, &contexts));
            Some(Sample {
                id,
                bytes: heap.await.ok()??,
                exact: true,
            })
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
        measured: Vec<Sample>,
        policy: &MemoryPolicy,
        recorder: &BrowserRecorder,
        at: Duration,
    ) -> Vec<u64> {
        // The peak counts exact figures only: a browser read as a bound
        // adds its last exact PSS.
        let local_total: u64 = {
            let members = self.lock();
            measured
                .iter()
                .filter_map(|s| {
                    let m = members.get(&s.id).filter(|m| m.gauge.pid().is_some())?;
                    Some(if s.exact { s.bytes } else { m.last_bytes })
                })
                .sum()
        };
        recorder.memory_sampled(
            local_total,
            measured.iter().filter(|s| s.exact).map(|s| s.bytes),
        );
        let mut evict = Vec::new();
        let mut members = self.lock();
        let mut events = self.events.lock().unwrap_or_else(|p| p.into_inner());
        for Sample { id, bytes, exact } in measured {
            let Some(m) = members.get_mut(&id) else {
                continue;
            };
            let local = m.gauge.pid().is_some();
            if bytes == 0 && local {
                continue; // the process has just gone; its death is handled elsewhere
            }
            if exact {
                m.last_bytes = bytes;
                m.bounded = 0;
            } else {
                m.bounded += 1;
            }
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

#[cfg(test)]
mod tests {
    use super::*;

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
