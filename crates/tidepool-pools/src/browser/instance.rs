use std::future::Future;
use std::path::Path;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chromiumoxide::cdp::browser_protocol::browser::{BrowserContextId, CloseParams};
use chromiumoxide::cdp::browser_protocol::target::{
    CreateBrowserContextParams, CreateTargetParams, DisposeBrowserContextParams,
    EventTargetCrashed, TargetId, WindowState,
};
use chromiumoxide::handler::HandlerConfig;
use chromiumoxide::{Browser, Page};
use futures::StreamExt;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::fleet::FleetSlot;
use super::isolation::{ContextProxy, Isolation};
use super::process::LocalProcess;
use super::sandbox::Sandbox;
use super::stats::RetireReason;
use super::watch::{cdp_error, guarded, mark_gone, AliveToken, EVICTED};
use crate::error::{Error, Result};
use crate::retention::Stamps;

/// The contexts a pool created in one browser and has not disposed yet: what
/// the memory sampler measures in a connected browser, where other clients'
/// pages are not the pool's business.
pub(crate) type OwnContexts = Arc<std::sync::Mutex<Vec<BrowserContextId>>>;

/// Init scripts chromiumoxide adds to every page it attaches to, before any
/// of a lease's: one, for its utility world (`FrameManager::
/// ensure_isolated_world`). They keep the first
/// numbers, and a wipe leaves them.
const CLIENT_INIT_SCRIPTS: u64 = 1;

/// A context and a page in it, made ready for the next lease.
#[derive(Debug)]
pub(crate) struct Prepared {
    pub(crate) context: BrowserContextId,
    pub(crate) page: Page,
    /// How clean it is: fresh ([`Isolation::Context`]), wiped since its last
    /// lease, or as that lease left it.
    pub(crate) clean: Isolation,
    /// Init scripts up to this number are removed from the page's session.
    pub(crate) scripts_cleared: u64,
    /// The proxy the context was made with, for a lease that asked for one.
    pub(crate) proxy: Option<ContextProxy>,
}

impl Prepared {
    /// A context and page fresh from creation.
    fn fresh(context: BrowserContextId, page: Page, proxy: Option<ContextProxy>) -> Prepared {
        Prepared {
            context,
            page,
            clean: Isolation::Context,
            scripts_cleared: CLIENT_INIT_SCRIPTS,
            proxy,
        }
    }
}

/// One browser: the CDP client, the task polling its handler, the process
/// when the pool launched it, and what every lease slot in it shares. It
/// ends when its last slot does ([`Instance::shut_down`]).
#[derive(Debug)]
pub(crate) struct Core {
    handler: JoinHandle<()>,
    process: Option<LocalProcess>,
    /// Fires `dead`: from the process watcher, a failed probe, or the pool.
    dead_tx: Arc<watch::Sender<Option<String>>>,
    /// Every context of the pool's in this browser (one per slot).
    pub(crate) contexts: OwnContexts,
    /// Leases served by every slot together.
    uses: AtomicU32,
    /// Why the browser is being retired, once a slot of it was: its other
    /// slots follow as they come by, instead of serving another lease.
    draining: std::sync::OnceLock<RetireReason>,
    /// Set by the pool once the browser is started; counts it alive until dropped.
    pub(crate) alive: std::sync::OnceLock<AliveToken>,
    /// The page targets whose renderer crashed (`Target.targetCrashed`), so a
    /// call on a crashed page fails at once instead of waiting out its timeout.
    crashed_pages: Arc<watch::Sender<std::collections::HashSet<TargetId>>>,
    /// Follows `Target.targetCrashed` into `crashed_pages`.
    crash_listener: Option<JoinHandle<()>>,
    /// Asks a connected browser for its version every period; see
    /// [`FleetPolicy::heartbeat`](super::FleetPolicy::heartbeat).
    heartbeat: Option<JoinHandle<()>>,
}

/// How a connection's loss is found, beyond its socket's close.
#[derive(Debug, Clone, Default)]
pub(crate) struct Liveness {
    /// Ask the browser for its version every period, and mark it gone when
    /// it does not answer within one.
    pub(crate) heartbeat: Option<Duration>,
}

