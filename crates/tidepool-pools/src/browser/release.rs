//! Where a slot goes after a lease or a failed acquire: readied and back to
//! idle, or retired, with its browser when the reason is the browser's.

use std::sync::Arc;
use std::time::Instant;

use chromiumoxide::cdp::browser_protocol::target::TargetId;

use super::hooks::HookPoint;
use super::inner::{PoolInner, CLOSE_GRACE};
use super::instance::Instance;
use super::isolation::Isolation;
use super::slots::Reservation;
use super::stats::RetireReason;
use super::verdict::{after_failure, verdict, Checkpoint, Facts, Verdict};

impl PoolInner {
    /// Shuts a slot down in the background, and its browser with it unless
    /// the reason is the slot's own (idleness) and other slots remain: then
    /// the browser is marked retiring, and its other slots follow as they
    /// come by. A browser's retirement is counted once.
    pub(crate) fn retire(self: &Arc<Self>, instance: Instance, reason: RetireReason) {
        // A rebalanced slot leaves alone: its endpoint's other slots serve on.
        let slot_only = matches!(reason, RetireReason::IdleTimeout | RetireReason::Rebalanced);
        let browser_wide = !slot_only || instance.slots() == 1;
        // A rebalanced slot is counted itself; a browser's retirement once.
        let counted =
            reason == RetireReason::Rebalanced || (browser_wide && instance.drain(reason));
        if counted {
            self.recorder.retired(reason);
        }
        // The last slot leaves the memory watch now, as a lone browser
        // always did; a shared browser leaves it once its last slot ends.
        let last = instance.slots() == 1;
        if last {
            self.members.remove(instance.id);
        }
        tracing::debug!(
            pool = self.id,
            browser = instance.id,
            ?reason,
            last,
            "retiring a slot"
        );
        if !matches!(reason, RetireReason::Closed) {
            self.lock().owe_replacement();
        }
        let inner = self.clone();
        self.runtime.spawn(async move {
            let id = instance.id;
            // The browser's AliveToken drops when its last slot shuts down.
            if instance.shut_down(CLOSE_GRACE).await && !last {
                inner.members.remove(id);
            }
            inner.slots.changed.notify_one();
            inner.slots.maintain.notify_one();
        });
    }

    /// Where a lease's slot goes when the lease ends: back to idle, readied
    /// to the lease's `isolation`, or into retirement. `busy` is its count,
    /// moved from leased when the lease dropped.
    pub(crate) async fn release(
        self: Arc<Self>,
        mut instance: Instance,
        busy: Reservation<Instance>,
        isolation: Isolation,
        opened: Vec<TargetId>,
    ) {
        tracing::trace!(
            pool = self.id,
            browser = instance.id,
            ?isolation,
            "recycling a released browser"
        );
        instance.count_use();
        instance.last_used = Instant::now();
        let facts = Facts::of(
            &instance,
            &self.config,
            self.is_closed(),
            Checkpoint::Release,
        );
        let reason = match verdict(&facts, &self.config.retention, Checkpoint::Release) {
            Verdict::Retire(r) => {
                // A browser the pool does not own outlives its retirement: the
                // lease's context must not stay behind in it.
                let lease_context = instance.prepared.take().map(|p| p.context);
                if let Some(context) = lease_context.filter(|_| instance.foreign_and_reachable()) {
                    let _ = instance.dispose_context(context).await;
                }
                Some(r)
            }
            Verdict::Serve | Verdict::Probe
                if self
                    .hooks
                    .run(HookPoint::AfterRelease, self.config.cdp_timeout, || {
                        instance.hook_context()
                    })
                    .await
                    .is_err() =>
            {
                Some(RetireReason::Hook)
            }
            Verdict::Serve | Verdict::Probe => match instance.recycle(isolation, opened).await {
                Ok(()) => {
                    tracing::trace!(pool = self.id, browser = instance.id, "recycled");
                    None
                }
                Err(e) => {
                    tracing::warn!(browser = instance.id, error = %e, "browser failed to recycle");
                    instance.mark_dead(&e.to_string());
                    // A remote browser found gone is its endpoint's loss,
                    // not a crash.
                    Some(after_failure(
                        instance.death().is_some() && instance.launched(),
                    ))
                }
            },
        };
        match reason {
            Some(reason) => {
                drop(busy);
                self.retire(instance, reason);
            }
            None => {
                // Refused when the pool closed meanwhile.
                if let Some(instance) = busy.into_idle(instance) {
                    self.retire(instance, RetireReason::Closed);
                }
            }
        }
    }
}

/// A browser between the idle queue (or its launch) and a lease. Dropped
/// while it still holds the browser (the acquire was cancelled), it retires
/// it: the browser is shut down and leaves the memory watch, instead of
/// living on as a ghost that keeps charging the budget.
pub(super) struct InFlight<'a> {
    inner: &'a Arc<PoolInner>,
    instance: Option<Instance>,
}

impl<'a> InFlight<'a> {
    pub(super) fn new(inner: &'a Arc<PoolInner>, instance: Instance) -> InFlight<'a> {
        InFlight {
            inner,
            instance: Some(instance),
        }
    }

    /// The browser, while in flight.
    pub(super) fn get(&mut self) -> &mut Instance {
        // Present until `retire` or `into_instance` consumes `self`.
        self.instance
            .as_mut()
            .expect("an in-flight browser is held until it lands")
    }

    /// Retires the browser for `reason`.
    pub(super) fn retire(mut self, reason: RetireReason) {
        if let Some(instance) = self.instance.take() {
            self.inner.retire(instance, reason);
        }
    }

    /// The browser, landed in a lease.
    pub(super) fn into_instance(mut self) -> Instance {
        self.instance
            .take()
            .expect("an in-flight browser is held until it lands")
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        if let Some(instance) = self.instance.take() {
            tracing::debug!(
                browser = instance.id,
                "acquire cancelled; retiring its browser"
            );
            self.inner.retire(instance, RetireReason::Cancelled);
        }
    }
}
