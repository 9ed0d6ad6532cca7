//! The maintenance loop: the one place idle browsers are retired (crashed,
//! idle too long, failing their probe) and replacements launched up to
//! `min_idle`.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use super::inner::PoolInner;
use super::slots::Phase;
use super::stats::RetireReason;
use super::verdict::{after_failure, verdict, Checkpoint, Facts, Verdict};
use crate::memory::MemoryPolicy;

/// How often the maintainer looks at the pool when nothing wakes it.
const MAINTAIN_TICK: Duration = Duration::from_millis(250);

impl PoolInner {
    /// The background task: retires idle browsers that crashed, idled too long
    /// or fail their probe, and launches replacements up to `min_idle`.
    pub(super) async fn maintain_loop(weak: std::sync::Weak<PoolInner>) {
        loop {
            let Some(inner) = weak.upgrade() else { return };
            if inner.is_closed() {
                return;
            }
            inner.maintain_once().await;
            let wake = async {
                let notified = inner.slots.maintain.notified();
                let _ = tokio::time::timeout(MAINTAIN_TICK, notified).await;
            };
            wake.await;
        }
    }

    pub(super) async fn maintain_once(self: &Arc<Self>) {
        let c = &self.config;
        // The idle slots the verdict retires or probes leave the queue under
        // the lock; probing happens after it is released.
        let (retiring, to_probe) = {
            let mut state = self.lock();
            let mut retiring = Vec::new();
            let mut to_probe = Vec::new();
            let mut keep = VecDeque::new();
            let mut idle_count = state.idle.len();
            let closed = self.is_closed();
            // Oldest first: the front of the queue has waited longest.
            while let Some(slot) = state.idle.pop_front() {
                let at = Checkpoint::Maintain {
                    surplus: idle_count > c.min_idle,
                };
                let facts = Facts::of(&slot, c, closed, at);
                match verdict(&facts, &c.retention, at) {
                    Verdict::Retire(reason) => {
                        idle_count -= 1;
                        retiring.push((slot, reason));
                    }
                    Verdict::Probe => to_probe.push(slot),
                    Verdict::Serve => keep.push_back(slot),
                }
            }
            state.idle = keep;
            let to_probe: Vec<_> = to_probe
                .into_iter()
                .map(|slot| (slot, state.reserve(Phase::Busy)))
                .collect();
            (retiring, to_probe)
        };
        for (slot, reason) in retiring {
            self.retire(slot, reason);
        }
        for (mut slot, busy) in to_probe {
            let ok = slot.probe(c.retention.health_check_timeout).await.is_ok();
            if ok {
                if let Some(slot) = busy.into_idle(slot) {
                    self.retire(slot, RetireReason::Closed);
                }
            } else {
                drop(busy);
                let reason = after_failure(slot.death().is_some());
                self.retire(slot, reason);
            }
        }
        if (self.fleet.as_ref()).is_some_and(|f| f.retry_due()) {
            // In the background: a hung endpoint holds its retry for the
            // CDP deadline, and the top-up below must not wait for it.
            let inner = self.clone();
            tokio::spawn(async move { inner.retry_endpoints().await });
        }
        // Top up to min_idle, one launch at a time: on two cores, parallel
        // launches slow every lease in flight.
        loop {
            if self.is_closed() {
                return;
            }
            // Nowhere to open a slot: the retries above bring endpoints back.
            if (self.fleet.as_ref()).is_some_and(|f| f.none_up() || f.at_capacity()) {
                return;
            }
            let counted = {
                let state = self.lock();
                let ready_or_coming = state.idle.len() + state.starting();
                if ready_or_coming >= c.min_idle || state.total() >= c.max_size {
                    return;
                }
                drop(state);
                if self.over_budget() {
                    tracing::debug!(
                        pool = self.id,
                        "no top-up: the pool's memory budget is used up"
                    );
                    return;
                }
                let mut state = self.lock();
                // Re-checked: another task may have started one meanwhile.
                if state.idle.len() + state.starting() >= c.min_idle || state.total() >= c.max_size
                {
                    return;
                }
                state.reserve(Phase::Starting)
            };
            let started = self.start_slot().await;
            let mut state = self.lock();
            match started {
                Ok(slot) => {
                    if state.pay_replacement() {
                        self.recorder.replaced.incr();
                    }
                    let refused = counted.into_idle_locked(&mut state, slot);
                    drop(state);
                    self.slots.changed.notify_one();
                    if let Some(slot) = refused {
                        self.retire(slot, RetireReason::Closed);
                        return;
                    }
                }
                Err(e) => {
                    drop(state);
                    drop(counted);
                    tracing::warn!(pool = self.id, error = %e, "could not start a browser to keep min_idle");
                    return;
                }
            }
        }
    }

    /// The memory loop: each `sample_interval`, one round of measurement,
    /// the policy's judgement, and the retirement of an idle evicted
    /// browser (a leased one goes when its lease ends; its calls fail with
    /// `BrowserEvicted` from the moment it is judged). Ends when the pool is
    /// gone or closed.
    pub(super) async fn memory_loop(weak: std::sync::Weak<PoolInner>, policy: MemoryPolicy) {
        let mut ticks = tokio::time::interval(policy.sample_interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            let Some(inner) = weak.upgrade() else { return };
            if inner.is_closed() {
                return;
            }
            let measured = inner
                .members
                .measure(&policy, inner.budget().is_some())
                .await;
            if measured.is_empty() {
                continue;
            }
            let at = inner.started.elapsed();
            for id in inner.members.judge(measured, &policy, &inner.recorder, at) {
                for slot in inner.take_idle(id) {
                    inner.retire(slot, RetireReason::Memory);
                }
            }
            inner.budget_sampled();
        }
    }
}
