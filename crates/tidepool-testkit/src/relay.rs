//! A recording CDP relay: a WebSocket relay between a CDP client and
//! Chromium that timestamps every frame in both directions, so pipelining is
//! judged on the wire, not from when our futures were polled.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use async_tungstenite::tungstenite::Message;
use futures::StreamExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;

use tidepool_pools::{Error, Result};

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
/// Point a client (a [`BrowserPool`](tidepool_pools::browser::BrowserPool) in connect
/// mode) at [`ws_url`](CdpRelay::ws_url); every frame it exchanges with the
/// browser is forwarded unchanged and recorded.
///
/// The relay runs on a thread and runtime of its own: sharing the client's
/// runtime, it read the client's frames late whenever the client's tasks held
/// both workers, and a batch written at once looked sent after its first reply.
#[derive(Debug)]
pub struct CdpRelay {
    addr: SocketAddr,
    path: String,
    frames: Arc<Mutex<Vec<WireFrame>>>,
    /// Dropping it stops the relay's runtime, and every connection with it.
    _stop: oneshot::Sender<()>,
}

impl CdpRelay {
    /// Starts relaying to `upstream`, a `ws://host:port/devtools/browser/<id>` URL.
    pub async fn start(upstream: &str) -> Result<CdpRelay> {
        let bad = |message: &str| Error::config("relay upstream", format!("{upstream}: {message}"));
        let rest = upstream
            .strip_prefix("ws://")
            .ok_or_else(|| bad("only ws:// endpoints can be relayed"))?;
        let (host, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        let failed = |e| Error::io("binding the CDP relay", "127.0.0.1:0", e);
        let listener = std::net::TcpListener::bind("127.0.0.1:0").map_err(failed)?;
        listener.set_nonblocking(true).map_err(failed)?;
        let addr = listener.local_addr().map_err(failed)?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| Error::io("starting the CDP relay's runtime", "relay", e))?;
        let frames = Arc::new(Mutex::new(Vec::new()));
        let (host, upstream, log) = (host.to_owned(), upstream.to_owned(), frames.clone());
        let (stop, stopped) = oneshot::channel::<()>();
        std::thread::Builder::new()
            .name("tidepool-cdp-relay".into())
            .spawn(move || {
                runtime.block_on(async move {
                    let Ok(listener) = TcpListener::from_std(listener) else {
                        return;
                    };
                    let accept = async move {
                        while let Ok((client, _)) = listener.accept().await {
                            let (host, upstream, log) =
                                (host.clone(), upstream.clone(), log.clone());
                            tokio::spawn(async move {
                                if let Err(e) = relay(client, &host, &upstream, log).await {
                                    tracing::debug!(error = %e, "CDP relay connection ended");
                                }
                            });
                        }
                    };
                    tokio::select! {
                        () = accept => {}
                        _ = stopped => {}
                    }
                });
            })
            .map_err(|e| Error::io("starting the CDP relay's thread", "relay", e))?;
        Ok(CdpRelay {
            addr,
            path: path.to_owned(),
            frames,
            _stop: stop,
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

async fn relay(
    client: TcpStream,
    host: &str,
    upstream: &str,
    log: Arc<Mutex<Vec<WireFrame>>>,
) -> std::result::Result<(), String> {
    // Forwarded as soon as read: Nagle's algorithm would hold a frame back
    // until the previous one is acknowledged.
    client
        .set_nodelay(true)
        .map_err(|e| format!("client socket: {e}"))?;
    let client = async_tungstenite::tokio::accept_async(client)
        .await
        .map_err(|e| format!("client handshake: {e}"))?;
    let browser = TcpStream::connect(host)
        .await
        .map_err(|e| format!("connecting to {host}: {e}"))?;
    browser
        .set_nodelay(true)
        .map_err(|e| format!("browser socket: {e}"))?;
    let (browser, _) = async_tungstenite::tokio::client_async(upstream, browser)
        .await
        .map_err(|e| format!("browser handshake: {e}"))?;
    let (mut to_client, mut from_client) = client.split();
    let (mut to_browser, mut from_browser) = browser.split();
    // Reading and forwarding are separate futures of one task: a reader
    // timestamps every frame already in its socket before the writer runs,
    // so forwarding one frame (a write that wakes the browser) never delays
    // when the next one is seen.
    let (up_tx, mut up_rx) = tokio::sync::mpsc::unbounded_channel::<Message>();
    let (down_tx, mut down_rx) = tokio::sync::mpsc::unbounded_channel::<Message>();
    let read_up = {
        let log = log.clone();
        async move {
            while let Some(Ok(message)) = from_client.next().await {
                record(&log, &message, true);
                if up_tx.send(message).is_err() {
                    break;
                }
            }
        }
    };
    let write_up = async move {
        while let Some(message) = up_rx.recv().await {
            if to_browser.send(message).await.is_err() {
                break;
            }
        }
        let _ = to_browser.close(None).await;
    };
    let read_down = async move {
        while let Some(Ok(message)) = from_browser.next().await {
            record(&log, &message, false);
            if down_tx.send(message).is_err() {
                break;
            }
        }
    };
    let write_down = async move {
        while let Some(message) = down_rx.recv().await {
            if to_client.send(message).await.is_err() {
                break;
            }
        }
        let _ = to_client.close(None).await;
    };
    // Either side closing ends the connection: its reader ends, its channel
    // closes, and its writer closes the other side.
    tokio::join!(read_up, write_up, read_down, write_down);
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

/// Round trips waited on the wire by the commands `select` picks among the
/// client's frames, and how many of them got their reply: a command costs a
/// wait when it left the client after the reply to an earlier picked command
/// had arrived (the first costs one). Commands sent one after another's reply
/// wait once each; a pipelined batch waits once in all.
pub fn wire_round_trip_waits(
    frames: &[WireFrame],
    select: impl Fn(&WireFrame) -> bool,
) -> (u64, u64) {
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
    (
        tidepool_pools::cdp::round_trip_waits(&stamps),
        stamps.len() as u64,
    )
}

/// [`wire_round_trip_waits`] per command: sequential sending reads 1.0, a
/// pipelined batch of `n` reads `1/n`. `None` when no picked command got its
/// reply.
pub fn wire_waits_per_command(
    frames: &[WireFrame],
    select: impl Fn(&WireFrame) -> bool,
) -> Option<f64> {
    match wire_round_trip_waits(frames, select) {
        (_, 0) => None,
        (waits, commands) => Some(waits as f64 / commands as f64),
    }
}

/// Commands the client put on the wire, and their bytes.
pub fn commands_sent(frames: &[WireFrame]) -> (u64, u64) {
    frames
        .iter()
        .filter(|f| f.to_browser)
        .fold((0, 0), |(n, bytes), f| (n + 1, bytes + f.bytes as u64))
}
