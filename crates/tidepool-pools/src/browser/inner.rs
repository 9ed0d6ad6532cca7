//! The pool's state behind its lock, and the accounting of its slots: what
//! [`BrowserPool`](super::BrowserPool), its leases and its maintenance loop
//! share. No lock here is held across a CDP call.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use chromiumoxide::cdp::browser_protocol::target::TargetId;
use tokio::sync::{Notify, Semaphore};
use tokio::task::JoinHandle;

use super::config::{BrowserPoolConfig, BrowserSource};
use super::fleet::{Fleet, FleetSlot, Refusal};
use super::hooks::{HookPoint, Hooks};
use super::instance::{Instance, Liveness, Room};
use super::isolation::Isolation;
use super::sampler::{Gauge, Members};
use super::stats::{BrowserRecorder, RetireReason};
use super::watch::{Alive, AliveToken};
use crate::error::{Error, Result};
use crate::memory::{tree_memory, MemoryPolicy};
use crate::recording::gauge_add;

/// How long a retiring browser gets to close by itself before SIGKILL.
pub(super) const CLOSE_GRACE: Duration = Duration::from_secs(2);

/// The pool's shared state: its config, the idle queue and the counts of
/// every slot, the recorder and the memory watch. [`BrowserPool`](super::BrowserPool)
/// and each [`Lease`](super::Lease) hold it.
#[derive(Debug)]
pub(crate) struct PoolInner {
    pub(crate) config: BrowserPoolConfig,
    pub(super) executable: Option<PathBuf>,
    pub(super) id: u64,
    pub(super) state: Mutex<State>,
    pub(crate) permits: Arc<Semaphore>,
    /// An idle browser arrived or a slot was freed.
    pub(super) changed: Notify,
    /// Something for the maintainer to do.
    pub(super) maintain: Notify,
    /// Browsers started and not yet dropped; see [`AliveToken`].
    pub(super) alive: Arc<Alive>,
    pub(crate) recorder: BrowserRecorder,
    /// Launched browsers under memory watch.
    pub(crate) members: Members,
    /// The memory limits of one browser: the config's, per lease, times
    /// `leases_per_browser`.
    pub(crate) browser_memory: Option<MemoryPolicy>,
    /// Every browser started, for opening more slots in it; ended ones are
    /// dropped as they are found.
    pub(super) rooms: Mutex<Vec<Room>>,
    pub(crate) started: Instant,
    pub(super) next_browser: AtomicU64,
    pub(super) next_lease: AtomicU64,
    pub(crate) closed: AtomicBool,
    pub(super) maintainer: Mutex<Option<JoinHandle<()>>>,
    pub(crate) runtime: tokio::runtime::Handle,
    /// The service's lifecycle hooks.
    pub(super) hooks: Hooks,
    /// The remote endpoints and where each stands, in connect mode.
    pub(crate) fleet: Option<Arc<Fleet>>,
}

#[derive(Debug, Default)]
pub(super) struct State {
    pub(super) idle: VecDeque<Instance>,
    // The counts below change only through the methods of State and
    // SlotGuard, each move between them under one lock.
    leased: usize,
    starting: usize,
    /// Taken out of idle or returned by a lease, being probed or re-prepared.
    busy: usize,
    /// Retirements not yet made up by the maintainer.
    owed_replacements: usize,
    /// The sizes last added to the process-wide gauges ([`SIZE_GAUGES`]).
    published: [usize; 4],
}

/// The gauges of a pool's sizes, in the order of [`State::sizes`]. Each pool
/// adds its changes, so a gauge sums the pools of the process.
const SIZE_GAUGES: [&str; 4] = [
    "tidepool_browser_idle",
    "tidepool_browser_in_use",
    "tidepool_browser_starting",
    "tidepool_browser_busy",
];

impl State {
    /// Browsers counted against `max_size`: idle, leased, starting and busy.
    pub(super) fn total(&self) -> usize {
        self.idle.len() + self.leased + self.starting + self.busy
    }

    /// Browsers held by leases.
    pub(super) fn leased(&self) -> usize {
        self.leased
    }

    /// Browsers being launched or connected.
    pub(super) fn starting(&self) -> usize {
        self.starting
    }

    /// Browsers being probed or re-prepared.
    pub(super) fn busy(&self) -> usize {
        self.busy
    }

    /// Counts one more browser in `slot`.
    pub(super) fn count(&mut self, slot: Slot) {
        *self.slot_mut(slot) += 1;
    }

