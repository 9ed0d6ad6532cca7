//! A scripted [`Backend`] for the core's tests: slots are numbers, each
//! step (open, probe, ready, recycle, shut down) takes the next outcome of
//! its script (Ok, Err, Slow or Never; Ok once the script runs out), and
//! every browser the fake starts is tracked until it ends, so a test can
//! tell which slots run, which retired and why.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;

use super::alive::{Alive, AliveToken};
use super::backend::{Backend, Outlook};
use super::close::CLOSE_GRACE;
use super::config::BrowserPoolConfig;
use super::slots::Slots;
use super::stats::{BrowserRecorder, RetireReason};
use super::verdict::{Checkpoint, Facts};
use crate::error::{Error, Result};
use crate::retention::Stamps;

/// How long a `Slow` step takes: well inside every deadline of the core.
pub(crate) const SLOW: Duration = Duration::from_millis(50);

/// One step's outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    Ok,
    Err,
    Slow,
    Never,
}

impl Outcome {
    pub(crate) const ALL: [Outcome; 4] = [Outcome::Ok, Outcome::Err, Outcome::Slow, Outcome::Never];
}

/// What the fake does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Action {
    Open,
    Probe,
    Ready,
    Recycle,
    ShutDown,
}

/// A fake slot: its number, and its browser's life.
#[derive(Debug)]
pub(crate) struct FakeSlot {
    pub(crate) id: u64,
    uses: u32,
    created: Instant,
    last_used: Instant,
    _alive: AliveToken,
}

/// The scripted backend.
#[derive(Debug)]
pub(crate) struct Fake {
    config: BrowserPoolConfig,
    slots: Arc<Slots<FakeSlot>>,
    permits: Arc<Semaphore>,
    alive: Arc<Alive>,
    recorder: BrowserRecorder,
    runtime: tokio::runtime::Handle,
    script: Mutex<BTreeMap<Action, VecDeque<Outcome>>>,
    next: AtomicU64,
    /// Slots opened and not yet ended.
    pub(crate) running: Mutex<BTreeSet<u64>>,
    /// Browsers the test crashed.
    crashed: Mutex<BTreeSet<u64>>,
    /// Every retirement, in order.
    pub(crate) retired: Mutex<Vec<(u64, RetireReason)>>,
}

impl Fake {
    /// A fake pool of `max_size` slots. Must be made inside a runtime.
    pub(crate) fn new(max_size: usize) -> Arc<Fake> {
        let config = BrowserPoolConfig {
            max_size,
            min_idle: 0,
            warm_up: 0,
            ..BrowserPoolConfig::default()
        };
        Arc::new(Fake {
            permits: Arc::new(Semaphore::new(max_size)),
            config,
            slots: Slots::new(),
            alive: Arc::new(Alive::default()),
            recorder: BrowserRecorder::default(),
            runtime: tokio::runtime::Handle::current(),
            script: Mutex::default(),
            next: AtomicU64::new(1),
            running: Mutex::default(),
            crashed: Mutex::default(),
            retired: Mutex::default(),
        })
    }

    /// The next `action` answers `outcome` (after those scripted before).
    pub(crate) fn script(&self, action: Action, outcome: Outcome) {
        let mut script = self.script.lock().unwrap();
        script.entry(action).or_default().push_back(outcome);
    }

    /// Forgets the outcomes scripted and not yet taken.
    pub(crate) fn clear_script(&self) {
        self.script.lock().unwrap().clear();
    }

    /// Slot `id`'s browser dies: its next verdict finds it gone.
    pub(crate) fn crash(&self, id: u64) {
        self.crashed.lock().unwrap().insert(id);
    }

    pub(crate) fn running(&self) -> BTreeSet<u64> {
        self.running.lock().unwrap().clone()
    }

    async fn step(&self, action: Action, slot: u64) -> Result<()> {
        let outcome = {
            let mut script = self.script.lock().unwrap();
            script.get_mut(&action).and_then(VecDeque::pop_front)
        };
        match outcome.unwrap_or(Outcome::Ok) {
            Outcome::Ok => Ok(()),
            Outcome::Err => Err(Error::BrowserCrashed {
                browser: slot,
                action: format!("{action:?}"),
                detail: "scripted".into(),
            }),
            Outcome::Slow => {
                tokio::time::sleep(SLOW).await;
                Ok(())
            }
            Outcome::Never => std::future::pending().await,
        }
    }
}

