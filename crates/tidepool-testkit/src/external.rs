//! A Chromium started outside any pool, as a remote CDP node would be.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use tidepool_pools::browser::{locate_chromium, resolve_endpoint, Sandbox, DEFAULT_FLAGS};
use tidepool_pools::{Error, Result};

/// A headless Chromium with remote debugging on (on a free port, or one of
/// the caller's), its `ws://` URL read from the `DevToolsActivePort` file it
/// writes: what a pool in connect mode talks to in the tests, and a member
/// of the fleet scenario's fleet. It is not tagged as the pool's, so a pool
/// that killed it would be caught.
///
/// # Example
///
/// ```no_run
/// # async fn f() -> tidepool_pools::Result<()> {
/// use tidepool_pools::browser::{BrowserPoolConfig, BrowserSource};
/// use tidepool_testkit::ExternalChromium;
///
/// let chromium = ExternalChromium::start().await?;
/// let config = BrowserPoolConfig {
///     source: BrowserSource::Connect { endpoints: vec![chromium.ws_url.clone()] },
///     ..BrowserPoolConfig::default()
/// };
/// # drop(config);
/// chromium.stop().await;
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct ExternalChromium {
    child: tokio::process::Child,
    /// The browser's DevTools websocket.
    pub ws_url: String,
    /// The port of its DevTools HTTP and WebSocket server.
    pub port: u16,
    dir: PathBuf,
}

impl ExternalChromium {
    /// Starts it and waits (up to 20 s) for its DevTools endpoint.
    pub async fn start() -> Result<ExternalChromium> {
        ExternalChromium::start_on(0).await
    }

    /// [`start`](Self::start) on `port` (0: any free one), as a browser in a
    /// container keeps its port across restarts.
    pub async fn start_on(port: u16) -> Result<ExternalChromium> {
        let executable = locate_chromium(None)?;
        let failed = |message: String| Error::Launch {
            executable: executable.clone(),
            message,
        };
        // A fresh directory every time: one left by an earlier run under a
        // recycled pid held a stale DevToolsActivePort, and the browser was
        // looked for on a port nobody listened on any more.
        let dir = tempfile::Builder::new()
            .prefix(&format!("tidepool-external-{}-", std::process::id()))
            .tempdir()
            .map(tempfile::TempDir::keep)
            .map_err(|e| failed(format!("creating its profile directory: {e}")))?;
        let mut cmd = tokio::process::Command::new(&executable);
        cmd.args(DEFAULT_FLAGS)
            .arg("--headless=new")
            .arg(format!("--remote-debugging-port={port}"));
        if !Sandbox::Auto.resolve()?.on {
            cmd.arg("--no-sandbox");
        }
        let child = cmd
            .arg(format!("--user-data-dir={}", dir.display()))
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| failed(e.to_string()))?;
        let mut chromium = ExternalChromium {
            child,
            ws_url: String::new(),
            port,
            dir,
        };
        let port_file = chromium.dir.join("DevToolsActivePort");
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            // On a port of the caller's, Chromium writes no port file: it
            // is ready when its /json/version answers.
            if port != 0 {
                let http = chromium.http_url();
                if let Ok(ws) = resolve_endpoint(&http, Duration::from_secs(1)).await {
                    chromium.ws_url = ws;
                    return Ok(chromium);
                }
            }
            if let Ok(text) = std::fs::read_to_string(&port_file) {
                let mut lines = text.lines();
                if let (Some(port), Some(path)) = (lines.next(), lines.next()) {
                    chromium.ws_url = format!("ws://127.0.0.1:{port}{path}");
                    chromium.port = port.trim().parse().unwrap_or(0);
                    return Ok(chromium);
                }
            }
            if Instant::now() >= deadline {
                chromium.stop().await;
                return Err(failed(format!(
                    "was not ready within 20 s (port {port}: no DevToolsActivePort, or no answer from /json/version)"
                )));
            }
            // Polling a file Chromium writes: it signals nothing else.
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Its `http://` address, resolved through `/json/version`.
    pub fn http_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Its process id.
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// Kills it (SIGKILL, as a crashed host would lose it), reaps it and
    /// removes its profile.
    pub async fn stop(mut self) {
        let _ = self.child.kill().await;
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Drop for ExternalChromium {
    /// A browser dropped without [`stop`](Self::stop) (a failed test) is
    /// killed by `kill_on_drop`; its profile goes too, best effort.
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A TCP port on 127.0.0.1 free at the time of the call.
pub fn free_port() -> Result<u16> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| Error::io("binding a free port", "127.0.0.1:0", e))
}
