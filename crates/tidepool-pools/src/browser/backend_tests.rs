//! The pool's acquire, release and `close()` (the code Chromium's pool
//! runs) over the scripted fake, on tokio's paused clock: every
//! combination of step outcomes, and random sequences of acquires,
//! releases, cancellations at any await point, crashes, evictions, lost
//! and rejoining endpoints, and `close()`.
//! After each step the counts must add up, no slot may be leased twice or
//! be idle while leased, every waiter must be served or told why, and
//! after `close()` no browser may be left.

use std::collections::BTreeSet;
use std::time::Duration;

use assert_matches::assert_matches;
use proptest::prelude::*;
use tokio::task::JoinHandle;

use super::acquire::acquire_slot;
use super::backend::{recycle_timeout, Backend};
use super::close::{close_slots, CLOSE_GRACE};
use super::fake::{Action, Fake, Outcome, ENDPOINTS, SLOW};
use super::release::Held;
use super::stats::RetireReason;
use crate::error::{Error, Result};

const MAX_SIZE: usize = 2;

/// A paused-clock runtime: `Slow` and `Never` cost no real time.
fn paused() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .unwrap()
}

/// Long enough for every deadline of the core to pass, and a shut-down's
/// grace after it.
fn past_every_deadline(fake: &Fake) -> Duration {
    let c = fake.config();
    c.acquire_timeout + recycle_timeout(c) + CLOSE_GRACE * 4
}

fn id(held: &Held<Fake>) -> u64 {
    held.slot().map(|s| s.id).expect("a held slot")
}

/// The invariants, checked after every step.
fn check(fake: &Fake, held: &[Held<Fake>]) {
    let state = fake.slots().lock();
    assert!(
        state.total() <= MAX_SIZE,
        "{} slots over max_size",
        state.total()
    );
    assert_eq!(
        state.leased(),
        held.len(),
        "counted leased against leases held"
    );
    let leased: BTreeSet<u64> = held.iter().map(id).collect();
    assert_eq!(leased.len(), held.len(), "a slot leased twice: {leased:?}");
    let idle: BTreeSet<u64> = state.idle.iter().map(|s| s.id).collect();
    assert!(
        idle.is_disjoint(&leased),
        "idle while leased: {idle:?} {leased:?}"
    );
    let running = fake.running();
    assert!(
        leased.is_subset(&running),
        "leased {leased:?}, running {running:?}"
    );
    assert!(
        idle.is_subset(&running),
        "idle {idle:?}, running {running:?}"
    );
}

/// Nothing left once `close()` returned.
fn check_closed(fake: &Fake, left: usize) {
    assert_eq!(left, 0, "close() gave up with browsers alive");
    assert_eq!(fake.alive().count(), 0, "a browser outlived close()");
    assert!(
        fake.running().is_empty(),
        "running after close: {:?}",
        fake.running()
    );
    let state = fake.slots().lock();
    assert_eq!(
        (
            state.idle.len(),
            state.starting(),
            state.busy(),
            state.leased()
        ),
        (0, 0, 0, 0),
        "counts after close"
    );
}

/// Where `close()` comes in the combination test.
#[derive(Debug, Clone, Copy)]
enum CloseAt {
    /// After every lease returned.
    AtRest,
    /// While a lease is held: close waits for it.
    WhileLeased,
    /// While an acquire waits for a slot: it is told the pool closed.
    WhileWaiting,
}

fn served(outcome: Outcome) -> bool {
    matches!(outcome, Outcome::Ok | Outcome::Slow)
}

