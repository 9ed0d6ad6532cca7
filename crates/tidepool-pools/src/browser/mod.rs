//! [`BrowserPool`]: pre-warmed, bounded Chromium browsers, leased one at a
//! time in incognito contexts isolated as each lease asks ([`Isolation`]),
//! health-checked, retired and replaced.

mod acquire;
mod backend;
#[cfg(test)]
mod backend_tests;
mod backoff;
mod chromium;
mod close;
mod config;
mod connection;
#[cfg(test)]
mod core_tests;
mod endpoint;
#[cfg(test)]
mod fake;
mod fleet;
mod hooks;
mod inner;
mod isolation;
mod lease;
mod leftovers;
mod locate;
mod maintain;
mod placement;
mod pool;
mod process;
mod release;
mod retry;
mod room;
mod sampler;
mod sandbox;
mod slot;
mod slots;
mod start;
mod stats;
mod verdict;
mod watch;
mod wipe;

pub use config::{BrowserPoolConfig, BrowserSource, DEFAULT_FLAGS};
#[cfg(feature = "controls")]
pub(crate) use connection::{keep_contexts_after_disconnect, Connection};
pub use endpoint::resolve as resolve_endpoint;
pub use fleet::{EndpointState, EndpointStats, FleetPolicy};
pub use hooks::{HookContext, HookResult, Hooks};
pub use isolation::{Isolation, LeaseOptions};
pub(crate) use lease::BrowserHandle;
pub use lease::Lease;
#[cfg(feature = "controls")]
pub(crate) use leftovers::{launch_without_parent_death_signal, skip_sweep};
pub use leftovers::{own_tag_prefix, PROFILE_PREFIX, TAG_ENV};
pub use locate::{locate_chromium, CHROMIUM_ENV, CHROMIUM_NAMES};
pub use pool::BrowserPool;
#[cfg(feature = "controls")]
pub(crate) use process::{clean_up_after_control, LocalProcess};
pub use retry::RetryPolicy;
pub use sampler::{MemoryEvent, MemoryEventKind};
pub use sandbox::{Sandbox, SandboxChoice, SANDBOX_ENV};
#[cfg(feature = "controls")]
pub(crate) use slot::Slot;
pub use stats::{BrowserPoolStats, RetireReason};
