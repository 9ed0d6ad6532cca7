use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

use serde::Serialize;
use wasmtime::{Instance, InstancePre, Store, TypedFunc, WasmParams, WasmResults};

use super::cache::{AotCache, CacheOutcome};
use super::engine::{HostState, WasmEngine};
use super::tiers::{Tier, TierBook};
use crate::error::{Error, Result, WasmFault};

/// How the tiered pool splits its capacity and tracks demand.
///
/// # Example
///
/// ```
/// use tidepool::wasm::WasmPoolConfig;
///
/// let c = WasmPoolConfig { capacity: 40, ..WasmPoolConfig::default() };
/// assert_eq!((c.hot_capacity(), c.warm_capacity()), (10, 20));
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct WasmPoolConfig {
    /// Modules the pool is sized for (default 100).
    pub capacity: usize,
    /// Share of `capacity` kept hot, with ready instances (default 0.25).
    pub hot_fraction: f64,
    /// Share of `capacity` kept warm, as `InstancePre` (default 0.5); the rest is cold.
    pub warm_fraction: f64,
    /// Half-life of the access rate, in seconds of the live clock (default 30 s).
    pub half_life: Duration,
    /// How often the background task re-ranks modules (default 5 s).
    pub promotion_interval: Duration,
}

impl Default for WasmPoolConfig {
    fn default() -> Self {
        WasmPoolConfig {
            capacity: 100,
            hot_fraction: 0.25,
            warm_fraction: 0.5,
            half_life: Duration::from_secs(30),
            promotion_interval: Duration::from_secs(5),
        }
    }
}

impl WasmPoolConfig {
    /// Modules kept hot.
    pub fn hot_capacity(&self) -> usize {
        (self.capacity as f64 * self.hot_fraction).floor() as usize
    }

    /// Modules kept warm.
    pub fn warm_capacity(&self) -> usize {
        (self.capacity as f64 * self.warm_fraction).floor() as usize
    }

    /// Checks every field; the error names the field.
    pub fn validate(&self) -> Result<()> {
        let field =
            |name: &str, problem: String| Err(Error::config(format!("wasm_pool.{name}"), problem));
        if self.capacity == 0 {
            return field("capacity", "must be at least 1".into());
        }
        for (name, f) in [
            ("hot_fraction", self.hot_fraction),
            ("warm_fraction", self.warm_fraction),
        ] {
            if !(0.0..=1.0).contains(&f) {
                return field(name, format!("must be within 0..=1, got {f}"));
            }
        }
        if self.hot_fraction + self.warm_fraction > 1.0 {
            return field(
                "warm_fraction",
                "hot_fraction + warm_fraction exceed 1".into(),
            );
        }
        if self.half_life.is_zero() {
            return field("half_life", "must be greater than zero".into());
        }
        if self.promotion_interval.is_zero() {
            return field("promotion_interval", "must be greater than zero".into());
        }
        Ok(())
    }
}

/// How a module may be served.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ModuleOptions {
    /// The module keeps no state between calls, so one instance may serve
    /// lease after lease (as long as it never trapped). Off by default: each
    /// lease gets a fresh instance and nothing leaks between leases.
    pub stateless: bool,
}

