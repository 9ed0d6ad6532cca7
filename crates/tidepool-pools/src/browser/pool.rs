//! The pool's public face: building it, acquiring leases, its snapshot, and
//! closing it. The state it shares with its leases is in `inner`, the
//! retirements in `maintain`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::FutureExt;
use tokio::sync::Semaphore;

use super::acquire::acquire_slot;
use super::alive::Alive;
use super::chromium::locate::locate_chromium;
use super::chromium::settings::LeaseSettings;
use super::chromium::Ask;
use super::config::{BrowserPoolConfig, BrowserSource};
use super::fleet::Fleet;
use super::hooks::Hooks;
use super::inner::PoolInner;
use super::isolation::LeaseOptions;
use super::lease::Lease;
use super::slots::{Phase, Slots};
use super::stats::{BrowserPoolStats, BrowserRecorder, RetireReason};
use crate::error::Result;

static NEXT_POOL: AtomicU64 = AtomicU64::new(1);

/// A bounded, pre-warmed pool of Chromium browsers.
///
/// Browsers are launched locally or reached at remote `ws://` endpoints (see
/// [`BrowserSource`]). The pool keeps `min_idle` idle browsers ready, never runs
/// more than `max_size`, and retires browsers by idle time, lifetime, use count,
/// failed health probes and crashes. With `leases_per_browser` above 1 these
/// counts are of lease slots, several to a browser, each with its own context
/// and page. An idle browser already holds the next
/// lease's incognito context with a blank page, readied in the background after
/// each release to the isolation that lease asked for ([`Isolation`](super::Isolation)),
/// so [`acquire`](BrowserPool::acquire) hands out a page that is ready to
/// navigate.
///
/// No lock is held across a CDP call: the state lock guards only counters and
/// the idle queue, and every browser operation happens on a slot that one
/// task owns at a time.
///
/// # Example
///
/// ```no_run
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// use tidepool_pools::browser::{BrowserPool, BrowserPoolConfig};
///
/// let pool = BrowserPool::new(BrowserPoolConfig::default()).await?;
/// {
///     let lease = pool.acquire().await?;
///     lease.goto("https://example.com").await?;
///     println!("{}", lease.evaluate::<String>("document.title").await?);
/// } // the lease returns its browser here; its context is disposed
/// pool.close().await;
/// # Ok::<(), tidepool_pools::Error>(())
/// # }).unwrap();
/// ```
#[derive(Debug, Clone)]
pub struct BrowserPool {
    pub(crate) inner: Arc<PoolInner>,
}

impl BrowserPool {
    /// Builds the pool and returns once `warm_up` browsers are ready.
    ///
    /// Fails on an invalid config, a missing Chromium binary, or a warm-up
    /// browser that does not start (the message says why, with its stderr).
    pub async fn new(config: BrowserPoolConfig) -> Result<BrowserPool> {
        BrowserPool::with_hooks(config, Hooks::default()).await
    }

