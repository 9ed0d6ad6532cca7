//! One local Chromium process: launch, watch, kill, reap, clean up.
//!
//! The pool launches Chromium itself rather than through chromiumoxide's
//! launcher, then connects over CDP like any remote browser. Owning the process
//! lets it pass exactly the caller's flags, keep draining stderr (an undrained
//! pipe eventually blocks the browser), learn of a crash the moment the process
//! exits (chromiumoxide's handler never ends on a closed socket), and tag every
//! process of the launch with an environment variable. The tag matters because
//! Chromium's crashpad handlers re-parent to PID 1: walking the browser's process
//! tree misses them, and only the tag finds them to kill at retirement.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::sync::{oneshot, watch};

use super::leftovers::{kill_tagged, remove_profile, PROFILE_PREFIX, TAG_ENV};
use super::sandbox::Sandbox;
use crate::error::{Error, Result};

/// Lines of stderr kept for error messages.
const STDERR_TAIL: usize = 20;

/// A launched Chromium: its pid, profile, and the task that reaps it.
#[derive(Debug)]
pub(crate) struct LocalProcess {
    pub(crate) pid: u32,
    pub(crate) profile_dir: PathBuf,
    tag: String,
    kill: Option<oneshot::Sender<()>>,
    exited: watch::Receiver<Option<String>>,
    terminated: bool,
}

impl LocalProcess {
    /// Starts `executable` with `flags` plus the pool's own, and waits up to
    /// `timeout` for its DevTools URL. Returns the process and the `ws://` URL.
    pub(crate) async fn launch(
        executable: &Path,
        flags: &[String],
        sandbox: Sandbox,
        tag: &str,
        timeout: Duration,
    ) -> Result<(LocalProcess, String)> {
        let profile_dir = fresh_profile_dir(tag)?;
        let mut cmd = tokio::process::Command::new(executable);
        cmd.args(flags);
        if !flags.iter().any(|f| f.starts_with("--headless")) {
            cmd.arg("--headless=new");
        }
        let choice = sandbox.resolve()?;
        static NOTED: std::sync::Once = std::sync::Once::new();
        NOTED.call_once(|| {
            tracing::info!(
                on = choice.on,
                by = choice.by,
                "Chromium's sandbox (set TIDEPOOL_SANDBOX=on|off|auto to choose)"
            );
        });
        if !choice.on && !flags.iter().any(|f| f == "--no-sandbox") {
            cmd.arg("--no-sandbox");
        }
        cmd.arg(format!("--user-data-dir={}", profile_dir.display()))
            .arg("--remote-debugging-port=0")
            .arg("about:blank")
            .env(TAG_ENV, tag)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            // The safety net for a pool dropped without close(): the reaper
            // task's child is killed when the runtime drops the task.
            .kill_on_drop(true);
        let launch_err = |message: String| Error::Launch {
            executable: executable.to_owned(),
            message,
        };
        let mut child = match super::leftovers::spawn(cmd) {
            Ok(child) => child,
            Err(e) => {
                let _ = std::fs::remove_dir_all(&profile_dir);
                return Err(launch_err(format!("could not start: {e}")));
            }
        };
        let pid = child.id().unwrap_or(0);

        let tail = Arc::new(Mutex::new(VecDeque::with_capacity(STDERR_TAIL)));
        let (url_tx, url_rx) = oneshot::channel::<String>();
        if let Some(stderr) = child.stderr.take() {
            let tail = tail.clone();
            tokio::spawn(async move {
                let mut url_tx = Some(url_tx);
                let mut lines = BufReader::new(stderr).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    if let Some(url) = line.strip_prefix("DevTools listening on ") {
                        if let Some(tx) = url_tx.take() {
                            let _ = tx.send(url.trim().to_owned());
                        }
                    }
                    tracing::trace!(target: "tidepool_pools::chromium", pid, "{line}");
                    if let Ok(mut t) = tail.lock() {
                        if t.len() == STDERR_TAIL {
                            t.pop_front();
                        }
                        t.push_back(line);
                    }
                }
            });
        }

        let (kill_tx, kill_rx) = oneshot::channel::<()>();
        let (exit_tx, exited) = watch::channel(None);
        tokio::spawn(async move {
            let status = tokio::select! {
                status = child.wait() => Some(status),
                _ = kill_rx => None,
            };
            let status = match status {
                Some(status) => status,
                None => {
                    let _ = child.start_kill();
                    child.wait().await
                }
            };
            super::leftovers::reaped(pid);
            let text = match status {
                Ok(s) => s.to_string(),
                Err(e) => format!("could not be waited for: {e}"),
            };
            let _ = exit_tx.send(Some(text));
        });

