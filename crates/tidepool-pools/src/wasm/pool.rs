//! The tiered pool's public face: registering modules, acquiring leases,
//! rebalancing, and its snapshot.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::Instant;

use serde::Serialize;
use wasmtime::InstancePre;

use super::cache::{AotCache, CacheOutcome};
use super::config::{ModuleOptions, WasmPoolConfig};
use super::engine::{HostState, WasmEngine};
use super::inner::{Loaded, PoolInner, Ready, State};
use super::lease::WasmLease;
use super::tiers::{Admission, Tier, TierBook};
use crate::error::{Error, Result, WasmFault};
use crate::recording::{Counter, LatencyHistogram, LatencySummary};

/// The serve counter family, labelled by `tier`.
const SERVED: &str = "tidepool_wasm_serves_total";
/// The acquire latency family, labelled by `tier`.
const ACQUIRE: &str = "tidepool_wasm_acquire_seconds";

/// A snapshot of a [`WasmPool`]: its counters and the size of each tier.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[non_exhaustive]
pub struct WasmPoolStats {
    /// Modules the pool tiers at most (`capacity`), and the hot and warm
    /// tiers' shares of it: `[capacity, hot, warm]`.
    pub capacity: [usize; 3],
    /// Acquisitions served by each tier: `[hot, warm, cold]`.
    pub served: [u64; 3],
    /// Modules in each tier now.
    pub modules: [usize; 3],
    /// Moves to a hotter tier.
    pub promotions: u64,
    /// Moves to a colder tier.
    pub demotions: u64,
    /// Instances created.
    pub instantiations: u64,
    /// Calls that trapped, overran their deadline or their memory.
    pub faults: u64,
}

/// WASM instances kept at the cheapest tier their demand justifies.
///
/// `acquire(id)` tries hot (a ready instance), then warm (instantiate an
/// `InstancePre`), then cold (deserialize from the AOT cache, or compile). The
/// access rate of each module is a time-decayed count of its acquisitions.
/// A cold acquire keeps what it loaded if the module earns a place: a free
/// one, or that of the least wanted warm module if it was wanted more.
/// [`rebalance`](WasmPool::rebalance), run by a background task every
/// `promotion_interval`, gives the most wanted resident modules the hot
/// places. Every load is one an acquire needed: the pool never deserializes
/// a module on a guess. A lease gets a fresh instance (unless the module
/// is declared stateless); one that faulted is never reused.
///
/// The state lock guards bookkeeping only: compiling, deserializing and
/// instantiating happen outside it.
#[derive(Clone)]
pub struct WasmPool {
    inner: Arc<PoolInner>,
}

impl std::fmt::Debug for WasmPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WasmPool")
            .field("stats", &self.stats())
            .finish()
    }
}

impl WasmPool {
    /// A pool over `engine`, loading cold modules through `cache`.
    pub fn new(
        engine: WasmEngine,
        cache: Arc<AotCache>,
        config: WasmPoolConfig,
    ) -> Result<WasmPool> {
        config.validate()?;
        let book = TierBook::new(
            config.hot_capacity(),
            config.warm_capacity(),
            config.half_life.as_secs_f64(),
        );
        Ok(WasmPool {
            inner: Arc::new(PoolInner {
                engine,
                cache,
                config,
                state: Mutex::new(State {
                    book,
                    loaded: HashMap::new(),
                }),
                started: Instant::now(),
                served: Tier::ALL.map(|t| Counter::labelled(SERVED, "tier", t.name())),
                instantiations: Counter::new("tidepool_wasm_instantiations_total"),
                faults: Counter::new("tidepool_wasm_faults_total"),
                latencies: Tier::ALL.map(|t| LatencyHistogram::labelled(ACQUIRE, "tier", t.name())),
            }),
        })
    }

    /// Registers module `id` with its wasm bytes; it starts cold. Registering an
    /// id again replaces nothing and returns false.
    pub fn register(&self, id: &str, wasm: Vec<u8>, options: ModuleOptions) -> bool {
        let mut state = self.inner.lock();
        if !state.book.register(id) {
            return false;
        }
        state.loaded.insert(
            id.to_owned(),
            Loaded {
                wasm: Arc::new(wasm),
                options,
                pre: None,
                ready: Vec::new(),
            },
        );
        true
    }

