use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::sync::{Notify, Semaphore};
use tokio::task::JoinHandle;

use super::config::{BrowserPoolConfig, BrowserSource};
use super::instance::Instance;
use super::lease::Lease;
use super::locate::locate_chromium;
use super::sampler::Gauge;
use super::stats::{PoolStats, RetireReason, StatsRecorder};
use crate::error::{Error, Result};
use crate::memory::tree_memory;

/// How long a retiring browser gets to close by itself before SIGKILL.
const CLOSE_GRACE: Duration = Duration::from_secs(2);

/// How often the maintainer looks at the pool when nothing wakes it.
const MAINTAIN_TICK: Duration = Duration::from_millis(250);

static NEXT_POOL: AtomicU64 = AtomicU64::new(1);

/// A bounded, pre-warmed pool of Chromium browsers.
///
/// Browsers are launched locally or reached at remote `ws://` endpoints (see
/// [`BrowserSource`]). The pool keeps `min_idle` idle browsers ready, never runs
/// more than `max_size`, and retires browsers by idle time, lifetime, use count,
/// failed health probes and crashes. An idle browser already holds the next
/// lease's incognito context with a blank page, prepared in the background after
/// each release, so [`acquire`](BrowserPool::acquire) hands out a page that is
/// ready to navigate.
///
/// No lock is held across a CDP call: the state lock guards only counters and
/// the idle queue, and every browser operation happens on an instance that one
/// task owns at a time.
///
/// # Example
///
/// ```no_run
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// use tidepool::browser::{BrowserPool, BrowserPoolConfig};
///
/// let pool = BrowserPool::new(BrowserPoolConfig::default()).await?;
/// {
///     let lease = pool.acquire().await?;
///     lease.goto("https://example.com").await?;
///     println!("{}", lease.evaluate::<String>("document.title").await?);
/// } // the lease returns its browser here; its context is disposed
/// pool.close().await;
/// # Ok::<(), tidepool::Error>(())
/// # }).unwrap();
/// ```
#[derive(Debug, Clone)]
pub struct BrowserPool {
    pub(crate) inner: Arc<PoolInner>,
}

#[derive(Debug)]
pub(crate) struct PoolInner {
    pub(crate) config: BrowserPoolConfig,
    executable: Option<PathBuf>,
    id: u64,
    state: Mutex<State>,
    pub(crate) permits: Arc<Semaphore>,
    /// An idle browser arrived or a slot was freed.
    changed: Notify,
    /// Something for the maintainer to do.
    maintain: Notify,
    /// Browsers started and not yet dropped; see [`AliveToken`].
    alive: Arc<Alive>,
    pub(crate) stats: StatsRecorder,
    /// Launched browsers under memory watch.
    pub(crate) members: super::sampler::Members,
    pub(crate) started: Instant,
    next_browser: AtomicU64,
    next_lease: AtomicU64,
    pub(crate) closed: AtomicBool,
    maintainer: Mutex<Option<JoinHandle<()>>>,
    pub(crate) runtime: tokio::runtime::Handle,
}

#[derive(Debug, Default)]
struct State {
    idle: VecDeque<Instance>,
    leased: usize,
    starting: usize,
    /// Taken out of idle or returned by a lease, being probed or re-prepared.
    busy: usize,
    /// Retirements not yet made up by the maintainer.
    owed_replacements: usize,
}

impl State {
    fn total(&self) -> usize {
        self.idle.len() + self.leased + self.starting + self.busy
    }
}

enum Next {
    Take(Box<Instance>),
    Launch,
    Wait,
}

