//! Which browsers are still alive: a token each started browser holds
//! until it has ended, and the count `close()` waits to see at zero.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use tokio::sync::Notify;

/// How many started browsers exist; `close` waits for zero.
#[derive(Debug, Default)]
pub(crate) struct Alive {
    count: std::sync::atomic::AtomicUsize,
    drained: Notify,
}

impl Alive {
    /// Browsers started and not yet dropped.
    pub(crate) fn count(&self) -> usize {
        self.count.load(Ordering::SeqCst)
    }

    /// Completes when the count next drops to zero.
    pub(crate) fn drained(&self) -> tokio::sync::futures::Notified<'_> {
        self.drained.notified()
    }
}

/// Held by each started [`Slot`](super::chromium::slot::Slot): counted alive until the slot is
/// dropped, which happens only after it was shut down (or killed by its
/// process guard), so `close` cannot miss a browser or wait for a ghost.
#[derive(Debug)]
pub(crate) struct AliveToken(Arc<Alive>);

impl AliveToken {
    pub(crate) fn new(alive: &Arc<Alive>) -> AliveToken {
        alive.count.fetch_add(1, Ordering::SeqCst);
        AliveToken(alive.clone())
    }
}

impl Drop for AliveToken {
    fn drop(&mut self) {
        if self.0.count.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.0.drained.notify_waiters();
        }
    }
}
