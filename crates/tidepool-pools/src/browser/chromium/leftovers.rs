//! What a browser leaves behind and how it is cleaned up: the tag every
//! process of a launch carries, its profile directory, the kill of every
//! tagged process at its end; and what a service leaves when it dies
//! without closing its pools (SIGKILL, the OOM killer):
//!
//! - Every launched Chromium gets SIGKILL when the service dies (Linux's
//!   parent-death signal). The signal fires when the *thread* that forked
//!   the browser ends, not the process, and a runtime's threads come and go
//!   (a blocking-pool thread retires after 10 s idle; `block_in_place` hands
//!   a worker to the blocking pool): browsers are spawned from one launcher
//!   thread that lives as long as the process.
//! - The browser's renderers and zygote end with it; its crashpad handlers
//!   re-parent and live on, and its profile directory stays. A pool that
//!   launches sweeps both at its start: the tagged processes and profile
//!   directories whose owning process is gone, never those of a live one:
//!   only processes of its own PID namespace, and no profile that Chromium's
//!   own lock says is held on another host (a container sharing the temp
//!   directory) or by a live browser.
//! - A service that is PID 1 (a container's init) or a child subreaper
//!   inherits the crashpad handlers: a thread of its own reaps them every
//!   250 ms, and so does every kill of a browser's processes.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

/// Environment variable set on every process a pool launches; its value names
/// the test process, the pool and the browser (`<pid>-<pool>-<browser>`).
pub const TAG_ENV: &str = "TIDEPOOL_BROWSER_TAG";

/// Prefix of every profile directory the pool creates under the temp dir.
pub const PROFILE_PREFIX: &str = "tidepool-profile-";

/// The tag prefix of every browser this process launches.
pub fn own_tag_prefix() -> String {
    format!("{}-", std::process::id())
}

type Job = Box<dyn FnOnce() + Send>;

/// The pids of the browsers this process spawned and has not reaped yet:
/// their own tasks wait for them, so the reaping of adopted orphans leaves
/// them alone. Held across a spawn and across a reaping round, so neither
/// sees the other half done.
static SPAWNED: Mutex<BTreeSet<u32>> = Mutex::new(BTreeSet::new());

fn spawned() -> MutexGuard<'static, BTreeSet<u32>> {
    SPAWNED.lock().unwrap_or_else(|p| p.into_inner())
}

/// `pid`, spawned here, has been reaped by its own task.
pub(crate) fn reaped(pid: u32) {
    spawned().remove(&pid);
}

/// Spawns `cmd` from the launcher thread, with the parent-death signal set.
pub(crate) fn spawn(mut cmd: tokio::process::Command) -> std::io::Result<tokio::process::Child> {
    #[cfg(feature = "controls")]
    let deathless = DEATHLESS_FOR_CONTROL.load(std::sync::atomic::Ordering::Relaxed);
    #[cfg(not(feature = "controls"))]
    let deathless = false;
    if !deathless {
        crate::os::die_with_parent(&mut cmd);
    }
    // The child registers with this runtime's process driver, whichever
    // thread forks it.
    let runtime = tokio::runtime::Handle::current();
    let (tx, rx) = std::sync::mpsc::sync_channel(1);
    let job: Job = Box::new(move || {
        let _entered = runtime.enter();
        let mut spawned = spawned();
        let child = cmd.spawn();
        if let Some(pid) = child.as_ref().ok().and_then(|c| c.id()) {
            spawned.insert(pid);
        }
        drop(spawned);
        let _ = tx.send(child);
    });
    launcher_send(job)?;
    // Waited for here, not awaited: a fork and exec take the caller's
    // thread about as long as a spawn of its own did, and a launch with no
    // await point between its profile's creation and its process's guard
    // cannot be cancelled into leaving either behind.
    rx.recv()
        .map_err(|_| std::io::Error::other("the launcher thread dropped a launch"))?
}

/// Hands `job` to the launcher thread, starting it on first use.
fn launcher_send(job: Job) -> std::io::Result<()> {
    static LAUNCHER: Mutex<Option<std::sync::mpsc::Sender<Job>>> = Mutex::new(None);
    let mut launcher = LAUNCHER.lock().unwrap_or_else(|p| p.into_inner());
    if launcher.is_none() {
        let (jobs, queue) = std::sync::mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("tidepool-launcher".into())
            .spawn(move || {
                for job in queue {
                    job();
                }
            })?;
        *launcher = Some(jobs);
    }
    match launcher.as_ref().map(|l| l.send(job)) {
        Some(Ok(())) => Ok(()),
        _ => {
            // Its thread ended (it never does but by a panic in a spawn):
            // start another next time.
            *launcher = None;
            Err(std::io::Error::other("the launcher thread is gone"))
        }
    }
}

