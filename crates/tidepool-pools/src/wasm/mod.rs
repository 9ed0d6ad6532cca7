//! WASM extractors: one serving [`WasmEngine`], the [`AotCache`] of precompiled
//! modules, and the tiered [`WasmPool`] (hot instances, warm `InstancePre`s,
//! cold modules on disk).

mod cache;
mod config;
mod engine;
mod inner;
mod lease;
mod pool;
mod tiers;

#[cfg(feature = "controls")]
pub(crate) use cache::{plain_hash_entry, ENTRY_HEADER};
pub use cache::{AotCache, CacheOutcome, CacheStats, WasmCacheConfig};
pub use config::{ModuleOptions, WasmPoolConfig};
pub use engine::{HostState, WasmEngine, WasmEngineConfig};
pub use lease::WasmLease;
pub use pool::{WasmPool, WasmPoolStats};
pub use tiers::Tier;
