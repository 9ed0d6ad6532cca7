//! The pool's side of a fleet: opening a slot on the endpoint chosen,
//! retrying endpoints that are down, and watching a connection for its
//! loss.

use std::sync::Arc;
use std::time::Duration;

use super::{Fleet, Refusal};
use crate::browser::chromium::slot::Slot;
use crate::browser::inner::PoolInner;
use crate::browser::stats::RetireReason;
use crate::error::Result;

impl PoolInner {
    /// A new slot on a fleet endpoint: the one with the fewest slots that
    /// is up and under its cap, in the connection already open to it if
    /// that has room, else in a new one. An endpoint that fails to connect
    /// is marked lost and the next one tried; with none up, the endpoints
    /// due for a retry are retried here, and the error names them all.
    pub(crate) async fn start_on_endpoint(
        self: &Arc<Self>,
        fleet: &Arc<Fleet>,
    ) -> Result<Option<Slot>> {
        let mut tried = Vec::new();
        let mut retried = false;
        loop {
            let ticket = match fleet.choose(&tried) {
                Ok(ticket) => ticket,
                // Slots come back to idle: waiting for room would wait for
                // a slot to close, which may never happen.
                Err(Refusal::AtCapacity) => return Ok(None),
                Err(Refusal::NoneUp(e)) if retried || !tried.is_empty() => return Err(e),
                Err(Refusal::NoneUp(e)) => {
                    retried = true;
                    if self.retry_endpoints().await {
                        continue;
                    }
                    return Err(e);
                }
            };
            let index = ticket.index;
            if let Some(mut slot) = self.open_room(Some(index)) {
                slot.on_endpoint = Some(ticket);
                match slot.prepare().await {
                    Ok(()) => return Ok(Some(slot)),
                    Err(e) => {
                        tracing::debug!(pool = self.id, endpoint = index, error = %e, "a slot did not open");
                        self.retire(slot, RetireReason::Unhealthy);
                        tried.push(index);
                        continue;
                    }
                }
            }
            // With slots sharing a connection, one opens at a time per
            // endpoint; the others wait and take a slot in it.
            let claim = if self.config.slots_per_browser() > 1 {
                let finished = fleet.connect_finished();
                tokio::pin!(finished);
                finished.as_mut().enable();
                match fleet.claim_connect(index) {
                    Some(claim) => Some(claim),
                    None => {
                        // The opening's end wakes this; the bound covers a
                        // room that filled meanwhile.
                        let _ = tokio::time::timeout(Duration::from_millis(100), finished).await;
                        drop(ticket);
                        continue;
                    }
                }
            } else {
                None
            };
            let started = self.start_browser_with(None, Some(ticket)).await;
            drop(claim);
            match started {
                Ok(slot) => return Ok(Some(slot)),
                Err(e) => {
                    fleet.lost(index, &e.to_string());
                    tried.push(index);
                }
            }
        }
    }

    /// Retries every fleet endpoint due for it, at once: each is resolved,
    /// connected to and asked for its version. Returns whether one came
    /// back up.
    pub(crate) async fn retry_endpoints(self: &Arc<Self>) -> bool {
        let Some(fleet) = &self.fleet else {
            return false;
        };
        let due = fleet.due_retries();
        if due.is_empty() {
            return false;
        }
        let timeout = self.config.cdp_timeout;
        let retries = due.into_iter().map(|(index, endpoint)| async move {
            let outcome = answers(&endpoint, timeout).await;
            let up = outcome.is_ok();
            fleet.retried(index, outcome);
            up
        });
        let any = futures::future::join_all(retries)
            .await
            .into_iter()
            .any(|up| up);
        if any {
            self.slots.changed.notify_waiters();
            self.slots.maintain.notify_one();
        }
        any
    }
}

/// Marks `slot`'s fleet endpoint lost when its connection is: closed,
/// its heartbeat missed, or a call finding it gone. Not on an eviction (the
/// pool's own judgement of one browser) nor on the pool's own shutdown of it
/// (which drops the watch unfired).
pub(crate) fn watch_endpoint(slot: &Slot, fleet: Arc<Fleet>, index: usize) {
    let mut dead = slot.dead().clone();
    tokio::spawn(async move {
        let why = match dead.wait_for(Option::is_some).await {
            Ok(why) => why.clone(),
            Err(_) => return,
        };
        if let Some(why) = why.filter(|w| !w.is_evicted()) {
            fleet.lost(index, &why.to_string());
        }
    });
}

/// Whether a remote endpoint answers: resolved, connected, and its version
/// read within `timeout` each. The connection is closed again; slots open
/// in it through the pool.
async fn answers(endpoint: &str, timeout: Duration) -> std::result::Result<(), String> {
    let url = crate::browser::chromium::endpoint::resolve(endpoint, timeout)
        .await
        .map_err(|e| e.to_string())?;
    let config = chromiumoxide::handler::HandlerConfig {
        request_timeout: timeout,
        ..Default::default()
    };
    let (browser, mut handler) = tokio::time::timeout(
        timeout,
        chromiumoxide::Browser::connect_with_config(url.clone(), config),
    )
    .await
    .map_err(|_| format!("no connection to {url} within {timeout:?}"))?
    .map_err(|e| format!("connecting to {url}: {e}"))?;
    let polling = tokio::spawn(async move {
        use futures::StreamExt;
        while handler.next().await.is_some() {}
    });
    let version = tokio::time::timeout(timeout, browser.version()).await;
    polling.abort();
    match version {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(format!("Browser.getVersion on {url}: {e}")),
        Err(_) => Err(format!("no answer from {url} within {timeout:?}")),
    }
}
