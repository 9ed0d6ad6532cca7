//! Where a lease is served and where a new slot opens: the pool's only
//! choices of a slot, each a function of plain figures.
//!
//! - An acquire takes the idle slot idle the shortest time (LIFO: the
//!   warmest caches, and the oldest slots age out); in connect mode, first
//!   the slots on up endpoints with the fewest live leases.
//! - A new slot opens in the first started browser with room for it, on
//!   the endpoint chosen; in connect mode, on the up endpoint with the
//!   fewest slots (then leases, then the first), under its cap.
//! - An endpoint two slots or more above the lightest one with room holds
//!   more than its share: its slots close as their leases end, and their
//!   replacements open where there is room.

/// An endpoint's figures the choices read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct EndpointLoad {
    /// Up: connected, or due nothing before its next retry.
    pub(crate) up: bool,
    /// Slots open on it.
    pub(crate) slots: usize,
    /// Of those, held by leases.
    pub(crate) leased: usize,
}

/// The index in the idle queue (oldest first) of the slot an acquire takes,
/// given the load of each idle slot's endpoint (`None` for a launched
/// browser, which ranks as an unloaded endpoint up).
pub(crate) fn idle_to_serve(
    idle_loads: impl DoubleEndedIterator<Item = Option<EndpointLoad>> + ExactSizeIterator,
) -> Option<usize> {
    let rank = |load: Option<EndpointLoad>| match load {
        None => (false, 0),
        Some(l) => (!l.up, l.leased),
    };
    // Newest first among equals: `min_by_key` keeps the first it meets.
    idle_loads
        .enumerate()
        .rev()
        .min_by_key(|(_, load)| rank(*load))
        .map(|(at, _)| at)
}

/// Why no endpoint can take a new slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NoRoom {
    /// Endpoints are up but each holds `cap` slots: wait for one to free.
    AtCapacity,
    /// No endpoint not yet tried is up.
    NoneUp,
}

/// The endpoint a new slot opens on: the one up with the fewest slots, then
/// the fewest leases, then the first, under `cap`; those in `tried` are
/// passed over.
pub(crate) fn endpoint_for_new_slot(
    loads: &[EndpointLoad],
    tried: &[usize],
    cap: usize,
) -> Result<usize, NoRoom> {
    let candidates = || {
        loads
            .iter()
            .enumerate()
            .filter(|(i, l)| l.up && !tried.contains(i))
    };
    candidates()
        .filter(|(_, l)| l.slots < cap)
        .min_by_key(|(i, l)| (l.slots, l.leased, *i))
        .map(|(i, _)| i)
        .ok_or(match candidates().next() {
            Some(_) => NoRoom::AtCapacity,
            None => NoRoom::NoneUp,
        })
}

/// Whether endpoint `index` holds more than its share: two slots or more
/// above the up endpoint with the fewest that has room under `cap`.
pub(crate) fn over_share(loads: &[EndpointLoad], index: usize, cap: usize) -> bool {
    let fewest = loads
        .iter()
        .filter(|l| l.up && l.slots < cap)
        .map(|l| l.slots)
        .min();
    fewest.is_some_and(|fewest| loads[index].slots > fewest + 1)
}

/// A browser started by the pool, as the choice of where a slot opens sees
/// it.
pub(crate) trait StartedBrowser {
    /// A slot opened in it.
    type Slot;
    /// Whether the browser has ended (it is forgotten).
    fn ended(&self) -> bool;
    /// The fleet endpoint it runs on; `None` when launched.
    fn endpoint(&self) -> Option<usize>;
    /// A new slot in it if it holds fewer than `max` and is not retiring.
    fn open(&self, max: usize) -> Option<Self::Slot>;
}

