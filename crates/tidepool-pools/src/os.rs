//! What the pools read of the operating system and the signals they send:
//! the one module that touches `/proc` (through the `procfs` crate) or
//! signals a process (through `rustix`).
//!
//! Linux is the supported platform. On another Unix the crate compiles and
//! degrades: no process is listed and memory reads as unknown, so a pool
//! launches and leases browsers but cannot measure their memory (a memory
//! policy never fires) or sweep the leftover processes of a browser it lost.
//! The user id and signals work on every Unix.

/// A live process's facts, read once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ProcessInfo {
    pub(crate) pid: u32,
    /// Its parent's pid.
    pub(crate) parent: u32,
    /// Its command line, arguments joined by spaces (Chromium rewrites its
    /// children's into one space-joined string anyway).
    pub(crate) cmdline: String,
}

#[cfg(target_os = "linux")]
mod imp {
    use super::ProcessInfo;
    use procfs::process::{ProcState, Process};

    fn live(p: &Process) -> Option<procfs::process::Stat> {
        let stat = p.stat().ok()?;
        match stat.state() {
            Ok(ProcState::Zombie | ProcState::Dead) => None,
            _ => Some(stat),
        }
    }

    /// Every live (not zombie) process but this one.
    pub(crate) fn processes() -> Vec<ProcessInfo> {
        let me = std::process::id();
        let Ok(all) = procfs::process::all_processes() else {
            return Vec::new();
        };
        all.filter_map(Result::ok)
            .filter(|p| p.pid() as u32 != me)
            .filter_map(|p| {
                let stat = live(&p)?;
                Some(ProcessInfo {
                    pid: p.pid() as u32,
                    parent: stat.ppid as u32,
                    cmdline: cmdline(p.pid() as u32),
                })
            })
            .collect()
    }

    /// Live processes whose environment holds `key` with a value that
    /// `accept` takes, as (pid, value).
    pub(crate) fn processes_with_env(
        key: &str,
        accept: impl Fn(&str) -> bool,
    ) -> Vec<(u32, String)> {
        let Ok(all) = procfs::process::all_processes() else {
            return Vec::new();
        };
        all.filter_map(Result::ok)
            .filter_map(|p| {
                live(&p)?;
                let environ = p.environ().ok()?;
                let value = environ.get(std::ffi::OsStr::new(key))?.to_str()?;
                accept(value).then(|| (p.pid() as u32, value.to_owned()))
            })
            .collect()
    }

    /// Whether `pid` is a live process.
    pub(crate) fn alive(pid: u32) -> bool {
        Process::new(pid as i32).is_ok_and(|p| live(&p).is_some())
    }

    /// The command line of `pid`, arguments joined by spaces; empty if gone.
    /// Read as bytes (procfs reads it as UTF-8 and fails on anything else).
    pub(crate) fn cmdline(pid: u32) -> String {
        let bytes = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        String::from_utf8_lossy(&bytes)
            .split('\0')
            .filter(|a| !a.is_empty())
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// Zombie children of this process whose name (`comm`) starts with
    /// `prefix`.
    pub(crate) fn zombie_children(prefix: &str) -> Vec<u32> {
        let me = std::process::id() as i32;
        let Ok(all) = procfs::process::all_processes() else {
            return Vec::new();
        };
        all.filter_map(Result::ok)
            .filter_map(|p| p.stat().ok())
            .filter(|s| s.ppid == me && s.comm.starts_with(prefix))
            .filter(|s| matches!(s.state(), Ok(ProcState::Zombie)))
            .map(|s| s.pid as u32)
            .collect()
    }

    /// Resident set size of `pid`, bytes.
    pub(crate) fn rss_bytes(pid: u32) -> Option<u64> {
        let status = Process::new(pid as i32).ok()?.status().ok()?;
        status.vmrss.map(|kb| kb * 1024)
    }

    /// Proportional set size of `pid`, bytes, from `smaps_rollup`.
    pub(crate) fn pss_bytes(pid: u32) -> Option<u64> {
        let rollup = Process::new(pid as i32).ok()?.smaps_rollup().ok()?;
        rollup
            .memory_map_rollup
            .iter()
            .find_map(|m| m.extension.map.get("Pss").copied())
    }
}

#[cfg(not(target_os = "linux"))]
mod imp {
    use super::ProcessInfo;

