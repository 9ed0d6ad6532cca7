//! A service killed by SIGKILL (or the OOM killer) while it holds leases
//! leaves nothing behind once the next pool starts: its browsers die with it
//! (the parent-death signal), and the next pool that launches sweeps the
//! crashpad handlers and profile directories of services that are gone,
//! never those of a live one. A service that is PID 1 reaps the crashpad
//! handlers it inherits.
//!
//! The service is this test binary run again as a child process, as a
//! service runs its pool: it leases two browsers and waits to be killed.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use tidepool::browser::{BrowserPool, BrowserPoolConfig, PROFILE_PREFIX};
use tidepool::testkit::{
    become_child_subreaper, init_tracing, kill_process, process_alive, tagged_processes,
    zombie_children, ResourceCheck,
};
use tidepool_pools::controls;

/// Set for the child: `honest`, `control` (no parent-death signal), or
/// `subreaper` (the child adopts orphans as PID 1 does).
const SERVICE: &str = "TIDEPOOL_DEAD_SERVICE";

/// How long the dead service's leftovers may take to go, from the SIGKILL.
const WITHIN: Duration = Duration::from_secs(5);

fn config(browsers: usize) -> BrowserPoolConfig {
    BrowserPoolConfig {
        max_size: browsers,
        warm_up: browsers,
        min_idle: 0,
        memory: None,
        ..BrowserPoolConfig::default()
    }
}

/// The service of the tests below: two browsers, both leased, then it waits
/// to be killed; or, as a subreaper, it closes its pool and counts the
/// zombies it was left with.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_service_process() {
    let Ok(mode) = std::env::var(SERVICE) else {
        return; // Run as a test of its own: nothing to do.
    };
    if mode == "control" {
        controls::launch_without_parent_death_signal();
    }
    if mode == "subreaper" {
        assert!(become_child_subreaper(), "prctl(PR_SET_CHILD_SUBREAPER)");
        let pool = BrowserPool::new(config(1)).await.unwrap();
        let lease = pool.acquire().await.unwrap();
        lease.goto("data:text/html,<p>adopted</p>").await.unwrap();
        drop(lease);
        pool.close().await;
        // The crashpad handlers killed by close(), or exiting on their own
        // after it, are this process's to reap: its reaper looks every
        // 250 ms.
        let deadline = Instant::now() + Duration::from_secs(2);
        let mut zombies = zombie_children();
        while !zombies.is_empty() && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
            zombies = zombie_children();
        }
        println!("zombies: {}", zombies.len());
        return;
    }
    let pool = BrowserPool::new(config(2)).await.unwrap();
    let a = pool.acquire().await.unwrap();
    let b = pool.acquire().await.unwrap();
    a.goto("data:text/html,<p>a</p>").await.unwrap();
    b.goto("data:text/html,<p>b</p>").await.unwrap();
    println!("leased: {}", std::process::id());
    tokio::time::sleep(Duration::from_secs(120)).await;
    drop((a, b));
}

/// Runs the service in `mode` and returns its stdout's line starting with
/// `prefix`, the rest of it, with the child (still running, or done).
async fn start_service(mode: &str, prefix: &str) -> (tokio::process::Child, String) {
    use tokio::io::AsyncBufReadExt;
    let mut service = tokio::process::Command::new(std::env::current_exe().unwrap())
        .args(["dead_service_process", "--exact", "--nocapture"])
        .env(SERVICE, mode)
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = tokio::io::BufReader::new(service.stdout.take().unwrap()).lines();
    let line = tokio::time::timeout(Duration::from_secs(60), async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if let Some(rest) = line.strip_prefix(prefix) {
                return rest.to_owned();
            }
        }
        panic!("the service ended before printing {prefix:?}")
    })
    .await
    .expect("the service printed nothing within 60 s");
    (service, line)
}

/// Profile directories of the process `pid`.
fn profiles_of(pid: u32) -> Vec<PathBuf> {
    let prefix = format!("{PROFILE_PREFIX}{pid}-");
    std::fs::read_dir(std::env::temp_dir())
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with(&prefix))
        .map(|e| e.path())
        .collect()
}

/// What is left of the service `pid`: its processes and profiles.
fn left_of(pid: u32) -> (Vec<(u32, String)>, Vec<PathBuf>) {
    (tagged_processes(&format!("{pid}-")), profiles_of(pid))
}

/// Kills the service holding its leases, starts the next pool (which
/// sweeps, unless `sweep` is off), and returns what is left of the service
/// after [`WITHIN`], or as soon as nothing is.
async fn kill_a_service_and_start_the_next(mode: &str) -> (u32, Vec<(u32, String)>, Vec<PathBuf>) {
    let (mut service, pid) = start_service(mode, "leased: ").await;
    let pid: u32 = pid.trim().parse().unwrap();
    let (procs, profiles) = left_of(pid);
    assert!(
        !procs.is_empty() && profiles.len() == 2,
        "the service holds two browsers: {procs:?} {profiles:?}"
    );
    let killed = Instant::now();
    assert!(kill_process(pid));
    service.wait().await.unwrap();
    let next = BrowserPool::new(config(1)).await.unwrap();
    let left = loop {
        let left = left_of(pid);
        if (left.0.is_empty() && left.1.is_empty()) || killed.elapsed() >= WITHIN {
            break left;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    println!(
        "{mode}: {} processes and {} profiles of the dead service left {:?} after its SIGKILL",
        left.0.len(),
        left.1.len(),
        killed.elapsed()
    );
    next.close().await;
    (pid, left.0, left.1)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_killed_holding_leases_leaves_no_browser_and_no_profile() {
    init_tracing();
    let resources = ResourceCheck::start();
    // A live pool of this process, which no sweep may touch.
    let live = BrowserPool::new(config(1)).await.unwrap();
    let live_pids = controls::pids(&live);
    assert_eq!(live_pids.len(), 1);

    let (_, procs, profiles) = kill_a_service_and_start_the_next("honest").await;
    assert!(
        procs.is_empty() && profiles.is_empty(),
        "{WITHIN:?} after kill -9: {} processes {procs:?} and {} profiles {profiles:?} of the dead service are left (limit 0)",
        procs.len(),
        profiles.len()
    );
    assert!(
        live_pids.iter().all(|&p| process_alive(p)),
        "the sweep killed a live pool's browser"
    );
    let lease = live.acquire().await.unwrap();
    lease
        .goto("data:text/html,<p>still here</p>")
        .await
        .unwrap();
    drop(lease);

    // The negative control: no parent-death signal, no sweep. What the
    // check above counts must then be there to count.
    controls::skip_orphan_sweep();
    let (pid, procs, profiles) = kill_a_service_and_start_the_next("control").await;
    let left = (procs.len(), profiles.len());
    for (p, _) in &procs {
        kill_process(*p);
    }
    for dir in &profiles {
        let _ = std::fs::remove_dir_all(dir);
    }
    assert!(
        left.0 > 0 && left.1 == 2,
        "without the parent-death signal and the sweep, the dead service {pid} left {left:?} (processes, profiles): the check cannot tell"
    );
    live.close().await;
    resources.assert_clean().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pool_that_adopts_orphans_reaps_the_crashpad_handlers_it_kills() {
    init_tracing();
    let (mut service, zombies) = start_service("subreaper", "zombies: ").await;
    service.wait().await.unwrap();
    let zombies: usize = zombies.trim().parse().unwrap();
    assert_eq!(
        zombies, 0,
        "a subreaper's pool left {zombies} zombie children 2 s after close() (limit 0)"
    );
}
