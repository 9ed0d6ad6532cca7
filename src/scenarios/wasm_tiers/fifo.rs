//! The stand-ins the tiered pool is compared with: a FIFO pool of a given
//! residency, and the oracle of that residency.

use super::*;
use tidepool_pools::Error as PoolError;

/// A store and its instance, ready to call.
pub(super) type Ready = (wasmtime::Store<HostState>, wasmtime::Instance);

/// A pool with the tiered pool's residency but no frequency tracking: the
/// `resident` modules most recently loaded stay deserialised (as the tiered
/// pool's hot plus warm modules do), the newest `hot` of them keep a ready
/// instance (as its hot modules do), and the oldest is evicted first in,
/// first out; a miss loads from the same AOT cache.
///
/// As an oracle ([`FifoPool::oracle`]) it keeps instead the `resident` most
/// popular modules of the distribution in force, known in advance, and
/// never another: for independent draws no policy keeps a better set of that
/// size, so its total bounds what a pool of that residency can expect.
pub(super) struct FifoPool<'a> {
    pub(super) engine: &'a WasmEngine,
    pub(super) cache: &'a AotCache,
    pub(super) hot: usize,
    pub(super) resident: usize,
    /// Load order, newest last.
    pub(super) order: VecDeque<String>,
    pub(super) loaded: HashMap<String, (wasmtime::InstancePre<HostState>, Option<Ready>)>,
    /// For the oracle: the acquisition at which popularity shifts, and the
    /// acquisitions served so far.
    pub(super) oracle: Option<(usize, usize)>,
    /// Acquisitions that loaded from the AOT cache.
    pub(super) misses: usize,
    /// Acquire time, ms, and acquisitions, by how each was served: a ready
    /// instance, an instance made from a loaded module, a load.
    pub(super) by_path: [(f64, u64); 3],
}

impl<'a> FifoPool<'a> {
    /// A FIFO pool with the hot capacity of a tiered pool of `config`,
    /// keeping `resident` modules deserialised.
    pub(super) fn new(
        engine: &'a WasmEngine,
        cache: &'a AotCache,
        config: &WasmPoolConfig,
        resident: usize,
    ) -> Self {
        FifoPool {
            engine,
            cache,
            hot: config.hot_capacity(),
            resident: resident.max(config.hot_capacity()),
            order: VecDeque::new(),
            loaded: HashMap::new(),
            oracle: None,
            misses: 0,
            by_path: [(0.0, 0); 3],
        }
    }

    /// The oracle of the same residency for a trace whose popularity shifts
    /// at `shift_at` (see [`zipf_trace`]).
    pub(super) fn oracle(
        engine: &'a WasmEngine,
        cache: &'a AotCache,
        config: &WasmPoolConfig,
        resident: usize,
        shift_at: usize,
    ) -> Self {
        FifoPool {
            oracle: Some((shift_at, 0)),
            ..FifoPool::new(engine, cache, config, resident)
        }
    }

    /// The oracle's acquire: module `m` stays loaded when its popularity rank
    /// is below `resident`, and keeps a ready instance below `hot`. What the
    /// old distribution's set held is dropped at the shift, untimed: the
    /// bound only gets lower for it.
    pub(super) fn acquire_as_oracle(&mut self, m: usize, id: &str, wasm: &[u8]) -> Result<Ready> {
        let Some((shift_at, served)) = self.oracle.as_mut() else {
            return self.acquire(id, wasm);
        };
        if *served == *shift_at {
            self.loaded.clear();
        }
        let shifted = *served >= *shift_at;
        *served += 1;
        let rank = if shifted {
            (m + MODULES - MODULES / 2) % MODULES
        } else {
            m
        };
        if let Some(hit) = self.hit(id) {
            return hit;
        }
        let (pre, ready) = self.load(id, wasm)?;
        if rank < self.resident {
            self.loaded.insert(id.to_owned(), (pre, None));
        }
        Ok(ready)
    }

