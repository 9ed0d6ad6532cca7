//! The acquire: which slot serves a lease, readied to what it asks, or a
//! new one started, within `acquire_timeout`. Written once over the
//! [`Backend`]: Chromium's pool and the tests' fake run this same code.

use std::sync::Arc;
use std::time::Instant;

use tokio::sync::OwnedSemaphorePermit;

use super::backend::Backend;
use super::placement;
use super::release::{Held, InFlight};
use super::slots::{Phase, Reservation};
use super::stats::RetireReason;
use super::verdict::{after_failure, verdict, Checkpoint, Verdict};
use crate::error::{Error, Result};

/// A slot for a lease: an idle one that passes its verdict, readied to
/// `ask`, or a new one, within the pool's `acquire_timeout`. Cancelling
/// the future at any await point leaves every count as it was and retires
/// a slot it held in flight.
pub(crate) async fn acquire_slot<B: Backend>(backend: &Arc<B>, ask: &B::Ask) -> Result<Held<B>> {
    let config = backend.config();
    let slots = backend.slots();
    let started = Instant::now();
    let deadline = tokio::time::Instant::now() + config.acquire_timeout;
    let timed_out = || acquire_timeout(backend.as_ref(), started);
    if slots.is_closed() {
        return Err(Error::PoolClosed { what: "browser" });
    }
    if backend.permits().available_permits() == 0 {
        backend.recorder().acquire_waits.incr();
    }
    let permit: OwnedSemaphorePermit =
        match tokio::time::timeout_at(deadline, backend.permits().clone().acquire_owned()).await {
            Ok(Ok(permit)) => permit,
            Ok(Err(_)) => return Err(Error::PoolClosed { what: "browser" }),
            Err(_) => return Err(timed_out()),
        };
    let mut budget_counted = false;
    loop {
        let notified = slots.changed.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        if slots.is_closed() {
            return Err(Error::PoolClosed { what: "browser" });
        }
        // Read before the slots' lock: the locks are never nested.
        let outlook = backend.outlook();
        // The reservation counts the slot from here: given back when it
        // drops, on every path, including a caller that cancels.
        let next = {
            let mut state = slots.lock();
            let loads = state.idle.iter().map(|s| outlook.load(B::endpoint(s)));
            let serve = placement::idle_to_serve(loads);
            if let Some((slot, busy)) = serve.and_then(|at| state.take_idle_at(at)) {
                Next::Take(Box::new(slot), busy)
            } else if state.total() < config.max_size && outlook.may_start {
                Next::Launch(state.reserve(Phase::Starting))
            } else {
                if state.total() < config.max_size && !budget_counted {
                    budget_counted = true;
                    backend.recorder().budget_waits.incr();
                    tracing::debug!("acquire waits: the pool's memory budget is used up");
                }
                Next::Wait
            }
        };
        // From here until the lease exists, a cancelled acquire (its
        // future dropped mid-probe, mid-readying or mid-hook) retires the
        // slot through `flight` instead of losing it.
        let (mut flight, reservation) = match next {
            Next::Take(slot, busy) => {
                let mut flight = InFlight::new(backend, *slot);
                let facts = backend.facts(flight.get(), false, Checkpoint::Acquire);
                let retention = &config.retention;
                let probe = match verdict(&facts, retention, Checkpoint::Acquire) {
                    Verdict::Retire(reason) => {
                        flight.retire(reason);
                        continue;
                    }
                    Verdict::Probe => true,
                    Verdict::Serve => false,
                };
                let readied = tokio::time::timeout_at(deadline, async {
                    let slot = flight.get();
                    if probe {
                        let checked = tokio::time::timeout(
                            retention.health_check_timeout,
                            backend.probe(slot),
                        );
                        if !matches!(checked.await, Ok(Ok(()))) {
                            return false;
                        }
                    }
                    backend.ready(slot, ask, false).await.is_ok()
                });
                match readied.await {
                    Ok(true) => {}
                    Ok(false) => {
                        let reason = after_failure(backend.died(flight.get()));
                        flight.retire(reason);
                        continue;
                    }
                    Err(_) => {
                        flight.retire(RetireReason::Unhealthy);
                        return Err(timed_out());
                    }
                }
                (flight, busy)
            }
            Next::Launch(starting) => match tokio::time::timeout_at(deadline, backend.open()).await
            {
                // Every fleet endpoint up is at its cap: wait for an idle
                // slot instead (the slot counted here is freed).
                Ok(Ok(None)) => continue,
                Ok(Ok(Some(slot))) => {
                    let mut flight = InFlight::new(backend, slot);
                    let readied = tokio::time::timeout_at(deadline, async {
                        backend.ready(flight.get(), ask, true).await
                    });
                    match readied.await {
                        Ok(Ok(())) => {}
                        Ok(Err(e)) => {
                            flight.retire(RetireReason::Unhealthy);
                            return Err(e);
                        }
                        Err(_) => {
                            flight.retire(RetireReason::Unhealthy);
                            return Err(timed_out());
                        }
                    }
                    (flight, starting)
                }
                Ok(Err(e)) => return Err(e),
                Err(_) => return Err(timed_out()),
            },
            Next::Wait => {
                if tokio::time::timeout_at(deadline, notified).await.is_err() {
                    return Err(timed_out());
                }
                continue;
            }
        };
        if slots.is_closed() {
            flight.retire(RetireReason::Closed);
            return Err(Error::PoolClosed { what: "browser" });
        }
        if backend.before_lease(flight.get()).await.is_err() {
            flight.retire(RetireReason::Hook);
            continue;
        }
        let slot = flight.land();
        backend.lease_started(&slot);
        let leased = reservation.moved(Phase::Leased);
        backend.recorder().acquires.incr();
        backend.recorder().record_acquire(started.elapsed());
        return Ok(Held::new(backend.clone(), slot, leased, permit));
    }
}

/// The error of an acquire that waited `acquire_timeout` in vain.
fn acquire_timeout<B: Backend>(backend: &B, started: Instant) -> Error {
    backend.recorder().acquire_timeouts.incr();
    Error::AcquireTimeout {
        waited: started.elapsed(),
        max_size: backend.config().max_size,
        in_use: backend.slots().lock().leased(),
    }
}

/// What an acquire does next, with the count of the slot it holds.
enum Next<T> {
    Take(Box<T>, Reservation<T>),
    Launch(Reservation<T>),
    Wait,
}