impl BrowserPool {
    /// Builds the pool and returns once `warm_up` browsers are ready.
    ///
    /// Fails on an invalid config, a missing Chromium binary, or a warm-up
    /// browser that does not start (the message says why, with its stderr).
    pub async fn new(config: BrowserPoolConfig) -> Result<BrowserPool> {
        config.validate()?;
        let executable = match &config.source {
            BrowserSource::Launch { executable } => Some(locate_chromium(executable.as_deref())?),
            BrowserSource::Connect { .. } => None,
        };
        let inner = Arc::new(PoolInner {
            permits: Arc::new(Semaphore::new(config.max_size)),
            config,
            executable,
            id: NEXT_POOL.fetch_add(1, Ordering::Relaxed),
            state: Mutex::new(State::default()),
            changed: Notify::new(),
            maintain: Notify::new(),
            alive: Arc::new(Alive::default()),
            stats: StatsRecorder::default(),
            members: Default::default(),
            started: Instant::now(),
            next_browser: AtomicU64::new(1),
            next_lease: AtomicU64::new(1),
            closed: AtomicBool::new(false),
            maintainer: Mutex::new(None),
            runtime: tokio::runtime::Handle::current(),
        });
        let pool = BrowserPool { inner };
        let warm_up = pool.inner.config.warm_up;
        let started = futures::future::join_all((0..warm_up).map(|_| async {
            let _slot = pool.inner.reserve(Slot::Starting);
            pool.inner.start_instance().await
        }))
        .await;
        let mut first_error = None;
        for result in started {
            match result {
                Ok(instance) => pool.inner.lock().idle.push_back(instance),
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        if let Some(e) = first_error {
            pool.close().await;
            return Err(e);
        }
        let weak = Arc::downgrade(&pool.inner);
        let handle = tokio::spawn(PoolInner::maintain_loop(weak.clone()));
        *pool
            .inner
            .maintainer
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = Some(handle);
        if let Some(policy) = pool.inner.config.memory.clone() {
            // Ends by itself when the pool is dropped or closed.
            drop(tokio::spawn(super::sampler::run(weak, policy)));
        }
        tracing::info!(pool = pool.inner.id, warm_up, "browser pool ready");
        Ok(pool)
    }

    /// Takes a browser for exclusive use, waiting in FIFO order when all
    /// `max_size` are leased, up to `acquire_timeout`.
    ///
    /// The lease works in its own incognito context, with a blank page ready
    /// ([`Lease::page`]). Dropping the lease returns the browser.
    pub async fn acquire(&self) -> Result<Lease> {
        let inner = &self.inner;
        let started = Instant::now();
        let deadline = tokio::time::Instant::now() + inner.config.acquire_timeout;
        if inner.closed.load(Ordering::SeqCst) {
            return Err(Error::PoolClosed { what: "browser" });
        }
        let must_wait = inner.permits.available_permits() == 0;
        if must_wait {
            inner.stats.acquire_waits.fetch_add(1, Ordering::Relaxed);
        }
        let permit =
            match tokio::time::timeout_at(deadline, inner.permits.clone().acquire_owned()).await {
                Ok(Ok(permit)) => permit,
                Ok(Err(_)) => return Err(Error::PoolClosed { what: "browser" }),
                Err(_) => return Err(inner.acquire_timeout(started)),
            };
        let mut budget_counted = false;
        loop {
            let notified = inner.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            // Read before the state lock: the two locks are never nested.
            let over_budget = inner.over_budget();
            let next = {
                let mut state = inner.lock();
                if let Some(instance) = state.idle.pop_back() {
                    state.busy += 1;
                    Next::Take(Box::new(instance))
                } else if state.total() < inner.config.max_size && !over_budget {
                    state.starting += 1;
                    Next::Launch
                } else {
                    if state.total() < inner.config.max_size && !budget_counted {
                        budget_counted = true;
                        inner.stats.budget_waits.fetch_add(1, Ordering::Relaxed);
                        tracing::debug!(
                            pool = inner.id,
                            "acquire waits: the pool's memory budget is used up"
                        );
                    }
                    Next::Wait
                }
            };
            // The slot taken above is given back when this guard drops: on
            // every path, including a caller that cancels the acquire.
            let _slot = match next {
                Next::Take(_) => Some(SlotGuard::new(inner, Slot::Busy)),
                Next::Launch => Some(SlotGuard::new(inner, Slot::Starting)),
                Next::Wait => None,
            };
            let instance = match next {
                Next::Take(instance) => {
                    let mut instance = *instance;
                    let idle_long =
                        instance.last_checked.elapsed() > inner.config.health_check_interval;
                    let healthy = match instance.death() {
                        Some(_) => false,
                        None if idle_long => instance
                            .probe(inner.config.health_check_timeout)
                            .await
                            .is_ok(),
                        None => true,
                    };
                    if !healthy || instance.prepare().await.is_err() {
                        let reason = if instance.death().is_some() {
                            RetireReason::Crashed
                        } else {
                            RetireReason::Unhealthy
                        };
                        inner.retire(instance, reason);
                        continue;
                    }
                    instance
                }
                Next::Launch => {
                    match tokio::time::timeout_at(deadline, inner.start_instance()).await {
                        Ok(Ok(instance)) => instance,
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
            if inner.closed.load(Ordering::SeqCst) {
                inner.retire(instance, RetireReason::Closed);
                return Err(Error::PoolClosed { what: "browser" });
            }
            inner.lock().leased += 1;
            inner.stats.acquires.fetch_add(1, Ordering::Relaxed);
            inner.stats.record_acquire(started.elapsed());
            let lease_id = inner.next_lease.fetch_add(1, Ordering::Relaxed);
            return Ok(Lease::new(self.inner.clone(), instance, permit, lease_id));
        }
    }

    /// Waits until at least `n` browsers are idle and prepared, or `timeout`
    /// passes; returns whether they are. For start-up sequencing and for
    /// measurements that must begin from a warm pool.
    pub async fn wait_until_idle(&self, n: usize, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.inner.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self
                .inner
                .lock()
                .idle
                .iter()
                .filter(|i| i.prepared.is_some())
                .count()
                >= n
            {
                return true;
            }
            self.inner.maintain.notify_one();
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return false;
            }
        }
    }

    /// Counters and current sizes.
    pub fn stats(&self) -> PoolStats {
        let state = self.inner.lock();
        self.inner
            .stats
            .snapshot(state.idle.len(), state.leased, state.starting + state.busy)
    }

    /// Acquire latencies so far, in milliseconds.
    pub fn acquire_latencies_ms(&self) -> Vec<f64> {
        self.inner.stats.acquire_latencies_ms()
    }

    /// Memory-policy events so far (soft-limit warnings and clears, evictions).
    pub fn memory_events(&self) -> Vec<super::sampler::MemoryEvent> {
        self.inner
            .members
            .events
            .lock()
            .map(|e| e.clone())
            .unwrap_or_default()
    }

    /// The last memory figure of each browser, bytes, by browser id: the PSS
    /// of a launched browser's process tree, the V8 heaps of the pool's pages
    /// in a connected one.
    pub fn browser_memory(&self) -> std::collections::BTreeMap<u64, u64> {
        let members = self.inner.members.lock();
        members.iter().map(|(id, m)| (*id, m.last_bytes)).collect()
    }

    /// The pids of the browsers this pool launched and that are alive now:
    /// idle, leased or recycling.
    pub fn pids(&self) -> Vec<u32> {
        self.inner.members.pids()
    }

    /// Takes the latch off the pool's soft-limit trackers, so a browser
    /// hovering over the soft limit is warned about on every sample. For the
    /// negative control of `one_warning_per_crossing` only.
    pub(crate) fn unlatch_soft_limit_for_control(&self) {
        self.inner.members.unlatch_for_control();
    }

    /// Closes every browser (`Browser.close`, SIGKILL after a grace period, reap,
    /// leftover processes killed, profile removed), stops the background task,
    /// and waits for leased browsers to come back and be closed too (up to
    /// `acquire_timeout`). Connected browsers are left running; only the pool's
    /// contexts in them are disposed.
    pub async fn close(&self) {
        let inner = &self.inner;
        inner.closed.store(true, Ordering::SeqCst);
        inner.permits.close();
        if let Some(handle) = inner
            .maintainer
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
        {
            handle.abort();
        }
        let idle: Vec<Instance> = inner.lock().idle.drain(..).collect();
        for instance in idle {
            inner.retire(instance, RetireReason::Closed);
        }
        let deadline = tokio::time::Instant::now() + inner.config.acquire_timeout + CLOSE_GRACE * 3;
        loop {
            let drained = inner.alive.drained.notified();
            tokio::pin!(drained);
            drained.as_mut().enable();
            let alive = inner.alive.count.load(Ordering::SeqCst) + inner.lock().starting;
            if alive == 0 {
                break;
            }
            if tokio::time::timeout_at(deadline, drained).await.is_err() {
                tracing::warn!(
                    pool = inner.id,
                    alive,
                    "close: browsers still alive after the deadline"
                );
                break;
            }
        }
        tracing::info!(pool = inner.id, "browser pool closed");
    }
}

impl PoolInner {
    fn lock(&self) -> MutexGuard<'_, State> {
        // The lock guards plain counters; a panic elsewhere cannot leave them
        // half-updated in a way worth refusing to read.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Takes browser `id` out of the idle queue, if it is there.
    pub(crate) fn take_idle(&self, id: u64) -> Option<Instance> {
        let mut state = self.lock();
        let at = state.idle.iter().position(|i| i.id == id)?;
        state.idle.remove(at)
    }

    /// Moves a browser from leased to busy, ahead of its recycling.
    pub(crate) fn lease_ended(&self) {
        let mut state = self.lock();
        state.leased -= 1;
        state.busy += 1;
    }

    fn acquire_timeout(&self, started: Instant) -> Error {
        self.stats.acquire_timeouts.fetch_add(1, Ordering::Relaxed);
        Error::AcquireTimeout {
            waited: started.elapsed(),
            max_size: self.config.max_size,
            in_use: self.lock().leased,
        }
    }

    fn budget(&self) -> Option<u64> {
        self.config
            .memory
            .as_ref()
            .and_then(|m| m.pool_budget_bytes)
    }

    /// Whether the pool's browsers together use the budget up: then nothing
    /// is launched until one leaves or a sample finds them smaller.
    fn over_budget(&self) -> bool {
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

    /// Launches or connects one browser and prepares its first context.
    async fn start_instance(&self) -> Result<Instance> {
        let id = self.next_browser.fetch_add(1, Ordering::Relaxed);
        let c = &self.config;
        let mut instance = match (&c.source, &self.executable) {
            (BrowserSource::Launch { .. }, Some(exe)) => {
                let tag = format!("{}{}-{id}", super::process::own_tag_prefix(), self.id);
                Instance::launch(id, exe, &c.flags, &tag, c.launch_timeout, c.cdp_timeout).await?
            }
            (BrowserSource::Connect { endpoints }, _) => {
                let url = &endpoints[(id as usize - 1) % endpoints.len()];
                Instance::connect(id, url, c.launch_timeout, c.cdp_timeout).await?
            }
            (BrowserSource::Launch { .. }, None) => {
                return Err(Error::config(
                    "browser.source",
                    "launch mode without an executable",
                ))
            }
        };
        if let Err(e) = instance.prepare().await {
            instance.shut_down(CLOSE_GRACE).await;
            return Err(e);
        }
        instance.alive = Some(AliveToken::new(&self.alive));
        let gauge = match instance.pid() {
            Some(pid) => Gauge::Process(pid),
            None => Gauge::Remote {
                browser: instance.browser.clone(),
                contexts: instance.contexts.clone(),
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
        let memory = self.config.memory.as_ref();
        self.members
            .add(id, gauge, instance.gone_sender(), memory, first);
        self.stats.launched.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(pool = self.id, browser = id, pid = ?instance.pid(), "browser started");
        Ok(instance)
    }

    /// Shuts a browser down in the background and frees its slot.
    pub(crate) fn retire(self: &Arc<Self>, instance: Instance, reason: RetireReason) {
        self.members.remove(instance.id);
        self.stats.retired(reason);
        tracing::debug!(
            pool = self.id,
            browser = instance.id,
            ?reason,
            "retiring browser"
        );
        if !matches!(reason, RetireReason::Closed) {
            self.lock().owed_replacements += 1;
        }
        let inner = self.clone();
        self.runtime.spawn(async move {
            // The instance's AliveToken drops at the end of shut_down.
            instance.shut_down(CLOSE_GRACE).await;
            inner.changed.notify_one();
            inner.maintain.notify_one();
        });
    }

    /// Where a lease's browser goes when the lease ends: back to idle with a
    /// fresh context, or into retirement.
    pub(crate) async fn recycle(self: Arc<Self>, mut instance: Instance) {
        // lease_ended() counted this browser busy; the guard uncounts it.
        let slot = SlotGuard::new(&self, Slot::Busy);
        instance.uses += 1;
        instance.last_used = Instant::now();
        let lease_context = instance.prepared.take().map(|p| p.context);
        let reason = if self.closed.load(Ordering::SeqCst) {
            Some(RetireReason::Closed)
        } else if let Some(reason) = death_reason(&instance) {
            Some(reason)
        } else if self.config.max_uses.is_some_and(|max| instance.uses >= max) {
            Some(RetireReason::MaxUses)
        } else if instance.created.elapsed() >= self.config.max_lifetime {
            Some(RetireReason::Lifetime)
        } else {
            None
        };
        let reason = match reason {
            Some(r) => {
                // A browser the pool does not own outlives its retirement: the
                // lease's context must not stay behind in it.
                if let Some(context) = lease_context.filter(|_| instance.foreign_and_reachable()) {
                    let _ = instance.dispose_context(context).await;
                }
                Some(r)
            }
            None => {
                let disposed = match lease_context {
                    Some(context) => instance.dispose_context(context).await,
                    None => Ok(()),
                };
                match disposed.and(instance.prepare().await) {
                    Ok(()) => None,
                    Err(e) => {
                        tracing::warn!(browser = instance.id, error = %e, "browser failed to recycle");
                        instance.mark_dead(&e.to_string());
                        Some(
                            if instance.death().is_some() && instance.process.is_some() {
                                RetireReason::Crashed
                            } else {
                                RetireReason::Unhealthy
                            },
                        )
                    }
                }
            }
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
                let mut state = self.lock();
                state.idle.push_back(instance);
                state.busy -= 1;
                drop(state);
                slot.defuse();
                self.changed.notify_one();
            }
        }
    }

    /// The background task: retires idle browsers that crashed, idled too long
    /// or fail their probe, and launches replacements up to `min_idle`.
    async fn maintain_loop(weak: std::sync::Weak<PoolInner>) {
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

    async fn maintain_once(self: &Arc<Self>) {
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
                if instance.death().is_some() {
                    idle_count -= 1;
                    dead.push(instance);
                } else if idle_count > c.min_idle && instance.last_used.elapsed() > c.idle_timeout {
                    idle_count -= 1;
                    expired.push(instance);
                } else if instance.last_checked.elapsed() > c.health_check_interval {
                    to_probe.push(instance);
                } else {
                    keep.push_back(instance);
                }
            }
            state.idle = keep;
            state.busy += to_probe.len();
            (dead, expired, to_probe)
        };
        for instance in dead {
            let reason = death_reason(&instance).unwrap_or(RetireReason::Crashed);
            self.retire(instance, reason);
        }
        for instance in expired {
            self.retire(instance, RetireReason::IdleTimeout);
        }
        for mut instance in to_probe {
            let slot = SlotGuard::new(self, Slot::Busy);
            let ok = instance.probe(c.health_check_timeout).await.is_ok();
            if ok {
                // From busy to idle under one lock, never uncounted between.
                let mut state = self.lock();
                state.busy -= 1;
                state.idle.push_back(instance);
                drop(state);
                slot.defuse();
                self.changed.notify_one();
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
        // Top up to min_idle, one launch at a time: on two cores, parallel
        // launches slow every lease in flight.
        loop {
            if self.closed.load(Ordering::SeqCst) {
                return;
            }
            let slot = {
                let state = self.lock();
                let ready_or_coming = state.idle.len() + state.starting;
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
                if state.idle.len() + state.starting >= c.min_idle || state.total() >= c.max_size {
                    return;
                }
                state.starting += 1;
                SlotGuard::new(self, Slot::Starting)
            };
            let started = self.start_instance().await;
            let mut state = self.lock();
            match started {
                Ok(instance) => {
                    // Uncounted as starting and counted idle under one lock:
                    // between the two, an acquire would see a free slot and
                    // launch past max_size.
                    state.starting -= 1;
                    slot.defuse();
                    if state.owed_replacements > 0 {
                        state.owed_replacements -= 1;
                        self.stats.replaced.fetch_add(1, Ordering::Relaxed);
                    }
                    state.idle.push_back(instance);
                    drop(state);
                    self.changed.notify_one();
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
}

/// Why a gone browser left: evicted for memory, or crashed; `None` if alive.
fn death_reason(instance: &Instance) -> Option<RetireReason> {
    instance.death().map(|_| {
        if instance.evicted() {
            RetireReason::Memory
        } else {
            RetireReason::Crashed
        }
    })
}

/// A transient slot counted against `max_size`.
#[derive(Debug, Clone, Copy)]
enum Slot {
    Starting,
    Busy,
}

/// Gives a transient slot back when dropped, whatever path the holder takes;
/// the slot must already be counted in the state.
struct SlotGuard<'a> {
    inner: &'a PoolInner,
    slot: Slot,
    armed: bool,
}

impl<'a> SlotGuard<'a> {
    fn new(inner: &'a PoolInner, slot: Slot) -> SlotGuard<'a> {
        SlotGuard {
            inner,
            slot,
            armed: true,
        }
    }

    /// The caller has uncounted the slot itself, under the lock it already holds.
    fn defuse(mut self) {
        self.armed = false;
    }
}

impl Drop for SlotGuard<'_> {
    fn drop(&mut self) {
        if self.armed {
            let mut state = self.inner.lock();
            match self.slot {
                Slot::Starting => state.starting -= 1,
                Slot::Busy => state.busy -= 1,
            }
            drop(state);
            self.inner.changed.notify_one();
            self.inner.maintain.notify_one();
        }
    }
}

impl PoolInner {
    /// Counts a slot and returns its guard.
    fn reserve(&self, slot: Slot) -> SlotGuard<'_> {
        let mut state = self.lock();
        match slot {
            Slot::Starting => state.starting += 1,
            Slot::Busy => state.busy += 1,
        }
        drop(state);
        SlotGuard::new(self, slot)
    }
}

/// How many started browsers exist; `close` waits for zero.
#[derive(Debug, Default)]
pub(crate) struct Alive {
    count: std::sync::atomic::AtomicUsize,
    drained: Notify,
}

/// Held by each started [`Instance`]: counted alive until the instance is
/// dropped, which happens only after it was shut down (or killed by its
/// process guard), so `close` cannot miss a browser or wait for a ghost.
#[derive(Debug)]
pub(crate) struct AliveToken(Arc<Alive>);

impl AliveToken {
    fn new(alive: &Arc<Alive>) -> AliveToken {
        alive.count.fetch_add(1, Ordering::SeqCst);
        AliveToken(alive.clone())
    }
}

impl Drop for AliveToken {
    fn drop(&mut self) {
        if self.0.count.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.0.drained.notify_waiters();
        }
    }
}
