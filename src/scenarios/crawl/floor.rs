//! The floor: the least a CDP client can do to crawl. One browser, launched
//! as the pool launches its own, a few pages opened up front and reused,
//! and per page only `Page.navigate`, the wait for its load event, and one
//! `Runtime.evaluate`. No isolation between pages, no domains enabled but
//! `Page` (for the load event), no event parsed beyond its name, and no
//! painting: each page lives in a minimized window of its own. Whatever
//! tidepool spends above this is its own cost.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_tungstenite::tungstenite::Message;
use futures::StreamExt;
use serde_json::{json, Value};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::browser::{own_tag_prefix, Sandbox, DEFAULT_FLAGS};
use crate::error::Result;
use tidepool_pools::controls::RawProcess as LocalProcess;
use tidepool_pools::Error as PoolError;

/// How long a floor page may take to load.
const LOAD_TIMEOUT: Duration = Duration::from_secs(30);

type Replies = Arc<Mutex<HashMap<u64, oneshot::Sender<std::result::Result<Value, String>>>>>;
type Loads = Arc<Mutex<HashMap<String, mpsc::UnboundedSender<()>>>>;

/// A raw CDP connection: commands out, replies matched by id, and the load
/// events of each page session.
struct Connection {
    endpoint: String,
    out: mpsc::UnboundedSender<Message>,
    replies: Replies,
    loads: Loads,
    next_id: AtomicU64,
    tasks: [JoinHandle<()>; 2],
}

impl Connection {
    async fn open(endpoint: &str) -> Result<Connection> {
        let fail = |message: String| PoolError::Cdp {
            browser: 0,
            endpoint: endpoint.to_owned(),
            action: "connecting the floor client".into(),
            message,
        };
        let host = endpoint
            .strip_prefix("ws://")
            .and_then(|rest| rest.split('/').next())
            .ok_or_else(|| fail("not a ws:// URL".into()))?;
        let socket = tokio::net::TcpStream::connect(host)
            .await
            .map_err(|e| fail(e.to_string()))?;
        // As chromiumoxide's patched socket: a command leaves at once.
        socket.set_nodelay(true).map_err(|e| fail(e.to_string()))?;
        let (ws, _) = async_tungstenite::tokio::client_async(endpoint, socket)
            .await
            .map_err(|e| fail(e.to_string()))?;
        let (mut sink, mut stream) = ws.split();
        let (out, mut queue) = mpsc::unbounded_channel::<Message>();
        let writer = tokio::spawn(async move {
            while let Some(message) = queue.recv().await {
                if sink.send(message).await.is_err() {
                    break;
                }
            }
        });
        let (replies, loads) = (Replies::default(), Loads::default());
        let reader = {
            let (replies, loads) = (replies.clone(), loads.clone());
            tokio::spawn(async move {
                while let Some(Ok(message)) = stream.next().await {
                    let Message::Text(text) = message else {
                        continue;
                    };
                    let Ok(value) = serde_json::from_str::<Value>(text.as_str()) else {
                        continue;
                    };
                    dispatch(value, &replies, &loads);
                }
                // The connection is gone: every waiting command learns it.
                lock(&replies).clear();
                lock(&loads).clear();
            })
        };
        Ok(Connection {
            endpoint: endpoint.to_owned(),
            out,
            replies,
            loads,
            next_id: AtomicU64::new(1),
            tasks: [writer, reader],
        })
    }

    /// Sends one command (on a page session if `session` is given) and
    /// awaits its result.
    async fn call(&self, session: Option<&str>, method: &str, params: Value) -> Result<Value> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let mut command = json!({ "id": id, "method": method, "params": params });
        if let Some(session) = session {
            command["sessionId"] = json!(session);
        }
        let (tx, rx) = oneshot::channel();
        lock(&self.replies).insert(id, tx);
        let fail = |message: String| PoolError::Cdp {
            browser: 0,
            endpoint: self.endpoint.clone(),
            action: format!("floor {method}"),
            message,
        };
        self.out
            .send(Message::Text(command.to_string().into()))
            .map_err(|_| fail("connection closed".into()))?;
        match tokio::time::timeout(LOAD_TIMEOUT, rx).await {
            Ok(Ok(Ok(result))) => Ok(result),
            Ok(Ok(Err(message))) => Err(fail(message).into()),
            Ok(Err(_)) => Err(fail("connection closed".into()).into()),
            Err(_) => {
                lock(&self.replies).remove(&id);
                Err(PoolError::Timeout {
                    key: format!("floor {method}"),
                    after: LOAD_TIMEOUT,
                }
                .into())
            }
        }
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Routes one message: a reply to its command, a load event to its page.
fn dispatch(value: Value, replies: &Replies, loads: &Loads) {
    if let Some(id) = value.get("id").and_then(Value::as_u64) {
        if let Some(tx) = lock(replies).remove(&id) {
            let reply = match value.get("error") {
                Some(error) => Err(error.to_string()),
                None => Ok(value.get("result").cloned().unwrap_or(Value::Null)),
            };
            let _ = tx.send(reply);
        }
    } else if value.get("method").and_then(Value::as_str) == Some("Page.loadEventFired") {
        if let Some(session) = value.get("sessionId").and_then(Value::as_str) {
            if let Some(tx) = lock(loads).get(session) {
                let _ = tx.send(());
            }
        }
    }
}

/// Launches one browser as the pool launches its own: its flags, its
/// sandbox choice, a tag of the floor's. Returns it with its endpoint.
pub(super) async fn launch_browser(
    executable: &std::path::Path,
    tag: u64,
) -> Result<(LocalProcess, String)> {
    let flags: Vec<String> = DEFAULT_FLAGS.iter().map(|f| f.to_string()).collect();
    let tag = format!("{}floor-{tag}", own_tag_prefix());
    let launched = LocalProcess::launch(
        executable,
        &flags,
        Sandbox::Auto,
        &tag,
        Duration::from_secs(20),
    )
    .await?;
    Ok(launched)
}

/// One page of the floor: its session and its load events.
pub(super) struct FloorPage {
    session: String,
    loaded: mpsc::UnboundedReceiver<()>,
}

/// The floor's browser and its connection.
pub(super) struct Floor {
    process: LocalProcess,
    connection: Connection,
}

impl Floor {
    /// Launches one browser with the pool's flags and sandbox choice, and
    /// connects to it.
    pub(super) async fn launch(executable: &std::path::Path, tag: u64) -> Result<Floor> {
        let (process, endpoint) = launch_browser(executable, tag).await?;
        Floor::connect(process, &endpoint).await
    }

