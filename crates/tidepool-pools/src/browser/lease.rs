use std::future::Future;
use std::sync::Arc;

use chromiumoxide::cdp::browser_protocol::browser::BrowserContextId;
use chromiumoxide::cdp::browser_protocol::target::TargetId;
use chromiumoxide::cdp::js_protocol::runtime::GetHeapUsageParams;
use chromiumoxide::{Browser, Page};
use serde::de::DeserializeOwned;
use tracing::Instrument;

use super::chromium::page::{page_params, PageGuard};
use super::chromium::settings::{apply, LeaseSettings};
use super::chromium::slot::Slot;
use super::chromium::watch::guarded;
use super::chromium::LeaseEnd;
use super::inner::PoolInner;
use super::isolation::Isolation;
use super::release::Held;
use crate::error::{Error, Result};

/// How long a call on a page that failed on a closed channel waits for the
/// page's crash to be reported before it reports its own error.
const CRASH_REPORT_GRACE: std::time::Duration = std::time::Duration::from_millis(250);
/// A lease's browser, context and death watch, shared with the session pool
/// working in that context.
#[derive(Debug, Clone)]
pub(crate) struct BrowserHandle {
    pub(crate) id: u64,
    pub(crate) endpoint: String,
    pub(crate) browser: Arc<Browser>,
    pub(crate) context: BrowserContextId,
    pub(crate) dead: super::chromium::watch::DeathWatch,
}

impl BrowserHandle {
    /// Awaits a CDP future, failing at once if the browser dies, and after
    /// `timeout` if given.
    pub(crate) async fn call<T>(
        &self,
        action: &str,
        timeout: Option<std::time::Duration>,
        fut: impl Future<Output = std::result::Result<T, chromiumoxide::error::CdpError>>,
    ) -> Result<T> {
        guarded(
            self.id,
            &self.endpoint,
            self.dead.clone(),
            timeout,
            action,
            fut,
        )
        .await
    }
}

/// Exclusive use of one pooled browser's context and page: of the whole
/// browser by default, of one of its slots when the pool serves several
/// leases per browser ([`BrowserPoolConfig::leases_per_browser`](super::BrowserPoolConfig::leases_per_browser)).
///
/// Under the default [`Isolation::Context`], cookies, storage and cache of the
/// lease live in a context of its own, disposed when the lease ends, so the
/// next lease of the same browser sees none of them. Dropping the lease
/// returns the browser: the pool readies it for the next lease in the
/// background, to the isolation this lease asked for (a fresh context, a
/// wipe, or nothing), and puts it back, or retires it when it crashed or
/// reached its lifetime or use limit.
///
/// Every call made through the lease fails at once with
/// [`Error::BrowserCrashed`] if the browser dies meanwhile, instead of waiting
/// for a reply that will never come. Code that uses [`Lease::page`] directly
/// can get the same protection by wrapping its futures in [`Lease::call`].
#[must_use = "dropping a lease returns its browser at once"]
pub struct Lease {
    /// The slot, its count as leased and its permit, until the lease ends.
    held: Held<PoolInner>,
    isolation: Isolation,
    /// Pages opened through [`Lease::new_page`], closed when it ends.
    opened: std::sync::Mutex<Vec<TargetId>>,
    /// What serves the lease's pages (the first one's blocker, the
    /// others' dialog answerers and blockers) until it ends.
    guards: std::sync::Mutex<Vec<PageGuard>>,
    /// Its emulation and blocking, for each page it gets or opens.
    settings: LeaseSettings,
    /// Whether its first page blocks requests.
    blocking_first_page: bool,
    span: tracing::Span,
}

impl std::fmt::Debug for Lease {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lease")
            .field("browser", &self.browser_id())
            .field("pid", &self.pid())
            .finish()
    }
}

impl Lease {
    pub(crate) fn new(
        held: Held<PoolInner>,
        id: u64,
        isolation: Isolation,
        settings: LeaseSettings,
    ) -> Lease {
        let browser = held.slot().map_or(0, |i| i.id);
        let span = tracing::info_span!("lease", lease = id, browser, %isolation);
        tracing::debug!(parent: &span, "leased");
        Lease {
            held,
            isolation,
            opened: std::sync::Mutex::new(Vec::new()),
            guards: std::sync::Mutex::new(Vec::new()),
            settings,
            blocking_first_page: false,
            span,
        }
    }

    /// Puts the lease's emulation and blocking on its first page, before
    /// its acquire returns it.
    pub(crate) async fn settle(&mut self) -> Result<()> {
        if self.settings.is_empty() {
            return Ok(());
        }
        let blocker = self.apply_settings(self.page()).await?;
        self.blocking_first_page = blocker.is_some();
        self.guard(PageGuard::new(None, blocker));
        Ok(())
    }

