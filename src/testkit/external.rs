//! A Chromium started outside any pool, as a remote CDP node would be.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::browser::{locate_chromium, Sandbox, DEFAULT_FLAGS};
use crate::error::{Error, Result};

/// A headless Chromium with `--remote-debugging-port=0`, its `ws://` URL read
/// from the `DevToolsActivePort` file it writes: what a pool in connect mode
/// talks to in the tests. It is not tagged as the pool's, so a pool that
/// killed it would be caught.
///
/// # Example
///
/// ```no_run
/// # async fn f() -> tidepool::Result<()> {
/// use tidepool::browser::{BrowserPoolConfig, BrowserSource};
/// use tidepool::testkit::ExternalChromium;
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
    dir: PathBuf,
}

impl ExternalChromium {
    /// Starts it and waits (up to 20 s) for its DevTools endpoint.
    pub async fn start() -> Result<ExternalChromium> {
        static N: AtomicU64 = AtomicU64::new(1);
        let executable = locate_chromium(None)?;
        let dir = std::env::temp_dir().join(format!(
            "tidepool-external-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let failed = |message: String| Error::Launch {
            executable: executable.clone(),
            message,
        };
        std::fs::create_dir_all(&dir).map_err(|e| failed(format!("{}: {e}", dir.display())))?;
        let mut cmd = tokio::process::Command::new(&executable);
        cmd.args(DEFAULT_FLAGS)
            .args(["--headless=new", "--remote-debugging-port=0"]);
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
            dir,
        };
        let port_file = chromium.dir.join("DevToolsActivePort");
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(text) = std::fs::read_to_string(&port_file) {
                let mut lines = text.lines();
                if let (Some(port), Some(path)) = (lines.next(), lines.next()) {
                    chromium.ws_url = format!("ws://127.0.0.1:{port}{path}");
                    return Ok(chromium);
                }
            }
            if Instant::now() >= deadline {
                chromium.stop().await;
                return Err(failed("wrote no DevToolsActivePort within 20 s".into()));
            }
            // Polling a file Chromium writes: it signals nothing else.
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Its process id.
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// Kills it, reaps it and removes its profile.
    pub async fn stop(mut self) {
        let _ = self.child.kill().await;
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