    /// Counts one browser fewer in `slot`.
    pub(super) fn uncount(&mut self, slot: Slot) {
        let n = self.slot_mut(slot);
        debug_assert!(*n > 0, "uncounting an empty {slot:?} slot");
        *n = n.saturating_sub(1);
    }

    fn slot_mut(&mut self, slot: Slot) -> &mut usize {
        match slot {
            Slot::Starting => &mut self.starting,
            Slot::Busy => &mut self.busy,
            Slot::Leased => &mut self.leased,
        }
    }

    /// The browser idle the shortest time (the warmest), counted busy from
    /// here on. In connect mode, given each endpoint's `loads` (up, live
    /// leases), the warmest slot on the up endpoint with the fewest leases.
    pub(super) fn take_newest_idle(&mut self, loads: Option<&[(bool, usize)]>) -> Option<Instance> {
        let at = match loads {
            None => self.idle.len().checked_sub(1)?,
            Some(loads) => {
                let load = |i: &Instance| {
                    let (up, leased) = i
                        .fleet_slot
                        .as_ref()
                        .and_then(|s| loads.get(s.index))
                        .copied()
                        .unwrap_or((true, 0));
                    (!up, leased)
                };
                // Newest first among equals: `min_by_key` keeps the first.
                let (at, _) = self
                    .idle
                    .iter()
                    .enumerate()
                    .rev()
                    .min_by_key(|(_, i)| load(i))?;
                at
            }
        };
        let instance = self.idle.remove(at)?;
        self.count(Slot::Busy);
        Some(instance)
    }

    fn sizes(&self) -> [usize; 4] {
        [self.idle.len(), self.leased, self.starting, self.busy]
    }

    /// Adds the changes since the last call to the size gauges.
    fn publish(&mut self) {
        let now = self.sizes();
        for ((name, now), before) in SIZE_GAUGES.iter().zip(now).zip(self.published) {
            gauge_add(name, now as f64 - before as f64);
        }
        self.published = now;
    }

    /// A retirement the maintainer should make up for.
    pub(super) fn owe_replacement(&mut self) {
        self.owed_replacements += 1;
    }

    /// Whether a started browser makes up for a retirement (and pays it).
    pub(super) fn pay_replacement(&mut self) -> bool {
        let owed = self.owed_replacements > 0;
        self.owed_replacements = self.owed_replacements.saturating_sub(1);
        owed
    }
}

