//! The pool's core without a browser: random sequences of the steps the
//! pool takes between its await points (an acquire taking an idle slot or
//! reserving one to start, a start finishing or failing, a lease ending, a
//! recycling finishing or failing, a cancelled acquire, a crash, a
//! maintenance pass, `close()`), driven through [`Slots`], [`placement`]
//! and [`verdict`] as `acquire.rs`, `release.rs` and `maintain.rs` drive
//! them. After every step the counts must match the slots in each phase, no
//! slot may be in two places, nothing may join the idle queue after
//! `close()`, and a retired slot must never come back.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Instant;

use proptest::prelude::*;

use super::placement;
use super::slots::{Phase, Reservation, Slots};
use super::stats::RetireReason;
use super::verdict::{verdict, Checkpoint, Facts, Verdict};
use crate::retention::{Retention, Stamps};

const MAX_SIZE: usize = 3;

/// One step; `usize`s pick among the slots in flight (modulo their number).
#[derive(Debug, Clone)]
enum Step {
    Acquire,
    StartDone { which: usize, ok: bool },
    TakeDone { which: usize },
    LeaseEnds { which: usize },
    RecycleDone { which: usize, ok: bool },
    CancelStart { which: usize },
    CancelTake { which: usize },
    Crash { which: usize },
    Maintain,
    Close,
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        3 => Just(Step::Acquire),
        3 => (any::<usize>(), prop::bool::weighted(0.8)).prop_map(|(which, ok)| Step::StartDone { which, ok }),
        2 => any::<usize>().prop_map(|which| Step::TakeDone { which }),
        3 => any::<usize>().prop_map(|which| Step::LeaseEnds { which }),
        3 => (any::<usize>(), prop::bool::weighted(0.8)).prop_map(|(which, ok)| Step::RecycleDone { which, ok }),
        1 => any::<usize>().prop_map(|which| Step::CancelStart { which }),
        1 => any::<usize>().prop_map(|which| Step::CancelTake { which }),
        1 => any::<usize>().prop_map(|which| Step::Crash { which }),
        1 => Just(Step::Maintain),
        1 => Just(Step::Close),
    ]
}

/// The pool as the driver sees it: the slots each await point holds.
struct Pool {
    slots: Arc<Slots<u32>>,
    starting: Vec<Reservation<u32>>,
    taken: Vec<(u32, Reservation<u32>)>,
    leased: Vec<(u32, Reservation<u32>)>,
    recycling: Vec<(u32, Reservation<u32>)>,
    dead: HashSet<u32>,
    retired: HashSet<u32>,
    next_id: u32,
    retention: Retention,
    born: Instant,
}

fn pick<T>(v: &mut Vec<T>, which: usize) -> Option<T> {
    (!v.is_empty()).then(|| v.remove(which % v.len()))
}

impl Pool {
    fn new() -> Pool {
        Pool {
            slots: Slots::new(),
            starting: Vec::new(),
            taken: Vec::new(),
            leased: Vec::new(),
            recycling: Vec::new(),
            dead: HashSet::new(),
            retired: HashSet::new(),
            next_id: 1,
            retention: Retention::default(),
            born: Instant::now(),
        }
    }

    fn facts(&self, id: u32) -> Facts {
        Facts {
            closed: self.slots.is_closed(),
            gone: self.dead.contains(&id).then_some(RetireReason::Crashed),
            draining: None,
            used_up: false,
            stamps: Stamps {
                created: self.born,
                last_used: self.born,
                last_checked: self.born,
            },
            over_share: false,
        }
    }

    fn judge(&self, id: u32, at: Checkpoint) -> Verdict {
        verdict(&self.facts(id), &self.retention, at)
    }

    fn retire(&mut self, id: u32) {
        assert!(self.retired.insert(id), "slot {id} retired twice");
    }