/// A browser's room for more slots: the pool keeps one per browser it
/// started, and opens a slot in it while the browser lives, is not being
/// retired, and has fewer than `leases_per_browser` slots.
#[derive(Debug)]
pub(crate) struct Room {
    id: u64,
    endpoint: String,
    /// The fleet endpoint the browser is on, in connect mode.
    pub(crate) fleet_index: Option<usize>,
    browser: std::sync::Weak<Browser>,
    core: std::sync::Weak<Core>,
    dead: watch::Receiver<Option<String>>,
    created: Instant,
    cdp_timeout: Duration,
    hidden_pages: bool,
}

impl Room {
    /// Whether the browser is gone for good: closed, or its last slot ended.
    pub(crate) fn ended(&self) -> bool {
        self.core.strong_count() == 0
    }

    /// A new, unprepared slot in the browser, if it has room under `max`
    /// slots and is neither dead nor being retired.
    pub(crate) fn open(&self, max: usize) -> Option<Instance> {
        let core = self.core.upgrade()?;
        let browser = self.browser.upgrade()?;
        // `core` itself counts one: the slots open are one fewer.
        if Arc::strong_count(&core) > max
            || core.draining.get().is_some()
            || self.dead.borrow().is_some()
        {
            return None;
        }
        let now = Instant::now();
        Some(Instance {
            id: self.id,
            endpoint: self.endpoint.clone(),
            browser,
            core,
            dead: self.dead.clone(),
            created: self.created,
            last_used: now,
            last_checked: now,
            prepared: None,
            cdp_timeout: self.cdp_timeout,
            hidden_pages: self.hidden_pages,
            fleet_slot: None,
        })
    }
}

impl Drop for Core {
    fn drop(&mut self) {
        self.handler.abort();
        for task in [&self.crash_listener, &self.heartbeat]
            .into_iter()
            .flatten()
        {
            task.abort();
        }
    }
}

/// One lease slot of the pool: a browser (shared with the browser's other
/// slots, when `leases_per_browser` is above 1) and the context and page
/// this slot hands to its leases. The fields copied from the browser are
/// the same in every slot of it.
#[derive(Debug)]
pub(crate) struct Instance {
    pub(crate) id: u64,
    pub(crate) endpoint: String,
    pub(crate) browser: Arc<Browser>,
    pub(crate) core: Arc<Core>,
    /// Becomes `Some(how)` when the browser is gone: process exit, lost
    /// connection, or eviction by the pool (then it starts with [`EVICTED`]).
    pub(crate) dead: watch::Receiver<Option<String>>,
    pub(crate) created: Instant,
    pub(crate) last_used: Instant,
    pub(crate) last_checked: Instant,
    pub(crate) prepared: Option<Prepared>,
    pub(crate) cdp_timeout: Duration,
    /// Pages are opened in minimized windows: see
    /// [`BrowserPoolConfig::hidden_pages`](super::BrowserPoolConfig::hidden_pages).
    pub(crate) hidden_pages: bool,
    /// The slot's place on its fleet endpoint, in connect mode.
    pub(crate) fleet_slot: Option<FleetSlot>,
}

impl Instance {
    /// Launches a local browser and connects to it.
    pub(crate) async fn launch(
        id: u64,
        executable: &Path,
        flags: &[String],
        sandbox: Sandbox,
        tag: &str,
        launch_timeout: Duration,
        cdp_timeout: Duration,
    ) -> Result<Instance> {
        let deadline = Instant::now() + launch_timeout;
        let (process, url) =
            LocalProcess::launch(executable, flags, sandbox, tag, launch_timeout).await?;
        let (tx, rx) = watch::channel(None);
        let tx = Arc::new(tx);
        let (mut exit, forward) = (process.exit_watch(), tx.clone());
        tokio::spawn(async move {
            if let Ok(status) = exit.wait_for(Option::is_some).await {
                let status = status.clone();
                forward.send_if_modified(|gone| {
                    if gone.is_none() {
                        *gone = status.map(|s| format!("process exited: {s}"));
                        true
                    } else {
                        false
                    }
                });
            }
        });
        let remaining = deadline.saturating_duration_since(Instant::now());
        Instance::connect_inner(
            id,
            url,
            Some(process),
            (rx, tx),
            remaining,
            cdp_timeout,
            Liveness::default(),
        )
        .await
    }