/// Counters and per-tier latencies of a [`WasmPool`].
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct WasmPoolStats {
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

struct Ready {
    store: Store<HostState>,
    instance: Instance,
}

struct Slot {
    wasm: Arc<Vec<u8>>,
    options: ModuleOptions,
    pre: Option<InstancePre<HostState>>,
    ready: Vec<Ready>,
}

struct State {
    book: TierBook,
    slots: HashMap<String, Slot>,
}

pub(crate) struct PoolInner {
    engine: WasmEngine,
    cache: Arc<AotCache>,
    config: WasmPoolConfig,
    state: Mutex<State>,
    started: Instant,
    served: [AtomicU64; 3],
    instantiations: AtomicU64,
    faults: AtomicU64,
    latencies: Mutex<[Vec<f64>; 3]>,
}

/// WASM instances kept at the cheapest tier their demand justifies.
///
/// `acquire(id)` tries hot (a ready instance), then warm (instantiate an
/// `InstancePre`), then cold (deserialize from the AOT cache, or compile). The
/// access rate of each module is a time-decayed count of its acquisitions;
/// [`rebalance`](WasmPool::rebalance), run by a background task every
/// `promotion_interval`, moves the most wanted modules up and the rest down,
/// within the tier capacities. A lease gets a fresh instance (unless the module
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
                    slots: HashMap::new(),
                }),
                started: Instant::now(),
                served: Default::default(),
                instantiations: AtomicU64::new(0),
                faults: AtomicU64::new(0),
                latencies: Mutex::new(Default::default()),
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
        state.slots.insert(
            id.to_owned(),
            Slot {
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
            let State { book, slots } = &mut *state;
            let unknown = || Error::Wasm {
                module: id.to_owned(),
                fault: WasmFault::Usage,
                message: "no module registered under this id".into(),
            };
            book.touch(id, now).ok_or_else(unknown)?;
            let slot = slots.get_mut(id).ok_or_else(unknown)?;
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
                // Keep what the load produced if the module was promoted
                // meanwhile, or if the warm tier has room for it.
                let mut state = inner.lock();
                let State { book, slots } = &mut *state;
                let keep =
                    matches!(book.tier(id), Some(Tier::Hot | Tier::Warm)) || book.admit_warm(id);
                if let (true, Some(slot)) = (keep, slots.get_mut(id)) {
                    slot.pre.get_or_insert(pre);
                }
                (ready, Tier::Cold)
            }
        };
        inner.served[served.index()].fetch_add(1, Ordering::Relaxed);
        if let Ok(mut l) = inner.latencies.lock() {
            l[served.index()].push(t0.elapsed().as_secs_f64() * 1e6);
        }
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
                let Some(slot) = state.slots.get_mut(&m.id) else {
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
            if let Some(slot) = inner.lock().slots.get_mut(&id) {
                slot.pre.get_or_insert(pre);
            }
        }
        // Fill every hot module's ready instance, outside the lock.
        let hot: Vec<(String, InstancePre<HostState>)> = {
            let state = inner.lock();
            state
                .slots
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
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        WasmPoolStats {
            served: [
                get(&self.inner.served[0]),
                get(&self.inner.served[1]),
                get(&self.inner.served[2]),
            ],
            modules: state.book.counts(),
            promotions: state.book.promotions,
            demotions: state.book.demotions,
            instantiations: get(&self.inner.instantiations),
            faults: get(&self.inner.faults),
        }
    }

    /// The tier of module `id` now.
    pub fn tier(&self, id: &str) -> Option<Tier> {
        self.inner.lock().book.tier(id)
    }

    /// Acquire latencies so far, in microseconds, for the acquisitions `tier` served.
    pub fn latencies_us(&self, tier: Tier) -> Vec<f64> {
        self.inner
            .latencies
            .lock()
            .map(|l| l[tier.index()].clone())
            .unwrap_or_default()
    }
}

impl PoolInner {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn instantiate(&self, id: &str, pre: &InstancePre<HostState>) -> Result<Ready> {
        let mut store = self.engine.store();
        let instance = pre.instantiate(&mut store).map_err(|e| Error::Wasm {
            module: id.to_owned(),
            fault: WasmFault::Instantiate,
            message: format!("{e:#}"),
        })?;
        self.instantiations.fetch_add(1, Ordering::Relaxed);
        Ok(Ready { store, instance })
    }

    fn put_ready(&self, id: &str, ready: Ready) {
        let mut state = self.lock();
        let hot = state.book.tier(id) == Some(Tier::Hot);
        if let Some(slot) = state.slots.get_mut(id) {
            if hot && slot.ready.is_empty() {
                slot.ready.push(ready);
            }
        }
    }

