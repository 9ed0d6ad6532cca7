//! Where a slot goes after a lease or a failed acquire: readied and back to
//! idle, or retired. Written once over the [`Backend`], as the acquire is.

use std::sync::Arc;

use tokio::sync::OwnedSemaphorePermit;

use super::backend::{recycle_timeout, Backend};
use super::slots::{Phase, Reservation};
use super::stats::RetireReason;
use super::verdict::{verdict, Checkpoint, Verdict};

/// Where a lease's slot goes when the lease ends: back to idle, readied
/// for the next lease as `used` says, or into retirement. `busy` is its
/// count, moved from leased when the lease ended.
pub(crate) async fn release_slot<B: Backend>(
    backend: Arc<B>,
    mut slot: B::Slot,
    busy: Reservation<B::Slot>,
    used: B::Used,
) {
    let config = backend.config();
    backend.count_use(&mut slot);
    let closed = backend.slots().is_closed();
    let facts = backend.facts(&slot, closed, Checkpoint::Release);
    let reason = match verdict(&facts, &config.retention, Checkpoint::Release) {
        Verdict::Retire(reason) => {
            backend.leave(&mut slot).await;
            Some(reason)
        }
        Verdict::Serve | Verdict::Probe if backend.after_release(&slot).await.is_err() => {
            Some(RetireReason::Hook)
        }
        Verdict::Serve | Verdict::Probe => {
            let recycled =
                tokio::time::timeout(recycle_timeout(config), backend.recycle(&mut slot, used));
            match recycled.await {
                Ok(Ok(())) => None,
                Ok(Err(reason)) => Some(reason),
                Err(_) => {
                    tracing::warn!(after = ?recycle_timeout(config), "a slot's recycling never ended");
                    Some(RetireReason::Unhealthy)
                }
            }
        }
    };
    match reason {
        Some(reason) => {
            drop(busy);
            backend.retire(slot, reason);
        }
        None => {
            // Refused when the pool closed meanwhile.
            if let Some(slot) = busy.into_idle(slot) {
                backend.retire(slot, RetireReason::Closed);
            }
        }
    }
}

/// A slot between the idle queue (or its start) and a lease. Dropped while
/// it still holds the slot (the acquire was cancelled), it retires it,
/// instead of letting it live on as a ghost that keeps charging the budget.
pub(super) struct InFlight<'a, B: Backend> {
    backend: &'a Arc<B>,
    slot: Option<B::Slot>,
}

impl<'a, B: Backend> InFlight<'a, B> {
    pub(super) fn new(backend: &'a Arc<B>, slot: B::Slot) -> InFlight<'a, B> {
        InFlight {
            backend,
            slot: Some(slot),
        }
    }

    /// The slot, while in flight.
    pub(super) fn get(&mut self) -> &mut B::Slot {
        // Present until `retire` or `land` consumes `self`.
        self.slot
            .as_mut()
            .expect("an in-flight slot is held until it lands")
    }

    /// Retires the slot for `reason`.
    pub(super) fn retire(mut self, reason: RetireReason) {
        if let Some(slot) = self.slot.take() {
            self.backend.retire(slot, reason);
        }
    }

    /// The slot, landed in a lease.
    pub(super) fn land(mut self) -> B::Slot {
        self.slot
            .take()
            .expect("an in-flight slot is held until it lands")
    }
}

impl<B: Backend> Drop for InFlight<'_, B> {
    fn drop(&mut self) {
        if let Some(slot) = self.slot.take() {
            tracing::debug!("acquire cancelled; retiring its slot");
            self.backend.retire(slot, RetireReason::Cancelled);
        }
    }
}

/// A lease's hold on its slot: the slot, its count as leased and its
/// permit. Ended (or dropped), it moves the count to busy and sends the
/// slot to [`release_slot`] on the pool's runtime.
pub(crate) struct Held<B: Backend> {
    backend: Arc<B>,
    slot: Option<B::Slot>,
    leased: Option<Reservation<B::Slot>>,
    _permit: OwnedSemaphorePermit,
}

impl<B: Backend> Held<B> {
    pub(super) fn new(
        backend: Arc<B>,
        slot: B::Slot,
        leased: Reservation<B::Slot>,
        permit: OwnedSemaphorePermit,
    ) -> Held<B> {
        Held {
            backend,
            slot: Some(slot),
            leased: Some(leased),
            _permit: permit,
        }
    }

    /// The slot, while the lease holds it.
    pub(crate) fn slot(&self) -> Option<&B::Slot> {
        self.slot.as_ref()
    }

    /// Ends the lease: the slot goes to its recycling with `used`.
    pub(crate) fn end(&mut self, used: B::Used) {
        let (Some(slot), Some(leased)) = (self.slot.take(), self.leased.take()) else {
            return;
        };
        self.backend.lease_ended(&slot);
        let busy = leased.moved(Phase::Busy);
        let backend = self.backend.clone();
        self.backend
            .runtime()
            .spawn(release_slot(backend, slot, busy, used));
    }
}

impl<B: Backend> Drop for Held<B> {
    fn drop(&mut self) {
        self.end(B::Used::default());
    }
}

impl<B: Backend> std::fmt::Debug for Held<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Held")
            .field("holds", &self.slot.is_some())
            .finish()
    }
}
