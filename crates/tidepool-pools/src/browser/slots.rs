//! The counts of a pool's slots and the reservations that hold them. No CDP
//! here: the item a slot holds is a type parameter, a browser's slot in the
//! pool and a number in this file's tests.
//!
//! The browser pool's words, used across `browser/`:
//! - a **browser** is one Chromium, launched or connected to;
//! - a **slot** is one lease's place in a browser: an incognito context and
//!   its page (a browser holds `leases_per_browser` of them);
//! - a slot counted against `max_size` is idle (in the queue) or in one
//!   [`Phase`]: starting, busy (being probed or readied) or leased;
//! - a [`Reservation`] is the count of one slot in one phase: made where the
//!   slot is counted, given back when it drops, so a cancelled acquire or a
//!   panicking task cannot leave a count behind;
//! - **preparing** a slot makes its context and blank page; **readying**
//!   brings a prepared slot to what a lease asks (a wipe, a new context);
//!   **recycling** readies it after a lease; **retiring** shuts it down,
//!   with its browser when the reason is the browser's;
//! - the **backend** (`backend.rs`) is what the acquire, the release and
//!   `close()` ask of a slot: Chromium's (`chromium.rs`) in the pool, a
//!   scripted fake (`fake.rs`) in the tests.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::Notify;

use crate::recording::gauge_add;

/// Where a slot counted against `max_size`, and not idle, is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    /// Its browser is being launched or connected, or the slot opened.
    Starting,
    /// Taken out of idle or returned by a lease: probed or readied.
    Busy,
    /// Held by a lease.
    Leased,
}

/// A pool's slots: the idle queue, the counts of every phase, and the
/// signals their changes send. Shared by the pool, its leases and its
/// maintainer.
#[derive(Debug)]
pub(crate) struct Slots<T> {
    state: Mutex<State<T>>,
    /// An idle slot arrived or a counted one was given back.
    pub(crate) changed: Notify,
    /// Something for the maintainer to do.
    pub(crate) maintain: Notify,
    /// Set once by `close()`; read under the state's lock where a slot joins
    /// the idle queue.
    closed: AtomicBool,
}

/// The idle queue and the counts, behind [`Slots`]' lock.
#[derive(Debug)]
pub(crate) struct State<T> {
    /// Oldest at the front.
    pub(crate) idle: VecDeque<T>,
    // The counts change only through reservations, each move under one lock.
    leased: usize,
    starting: usize,
    busy: usize,
    /// Retirements not yet made up by the maintainer.
    owed_replacements: usize,
    /// The sizes last added to the process-wide gauges ([`SIZE_GAUGES`]).
    published: [usize; 4],
}

/// The gauges of a pool's sizes, in the order of [`State::sizes`]. Each pool
/// adds its changes, so a gauge sums the pools of the process.
const SIZE_GAUGES: [&str; 4] = [
    "tidepool_browser_idle",
    "tidepool_browser_in_use",
    "tidepool_browser_starting",
    "tidepool_browser_busy",
];

impl<T> Slots<T> {
    pub(crate) fn new() -> Arc<Slots<T>> {
        Arc::new(Slots {
            state: Mutex::new(State {
                idle: VecDeque::new(),
                leased: 0,
                starting: 0,
                busy: 0,
                owed_replacements: 0,
                published: [0; 4],
            }),
            changed: Notify::new(),
            maintain: Notify::new(),
            closed: AtomicBool::new(false),
        })
    }

    /// The state, locked. Never held across an await.
    pub(crate) fn lock(self: &Arc<Self>) -> StateGuard<'_, T> {
        // The lock guards plain counters; a panic elsewhere cannot leave them
        // half-updated in a way worth refusing to read.
        StateGuard {
            slots: self,
            state: self.state.lock().unwrap_or_else(|p| p.into_inner()),
        }
    }

    /// Whether `close()` has begun.
    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::SeqCst)
    }

    /// Refuses every slot that would join the idle queue from now on, and
    /// returns the ones idle now.
    pub(crate) fn close(self: &Arc<Self>) -> Vec<T> {
        let mut state = self.lock();
        self.closed.store(true, Ordering::SeqCst);
        // Acquirers waiting for a slot learn at once that none will come.
        self.changed.notify_waiters();
        state.idle.drain(..).collect()
    }

    fn given_back(&self) {
        self.changed.notify_one();
        self.maintain.notify_one();
    }
}

