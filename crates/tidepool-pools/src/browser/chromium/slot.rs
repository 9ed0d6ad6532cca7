//! One lease slot: its browser's connection (shared with the browser's
//! other slots), the context and page it hands its leases, and what readies,
//! probes and shuts it down.

use std::future::Future;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chromiumoxide::cdp::browser_protocol::browser::{
    BrowserContextId, CloseParams, SetDownloadBehaviorBehavior, SetDownloadBehaviorParams,
};
use chromiumoxide::cdp::browser_protocol::target::{
    CreateBrowserContextParams, DisposeBrowserContextParams, TargetId,
};
use chromiumoxide::{Browser, Page};
use tokio::sync::watch;

use super::connection::{dispose_on_detach, own_contexts, Connection, Core};
use super::dialogs::DialogAnswerer;
use super::page::{page_params, set_up, PageSetup};
use super::watch::{guarded, mark_gone, DeathWatch, Gone};
use crate::browser::fleet::EndpointTicket;
use crate::browser::isolation::{ContextProxy, Isolation, ProxyCredentials};
use crate::browser::stats::RetireReason;
use crate::error::{Error, Result};
use crate::retention::Stamps;

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
    /// Answers the page's dialogs while the page is prepared or leased.
    _dialogs: DialogAnswerer,
}

impl Prepared {
    /// A context and page fresh from creation.
    fn fresh(
        context: BrowserContextId,
        (page, dialogs): (Page, DialogAnswerer),
        proxy: Option<ContextProxy>,
    ) -> Prepared {
        Prepared {
            context,
            page,
            clean: Isolation::Context,
            scripts_cleared: CLIENT_INIT_SCRIPTS,
            proxy,
            _dialogs: dialogs,
        }
    }
}

/// One lease slot of the pool: a browser (shared with the browser's other
/// slots, when `leases_per_browser` is above 1) and the context and page
/// this slot hands to its leases. What the browser's slots share they
/// borrow from its [`Core`]; `id` is its id, copied for identity.
#[derive(Debug)]
pub(crate) struct Slot {
    pub(crate) id: u64,
    pub(crate) core: Arc<Core>,
    pub(crate) last_used: Instant,
    pub(crate) last_checked: Instant,
    pub(crate) prepared: Option<Prepared>,
    pub(crate) pages: PageSetup,
    /// The slot's place on its fleet endpoint, in connect mode.
    pub(crate) on_endpoint: Option<EndpointTicket>,
}

impl Slot {
    /// The first slot of a browser just connected to.
    pub(crate) fn first_in(connection: Connection) -> Slot {
        let core = connection.core;
        Slot {
            id: core.id,
            last_used: core.created,
            last_checked: core.created,
            core,
            prepared: None,
            pages: PageSetup::default(),
            on_endpoint: None,
        }
    }

    /// The browser's CDP client, shared by its slots.
    pub(crate) fn browser(&self) -> &Arc<Browser> {
        &self.core.browser
    }

    /// The browser's WebSocket URL.
    pub(crate) fn endpoint(&self) -> &str {
        &self.core.endpoint
    }

    /// The browser's death watch.
    pub(crate) fn dead(&self) -> &DeathWatch {
        &self.core.dead
    }

    /// When the browser was started.
    pub(crate) fn created(&self) -> Instant {
        self.core.created
    }