    async fn apply_settings(
        &self,
        page: &Page,
    ) -> Result<Option<super::chromium::settings::RequestBlocker>> {
        let proxy_auth = (self.prepared().proxy.as_ref()).is_some_and(|p| p.credentials.is_some());
        let slot = self.slot();
        let applying = apply(
            slot.browser(),
            self.context_id(),
            page,
            &self.settings,
            proxy_auth,
        );
        slot.cdp("applying the lease's emulation and blocking", applying)
            .await
    }

    fn guard(&self, guard: PageGuard) {
        self.guards
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(guard);
    }

    /// How many requests the lease's pages were refused so far by its
    /// [`Blocking`](super::Blocking).
    pub fn requests_blocked(&self) -> u64 {
        self.settings
            .blocked
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    fn slot(&self) -> &Slot {
        // Present from construction until Drop takes it.
        self.held.slot().expect("a live lease holds its browser")
    }

    /// The pool's id of the browser behind this lease.
    pub fn browser_id(&self) -> u64 {
        self.held.slot().map_or(0, |i| i.id)
    }

    /// The browser's process id, when the pool launched it.
    pub fn pid(&self) -> Option<u32> {
        self.held.slot().and_then(Slot::pid)
    }

    /// How many leases this browser served before this one.
    pub fn previous_uses(&self) -> u32 {
        self.slot().uses()
    }

    /// The isolation this lease was given.
    pub fn isolation(&self) -> Isolation {
        self.isolation
    }

    /// The lease's incognito context: its own under [`Isolation::Context`],
    /// the browser's reused one otherwise.
    pub fn context_id(&self) -> &BrowserContextId {
        &self.prepared().context
    }

    /// The page prepared for this lease: blank, in the lease's context, ready to navigate.
    pub fn page(&self) -> &Page {
        &self.prepared().page
    }

    fn prepared(&self) -> &super::chromium::slot::Prepared {
        // acquire() hands out only prepared slots; release() takes the
        // preparation away only after the lease has ended.
        self.slot()
            .prepared
            .as_ref()
            .expect("a leased browser is prepared")
    }

    /// The chromiumoxide browser, for what the lease does not wrap. Pages made
    /// outside [`Lease::new_page`] are not in the lease's context.
    pub fn browser(&self) -> &Browser {
        self.slot().browser()
    }

    /// Awaits a chromiumoxide future, failing with [`Error::BrowserCrashed`] as
    /// soon as the browser dies instead of waiting out the CDP timeout.
    pub async fn call<T>(
        &self,
        action: &str,
        fut: impl Future<Output = std::result::Result<T, chromiumoxide::error::CdpError>>,
    ) -> Result<T> {
        let i = self.slot();
        // `instrument`, not `enter`: an entered span held across an await
        // would tag whatever else runs on this thread meanwhile.
        let call = guarded(i.id, i.endpoint(), i.dead().clone(), None, action, fut)
            .instrument(self.span.clone());
        tokio::select! {
            r = call => r,
            never = i.watch_responsive() => match never {},
        }
    }

    /// [`call`](Self::call) for a call on the lease's first page: it also
    /// fails with [`Error::PageCrashed`] as soon as that page's renderer
    /// crashes (or at once, if it already has).
    pub(super) async fn call_on_page<T>(
        &self,
        action: &str,
        fut: impl Future<Output = std::result::Result<T, chromiumoxide::error::CdpError>>,
    ) -> Result<T> {
        let target = self.page().target_id();
        let crashed_error = || Error::PageCrashed {
            browser: self.browser_id(),
            action: action.to_owned(),
        };
        // The CDP client may close a crashed page's channel, or fail the
        // page's pending calls with "target .. crashed", before the crash
        // event reaches the pool: such a call waits a moment for the crash
        // report, and reports the crash.
        let channel_closed = std::sync::atomic::AtomicBool::new(false);
        let fut = async {
            let r = fut.await;
            let crash_like = match &r {
                Err(chromiumoxide::error::CdpError::ChannelSendError(_)) => true,
                Err(chromiumoxide::error::CdpError::ChromeMessage(m)) => m.contains(" crashed: "),
                _ => false,
            };
            if crash_like {
                channel_closed.store(true, std::sync::atomic::Ordering::Relaxed);
            }
            r
        };
        tokio::select! {
            r = self.call(action, fut) => match r {
                Err(Error::Cdp { .. })
                    if channel_closed.load(std::sync::atomic::Ordering::Relaxed) =>
                {
                    let crash = self.slot().page_crashed(target);
                    match tokio::time::timeout(CRASH_REPORT_GRACE, crash).await {
                        Ok(()) => Err(crashed_error()),
                        Err(_) => r,
                    }
                }
                r => r,
            },
            () = self.slot().page_crashed(target) => Err(crashed_error()),
        }
    }

    /// Whether the lease's pages live in minimized windows.
    pub(super) fn hidden_pages(&self) -> bool {
        self.slot().pages.hidden
    }

    /// Opens another page in the lease's context and navigates it to `url`.
    /// Its dialogs are answered as the first page's are, and the lease's
    /// emulation and blocking apply to it, from before its first load: it
    /// opens blank, and navigates once the pool listens.
    pub async fn new_page(&self, url: &str) -> Result<Page> {
        const BLANK: &str = "about:blank";
        let params = page_params(BLANK, self.context_id(), self.slot().pages.hidden)
            .build()
            .map_err(|e| Error::Cdp {
                browser: self.browser_id(),
                endpoint: self.slot().endpoint().to_owned(),
                action: "building Target.createTarget".into(),
                message: e,
            })?;
        let page = self
            .call(
                &format!("opening a page for {url}"),
                self.browser().new_page(params),
            )
            .await?;
        // Closed when the lease ends, even if what follows fails.
        self.opened
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(page.target_id().clone());
        let credentials = (self.prepared().proxy.as_ref()).and_then(|p| p.credentials.as_ref());
        let answerer = self.slot().set_up_page(&page, credentials).await?;
        self.guard(PageGuard::new(Some(answerer), None));
        if !self.settings.is_empty() {
            let blocker = self.apply_settings(&page).await?;
            self.guard(PageGuard::new(None, blocker));
        }
        if url != BLANK {
            self.call(&format!("navigating a new page to {url}"), page.goto(url))
                .await?;
        }
        Ok(page)
    }

    /// Navigates the lease's first page to `url` and waits for it to load.
    ///
    /// A navigation that turns into a download (the pool denies them all)
    /// fails at once with [`Error::DownloadDenied`], instead of waiting
    /// for a load that never comes.
    pub async fn goto(&self, url: &str) -> Result<()> {
        let action = format!("navigating to {url}");
        let downloads = &self.slot().core.downloads;
        let frame = self.page().target_id().inner();
        let before = downloads.count(frame);
        let navigation =
            self.call_on_page(&action, async { self.page().goto(url).await.map(|_| ()) });
        tokio::select! {
            r = navigation => r,
            url = downloads.next(frame, before) => Err(Error::DownloadDenied {
                browser: self.browser_id(),
                action,
                url,
            }),
        }
    }

    /// Evaluates `expression` on the lease's first page and deserialises the result.
    pub async fn evaluate<T: DeserializeOwned>(&self, expression: &str) -> Result<T> {
        let result = self
            .call_on_page(
                &format!("evaluating {expression:?}"),
                self.page().evaluate(expression),
            )
            .await?;
        result.into_value().map_err(|e| Error::Cdp {
            browser: self.browser_id(),
            endpoint: self.slot().endpoint().to_owned(),
            action: format!("reading the result of {expression:?}"),
            message: e.to_string(),
        })
    }

    /// The fleet endpoint the lease is on, as configured, in connect mode.
    pub fn fleet_endpoint(&self) -> Option<String> {
        let on = self.slot().on_endpoint.as_ref()?;
        Some(on.fleet().endpoint(on.index))
    }

    /// The browser's CDP endpoint (`ws://...`), for a second connection.
    #[cfg(feature = "controls")]
    pub(crate) fn websocket_url(&self) -> &str {
        self.slot().endpoint()
    }

    /// What a session pool in this lease's context needs to work on its own.
    pub(crate) fn handle(&self) -> BrowserHandle {
        let i = self.slot();
        BrowserHandle {
            id: i.id,
            endpoint: i.endpoint().to_owned(),
            browser: i.browser().clone(),
            context: self.context_id().clone(),
            dead: i.dead().clone(),
        }
    }

    /// The V8 heap of the lease's first page: `(used, total)` bytes, from
    /// `Runtime.getHeapUsage`. For a connected browser, whose processes the
    /// pool cannot measure, this is the memory figure there is.
    pub async fn v8_heap(&self) -> Result<(u64, u64)> {
        let heap = self
            .call_on_page(
                "Runtime.getHeapUsage",
                self.page().execute(GetHeapUsageParams::default()),
            )
            .await?;
        Ok((heap.result.used_size as u64, heap.result.total_size as u64))
    }

    /// Returns the browser to the pool; the same as dropping the lease.
    pub fn release(self) {}
}

impl Drop for Lease {
    fn drop(&mut self) {
        tracing::debug!(parent: &self.span, "released");
        let opened = std::mem::take(self.opened.get_mut().unwrap_or_else(|p| p.into_inner()));
        self.held.end(LeaseEnd {
            isolation: self.isolation,
            opened,
            blocked: self.blocking_first_page,
        });
    }
}