/// One combination: the first open, ready, probe, recycle and shut-down
/// each answer as given; `close()` comes at `close_at`.
async fn combination(steps: [Outcome; 5], close_at: CloseAt) {
    let [open, ready, probe, recycle, shut_down] = steps;
    let fake = Fake::new(MAX_SIZE);
    fake.script(Action::Open, open);
    fake.script(Action::Ready, ready);

    // A first acquire opens a slot: served iff its open and readying are.
    let first = acquire_slot(&fake, &()).await;
    // The open's failure comes first: then the readying is never asked.
    let decisive = if served(open) { ready } else { open };
    match decisive {
        Outcome::Ok | Outcome::Slow => assert_matches!(first, Ok(_)),
        Outcome::Never => assert_matches!(first, Err(Error::AcquireTimeout { .. })),
        Outcome::Err => assert_matches!(first, Err(Error::BrowserCrashed { .. })),
    }
    let mut held: Vec<Held<Fake>> = first.into_iter().collect();
    check(&fake, &held);

    // A first open that failed never asked for its readying.
    fake.clear_script();
    fake.script(Action::Probe, probe);
    fake.script(Action::Recycle, recycle);
    fake.script(Action::ShutDown, shut_down);
    if let (CloseAt::WhileLeased, Some(_)) = (close_at, held.first()) {
        let closing = tokio::spawn({
            let fake = fake.clone();
            async move { close_slots(&fake).await }
        });
        tokio::time::sleep(Duration::from_millis(10)).await;
        assert!(!closing.is_finished(), "close() did not wait for the lease");
        assert_matches!(
            acquire_slot(&fake, &()).await,
            Err(Error::PoolClosed { .. })
        );
        held.clear();
        check_closed(&fake, closing.await.unwrap());
        return;
    }

    // The lease returns; the next acquire is served whatever the first
    // slot's recycling and probe do: a slot that fails is replaced.
    let first_id = held.first().map(id);
    held.clear();
    // Its recycling ends (unless it never does), so the next acquire
    // takes it and probes it.
    tokio::time::sleep(SLOW * 2).await;
    let second = acquire_slot(&fake, &()).await;
    assert_matches!(second, Ok(_), "steps {steps:?}");
    held.extend(second);
    check(&fake, &held);
    // An acquire cancelled mid-way, at whatever await point it reached.
    let cancelled = tokio::time::timeout(Duration::from_millis(10), acquire_slot(&fake, &()));
    if let Ok(lease) = cancelled.await {
        held.extend(lease.ok());
    }
    check(&fake, &held);

    if let CloseAt::WhileWaiting = close_at {
        // Fill the pool, then wait for a slot that close() refuses.
        while held.len() < MAX_SIZE {
            held.push(acquire_slot(&fake, &()).await.unwrap());
        }
        let waiter = tokio::spawn({
            let fake = fake.clone();
            async move { acquire_slot(&fake, &()).await.map(|_| ()) }
        });
        tokio::time::sleep(Duration::from_millis(10)).await;
        let closing = tokio::spawn({
            let fake = fake.clone();
            async move { close_slots(&fake).await }
        });
        let told = tokio::time::timeout(Duration::from_millis(10), waiter).await;
        assert_matches!(
            told,
            Ok(Ok(Err(Error::PoolClosed { .. }))),
            "the waiter was not told"
        );
        held.clear();
        check_closed(&fake, closing.await.unwrap());
        return;
    }
    held.clear();
    tokio::time::sleep(past_every_deadline(&fake)).await;
    if let Some(first_id) = first_id {
        // A slot whose recycling failed, or recycled and then failed its
        // probe, retired as unhealthy.
        let retired = fake.retired.lock().unwrap().clone();
        if !served(recycle) || (recycle != Outcome::Never && !served(probe)) {
            let unhealthy = (first_id, RetireReason::Unhealthy);
            assert!(retired.contains(&unhealthy), "steps {steps:?}: {retired:?}");
        }
    }
    check_closed(&fake, close_slots(&fake).await);
}

/// Every combination of the five steps' outcomes (4^5) at each of the
/// three moments of `close()`.
#[test]
fn every_combination_of_step_outcomes_serves_or_tells_and_leaves_nothing() {
    let rt = paused();
    let mut runs = 0;
    for open in Outcome::ALL {
        for ready in Outcome::ALL {
            for probe in Outcome::ALL {
                for recycle in Outcome::ALL {
                    for shut_down in Outcome::ALL {
                        for close_at in
                            [CloseAt::AtRest, CloseAt::WhileLeased, CloseAt::WhileWaiting]
                        {
                            let steps = [open, ready, probe, recycle, shut_down];
                            rt.block_on(combination(steps, close_at));
                            runs += 1;
                        }
                    }
                }
            }
        }
    }
    assert_eq!(runs, 3 * 4usize.pow(5));
}

/// One step of a random sequence; `usize`s pick among what is in flight.
#[derive(Debug, Clone)]
enum Op {
    Acquire,
    /// Lets time pass: steps finish, deadlines fall due.
    Advance {
        ms: u64,
    },
    /// Drops a pending acquire wherever it stands.
    Cancel {
        which: usize,
    },
    Release {
        which: usize,
    },
    /// A leased or idle slot's browser dies.
    Crash {
        which: usize,
    },
    /// A leased or idle slot's browser is evicted for its memory.
    Evict {
        which: usize,
    },
    /// An endpoint is lost with its slots, or comes back.
    Lose {
        endpoint: usize,
    },
    Rejoin {
        endpoint: usize,
    },
    /// The next `action` answers `outcome`.
    Script {
        action: Action,
        outcome: Outcome,
    },
    Close,
}

fn op() -> impl Strategy<Value = Op> {
    let action = prop_oneof![
        Just(Action::Open),
        Just(Action::Probe),
        Just(Action::Ready),
        Just(Action::Recycle),
        Just(Action::ShutDown),
    ];
    let outcome = prop::sample::select(Outcome::ALL.to_vec());
    prop_oneof![
        4 => Just(Op::Acquire),
        4 => prop::sample::select(vec![0, 1, 10, 60, 2_500, 31_000]).prop_map(|ms| Op::Advance { ms }),
        2 => any::<usize>().prop_map(|which| Op::Cancel { which }),
        3 => any::<usize>().prop_map(|which| Op::Release { which }),
        1 => any::<usize>().prop_map(|which| Op::Crash { which }),
        1 => any::<usize>().prop_map(|which| Op::Evict { which }),
        1 => (0..ENDPOINTS).prop_map(|endpoint| Op::Lose { endpoint }),
        1 => (0..ENDPOINTS).prop_map(|endpoint| Op::Rejoin { endpoint }),
        3 => (action, outcome).prop_map(|(action, outcome)| Op::Script { action, outcome }),
        1 => Just(Op::Close),
    ]
}