/// Kills the tagged processes and removes the profile directories of
/// services that are gone; returns how many of each. Runs off the runtime
/// (it reads `/proc` and sleeps between kill rounds). A no-op off Linux,
/// where no process can be attributed.
pub(crate) fn sweep() -> (usize, usize) {
    #[cfg(feature = "controls")]
    if NO_SWEEP_FOR_CONTROL.load(std::sync::atomic::Ordering::Relaxed) {
        return (0, 0);
    }
    if !cfg!(target_os = "linux") {
        return (0, 0);
    }
    let orphaned = |tag: &str| owner(tag).is_some_and(|pid| !crate::os::alive(pid));
    let killed = kill_matching(|pid, tag| orphaned(tag) && crate::os::same_pid_namespace(pid));
    let mut removed = 0;
    let dir = std::env::temp_dir();
    for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
        let name = entry.file_name();
        let Some(tag) = name.to_str().and_then(|n| n.strip_prefix(PROFILE_PREFIX)) else {
            continue;
        };
        if orphaned(tag) && !held_elsewhere(&entry.path()) {
            remove_profile(&entry.path());
            removed += 1;
        }
    }
    if killed + removed > 0 {
        tracing::info!(
            killed,
            removed,
            dir = %dir.display(),
            "swept the browser processes and profiles of services that are gone"
        );
    }
    (killed, removed)
}

/// Whether Chromium's own lock on the profile `dir` (`SingletonLock`, a
/// link to `<host>-<pid>`) says it is in use on another host (a container
/// sharing the temp dir, whose pids mean nothing here) or by a live
/// browser. No lock: nothing holds it.
fn held_elsewhere(dir: &Path) -> bool {
    let Ok(lock) = std::fs::read_link(dir.join("SingletonLock")) else {
        return false;
    };
    let lock = lock.to_string_lossy();
    let Some((host, pid)) = lock.rsplit_once('-') else {
        return true; // A lock of a shape we do not know: leave it.
    };
    host != crate::os::hostname() || pid.parse().is_ok_and(crate::os::alive)
}

/// The pid of the process that launched the browser tagged `tag`
/// (`<pid>-<pool>-<browser>`, a profile directory's name adds `-<random>`).
fn owner(tag: &str) -> Option<u32> {
    tag.split('-').next()?.parse().ok()
}

/// How often a process that adopts orphans reaps them.
const REAP_EVERY: Duration = Duration::from_millis(250);

/// In a process that adopts orphans (PID 1, a subreaper), starts the
/// thread that reaps adopted Chromium processes for as long as the process
/// lives: a crashpad handler may exit on its own at any time after its
/// browser, not only when the pool kills it.
pub(crate) fn start_reaper() {
    static STARTED: std::sync::Once = std::sync::Once::new();
    if !crate::os::adopts_orphans() {
        return;
    }
    STARTED.call_once(|| {
        let started = std::thread::Builder::new()
            .name("tidepool-reaper".into())
            .spawn(|| loop {
                std::thread::sleep(REAP_EVERY);
                reap_adopted();
            });
        if let Err(e) = started {
            tracing::warn!(error = %e, "could not start the reaper of adopted browser processes");
        }
    });
}

/// Reaps the Chromium processes (crashpad handlers) that re-parented to
/// this process, if it adopts orphans; never a child it spawned itself,
/// which its own task waits for.
pub(crate) fn reap_adopted() {
    if !crate::os::adopts_orphans() {
        return;
    }
    let spawned = spawned();
    for pid in crate::os::zombie_children("chrom") {
        if !spawned.contains(&pid) {
            tracing::debug!(pid, "reaping an adopted browser process");
            crate::os::reap(pid);
        }
    }
}

/// SIGKILLs every live process carrying exactly `tag`, sweeping again until
/// none is left (at most [`SWEEP_ROUNDS`] times).
pub(crate) fn kill_tagged(tag: &str) {
    kill_matching(|_, t| t == tag);
}