impl PoolInner {
    pub(super) fn lock(&self) -> StateGuard<'_> {
        // The lock guards plain counters; a panic elsewhere cannot leave them
        // half-updated in a way worth refusing to read.
        StateGuard(self.state.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// Takes the idle slots of browser `id` out of the idle queue.
    pub(crate) fn take_idle(&self, id: u64) -> Vec<Instance> {
        let mut state = self.lock();
        let (of_id, others): (VecDeque<_>, _) = std::mem::take(&mut state.idle)
            .into_iter()
            .partition(|i| i.id == id);
        state.idle = others;
        of_id.into()
    }

    /// Moves a browser from leased to busy, ahead of its recycling.
    pub(crate) fn lease_ended(&self) {
        let mut state = self.lock();
        state.uncount(Slot::Leased);
        state.count(Slot::Busy);
    }

    pub(super) fn acquire_timeout(&self, started: Instant) -> Error {
        self.recorder.acquire_timeouts.incr();
        Error::AcquireTimeout {
            waited: started.elapsed(),
            max_size: self.config.max_size,
            in_use: self.lock().leased(),
        }
    }

    pub(super) fn budget(&self) -> Option<u64> {
        self.config
            .memory
            .as_ref()
            .and_then(|m| m.pool_budget_bytes)
    }

    /// Whether the pool's browsers together use the budget up: then nothing
    /// is launched until one leaves or a sample finds them smaller.
    pub(super) fn over_budget(&self) -> bool {
        self.budget()
            .is_some_and(|budget| self.members.total_bytes() >= budget)
    }

    /// After each sample, under a budget with room: acquirers waiting on it
    /// look again. (`notify_waiters` wakes only those waiting now and stores
    /// nothing, so with no waiter it costs nothing.)
    pub(crate) fn budget_sampled(&self) {
        if self.budget().is_some() && !self.over_budget() {
            self.changed.notify_waiters();
        }
    }

    /// A new slot, prepared: in a started browser with room for it (see
    /// [`BrowserPoolConfig::leases_per_browser`]), or in a new browser.
    pub(super) async fn start_slot(self: &Arc<Self>) -> Result<Instance> {
        self.start_slot_if_room()
            .await?
            .ok_or_else(|| {
                Error::Timeout {
            key: "a free slot on a fleet endpoint (every endpoint up holds max_leases_per_endpoint)"
                .into(),
            after: Duration::ZERO,
        }
            })
    }

    /// [`start_slot`](Self::start_slot), or `None` when every fleet endpoint
    /// up holds its cap of slots: the caller then waits for one of them to
    /// come back idle, as it would at `max_size`.
    pub(super) async fn start_slot_if_room(self: &Arc<Self>) -> Result<Option<Instance>> {
        if let Some(fleet) = &self.fleet {
            return self.start_fleet_slot(fleet).await;
        }
        let Some(mut slot) = self.open_room(None) else {
            return self.start_instance().await.map(Some);
        };
        match slot.prepare().await {
            Ok(()) => {
                tracing::debug!(
                    pool = self.id,
                    browser = slot.id,
                    slots = slot.slots(),
                    "slot opened"
                );
                Ok(Some(slot))
            }
            Err(e) => {
                self.retire(slot, RetireReason::Unhealthy);
                Err(e)
            }
        }
    }

    /// An unprepared slot in the first started browser with room for one
    /// (on fleet endpoint `on`, in connect mode).
    fn open_room(&self, on: Option<usize>) -> Option<Instance> {
        let max = self.config.slots_per_browser();
        if max <= 1 {
            return None;
        }
        let mut rooms = self.rooms.lock().unwrap_or_else(|p| p.into_inner());
        rooms.retain(|r| !r.ended());
        rooms
            .iter()
            .filter(|r| r.fleet_index == on)
            .find_map(|r| r.open(max))
    }

    /// A new slot on a fleet endpoint: the one with the fewest slots that
    /// is up and under its cap, in the connection already open to it if
    /// that has room, else in a new one. An endpoint that fails to connect
    /// is marked lost and the next one tried; with none up, the endpoints
    /// due for a retry are retried here, and the error names them all.
    async fn start_fleet_slot(self: &Arc<Self>, fleet: &Arc<Fleet>) -> Result<Option<Instance>> {
        let mut tried = Vec::new();
        let mut retried = false;
        loop {
            let ticket = match fleet.choose(&tried) {
                Ok(ticket) => ticket,
                // Slots come back to idle: waiting for room would wait for
                // a slot to close, which may never happen.
                Err(Refusal::AtCapacity) => return Ok(None),
                Err(Refusal::NoneUp(e)) if retried || !tried.is_empty() => return Err(e),
                Err(Refusal::NoneUp(e)) => {
                    retried = true;
                    if self.retry_endpoints().await {
                        continue;
                    }
                    return Err(e);
                }
            };
            let index = ticket.index;
            if let Some(mut slot) = self.open_room(Some(index)) {
                slot.fleet_slot = Some(ticket);
                match slot.prepare().await {
                    Ok(()) => return Ok(Some(slot)),
                    Err(e) => {
                        tracing::debug!(pool = self.id, endpoint = index, error = %e, "a slot did not open");
                        self.retire(slot, RetireReason::Unhealthy);
                        tried.push(index);
                        continue;
                    }
                }
            }
            // With slots sharing a connection, one opens at a time per
            // endpoint; the others wait and take a slot in it.
            let claim = if self.config.slots_per_browser() > 1 {
                let finished = fleet.connect_finished();
                tokio::pin!(finished);
                finished.as_mut().enable();
                match fleet.claim_connect(index) {
                    Some(claim) => Some(claim),
                    None => {
                        // The opening's end wakes this; the bound covers a
                        // room that filled meanwhile.
                        let _ = tokio::time::timeout(Duration::from_millis(100), finished).await;
                        drop(ticket);
                        continue;
                    }
                }
            } else {
                None
            };
            let started = self.start_instance_with(None, Some(ticket)).await;
            drop(claim);
            match started {
                Ok(instance) => return Ok(Some(instance)),
                Err(e) => {
                    fleet.lost(index, &e.to_string());
                    tried.push(index);
                }
            }
        }
    }

    /// Retries every fleet endpoint due for it, at once: each is resolved,
    /// connected to and asked for its version. Returns whether one came
    /// back up.
    pub(super) async fn retry_endpoints(self: &Arc<Self>) -> bool {
        let Some(fleet) = &self.fleet else {
            return false;
        };
        let due = fleet.due_retries();
        if due.is_empty() {
            return false;
        }
        let timeout = self.config.cdp_timeout;
        let retries = due.into_iter().map(|(index, endpoint)| async move {
            let outcome = answers(&endpoint, timeout).await;
            let up = outcome.is_ok();
            fleet.retried(index, outcome);
            up
        });
        let any = futures::future::join_all(retries)
            .await
            .into_iter()
            .any(|up| up);
        if any {
            self.changed.notify_waiters();
            self.maintain.notify_one();
        }
        any
    }

    /// Lets later slots open in `instance`'s browser.
    fn add_room(&self, instance: &Instance) {
        self.rooms
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(instance.room());
    }

    /// Launches or connects one browser and prepares its first context.
    pub(super) async fn start_instance(&self) -> Result<Instance> {
        self.start_instance_with(None, None).await
    }

    /// [`start_instance`](Self::start_instance); with `connected`, the
    /// browser takes other slots as soon as it is connected, and
    /// `connected` says so, so that the pool's warm-up prepares every slot
    /// at once instead of the first before the others (a context and page
    /// cost ~0.1 s each on two cores). In connect mode, `on` is the fleet
    /// endpoint chosen for it.
    pub(super) async fn start_instance_with(
        &self,
        connected: Option<tokio::sync::oneshot::Sender<()>>,
        on: Option<FleetSlot>,
    ) -> Result<Instance> {
        let started = Instant::now();
        let id = self.next_browser.fetch_add(1, Ordering::Relaxed);
        let c = &self.config;
        let mut instance = match (&c.source, &self.executable) {
            (BrowserSource::Launch { .. }, Some(exe)) => {
                let tag = format!("{}{}-{id}", super::leftovers::own_tag_prefix(), self.id);
                Instance::launch(
                    id,
                    exe,
                    &c.flags,
                    c.sandbox,
                    &tag,
                    c.launch_timeout,
                    c.cdp_timeout,
                )
                .await?
            }
            (BrowserSource::Connect { .. }, _) => {
                let Some(on) = on else {
                    return Err(Error::config(
                        "browser.source",
                        "connect mode without a fleet endpoint chosen",
                    ));
                };
                let endpoint = on.fleet().endpoint(on.index);
                // A remote browser answers in milliseconds or is down: the
                // CDP deadline, not the launch one, bounds the attempt.
                let timeout = c.cdp_timeout.min(c.launch_timeout);
                let url = super::endpoint::resolve(&endpoint, timeout).await?;
                let liveness = Liveness {
                    heartbeat: c.fleet.heartbeat,
                };
                let mut instance =
                    Instance::connect(id, &url, timeout, c.cdp_timeout, liveness).await?;
                watch_endpoint(&instance, on.fleet().clone(), on.index);
                instance.fleet_slot = Some(on);
                instance
            }
            (BrowserSource::Launch { .. }, None) => {
                return Err(Error::config(
                    "browser.source",
                    "launch mode without an executable",
                ))
            }
        };
        instance.hidden_pages = c.hidden_pages;
        let early_room = connected.is_some();
        if let Some(connected) = connected {
            self.add_room(&instance);
            let _ = connected.send(());
        }
        if let Err(e) = instance.prepare().await {
            instance.shut_down(CLOSE_GRACE).await;
            return Err(e);
        }
        let after_launch = self.hooks.run(HookPoint::AfterLaunch, c.cdp_timeout, || {
            instance.hook_context()
        });
        if let Err(e) = after_launch.await {
            self.recorder.retired(RetireReason::Hook);
            instance.shut_down(CLOSE_GRACE).await;
            return Err(e);
        }
        let _ = instance.core.alive.set(AliveToken::new(&self.alive));
        let gauge = match instance.pid() {
            Some(pid) => Gauge::Process(pid),
            None => Gauge::Remote {
                browser: instance.browser.clone(),
                contexts: instance.core.contexts.clone(),
            },
        };
        // Under a budget a new browser counts from its start, not from the
        // next sample, or a burst of acquires could all launch past it.
        let first = match (&gauge, self.budget()) {
            (Gauge::Process(pid), Some(_)) => {
                let pid = *pid;
                tokio::task::spawn_blocking(move || tree_memory(pid).total_bytes)
                    .await
                    .unwrap_or(0)
            }
            _ => 0,
        };
        let memory = self.browser_memory.as_ref();
        self.members
            .add(id, gauge, instance.gone_sender(), memory, first);
        self.recorder.launched.incr();
        self.recorder.record_launch(started.elapsed());
        if !early_room {
            self.add_room(&instance);
        }
        tracing::debug!(pool = self.id, browser = id, pid = ?instance.pid(), "browser started");
        Ok(instance)
    }

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
            inner.changed.notify_one();
            inner.maintain.notify_one();
        });
    }

    /// Where a lease's browser goes when the lease ends: back to idle, readied
    /// to the lease's `isolation`, or into retirement.
    pub(crate) async fn release(
        self: Arc<Self>,
        mut instance: Instance,
        isolation: Isolation,
        opened: Vec<TargetId>,
    ) {
        // lease_ended() counted this browser busy; the guard uncounts it.
        let slot = SlotGuard::new(&self, Slot::Busy);
        tracing::trace!(
            pool = self.id,
            browser = instance.id,
            ?isolation,
            "recycling a released browser"
        );
        let uses = instance.count_use();
        instance.last_used = Instant::now();
        let reason = if self.closed.load(Ordering::SeqCst) {
            Some(RetireReason::Closed)
        } else if let Some(reason) = death_reason(&instance) {
            Some(reason)
        } else if let Some(reason) = instance.draining() {
            Some(reason)
        } else if self.config.max_uses.is_some_and(|max| uses >= max) {
            Some(RetireReason::MaxUses)
        } else if self.config.retention.expired(instance.created) {
            Some(RetireReason::Lifetime)
        } else if (instance.fleet_slot.as_ref()).is_some_and(|s| s.fleet().over_share(s.index)) {
            Some(RetireReason::Rebalanced)
        } else {
            None
        };
        let reason = match reason {
            Some(r) => {
                // A browser the pool does not own outlives its retirement: the
                // lease's context must not stay behind in it.
                let lease_context = instance.prepared.take().map(|p| p.context);
                if let Some(context) = lease_context.filter(|_| instance.foreign_and_reachable()) {
                    let _ = instance.dispose_context(context).await;
                }
                Some(r)
            }
            None if self
                .hooks
                .run(HookPoint::AfterRelease, self.config.cdp_timeout, || {
                    instance.hook_context()
                })
                .await
                .is_err() =>
            {
                Some(RetireReason::Hook)
            }
            None => match instance.recycle(isolation, opened).await {
                Ok(()) => {
                    tracing::trace!(pool = self.id, browser = instance.id, "recycled");
                    None
                }
                Err(e) => {
                    tracing::warn!(browser = instance.id, error = %e, "browser failed to recycle");
                    instance.mark_dead(&e.to_string());
                    Some(if instance.death().is_some() && instance.launched() {
                        RetireReason::Crashed
                    } else {
                        RetireReason::Unhealthy
                    })
                }
            },
        };
        match reason {
            Some(reason) => {
                drop(slot);
                self.retire(instance, reason);
            }
            None if self.closed.load(Ordering::SeqCst) => {
                drop(slot);
                self.retire(instance, RetireReason::Closed);
            }
            None => {
                if let Some(instance) = slot.into_idle(instance) {
                    self.retire(instance, RetireReason::Closed);
                }
            }
        }
    }
}