    /// Where a lease's instance goes when the lease ends: back to a hot
    /// stateless module's ready list, or dropped; a hot module then gets a
    /// fresh instance, made here, off the acquire path.
    fn release(&self, id: &str, ready: Ready, stateless: bool, faulted: bool) {
        let (hot, pre) = {
            let state = self.lock();
            let hot = state.book.tier(id) == Some(Tier::Hot);
            (hot, state.slots.get(id).and_then(|s| s.pre.clone()))
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

/// One instance of a module, for exclusive use; returned to the pool on drop.
#[must_use = "dropping a lease returns its instance at once"]
pub struct WasmLease {
    pool: Arc<PoolInner>,
    id: String,
    ready: Option<Ready>,
    served: Tier,
    stateless: bool,
    faulted: bool,
}

impl std::fmt::Debug for WasmLease {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WasmLease")
            .field("module", &self.id)
            .field("served", &self.served)
            .field("faulted", &self.faulted)
            .finish()
    }
}

impl WasmLease {
    /// The tier that served this lease.
    pub fn tier(&self) -> Tier {
        self.served
    }

    /// The module's id.
    pub fn module_id(&self) -> &str {
        &self.id
    }

    /// Whether a call on this instance faulted; it will not be reused.
    pub fn faulted(&self) -> bool {
        self.faulted
    }

    fn ready(&mut self) -> Result<&mut Ready> {
        if self.faulted {
            return Err(Error::Wasm {
                module: self.id.clone(),
                fault: WasmFault::Usage,
                message: "this instance faulted earlier and must not be called again".into(),
            });
        }
        // Present from acquire until Drop takes it.
        Ok(self
            .ready
            .as_mut()
            .expect("a live lease holds its instance"))
    }

    fn typed<P: WasmParams, R: WasmResults>(&mut self, name: &str) -> Result<TypedFunc<P, R>> {
        let id = self.id.clone();
        let ready = self.ready()?;
        ready
            .instance
            .get_typed_func::<P, R>(&mut ready.store, name)
            .map_err(|e| Error::Wasm {
                module: id,
                fault: WasmFault::Usage,
                message: format!("export {name:?}: {e:#}"),
            })
    }

    /// Calls export `name` with the engine's deadline (and fuel). A fault marks
    /// the instance so it is never used again.
    pub fn call<P: WasmParams, R: WasmResults>(&mut self, name: &str, params: P) -> Result<R> {
        let func = self.typed::<P, R>(name)?;
        let engine = self.pool.engine.clone();
        let id = self.id.clone();
        let ready = self.ready()?;
        engine.arm(&mut ready.store);
        match func.call(&mut ready.store, params) {
            Ok(r) => Ok(r),
            Err(e) => {
                let err = engine.fault(&id, &ready.store, e);
                self.faulted = true;
                self.pool.faults.fetch_add(1, Ordering::Relaxed);
                Err(err)
            }
        }
    }

    /// Copies `bytes` into guest memory through the module's `alloc(len) -> ptr`
    /// export and returns the pointer.
    pub fn write_input(&mut self, bytes: &[u8]) -> Result<u32> {
        let len = u32::try_from(bytes.len()).map_err(|_| Error::Wasm {
            module: self.id.clone(),
            fault: WasmFault::Usage,
            message: format!(
                "input of {} bytes is larger than a wasm32 address space",
                bytes.len()
            ),
        })?;
        let ptr: u32 = self.call("alloc", len)?;
        let id = self.id.clone();
        let ready = self.ready()?;
        let memory = ready
            .instance
            .get_memory(&mut ready.store, "memory")
            .ok_or_else(|| Error::Wasm {
                module: id.clone(),
                fault: WasmFault::Usage,
                message: "no exported memory named \"memory\"".into(),
            })?;
        memory
            .write(&mut ready.store, ptr as usize, bytes)
            .map_err(|e| Error::Wasm {
                module: id,
                fault: WasmFault::Usage,
                message: format!("writing {len} bytes at {ptr}: {e}"),
            })?;
        Ok(ptr)
    }
}

impl Drop for WasmLease {
    fn drop(&mut self) {
        // Taken exactly once: a lease returns its instance once, however it ends.
        if let Some(ready) = self.ready.take() {
            self.pool
                .release(&self.id, ready, self.stateless, self.faulted);
        }
    }
}
