//! CPU time, read from `/proc`: the whole machine's, this process's, and a
//! browser's by process kind. CPU per page is a crawler's throughput on a
//! busy machine, and where it goes says what to cut.

use std::collections::BTreeMap;

use tidepool_pools::memory::{kind_of, process_tree};

/// `/proc` counts CPU time in ticks of 1/100 s (`USER_HZ`, fixed at 100 for
/// what the kernel shows userspace).
const MS_PER_TICK: f64 = 10.0;

/// CPU time spent by the whole machine since boot, ms: every core's user,
/// nice, system, interrupt and steal time (idle and iowait left out).
pub fn machine_cpu_ms() -> f64 {
    use procfs::CurrentSI;
    let Ok(stat) = procfs::KernelStats::current() else {
        return 0.0;
    };
    let t = stat.total;
    let busy = t.user
        + t.nice
        + t.system
        + t.irq.unwrap_or(0)
        + t.softirq.unwrap_or(0)
        + t.steal.unwrap_or(0);
    busy as f64 * MS_PER_TICK
}

/// Waits, up to `max`, until the machine has been quiet for one window of
/// 200 ms: busy on less than a quarter of one core. Returns how long it
/// waited. A side measured right after another would otherwise pay for
/// what the last one left behind: its browser's children still exiting, its
/// profile still being removed, its pages still being freed.
pub async fn settle(max: std::time::Duration) -> std::time::Duration {
    const WINDOW: std::time::Duration = std::time::Duration::from_millis(200);
    let t0 = std::time::Instant::now();
    while t0.elapsed() < max {
        let before = machine_cpu_ms();
        tokio::time::sleep(WINDOW).await;
        let busy = machine_cpu_ms() - before;
        if busy < WINDOW.as_secs_f64() * 1e3 / 4.0 {
            break;
        }
    }
    t0.elapsed()
}

/// CPU time of one process, ms: its own, and that of its children it has
/// reaped. 0 if it is gone.
pub fn process_cpu_ms(pid: u32) -> f64 {
    let Ok(stat) = procfs::process::Process::new(pid as i32).and_then(|p| p.stat()) else {
        return 0.0;
    };
    let ticks = (stat.utime + stat.stime) as f64 + (stat.cutime + stat.cstime) as f64;
    ticks * MS_PER_TICK
}

/// This process's CPU time, ms.
pub fn own_cpu_ms() -> f64 {
    process_cpu_ms(std::process::id())
}

/// The CPU time of browsers' process trees, ms, by kind: `browser`,
/// `renderer`, `utility`, `other`. Renderers that exited were reaped by
/// their zygote, so a zygote's time counts as `renderer`. Read it before the
/// browsers close: a tree that is gone reports nothing.
pub fn browser_cpu_by_kind(roots: &[u32]) -> BTreeMap<&'static str, f64> {
    let mut by_kind = BTreeMap::new();
    for &root in roots {
        for pid in process_tree(root) {
            let kind = match kind_of(pid).as_str() {
                "browser" => "browser",
                "renderer" | "zygote" => "renderer",
                "utility" => "utility",
                _ => "other",
            };
            *by_kind.entry(kind).or_insert(0.0) += process_cpu_ms(pid);
        }
    }
    by_kind
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spinning_shows_in_this_process_and_the_machine() {
        let (machine, own) = (machine_cpu_ms(), own_cpu_ms());
        let t = std::time::Instant::now();
        let mut x = 0u64;
        while t.elapsed() < std::time::Duration::from_millis(300) {
            x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(7));
        }
        let (own_spent, machine_spent) = (own_cpu_ms() - own, machine_cpu_ms() - machine);
        assert!(
            own_spent >= 200.0,
            "300 ms of spinning read {own_spent} ms of own CPU"
        );
        assert!(
            machine_spent >= own_spent - 20.0,
            "the machine ({machine_spent} ms) spent less than this process ({own_spent} ms)"
        );
    }
}
