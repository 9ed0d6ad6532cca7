//! A lease of one WASM instance.

use std::sync::Arc;

use wasmtime::{TypedFunc, WasmParams, WasmResults};

use super::inner::{PoolInner, Ready};
use super::tiers::Tier;
use crate::error::{Error, Result, WasmFault};

/// One instance of a module, for exclusive use; returned to the pool on drop.
#[must_use = "dropping a lease returns its instance at once"]
pub struct WasmLease {
    pub(super) pool: Arc<PoolInner>,
    pub(super) id: String,
    pub(super) ready: Option<Ready>,
    pub(super) served: Tier,
    pub(super) stateless: bool,
    pub(super) faulted: bool,
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
                self.pool.faults.incr();
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
