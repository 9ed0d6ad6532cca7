//! Downloads, denied in every context the pool makes
//! (`Browser.setDownloadBehavior`), and followed: a navigation that turns
//! into a download never loads, so without this a lease's `goto` to one
//! would wait out its whole deadline. Each download's start
//! (`Browser.downloadWillBegin`) is recorded by frame, and a call on a
//! lease's page fails as soon as its page starts one.

use std::collections::HashMap;
use std::sync::Arc;

use chromiumoxide::cdp::browser_protocol::browser::EventDownloadWillBegin;
use chromiumoxide::Browser;
use futures::StreamExt;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// By frame id (a page's main frame has its target's id): how many
/// downloads it started, and the URL of the last.
#[derive(Debug, Clone, Default)]
pub(crate) struct Downloads(Arc<watch::Sender<HashMap<String, (u64, String)>>>);

impl Downloads {
    /// Follows the downloads `browser` reports; `None` if it cannot listen
    /// (a download then costs its call the deadline, as before).
    pub(crate) async fn follow(&self, browser: &Browser, id: u64) -> Option<JoinHandle<()>> {
        let mut begun = match browser.event_listener::<EventDownloadWillBegin>().await {
            Ok(stream) => stream,
            Err(e) => {
                tracing::debug!(browser = id, error = %e, "no listener for downloads");
                return None;
            }
        };
        let seen = self.0.clone();
        Some(tokio::spawn(async move {
            while let Some(d) = begun.next().await {
                tracing::info!(browser = id, url = %d.url, "a page's download was denied");
                seen.send_modify(|by_frame| {
                    let entry = by_frame.entry(d.frame_id.inner().clone()).or_default();
                    entry.0 += 1;
                    entry.1 = d.url.clone();
                });
            }
        }))
    }

    /// How many downloads frame `frame` started so far.
    pub(crate) fn count(&self, frame: &str) -> u64 {
        self.0.borrow().get(frame).map_or(0, |d| d.0)
    }

    /// Waits until frame `frame` has started more than `before` downloads,
    /// and returns the last one's URL; never, if the browser goes first.
    pub(crate) async fn next(&self, frame: &str, before: u64) -> String {
        let mut rx = self.0.subscribe();
        let url = rx
            .wait_for(|m| m.get(frame).is_some_and(|d| d.0 > before))
            .await
            .ok()
            .map(|m| m.get(frame).map(|d| d.1.clone()).unwrap_or_default());
        match url {
            Some(url) => url,
            None => std::future::pending().await,
        }
    }
}
