//! One browser's connection: launching or connecting to it, the task that
//! polls its CDP handler, its crash listener and heartbeat, and the [`Core`]
//! its slots share. A browser ends when its last slot does.

use std::path::Path;
use std::sync::atomic::AtomicU32;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chromiumoxide::cdp::browser_protocol::browser::BrowserContextId;
use chromiumoxide::cdp::browser_protocol::target::{EventTargetCrashed, TargetId};
use chromiumoxide::handler::HandlerConfig;
use chromiumoxide::Browser;
use futures::StreamExt;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::process::LocalProcess;
use super::sandbox::Sandbox;
use super::watch::{cdp_error, mark_gone, DeathWatch, Gone};
use crate::browser::alive::AliveToken;
use crate::browser::stats::RetireReason;
use crate::error::{Error, Result};

/// The contexts a pool created in one browser and has not disposed yet: what
/// the memory sampler measures in a connected browser, where other clients'
/// pages are not the pool's business.
pub(crate) type OwnContexts = Arc<std::sync::Mutex<Vec<BrowserContextId>>>;

/// One browser: the CDP client, the task polling its handler, the process
/// when the pool launched it, and what every lease slot in it shares. It
/// ends when its last slot does ([`Slot::shut_down`](super::slot::Slot::shut_down)).
#[derive(Debug)]
pub(crate) struct Core {
    /// The pool's id of the browser.
    pub(crate) id: u64,
    /// The browser's WebSocket URL.
    pub(crate) endpoint: String,
    pub(crate) browser: Arc<Browser>,
    /// Becomes `Some(how)` when the browser is gone: process exit, lost
    /// connection, or eviction by the pool.
    pub(crate) dead: DeathWatch,
    pub(crate) created: Instant,
    /// The deadline of one CDP call the pool makes.
    pub(crate) cdp_timeout: Duration,
    pub(crate) handler: JoinHandle<()>,
    pub(crate) process: Option<LocalProcess>,
    /// Fires `dead`: from the process watcher, a failed probe, or the pool.
    pub(crate) dead_tx: Arc<watch::Sender<Option<Gone>>>,
    /// Every context of the pool's in this browser (one per slot).
    pub(crate) contexts: OwnContexts,
    /// Leases served by every slot together.
    pub(crate) uses: AtomicU32,
    /// Why the browser is being retired, once a slot of it was: its other
    /// slots follow as they come by, instead of serving another lease.
    pub(crate) draining: std::sync::OnceLock<RetireReason>,
    /// Set by the pool once the browser is started; counts it alive until dropped.
    pub(crate) alive: std::sync::OnceLock<AliveToken>,
    /// The page targets whose renderer crashed (`Target.targetCrashed`), so a
    /// call on a crashed page fails at once instead of waiting out its timeout.
    pub(crate) crashed_pages: Arc<watch::Sender<std::collections::HashSet<TargetId>>>,
    /// Follows `Target.targetCrashed` into `crashed_pages`.
    pub(crate) crash_listener: Option<JoinHandle<()>>,
    /// Asks a connected browser for its version every period; see
    /// [`FleetPolicy::heartbeat`](crate::browser::FleetPolicy::heartbeat).
    pub(crate) heartbeat: Option<JoinHandle<()>>,
    /// Closes the popups of the pool's pages, under [`Popups::Close`](crate::browser::Popups::Close).
    pub(crate) popups: std::sync::OnceLock<super::listener::Listener>,
    /// The downloads each page's frame started (all denied): how many, and
    /// the last one's URL, by frame id.
    pub(crate) downloads: super::downloads::Downloads,
    /// Follows `Browser.downloadWillBegin` into `downloads`.
    pub(crate) download_listener: Option<JoinHandle<()>>,
}

/// How a connection's loss is found, beyond its socket's close.
#[derive(Debug, Clone, Default)]
pub(crate) struct Liveness {
    /// Ask the browser for its version every period, and mark it gone when
    /// it does not answer within one.
    pub(crate) heartbeat: Option<Duration>,
}

impl Drop for Core {
    fn drop(&mut self) {
        self.handler.abort();
        for task in [
            &self.crash_listener,
            &self.heartbeat,
            &self.download_listener,
        ]
        .into_iter()
        .flatten()
        {
            task.abort();
        }
    }
}

/// A browser just connected to: what its first slot is made of, and what
/// its later slots share.
pub(crate) struct Connection {
    pub(crate) core: Arc<Core>,
}

impl Connection {
    /// Launches a local browser and connects to it.
    pub(crate) async fn launch(
        id: u64,
        executable: &Path,
        flags: &[String],
        sandbox: Sandbox,
        tag: &str,
        launch_timeout: Duration,
        cdp_timeout: Duration,
    ) -> Result<Connection> {
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
                        *gone = status.map(|s| Gone::Died(format!("process exited: {s}")));
                        true
                    } else {
                        false
                    }
                });
            }
        });
        let remaining = deadline.saturating_duration_since(Instant::now());
        Connection::connect_inner(
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
    ) -> Result<Connection> {
        let (tx, rx) = watch::channel(None);
        Connection::connect_inner(
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
        (dead, dead_tx): (DeathWatch, Arc<watch::Sender<Option<Gone>>>),
        timeout: Duration,
        cdp_timeout: Duration,
        liveness: Liveness,
    ) -> Result<Connection> {
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
            mark_gone(&lost, Gone::Died(format!("the connection to {at} closed")));
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
        let downloads = super::downloads::Downloads::default();
        let download_listener = downloads.follow(&browser, id).await;
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
                            Gone::Died(format!("not responding: {at} did not answer its heartbeat (Browser.getVersion) within {:?}", period * 2)),
                        );
                        return;
                    }
                }
            })
        });
        let now = Instant::now();
        let core = Core {
            id,
            endpoint: url,
            browser,
            dead,
            created: now,
            cdp_timeout,
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
            popups: std::sync::OnceLock::new(),
            downloads,
            download_listener,
        };
        Ok(Connection {
            core: Arc::new(core),
        })
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
pub(crate) fn dispose_on_detach() -> bool {
    #[cfg(feature = "controls")]
    if KEEP_CONTEXTS.load(std::sync::atomic::Ordering::Relaxed) {
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
    KEEP_CONTEXTS.store(true, std::sync::atomic::Ordering::Relaxed);
}
