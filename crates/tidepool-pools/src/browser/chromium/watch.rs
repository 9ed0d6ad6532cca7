//! The death watch: which browsers are still alive (tokens the pool's close
//! waits on), how a browser is marked gone, and the guarded call that fails
//! at once when its browser dies instead of waiting for a reply that will
//! never come.

use std::future::Future;
use std::time::Duration;

use tokio::sync::watch;

use crate::error::{Error, Result};

/// Why a browser is gone, as its death watch carries it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Gone {
    /// Its process exited, its connection closed, it stopped answering, or
    /// a call found it dead.
    Died(String),
    /// The pool evicted it for its memory: it still answers, and it is not
    /// its endpoint's loss.
    Evicted(String),
}

impl Gone {
    pub(crate) fn is_evicted(&self) -> bool {
        matches!(self, Gone::Evicted(_))
    }
}

impl std::fmt::Display for Gone {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Gone::Died(detail) => f.write_str(detail),
            Gone::Evicted(reason) => write!(f, "evicted: {reason}"),
        }
    }
}

/// A browser's death watch: `None` while it lives.
pub(crate) type DeathWatch = watch::Receiver<Option<Gone>>;

/// Marks a browser gone unless it already is.
pub(crate) fn mark_gone(tx: &watch::Sender<Option<Gone>>, why: Gone) {
    tx.send_if_modified(|gone| {
        if gone.is_none() {
            *gone = Some(why);
            true
        } else {
            false
        }
    });
}

/// How long a call the CDP client timed out waits for the death watch's
/// verdict before it reports the timeout itself.
const VERDICT_GRACE: Duration = Duration::from_millis(250);

/// Awaits `fut`, bounded by `timeout`, and fails at once if `dead` fires.
pub(crate) async fn guarded<T>(
    browser: u64,
    endpoint: &str,
    dead: DeathWatch,
    timeout: Option<Duration>,
    action: &str,
    fut: impl Future<Output = std::result::Result<T, chromiumoxide::error::CdpError>>,
) -> Result<T> {
    let crashed = |gone: Gone| match gone {
        Gone::Evicted(reason) => Error::BrowserEvicted {
            browser,
            action: action.to_owned(),
            reason,
        },
        Gone::Died(detail) => Error::BrowserCrashed {
            browser,
            action: action.to_owned(),
            detail,
        },
    };
    if let Some(detail) = dead.borrow().clone() {
        return Err(crashed(detail));
    }
    let bounded = async {
        match timeout {
            Some(t) => tokio::time::timeout(t, fut).await.map_err(|_| t),
            None => Ok(fut.await),
        }
    };
    let died = |mut waiter: DeathWatch| async move {
        match waiter.wait_for(Option::is_some).await {
            Ok(gone) => gone.clone().unwrap_or(Gone::Died(String::new())),
            Err(_) => Gone::Died("its watcher is gone".to_owned()),
        }
    };
    tokio::select! {
        r = bounded => match r {
            Ok(Ok(v)) => Ok(v),
            // The client's request deadline and the responsiveness watch's
            // verdict fall due together on a hung browser: the watch has
            // the moment it needs to name the hang, whichever fired first.
            Ok(Err(chromiumoxide::error::CdpError::Timeout)) if dead.borrow().is_none() => {
                match tokio::time::timeout(VERDICT_GRACE, died(dead.clone())).await {
                    Ok(detail) => Err(crashed(detail)),
                    Err(_) => Err(cdp_error(
                        browser,
                        endpoint,
                        action,
                        chromiumoxide::error::CdpError::Timeout,
                    )),
                }
            }
            Ok(Err(e)) => match dead.borrow().clone() {
                // A call that failed because the browser died reports the death.
                Some(detail) => Err(crashed(detail)),
                None => Err(cdp_error(browser, endpoint, action, e)),
            },
            Err(after) => Err(Error::Timeout {
                key: format!("{action} on browser {browser} ({endpoint})"),
                after,
            }),
        },
        detail = died(dead.clone()) => Err(crashed(detail)),
    }
}

/// A CDP failure of `action` on a browser, as our error.
pub(crate) fn cdp_error(
    browser: u64,
    endpoint: &str,
    action: &str,
    e: chromiumoxide::error::CdpError,
) -> Error {
    Error::Cdp {
        browser,
        endpoint: endpoint.to_owned(),
        action: action.to_owned(),
        message: e.to_string(),
    }
}
