//! The acquire: which slot serves a lease, readied to the isolation it
//! asks, or a new one started, within `acquire_timeout`.

use std::sync::atomic::Ordering;
use std::time::Instant;

use super::hooks::HookPoint;
use super::instance::Instance;
use super::isolation::LeaseOptions;
use super::lease::Lease;
use super::placement;
use super::pool::BrowserPool;
use super::release::InFlight;
use super::slots::{Phase, Reservation};
use super::stats::RetireReason;
use super::verdict::{after_failure, verdict, Checkpoint, Facts, Verdict};
use crate::error::{Error, Result};

impl BrowserPool {
    /// Takes a browser for exclusive use, waiting in FIFO order when all
    /// `max_size` are leased, up to `acquire_timeout`.
    ///
    /// The lease is isolated from the ones before it as
    /// [`BrowserPoolConfig::isolation`](super::BrowserPoolConfig::isolation) says (by default in its own incognito
    /// context), with a blank page ready ([`Lease::page`]). Dropping the
    /// lease returns the browser.
    pub async fn acquire(&self) -> Result<Lease> {
        self.acquire_with(LeaseOptions::default()).await
    }

    /// [`acquire`](Self::acquire) with choices of this lease's own: an
    /// isolation other than the pool's default. An idle browser readied for
    /// a weaker isolation is brought up to the asked one before it is handed
    /// out (a wipe, or a fresh context), on this call's time.
    pub async fn acquire_with(&self, options: LeaseOptions) -> Result<Lease> {
        let inner = &self.inner;
        options.validate()?;
        let isolation = options.isolation.unwrap_or(inner.config.isolation);
        let proxy = options.context_proxy();
        let started = Instant::now();
        let deadline = tokio::time::Instant::now() + inner.config.acquire_timeout;
        if inner.is_closed() {
            return Err(Error::PoolClosed { what: "browser" });
        }
        let must_wait = inner.permits.available_permits() == 0;
        if must_wait {
            inner.recorder.acquire_waits.incr();
        }
        let permit =
            match tokio::time::timeout_at(deadline, inner.permits.clone().acquire_owned()).await {
                Ok(Ok(permit)) => permit,
                Ok(Err(_)) => return Err(Error::PoolClosed { what: "browser" }),
                Err(_) => return Err(inner.acquire_timeout(started)),
            };
        let mut budget_counted = false;
        loop {
            let notified = inner.slots.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            // Read before the state lock: the locks are never nested.
            let over_budget = inner.over_budget();
            let loads = inner.fleet.as_ref().map(|f| f.loads());
            let fleet_full = inner.fleet.as_ref().is_some_and(|f| f.at_capacity());
            // The reservation counts the slot from here: given back when it
            // drops, on every path, including a caller that cancels.
            let next = {
                let mut state = inner.lock();
                let on_endpoint = |i: &Instance| {
                    let on = i.on_endpoint.as_ref()?;
                    loads.as_ref()?.get(on.index).copied()
                };
                let serve = placement::idle_to_serve(state.idle.iter().map(on_endpoint));
                if let Some((instance, busy)) = serve.and_then(|at| state.take_idle_at(at)) {
                    Next::Take(Box::new(instance), busy)
                } else if state.total() < inner.config.max_size && !over_budget && !fleet_full {
                    Next::Launch(state.reserve(Phase::Starting))
                } else {
                    if state.total() < inner.config.max_size && !budget_counted {
                        budget_counted = true;
                        inner.recorder.budget_waits.incr();
                        tracing::debug!(
                            pool = inner.id,
                            "acquire waits: the pool's memory budget is used up"
                        );
                    }
                    Next::Wait
                }
            };
            // From here until the lease exists, a cancelled acquire (its
            // future dropped mid-probe, mid-readying or mid-hook) retires
            // the browser through `flight` instead of losing it with its
            // memory watch and budget share.
            let (mut flight, reservation) = match next {
                Next::Take(instance, busy) => {
                    let mut flight = InFlight::new(inner, *instance);
                    let instance = flight.get();
                    let retention = &inner.config.retention;
                    let facts = Facts::of(instance, &inner.config, false, Checkpoint::Acquire);
                    let healthy = match verdict(&facts, retention, Checkpoint::Acquire) {
                        Verdict::Retire(reason) => {
                            flight.retire(reason);
                            continue;
                        }
                        Verdict::Probe => {
                            instance.probe(retention.health_check_timeout).await.is_ok()
                        }
                        Verdict::Serve => true,
                    };
                    if !healthy || instance.make_ready(isolation, proxy.clone()).await.is_err() {
                        let reason = after_failure(instance.death().is_some());
                        flight.retire(reason);
                        continue;
                    }
                    (flight, busy)
                }
                Next::Launch(starting) => {
                    match tokio::time::timeout_at(deadline, inner.start_slot_if_room()).await {
                        // Every fleet endpoint up is at its cap: wait for an
                        // idle slot instead (the slot counted here is freed).
                        Ok(Ok(None)) => continue,
                        Ok(Ok(Some(instance))) => {
                            let mut flight = InFlight::new(inner, instance);
                            if proxy.is_some() {
                                // Started with the pool's default context: this
                                // lease's replaces it.
                                if let Err(e) =
                                    flight.get().make_ready(isolation, proxy.clone()).await
                                {
                                    flight.retire(RetireReason::Unhealthy);
                                    return Err(e);
                                }
                            }
                            (flight, starting)
                        }
                        Ok(Err(e)) => return Err(e),
                        Err(_) => return Err(inner.acquire_timeout(started)),
                    }
                }
                Next::Wait => {
                    if tokio::time::timeout_at(deadline, notified).await.is_err() {
                        return Err(inner.acquire_timeout(started));
                    }
                    continue;
                }
            };
            if inner.is_closed() {
                flight.retire(RetireReason::Closed);
                return Err(Error::PoolClosed { what: "browser" });
            }
            let instance = flight.get();
            let before_lease =
                inner
                    .hooks
                    .run(HookPoint::BeforeLease, inner.config.cdp_timeout, || {
                        instance.hook_context()
                    });
            if before_lease.await.is_err() {
                flight.retire(RetireReason::Hook);
                continue;
            }
            let instance = flight.into_instance();
            if let Some(on) = &instance.on_endpoint {
                on.lease_started();
            }
            let leased = reservation.moved(Phase::Leased);
            inner.recorder.acquires.incr();
            inner.recorder.record_acquire(started.elapsed());
            let lease_id = inner.next_lease.fetch_add(1, Ordering::Relaxed);
            return Ok(Lease::new(
                self.inner.clone(),
                instance,
                leased,
                permit,
                lease_id,
                isolation,
            ));
        }
    }
}

/// What an acquire does next, with the count of the slot it holds.
enum Next {
    Take(Box<Instance>, Reservation<Instance>),
    Launch(Reservation<Instance>),
    Wait,
}