    /// Connects to a browser that runs elsewhere, at its WebSocket `url`,
    /// watched as `liveness` says.
    pub(crate) async fn connect(
        id: u64,
        url: &str,
        timeout: Duration,
        cdp_timeout: Duration,
        liveness: Liveness,
    ) -> Result<Instance> {
        let (tx, rx) = watch::channel(None);
        Instance::connect_inner(
            id,
            url.to_owned(),
            None,
            (rx, Arc::new(tx)),
            timeout,
            cdp_timeout,
            liveness,
        )
        .await
    }

    async fn connect_inner(
        id: u64,
        url: String,
        process: Option<LocalProcess>,
        (dead, dead_tx): (
            watch::Receiver<Option<String>>,
            Arc<watch::Sender<Option<String>>>,
        ),
        timeout: Duration,
        cdp_timeout: Duration,
        liveness: Liveness,
    ) -> Result<Instance> {
        let config = HandlerConfig {
            request_timeout: cdp_timeout,
            ..HandlerConfig::default()
        };
        let connected =
            tokio::time::timeout(timeout, Browser::connect_with_config(url.clone(), config)).await;
        let (browser, mut handler) = match connected {
            Ok(Ok(pair)) => pair,
            Ok(Err(e)) => return Err(cdp_error(id, &url, "connecting", e)),
            Err(_) => {
                return Err(Error::Timeout {
                    key: format!("connecting to browser {id} at {url}"),
                    after: timeout,
                })
            }
        };
        let (lost, at) = (dead_tx.clone(), url.clone());
        let handler = tokio::spawn(async move {
            // Poll to the end: one unparsable message or event error must not
            // stop the loop, or every pending command would hang.
            while let Some(event) = handler.next().await {
                if let Err(e) = event {
                    tracing::debug!(browser = id, error = %e, "CDP handler error");
                }
            }
            // The stream ends when the socket does (chromey's handler; stock
            // chromiumoxide 0.9.1's never ended): every call in flight fails
            // now, not at its deadline.
            // A handler stopped by the pool is aborted and never gets here.
            mark_gone(&lost, &format!("the connection to {at} closed"));
            drop(handler);
        });
        let crashed_pages = Arc::new(watch::Sender::new(std::collections::HashSet::new()));
        // Without the listener a crashed page still fails its calls, only
        // later: by the CDP timeout.
        let crash_listener = match browser.event_listener::<EventTargetCrashed>().await {
            Ok(mut crashes) => {
                let crashed = crashed_pages.clone();
                Some(tokio::spawn(async move {
                    while let Some(crash) = crashes.next().await {
                        tracing::warn!(browser = id, target = ?crash.target_id, status = %crash.status, "a page's renderer crashed");
                        crashed.send_modify(|set| {
                            set.insert(crash.target_id.clone());
                        });
                    }
                }))
            }
            Err(e) => {
                tracing::debug!(browser = id, error = %e, "no listener for crashed pages");
                None
            }
        };
        let browser = Arc::new(browser);
        let heartbeat = liveness.heartbeat.map(|period| {
            let (browser, gone, at) = (Arc::downgrade(&browser), dead_tx.clone(), url.clone());
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(period).await;
                    let Some(browser) = browser.upgrade() else {
                        return;
                    };
                    // Two periods to answer: a browser on loaded cores
                    // can take one, a stopped one never answers.
                    if !matches!(
                        tokio::time::timeout(period * 2, browser.version()).await,
                        Ok(Ok(_))
                    ) {
                        tracing::warn!(browser = id, "a remote browser missed its heartbeat");
                        mark_gone(
                            &gone,
                            &format!("not responding: {at} did not answer its heartbeat (Browser.getVersion) within {:?}", period * 2),
                        );
                        return;
                    }
                }
            })
        });
        let now = Instant::now();
        let core = Core {
            handler,
            process,
            dead_tx,
            contexts: OwnContexts::default(),
            uses: AtomicU32::new(0),
            draining: std::sync::OnceLock::new(),
            alive: std::sync::OnceLock::new(),
            crashed_pages,
            crash_listener,
            heartbeat,
        };
        Ok(Instance {
            id,
            endpoint: url,
            browser,
            core: Arc::new(core),
            dead,
            created: now,
            last_used: now,
            last_checked: now,
            prepared: None,
            cdp_timeout,
            hidden_pages: false,
            fleet_slot: None,
        })
    }

    /// What opens more slots in this browser, without keeping it alive.
    pub(crate) fn room(&self) -> Room {
        Room {
            id: self.id,
            endpoint: self.endpoint.clone(),
            fleet_index: self.fleet_slot.as_ref().map(|s| s.index),
            browser: Arc::downgrade(&self.browser),
            core: Arc::downgrade(&self.core),
            dead: self.dead.clone(),
            created: self.created,
            cdp_timeout: self.cdp_timeout,
            hidden_pages: self.hidden_pages,
        }
    }

    /// How many leases the browser served, in every slot of it.
    pub(crate) fn uses(&self) -> u32 {
        self.core.uses.load(Ordering::Relaxed)
    }

    /// Counts one lease served; returns the browser's count with it.
    pub(crate) fn count_use(&self) -> u32 {
        self.core.uses.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// Why the browser is being retired, if a slot of it was.
    pub(crate) fn draining(&self) -> Option<RetireReason> {
        self.core.draining.get().copied()
    }

    /// Marks the browser retiring for `reason`; its other slots follow.
    /// Returns whether this call started it (the first reason wins).
    pub(crate) fn drain(&self, reason: RetireReason) -> bool {
        self.core.draining.set(reason).is_ok()
    }

    /// How many slots the browser has open, this one included.
    pub(crate) fn slots(&self) -> usize {
        Arc::strong_count(&self.core)
    }

    /// The moments its retention is judged by.
    pub(crate) fn stamps(&self) -> Stamps {
        Stamps {
            created: self.created,
            last_used: self.last_used,
            last_checked: self.last_checked,
        }
    }

    /// The process id, for a launched browser.
    pub(crate) fn pid(&self) -> Option<u32> {
        self.core.process.as_ref().map(|p| p.pid)
    }

    /// Whether the pool launched this browser (and so owns its process).
    pub(crate) fn launched(&self) -> bool {
        self.core.process.is_some()
    }

    /// Why the browser is gone, if it is.
    pub(crate) fn death(&self) -> Option<String> {
        self.dead.borrow().clone()
    }

    /// What a lifecycle hook sees of this slot's browser.
    pub(crate) fn hook_context(&self) -> super::hooks::HookContext {
        super::hooks::HookContext {
            browser_id: self.id,
            pid: self.pid(),
            uses: self.uses(),
            browser: self.browser.clone(),
            page: self.prepared.as_ref().map(|p| p.page.clone()),
        }
    }

    /// Runs one CDP future with the pool's deadline, failing fast if the
    /// browser dies meanwhile.
    pub(crate) async fn cdp<T>(
        &self,
        action: &str,
        fut: impl Future<Output = std::result::Result<T, chromiumoxide::error::CdpError>>,
    ) -> Result<T> {
        guarded(
            self.id,
            &self.endpoint,
            self.dead.clone(),
            Some(self.cdp_timeout),
            action,
            fut,
        )
        .await
    }

    /// Opens a fresh incognito context with a blank page: what the next lease
    /// gets, ready to navigate.
    pub(crate) async fn prepare(&mut self) -> Result<()> {
        self.prepare_with(None).await
    }

    /// [`prepare`](Self::prepare), with the context routed through `proxy`.
    pub(crate) async fn prepare_with(&mut self, proxy: Option<ContextProxy>) -> Result<()> {
        if self.prepared.is_some() {
            return Ok(());
        }
        let browser = self.browser.clone();
        // Disposed by the browser when the pool's connection ends, so a pool
        // that dies (kill -9, OOM) leaves no context behind on a browser it
        // shares with others.
        let mut params = CreateBrowserContextParams {
            dispose_on_detach: Some(dispose_on_detach()),
            ..CreateBrowserContextParams::default()
        };
        if let Some(p) = &proxy {
            params.proxy_server = Some(p.server.clone());
            params.proxy_bypass_list = p.bypass_list.clone();
        }
        let context = self
            .cdp("creating a browser context", browser.execute(params))
            .await?
            .result
            .browser_context_id;
        own_contexts(&self.core.contexts).push(context.clone());
        let params = page_params("about:blank", &context, self.hidden_pages)
            .build()
            .map_err(|e| Error::Cdp {
                browser: self.id,
                endpoint: self.endpoint.clone(),
                action: "building Target.createTarget".into(),
                message: e,
            })?;
        match self.cdp("opening a page", browser.new_page(params)).await {
            Ok(page) => {
                self.prepared = Some(Prepared::fresh(context, page, proxy));
                Ok(())
            }
            Err(e) => {
                let _ = self.dispose_context(context).await;
                Err(e)
            }
        }
    }

    /// Disposes a context and, with it, every page the lease opened in it.
    ///
    /// An evicted browser still answers (the pool, not the browser, gave up
    /// on it), and disposing is what gives its memory back: then the call
    /// goes out with only the deadline, not the death watch.
    pub(crate) async fn dispose_context(&self, context: BrowserContextId) -> Result<()> {
        own_contexts(&self.core.contexts).retain(|c| *c != context);
        let browser = self.browser.clone();
        let dispose = browser.execute(DisposeBrowserContextParams::new(context));
        // An evicted browser's death watch has fired; a watch of its own,
        // which never fires, leaves this call only the deadline.
        let (_never, unwatched) = watch::channel(None);
        let dead = if self.evicted() {
            unwatched
        } else {
            self.dead.clone()
        };
        guarded(
            self.id,
            &self.endpoint,
            dead,
            Some(self.cdp_timeout),
            "disposing a browser context",
            dispose,
        )
        .await
        .map(|_| ())
    }

    /// A connected browser the pool can still talk to: its contexts must be
    /// disposed on retirement, since nobody kills its process.
    pub(crate) fn foreign_and_reachable(&self) -> bool {
        self.core.process.is_none() && (self.death().is_none() || self.evicted())
    }

    /// A cheap liveness probe: `Browser.getVersion` within `timeout`.
    pub(crate) async fn probe(&mut self, timeout: Duration) -> Result<()> {
        let browser = self.browser.clone();
        let r = guarded(
            self.id,
            &self.endpoint,
            self.dead.clone(),
            Some(timeout),
            "health probe",
            browser.version(),
        )
        .await;
        self.last_checked = Instant::now();
        if let Err(e) = &r {
            self.mark_dead(&format!("health probe failed: {e}"));
        }
        r.map(|_| ())
    }

    /// Never returns; marks the browser gone if it stops answering. A call of
    /// a lease has no deadline of its own (a page may load for minutes), so
    /// while one is pending the browser is asked for its version every half
    /// `cdp_timeout`, each time allowed half `cdp_timeout`: a browser that
    /// hangs (stopped, deadlocked) instead of dying is found within
    /// `cdp_timeout`, its death watch fails the call with "not responding",
    /// and the pool kills and replaces it. A slow page does not trip it: the
    /// browser process still answers.
    pub(crate) async fn watch_responsive(&self) -> std::convert::Infallible {
        let half = self.cdp_timeout / 2;
        loop {
            tokio::time::sleep(half).await;
            let answered = tokio::time::timeout(half, self.browser.version()).await;
            if !matches!(answered, Ok(Ok(_))) {
                self.mark_dead(&format!(
                    "not responding: no answer to Browser.getVersion within {half:?}"
                ));
                tracing::warn!(browser = self.id, "browser not responding; retiring it");
                // The death watch now ends the call this watch runs beside.
                std::future::pending::<()>().await;
            }
        }
    }

    /// Resolves once the renderer of page `target` has crashed (at once if
    /// it already has).
    pub(crate) async fn page_crashed(&self, target: &TargetId) {
        let mut crashed = self.core.crashed_pages.subscribe();
        if crashed.wait_for(|set| set.contains(target)).await.is_err() {
            // The browser is gone: its death watch answers the call.
            std::future::pending::<()>().await;
        }
    }

    /// Whether the renderer of page `target` has crashed.
    pub(crate) fn has_crashed(&self, target: &TargetId) -> bool {
        self.core.crashed_pages.borrow().contains(target)
    }

    /// Marks the browser gone (the first reason wins); every call through it
    /// fails from now on.
    pub(crate) fn mark_dead(&self, why: &str) {
        mark_gone(&self.core.dead_tx, why);
    }

    /// The sender that marks this browser gone, for the memory sampler.
    pub(crate) fn gone_sender(&self) -> Arc<watch::Sender<Option<String>>> {
        self.core.dead_tx.clone()
    }

    /// Whether the pool evicted it (rather than it crashing).
    pub(crate) fn evicted(&self) -> bool {
        self.death().is_some_and(|d| d.starts_with(EVICTED))
    }

    /// Ends this slot, and with the browser's last slot the browser: a
    /// launched one gets `Browser.close`, then SIGKILL after `grace`, is
    /// reaped, and its leftover processes and profile are removed. A
    /// browser that lives on (other slots, or a connected one the pool does
    /// not own) only loses this slot's context. Returns whether the browser
    /// ended.
    pub(crate) async fn shut_down(mut self, grace: Duration) -> bool {
        if let Some(prepared) = self.prepared.take() {
            let siblings = self.slots() > 1 && self.death().is_none();
            if siblings || self.foreign_and_reachable() {
                let _ = self.dispose_context(prepared.context).await;
            }
        }
        let Instance { core, browser, .. } = self;
        // Exactly one of concurrent callers gets the core: the last slot.
        let Some(mut core) = Arc::into_inner(core) else {
            return false;
        };
        if let Some(mut process) = core.process.take() {
            if process.exit_status().is_none() {
                let _ = tokio::time::timeout(grace, browser.execute(CloseParams::default())).await;
            }
            process.terminate(grace).await;
        }
        core.handler.abort();
        true
    }
}