    /// [`new`](Self::new) with lifecycle [`Hooks`]: code of the service's
    /// own run after each launch, before each lease, after each release.
    pub async fn with_hooks(config: BrowserPoolConfig, hooks: Hooks) -> Result<BrowserPool> {
        config.validate()?;
        let executable = match &config.source {
            BrowserSource::Launch { executable } => Some(locate_chromium(executable.as_deref())?),
            BrowserSource::Connect { .. } => None,
        };
        if executable.is_some() {
            // What a service killed before it could close its pools left
            // behind: its crashpad handlers and profile directories.
            let _ = tokio::task::spawn_blocking(super::chromium::leftovers::sweep).await;
            super::chromium::leftovers::start_reaper();
        }
        let browser_memory =
            (config.memory.as_ref()).map(|m| m.for_leases(config.slots_per_browser()));
        let fleet = match &config.source {
            BrowserSource::Connect { endpoints } => {
                Some(Arc::new(Fleet::new(endpoints, config.fleet.clone())))
            }
            BrowserSource::Launch { .. } => None,
        };
        let inner = Arc::new(PoolInner {
            permits: Arc::new(Semaphore::new(config.max_size)),
            config,
            executable,
            id: NEXT_POOL.fetch_add(1, Ordering::Relaxed),
            slots: Slots::new(),
            alive: Arc::new(Alive::default()),
            recorder: BrowserRecorder::default(),
            members: Default::default(),
            browser_memory,
            rooms: Mutex::new(Vec::new()),
            started: Instant::now(),
            next_browser: AtomicU64::new(1),
            next_lease: AtomicU64::new(1),
            maintainer: Mutex::new(None),
            runtime: tokio::runtime::Handle::current(),
            hooks,
            fleet,
        });
        let pool = BrowserPool { inner };
        let warm_up = pool.inner.config.warm_up;
        if let Err(e) = pool.warm_up_fleet().await {
            pool.close().await;
            return Err(e);
        }
        // The browsers all at once, and the other slots in them as soon as
        // they are connected, each slot preparing its context and page
        // beside the others.
        let browsers = match pool.inner.fleet {
            Some(_) => 0,
            None => warm_up.div_ceil(pool.inner.config.leases_per_browser),
        };
        let (signals, connected): (Vec<_>, Vec<_>) = (0..browsers)
            .map(|_| tokio::sync::oneshot::channel::<()>())
            .unzip();
        // A browser that fails before it connects drops its signal: the
        // slots then open nowhere, and its error closes the pool below.
        let connected = futures::future::join_all(connected)
            .map(|signals| signals.iter().all(Result::is_ok))
            .shared();
        let launches = signals.into_iter().map(|signal| async {
            let counted = pool.inner.lock().reserve(Phase::Starting);
            (
                counted,
                pool.inner.start_browser_with(Some(signal), None).await,
            )
        });
        let slots = (browsers..warm_up).filter(|_| browsers > 0).map(|_| {
            let connected = connected.clone();
            async {
                if !connected.await {
                    return None;
                }
                let counted = pool.inner.lock().reserve(Phase::Starting);
                Some((counted, pool.inner.start_slot().await))
            }
        });
        let (launched, opened) = futures::future::join(
            futures::future::join_all(launches),
            futures::future::join_all(slots),
        )
        .await;
        let mut first_error = None;
        for (counted, result) in launched.into_iter().chain(opened.into_iter().flatten()) {
            match result {
                Ok(slot) => {
                    if let Some(slot) = counted.into_idle(slot) {
                        pool.inner.retire(slot, RetireReason::Closed);
                    }
                }
                Err(e) => {
                    drop(counted);
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
        if let Some(policy) = pool.inner.browser_memory.clone() {
            // Ends by itself when the pool is dropped or closed.
            drop(tokio::spawn(PoolInner::memory_loop(weak, policy)));
        }
        tracing::info!(pool = pool.inner.id, warm_up, "browser pool ready");
        Ok(pool)
    }

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
        let ask = Ask {
            isolation: options.isolation.unwrap_or(inner.config.isolation),
            proxy: options.context_proxy(),
        };
        let settings = LeaseSettings {
            emulation: options.emulation.or_else(|| inner.config.emulation.clone()),
            blocking: options.blocking.or_else(|| inner.config.blocking.clone()),
            ..LeaseSettings::default()
        };
        let held = acquire_slot(inner, &ask).await?;
        let lease_id = inner.next_lease.fetch_add(1, Ordering::Relaxed);
        let mut lease = Lease::new(held, lease_id, ask.isolation, settings);
        // A lease whose settings failed returns its slot as it drops.
        lease.settle().await?;
        Ok(lease)
    }

    /// In connect mode, the warm-up slots: the first on each endpoint
    /// together, then the rest together in the connections those opened.
    async fn warm_up_fleet(&self) -> Result<()> {
        let (Some(fleet), inner) = (&self.inner.fleet, &self.inner) else {
            return Ok(());
        };
        let warm_up = inner.config.warm_up;
        let first = warm_up.min(fleet.stats().len());
        for round in [first, warm_up - first] {
            let slots = (0..round).map(|_| async {
                let counted = inner.lock().reserve(Phase::Starting);
                (counted, inner.start_slot().await)
            });
            for (counted, result) in futures::future::join_all(slots).await {
                let slot = result?;
                if let Some(slot) = counted.into_idle(slot) {
                    inner.retire(slot, RetireReason::Closed);
                }
            }
        }
        Ok(())
    }

    /// Waits until at least `n` browsers are idle and prepared, or `timeout`
    /// passes; returns whether they are. For start-up sequencing and for
    /// measurements that must begin from a warm pool.
    pub async fn wait_until_idle(&self, n: usize, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.inner.slots.changed.notified();
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
            self.inner.slots.maintain.notify_one();
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return false;
            }
        }
    }

    /// Waits until no returned lease is still being recycled or retired in
    /// the background, and no browser is starting, or `timeout` passes;
    /// returns whether the pool settled. Read [`stats`](Self::stats) after it
    /// when a count must include every lease already dropped: a crash is
    /// counted when its lease's recycling finds it.
    #[cfg(feature = "controls")]
    pub(crate) async fn settle(&self, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.inner.slots.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            {
                let state = self.inner.lock();
                if state.busy() == 0 && state.starting() == 0 {
                    return true;
                }
            }
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            // `changed` wakes one waiter: an acquirer may take the wake-up,
            // so this also looks again every few milliseconds.
            let _ = tokio::time::timeout_at(
                deadline.min(tokio::time::Instant::now() + Duration::from_millis(20)),
                notified,
            )
            .await;
        }
    }

    /// Counters and current sizes.
    pub fn stats(&self) -> BrowserPoolStats {
        let state = self.inner.lock();
        self.inner.recorder.snapshot(
            self.inner.config.max_size,
            state.idle.len(),
            state.leased(),
            state.starting() + state.busy(),
        )
    }

    /// Each remote endpoint's state and counts, in the order of
    /// [`BrowserSource::Connect`]'s list; empty for a pool that launches.
    pub fn endpoints(&self) -> Vec<super::fleet::EndpointStats> {
        self.inner
            .fleet
            .as_ref()
            .map(|f| f.stats())
            .unwrap_or_default()
    }

    /// Memory-policy events so far (soft-limit warnings and clears, evictions).
    pub fn memory_events(&self) -> Vec<super::chromium::sampler::MemoryEvent> {
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
    #[cfg(feature = "controls")]
    pub(crate) fn pids(&self) -> Vec<u32> {
        self.inner.members.pids()
    }

    /// Takes the latch off the pool's soft-limit trackers, so a browser
    /// hovering over the soft limit is warned about on every sample. For the
    /// negative control of `one_warning_per_crossing` only.
    #[cfg(feature = "controls")]
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
        let left = super::close::close_slots(inner).await;
        if left > 0 {
            tracing::warn!(
                pool = inner.id,
                alive = left,
                "close: browsers still alive after the deadline"
            );
        }
        tracing::info!(pool = inner.id, "browser pool closed");
    }
}
