//! The death watch: which browsers are still alive (tokens the pool's close
//! waits on), how a browser is marked gone, and the guarded call that fails
//! at once when its browser dies instead of waiting for a reply that will
//! never come.

use std::future::Future;
use std::time::Duration;

use tokio::sync::watch;

use crate::error::{Error, Result};

/// How an eviction's reason starts, so calls report it as one.
pub(crate) const EVICTED: &str = "evicted: ";

/// Marks a browser gone unless it already is.
pub(crate) fn mark_gone(tx: &watch::Sender<Option<String>>, why: &str) {
    tx.send_if_modified(|gone| {
        if gone.is_none() {
            *gone = Some(why.to_owned());
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
    dead: watch::Receiver<Option<String>>,
    timeout: Option<Duration>,
    action: &str,
    fut: impl Future<Output = std::result::Result<T, chromiumoxide::error::CdpError>>,
) -> Result<T> {
    let crashed = |detail: String| match detail.strip_prefix(EVICTED) {
        Some(reason) => Error::BrowserEvicted {
            browser,
            action: action.to_owned(),
            reason: reason.to_owned(),
        },
        None => Error::BrowserCrashed {
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
    let died = |mut waiter: watch::Receiver<Option<String>>| async move {
        match waiter.wait_for(Option::is_some).await {
            Ok(detail) => detail.clone().unwrap_or_default(),
            Err(_) => "its watcher is gone".to_owned(),
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
