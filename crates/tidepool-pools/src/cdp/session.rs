//! [`SessionPool`]: page sessions reused within one lease's context, and the
//! [`Session`] a caller holds; their reset is in `reset.rs`.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chromiumoxide::cdp::browser_protocol::page::{
    AddScriptToEvaluateOnNewDocumentParams, ScriptIdentifier,
};
use chromiumoxide::cdp::browser_protocol::target::{CreateTargetParams, GetTargetsParams};
use chromiumoxide::cdp::js_protocol::runtime::EvaluateParams;
use chromiumoxide::Page;

use super::batch::Batch;
use super::config::SessionPoolConfig;
use super::stats::{SessionPoolStats, SessionRecorder};
use crate::browser::{BrowserHandle, Lease};
use crate::error::{Error, Result};
use crate::retention::{Decision, Stamps};

pub(super) struct Idle {
    pub(super) page: Page,
    pub(super) created: Instant,
    pub(super) last_used: Instant,
    pub(super) scripts: Vec<ScriptIdentifier>,
}

pub(super) struct Inner {
    pub(super) handle: BrowserHandle,
    pub(super) config: SessionPoolConfig,
    pub(super) idle: Mutex<Vec<Idle>>,
    pub(super) recorder: SessionRecorder,
    /// Held shared by every session in use, and exclusively while the
    /// context's cookies are cleared: cookies belong to the context, so a
    /// reset clears them only when no other session of the pool is in use.
    pub(super) users: Arc<tokio::sync::RwLock<()>>,
    /// A session was released while others were in use: the last one out
    /// clears the cookies.
    pub(super) cookies_dirty: std::sync::atomic::AtomicBool,
}

/// How long a cookie clear may keep acquirers waiting.
pub(super) const CLEAR_DEADLINE: Duration = Duration::from_secs(5);

/// Page sessions reused within one browser lease's incognito context.
///
/// Creating a page target and enabling its domains costs tens of milliseconds;
/// a round trip on an open session costs a fraction of one. The pool keeps up
/// to `max_sessions` attached pages and hands them out again after a reset:
/// navigate to `about:blank`, remove the init scripts added through
/// [`Session::add_init_script`], clear emulation overrides, turn off the DOM
/// agent a use may have turned on, and (by default) clear the context's
/// cookies once no other session of the pool is in use (cookies belong to
/// the context, and another session's must not vanish under it). Pages live in the lease's context, so under the default
/// [`Isolation::Context`](crate::browser::Isolation::Context) whatever a
/// reset could miss is disposed with the context when the lease ends; under
/// `Wipe` the lease's wipe closes the pages and clears their state, and under
/// `None` nothing does.
///
/// # Example
///
/// ```no_run
/// # async fn demo(lease: &tidepool_pools::browser::Lease) -> tidepool_pools::Result<()> {
/// use tidepool_pools::cdp::{SessionPool, SessionPoolConfig};
///
/// let sessions = SessionPool::new(lease, SessionPoolConfig::default())?;
/// let session = sessions.acquire().await?;
/// session.goto("http://127.0.0.1:8080/").await?;
/// session.release().await;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct SessionPool {
    pub(super) inner: Arc<Inner>,
}

impl std::fmt::Debug for SessionPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionPool")
            .field("stats", &self.stats())
            .finish()
    }
}

impl SessionPool {
    /// A pool of sessions in `lease`'s context.
    pub fn new(lease: &Lease, config: SessionPoolConfig) -> Result<SessionPool> {
        config.validate()?;
        Ok(SessionPool {
            inner: Arc::new(Inner {
                handle: lease.handle(),
                config,
                idle: Mutex::new(Vec::new()),
                recorder: SessionRecorder::default(),
                users: Arc::new(tokio::sync::RwLock::new(())),
                cookies_dirty: std::sync::atomic::AtomicBool::new(false),
            }),
        })
    }

    pub(super) fn idle(&self) -> std::sync::MutexGuard<'_, Vec<Idle>> {
        self.inner.idle.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A session: an idle one (probed first when idle long), or a new one.
    ///
    /// Cancel-safe: the work runs to its end in a task of its own, so a
    /// caller that gives up (a dropped future, a lost `select!`) never leaves
    /// a target created, or an idle session taken, open in the browser and
    /// unknown to the pool. The session nobody waits for any more is dropped
    /// there, and its drop returns it to the pool.
    pub async fn acquire(&self) -> Result<Session> {
        let pool = self.clone();
        tokio::spawn(async move { pool.acquire_to_completion().await })
            .await
            .map_err(|e| Error::Task {
                what: "acquiring a page session".into(),
                message: e.to_string(),
            })?
    }

