//! A recording CDP relay: a WebSocket relay between a CDP client and
//! Chromium that timestamps every frame in both directions, so pipelining is
//! judged on the wire, not from when our futures were polled.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use async_tungstenite::tungstenite::Message;
use futures::StreamExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

use crate::error::{Error, Result};

/// One text frame that crossed the relay.
#[derive(Debug, Clone, PartialEq)]
pub struct WireFrame {
    /// When the relay read it.
    pub at: Instant,
    /// From the client to the browser (a command), or back (a reply or event).
    pub to_browser: bool,
    /// The message's `id`: a command's, or the reply to it.
    pub id: Option<u64>,
    /// The command's or event's `method` (replies have none).
    pub method: Option<String>,
    /// The flat-mode `sessionId` it belongs to, if any.
    pub session: Option<String>,
    /// Its size, bytes.
    pub bytes: usize,
}

/// A WebSocket relay on 127.0.0.1 in front of one browser endpoint.
///
/// Point a client (a [`BrowserPool`](crate::browser::BrowserPool) in connect
/// mode) at [`ws_url`](CdpRelay::ws_url); every frame it exchanges with the
/// browser is forwarded unchanged and recorded.
#[derive(Debug)]
pub struct CdpRelay {
    addr: SocketAddr,
    path: String,
    frames: Arc<Mutex<Vec<WireFrame>>>,
    task: JoinHandle<()>,
}

impl CdpRelay {
    /// Starts relaying to `upstream`, a `ws://host:port/devtools/browser/<id>` URL.
    pub async fn start(upstream: &str) -> Result<CdpRelay> {
        let bad = |message: &str| Error::config("relay upstream", format!("{upstream}: {message}"));
        let rest = upstream
            .strip_prefix("ws://")
            .ok_or_else(|| bad("only ws:// endpoints can be relayed"))?;
        let (host, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|e| Error::io("binding the CDP relay", "127.0.0.1:0", e))?;
        let addr = listener
            .local_addr()
            .map_err(|e| Error::io("binding the CDP relay", "127.0.0.1:0", e))?;
        let frames = Arc::new(Mutex::new(Vec::new()));
        let (host, upstream, log) = (host.to_owned(), upstream.to_owned(), frames.clone());
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let (host, upstream, log) = (host.clone(), upstream.clone(), log.clone());
                tokio::spawn(async move {
                    if let Err(e) = relay(client, &host, &upstream, log).await {
                        tracing::debug!(error = %e, "CDP relay connection ended");
                    }
                });
            }
        });
        Ok(CdpRelay {
            addr,
            path: path.to_owned(),
            frames,
            task,
        })
    }

    /// The URL a client connects to instead of the browser's.
    pub fn ws_url(&self) -> String {
        format!("ws://{}{}", self.addr, self.path)
    }

    /// Every frame recorded so far, in the order the relay read them.
    pub fn frames(&self) -> Vec<WireFrame> {
        self.frames.lock().map(|f| f.clone()).unwrap_or_default()
    }

    /// Forgets the frames recorded so far.
    pub fn clear(&self) {
        if let Ok(mut f) = self.frames.lock() {
            f.clear();
        }
    }
}

impl Drop for CdpRelay {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn relay(
    client: TcpStream,
    host: &str,
    upstream: &str,
    log: Arc<Mutex<Vec<WireFrame>>>,
) -> std::result::Result<(), String> {
    let client = async_tungstenite::tokio::accept_async(client)
        .await
        .map_err(|e| format!("client handshake: {e}"))?;
    let browser = TcpStream::connect(host)
        .await
        .map_err(|e| format!("connecting to {host}: {e}"))?;
    let (browser, _) = async_tungstenite::tokio::client_async(upstream, browser)
        .await
        .map_err(|e| format!("browser handshake: {e}"))?;
    let (mut to_client, mut from_client) = client.split();
    let (mut to_browser, mut from_browser) = browser.split();
    let up = {
        let log = log.clone();
        async move {
            while let Some(Ok(message)) = from_client.next().await {
                record(&log, &message, true);
                if to_browser.send(message).await.is_err() {
                    break;
                }
            }
            let _ = to_browser.close(None).await;
        }
    };
    let down = async move {
        while let Some(Ok(message)) = from_browser.next().await {
            record(&log, &message, false);
            if to_client.send(message).await.is_err() {
                break;
            }
        }
        let _ = to_client.close(None).await;
    };
    // Either side closing ends the connection.
    tokio::select! {
        () = up => {}
        () = down => {}
    }
    Ok(())
}

fn record(log: &Mutex<Vec<WireFrame>>, message: &Message, to_browser: bool) {
    let at = Instant::now();
    let Message::Text(text) = message else {
        return;
    };
    let value: serde_json::Value = serde_json::from_str(text.as_str()).unwrap_or_default();
    let frame = WireFrame {
        at,
        to_browser,
        id: value["id"].as_u64(),
        method: value["method"].as_str().map(str::to_owned),
        session: value["sessionId"].as_str().map(str::to_owned),
        bytes: text.len(),
    };
    if let Ok(mut f) = log.lock() {
        f.push(frame);
    }
}

/// Round trips waited per command on the wire, for the commands `select`
/// picks among the client's frames: a command costs a wait when it left the
/// client after the reply to an earlier picked command had arrived (the first
/// costs one). Commands sent one after another's reply read 1.0; a pipelined
/// batch of `n` reads `1/n`. `None` when no picked command got its reply.
pub fn wire_waits_per_command(
    frames: &[WireFrame],
    select: impl Fn(&WireFrame) -> bool,
) -> Option<f64> {
    let stamps: Vec<(Instant, Instant)> = frames
        .iter()
        .filter(|f| f.to_browser && f.id.is_some() && select(f))
        .filter_map(|command| {
            frames
                .iter()
                .find(|r| {
                    !r.to_browser
                        && r.method.is_none()
                        && r.id == command.id
                        && r.session == command.session
                })
                .map(|reply| (command.at, reply.at))
        })
        .collect();
    if stamps.is_empty() {
        return None;
    }
    Some(crate::cdp::round_trip_waits(&stamps) as f64 / stamps.len() as f64)
}