/// Marks `instance`'s fleet endpoint lost when its connection is: closed,
/// its heartbeat missed, or a call finding it gone. Not on an eviction (the
/// pool's own judgement of one browser) nor on the pool's own shutdown of it
/// (which drops the watch unfired).
fn watch_endpoint(instance: &Instance, fleet: Arc<Fleet>, index: usize) {
    let mut dead = instance.dead.clone();
    tokio::spawn(async move {
        let why = match dead.wait_for(Option::is_some).await {
            Ok(why) => why.clone().unwrap_or_default(),
            Err(_) => return,
        };
        if !why.starts_with(super::watch::EVICTED) {
            fleet.lost(index, &why);
        }
    });
}

/// Whether a remote endpoint answers: resolved, connected, and its version
/// read within `timeout` each. The connection is closed again; slots open
/// in it through the pool.
async fn answers(endpoint: &str, timeout: Duration) -> std::result::Result<(), String> {
    let url = super::endpoint::resolve(endpoint, timeout)
        .await
        .map_err(|e| e.to_string())?;
    let config = chromiumoxide::handler::HandlerConfig {
        request_timeout: timeout,
        ..Default::default()
    };
    let (browser, mut handler) = tokio::time::timeout(
        timeout,
        chromiumoxide::Browser::connect_with_config(url.clone(), config),
    )
    .await
    .map_err(|_| format!("no connection to {url} within {timeout:?}"))?
    .map_err(|e| format!("connecting to {url}: {e}"))?;
    let polling = tokio::spawn(async move {
        use futures::StreamExt;
        while handler.next().await.is_some() {}
    });
    let version = tokio::time::timeout(timeout, browser.version()).await;
    polling.abort();
    match version {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(format!("Browser.getVersion on {url}: {e}")),
        Err(_) => Err(format!("no answer from {url} within {timeout:?}")),
    }
}

