//! Chromium behind the [`Backend`] seam: the pool's shared state answers
//! what the core asks, each step a CDP call (or a launch) on the slot's
//! browser, and retiring shuts the slot down with its browser when the
//! reason is the browser's.

pub(super) mod connection;
pub(super) mod dialogs;
pub(super) mod downloads;
pub(super) mod endpoint;
pub(super) mod leftovers;
pub(super) mod listener;
pub(super) mod locate;
pub(super) mod page;
pub(super) mod popups;
pub(super) mod process;
pub(super) mod room;
pub(super) mod sampler;
pub(super) mod sandbox;
pub(super) mod settings;
pub(super) mod slot;
pub(super) mod start;
pub(super) mod watch;
pub(super) mod wipe;

use std::sync::Arc;
use std::time::Instant;

use chromiumoxide::cdp::browser_protocol::target::TargetId;
use tokio::sync::Semaphore;

use self::slot::Slot;
use crate::browser::alive::Alive;
use crate::browser::backend::{Backend, Outlook};
use crate::browser::close::CLOSE_GRACE;
use crate::browser::config::BrowserPoolConfig;
use crate::browser::hooks::HookPoint;
use crate::browser::inner::PoolInner;
use crate::browser::isolation::{ContextProxy, Isolation};
use crate::browser::slots::Slots;
use crate::browser::stats::{BrowserRecorder, RetireReason};
use crate::browser::verdict::{after_failure, Checkpoint, Facts};
use crate::error::Result;

/// What a Chromium lease asks of its slot.
#[derive(Debug, Clone)]
pub(crate) struct Ask {
    pub(crate) isolation: Isolation,
    pub(crate) proxy: Option<ContextProxy>,
}

/// What a Chromium lease leaves for its slot's recycling: the isolation it
/// was given, the pages it opened, and whether it blocked requests.
#[derive(Debug, Default)]
pub(crate) struct LeaseEnd {
    pub(crate) isolation: Isolation,
    pub(crate) opened: Vec<TargetId>,
    /// The lease blocked requests on its first page: `Fetch` is still on
    /// there, and nothing fails what it pauses any more.
    pub(crate) blocked: bool,
}

impl Backend for PoolInner {
    type Slot = Slot;
    type Ask = Ask;
    type Used = LeaseEnd;

    fn config(&self) -> &BrowserPoolConfig {
        &self.config
    }

    fn slots(&self) -> &Arc<Slots<Slot>> {
        &self.slots
    }

    fn permits(&self) -> &Arc<Semaphore> {
        &self.permits
    }

    fn alive(&self) -> &Arc<Alive> {
        &self.alive
    }

    fn recorder(&self) -> &BrowserRecorder {
        &self.recorder
    }

    fn runtime(&self) -> &tokio::runtime::Handle {
        &self.runtime
    }

    fn facts(&self, slot: &Slot, closed: bool, at: Checkpoint) -> Facts {
        Facts::of(slot, &self.config, closed, at)
    }

    fn died(&self, slot: &Slot) -> bool {
        slot.death().is_some()
    }

    fn outlook(&self) -> Outlook {
        let fleet_full = self.fleet.as_ref().is_some_and(|f| f.at_capacity());
        Outlook {
            may_start: !self.over_budget() && !fleet_full,
            loads: self.fleet.as_ref().map(|f| f.loads()),
        }
    }

    fn endpoint(slot: &Slot) -> Option<usize> {
        slot.on_endpoint.as_ref().map(|on| on.index)
    }

    async fn open(self: &Arc<Self>) -> Result<Option<Slot>> {
        self.start_slot_if_room().await
    }

