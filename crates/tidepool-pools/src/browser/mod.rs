//! [`BrowserPool`]: pre-warmed, bounded Chromium browsers, leased one at a
//! time in incognito contexts isolated as each lease asks ([`Isolation`]),
//! health-checked, retired and replaced.
//!
//! The folder's layout: the pool's core here (the counts in `slots`, the
//! choices in `placement`, the judgement in `verdict`, and the acquire,
//! release and `close()` over the `backend` seam), with the public faces
//! (`pool`, `lease`, `config`, `isolation`, `emulation`, `blocking`,
//! `hooks`, `stats`, `retry`) and
//! the maintenance loop; everything that speaks CDP or owns a process in
//! `chromium/`; the remote endpoints in `fleet/`.

mod acquire;
mod alive;
mod backend;
#[cfg(test)]
mod backend_tests;
mod backoff;
mod blocking;
mod capture;
mod chromium;
mod close;
mod config;
#[cfg(test)]
mod core_tests;
mod deadline;
mod emulation;
#[cfg(test)]
mod fake;
mod fleet;
mod hooks;
mod inner;
mod isolation;
mod lease;
mod maintain;
mod placement;
mod pool;
mod release;
mod retry;
mod slots;
mod stats;
mod verdict;

pub use blocking::{Blocking, ResourceKind};
#[cfg(feature = "controls")]
pub(crate) use chromium::connection::{keep_contexts_after_disconnect, Connection};
pub use chromium::endpoint::resolve as resolve_endpoint;
#[cfg(feature = "controls")]
pub(crate) use chromium::leftovers::{launch_without_parent_death_signal, skip_sweep};
pub use chromium::leftovers::{own_tag_prefix, PROFILE_PREFIX, TAG_ENV};
pub use chromium::locate::{locate_chromium, CHROMIUM_ENV, CHROMIUM_NAMES};
#[cfg(feature = "controls")]
pub(crate) use chromium::process::{clean_up_after_control, LocalProcess};
pub use chromium::sampler::{MemoryEvent, MemoryEventKind};
pub use chromium::sandbox::{Sandbox, SandboxChoice, SANDBOX_ENV};
#[cfg(feature = "controls")]
pub(crate) use chromium::slot::Slot;
pub use config::{BrowserPoolConfig, BrowserSource, Popups, DEFAULT_FLAGS};
pub use emulation::{Emulation, Geolocation, Viewport};
pub use fleet::{EndpointState, EndpointStats, FleetPolicy};
pub use hooks::{HookContext, HookResult, Hooks};
pub use isolation::{Isolation, LeaseOptions, ProxyCredentials};
pub(crate) use lease::BrowserHandle;
pub use lease::Lease;
pub use pool::BrowserPool;
pub use retry::RetryPolicy;
pub use stats::{BrowserPoolStats, RetireReason};