/// Why a gone browser left: evicted for memory, or crashed; `None` if alive.
pub(super) fn death_reason(instance: &Instance) -> Option<RetireReason> {
    instance.death().map(|_| {
        if instance.evicted() {
            RetireReason::Memory
        } else {
            RetireReason::Crashed
        }
    })
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

/// The state, locked; its sizes reach the gauges as the lock is released,
/// whichever path changed them.
pub(super) struct StateGuard<'a>(MutexGuard<'a, State>);

impl std::ops::Deref for StateGuard<'_> {
    type Target = State;

    fn deref(&self) -> &State {
        &self.0
    }
}

impl std::ops::DerefMut for StateGuard<'_> {
    fn deref_mut(&mut self) -> &mut State {
        &mut self.0
    }
}

impl Drop for StateGuard<'_> {
    fn drop(&mut self) {
        self.0.publish();
    }
}

impl Drop for State {
    fn drop(&mut self) {
        // A dropped pool leaves the gauges as if it had never been.
        self.idle.clear();
        (self.leased, self.starting, self.busy) = (0, 0, 0);
        self.publish();
    }
}

/// Where a browser counted against `max_size` (and not idle) is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Slot {
    /// Being launched or connected.
    Starting,
    /// Taken out of idle or returned by a lease: probed or re-prepared.
    Busy,
    /// Held by a lease.
    Leased,
}