    /// Starts the background task that rebalances every `promotion_interval` on
    /// the live clock; it ends when the pool is dropped.
    pub fn start_rebalancer(&self) -> tokio::task::JoinHandle<()> {
        let weak: Weak<PoolInner> = Arc::downgrade(&self.inner);
        let interval = self.inner.config.promotion_interval;
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(interval);
            ticks.tick().await;
            loop {
                ticks.tick().await;
                let Some(inner) = weak.upgrade() else { return };
                let pool = WasmPool { inner };
                let now = pool.now();
                if let Err(e) = tokio::task::spawn_blocking(move || pool.rebalance_at(now)).await {
                    tracing::warn!(error = %e, "wasm rebalance task failed");
                }
            }
        })
    }

    fn now(&self) -> f64 {
        self.inner.started.elapsed().as_secs_f64()
    }

    /// A lease on an instance of module `id`, on the live clock.
    pub fn acquire(&self, id: &str) -> Result<WasmLease> {
        self.acquire_at(id, self.now())
    }

    /// Re-ranks modules on the live clock.
    pub fn rebalance(&self) -> Result<()> {
        self.rebalance_at(self.now())
    }

    /// [`acquire`](WasmPool::acquire) at time `now` of a caller's clock (in
    /// half-life units of that clock): for deterministic workloads.
    pub fn acquire_at(&self, id: &str, now: f64) -> Result<WasmLease> {
        let t0 = Instant::now();
        let inner = &self.inner;
        enum Plan {
            Ready(Ready),
            Instantiate(InstancePre<HostState>),
            Load(Arc<Vec<u8>>),
        }
        let (plan, options) = {
            let mut state = inner.lock();
            let State { book, loaded } = &mut *state;
            let unknown = || Error::Wasm {
                module: id.to_owned(),
                fault: WasmFault::Usage,
                message: "no module registered under this id".into(),
            };
            book.touch(id, now).ok_or_else(unknown)?;
            let slot = loaded.get_mut(id).ok_or_else(unknown)?;
            let plan = match (slot.ready.pop(), &slot.pre) {
                (Some(ready), _) => Plan::Ready(ready),
                (None, Some(pre)) => Plan::Instantiate(pre.clone()),
                (None, None) => Plan::Load(slot.wasm.clone()),
            };
            (plan, slot.options)
        };
        let (ready, served) = match plan {
            Plan::Ready(ready) => (ready, Tier::Hot),
            Plan::Instantiate(pre) => (inner.instantiate(id, &pre)?, Tier::Warm),
            Plan::Load(wasm) => {
                let (module, _outcome): (_, CacheOutcome) =
                    inner.cache.load(&inner.engine, id, &wasm)?;
                let pre = inner.engine.prepare(id, &module)?;
                let ready = inner.instantiate(id, &pre)?;
                // Keep what the load produced if the module is admitted (or
                // became resident meanwhile); what a displaced module held is
                // dropped after the lock is released.
                let displaced = {
                    let mut state = inner.lock();
                    let State { book, loaded } = &mut *state;
                    let admission = match book.tier(id) {
                        Some(Tier::Hot | Tier::Warm) => Admission::Admitted,
                        _ => book.admit(id, now),
                    };
                    if admission != Admission::Refused {
                        if let Some(slot) = loaded.get_mut(id) {
                            slot.pre.get_or_insert(pre);
                        }
                    }
                    match admission {
                        Admission::Displacing(victim) => loaded
                            .get_mut(&victim)
                            .map(|slot| (slot.pre.take(), std::mem::take(&mut slot.ready))),
                        _ => None,
                    }
                };
                drop(displaced);
                (ready, Tier::Cold)
            }
        };
        inner.served[served.index()].incr();
        inner.latencies[served.index()].record(t0.elapsed());
        Ok(WasmLease {
            pool: self.inner.clone(),
            id: id.to_owned(),
            ready: Some(ready),
            served,
            stateless: options.stateless,
            faulted: false,
        })
    }

    /// [`rebalance`](WasmPool::rebalance) at time `now` of a caller's clock.
    pub fn rebalance_at(&self, now: f64) -> Result<()> {
        let inner = &self.inner;
        let (moves, to_load) = {
            let mut state = inner.lock();
            let moves = state.book.rebalance(now);
            let mut to_load = Vec::new();
            for m in &moves {
                let Some(slot) = state.loaded.get_mut(&m.id) else {
                    continue;
                };
                match m.to {
                    Tier::Cold => {
                        slot.pre = None;
                        slot.ready.clear();
                    }
                    Tier::Warm => slot.ready.clear(),
                    Tier::Hot => {}
                }
                if m.to != Tier::Cold && slot.pre.is_none() {
                    to_load.push((m.id.clone(), slot.wasm.clone()));
                }
            }
            (moves, to_load)
        };
        for (id, wasm) in to_load {
            let (module, _) = inner.cache.load(&inner.engine, &id, &wasm)?;
            let pre = inner.engine.prepare(&id, &module)?;
            if let Some(slot) = inner.lock().loaded.get_mut(&id) {
                slot.pre.get_or_insert(pre);
            }
        }
        // Fill every hot module's ready instance, outside the lock.
        let hot: Vec<(String, InstancePre<HostState>)> = {
            let state = inner.lock();
            state
                .loaded
                .iter()
                .filter(|(id, s)| state.book.tier(id) == Some(Tier::Hot) && s.ready.is_empty())
                .filter_map(|(id, s)| s.pre.clone().map(|p| (id.clone(), p)))
                .collect()
        };
        for (id, pre) in hot {
            let ready = inner.instantiate(&id, &pre)?;
            inner.put_ready(&id, ready);
        }
        if !moves.is_empty() {
            tracing::debug!(moves = moves.len(), "wasm tiers rebalanced");
        }
        Ok(())
    }

    /// Counters, tier sizes, promotions and demotions.
    pub fn stats(&self) -> WasmPoolStats {
        let state = self.inner.lock();
        let c = &self.inner.config;
        WasmPoolStats {
            capacity: [c.capacity, c.hot_capacity(), c.warm_capacity()],
            served: [
                self.inner.served[0].get(),
                self.inner.served[1].get(),
                self.inner.served[2].get(),
            ],
            modules: state.book.counts(),
            promotions: state.book.promotions,
            demotions: state.book.demotions,
            instantiations: self.inner.instantiations.get(),
            faults: self.inner.faults.get(),
        }
    }

    /// The tier of module `id` now.
    pub fn tier(&self, id: &str) -> Option<Tier> {
        self.inner.lock().book.tier(id)
    }

    /// Acquire latency of the acquisitions `tier` served, over the pool's life.
    pub fn acquire_latency(&self, tier: Tier) -> LatencySummary {
        self.inner.latencies[tier.index()].summary()
    }
}
