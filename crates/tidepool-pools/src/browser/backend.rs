//! The seam between the pool's core and what it pools: what the acquire,
//! the release and `close()` ask of a slot, and nothing else.
//!
//! The core (`acquire`, `release`, `close`) is written once over
//! [`Backend`]. Chromium's implementation is the pool itself
//! (`chromium.rs`); the tests' is a scripted fake (`fake.rs`) whose every
//! step answers Ok, Err, slowly or never, so the core's counting,
//! cancellation and shutdown are tested in milliseconds without a browser.
//!
//! What the core promises a backend: a slot it is handed is owned by one
//! task at a time; it is counted by a [`Reservation`](super::slots::Reservation)
//! from the moment it is taken or started until it is idle again or given
//! to [`Backend::retire`]; every step it awaits is bounded by a deadline of
//! the core's own (the acquire's, the health check's, [`recycle_timeout`]),
//! so a backend that never answers delays a caller, never wedges the pool.
//!
//! What a backend promises the core: [`Backend::retire`] ends the slot
//! (its browser's [`AliveToken`](super::alive::AliveToken) drops) within a
//! bounded time, whatever the browser does.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;

use super::alive::Alive;
use super::config::BrowserPoolConfig;
use super::placement::EndpointLoad;
use super::slots::Slots;
use super::stats::{BrowserRecorder, RetireReason};
use super::verdict::{Checkpoint, Facts};
use crate::error::Result;

/// What the core asks of the things it pools. Crate-private: Chromium's
/// implementation and the tests' fake are its only ones.
pub(crate) trait Backend: Send + Sync + Sized + 'static {
    /// One lease's place.
    type Slot: Send + 'static;
    /// What an acquire asks its slot to be readied to.
    type Ask: Send + Sync;
    /// What a lease leaves for its slot's recycling.
    type Used: Default + Send + 'static;

    // The shared state the core works on.

    /// The pool's config: its limits, deadlines and retention.
    fn config(&self) -> &BrowserPoolConfig;
    /// The idle queue and the count of every slot.
    fn slots(&self) -> &Arc<Slots<Self::Slot>>;
    /// One permit per lease at once (`max_size`), in FIFO order.
    fn permits(&self) -> &Arc<Semaphore>;
    /// Browsers started and not yet ended: `close()` waits for none.
    fn alive(&self) -> &Arc<Alive>;
    /// The counters the core keeps (acquires, waits, timeouts).
    fn recorder(&self) -> &BrowserRecorder;
    /// Where a released slot's recycling runs (a lease may drop outside
    /// the runtime).
    fn runtime(&self) -> &tokio::runtime::Handle;

    // What the core reads of a slot, without a call to its browser.

    /// The facts of `slot` for a [`verdict`](super::verdict::verdict) at `at`.
    fn facts(&self, slot: &Self::Slot, closed: bool, at: Checkpoint) -> Facts;
    /// Whether the slot's browser is found gone (crashed, evicted, lost).
    fn died(&self, slot: &Self::Slot) -> bool;
    /// Before the acquire locks the slots: whether a new slot may start
    /// below `max_size` (the memory budget and the fleet's caps allow it),
    /// and each fleet endpoint's load.
    fn outlook(&self) -> Outlook;
    /// The fleet endpoint the slot is on.
    fn endpoint(slot: &Self::Slot) -> Option<usize>;

    // The steps, each awaited under a deadline of the core's.

    /// Opens a new slot, in a started browser with room or a new one;
    /// `None` when no endpoint has room for it now.
    fn open(self: &Arc<Self>) -> impl Future<Output = Result<Option<Self::Slot>>> + Send;
    /// Checks the slot's browser answers.
    fn probe<'a>(
        &'a self,
        slot: &'a mut Self::Slot,
    ) -> impl Future<Output = Result<()>> + Send + 'a;
    /// Readies the slot to what `ask` wants; `fresh` when it was opened for
    /// this acquire, readied to the pool's default already.
    fn ready<'a>(
        &'a self,
        slot: &'a mut Self::Slot,
        ask: &'a Self::Ask,
        fresh: bool,
    ) -> impl Future<Output = Result<()>> + Send + 'a;
    /// The service's hook before a lease gets the slot.
    fn before_lease<'a>(
        &'a self,
        slot: &'a Self::Slot,
    ) -> impl Future<Output = Result<()>> + Send + 'a;
    /// A lease ended: count its use and stamp the time.
    fn count_use(&self, slot: &mut Self::Slot);
    /// The service's hook after a lease ends.
    fn after_release<'a>(
        &'a self,
        slot: &'a Self::Slot,
    ) -> impl Future<Output = Result<()>> + Send + 'a;
    /// Readies a released slot for the next lease; on failure, why it
    /// retires.
    fn recycle<'a>(
        &'a self,
        slot: &'a mut Self::Slot,
        used: Self::Used,
    ) -> impl Future<Output = std::result::Result<(), RetireReason>> + Send + 'a;
    /// Undoes what the lease left that outlives the slot's retirement (a
    /// context in a browser the pool does not own).
    fn leave<'a>(&'a self, slot: &'a mut Self::Slot) -> impl Future<Output = ()> + Send + 'a;
    /// Ends the slot in the background, with its browser when `reason` is
    /// the browser's; the slot is no longer counted.
    fn retire(self: &Arc<Self>, slot: Self::Slot, reason: RetireReason);

    // Leases.

    /// A lease got the slot.
    fn lease_started(&self, _slot: &Self::Slot) {}
    /// The slot's lease ended.
    fn lease_ended(&self, _slot: &Self::Slot) {}
    /// Stops the background work (maintenance) at `close()`.
    fn stop_background(&self) {}
}

/// What an acquire reads before it locks the slots.
#[derive(Debug, Clone, Default)]
pub(crate) struct Outlook {
    /// The budget and the fleet leave room for a new slot.
    pub(crate) may_start: bool,
    /// Each fleet endpoint's load, in connect mode.
    pub(crate) loads: Option<Vec<EndpointLoad>>,
}

impl Outlook {
    /// The load of the endpoint at `index`, when the pool has a fleet.
    pub(crate) fn load(&self, index: Option<usize>) -> Option<EndpointLoad> {
        self.loads.as_ref()?.get(index?).copied()
    }
}

/// How long a released slot's recycling may take before the core gives up
/// on it and retires it: a few CDP round trips, each already bounded by
/// `cdp_timeout`, so a backend that stops answering cannot hold a slot busy
/// forever.
pub(crate) fn recycle_timeout(config: &BrowserPoolConfig) -> Duration {
    config.cdp_timeout * 3
}