impl Instance {
    /// The broken shutdown of the leftover check's negative control: see
    /// [`LocalProcess::abandon_for_control`]. `None` for a connected browser
    /// or one whose other slots are still open.
    #[cfg(feature = "controls")]
    pub(crate) fn abandon_for_control(self) -> Option<(String, std::path::PathBuf)> {
        let mut core = Arc::into_inner(self.core)?;
        let process = core.process.take()?;
        core.handler.abort();
        Some(process.abandon_for_control())
    }
}

/// `Target.createTarget` for a page in `context`: in a minimized window of
/// its own when `hidden`, where Chromium paints nothing.
pub(crate) fn page_params(
    url: &str,
    context: &BrowserContextId,
    hidden: bool,
) -> chromiumoxide::cdp::browser_protocol::target::CreateTargetParamsBuilder {
    let params = CreateTargetParams::builder()
        .url(url)
        .browser_context_id(context.clone());
    if hidden {
        params.new_window(true).window_state(WindowState::Minimized)
    } else {
        params
    }
}

/// The list behind `contexts`; it guards plain data, so a poisoned lock is still read.
pub(crate) fn own_contexts(
    contexts: &OwnContexts,
) -> std::sync::MutexGuard<'_, Vec<BrowserContextId>> {
    contexts.lock().unwrap_or_else(|p| p.into_inner())
}

/// Whether new contexts go with the connection that made them: always,
/// but in the negative control of the test that proves they do.
fn dispose_on_detach() -> bool {
    #[cfg(feature = "controls")]
    if KEEP_CONTEXTS.load(Ordering::Relaxed) {
        return false;
    }
    true
}

#[cfg(feature = "controls")]
static KEEP_CONTEXTS: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Contexts made from now on outlive their connection: the negative control
/// of the check that a killed client leaves none behind.
#[cfg(feature = "controls")]
pub(crate) fn keep_contexts_after_disconnect() {
    KEEP_CONTEXTS.store(true, Ordering::Relaxed);
}
