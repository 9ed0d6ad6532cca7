use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use wasmtime::{
    Config, Engine, InstanceAllocationStrategy, InstancePre, Linker, Module,
    PoolingAllocationConfig, ResourceLimiter, Store, Trap,
};

use crate::error::{Error, Result, WasmFault};

/// How the shared [`WasmEngine`] is configured for serving.
///
/// # Example
///
/// ```
/// use tidepool_pools::wasm::{WasmEngine, WasmEngineConfig};
///
/// let engine = WasmEngine::new(WasmEngineConfig::default())?;
/// let module = engine.compile("doc", &wat::parse_str(r#"(module (func (export "one") (result i32) i32.const 1))"#).unwrap())?;
/// assert!(module.exports().any(|e| e.name() == "one"));
/// # Ok::<(), tidepool_pools::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct WasmEngineConfig {
    /// Instances alive at once across the engine (pooling allocator slots; default 256).
    pub max_instances: u32,
    /// Linear memory one guest may grow to (default 16 MiB). Growth beyond it
    /// traps with [`WasmFault::MemoryLimit`].
    pub max_memory_bytes: usize,
    /// A call that runs longer is interrupted (default 1 s).
    pub call_deadline: Duration,
    /// How often the epoch advances (default 1 ms): the granularity of deadlines.
    pub epoch_tick: Duration,
    /// Fuel per call, if set: a deterministic bound on guest work besides the deadline.
    pub fuel_per_call: Option<u64>,
}

impl Default for WasmEngineConfig {
    fn default() -> Self {
        WasmEngineConfig {
            max_instances: 256,
            max_memory_bytes: 16 << 20,
            call_deadline: Duration::from_secs(1),
            epoch_tick: Duration::from_millis(1),
            fuel_per_call: None,
        }
    }
}

impl WasmEngineConfig {
    /// Checks every field; the error names the field.
    pub fn validate(&self) -> Result<()> {
        let field = |name: &str, problem: &str| Err(Error::config(format!("wasm.{name}"), problem));
        if self.max_instances == 0 {
            return field("max_instances", "must be at least 1");
        }
        if self.max_memory_bytes < 65_536 {
            return field("max_memory_bytes", "must be at least one 64 KiB wasm page");
        }
        if self.call_deadline.is_zero() {
            return field("call_deadline", "must be greater than zero");
        }
        if self.epoch_tick.is_zero() || self.epoch_tick > self.call_deadline {
            return field(
                "epoch_tick",
                "must be greater than zero and no longer than call_deadline",
            );
        }
        if self.fuel_per_call == Some(0) {
            return field("fuel_per_call", "must be at least 1 (or unset)");
        }
        Ok(())
    }

    fn wasmtime_config(&self) -> Config {
        let mut pooling = PoolingAllocationConfig::default();
        pooling
            .total_core_instances(self.max_instances)
            .total_memories(self.max_instances)
            .total_tables(self.max_instances)
            .max_memory_size(self.max_memory_bytes)
            // Keeping a freed slot's memory resident saves the page faults a
            // fresh instance otherwise pays on first touch (measured: most of
            // the cost of a fresh instance over a reused one).
            .linear_memory_keep_resident(1 << 20);
        let mut config = Config::new();
        config
            .allocation_strategy(InstanceAllocationStrategy::Pooling(pooling))
            .memory_init_cow(true)
            .epoch_interruption(true)
            .consume_fuel(self.fuel_per_call.is_some());
        config
    }
}

/// The data each store carries: the memory limiter.
#[derive(Debug)]
pub struct HostState {
    max_memory_bytes: usize,
    memory_denied: bool,
}

impl ResourceLimiter for HostState {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.max_memory_bytes {
            self.memory_denied = true;
            // An error (not `Ok(false)`) makes the grow trap, so a guest that
            // ignores memory.grow's -1 still cannot run on without its memory.
            return Err(wasmtime::format_err!(
                "memory limit: growing to {desired} bytes, the limit is {}",
                self.max_memory_bytes
            ));
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= 100_000)
    }
}

