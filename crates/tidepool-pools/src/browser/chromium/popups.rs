//! Popups closed the moment they open. A page's `window.open` (or a link
//! with `target=_blank`) makes a new page in the lease's context that the
//! lease never asked for: a storm of them is a storm of renderers, and
//! under [`Isolation::None`](crate::browser::Isolation::None) they would
//! outlive the lease into the next one. The pool watches each browser's
//! new targets and closes every page with an opener in one of its own
//! contexts; pages a lease opens itself have no opener and stay.

use std::sync::Arc;

use chromiumoxide::cdp::browser_protocol::target::{CloseTargetParams, EventTargetCreated};
use chromiumoxide::error::CdpError;
use chromiumoxide::Browser;
use futures::StreamExt;

use super::connection::{own_contexts, OwnContexts};
use super::listener::Listener;
use crate::recording::Counter;

/// Starts closing the popups of `browser` that open in `contexts`,
/// counting each in `closed`.
pub(crate) async fn close_popups(
    browser: &Arc<Browser>,
    contexts: OwnContexts,
    closed: Arc<Counter>,
) -> Result<Listener, CdpError> {
    let mut created = browser.event_listener::<EventTargetCreated>().await?;
    let weak = Arc::downgrade(browser);
    let task = tokio::spawn(async move {
        while let Some(event) = created.next().await {
            let t = &event.target_info;
            let ours = t
                .browser_context_id
                .as_ref()
                .is_some_and(|c| own_contexts(&contexts).contains(c));
            if t.r#type != "page" || t.opener_id.is_none() || !ours {
                continue;
            }
            let Some(browser) = weak.upgrade() else {
                return;
            };
            tracing::debug!(url = %t.url, "closing a popup");
            let close = CloseTargetParams::new(t.target_id.clone());
            // Closed concurrently: a storm is answered as fast as it opens.
            let closed = closed.clone();
            tokio::spawn(async move {
                if browser.execute(close).await.is_ok() {
                    closed.incr();
                }
            });
        }
    });
    Ok(Listener::new(task))
}