impl<T> State<T> {
    /// Slots counted against `max_size`: idle, leased, starting and busy.
    pub(crate) fn total(&self) -> usize {
        self.idle.len() + self.leased + self.starting + self.busy
    }

    pub(crate) fn leased(&self) -> usize {
        self.leased
    }

    pub(crate) fn starting(&self) -> usize {
        self.starting
    }

    pub(crate) fn busy(&self) -> usize {
        self.busy
    }

    fn count(&mut self, phase: Phase) {
        *self.phase_mut(phase) += 1;
    }

    fn uncount(&mut self, phase: Phase) {
        let n = self.phase_mut(phase);
        debug_assert!(*n > 0, "uncounting an empty {phase:?} phase");
        *n = n.saturating_sub(1);
    }

    fn phase_mut(&mut self, phase: Phase) -> &mut usize {
        match phase {
            Phase::Starting => &mut self.starting,
            Phase::Busy => &mut self.busy,
            Phase::Leased => &mut self.leased,
        }
    }

    /// A retirement the maintainer should make up for.
    pub(crate) fn owe_replacement(&mut self) {
        self.owed_replacements += 1;
    }

    /// Whether a started slot makes up for a retirement (and pays it).
    pub(crate) fn pay_replacement(&mut self) -> bool {
        let owed = self.owed_replacements > 0;
        self.owed_replacements = self.owed_replacements.saturating_sub(1);
        owed
    }

    fn sizes(&self) -> [usize; 4] {
        [self.idle.len(), self.leased, self.starting, self.busy]
    }

    /// Adds the changes since the last call to the size gauges.
    fn publish(&mut self) {
        let now = self.sizes();
        for ((name, now), before) in SIZE_GAUGES.iter().zip(now).zip(self.published) {
            gauge_add(name, now as f64 - before as f64);
        }
        self.published = now;
    }
}

impl<T> Drop for State<T> {
    fn drop(&mut self) {
        // A dropped pool leaves the gauges as if it had never been.
        self.idle.clear();
        (self.leased, self.starting, self.busy) = (0, 0, 0);
        self.publish();
    }
}

/// The state, locked; its sizes reach the gauges as the lock is released,
/// whichever path changed them. A [`Reservation`] made here must not drop
/// before this guard does: it takes the same lock.
pub(crate) struct StateGuard<'a, T> {
    slots: &'a Arc<Slots<T>>,
    state: MutexGuard<'a, State<T>>,
}

impl<T> StateGuard<'_, T> {
    /// Counts one slot in `phase` and returns its reservation.
    pub(crate) fn reserve(&mut self, phase: Phase) -> Reservation<T> {
        self.state.count(phase);
        Reservation {
            slots: self.slots.clone(),
            phase,
            armed: true,
        }
    }

    /// Takes the idle slot at `at` (chosen by `placement`), counted busy.
    pub(crate) fn take_idle_at(&mut self, at: usize) -> Option<(T, Reservation<T>)> {
        let item = self.state.idle.remove(at)?;
        Some((item, self.reserve(Phase::Busy)))
    }

    /// Takes the idle slots `pick` picks out of the queue, in queue order.
    pub(crate) fn take_idle_where(&mut self, pick: impl Fn(&T) -> bool) -> Vec<T> {
        let (picked, others): (VecDeque<_>, _) = std::mem::take(&mut self.state.idle)
            .into_iter()
            .partition(|i| pick(i));
        self.state.idle = others;
        picked.into()
    }
}

impl<T> std::ops::Deref for StateGuard<'_, T> {
    type Target = State<T>;

    fn deref(&self) -> &State<T> {
        &self.state
    }
}

impl<T> std::ops::DerefMut for StateGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut State<T> {
        &mut self.state
    }
}

impl<T> Drop for StateGuard<'_, T> {
    fn drop(&mut self) {
        self.state.publish();
    }
}

/// The count of one slot in one [`Phase`]. Dropped, it uncounts the slot
/// and wakes the waiters, whatever path its holder took (a cancelled
/// acquire included).
#[derive(Debug)]
#[must_use = "a reservation uncounts its slot when dropped"]
pub(crate) struct Reservation<T> {
    slots: Arc<Slots<T>>,
    phase: Phase,
    armed: bool,
}

