//! WASM extractors: one serving [`WasmEngine`], the [`AotCache`] of precompiled
//! modules, and the tiered [`WasmPool`] (hot instances, warm `InstancePre`s,
//! cold modules on disk).

mod cache;
mod engine;
pub mod fixtures;
mod pool;
mod tiers;

pub(crate) use cache::encode_entry;
pub use cache::{AotCache, CacheOutcome, CacheStats, WasmCacheConfig};
pub use engine::{HostState, WasmEngine, WasmEngineConfig};
pub use pool::{ModuleOptions, WasmLease, WasmPool, WasmPoolConfig, WasmPoolStats};
pub use tiers::Tier;
