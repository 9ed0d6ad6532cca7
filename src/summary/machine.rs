use serde::{Deserialize, Serialize};

/// The machine a report was measured on, so figures from different hosts are
/// never compared without seeing that they differ.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MachineInfo {
    /// Logical CPUs available to the process.
    pub cpus: usize,
    /// Total physical memory, bytes (0 where the OS would not say).
    pub memory_bytes: u64,
    /// Operating system and version, e.g. `Linux 12 Debian GNU/Linux`.
    pub os: String,
    /// Kernel version, when known.
    pub kernel: Option<String>,
    /// The Chromium version the scenario drove, when it drove one.
    pub chromium: Option<String>,
    /// Whether launched browsers ran in Chromium's sandbox and what decided
    /// it (`off (root)`, `on (TIDEPOOL_SANDBOX)`), for scenarios that launch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sandbox: Option<String>,
    /// The build the figures were measured on: cargo profile, opt-level and
    /// debug assertions (`profile measure, opt-level 3, debug assertions
    /// off`). Reports older than this field read `None`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub build: Option<String>,
}

impl MachineInfo {
    /// This machine's figures, read once per process.
    pub fn collect() -> MachineInfo {
        static INFO: std::sync::OnceLock<MachineInfo> = std::sync::OnceLock::new();
        INFO.get_or_init(MachineInfo::read).clone()
    }

    fn read() -> MachineInfo {
        let memory_bytes = sysinfo::System::new()
            .map(|mut system| {
                system.refresh_memory();
                system.total_memory()
            })
            .unwrap_or(0);
        MachineInfo {
            cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
            memory_bytes,
            os: sysinfo::System::long_os_version().unwrap_or_else(|_| std::env::consts::OS.into()),
            kernel: sysinfo::System::kernel_version().ok(),
            chromium: None,
            sandbox: None,
            build: Some(env!("TIDEPOOL_BUILD").to_owned()),
        }
    }
}

/// The commit being measured: `TIDEPOOL_GIT_COMMIT` or `GITHUB_SHA` when set (CI
/// checkouts may lack `.git`), else `git rev-parse HEAD`, else none.
pub fn git_commit() -> Option<String> {
    static COMMIT: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    COMMIT.get_or_init(read_git_commit).clone()
}

fn read_git_commit() -> Option<String> {
    for var in ["TIDEPOOL_GIT_COMMIT", "GITHUB_SHA"] {
        if let Ok(sha) = std::env::var(var) {
            if !sha.is_empty() {
                return Some(sha);
            }
        }
    }
    let out = std::process::Command::new("git")
        .args(["rev-parse", "HEAD"])
        .stderr(std::process::Stdio::null())
        .output()
        .ok()?;
    let sha = String::from_utf8(out.stdout).ok()?.trim().to_owned();
    (out.status.success() && !sha.is_empty()).then_some(sha)
}