impl<T> Reservation<T> {
    /// Counts the slot in `to` instead, under one lock: the total never
    /// dips, so no acquire sees room that is not there.
    pub(crate) fn moved(mut self, to: Phase) -> Reservation<T> {
        let mut state = self.slots.lock();
        state.uncount(self.phase);
        state.count(to);
        drop(state);
        self.armed = false;
        Reservation {
            slots: self.slots.clone(),
            phase: to,
            armed: true,
        }
    }

    /// The slot is ready: it joins the idle queue and its reservation ends
    /// under one lock, so no acquire sees the count free and the slot
    /// missing (and starts one past `max_size`).
    ///
    /// Returns the slot instead when the pool is closing: no slot joins the
    /// queue after `close()` emptied it (to wait, until its deadline, for a
    /// slot nobody will retire). The caller retires what comes back.
    #[must_use = "a slot refused by a closed pool must be retired"]
    pub(crate) fn into_idle(self, item: T) -> Option<T> {
        let slots = self.slots.clone();
        let mut state = slots.lock();
        let refused = self.into_idle_locked(&mut state, item);
        drop(state);
        slots.changed.notify_one();
        refused
    }

    /// [`into_idle`](Self::into_idle) under a lock the caller holds.
    #[must_use = "a slot refused by a closed pool must be retired"]
    pub(crate) fn into_idle_locked(mut self, state: &mut State<T>, item: T) -> Option<T> {
        state.uncount(self.phase);
        self.armed = false;
        if self.slots.is_closed() {
            return Some(item);
        }
        state.idle.push_back(item);
        None
    }
}

impl<T> Drop for Reservation<T> {
    fn drop(&mut self) {
        if self.armed {
            self.slots.lock().uncount(self.phase);
            self.slots.given_back();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(slots: &Arc<Slots<u32>>) -> (usize, usize, usize, usize) {
        let s = slots.lock();
        (s.idle.len(), s.starting(), s.busy(), s.leased())
    }

    #[test]
    fn a_reservation_counts_its_slot_until_it_drops() {
        let slots = Slots::<u32>::new();
        let starting = slots.lock().reserve(Phase::Starting);
        assert_eq!(counts(&slots), (0, 1, 0, 0));
        drop(starting);
        assert_eq!(counts(&slots), (0, 0, 0, 0));
    }

    #[test]
    fn a_slot_moves_between_phases_without_leaving_the_total() {
        let slots = Slots::<u32>::new();
        let r = slots.lock().reserve(Phase::Starting);
        let r = r.moved(Phase::Leased);
        assert_eq!(counts(&slots), (0, 0, 0, 1));
        let r = r.moved(Phase::Busy);
        assert_eq!(slots.lock().total(), 1);
        assert_eq!(r.into_idle(7), None);
        assert_eq!(counts(&slots), (1, 0, 0, 0));
        let (item, busy) = slots.lock().take_idle_at(0).expect("one idle");
        assert_eq!((item, counts(&slots)), (7, (0, 0, 1, 0)));
        drop(busy);
        assert_eq!(slots.lock().total(), 0);
    }

    #[test]
    fn a_closed_pool_refuses_a_slot_joining_its_idle_queue() {
        let slots = Slots::<u32>::new();
        let r = slots.lock().reserve(Phase::Busy);
        assert_eq!(r.into_idle(1), None);
        let r = slots.lock().reserve(Phase::Busy);
        assert_eq!(slots.close(), vec![1]);
        assert_eq!(r.into_idle(2), Some(2), "refused, for the caller to retire");
        assert_eq!(slots.lock().total(), 0);
    }

    #[test]
    fn idle_slots_are_taken_by_a_predicate_in_queue_order() {
        let slots = Slots::<u32>::new();
        for i in 0..5 {
            let r = slots.lock().reserve(Phase::Starting);
            assert_eq!(r.into_idle(i), None);
        }
        assert_eq!(slots.lock().take_idle_where(|i| i % 2 == 0), vec![0, 2, 4]);
        assert_eq!(slots.lock().idle, [1, 3]);
    }
}