/// Ends the browser of one leased or idle slot, picked by `which`.
fn end_one(fake: &Fake, held: &[Held<Fake>], which: usize, reason: RetireReason) {
    let idle: Vec<u64> = fake.slots().lock().idle.iter().map(|s| s.id).collect();
    let ids: Vec<u64> = held.iter().map(id).chain(idle).collect();
    if !ids.is_empty() {
        fake.end(ids[which % ids.len()], reason);
    }
}

/// Lets every task that can run do so, without moving the clock.
async fn settle() {
    for _ in 0..20 {
        tokio::task::yield_now().await;
    }
}

/// Takes the finished acquires' results: a lease joins `held`, an error
/// must say why (a timeout, the pool closed, or the scripted failure).
async fn collect(
    fake: &Fake,
    pending: &mut Vec<JoinHandle<Result<Held<Fake>>>>,
    held: &mut Vec<Held<Fake>>,
) {
    let mut i = 0;
    while i < pending.len() {
        if !pending[i].is_finished() {
            i += 1;
            continue;
        }
        match pending.swap_remove(i).await {
            Ok(Ok(lease)) => {
                assert!(!fake.is_gone(id(&lease)), "a gone browser handed out");
                held.push(lease);
            }
            Ok(Err(e)) => assert_matches!(
                e,
                Error::AcquireTimeout { .. }
                    | Error::PoolClosed { .. }
                    | Error::BrowserCrashed { .. }
                    | Error::NoEndpointUp { .. }
            ),
            Err(join) => assert!(join.is_cancelled(), "an acquire panicked: {join}"),
        }
    }
}

async fn random_sequence(ops: Vec<Op>) {
    let fake = Fake::new(MAX_SIZE);
    let mut pending: Vec<JoinHandle<Result<Held<Fake>>>> = Vec::new();
    let mut held: Vec<Held<Fake>> = Vec::new();
    let mut closing: Option<JoinHandle<usize>> = None;
    let mut closed_at = None;
    for op in ops {
        match op {
            Op::Acquire => pending.push(tokio::spawn({
                let fake = fake.clone();
                async move { acquire_slot(&fake, &()).await }
            })),
            Op::Advance { ms } => tokio::time::sleep(Duration::from_millis(ms)).await,
            Op::Cancel { which } if !pending.is_empty() => {
                let n = pending.len();
                pending[which % n].abort();
            }
            Op::Release { which } if !held.is_empty() => {
                let n = held.len();
                drop(held.swap_remove(which % n));
            }
            Op::Crash { which } => end_one(&fake, &held, which, RetireReason::Crashed),
            Op::Evict { which } => end_one(&fake, &held, which, RetireReason::Memory),
            Op::Lose { endpoint } => fake.lose(endpoint),
            Op::Rejoin { endpoint } => fake.rejoin(endpoint),
            Op::Script { action, outcome } => fake.script(action, outcome),
            Op::Close if closing.is_none() => {
                closed_at = Some(tokio::time::Instant::now());
                closing = Some(tokio::spawn({
                    let fake = fake.clone();
                    async move { close_slots(&fake).await }
                }));
            }
            Op::Cancel { .. } | Op::Release { .. } | Op::Close => {}
        }
        settle().await;
        collect(&fake, &mut pending, &mut held).await;
        check(&fake, &held);
    }
    // Every lease returns, as soon as it is handed out; every waiter must
    // have its answer by its deadline.
    let closing = closing.unwrap_or_else(|| {
        tokio::spawn({
            let fake = fake.clone();
            async move { close_slots(&fake).await }
        })
    });
    let end = tokio::time::Instant::now() + past_every_deadline(&fake);
    loop {
        held.clear();
        if pending.is_empty() || tokio::time::Instant::now() >= end {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        settle().await;
        collect(&fake, &mut pending, &mut held).await;
    }
    assert!(
        pending.is_empty(),
        "{} acquires never answered",
        pending.len()
    );
    let released = tokio::time::Instant::now();
    let left = closing.await.unwrap();
    // close() waits up to its deadline for leases to come back: it may give
    // up only on leases the test held until too late.
    let deadline =
        *closed_at.get_or_insert(released) + fake.config().acquire_timeout + CLOSE_GRACE * 3;
    let in_time = released + CLOSE_GRACE * 2 <= deadline;
    if in_time {
        assert_eq!(
            left, 0,
            "close() gave up although every lease came back in time"
        );
    }
    // Whatever close() said, every browser ends once its lease is back.
    tokio::time::sleep(past_every_deadline(&fake)).await;
    settle().await;
    check_closed(&fake, 0);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn random_sequences_keep_the_counts_and_leave_nothing_after_close(
        ops in prop::collection::vec(op(), 1..40)
    ) {
        paused().block_on(random_sequence(ops));
    }
}