    async fn acquire_to_completion(&self) -> Result<Session> {
        let c = &self.inner.config;
        // Waits only while a released session clears the cookies.
        let in_use = self.inner.users.clone().read_owned().await;
        loop {
            let candidate = self.idle().pop();
            let Some(idle) = candidate else { break };
            // A session is checked by use: its last use is its last check.
            let stamps = Stamps {
                created: idle.created,
                last_used: idle.last_used,
                last_checked: idle.last_used,
            };
            let decision = c.retention.decide(stamps, true);
            if matches!(decision, Decision::Expired | Decision::IdleTooLong) {
                self.inner.recorder.expired.incr();
                self.close_page(idle.page).await;
                continue;
            }
            if decision == Decision::Probe {
                let probe = self
                    .inner
                    .handle
                    .call(
                        "session probe",
                        Some(c.retention.health_check_timeout),
                        idle.page.execute(EvaluateParams::new("1")),
                    )
                    .await;
                if probe.is_err() {
                    self.inner.recorder.discarded.incr();
                    self.close_page(idle.page).await;
                    continue;
                }
            }
            self.inner.recorder.reused.incr();
            return Ok(Session {
                pool: self.clone(),
                page: Some(idle.page),
                created: idle.created,
                scripts: idle.scripts,
                reused: true,
                in_use: Some(in_use),
            });
        }
        let h = &self.inner.handle;
        let params = CreateTargetParams::builder()
            .url("about:blank")
            .browser_context_id(h.context.clone())
            .build()
            .map_err(|message| Error::Cdp {
                browser: h.id,
                endpoint: h.endpoint.clone(),
                action: "building Target.createTarget".into(),
                message,
            })?;
        let page = h
            .call("creating a page session", None, h.browser.new_page(params))
            .await?;
        self.inner.recorder.created.incr();
        Ok(Session {
            pool: self.clone(),
            page: Some(page),
            created: Instant::now(),
            scripts: Vec::new(),
            reused: false,
            in_use: Some(in_use),
        })
    }

    /// A snapshot of the counters and the pool's size.
    pub fn stats(&self) -> SessionPoolStats {
        self.inner.recorder.snapshot(self.inner.config.max_sessions)
    }

    /// Idle sessions now.
    pub fn idle_count(&self) -> usize {
        self.idle().len()
    }

    /// Page targets the browser reports in this pool's context, for checking
    /// that the pool's own count is the truth.
    pub async fn page_targets_in_context(&self) -> Result<usize> {
        let h = &self.inner.handle;
        let targets = h
            .call(
                "Target.getTargets",
                Some(Duration::from_secs(5)),
                h.browser.execute(GetTargetsParams::default()),
            )
            .await?;
        Ok(targets
            .result
            .target_infos
            .iter()
            .filter(|t| t.r#type == "page" && t.browser_context_id.as_ref() == Some(&h.context))
            .count())
    }
}

/// One page session, exclusively yours until released or dropped.
pub struct Session {
    pool: SessionPool,
    page: Option<Page>,
    created: Instant,
    scripts: Vec<ScriptIdentifier>,
    reused: bool,
    /// The pool's shared hold, given up when the session is released.
    in_use: Option<tokio::sync::OwnedRwLockReadGuard<()>>,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("age", &self.created.elapsed())
            .finish()
    }
}

impl Session {
    /// Whether an idle session served this acquisition (false: a new page
    /// target was created for it).
    pub fn reused(&self) -> bool {
        self.reused
    }

    /// The session's page.
    pub fn page(&self) -> &Page {
        // Present until release or drop takes it.
        self.page.as_ref().expect("a live session holds its page")
    }

    /// A batch of commands for this session's page.
    pub fn batch(&self) -> Batch<'_> {
        Batch::new(
            &self.pool.inner.handle,
            self.page(),
            &self.pool.inner.recorder,
        )
    }

    /// Navigates and waits for the load, failing at once if the browser dies.
    pub async fn goto(&self, url: &str) -> Result<()> {
        self.pool
            .inner
            .handle
            .call(&format!("navigating to {url}"), None, async {
                self.page().goto(url).await.map(|_| ())
            })
            .await
    }

    /// Adds a script run in every new document of this session; the reset
    /// removes it.
    pub async fn add_init_script(&mut self, source: &str) -> Result<()> {
        let r = self
            .pool
            .inner
            .handle
            .call(
                "adding an init script",
                None,
                self.page()
                    .execute(AddScriptToEvaluateOnNewDocumentParams::new(source)),
            )
            .await?;
        self.scripts.push(r.result.identifier);
        Ok(())
    }

    /// Resets the session and returns it to the pool.
    pub async fn release(mut self) {
        if let Some(page) = self.page.take() {
            let in_use = self.in_use.take();
            self.pool
                .release(
                    page,
                    self.created,
                    std::mem::take(&mut self.scripts),
                    in_use,
                )
                .await;
        }
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        // Dropped without release: reset and return it in the background.
        if let Some(page) = self.page.take() {
            let (pool, created, scripts, in_use) = (
                self.pool.clone(),
                self.created,
                std::mem::take(&mut self.scripts),
                self.in_use.take(),
            );
            if let Ok(rt) = tokio::runtime::Handle::try_current() {
                rt.spawn(async move { pool.release(page, created, scripts, in_use).await });
            }
        }
    }
}
