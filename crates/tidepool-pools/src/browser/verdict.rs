//! What becomes of a slot each time the pool looks at it: served, probed
//! first, or retired and why. One rule for the acquire that takes an idle
//! slot, the release of a lease and the maintainer's scan of the queue.

use super::chromium::slot::Slot;
use super::config::BrowserPoolConfig;
use super::stats::RetireReason;
use crate::retention::{Decision, Retention, Stamps};

/// Where the pool looks at a slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Checkpoint {
    /// An acquire took it from the idle queue: a waiting caller wants it,
    /// so it is kept whatever its idleness.
    Acquire,
    /// Its lease ended: it is readied for the next one unless retired, and
    /// the readying itself checks it, so it is not probed.
    Release,
    /// The maintainer's scan of the idle queue; `surplus` when more idle
    /// slots than `min_idle` remain, so an idle one may go.
    Maintain { surplus: bool },
}

/// The pool's judgement of one slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Hand it out (or keep it idle) as it is.
    Serve,
    /// Check it answers first: unchecked longer than `health_check_interval`.
    Probe,
    /// Shut it down, for this reason.
    Retire(RetireReason),
}

/// What the verdict reads of a slot, taken without a call to its browser.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Facts {
    /// The pool is closing.
    pub(crate) closed: bool,
    /// Its browser is gone: evicted for memory, or crashed.
    pub(crate) gone: Option<RetireReason>,
    /// Its browser is retiring, for this reason, with its other slots.
    pub(crate) draining: Option<RetireReason>,
    /// Its browser served `max_uses` leases over all its slots.
    pub(crate) used_up: bool,
    pub(crate) stamps: Stamps,
    /// Its fleet endpoint holds more than its share (see `placement`).
    pub(crate) over_share: bool,
}

impl Facts {
    /// The facts of `slot` for a verdict at `at`. Its endpoint's share
    /// is read only at release, the one checkpoint that weighs it: the
    /// fleet's lock is never taken under the slots' (maintenance judges
    /// the idle queue under it).
    pub(crate) fn of(
        slot: &Slot,
        config: &BrowserPoolConfig,
        closed: bool,
        at: Checkpoint,
    ) -> Facts {
        Facts {
            closed,
            gone: gone_reason(slot),
            draining: slot.draining(),
            used_up: config.max_uses.is_some_and(|max| slot.uses() >= max),
            stamps: slot.stamps(),
            over_share: at == Checkpoint::Release
                && (slot.on_endpoint.as_ref()).is_some_and(|s| s.fleet().over_share(s.index)),
        }
    }
}

/// The verdict on a slot with `facts` at checkpoint `at`. The order is the
/// order of precedence: the pool's closing, the browser's death, its
/// retirement, its uses, its age, its idleness, its health, and last where
/// it runs.
pub(crate) fn verdict(facts: &Facts, retention: &Retention, at: Checkpoint) -> Verdict {
    let retire = Verdict::Retire;
    if facts.closed {
        return retire(RetireReason::Closed);
    }
    if let Some(reason) = facts.gone.or(facts.draining) {
        return retire(reason);
    }
    if facts.used_up {
        return retire(RetireReason::MaxUses);
    }
    let may_go_idle = matches!(at, Checkpoint::Maintain { surplus: true });
    match retention.decide(facts.stamps, may_go_idle) {
        Decision::Expired => retire(RetireReason::Lifetime),
        Decision::IdleTooLong => retire(RetireReason::IdleTimeout),
        Decision::Probe if at != Checkpoint::Release => Verdict::Probe,
        Decision::Probe | Decision::Keep if at == Checkpoint::Release && facts.over_share => {
            retire(RetireReason::Rebalanced)
        }
        Decision::Probe | Decision::Keep => Verdict::Serve,
    }
}

/// Why a slot retires after a probe, a readying or a recycling failed:
/// `died` when its browser is found gone.
pub(crate) fn after_failure(died: bool) -> RetireReason {
    if died {
        RetireReason::Crashed
    } else {
        RetireReason::Unhealthy
    }
}

