//! `close()`: no slot joins the idle queue again, the idle ones retire,
//! and the pool waits until every browser it started has ended. Written
//! once over the [`Backend`].

use std::sync::Arc;
use std::time::Duration;

use super::backend::Backend;
use super::stats::RetireReason;

/// How long a retiring browser gets to close by itself before SIGKILL.
pub(super) const CLOSE_GRACE: Duration = Duration::from_secs(2);

/// How often `close()` looks again while starts are pending.
const RECHECK: Duration = Duration::from_millis(20);

/// Closes the pool behind `backend`: refuses new acquires, retires the idle
/// slots, and waits (up to `acquire_timeout` and three grace periods) for
/// leased and starting slots to come back and every browser to end.
/// Returns how many browsers were still alive at the deadline.
pub(crate) async fn close_slots<B: Backend>(backend: &Arc<B>) -> usize {
    let idle = backend.slots().close();
    backend.permits().close();
    backend.stop_background();
    for slot in idle {
        backend.retire(slot, RetireReason::Closed);
    }
    let deadline = tokio::time::Instant::now() + backend.config().acquire_timeout + CLOSE_GRACE * 3;
    loop {
        let alive = backend.alive();
        let drained = alive.drained();
        tokio::pin!(drained);
        drained.as_mut().enable();
        let left = alive.count() + backend.slots().lock().starting();
        if left == 0 {
            return 0;
        }
        let now = tokio::time::Instant::now();
        if now >= deadline {
            return left;
        }
        // A start given up gives its count back without a browser ending:
        // nothing wakes this for it, so it looks again every few ms.
        let _ = tokio::time::timeout_at(deadline.min(now + RECHECK), drained).await;
    }
}