impl Backend for Fake {
    type Slot = FakeSlot;
    type Ask = ();
    type Used = ();

    fn config(&self) -> &BrowserPoolConfig {
        &self.config
    }

    fn slots(&self) -> &Arc<Slots<FakeSlot>> {
        &self.slots
    }

    fn permits(&self) -> &Arc<Semaphore> {
        &self.permits
    }

    fn alive(&self) -> &Arc<Alive> {
        &self.alive
    }

    fn recorder(&self) -> &BrowserRecorder {
        &self.recorder
    }

    fn runtime(&self) -> &tokio::runtime::Handle {
        &self.runtime
    }

    fn facts(&self, slot: &FakeSlot, closed: bool, _at: Checkpoint) -> Facts {
        let crashed = self.crashed.lock().unwrap().contains(&slot.id);
        Facts {
            closed,
            gone: crashed.then_some(RetireReason::Crashed),
            draining: None,
            used_up: (self.config.max_uses).is_some_and(|max| slot.uses >= max),
            // Never checked: every acquire that takes it probes it first.
            stamps: Stamps {
                created: slot.created,
                last_used: slot.last_used,
                last_checked: slot.created - Duration::from_secs(3600),
            },
            over_share: false,
        }
    }

    fn died(&self, slot: &FakeSlot) -> bool {
        self.crashed.lock().unwrap().contains(&slot.id)
    }

    fn outlook(&self) -> Outlook {
        Outlook {
            may_start: true,
            loads: None,
        }
    }

    fn endpoint(_slot: &FakeSlot) -> Option<usize> {
        None
    }

    async fn open(self: &Arc<Self>) -> Result<Option<FakeSlot>> {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        // A browser that failed or was cancelled mid-start ends with it.
        let alive = AliveToken::new(&self.alive);
        self.step(Action::Open, id).await?;
        self.running.lock().unwrap().insert(id);
        let now = Instant::now();
        Ok(Some(FakeSlot {
            id,
            uses: 0,
            created: now,
            last_used: now,
            _alive: alive,
        }))
    }

    async fn probe<'a>(&'a self, slot: &'a mut FakeSlot) -> Result<()> {
        self.step(Action::Probe, slot.id).await
    }

    async fn ready<'a>(&'a self, slot: &'a mut FakeSlot, _ask: &'a (), _fresh: bool) -> Result<()> {
        self.step(Action::Ready, slot.id).await
    }

    async fn before_lease<'a>(&'a self, _slot: &'a FakeSlot) -> Result<()> {
        Ok(())
    }

    fn count_use(&self, slot: &mut FakeSlot) {
        slot.uses += 1;
        slot.last_used = Instant::now();
    }

    async fn after_release<'a>(&'a self, _slot: &'a FakeSlot) -> Result<()> {
        Ok(())
    }

    async fn recycle<'a>(
        &'a self,
        slot: &'a mut FakeSlot,
        _used: (),
    ) -> std::result::Result<(), RetireReason> {
        self.step(Action::Recycle, slot.id)
            .await
            .map_err(|_| RetireReason::Unhealthy)
    }

    async fn leave<'a>(&'a self, _slot: &'a mut FakeSlot) {}

    fn retire(self: &Arc<Self>, slot: FakeSlot, reason: RetireReason) {
        self.retired.lock().unwrap().push((slot.id, reason));
        let fake = self.clone();
        self.runtime.spawn(async move {
            // Chromium's shut-down: a close, then SIGKILL after the grace,
            // so a browser that never answers still ends.
            let _ = tokio::time::timeout(CLOSE_GRACE, fake.step(Action::ShutDown, slot.id)).await;
            fake.running.lock().unwrap().remove(&slot.id);
            drop(slot);
            fake.slots.changed.notify_one();
        });
    }
}