    fn run(&mut self, step: &Step) {
        match *step {
            Step::Acquire => {
                let mut state = self.slots.lock();
                let serve = placement::idle_to_serve(state.idle.iter().map(|_| None));
                if let Some((id, busy)) = serve.and_then(|at| state.take_idle_at(at)) {
                    drop(state);
                    self.taken.push((id, busy));
                } else if state.total() < MAX_SIZE && !self.slots.is_closed() {
                    let starting = state.reserve(Phase::Starting);
                    drop(state);
                    self.starting.push(starting);
                }
            }
            Step::StartDone { which, ok } => {
                if let Some(starting) = pick(&mut self.starting, which) {
                    if ok {
                        let id = self.next_id;
                        self.next_id += 1;
                        self.leased.push((id, starting.moved(Phase::Leased)));
                    }
                }
            }
            Step::TakeDone { which } => {
                if let Some((id, busy)) = pick(&mut self.taken, which) {
                    match self.judge(id, Checkpoint::Acquire) {
                        Verdict::Retire(_) => {
                            drop(busy);
                            self.retire(id);
                        }
                        Verdict::Serve | Verdict::Probe => {
                            self.leased.push((id, busy.moved(Phase::Leased)))
                        }
                    }
                }
            }
            Step::LeaseEnds { which } => {
                if let Some((id, leased)) = pick(&mut self.leased, which) {
                    let busy = leased.moved(Phase::Busy);
                    match self.judge(id, Checkpoint::Release) {
                        Verdict::Retire(_) => {
                            drop(busy);
                            self.retire(id);
                        }
                        // The recycling awaits the browser: other steps run.
                        Verdict::Serve | Verdict::Probe => self.recycling.push((id, busy)),
                    }
                }
            }
            Step::RecycleDone { which, ok } => {
                if let Some((id, busy)) = pick(&mut self.recycling, which) {
                    if ok && !self.dead.contains(&id) {
                        if let Some(refused) = busy.into_idle(id) {
                            self.retire(refused);
                        }
                    } else {
                        drop(busy);
                        self.retire(id);
                    }
                }
            }
            Step::CancelStart { which } => drop(pick(&mut self.starting, which)),
            Step::CancelTake { which } => {
                if let Some((id, busy)) = pick(&mut self.taken, which) {
                    drop(busy);
                    self.retire(id);
                }
            }
            Step::Crash { which } => {
                let live: Vec<u32> = (1..self.next_id)
                    .filter(|id| !self.retired.contains(id))
                    .collect();
                if !live.is_empty() {
                    self.dead.insert(live[which % live.len()]);
                }
            }
            Step::Maintain => {
                let surplus = Checkpoint::Maintain { surplus: false };
                let judged: Vec<u32> = self.slots.lock().idle.iter().copied().collect();
                let leaving: HashSet<u32> = judged
                    .into_iter()
                    .filter(|id| matches!(self.judge(*id, surplus), Verdict::Retire(_)))
                    .collect();
                let gone = self.slots.lock().take_idle_where(|id| leaving.contains(id));
                for id in gone {
                    self.retire(id);
                }
            }
            Step::Close => {
                for id in self.slots.close() {
                    self.retire(id);
                }
            }
        }
    }

    /// What must hold between any two steps.
    fn check(&self) -> Result<(), String> {
        let state = self.slots.lock();
        let counted = (state.starting(), state.busy(), state.leased());
        let held = (
            self.starting.len(),
            self.taken.len() + self.recycling.len(),
            self.leased.len(),
        );
        if counted != held {
            return Err(format!(
                "counts (starting, busy, leased) {counted:?}, slots held {held:?}"
            ));
        }
        if state.total() > MAX_SIZE {
            return Err(format!(
                "{} slots counted, max_size {MAX_SIZE}",
                state.total()
            ));
        }
        if self.slots.is_closed() && !state.idle.is_empty() {
            return Err(format!("idle after close(): {:?}", state.idle));
        }
        let mut seen = HashSet::new();
        let places = [
            state.idle.iter().copied().collect::<Vec<_>>(),
            self.taken.iter().map(|(id, _)| *id).collect(),
            self.leased.iter().map(|(id, _)| *id).collect(),
            self.recycling.iter().map(|(id, _)| *id).collect(),
        ];
        for id in places.into_iter().flatten() {
            if !seen.insert(id) {
                return Err(format!("slot {id} is in two places"));
            }
            if self.retired.contains(&id) {
                return Err(format!("retired slot {id} is back"));
            }
        }
        Ok(())
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn any_interleaving_keeps_the_counts_and_retires_each_slot_once(
        steps in prop::collection::vec(step(), 1..80)
    ) {
        let mut pool = Pool::new();
        for (i, s) in steps.iter().enumerate() {
            pool.run(s);
            if let Err(why) = pool.check() {
                prop_assert!(false, "after step {i} ({s:?}): {why}");
            }
        }
        // Everything given back: no count is left behind.
        let Pool { slots, starting, taken, leased, recycling, .. } = pool;
        drop((starting, taken, leased, recycling));
        let state = slots.lock();
        prop_assert_eq!(state.total(), state.idle.len());
    }
}