    /// Connects to `process`'s browser at `endpoint` (its own, or a relay's
    /// in front of it); closing the floor ends the process.
    pub(super) async fn connect(process: LocalProcess, endpoint: &str) -> Result<Floor> {
        let connection = match Connection::open(endpoint).await {
            Ok(c) => c,
            Err(e) => {
                let mut process = process;
                process.terminate(Duration::from_secs(2)).await;
                return Err(e);
            }
        };
        Ok(Floor {
            process,
            connection,
        })
    }

    /// The browser's pid.
    pub(super) fn pid(&self) -> u32 {
        self.process.pid()
    }

    /// Opens a blank page in a minimized window, attaches to it, and
    /// enables its `Page` domain.
    pub(super) async fn open_page(&self) -> Result<FloorPage> {
        self.open_page_in(None).await
    }

    /// [`open_page`](Self::open_page) in `context`, or the default one.
    async fn open_page_in(&self, context: Option<&Value>) -> Result<FloorPage> {
        let c = &self.connection;
        // A window of its own, minimized: no page is painted. Tabs of one
        // window would leave one of them painted, the one in front.
        let mut params =
            json!({ "url": "about:blank", "newWindow": true, "windowState": "minimized" });
        if let Some(context) = context {
            params["browserContextId"] = context.clone();
        }
        let target = c.call(None, "Target.createTarget", params).await?;
        let target_id = target["targetId"].clone();
        let attached = c
            .call(
                None,
                "Target.attachToTarget",
                json!({ "targetId": target_id, "flatten": true }),
            )
            .await?;
        let session = attached["sessionId"]
            .as_str()
            .ok_or_else(|| PoolError::Cdp {
                browser: 0,
                endpoint: c.endpoint.clone(),
                action: "floor Target.attachToTarget".into(),
                message: format!("no sessionId in {attached}"),
            })?
            .to_owned();
        let (tx, loaded) = mpsc::unbounded_channel();
        lock(&c.loads).insert(session.clone(), tx);
        c.call(Some(&session), "Page.enable", json!({})).await?;
        Ok(FloorPage { session, loaded })
    }

    /// The floor of `Isolation::Context`: a fresh incognito context per
    /// page, its page opened, attached and `Page` enabled, the visit, and
    /// the context disposed (its page with it).
    pub(super) async fn visit_in_fresh_context(
        &self,
        url: &str,
        expression: &str,
    ) -> Result<String> {
        let c = &self.connection;
        let created = c
            .call(None, "Target.createBrowserContext", json!({}))
            .await?;
        let context = created["browserContextId"].clone();
        let result = async {
            let mut page = self.open_page_in(Some(&context)).await?;
            let seen = self.visit(&mut page, url, expression).await;
            lock(&c.loads).remove(&page.session);
            seen
        }
        .await;
        c.call(
            None,
            "Target.disposeBrowserContext",
            json!({ "browserContextId": context }),
        )
        .await?;
        result
    }

    /// Navigates `page` to `url`, waits for its load, and returns
    /// `expression`'s string value.
    pub(super) async fn visit(
        &self,
        page: &mut FloorPage,
        url: &str,
        expression: &str,
    ) -> Result<String> {
        let c = &self.connection;
        // A load event of an earlier navigation is not this one's.
        while page.loaded.try_recv().is_ok() {}
        let nav = c
            .call(Some(&page.session), "Page.navigate", json!({ "url": url }))
            .await?;
        if let Some(error) = nav.get("errorText").and_then(Value::as_str) {
            return Err(PoolError::Task {
                what: format!("floor navigation to {url}"),
                message: error.to_owned(),
            }
            .into());
        }
        match tokio::time::timeout(LOAD_TIMEOUT, page.loaded.recv()).await {
            Ok(Some(())) => {}
            Ok(None) => {
                return Err(PoolError::Task {
                    what: format!("floor navigation to {url}"),
                    message: "the connection closed before the load".into(),
                }
                .into())
            }
            Err(_) => {
                return Err(PoolError::Timeout {
                    key: format!("floor load of {url}"),
                    after: LOAD_TIMEOUT,
                }
                .into())
            }
        }
        let result = c
            .call(
                Some(&page.session),
                "Runtime.evaluate",
                json!({ "expression": expression, "returnByValue": true }),
            )
            .await?;
        match result["result"]["value"].as_str() {
            Some(s) => Ok(s.to_owned()),
            None => Err(PoolError::Task {
                what: format!("floor evaluation of {expression} on {url}"),
                message: format!("expected a string, got {}", result["result"]),
            }
            .into()),
        }
    }

    /// Closes the browser: `Browser.close`, then kill, reap and remove its
    /// profile, as the pool does.
    pub(super) async fn close(mut self) {
        let grace = Duration::from_secs(2);
        let _ = tokio::time::timeout(
            grace,
            self.connection.call(None, "Browser.close", json!({})),
        )
        .await;
        self.process.terminate(grace).await;
    }
}
