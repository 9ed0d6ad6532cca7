//! The tiered pool's state behind its lock, and what a lease's end does with
//! its instance. The lock guards bookkeeping only: compiling, deserializing
//! and instantiating happen outside it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use wasmtime::{Instance, InstancePre, Store};

use super::cache::AotCache;
use super::config::{ModuleOptions, WasmPoolConfig};
use super::engine::{HostState, WasmEngine};
use super::tiers::{Tier, TierBook};
use crate::error::{Error, Result, WasmFault};
use crate::recording::{Counter, LatencyHistogram};

pub(super) struct Ready {
    pub(super) store: Store<HostState>,
    pub(super) instance: Instance,
}

pub(super) struct Loaded {
    pub(super) wasm: Arc<Vec<u8>>,
    pub(super) options: ModuleOptions,
    pub(super) pre: Option<InstancePre<HostState>>,
    pub(super) ready: Vec<Ready>,
}

pub(super) struct State {
    pub(super) book: TierBook,
    pub(super) loaded: HashMap<String, Loaded>,
}

/// The pool's shared state: the tier book, the loaded modules, the counters.
pub(crate) struct PoolInner {
    pub(super) engine: WasmEngine,
    pub(super) cache: Arc<AotCache>,
    pub(super) config: WasmPoolConfig,
    pub(super) state: Mutex<State>,
    pub(super) started: Instant,
    pub(super) served: [Counter; 3],
    pub(super) instantiations: Counter,
    pub(super) faults: Counter,
    pub(super) latencies: [LatencyHistogram; 3],
}

impl PoolInner {
    pub(super) fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(super) fn instantiate(&self, id: &str, pre: &InstancePre<HostState>) -> Result<Ready> {
        let mut store = self.engine.store();
        let instance = pre.instantiate(&mut store).map_err(|e| Error::Wasm {
            module: id.to_owned(),
            fault: WasmFault::Instantiate,
            message: format!("{e:#}"),
        })?;
        self.instantiations.incr();
        Ok(Ready { store, instance })
    }

    pub(super) fn put_ready(&self, id: &str, ready: Ready) {
        let mut state = self.lock();
        let hot = state.book.tier(id) == Some(Tier::Hot);
        if let Some(slot) = state.loaded.get_mut(id) {
            if hot && slot.ready.is_empty() {
                slot.ready.push(ready);
            }
        }
    }

    /// Where a lease's instance goes when the lease ends: back to a hot
    /// stateless module's ready list, or dropped; a hot module then gets a
    /// fresh instance, made here, off the acquire path.
    pub(super) fn release(&self, id: &str, ready: Ready, stateless: bool, faulted: bool) {
        let (hot, pre) = {
            let state = self.lock();
            let hot = state.book.tier(id) == Some(Tier::Hot);
            (hot, state.loaded.get(id).and_then(|s| s.pre.clone()))
        };
        if !hot {
            return;
        }
        if stateless && !faulted {
            self.put_ready(id, ready);
            return;
        }
        drop(ready);
        if let Some(pre) = pre {
            match self.instantiate(id, &pre) {
                Ok(fresh) => self.put_ready(id, fresh),
                Err(e) => {
                    tracing::warn!(module = id, error = %e, "could not refill a hot instance")
                }
            }
        }
    }
}
