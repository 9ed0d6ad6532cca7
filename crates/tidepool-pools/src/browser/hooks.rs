//! Code a service runs at three points of a browser's life in the pool:
//! after it launches, before a lease is handed out, after a lease returns.

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use chromiumoxide::{Browser, Page};
use futures::future::BoxFuture;

use crate::error::{Error, Result};

/// What a hook returns: `Err` retires the browser (and, after a release,
/// vetoes its reuse). The pool itself never fails because of a hook.
pub type HookResult = std::result::Result<(), Box<dyn std::error::Error + Send + Sync>>;

type HookFn = Arc<dyn Fn(HookContext) -> BoxFuture<'static, HookResult> + Send + Sync>;

/// What a hook sees of the browser it runs on.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct HookContext {
    /// The pool's id for the browser.
    pub browser_id: u64,
    /// Its main process, when the pool launched it.
    pub pid: Option<u32>,
    /// Leases the browser has served, this one included after a release.
    pub uses: u32,
    /// The browser, for CDP calls of the hook's own.
    pub browser: Arc<Browser>,
    /// The page the lease gets (before a lease) or got (after it); the
    /// first context's page after a launch.
    pub page: Option<Page>,
}

/// Lifecycle hooks of a [`BrowserPool`](super::BrowserPool), like deadpool's
/// `post_create` and `pre_recycle` or Crawlee's launch and page hooks.
///
/// Each hook runs under the pool's `cdp_timeout`. A hook that fails or
/// overruns retires the browser it ran on (counted in
/// [`BrowserPoolStats::retired_hook`](super::BrowserPoolStats::retired_hook)):
/// after a launch the acquire that launched it gets [`Error::Hook`]; before
/// a lease the acquire moves on to another browser; after a release the
/// browser is not reused.
///
/// ```no_run
/// # async fn demo() -> tidepool_pools::Result<()> {
/// use tidepool_pools::browser::{BrowserPool, BrowserPoolConfig, Hooks};
///
/// let hooks = Hooks::new()
///     .after_launch(|b| async move {
///         tracing::info!(browser = b.browser_id, pid = ?b.pid, "browser up");
///         Ok(())
///     })
///     .after_release(|b| async move {
///         // A browser that served 500 leases is not worth keeping.
///         if b.uses >= 500 { Err("served enough".into()) } else { Ok(()) }
///     });
/// let pool = BrowserPool::with_hooks(BrowserPoolConfig::default(), hooks).await?;
/// # Ok(()) }
/// ```
#[derive(Clone, Default)]
pub struct Hooks {
    after_launch: Option<HookFn>,
    before_lease: Option<HookFn>,
    after_release: Option<HookFn>,
}

impl fmt::Debug for Hooks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Hooks")
            .field("after_launch", &self.after_launch.is_some())
            .field("before_lease", &self.before_lease.is_some())
            .field("after_release", &self.after_release.is_some())
            .finish()
    }
}

/// Where in a browser's life a hook runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HookPoint {
    AfterLaunch,
    BeforeLease,
    AfterRelease,
}

impl HookPoint {
    fn name(self) -> &'static str {
        match self {
            HookPoint::AfterLaunch => "after_launch",
            HookPoint::BeforeLease => "before_lease",
            HookPoint::AfterRelease => "after_release",
        }
    }
}

fn boxed<F, Fut>(hook: F) -> HookFn
where
    F: Fn(HookContext) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = HookResult> + Send + 'static,
{
    Arc::new(move |cx| Box::pin(hook(cx)))
}

impl Hooks {
    /// No hooks.
    pub fn new() -> Hooks {
        Hooks::default()
    }

    /// Runs after a browser is launched (or connected) and its first
    /// context is ready, before it serves anything.
    pub fn after_launch<F, Fut>(mut self, hook: F) -> Hooks
    where
        F: Fn(HookContext) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = HookResult> + Send + 'static,
    {
        self.after_launch = Some(boxed(hook));
        self
    }

    /// Runs before a lease is handed out, on the page it will get.
    pub fn before_lease<F, Fut>(mut self, hook: F) -> Hooks
    where
        F: Fn(HookContext) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = HookResult> + Send + 'static,
    {
        self.before_lease = Some(boxed(hook));
        self
    }

    /// Runs after a lease is returned, before the browser is readied for the
    /// next one; an `Err` vetoes the reuse.
    pub fn after_release<F, Fut>(mut self, hook: F) -> Hooks
    where
        F: Fn(HookContext) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = HookResult> + Send + 'static,
    {
        self.after_release = Some(boxed(hook));
        self
    }

    /// Runs the hook at `point`, if any, within `deadline`.
    pub(crate) async fn run(
        &self,
        point: HookPoint,
        deadline: Duration,
        cx: impl FnOnce() -> HookContext,
    ) -> Result<()> {
        let hook = match point {
            HookPoint::AfterLaunch => &self.after_launch,
            HookPoint::BeforeLease => &self.before_lease,
            HookPoint::AfterRelease => &self.after_release,
        };
        let Some(hook) = hook else {
            return Ok(());
        };
        let cx = cx();
        let browser = cx.browser_id;
        let failed = |message: String| {
            tracing::warn!(browser, hook = point.name(), %message, "hook failed; retiring the browser");
            Error::Hook {
                browser,
                hook: point.name(),
                message,
            }
        };
        match tokio::time::timeout(deadline, hook(cx)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(failed(e.to_string())),
            Err(_) => Err(failed(format!("did not finish within {deadline:?}"))),
        }
    }
}