/// SIGKILLs every live process whose pid and tag `accept` takes, sweeping
/// again until none is left (at most [`SWEEP_ROUNDS`] times); returns how
/// many kills were sent.
///
/// One sweep is not enough: a browser killed while it starts may spawn its
/// crashpad handlers between the listing and the kill, and those re-parent to
/// PID 1 and live on by design.
fn kill_matching(accept: impl Fn(u32, &str) -> bool) -> usize {
    let mut killed = 0;
    for round in 0..SWEEP_ROUNDS {
        let found: Vec<(u32, String)> = crate::os::processes_with_env(TAG_ENV, |_| true)
            .into_iter()
            .filter(|(pid, tag)| accept(*pid, tag))
            .collect();
        if found.is_empty() {
            break;
        }
        for (pid, tag) in found {
            tracing::debug!(pid, tag, round, "killing a leftover browser process");
            crate::os::kill(pid);
            killed += 1;
        }
        // Give a dying parent the moment it may need to spawn what the next
        // round must find; this runs off the async runtime (spawn_blocking or
        // a Drop), never on a hot path.
        std::thread::sleep(SWEEP_PAUSE);
        reap_adopted();
    }
    // The crashpad handlers re-parented to PID 1 when they started: when
    // that is this process, the ones that exited (or were killed here) are
    // its to reap.
    reap_adopted();
    killed
}

/// Sweeps of [`kill_matching`] before it gives up.
pub(crate) const SWEEP_ROUNDS: usize = 10;
/// Pause between sweeps.
pub(crate) const SWEEP_PAUSE: Duration = Duration::from_millis(30);

/// Removes a profile directory; called once every process that could write
/// to it has been killed.
///
/// A process killed in the middle of a write may finish creating its file
/// after `remove_dir_all` listed the directory ("Directory not empty", seen
/// in a control that retires a browser per lease): the removal is retried
/// a few times before it is reported.
pub(crate) fn remove_profile(dir: &Path) {
    for attempt in 1..=SWEEP_ROUNDS {
        match std::fs::remove_dir_all(dir) {
            Ok(()) => return,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return,
            Err(e)
                if e.kind() == std::io::ErrorKind::DirectoryNotEmpty && attempt < SWEEP_ROUNDS =>
            {
                std::thread::sleep(SWEEP_PAUSE);
            }
            Err(e) => {
                tracing::warn!(dir = %dir.display(), error = %e, "could not remove browser profile");
                return;
            }
        }
    }
}

/// Whether `dir` is a profile directory of this process's browsers.
#[cfg(test)]
fn is_own(dir: &Path) -> bool {
    dir.file_name()
        .and_then(|n| n.to_str())
        .and_then(|n| n.strip_prefix(PROFILE_PREFIX))
        .and_then(owner)
        == Some(std::process::id())
}

#[cfg(feature = "controls")]
static DEATHLESS_FOR_CONTROL: std::sync::atomic::AtomicBool =
    std::sync::atomic::AtomicBool::new(false);
#[cfg(feature = "controls")]
static NO_SWEEP_FOR_CONTROL: std::sync::atomic::AtomicBool =
    std::sync::atomic::AtomicBool::new(false);

/// Browsers launched from now on in this process outlive it (the control
/// of the kill -9 check).
#[cfg(feature = "controls")]
pub(crate) fn launch_without_parent_death_signal() {
    DEATHLESS_FOR_CONTROL.store(true, std::sync::atomic::Ordering::Relaxed);
}

/// Pools started from now on in this process sweep nothing (the control
/// of the kill -9 check).
#[cfg(feature = "controls")]
pub(crate) fn skip_sweep() {
    NO_SWEEP_FOR_CONTROL.store(true, std::sync::atomic::Ordering::Relaxed);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_owner_is_the_first_field_of_a_tag_or_a_profile_name() {
        assert_eq!(owner("4242-3-7"), Some(4242));
        assert_eq!(owner("4242-3-7-AbCdEf012345"), Some(4242));
        assert_eq!(owner("external-1"), None);
        let own =
            std::env::temp_dir().join(format!("{PROFILE_PREFIX}{}-1-2-x", std::process::id()));
        assert!(is_own(&own));
    }

    #[test]
    fn the_sweep_leaves_a_live_owner_s_profile_and_removes_a_dead_one_s() {
        // A child that has exited and been reaped: its pid names no process.
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let dead = child.id();
        child.wait().unwrap();
        let temp = std::env::temp_dir();
        let dead_dir = temp.join(format!("{PROFILE_PREFIX}{dead}-1-1-sweeptest"));
        let live_dir = temp.join(format!(
            "{PROFILE_PREFIX}{}-1-1-sweeptest",
            std::process::id()
        ));
        for d in [&dead_dir, &live_dir] {
            std::fs::create_dir_all(d.join("Default")).unwrap();
        }
        sweep();
        let (dead_left, live_left) = (dead_dir.exists(), live_dir.exists());
        let _ = std::fs::remove_dir_all(&live_dir);
        let _ = std::fs::remove_dir_all(&dead_dir);
        assert!(!dead_left, "a gone service's profile was left");
        assert!(live_left, "a live service's profile was removed");
    }
}
