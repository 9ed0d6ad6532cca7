use std::time::Duration;

use rustix::process::{kill_process as kill_process_with, Pid, Signal};

use procfs::process::{ProcState, Process};
use tidepool_pools::browser::{own_tag_prefix, PROFILE_PREFIX, TAG_ENV};

/// Every live (not zombie) process but this one.
fn live_processes() -> impl Iterator<Item = Process> {
    let me = std::process::id() as i32;
    procfs::process::all_processes()
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .filter(move |p| p.pid() != me && is_live(p))
}

fn is_live(p: &Process) -> bool {
    p.stat()
        .is_ok_and(|s| !matches!(s.state(), Ok(ProcState::Zombie | ProcState::Dead)))
}

/// Live (not zombie) processes whose tag (the pool's [`TAG_ENV`] in their
/// environment) starts with `prefix`, as (pid, tag): the browsers a process
/// launched and everything they spawned.
pub fn tagged_processes(prefix: &str) -> Vec<(u32, String)> {
    live_processes()
        .filter_map(|p| {
            let environ = p.environ().ok()?;
            let tag = environ.get(std::ffi::OsStr::new(TAG_ENV))?.to_str()?;
            tag.starts_with(prefix)
                .then(|| (p.pid() as u32, tag.to_owned()))
        })
        .collect()
}

/// Makes this process a child subreaper: orphans of its descendants
/// re-parent to it, as they do to PID 1 in a container. Whether it took.
pub fn become_child_subreaper() -> bool {
    rustix::process::set_child_subreaper(Some(rustix::process::getpid())).is_ok()
}

/// Zombie children of this process: what a PID 1 that never reaps
/// accumulates.
pub fn zombie_children() -> Vec<u32> {
    let me = std::process::id() as i32;
    procfs::process::all_processes()
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .filter_map(|p| p.stat().ok())
        .filter(|s| s.ppid == me && matches!(s.state(), Ok(ProcState::Zombie)))
        .map(|s| s.pid as u32)
        .collect()
}

/// Live (not zombie) processes whose command line names a profile directory
/// of a browser this process launched, as (pid, command line): the leftover
/// check through another lens than the environment tag the cleanup uses.
pub fn processes_naming_own_profiles() -> Vec<(u32, String)> {
    let needle = std::env::temp_dir()
        .join(format!("{PROFILE_PREFIX}{}", own_tag_prefix()))
        .display()
        .to_string();
    live_processes()
        .filter_map(|p| {
            // Read as bytes: a command line need not be UTF-8.
            let raw = std::fs::read(format!("/proc/{}/cmdline", p.pid())).ok()?;
            let line = String::from_utf8_lossy(&raw).replace('\0', " ");
            line.contains(&needle)
                .then(|| (p.pid() as u32, line.trim_end().to_owned()))
        })
        .collect()
}

/// Open file descriptors of this process.
pub fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count())
}

/// Profile directories left in the temp dir by browsers this process launched.
pub fn leftover_profiles() -> Vec<String> {
    let prefix = format!("{PROFILE_PREFIX}{}", own_tag_prefix());
    std::fs::read_dir(std::env::temp_dir())
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with(&prefix))
                .collect()
        })
        .unwrap_or_default()
}

/// Live processes (not zombies) launched by browsers of this process, after
/// giving exiting ones up to `grace` to go.
pub async fn leftover_browser_processes(grace: Duration) -> Vec<(u32, String)> {
    let deadline = tokio::time::Instant::now() + grace;
    loop {
        let left = tokio::task::spawn_blocking(|| tagged_processes(&own_tag_prefix()))
            .await
            .unwrap_or_default();
        if left.is_empty() || tokio::time::Instant::now() >= deadline {
            return left;
        }
        // Waiting on other processes to finish exiting: the kernel tells no one.
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The resource baseline of a test: taken at its start, checked at its end.
///
/// Under nextest every test is a process of its own, so each browser test
/// checks its own leaks: no browser process it launched is alive, no profile
/// directory is left, and open file descriptors are back within `FD_SLACK` of
/// where they started.
#[derive(Debug, Clone, Copy)]
pub struct ResourceCheck {
    fds: usize,
}

impl ResourceCheck {
    /// Descriptors the runtime may open for good on first use (the SIGCHLD
    /// pipe of tokio's process driver, an epoll or eventfd) and keep.
    pub const FD_SLACK: usize = 2;

    /// Records the starting point.
    pub fn start() -> ResourceCheck {
        ResourceCheck { fds: open_fds() }
    }

    /// Panics, listing what leaked, unless every resource is back. Browsers
    /// still shutting down (a pool dropped mid-launch cleans up when the launch
    /// ends) get a few seconds to finish before anything counts as leaked.
    pub async fn assert_clean(&self) {
        let grace = Duration::from_secs(5);
        let deadline = tokio::time::Instant::now() + grace;
        let processes = leftover_browser_processes(grace).await;
        let mut profiles = leftover_profiles();
        while !profiles.is_empty() && tokio::time::Instant::now() < deadline {
            // Waiting on the last cleanup of a browser that just died.
            tokio::time::sleep(Duration::from_millis(50)).await;
            profiles = leftover_profiles();
        }
        let fds = open_fds();
        let fd_leak = fds > self.fds + Self::FD_SLACK;
        assert!(
            processes.is_empty() && profiles.is_empty() && !fd_leak,
            "resources leaked: {} browser processes alive {:?}; {} profile dirs left {:?}; open fds {} vs {} at start (limit +{})",
            processes.len(),
            processes,
            profiles.len(),
            profiles,
            fds,
            self.fds,
            Self::FD_SLACK
        );
    }
}

fn signal(pid: u32, signal: Signal) -> bool {
    Pid::from_raw(pid as i32).is_some_and(|pid| kill_process_with(pid, signal).is_ok())
}

/// Whether `pid` is alive: a zombie still has a /proc entry, but only a
/// reaped process is really gone.
pub fn process_alive(pid: u32) -> bool {
    procfs::process::Process::new(pid as i32)
        .and_then(|p| p.stat())
        .is_ok_and(|s| !matches!(s.state(), Ok(ProcState::Zombie | ProcState::Dead)))
}

/// Sends SIGKILL to `pid`, as a crash would; true if the signal was sent.
pub fn kill_process(pid: u32) -> bool {
    signal(pid, Signal::KILL)
}

/// Sends SIGSTOP to `pid`: the process hangs without dying, as a browser
/// stuck in a loop or swapped out would; true if the signal was sent.
pub fn stop_process(pid: u32) -> bool {
    signal(pid, Signal::STOP)
}

/// Sends SIGCONT to `pid`, resuming what [`stop_process`] stopped.
pub fn continue_process(pid: u32) -> bool {
    signal(pid, Signal::CONT)
}

/// Sends SIGINT to `pid`, as Ctrl-C would; true if the signal was sent.
pub fn interrupt_process(pid: u32) -> bool {
    signal(pid, Signal::INT)
}