    async fn probe<'a>(&'a self, slot: &'a mut Slot) -> Result<()> {
        slot.probe(self.config.retention.health_check_timeout).await
    }

    async fn ready<'a>(&'a self, slot: &'a mut Slot, ask: &'a Ask, fresh: bool) -> Result<()> {
        // A new slot holds the pool's default context: only a lease with a
        // proxy of its own needs another.
        if fresh && ask.proxy.is_none() {
            return Ok(());
        }
        slot.ready(ask.isolation, ask.proxy.clone()).await
    }

    async fn before_lease<'a>(&'a self, slot: &'a Slot) -> Result<()> {
        let deadline = self.config.cdp_timeout;
        (self.hooks)
            .run(HookPoint::BeforeLease, deadline, || slot.hook_context())
            .await
    }

    fn count_use(&self, slot: &mut Slot) {
        slot.count_use();
        slot.last_used = Instant::now();
    }

    async fn after_release<'a>(&'a self, slot: &'a Slot) -> Result<()> {
        let deadline = self.config.cdp_timeout;
        (self.hooks)
            .run(HookPoint::AfterRelease, deadline, || slot.hook_context())
            .await
    }

    async fn recycle<'a>(
        &'a self,
        slot: &'a mut Slot,
        used: LeaseEnd,
    ) -> std::result::Result<(), RetireReason> {
        let recycled = async {
            // A disposed context takes its pages' interception with it.
            if used.blocked && used.isolation != Isolation::Context {
                slot.stop_blocking().await?;
            }
            slot.recycle(used.isolation, used.opened).await
        };
        match recycled.await {
            Ok(()) => Ok(()),
            Err(e) => {
                tracing::warn!(browser = slot.id, error = %e, "browser failed to recycle");
                slot.mark_dead(&e.to_string());
                // A remote browser found gone is its endpoint's loss, not
                // a crash.
                Err(after_failure(slot.death().is_some() && slot.launched()))
            }
        }
    }

    async fn leave<'a>(&'a self, slot: &'a mut Slot) {
        // A browser the pool does not own outlives its retirement: the
        // lease's context must not stay behind in it.
        let lease_context = slot.prepared.take().map(|p| p.context);
        if let Some(context) = lease_context.filter(|_| slot.foreign_and_reachable()) {
            let _ = slot.dispose_context(context).await;
        }
    }

    fn retire(self: &Arc<Self>, slot: Slot, reason: RetireReason) {
        PoolInner::retire(self, slot, reason);
    }

    fn lease_started(&self, slot: &Slot) {
        if let Some(on) = &slot.on_endpoint {
            on.lease_started();
        }
    }

    fn lease_ended(&self, slot: &Slot) {
        if let Some(on) = &slot.on_endpoint {
            on.lease_ended();
        }
    }

    fn stop_background(&self) {
        let maintainer = self.maintainer.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(handle) = maintainer.as_ref() {
            handle.abort();
        }
    }
}

impl PoolInner {
    /// Shuts a slot down in the background, and its browser with it unless
    /// the reason is the slot's own (idleness) and other slots remain: then
    /// the browser is marked retiring, and its other slots follow as they
    /// come by. A browser's retirement is counted once.
    pub(crate) fn retire(self: &Arc<Self>, slot: Slot, reason: RetireReason) {
        // A rebalanced slot leaves alone: its endpoint's other slots serve on.
        let slot_only = matches!(reason, RetireReason::IdleTimeout | RetireReason::Rebalanced);
        let browser_wide = !slot_only || slot.slots() == 1;
        // A rebalanced slot is counted itself; a browser's retirement once.
        let counted = reason == RetireReason::Rebalanced || (browser_wide && slot.drain(reason));
        if counted {
            self.recorder.retired(reason);
        }
        // The last slot leaves the memory watch now, as a lone browser
        // always did; a shared browser leaves it once its last slot ends.
        let last = slot.slots() == 1;
        if last {
            self.members.remove(slot.id);
        }
        tracing::debug!(
            pool = self.id,
            browser = slot.id,
            ?reason,
            last,
            "retiring a slot"
        );
        if !matches!(reason, RetireReason::Closed) {
            self.lock().owe_replacement();
        }
        let inner = self.clone();
        self.runtime.spawn(async move {
            let id = slot.id;
            // The browser's AliveToken drops when its last slot shuts down.
            if slot.shut_down(CLOSE_GRACE).await && !last {
                inner.members.remove(id);
            }
            inner.slots.changed.notify_one();
            inner.slots.maintain.notify_one();
        });
    }
}