    pub(crate) fn processes() -> Vec<ProcessInfo> {
        Vec::new()
    }
    pub(crate) fn processes_with_env(
        _key: &str,
        _accept: impl Fn(&str) -> bool,
    ) -> Vec<(u32, String)> {
        Vec::new()
    }
    pub(crate) fn alive(_pid: u32) -> bool {
        false
    }
    pub(crate) fn cmdline(_pid: u32) -> String {
        String::new()
    }
    pub(crate) fn zombie_children(_prefix: &str) -> Vec<u32> {
        Vec::new()
    }
    pub(crate) fn rss_bytes(_pid: u32) -> Option<u64> {
        None
    }
    pub(crate) fn pss_bytes(_pid: u32) -> Option<u64> {
        None
    }
}

pub(crate) use imp::*;

/// This process's effective user id.
pub(crate) fn uid() -> u32 {
    rustix::process::geteuid().as_raw()
}

/// Sends SIGKILL to `pid`; a process already gone is not an error.
pub(crate) fn kill(pid: u32) {
    if let Some(pid) = rustix::process::Pid::from_raw(pid as i32) {
        let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
    }
}

/// Whether orphans re-parent to this process: it is PID 1 (a container's
/// init) or a child subreaper.
pub(crate) fn adopts_orphans() -> bool {
    if std::process::id() == 1 {
        return true;
    }
    #[cfg(target_os = "linux")]
    if let Ok(Some(_)) = rustix::process::child_subreaper() {
        return true;
    }
    false
}

/// Whether `pid` is in this process's PID namespace: a pid read in a tag
/// means the same process only there (a host sees a container's browsers,
/// whose tags name pids of the container's namespace).
pub(crate) fn same_pid_namespace(pid: u32) -> bool {
    let ns = |p: &str| std::fs::read_link(format!("/proc/{p}/ns/pid")).ok();
    match (ns("self"), ns(&pid.to_string())) {
        (Some(mine), Some(theirs)) => mine == theirs,
        _ => false,
    }
}

/// This machine's host name (a container's own, in a container).
pub(crate) fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_default()
}

/// Reaps `pid`, a zombie child of this process, if it still is one.
pub(crate) fn reap(pid: u32) {
    if let Some(pid) = rustix::process::Pid::from_raw(pid as i32) {
        let _ = rustix::process::waitpid(Some(pid), rustix::process::WaitOptions::NOHANG);
    }
}

/// Makes the process `cmd` starts get SIGKILL when the thread that spawns
/// it ends (Linux's parent-death signal), and not start at all if that
/// thread is gone by the time it runs. Elsewhere, nothing.
#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
pub(crate) fn die_with_parent(cmd: &mut tokio::process::Command) {
    let parent = rustix::process::getpid();
    // SAFETY: the closure runs in the child between fork and exec, where
    // only async-signal-safe calls are allowed: it makes two system calls
    // (prctl, getppid) and allocates nothing, errors included.
    unsafe {
        cmd.pre_exec(move || {
            rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::KILL))?;
            // The parent may have died between fork and prctl: then no
            // signal will ever come, so the child must not start.
            if rustix::process::getppid() != Some(parent) {
                return Err(std::io::Error::from_raw_os_error(3)); // ESRCH
            }
            Ok(())
        });
    }
}

#[cfg(not(target_os = "linux"))]
pub(crate) fn die_with_parent(_cmd: &mut tokio::process::Command) {}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    /// A `sleep 30` child, killed and reaped however the test ends.
    struct Child(std::process::Child);

    impl Drop for Child {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }

    fn sleeper(env: &[(&str, &str)]) -> Child {
        let mut command = std::process::Command::new("sleep");
        command.arg("30").envs(env.iter().copied());
        Child(command.spawn().unwrap())
    }

    #[test]
    fn a_child_is_listed_with_its_parent_command_line_and_memory() {
        let mut child = sleeper(&[]);
        let pid = child.0.id();
        // A vfork-style spawn returns before the new program has its
        // arguments in place: until then the command line reads empty.
        let t = std::time::Instant::now();
        while cmdline(pid).is_empty() && t.elapsed() < std::time::Duration::from_secs(2) {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        let listed = processes().into_iter().find(|p| p.pid == pid);
        let listed = listed.expect("the child is listed");
        assert_eq!(listed.parent, std::process::id());
        assert_eq!(listed.cmdline, "sleep 30");
        assert_eq!(cmdline(pid), "sleep 30");
        assert!(alive(pid));
        let (rss, pss) = (rss_bytes(pid).unwrap(), pss_bytes(pid).unwrap());
        assert!(pss > 0 && pss <= rss, "pss {pss}, rss {rss}");
        kill(pid);
        child.0.wait().unwrap();
        assert!(!alive(pid));
    }

    #[test]
    fn a_process_is_found_by_its_environment() {
        let child = sleeper(&[("TIDEPOOL_OS_TEST", "tag-1")]);
        let found = processes_with_env("TIDEPOOL_OS_TEST", |v| v.starts_with("tag-"));
        assert_eq!(found, vec![(child.0.id(), "tag-1".to_owned())]);
    }

    #[test]
    fn the_user_is_this_process_s_owner() {
        use std::os::unix::fs::MetadataExt;
        assert_eq!(uid(), std::fs::metadata("/proc/self").unwrap().uid());
    }
}