    /// A loaded module's ready instance, or a fresh one from its
    /// `InstancePre`; `None` when the module is not loaded.
    fn hit(&mut self, id: &str) -> Option<Result<Ready>> {
        let (pre, ready) = self.loaded.get_mut(id)?;
        Some(match ready.take() {
            Some(ready) => Ok(ready),
            None => {
                let pre = pre.clone();
                self.instantiate(id, &pre)
            }
        })
    }

    /// A miss: the module from the AOT cache, prepared, and an instance of it.
    fn load(&mut self, id: &str, wasm: &[u8]) -> Result<(wasmtime::InstancePre<HostState>, Ready)> {
        self.misses += 1;
        let (module, _) = self.cache.load(self.engine, id, wasm)?;
        let pre = self.engine.prepare(id, &module)?;
        let ready = self.instantiate(id, &pre)?;
        Ok((pre, ready))
    }

    pub(super) fn acquire(&mut self, id: &str, wasm: &[u8]) -> Result<Ready> {
        if let Some(hit) = self.hit(id) {
            return hit;
        }
        let (pre, ready) = self.load(id, wasm)?;
        self.order.push_back(id.to_owned());
        if self.order.len() > self.resident {
            if let Some(old) = self.order.pop_front() {
                self.loaded.remove(&old);
            }
        }
        // The module that just left the newest `hot` drops its ready instance.
        if let Some(cooled) = self.order.len().checked_sub(self.hot + 1) {
            if let Some(slot) = self.loaded.get_mut(&self.order[cooled]) {
                slot.1 = None;
            }
        }
        self.loaded.insert(id.to_owned(), (pre, None));
        Ok(ready)
    }

    /// Refills the module's ready instance if it is among the newest `hot`
    /// (for the oracle: the `hot` most popular), as the tiered pool does for
    /// a hot module on release.
    pub(super) fn release(&mut self, m: usize, id: &str) -> Result<()> {
        let hot = match self.oracle {
            Some((shift_at, served)) => {
                let rank = if served > shift_at {
                    (m + MODULES - MODULES / 2) % MODULES
                } else {
                    m
                };
                rank < self.hot
            }
            None => self.order.iter().rev().take(self.hot).any(|o| o == id),
        };
        if let (true, Some((pre, None))) = (hot, self.loaded.get(id)) {
            let pre = pre.clone();
            let ready = self.instantiate(id, &pre)?;
            if let Some(slot) = self.loaded.get_mut(id) {
                slot.1 = Some(ready);
            }
        }
        Ok(())
    }

    pub(super) fn instantiate(
        &self,
        id: &str,
        pre: &wasmtime::InstancePre<HostState>,
    ) -> Result<Ready> {
        let mut store = self.engine.store();
        let instance = pre.instantiate(&mut store).map_err(|e| PoolError::Wasm {
            module: id.to_owned(),
            fault: crate::WasmFault::Instantiate,
            message: e.to_string(),
        })?;
        Ok((store, instance))
    }

    /// One acquisition of module `m`, call and release; returns the acquire
    /// time in ms.
    pub(super) fn serve(&mut self, m: usize, id: &str, wasm: &[u8]) -> Result<f64> {
        let path = match self.loaded.get(id) {
            Some((_, Some(_))) => 0,
            Some((_, None)) => 1,
            None => 2,
        };
        let t = Instant::now();
        let (mut store, instance) = self.acquire_as_oracle(m, id, wasm)?;
        let took = t.elapsed().as_secs_f64() * 1e3;
        self.by_path[path].0 += took;
        self.by_path[path].1 += 1;
        let f = instance
            .get_typed_func::<(), i32>(&mut store, "id")
            .map_err(|e| PoolError::Wasm {
                module: id.to_owned(),
                fault: crate::WasmFault::Usage,
                message: e.to_string(),
            })?;
        engine_call(self.engine, &mut store, &f, id)?;
        self.release(m, id)?;
        Ok(took)
    }
}
