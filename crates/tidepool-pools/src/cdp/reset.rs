//! What readies a used page session for its next user: its init scripts
//! removed, emulation cleared, the DOM agent off, the context's cookies
//! cleared once no other session is in use, and the page unloaded; or the
//! page closed when the pool is full or the reset fails.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use chromiumoxide::cdp::browser_protocol::dom;
use chromiumoxide::cdp::browser_protocol::emulation::ClearDeviceMetricsOverrideParams;
use chromiumoxide::cdp::browser_protocol::page::{
    NavigateParams, RemoveScriptToEvaluateOnNewDocumentParams, ScriptIdentifier,
};
use chromiumoxide::cdp::browser_protocol::storage::ClearCookiesParams;
use chromiumoxide::cdp::browser_protocol::target::{CloseTargetParams, EventTargetDestroyed};
use chromiumoxide::Page;
use futures::StreamExt;

use super::session::{Idle, SessionPool, CLEAR_DEADLINE};
use crate::error::{Error, Result};

impl SessionPool {
    /// Closes a page target and waits (up to 2 s) for the browser to report
    /// it destroyed: `Target.closeTarget` answers before the target is gone,
    /// and until it is, the browser's count and the pool's disagree.
    pub(super) async fn close_page(&self, page: Page) {
        let h = &self.inner.handle;
        let id = page.target_id().clone();
        let destroyed = h.browser.event_listener::<EventTargetDestroyed>().await;
        let close = CloseTargetParams::new(id.clone());
        if let Err(e) = h
            .call(
                "closing a page session",
                Some(Duration::from_secs(2)),
                h.browser.execute(close),
            )
            .await
        {
            tracing::warn!(error = %e, "could not close a page session");
            return;
        }
        if let Ok(mut events) = destroyed {
            let gone = async {
                while let Some(event) = events.next().await {
                    if event.target_id == id {
                        return;
                    }
                }
            };
            if tokio::time::timeout(Duration::from_secs(2), gone)
                .await
                .is_err()
            {
                tracing::warn!(target = ?id, "a closed page session was not reported destroyed within 2 s");
            }
        }
    }

    /// Clears the context's cookies if a released session left them dirty
    /// and no session is in use. The exclusive hold is kept through the clear
    /// (bounded by [`CLEAR_DEADLINE`]): an acquire meanwhile waits for it
    /// instead of setting a cookie the clear would take away.
    async fn clear_cookies_if_alone(&self) -> Result<()> {
        let Ok(_alone) = self.inner.users.clone().try_write_owned() else {
            return Ok(()); // another session is in use: the last one out clears
        };
        if !self.inner.cookies_dirty.swap(false, Ordering::SeqCst) {
            return Ok(());
        }
        let h = &self.inner.handle;
        let clear = ClearCookiesParams::builder()
            .browser_context_id(h.context.clone())
            .build();
        let cleared = h
            .call(
                "clearing cookies",
                Some(CLEAR_DEADLINE),
                h.browser.execute(clear),
            )
            .await;
        if cleared.is_err() {
            self.inner.cookies_dirty.store(true, Ordering::SeqCst);
        }
        cleared.map(|_| ())
    }

    /// Resets a session and keeps it, or closes it when the pool is full or
    /// the reset fails.
    pub(super) async fn release(
        &self,
        page: Page,
        created: Instant,
        scripts: Vec<ScriptIdentifier>,
        in_use: Option<tokio::sync::OwnedRwLockReadGuard<()>>,
    ) {
        let h = &self.inner.handle;
        let c = &self.inner.config;
        // The reset's commands are independent of each other: they go out
        // together, one round trip for all, and the page is then unloaded
        // with a bare `Page.navigate` (answered once about:blank commits; the
        // next use's own navigation waits for its load).
        let reset = async {
            let removals = scripts.iter().map(|id| {
                h.call(
                    "removing an init script",
                    None,
                    page.execute(RemoveScriptToEvaluateOnNewDocumentParams::new(id.clone())),
                )
            });
            let emulation = h.call(
                "clearing emulation",
                None,
                page.execute(ClearDeviceMetricsOverrideParams::default()),
            );
            // A use may have turned the DOM agent on (DOM.getDocument does).
            // Left on, it streams node events through every later navigation
            // of the session (measured: +7-12 ms a navigation) and keeps node
            // ids from a use the next one should not see. Chromium answers an
            // error when the agent is already off: that is the state we want.
            let dom_off = async {
                match h
                    .call(
                        "disabling the DOM agent",
                        None,
                        page.execute(dom::DisableParams::default()),
                    )
                    .await
                {
                    Ok(_) | Err(Error::Cdp { .. }) => Ok(()),
                    Err(e) => Err(e),
                }
            };
            let cookies = async {
                drop(in_use);
                if c.clear_cookies_on_reset {
                    self.inner.cookies_dirty.store(true, Ordering::SeqCst);
                    self.clear_cookies_if_alone().await?;
                }
                Ok::<(), Error>(())
            };
            let (removed, emulation, dom_off, cookies) = futures::join!(
                futures::future::try_join_all(removals),
                emulation,
                dom_off,
                cookies
            );
            removed?;
            emulation?;
            dom_off?;
            cookies?;
            h.call(
                "navigating to about:blank",
                None,
                page.execute(NavigateParams::new("about:blank")),
            )
            .await?;
            Ok::<(), Error>(())
        };
        match reset.await {
            Ok(()) => {
                self.inner.recorder.resets.incr();
                let surplus = {
                    let mut idle = self.idle();
                    if idle.len() < c.max_sessions {
                        idle.push(Idle {
                            page,
                            created,
                            last_used: Instant::now(),
                            scripts: Vec::new(),
                        });
                        None
                    } else {
                        Some(page)
                    }
                };
                if let Some(page) = surplus {
                    self.inner.recorder.surplus_closed.incr();
                    self.close_page(page).await;
                }
            }
            Err(e) => {
                tracing::debug!(error = %e, "session reset failed; discarding it");
                self.inner.recorder.discarded.incr();
                self.close_page(page).await;
            }
        }
    }
}
