//! The maintenance loop: the one place idle browsers are retired (crashed,
//! idle too long, failing their probe) and replacements launched up to
//! `min_idle`.

use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use super::inner::{death_reason, PoolInner, Slot, SlotGuard};
use super::stats::RetireReason;
use crate::memory::MemoryPolicy;
use crate::retention::Decision;

/// How often the maintainer looks at the pool when nothing wakes it.
const MAINTAIN_TICK: Duration = Duration::from_millis(250);

impl PoolInner {
    /// The background task: retires idle browsers that crashed, idled too long
    /// or fail their probe, and launches replacements up to `min_idle`.
    pub(super) async fn maintain_loop(weak: std::sync::Weak<PoolInner>) {
        loop {
            let Some(inner) = weak.upgrade() else { return };
            if inner.closed.load(Ordering::SeqCst) {
                return;
            }
            inner.maintain_once().await;
            let wake = async {
                let notified = inner.maintain.notified();
                let _ = tokio::time::timeout(MAINTAIN_TICK, notified).await;
            };
            wake.await;
        }
    }

    pub(super) async fn maintain_once(self: &Arc<Self>) {
        let c = &self.config;
        // Crashed, idle-expired and due-for-probe browsers leave the idle queue
        // under the lock; probing happens after it is released.
        let (dead, expired, to_probe) = {
            let mut state = self.lock();
            let mut dead = Vec::new();
            let mut expired = Vec::new();
            let mut to_probe = Vec::new();
            let mut keep = VecDeque::new();
            let mut idle_count = state.idle.len();
            // Oldest first: the front of the queue has waited longest.
            while let Some(instance) = state.idle.pop_front() {
                if instance.death().is_some() || instance.draining().is_some() {
                    idle_count -= 1;
                    dead.push(instance);
                } else {
                    match c
                        .retention
                        .decide(instance.stamps(), idle_count > c.min_idle)
                    {
                        Decision::Expired => {
                            idle_count -= 1;
                            expired.push((instance, RetireReason::Lifetime));
                        }
                        Decision::IdleTooLong => {
                            idle_count -= 1;
                            expired.push((instance, RetireReason::IdleTimeout));
                        }
                        Decision::Probe => to_probe.push(instance),
                        Decision::Keep => keep.push_back(instance),
                    }
                }
            }
            state.idle = keep;
            for _ in &to_probe {
                state.count(Slot::Busy);
            }
            (dead, expired, to_probe)
        };
        for instance in dead {
            let reason = death_reason(&instance)
                .or(instance.draining())
                .unwrap_or(RetireReason::Crashed);
            self.retire(instance, reason);
        }
        for (instance, reason) in expired {
            self.retire(instance, reason);
        }
        for mut instance in to_probe {
            let slot = SlotGuard::new(self, Slot::Busy);
            let ok = instance
                .probe(c.retention.health_check_timeout)
                .await
                .is_ok();
            if ok {
                if let Some(instance) = slot.into_idle(instance) {
                    self.retire(instance, RetireReason::Closed);
                }
            } else {
                drop(slot);
                let reason = if instance.death().is_some() {
                    RetireReason::Crashed
                } else {
                    RetireReason::Unhealthy
                };
                self.retire(instance, reason);
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
            if self.closed.load(Ordering::SeqCst) {
                return;
            }
            // Nowhere to open a slot: the retries above bring endpoints back.
            if (self.fleet.as_ref()).is_some_and(|f| f.none_up() || f.at_capacity()) {
                return;
            }
            let slot = {
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
                state.count(Slot::Starting);
                SlotGuard::new(self, Slot::Starting)
            };
            let started = self.start_slot().await;
            let mut state = self.lock();
            match started {
                Ok(instance) => {
                    if state.pay_replacement() {
                        self.recorder.replaced.incr();
                    }
                    let refused = slot.into_idle_locked(&mut state, instance);
                    drop(state);
                    self.changed.notify_one();
                    if let Some(instance) = refused {
                        self.retire(instance, RetireReason::Closed);
                        return;
                    }
                }
                Err(e) => {
                    drop(state);
                    drop(slot);
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
            if inner.closed.load(Ordering::SeqCst) {
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
                for instance in inner.take_idle(id) {
                    inner.retire(instance, RetireReason::Memory);
                }
            }
            inner.budget_sampled();
        }
    }
}