    /// The deadline of one CDP call the pool makes.
    pub(crate) fn cdp_timeout(&self) -> Duration {
        self.core.cdp_timeout
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
            created: self.created(),
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
    pub(crate) fn death(&self) -> Option<Gone> {
        self.dead().borrow().clone()
    }

    /// What a lifecycle hook sees of this slot's browser.
    pub(crate) fn hook_context(&self) -> crate::browser::hooks::HookContext {
        crate::browser::hooks::HookContext {
            browser_id: self.id,
            pid: self.pid(),
            uses: self.uses(),
            browser: self.browser().clone(),
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
            self.endpoint(),
            self.dead().clone(),
            Some(self.cdp_timeout()),
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
        let browser = self.browser().clone();
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
        let params = page_params("about:blank", &context, self.pages.hidden)
            .build()
            .map_err(|e| Error::Cdp {
                browser: self.id,
                endpoint: self.endpoint().to_owned(),
                action: "building Target.createTarget".into(),
                message: e,
            })?;
        let credentials = proxy.as_ref().and_then(|p| p.credentials.as_ref());
        // A page's forced download would be written to the user's disk (or
        // held, unanswered, by a remote browser): refused, beside the page's
        // opening so it costs no round trip of its own.
        let mut deny = SetDownloadBehaviorParams::new(SetDownloadBehaviorBehavior::Deny);
        deny.browser_context_id = Some(context.clone());
        // Told, so a call that ends in a download fails at once.
        deny.events_enabled = Some(true);
        let opened = async {
            let page = async {
                let page = self.cdp("opening a page", browser.new_page(params)).await?;
                let dialogs = self.set_up_page(&page, credentials).await?;
                Ok::<_, Error>((page, dialogs))
            };
            let denied = self.cdp("denying downloads", browser.execute(deny));
            futures::try_join!(page, denied).map(|(page, _)| page)
        };
        match opened.await {
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

    /// Sets up `page`, one of this slot's, before a lease uses it (see
    /// [`set_up`]), within the pool's deadline.
    pub(crate) async fn set_up_page(
        &self,
        page: &Page,
        credentials: Option<&ProxyCredentials>,
    ) -> Result<DialogAnswerer> {
        self.cdp("setting up a page", set_up(page, &self.pages, credentials))
            .await
    }

    /// Disposes a context and, with it, every page the lease opened in it.
    ///
    /// An evicted browser still answers (the pool, not the browser, gave up
    /// on it), and disposing is what gives its memory back: then the call
    /// goes out with only the deadline, not the death watch.
    pub(crate) async fn dispose_context(&self, context: BrowserContextId) -> Result<()> {
        own_contexts(&self.core.contexts).retain(|c| *c != context);
        let browser = self.browser().clone();
        let dispose = browser.execute(DisposeBrowserContextParams::new(context));
        // An evicted browser's death watch has fired; a watch of its own,
        // which never fires, leaves this call only the deadline.
        let (_never, unwatched) = watch::channel(None);
        let dead = if self.evicted() {
            unwatched
        } else {
            self.dead().clone()
        };
        guarded(
            self.id,
            self.endpoint(),
            dead,
            Some(self.cdp_timeout()),
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
        let browser = self.browser().clone();
        let r = guarded(
            self.id,
            self.endpoint(),
            self.dead().clone(),
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
        let half = self.cdp_timeout() / 2;
        loop {
            tokio::time::sleep(half).await;
            let answered = tokio::time::timeout(half, self.browser().version()).await;
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
        mark_gone(&self.core.dead_tx, Gone::Died(why.to_owned()));
    }

    /// The sender that marks this browser gone, for the memory sampler.
    pub(crate) fn gone_sender(&self) -> Arc<watch::Sender<Option<Gone>>> {
        self.core.dead_tx.clone()
    }

    /// Whether the pool evicted it (rather than it crashing).
    pub(crate) fn evicted(&self) -> bool {
        self.death().is_some_and(|d| d.is_evicted())
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
        let Slot {
            core, on_endpoint, ..
        } = self;
        // The fleet stops counting the slot before the browser may stop
        // counting alive: `close()` returns on the latter, and its caller
        // reads the endpoints' counts right after.
        drop(on_endpoint);
        // Exactly one of concurrent callers gets the core: the last slot.
        let Some(mut core) = Arc::into_inner(core) else {
            return false;
        };
        if let Some(mut process) = core.process.take() {
            if process.exit_status().is_none() {
                let close = core.browser.execute(CloseParams::default());
                let _ = tokio::time::timeout(grace, close).await;
            }
            process.terminate(grace).await;
        }
        core.handler.abort();
        true
    }
}

impl Slot {
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
