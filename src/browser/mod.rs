//! [`BrowserPool`]: pre-warmed, bounded Chromium browsers, leased one at a time
//! in isolated incognito contexts, health-checked, retired and replaced.

mod config;
mod inner;
mod instance;
mod lease;
mod locate;
mod maintain;
mod pool;
mod process;
mod sampler;
mod sandbox;
mod stats;
mod watch;

pub use config::{BrowserPoolConfig, BrowserSource, DEFAULT_FLAGS};
pub(crate) use instance::Instance;
pub(crate) use lease::BrowserHandle;
pub use lease::Lease;
pub use locate::{locate_chromium, CHROMIUM_ENV, CHROMIUM_NAMES};
pub use pool::BrowserPool;
pub(crate) use process::clean_up_after_control;
pub use process::{
    own_tag_prefix, processes_naming_own_profiles, tagged_processes, PROFILE_PREFIX, TAG_ENV,
};
pub use sampler::{MemoryEvent, MemoryEventKind};
pub use sandbox::{Sandbox, SandboxChoice, SANDBOX_ENV};
pub use stats::{BrowserPoolStats, RetireReason};
