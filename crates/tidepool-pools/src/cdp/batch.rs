use std::future::Future;
use std::pin::Pin;
use std::time::Instant;

use chromiumoxide::types::Command;
use chromiumoxide::Page;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::stats::SessionRecorder;
use crate::browser::BrowserHandle;
use crate::error::{Error, Result};

type Pending<'a> = Pin<Box<dyn Future<Output = Result<Value>> + Send + 'a>>;

/// CDP commands sent together on one session: pipelined on the websocket, each
/// with its own result.
///
/// [`send`](Batch::send) polls every command's future at once, so each is
/// written to the socket before any reply is awaited: chromiumoxide gives every
/// sender its own slot in the handler's channel and matches replies by call id.
/// That is pipelining on the one connection, with no second websocket.
///
/// A command that fails yields its own error and costs none of the others; if
/// the browser dies, every pending command errors with the crash.
///
/// # Example
///
/// ```no_run
/// # async fn demo(session: &tidepool_pools::cdp::Session) -> tidepool_pools::Result<()> {
/// use chromiumoxide::cdp::browser_protocol::page::GetLayoutMetricsParams;
/// use chromiumoxide::cdp::js_protocol::runtime::EvaluateParams;
///
/// let mut batch = session.batch();
/// batch.push(EvaluateParams::new("document.title"));
/// batch.push(GetLayoutMetricsParams::default());
/// let results = batch.send().await;
/// assert_eq!(results.len(), 2);
/// # Ok(()) }
/// ```
pub struct Batch<'a> {
    handle: &'a BrowserHandle,
    page: &'a Page,
    recorder: &'a SessionRecorder,
    /// Each command's method and its future, in push order.
    pending: Vec<(String, Pending<'a>)>,
}

impl std::fmt::Debug for Batch<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Batch")
            .field("commands", &self.pending.len())
            .finish()
    }
}

impl<'a> Batch<'a> {
    pub(crate) fn new(
        handle: &'a BrowserHandle,
        page: &'a Page,
        recorder: &'a SessionRecorder,
    ) -> Batch<'a> {
        Batch {
            handle,
            page,
            recorder,
            pending: Vec::new(),
        }
    }

    /// Adds a command; returns its index in the results.
    pub fn push<C>(&mut self, command: C) -> usize
    where
        C: Command + Send + 'a,
        C::Response: serde::Serialize + Send,
    {
        let (handle, page) = (self.handle, self.page);
        let method = command.identifier().to_string();
        let name = method.clone();
        self.pending.push((
            name,
            Box::pin(async move {
                let response = handle.call(&method, None, page.execute(command)).await?;
                serde_json::to_value(&response.result).map_err(|source| Error::Json {
                    what: format!("the reply to {method}"),
                    source,
                })
            }),
        ));
        self.pending.len() - 1
    }

    /// How many commands are queued.
    pub fn len(&self) -> usize {
        self.pending.len()
    }

    /// Whether no command is queued.
    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }

    /// Sends every command together and returns one result per command, in
    /// the order they were pushed.
    ///
    /// The batch costs one round trip on the wire when it is sent from a
    /// task (`tokio::spawn`): the CDP client writes it in one flush. Sent
    /// from the thread that
    /// blocks on the runtime, each command wakes the CDP handler on its own
    /// and the batch may reach the browser in a few pieces.
    pub async fn send(self) -> Vec<Result<Value>> {
        let n = self.pending.len();
        if n == 0 {
            return Vec::new();
        }
        let t = Instant::now();
        // Each command's send (its future's first poll) and reply times: from
        // them the batch's round-trip waits are counted, not assumed.
        let timed = self.pending.into_iter().map(|(_, fut)| async move {
            let sent = Instant::now();
            let result = fut.await;
            (sent, Instant::now(), result)
        });
        let done = futures::future::join_all(timed).await;
        let stamps: Vec<(Instant, Instant)> = done.iter().map(|(s, r, _)| (*s, *r)).collect();
        self.recorder
            .record_batch(n, round_trip_waits(&stamps), t.elapsed());
        done.into_iter().map(|(_, _, r)| r).collect()
    }

    /// Sends the commands one at a time, each after the previous reply, and
    /// returns one result per command in push order: for commands that
    /// depend on each other's effects. Costs one round trip per command.
    pub async fn send_sequential(self) -> Vec<Result<Value>> {
        let n = self.pending.len();
        let t = Instant::now();
        let mut stamps = Vec::with_capacity(n);
        let mut results = Vec::with_capacity(n);
        for (_, fut) in self.pending {
            let sent = Instant::now();
            results.push(fut.await);
            stamps.push((sent, Instant::now()));
        }
        if n > 0 {
            self.recorder
                .record_batch(n, round_trip_waits(&stamps), t.elapsed());
        }
        results
    }

    /// A broken batch, for the negative control of the faults scenario only:
    /// it sends every command together but returns at the first error,
    /// dropping the replies still due, as `try_join_all` would. Never use it
    /// for real work.
    #[cfg(feature = "controls")]
    pub(crate) async fn send_stopping_at_first_error_for_control(self) -> Vec<Result<Value>> {
        use futures::StreamExt;
        let mut replies: futures::stream::FuturesOrdered<_> =
            self.pending.into_iter().map(|(_, fut)| fut).collect();
        let mut results = Vec::new();
        while let Some(reply) = replies.next().await {
            let failed = reply.is_err();
            results.push(reply);
            if failed {
                break;
            }
        }
        results
    }

    /// A broken batch, for the negative control of result attribution only:
    /// it sends the first command of each method and hands that reply to
    /// every command of the same method, as a cache keyed by method name
    /// would. Never use it for real work.
    #[cfg(feature = "controls")]
    pub(crate) async fn send_coalescing_by_method_for_control(self) -> Vec<Result<Value>> {
        let mut first: Vec<(String, usize)> = Vec::new();
        let mut order = Vec::with_capacity(self.pending.len());
        let mut sent = Vec::new();
        for (method, fut) in self.pending {
            match first.iter().find(|(m, _)| *m == method) {
                Some(&(_, i)) => order.push(i),
                None => {
                    first.push((method, sent.len()));
                    order.push(sent.len());
                    sent.push(fut);
                }
            }
        }
        let replies = futures::future::join_all(sent).await;
        order
            .into_iter()
            .map(|i| match &replies[i] {
                Ok(v) => Ok(v.clone()),
                Err(e) => Err(Error::Cdp {
                    browser: self.handle.id,
                    endpoint: self.handle.endpoint.clone(),
                    action: "a coalesced command".into(),
                    message: e.to_string(),
                }),
            })
            .collect()
    }
}

