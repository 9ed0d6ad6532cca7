//! A scripted [`Backend`] for the core's tests: slots are numbers, each
//! step (open, probe, ready, recycle, shut down) takes the next outcome of
//! its script (Ok, Err, Slow or Never; Ok once the script runs out), and
//! every browser the fake starts is tracked until it ends, so a test can
//! tell which slots run, which retired and why. Its slots open on
//! [`ENDPOINTS`] endpoints, as a fleet's do: the test can crash or evict a
//! slot's browser, or lose an endpoint with every slot on it.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;

use super::alive::{Alive, AliveToken};
use super::backend::{Backend, Outlook};
use super::close::CLOSE_GRACE;
use super::config::BrowserPoolConfig;
use super::placement::{self, EndpointLoad};
use super::slots::Slots;
use super::stats::{BrowserRecorder, RetireReason};
use super::verdict::{Checkpoint, Facts};
use crate::error::{Error, Result};
use crate::retention::Stamps;

/// The endpoints slots open on, the least loaded first.
pub(crate) const ENDPOINTS: usize = 2;

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
    pub(crate) endpoint: usize,
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
    /// Slots opened and not yet ended, and the endpoint of each.
    running: Mutex<BTreeMap<u64, usize>>,
    /// Slots whose browser is gone (crashed, evicted, its endpoint lost).
    gone: Mutex<BTreeMap<u64, RetireReason>>,
    /// Endpoints lost and not yet back.
    down: Mutex<BTreeSet<usize>>,
    /// Leases held on each endpoint.
    leased: Mutex<[usize; ENDPOINTS]>,
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
            gone: Mutex::default(),
            down: Mutex::default(),
            leased: Mutex::default(),
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

    /// Slot `id`'s browser dies (`Crashed`) or is evicted for its memory
    /// (`Memory`): its next step fails and its next verdict retires it.
    pub(crate) fn end(&self, id: u64, reason: RetireReason) {
        self.gone.lock().unwrap().entry(id).or_insert(reason);
    }

    /// Endpoint `e` is lost, with every slot on it; no slot opens there
    /// until it is back.
    pub(crate) fn lose(&self, e: usize) {
        self.down.lock().unwrap().insert(e);
        let running = self.running.lock().unwrap().clone();
        for (id, _) in running.iter().filter(|(_, on)| **on == e) {
            self.end(*id, RetireReason::Crashed);
        }
    }

    /// Endpoint `e` answers again.
    pub(crate) fn rejoin(&self, e: usize) {
        self.down.lock().unwrap().remove(&e);
    }

    /// Whether slot `id`'s browser is gone.
    pub(crate) fn is_gone(&self, id: u64) -> bool {
        self.gone.lock().unwrap().contains_key(&id)
    }

    pub(crate) fn running(&self) -> BTreeSet<u64> {
        self.running.lock().unwrap().keys().copied().collect()
    }

    fn loads(&self) -> Vec<EndpointLoad> {
        let down = self.down.lock().unwrap().clone();
        let running = self.running.lock().unwrap().clone();
        let leased = *self.leased.lock().unwrap();
        (0..ENDPOINTS)
            .map(|e| EndpointLoad {
                up: !down.contains(&e),
                slots: running.values().filter(|on| **on == e).count(),
                leased: leased[e],
            })
            .collect()
    }

    async fn step(&self, action: Action, slot: u64) -> Result<()> {
        let gone = || -> Result<()> {
            match self.is_gone(slot) && action != Action::ShutDown {
                true => Err(Error::BrowserCrashed {
                    browser: slot,
                    action: format!("{action:?}"),
                    detail: "gone".into(),
                }),
                false => Ok(()),
            }
        };
        gone()?;
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
                gone()
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
        Facts {
            closed,
            gone: self.gone.lock().unwrap().get(&slot.id).copied(),
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
        self.is_gone(slot.id)
    }

    fn outlook(&self) -> Outlook {
        Outlook {
            may_start: true,
            loads: Some(self.loads()),
        }
    }

    fn endpoint(slot: &FakeSlot) -> Option<usize> {
        Some(slot.endpoint)
    }

    async fn open(self: &Arc<Self>) -> Result<Option<FakeSlot>> {
        let endpoint = match placement::endpoint_for_new_slot(&self.loads(), &[], usize::MAX) {
            Ok(e) => e,
            Err(_) => {
                return Err(Error::NoEndpointUp {
                    endpoints: "every fake endpoint is lost".into(),
                })
            }
        };
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        // A browser that failed or was cancelled mid-start ends with it.
        let alive = AliveToken::new(&self.alive);
        self.step(Action::Open, id).await?;
        if self.down.lock().unwrap().contains(&endpoint) {
            // Lost while the slot opened on it.
            return Err(Error::NoEndpointUp {
                endpoints: format!("fake endpoint {endpoint} lost"),
            });
        }
        self.running.lock().unwrap().insert(id, endpoint);
        let now = Instant::now();
        Ok(Some(FakeSlot {
            id,
            endpoint,
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

    fn lease_started(&self, slot: &FakeSlot) {
        self.leased.lock().unwrap()[slot.endpoint] += 1;
    }

    fn lease_ended(&self, slot: &FakeSlot) {
        self.leased.lock().unwrap()[slot.endpoint] -= 1;
    }

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
