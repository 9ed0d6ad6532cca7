//! What opens more slots in a started browser without keeping it alive.

use std::sync::Arc;
use std::time::Instant;

use super::connection::Core;
use super::page::PageSetup;
use super::slot::Slot;
use crate::browser::placement::StartedBrowser;

/// A browser's room for more slots: the pool keeps one per browser it
/// started, and opens a slot in it while the browser lives, is not being
/// retired, and has fewer than `leases_per_browser` slots.
#[derive(Debug)]
pub(crate) struct Room {
    id: u64,
    /// The fleet endpoint the browser is on, in connect mode.
    pub(crate) fleet_index: Option<usize>,
    core: std::sync::Weak<Core>,
    pages: PageSetup,
}

impl StartedBrowser for Room {
    type Slot = Slot;

    /// Whether the browser is gone for good: closed, or its last slot ended.
    fn ended(&self) -> bool {
        self.core.strong_count() == 0
    }

    fn endpoint(&self) -> Option<usize> {
        self.fleet_index
    }

    /// A new, unprepared slot in the browser, if it has room under `max`
    /// slots and is neither dead nor being retired.
    fn open(&self, max: usize) -> Option<Slot> {
        let core = self.core.upgrade()?;
        // `core` itself counts one: the slots open are one fewer.
        if Arc::strong_count(&core) > max
            || core.draining.get().is_some()
            || core.dead.borrow().is_some()
        {
            return None;
        }
        let now = Instant::now();
        Some(Slot {
            id: self.id,
            core,
            last_used: now,
            last_checked: now,
            prepared: None,
            pages: self.pages.clone(),
            on_endpoint: None,
        })
    }
}

impl Slot {
    /// What opens more slots in this browser, without keeping it alive.
    pub(crate) fn room(&self) -> Room {
        Room {
            id: self.id,
            fleet_index: self.on_endpoint.as_ref().map(|s| s.index),
            core: Arc::downgrade(&self.core),
            pages: self.pages.clone(),
        }
    }
}