/// Why a gone browser left: evicted for memory, or crashed; `None` if alive.
pub(crate) fn gone_reason(slot: &Slot) -> Option<RetireReason> {
    slot.death().map(|_| {
        if slot.evicted() {
            RetireReason::Memory
        } else {
            RetireReason::Crashed
        }
    })
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::*;

    const MINUTE: Duration = Duration::from_secs(60);

    fn retention() -> Retention {
        Retention {
            idle_timeout: MINUTE,
            max_lifetime: 10 * MINUTE,
            health_check_interval: MINUTE,
            health_check_timeout: Duration::from_secs(1),
        }
    }

    /// A fresh, healthy slot: created, used and checked `ago`.
    fn fresh(ago: Duration) -> Facts {
        let then = Instant::now() - ago;
        Facts {
            closed: false,
            gone: None,
            draining: None,
            used_up: false,
            stamps: Stamps {
                created: then,
                last_used: then,
                last_checked: then,
            },
            over_share: false,
        }
    }

    const EVERYWHERE: [Checkpoint; 4] = [
        Checkpoint::Acquire,
        Checkpoint::Release,
        Checkpoint::Maintain { surplus: false },
        Checkpoint::Maintain { surplus: true },
    ];

    #[test]
    fn a_fresh_slot_serves_everywhere() {
        for at in EVERYWHERE {
            assert_eq!(
                verdict(&fresh(Duration::ZERO), &retention(), at),
                Verdict::Serve,
                "{at:?}"
            );
        }
    }

    #[test]
    fn closing_death_draining_and_uses_retire_everywhere_in_that_order() {
        let r = retention();
        let mut f = fresh(Duration::ZERO);
        f.used_up = true;
        f.draining = Some(RetireReason::Hook);
        f.gone = Some(RetireReason::Memory);
        f.closed = true;
        for (reason, clear) in [
            (
                RetireReason::Closed,
                (|f: &mut Facts| f.closed = false) as fn(&mut Facts),
            ),
            (RetireReason::Memory, |f| f.gone = None),
            (RetireReason::Hook, |f| f.draining = None),
            (RetireReason::MaxUses, |f| f.used_up = false),
        ] {
            for at in EVERYWHERE {
                assert_eq!(verdict(&f, &r, at), Verdict::Retire(reason), "{at:?}");
            }
            clear(&mut f);
        }
    }

    #[test]
    fn an_old_slot_retires_everywhere_an_idle_one_only_from_a_surplus() {
        let r = retention();
        for at in EVERYWHERE {
            let old = fresh(11 * MINUTE);
            assert_eq!(
                verdict(&old, &r, at),
                Verdict::Retire(RetireReason::Lifetime)
            );
        }
        let idle = fresh(2 * MINUTE);
        let surplus = Checkpoint::Maintain { surplus: true };
        assert_eq!(
            verdict(&idle, &r, surplus),
            Verdict::Retire(RetireReason::IdleTimeout)
        );
        let kept = Checkpoint::Maintain { surplus: false };
        assert_eq!(
            verdict(&idle, &r, kept),
            Verdict::Probe,
            "kept for min_idle, checked"
        );
        assert_eq!(verdict(&idle, &r, Checkpoint::Acquire), Verdict::Probe);
        assert_eq!(
            verdict(&idle, &r, Checkpoint::Release),
            Verdict::Serve,
            "readying checks it"
        );
    }

    #[test]
    fn a_slot_over_its_endpoints_share_is_rebalanced_only_when_its_lease_ends() {
        let mut f = fresh(Duration::ZERO);
        f.over_share = true;
        for at in EVERYWHERE {
            let expected = match at {
                Checkpoint::Release => Verdict::Retire(RetireReason::Rebalanced),
                _ => Verdict::Serve,
            };
            assert_eq!(verdict(&f, &retention(), at), expected, "{at:?}");
        }
    }

    #[test]
    fn a_failure_is_a_crash_only_when_the_browser_is_found_gone() {
        assert_eq!(after_failure(true), RetireReason::Crashed);
        assert_eq!(after_failure(false), RetireReason::Unhealthy);
    }
}