/// Gives a transient slot back when dropped, whatever path the holder takes;
/// the slot must already be counted in the state.
pub(super) struct SlotGuard<'a> {
    inner: &'a PoolInner,
    slot: Slot,
    armed: bool,
}

impl<'a> SlotGuard<'a> {
    pub(super) fn new(inner: &'a PoolInner, slot: Slot) -> SlotGuard<'a> {
        SlotGuard {
            inner,
            slot,
            armed: true,
        }
    }

    /// The slot's browser is ready: it joins the idle queue and the slot is
    /// uncounted under one lock, so no acquire sees the slot free and the
    /// browser missing (and launches past `max_size`).
    ///
    /// Returns the browser instead when the pool has been closed: `closed`
    /// is read under the lock `close()` empties the idle queue under, so no
    /// browser joins the queue after `close()` has emptied it (and waits,
    /// until its deadline, for a browser nobody will retire). The caller
    /// retires what comes back.
    #[must_use = "a browser refused by a closed pool must be retired"]
    pub(super) fn into_idle(self, instance: Instance) -> Option<Instance> {
        let inner = self.inner;
        let mut state = inner.lock();
        let refused = self.into_idle_locked(&mut state, instance);
        drop(state);
        inner.changed.notify_one();
        refused
    }

    /// [`into_idle`](Self::into_idle) under a lock the caller holds.
    #[must_use = "a browser refused by a closed pool must be retired"]
    pub(super) fn into_idle_locked(
        mut self,
        state: &mut State,
        instance: Instance,
    ) -> Option<Instance> {
        state.uncount(self.slot);
        self.armed = false;
        if self.inner.closed.load(Ordering::SeqCst) {
            return Some(instance);
        }
        state.idle.push_back(instance);
        None
    }
}

impl Drop for SlotGuard<'_> {
    fn drop(&mut self) {
        if self.armed {
            self.inner.lock().uncount(self.slot);
            self.inner.changed.notify_one();
            self.inner.maintain.notify_one();
        }
    }
}

impl PoolInner {
    /// Counts a slot and returns its guard.
    pub(super) fn reserve(&self, slot: Slot) -> SlotGuard<'_> {
        self.lock().count(slot);
        SlotGuard::new(self, slot)
    }
}