/// One shared wasmtime engine configured for serving: pooling allocator,
/// epoch-based deadlines driven by a background ticker, per-store memory limits,
/// optional fuel.
///
/// A guest that traps, overruns its deadline or its memory limit yields an
/// [`Error::Wasm`] naming the module and the [`WasmFault`]; the instance it ran
/// in must not be used again (the pool discards it).
#[derive(Debug, Clone)]
pub struct WasmEngine {
    pub(crate) engine: Engine,
    pub(crate) linker: Arc<Linker<HostState>>,
    pub(crate) config: WasmEngineConfig,
    deadline_ticks: u64,
    _ticker: Arc<Ticker>,
}

#[derive(Debug)]
struct Ticker {
    stop: Arc<AtomicBool>,
}

impl Drop for Ticker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

impl WasmEngine {
    /// Builds the engine and starts its epoch ticker thread.
    pub fn new(config: WasmEngineConfig) -> Result<WasmEngine> {
        config.validate()?;
        let engine = Engine::new(&config.wasmtime_config()).map_err(|e| Error::Wasm {
            module: "<engine>".into(),
            fault: WasmFault::Compile,
            message: format!("configuring wasmtime: {e}"),
        })?;
        let stop = Arc::new(AtomicBool::new(false));
        let weak = engine.weak();
        let tick = config.epoch_tick;
        let stopping = stop.clone();
        std::thread::Builder::new()
            .name("tidepool-epoch".into())
            .spawn(move || {
                // The ticker is the clock of guest deadlines: it must run
                // whatever the async runtime is doing, so it is a plain thread
                // that sleeps one tick at a time, and it holds the engine only
                // weakly so it never keeps it alive.
                while !stopping.load(Ordering::Relaxed) {
                    std::thread::sleep(tick);
                    match weak.upgrade() {
                        Some(engine) => engine.increment_epoch(),
                        None => return,
                    }
                }
            })
            .map_err(|e| Error::Wasm {
                module: "<engine>".into(),
                fault: WasmFault::Compile,
                message: format!("starting the epoch ticker: {e}"),
            })?;
        let deadline_ticks = config
            .call_deadline
            .as_nanos()
            .div_ceil(tick.as_nanos())
            .max(1) as u64;
        Ok(WasmEngine {
            linker: Arc::new(Linker::new(&engine)),
            engine,
            config,
            deadline_ticks,
            _ticker: Arc::new(Ticker { stop }),
        })
    }

    /// The wasmtime engine.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Compiles `wasm` (binary) for module `id`.
    pub fn compile(&self, id: &str, wasm: &[u8]) -> Result<Module> {
        Module::new(&self.engine, wasm).map_err(|e| Error::Wasm {
            module: id.to_owned(),
            fault: WasmFault::Compile,
            message: format!("{e:#}"),
        })
    }

    /// Links `module` ahead of time: what the warm tier keeps.
    pub fn prepare(&self, id: &str, module: &Module) -> Result<InstancePre<HostState>> {
        self.linker
            .instantiate_pre(module)
            .map_err(|e| Error::Wasm {
                module: id.to_owned(),
                fault: WasmFault::Instantiate,
                message: format!("{e:#}"),
            })
    }

    /// A fresh store with this engine's limits.
    pub fn store(&self) -> Store<HostState> {
        let mut store = Store::new(
            &self.engine,
            HostState {
                max_memory_bytes: self.config.max_memory_bytes,
                memory_denied: false,
            },
        );
        store.limiter(|s| s as &mut dyn ResourceLimiter);
        store
    }

    /// Arms the deadline (and fuel) for the next call on `store`.
    pub fn arm(&self, store: &mut Store<HostState>) {
        store.set_epoch_deadline(self.deadline_ticks);
        if let Some(fuel) = self.config.fuel_per_call {
            let _ = store.set_fuel(fuel);
        }
    }

    /// Turns a wasmtime error from a call on `store` into an [`Error::Wasm`]
    /// naming the module and the cause.
    pub fn fault(&self, module: &str, store: &Store<HostState>, e: wasmtime::Error) -> Error {
        let fault = if store.data().memory_denied {
            WasmFault::MemoryLimit
        } else {
            match e.downcast_ref::<Trap>() {
                Some(Trap::Interrupt) => WasmFault::Deadline,
                Some(Trap::OutOfFuel) => WasmFault::OutOfFuel,
                Some(_) => WasmFault::Trap,
                None => WasmFault::Trap,
            }
        };
        Error::Wasm {
            module: module.to_owned(),
            fault,
            message: format!("{e:#}"),
        }
    }
}
