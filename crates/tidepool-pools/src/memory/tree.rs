use std::collections::{BTreeMap, HashMap};

use serde::Serialize;

/// How a process's memory was measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Measure {
    /// Proportional set size from `/proc/PID/smaps_rollup`: shared pages are
    /// split among the processes that map them, so the sum over a tree counts
    /// each page once.
    Pss,
    /// Resident set size, where PSS could not be read: shared pages count in
    /// every process, so a sum over a tree overstates.
    Rss,
}

/// One process of a browser's tree.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProcessMemory {
    /// Its pid.
    pub pid: u32,
    /// `browser`, `renderer`, `gpu-process`, `utility`, `zygote`... from `--type=`.
    pub kind: String,
    /// Bytes by `measure`.
    pub bytes: u64,
    /// Its resident set size, bytes.
    pub rss_bytes: u64,
    /// How `bytes` was measured.
    pub measure: Measure,
}

/// The memory of a browser's whole process tree.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TreeMemory {
    /// The browser's root pid.
    pub root: u32,
    /// Sum of `bytes` over the tree.
    pub total_bytes: u64,
    /// Sum of resident set sizes (shared pages counted again in each process).
    pub rss_sum_bytes: u64,
    /// Whether any process fell back to RSS.
    pub any_rss_fallback: bool,
    /// Per process.
    pub processes: Vec<ProcessMemory>,
    /// `total_bytes` by process kind.
    pub by_kind: BTreeMap<String, u64>,
}

impl TreeMemory {
    /// Total in megabytes (10^6 bytes).
    pub fn total_mb(&self) -> f64 {
        self.total_bytes as f64 / 1e6
    }
}

/// The pid and its live descendants, from the parent links in `/proc/*/stat`
/// (zombies are left out). Empty where `/proc` is not (see the crate docs).
pub fn process_tree(root: u32) -> Vec<u32> {
    let mut children: HashMap<u32, Vec<u32>> = HashMap::new();
    for p in crate::os::processes() {
        children.entry(p.parent).or_default().push(p.pid);
    }
    let mut tree = vec![root];
    let mut i = 0;
    while i < tree.len() {
        if let Some(kids) = children.get(&tree[i]) {
            tree.extend(kids);
        }
        i += 1;
    }
    tree.retain(|&pid| crate::os::alive(pid));
    tree
}

/// Chromium's `--type=` of a process: `renderer`, `zygote`, `utility`...;
/// `browser` for the root, which has none.
pub fn kind_of(pid: u32) -> String {
    // Chromium rewrites its children's command lines into one space-joined
    // string, so arguments are split on spaces.
    crate::os::cmdline(pid)
        .split(' ')
        .find_map(|arg| arg.strip_prefix("--type=").map(str::to_owned))
        .unwrap_or_else(|| "browser".to_owned())
}

/// How many processes of `root`'s tree have Chromium's `--type=kind`
/// (`"renderer"`, `"gpu-process"`, ...; the root counts as `"browser"`).
/// Cheap: it reads only `stat` and `cmdline`, no memory maps.
pub fn count_of_kind(root: u32, kind: &str) -> usize {
    process_tree(root)
        .into_iter()
        .filter(|&pid| kind_of(pid) == kind)
        .count()
}

/// Measures one process: PSS from `smaps_rollup`, or RSS from `status` with
/// the fallback flagged. `None` if the process is gone.
pub fn process_memory(pid: u32) -> Option<ProcessMemory> {
    let rss = crate::os::rss_bytes(pid)?;
    let (bytes, measure) = match crate::os::pss_bytes(pid) {
        Some(pss) => (pss, Measure::Pss),
        None => (rss, Measure::Rss),
    };
    Some(ProcessMemory {
        pid,
        kind: kind_of(pid),
        bytes,
        rss_bytes: rss,
        measure,
    })
}

/// The summed RSS of `root`'s process tree, from each process's `status`:
/// an upper bound of its PSS (shared pages count whole in every process),
/// at a fraction of the cost of [`tree_memory`], which walks every
/// mapping of every process.
pub fn tree_rss_bytes(root: u32) -> u64 {
    process_tree(root)
        .into_iter()
        .filter_map(crate::os::rss_bytes)
        .sum()
}

/// The memory of `root`'s process tree. Reading `smaps_rollup` costs a few
/// milliseconds per process: call it from a blocking task, off hot paths.
pub fn tree_memory(root: u32) -> TreeMemory {
    let processes: Vec<ProcessMemory> = process_tree(root)
        .into_iter()
        .filter_map(process_memory)
        .collect();
    let mut by_kind = BTreeMap::new();
    for p in &processes {
        *by_kind.entry(p.kind.clone()).or_insert(0) += p.bytes;
    }
    TreeMemory {
        root,
        total_bytes: processes.iter().map(|p| p.bytes).sum(),
        rss_sum_bytes: processes.iter().map(|p| p.rss_bytes).sum(),
        any_rss_fallback: processes.iter().any(|p| p.measure == Measure::Rss),
        processes,
        by_kind,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_measures_itself_by_pss_within_its_rss() {
        let me = std::process::id();
        let tree = tree_memory(me);
        assert_eq!(tree.processes[0].pid, me);
        assert!(tree.total_bytes > 0);
        assert!(
            tree.total_bytes <= tree.rss_sum_bytes,
            "PSS {} > RSS {}",
            tree.total_bytes,
            tree.rss_sum_bytes
        );
        assert_eq!(tree.processes[0].measure, Measure::Pss);
    }

    #[test]
    fn the_rss_bound_is_at_least_the_pss() {
        let me = std::process::id();
        let bound = tree_rss_bytes(me);
        assert!(bound > 0);
        assert!(tree_memory(me).total_bytes <= bound);
    }

    #[test]
    fn the_tree_includes_children() {
        let mut child = std::process::Command::new("sleep")
            .arg("5")
            .spawn()
            .unwrap();
        let tree = process_tree(std::process::id());
        assert!(tree.contains(&child.id()), "{tree:?}");
        child.kill().unwrap();
        child.wait().unwrap();
    }
}