        let mut process = LocalProcess {
            pid,
            profile_dir,
            tag: tag.to_owned(),
            kill: Some(kill_tx),
            exited,
            terminated: false,
        };
        let stderr_tail = || {
            tail.lock()
                .map(|t| t.iter().cloned().collect::<Vec<_>>().join("\n    "))
                .unwrap_or_default()
        };
        let mut exited = process.exited.clone();
        let outcome = tokio::time::timeout(timeout, async {
            tokio::select! {
                url = url_rx => url.ok(),
                _ = exited.wait_for(Option::is_some) => None,
            }
        })
        .await;
        match outcome {
            Ok(Some(url)) => Ok((process, url)),
            Ok(None) => {
                let status = process
                    .exit_status()
                    .unwrap_or_else(|| "closed stderr".into());
                process.terminate(Duration::ZERO).await;
                Err(launch_err(format!(
                    "exited before it was ready ({status}); last stderr lines:\n    {}",
                    stderr_tail()
                )))
            }
            Err(_) => {
                process.terminate(Duration::ZERO).await;
                Err(launch_err(format!(
                    "printed no DevTools URL within {timeout:?}; last stderr lines:\n    {}",
                    stderr_tail()
                )))
            }
        }
    }

    /// How the process ended, if it has.
    pub(crate) fn exit_status(&self) -> Option<String> {
        self.exited.borrow().clone()
    }

    /// A receiver that changes to `Some(status)` when the process exits.
    pub(crate) fn exit_watch(&self) -> watch::Receiver<Option<String>> {
        self.exited.clone()
    }

    /// Waits up to `grace` for the process to exit by itself (after a
    /// `Browser.close`), kills it if it has not, reaps it, kills any process
    /// still carrying its tag (crashpad handlers), and removes its profile.
    pub(crate) async fn terminate(&mut self, grace: Duration) {
        let mut exited = self.exited.clone();
        let on_its_own = tokio::time::timeout(grace, exited.wait_for(Option::is_some))
            .await
            .is_ok();
        if !on_its_own {
            if let Some(kill) = self.kill.take() {
                let _ = kill.send(());
            }
            // SIGKILL cannot be refused; the wait only covers the reap.
            let _ = tokio::time::timeout(Duration::from_secs(10), exited.wait_for(Option::is_some))
                .await;
        }
        self.kill.take();
        let tag = self.tag.clone();
        let dir = self.profile_dir.clone();
        let _ = tokio::task::spawn_blocking(move || {
            kill_tagged(&tag);
            remove_profile(&dir);
        })
        .await;
        self.terminated = true;
    }
}

impl LocalProcess {
    /// A broken shutdown, for the negative control of the leftover check
    /// only: the handle is dropped without `Browser.close`, a kill or a reap
    /// (the zombie bug of chromiumoxide #50), so the browser lives on.
    /// Returns what it left, for [`clean_up_after_control`].
    #[cfg(feature = "controls")]
    pub(crate) fn abandon_for_control(mut self) -> (String, PathBuf) {
        // A dropped sender would tell the reaper to kill: it is leaked instead.
        std::mem::forget(self.kill.take());
        self.terminated = true;
        (self.tag.clone(), self.profile_dir.clone())
    }
}

/// Kills what [`LocalProcess::abandon_for_control`] left and removes
/// its profile.
#[cfg(feature = "controls")]
pub(crate) async fn clean_up_after_control(tag: String, dir: PathBuf) {
    let _ = tokio::task::spawn_blocking(move || {
        kill_tagged(&tag);
        remove_profile(&dir);
    })
    .await;
}

impl Drop for LocalProcess {
    /// The path for a pool dropped without `close()` or a launch abandoned
    /// mid-way: no await is possible here, so every process carrying the tag
    /// (the browser included) gets SIGKILL at once and the profile is removed.
    /// The reaper task, told by the dropped kill sender, reaps the browser.
    fn drop(&mut self) {
        if !self.terminated {
            let sweep = || {
                kill_tagged(&self.tag);
                remove_profile(&self.profile_dir);
            };
            // The sweep sleeps between rounds: on a worker of a multi-thread
            // runtime it runs with the worker's other tasks handed off. It
            // stays synchronous, so a test (or a service) that drops a pool
            // and then checks for leftovers finds none.
            match tokio::runtime::Handle::try_current().map(|h| h.runtime_flavor()) {
                Ok(tokio::runtime::RuntimeFlavor::MultiThread) => {
                    tokio::task::block_in_place(sweep)
                }
                _ => sweep(),
            }
        }
    }
}

/// A new profile directory, created fresh (never an existing one) with an
/// unpredictable name under the tagged prefix the leftover checks look for,
/// owner-only: nobody can prepare a profile for a browser to pick up.
fn fresh_profile_dir(tag: &str) -> Result<PathBuf> {
    let prefix = format!("{PROFILE_PREFIX}{tag}-");
    tempfile::Builder::new()
        .prefix(&prefix)
        .rand_bytes(12)
        .tempdir()
        .map(tempfile::TempDir::keep)
        .map_err(|e| {
            Error::io(
                "creating browser profile",
                std::env::temp_dir().join(prefix),
                e,
            )
        })
}
