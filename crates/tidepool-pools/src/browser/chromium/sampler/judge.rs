//! The memory policy's judgement of one round: warn on the soft limit,
//! mark a browser over the hard one gone.

use std::time::Duration;

use super::{Members, MemoryEvent, MemoryEventKind, Sample};
use crate::browser::chromium::watch::{mark_gone, Gone};
use crate::browser::stats::BrowserRecorder;
use crate::memory::{MemoryPolicy, SoftEvent};

impl Members {
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
                    "memory {} MB ({what}) over the hard limit {} MB",
                    bytes / 1_000_000,
                    hard / 1_000_000
                );
                tracing::warn!(browser = id, "evicted: {reason}");
                mark_gone(&m.gone, Gone::Evicted(reason));
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
