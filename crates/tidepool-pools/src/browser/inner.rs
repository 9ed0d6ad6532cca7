//! What [`BrowserPool`](super::BrowserPool), its leases and its maintenance
//! loop share: the config, the slots, the browsers started, the memory watch
//! and the recorder. No lock here is held across a CDP call.

use std::path::PathBuf;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use tokio::sync::Semaphore;
use tokio::task::JoinHandle;

use super::alive::Alive;
use super::chromium::room::Room;
use super::chromium::sampler::Members;
use super::chromium::slot::Slot;
use super::config::BrowserPoolConfig;
use super::fleet::Fleet;
use super::hooks::Hooks;
use super::slots::{Slots, StateGuard};
use super::stats::BrowserRecorder;
use crate::memory::MemoryPolicy;

/// The pool's shared state: its config, the idle queue and the counts of
/// every slot, the recorder and the memory watch. [`BrowserPool`](super::BrowserPool)
/// and each [`Lease`](super::Lease) hold it.
#[derive(Debug)]
pub(crate) struct PoolInner {
    pub(crate) config: BrowserPoolConfig,
    pub(super) executable: Option<PathBuf>,
    pub(super) id: u64,
    /// The idle queue and the count of every slot.
    pub(crate) slots: Arc<Slots<Slot>>,
    pub(crate) permits: Arc<Semaphore>,
    /// Browsers started and not yet dropped; see [`AliveToken`](super::alive::AliveToken).
    pub(super) alive: Arc<Alive>,
    pub(crate) recorder: BrowserRecorder,
    /// Launched browsers under memory watch.
    pub(crate) members: Members,
    /// The memory limits of one browser: the config's, per lease, times
    /// `leases_per_browser`.
    pub(crate) browser_memory: Option<MemoryPolicy>,
    /// Every browser started, for opening more slots in it; ended ones are
    /// dropped as they are found.
    pub(super) rooms: Mutex<Vec<Room>>,
    pub(crate) started: Instant,
    pub(super) next_browser: AtomicU64,
    pub(super) next_lease: AtomicU64,
    pub(super) maintainer: Mutex<Option<JoinHandle<()>>>,
    pub(crate) runtime: tokio::runtime::Handle,
    /// The service's lifecycle hooks.
    pub(super) hooks: Hooks,
    /// The remote endpoints and where each stands, in connect mode.
    pub(crate) fleet: Option<Arc<Fleet>>,
}

impl PoolInner {
    /// The slots' state, locked.
    pub(super) fn lock(&self) -> StateGuard<'_, Slot> {
        self.slots.lock()
    }

    /// Whether `close()` has begun.
    pub(crate) fn is_closed(&self) -> bool {
        self.slots.is_closed()
    }

    /// Takes the idle slots of browser `id` out of the idle queue.
    pub(crate) fn take_idle(&self, id: u64) -> Vec<Slot> {
        self.lock().take_idle_where(|i| i.id == id)
    }

    pub(super) fn budget(&self) -> Option<u64> {
        self.config
            .memory
            .as_ref()
            .and_then(|m| m.pool_budget_bytes)
    }

    /// Whether the pool's browsers together use the budget up: then nothing
    /// is launched until one leaves or a sample finds them smaller.
    pub(super) fn over_budget(&self) -> bool {
        self.budget()
            .is_some_and(|budget| self.members.total_bytes() >= budget)
    }

    /// After each sample, under a budget with room: acquirers waiting on it
    /// look again. (`notify_waiters` wakes only those waiting now and stores
    /// nothing, so with no waiter it costs nothing.)
    pub(crate) fn budget_sampled(&self) {
        if self.budget().is_some() && !self.over_budget() {
            self.slots.changed.notify_waiters();
        }
    }
}