/// A new, unprepared slot in the first started browser on endpoint `on`
/// (`None`: launched) with room for one of `max` slots; ended browsers are
/// forgotten on the way.
pub(crate) fn open_in_started<B: StartedBrowser>(
    browsers: &mut Vec<B>,
    on: Option<usize>,
    max: usize,
) -> Option<B::Slot> {
    if max <= 1 {
        return None;
    }
    browsers.retain(|b| !b.ended());
    browsers
        .iter()
        .filter(|b| b.endpoint() == on)
        .find_map(|b| b.open(max))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn up(slots: usize, leased: usize) -> EndpointLoad {
        EndpointLoad {
            up: true,
            slots,
            leased,
        }
    }

    const DOWN: EndpointLoad = EndpointLoad {
        up: false,
        slots: 0,
        leased: 0,
    };

    #[test]
    fn a_launched_pool_serves_the_newest_idle_slot() {
        assert_eq!(idle_to_serve([None, None, None].into_iter()), Some(2));
        assert_eq!(idle_to_serve(std::iter::empty()), None);
    }

    #[test]
    fn a_fleet_serves_the_newest_idle_slot_on_the_least_leased_endpoint_up() {
        let idle = [
            Some(up(2, 0)),
            Some(up(2, 1)),
            Some(DOWN),
            Some(up(2, 0)),
            Some(up(2, 1)),
        ];
        assert_eq!(idle_to_serve(idle.into_iter()), Some(3));
        assert_eq!(
            idle_to_serve([Some(DOWN), Some(up(1, 5))].into_iter()),
            Some(1)
        );
    }

    #[test]
    fn a_new_slot_opens_on_the_endpoint_with_the_fewest_slots_under_its_cap() {
        let loads = [up(2, 2), up(1, 1), up(1, 0), DOWN];
        assert_eq!(endpoint_for_new_slot(&loads, &[], 3), Ok(2));
        assert_eq!(endpoint_for_new_slot(&loads, &[2], 3), Ok(1));
        assert_eq!(
            endpoint_for_new_slot(&loads, &[], 1),
            Err(NoRoom::AtCapacity)
        );
        assert_eq!(
            endpoint_for_new_slot(&loads, &[0, 1, 2], 3),
            Err(NoRoom::NoneUp)
        );
        assert_eq!(endpoint_for_new_slot(&[DOWN], &[], 3), Err(NoRoom::NoneUp));
    }

    #[test]
    fn an_endpoint_two_slots_above_the_lightest_with_room_is_over_its_share() {
        let loads = [up(3, 3), up(1, 1), DOWN];
        assert!(over_share(&loads, 0, 8));
        assert!(!over_share(&loads, 1, 8));
        assert!(
            !over_share(&[up(2, 2), up(1, 1)], 0, 8),
            "one above is its share"
        );
        assert!(
            !over_share(&[up(3, 3), up(1, 1)], 0, 1),
            "the lighter one has no room"
        );
    }

    /// A browser holding `open` of its slots, on endpoint `on`.
    struct Fake {
        on: Option<usize>,
        open: usize,
        ended: bool,
    }

    impl StartedBrowser for Fake {
        type Slot = (Option<usize>, usize);
        fn ended(&self) -> bool {
            self.ended
        }
        fn endpoint(&self) -> Option<usize> {
            self.on
        }
        fn open(&self, max: usize) -> Option<Self::Slot> {
            (self.open < max).then_some((self.on, self.open))
        }
    }

    #[test]
    fn a_slot_opens_in_the_first_started_browser_on_its_endpoint_with_room() {
        let fake = |on, open, ended| Fake { on, open, ended };
        let mut browsers = vec![
            fake(None, 1, true),
            fake(Some(0), 2, false),
            fake(Some(0), 1, false),
            fake(None, 2, false),
            fake(None, 0, false),
        ];
        assert_eq!(
            open_in_started(&mut browsers, Some(0), 2),
            Some((Some(0), 1))
        );
        assert_eq!(open_in_started(&mut browsers, None, 2), Some((None, 0)));
        assert_eq!(browsers.len(), 4, "the ended browser is forgotten");
        assert_eq!(open_in_started(&mut browsers, Some(1), 2), None);
        assert_eq!(
            open_in_started(&mut browsers, None, 1),
            None,
            "one slot a browser"
        );
    }
}