/// Round trips the client waited through, from each command's (sent, replied)
/// times: the first command costs one wait, and every command sent after an
/// earlier command's reply had arrived costs another (it could only be sent
/// once that reply was in). Sequential commands count one wait each; a
/// pipelined batch counts one.
pub fn round_trip_waits(stamps: &[(Instant, Instant)]) -> u64 {
    let mut order: Vec<&(Instant, Instant)> = stamps.iter().collect();
    order.sort_by_key(|s| s.0);
    let mut waits = 0;
    let mut earliest_reply: Option<Instant> = None;
    for (i, (sent, replied)) in order.iter().enumerate() {
        if i == 0 || earliest_reply.is_some_and(|r| r <= *sent) {
            waits += 1;
        }
        earliest_reply = Some(earliest_reply.map_or(*replied, |r| r.min(*replied)));
    }
    waits
}

/// Deserialises one batch result into a typed response.
///
/// A command's own error comes back as it was, so a caller can still tell a
/// crashed or evicted browser from a command the page refused.
pub fn typed<T: DeserializeOwned>(result: Result<Value>) -> Result<T> {
    serde_json::from_value(result?).map_err(|source| Error::Json {
        what: "a batch result".into(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn sequential_commands_wait_once_each_and_a_pipelined_batch_once() {
        let t = Instant::now();
        let at = |ms: u64| t + Duration::from_millis(ms);
        let sequential = [(at(0), at(1)), (at(2), at(3)), (at(4), at(5))];
        assert_eq!(round_trip_waits(&sequential), 3);
        let pipelined = [(at(0), at(5)), (at(0), at(6)), (at(0), at(7))];
        assert_eq!(round_trip_waits(&pipelined), 1);
        let two_rounds = [
            (at(0), at(2)),
            (at(0), at(2)),
            (at(3), at(4)),
            (at(3), at(5)),
        ];
        assert_eq!(round_trip_waits(&two_rounds), 3);
    }
}
