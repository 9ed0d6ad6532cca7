//! The remote browsers of a pool in connect mode: where each endpoint stands
//! (up, or down and backing off until its next retry), which endpoint a new
//! slot goes to, and the per-endpoint counts a report shows.
//!
//! Every method here works under one short lock and never across a call to
//! a browser; the connecting and the retries happen in the pool.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde::Serialize;

use super::backoff::jittered;
use crate::error::{Error, Result};
use crate::recording::gauge_add;

/// How a pool in connect mode spreads its leases over the endpoints and
/// treats one that fails.
///
/// # Example
///
/// ```
/// use std::time::Duration;
/// use tidepool_pools::browser::{BrowserPoolConfig, BrowserSource, FleetPolicy};
///
/// let config = BrowserPoolConfig {
///     source: BrowserSource::Connect {
///         endpoints: vec!["http://chrome-0:9222".into(), "http://chrome-1:9222".into()],
///     },
///     max_size: 8,
///     fleet: FleetPolicy {
///         max_leases_per_endpoint: Some(4),
///         ..FleetPolicy::default()
///     },
///     ..BrowserPoolConfig::default()
/// };
/// config.validate()?;
/// # Ok::<(), tidepool_pools::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FleetPolicy {
    /// Most lease slots (each a context with its page) on one endpoint at
    /// once (default none: only `max_size` bounds them). When set, an
    /// endpoint's slots share one connection, one browser to the pool, so
    /// the memory policy's limits, times this cap, apply per endpoint.
    pub max_leases_per_endpoint: Option<usize>,
    /// The wait before a lost endpoint is first retried (default 500 ms).
    /// Each failed retry doubles it, up to `max_backoff`; each wait is
    /// jittered by ±25 % so that many clients do not retry in step.
    pub backoff: Duration,
    /// The longest wait between two retries (default 10 s).
    pub max_backoff: Duration,
    /// How often each connection is asked for its version (default 1 s);
    /// it has two periods to answer. A browser that hangs (stopped,
    /// deadlocked, its host swapping) keeps its socket open; the heartbeat
    /// is what finds it, within three periods, leases or not. `None` leaves
    /// it to the deadlines of the calls.
    pub heartbeat: Option<Duration>,
    /// Retries of a lost endpoint that may fail in a row before the pool
    /// gives it up for good (default none: it is retried for as long as
    /// the pool lives). An endpoint given up gets no slot again; `Some(0)`
    /// gives an endpoint up at its first loss, for a fleet whose lost
    /// members are replaced, never restarted at the same address.
    pub max_retries: Option<u32>,
}

impl Default for FleetPolicy {
    fn default() -> Self {
        FleetPolicy {
            max_leases_per_endpoint: None,
            backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(10),
            heartbeat: Some(Duration::from_secs(1)),
            max_retries: None,
        }
    }
}

impl FleetPolicy {
    /// Checks the fields; the error names the one at fault.
    pub fn validate(&self) -> Result<()> {
        let field = |name: &str, problem: String| {
            Err(Error::config(format!("browser.fleet.{name}"), problem))
        };
        if self.max_leases_per_endpoint == Some(0) {
            return field(
                "max_leases_per_endpoint",
                "must be at least 1 (or unset for no cap)".into(),
            );
        }
        if self.backoff.is_zero() {
            return field("backoff", "must be greater than zero".into());
        }
        if self.max_backoff < self.backoff {
            return field(
                "max_backoff",
                format!(
                    "is {:?}, shorter than backoff ({:?})",
                    self.max_backoff, self.backoff
                ),
            );
        }
        if self.heartbeat.is_some_and(|h| h.is_zero()) {
            return field(
                "heartbeat",
                "must be greater than zero (or unset for none)".into(),
            );
        }
        Ok(())
    }
}

/// Where an endpoint stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum EndpointState {
    /// Answering: new slots may open in it.
    Up,
    /// Lost or refusing, waiting out its backoff before the next retry.
    BackingOff,
    /// A retry is under way.
    Retrying,
    /// Lost, and given up after [`FleetPolicy::max_retries`] failed
    /// retries: never retried again.
    GivenUp,
}

/// One endpoint's figures, from [`BrowserPool::endpoints`](super::BrowserPool::endpoints).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct EndpointStats {
    /// The endpoint as configured.
    pub endpoint: String,
    /// Where it stands now.
    pub state: EndpointState,
    /// Lease slots open in it now: leased, idle or being readied.
    pub slots: usize,
    /// Leases out on it now.
    pub leased: usize,
    /// Leases it served.
    pub served: u64,
    /// Times it was lost (connection closed, heartbeat unanswered, a call
    /// failing with its browser gone) or refused a connection.
    pub losses: u64,
    /// Retries that failed since it was last up.
    pub failed_retries: u32,
    /// The wait before its next retry (after the last loss or failed
    /// retry), jitter aside, in milliseconds.
    pub backoff_ms: u64,
    /// Why it was last lost or refused, if it ever was.
    pub last_error: Option<String>,
}

#[derive(Debug)]
struct Health {
    endpoint: String,
    state: EndpointState,
    retry_at: Instant,
    backoff: Duration,
    failed_retries: u32,
    slots: usize,
    leased: usize,
    served: u64,
    losses: u64,
    last_error: Option<String>,
    /// A connection to it is being opened.
    connecting: bool,
}

/// The endpoints of a pool in connect mode and where each stands.
#[derive(Debug)]
pub(crate) struct Fleet {
    policy: FleetPolicy,
    health: Mutex<Vec<Health>>,
    /// A connection opening finished (or failed).
    connected: tokio::sync::Notify,
}

/// Why no new slot could open.
#[derive(Debug)]
pub(crate) enum Refusal {
    /// Endpoints are up but every one holds its cap of slots: wait for one.
    AtCapacity,
    /// No endpoint is up: the error names each and why.
    NoneUp(Error),
}

impl Fleet {
    pub(crate) fn new(endpoints: &[String], policy: FleetPolicy) -> Fleet {
        let now = Instant::now();
        let health = endpoints
            .iter()
            .map(|e| Health {
                endpoint: e.clone(),
                state: EndpointState::Up,
                retry_at: now,
                backoff: policy.backoff,
                failed_retries: 0,
                slots: 0,
                leased: 0,
                served: 0,
                losses: 0,
                last_error: None,
                connecting: false,
            })
            .collect();
        Fleet {
            policy,
            health: Mutex::new(health),
            connected: tokio::sync::Notify::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Vec<Health>> {
        // Plain counters: a panic elsewhere leaves nothing worth refusing.
        self.health.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The configured address of endpoint `index`.
    pub(crate) fn endpoint(&self, index: usize) -> String {
        self.lock()[index].endpoint.clone()
    }

    /// A new slot on the up endpoint with the fewest slots (then the fewest
    /// leases, then the first), under its cap; endpoints in `tried` are
    /// passed over. The slot is counted from here until its ticket drops.
    pub(crate) fn choose(
        self: &Arc<Self>,
        tried: &[usize],
    ) -> std::result::Result<FleetSlot, Refusal> {
        let cap = self.policy.max_leases_per_endpoint.unwrap_or(usize::MAX);
        let mut health = self.lock();
        let best = health
            .iter()
            .enumerate()
            .filter(|(i, h)| h.state == EndpointState::Up && !tried.contains(i) && h.slots < cap)
            .min_by_key(|(i, h)| (h.slots, h.leased, *i))
            .map(|(i, _)| i);
        match best {
            Some(index) => {
                health[index].slots += 1;
                Ok(FleetSlot {
                    fleet: self.clone(),
                    index,
                })
            }
            None if health
                .iter()
                .enumerate()
                .any(|(i, h)| h.state == EndpointState::Up && !tried.contains(&i)) =>
            {
                Err(Refusal::AtCapacity)
            }
            None => Err(Refusal::NoneUp(none_up(&health, cap))),
        }
    }

    /// The right to open a connection to endpoint `index`, if no one else
    /// is opening one: the endpoint's other slots wait for it and open in
    /// it, so that its slots share one connection (and one memory limit).
    pub(crate) fn claim_connect(self: &Arc<Self>, index: usize) -> Option<ConnectClaim> {
        let mut health = self.lock();
        if health[index].connecting {
            return None;
        }
        health[index].connecting = true;
        Some(ConnectClaim {
            fleet: self.clone(),
            index,
        })
    }

    /// Completes when a connection opening next finishes, however it ends.
    pub(crate) fn connect_finished(&self) -> tokio::sync::futures::Notified<'_> {
        self.connected.notified()
    }

    /// Marks endpoint `index` lost for `why`: its slots go as they are
    /// found dead, and it is retried after its backoff. An endpoint already
    /// down keeps its schedule.
    pub(crate) fn lost(&self, index: usize, why: &str) {
        let mut health = self.lock();
        let h = &mut health[index];
        if h.state != EndpointState::Up {
            return;
        }
        h.losses += 1;
        metrics::counter!(LOSSES).increment(1);
        gauge_add(DOWN, 1.0);
        h.backoff = self.policy.backoff;
        h.retry_at = Instant::now() + jittered(h.backoff);
        h.last_error = Some(why.to_owned());
        if self.policy.max_retries == Some(0) {
            h.state = EndpointState::GivenUp;
            tracing::warn!(endpoint = %h.endpoint, error = why, "browser endpoint lost and given up (max_retries is 0)");
            return;
        }
        h.state = EndpointState::BackingOff;
        tracing::warn!(endpoint = %h.endpoint, error = why, backoff = ?h.backoff, "browser endpoint lost");
    }

    /// The endpoints due for a retry, now marked retrying: the caller owes
    /// each a [`retried`](Self::retried).
    pub(crate) fn due_retries(&self) -> Vec<(usize, String)> {
        let now = Instant::now();
        let mut health = self.lock();
        health
            .iter_mut()
            .enumerate()
            .filter(|(_, h)| h.state == EndpointState::BackingOff && h.retry_at <= now)
            .map(|(i, h)| {
                h.state = EndpointState::Retrying;
                (i, h.endpoint.clone())
            })
            .collect()
    }

    /// The outcome of a retry of endpoint `index`: up again, or another,
    /// longer, backoff.
    pub(crate) fn retried(&self, index: usize, outcome: std::result::Result<(), String>) {
        let mut health = self.lock();
        let h = &mut health[index];
        match outcome {
            Ok(()) => {
                h.state = EndpointState::Up;
                gauge_add(DOWN, -1.0);
                h.failed_retries = 0;
                h.backoff = self.policy.backoff;
                tracing::info!(endpoint = %h.endpoint, "browser endpoint is up again");
            }
            Err(why) => {
                h.failed_retries += 1;
                if self
                    .policy
                    .max_retries
                    .is_some_and(|most| h.failed_retries >= most)
                {
                    h.state = EndpointState::GivenUp;
                    tracing::warn!(endpoint = %h.endpoint, error = %why, retries = h.failed_retries, "browser endpoint given up");
                    h.last_error = Some(why);
                    return;
                }
                h.state = EndpointState::BackingOff;
                h.backoff = (h.backoff * 2).min(self.policy.max_backoff);
                h.retry_at = Instant::now() + jittered(h.backoff);
                tracing::debug!(endpoint = %h.endpoint, error = %why, backoff = ?h.backoff, "browser endpoint still down");
                h.last_error = Some(why);
            }
        }
    }

    /// Each endpoint's standing for a lease: whether it is up, and its live
    /// leases; by index.
    pub(crate) fn loads(&self) -> Vec<(bool, usize)> {
        self.lock()
            .iter()
            .map(|h| (h.state == EndpointState::Up, h.leased))
            .collect()
    }

    /// Whether endpoints are up but every one holds its cap of slots.
    pub(crate) fn at_capacity(&self) -> bool {
        let cap = self.policy.max_leases_per_endpoint.unwrap_or(usize::MAX);
        let health = self.lock();
        let mut up = health.iter().filter(|h| h.state == EndpointState::Up);
        up.clone().next().is_some() && up.all(|h| h.slots >= cap)
    }

    /// Whether no endpoint is up.
    pub(crate) fn none_up(&self) -> bool {
        self.lock().iter().all(|h| h.state != EndpointState::Up)
    }

    /// Whether an endpoint is due for a retry.
    pub(crate) fn retry_due(&self) -> bool {
        let now = Instant::now();
        self.lock()
            .iter()
            .any(|h| h.state == EndpointState::BackingOff && h.retry_at <= now)
    }

    /// Whether endpoint `index` holds more than its share: two slots or
    /// more above the up endpoint with the fewest that has room for more.
    /// A slot of it that comes back from a lease is then closed, and its
    /// replacement opens where there is room: how an endpoint that rejoins
    /// gets its share of a pool that is full.
    pub(crate) fn over_share(&self, index: usize) -> bool {
        let cap = self.policy.max_leases_per_endpoint.unwrap_or(usize::MAX);
        let health = self.lock();
        let fewest = health
            .iter()
            .filter(|h| h.state == EndpointState::Up && h.slots < cap)
            .map(|h| h.slots)
            .min();
        fewest.is_some_and(|fewest| health[index].slots > fewest + 1)
    }

    /// Every endpoint's figures.
    pub(crate) fn stats(&self) -> Vec<EndpointStats> {
        self.lock()
            .iter()
            .map(|h| EndpointStats {
                endpoint: h.endpoint.clone(),
                state: h.state,
                slots: h.slots,
                leased: h.leased,
                served: h.served,
                losses: h.losses,
                failed_retries: h.failed_retries,
                backoff_ms: h.backoff.as_millis() as u64,
                last_error: h.last_error.clone(),
            })
            .collect()
    }
}

impl Drop for Fleet {
    fn drop(&mut self) {
        // A dropped pool's down endpoints leave the process-wide gauge.
        let down = self
            .lock()
            .iter()
            .filter(|h| h.state != EndpointState::Up)
            .count();
        gauge_add(DOWN, -(down as f64));
    }
}

/// The metrics of the fleet (see [`crate::metrics_catalog`]).
const LOSSES: &str = "tidepool_browser_endpoint_losses_total";
const DOWN: &str = "tidepool_browser_endpoints_down";

/// The error of an acquire that found no endpoint up: each one, where it
/// stands and why.
fn none_up(health: &[Health], cap: usize) -> Error {
    let now = Instant::now();
    let each: Vec<String> = health
        .iter()
        .map(|h| {
            let why = h.last_error.as_deref().unwrap_or("no reason recorded");
            match h.state {
                EndpointState::Up if h.slots >= cap => {
                    format!("{} (at its cap of {cap} leases)", h.endpoint)
                }
                EndpointState::Up => format!("{} (connection failed: {why})", h.endpoint),
                EndpointState::Retrying => format!("{} (down, being retried: {why})", h.endpoint),
                EndpointState::BackingOff => format!(
                    "{} (down: {why}; next retry in {:?})",
                    h.endpoint,
                    h.retry_at.saturating_duration_since(now)
                ),
                EndpointState::GivenUp => format!(
                    "{} (given up after {} failed retries: {why})",
                    h.endpoint, h.failed_retries
                ),
            }
        })
        .collect();
    Error::NoEndpointUp {
        endpoints: each.join("; "),
    }
}

/// The claim of one connection being opened to an endpoint; released,
/// and its waiters woken, when dropped.
#[derive(Debug)]
pub(crate) struct ConnectClaim {
    fleet: Arc<Fleet>,
    index: usize,
}

impl Drop for ConnectClaim {
    fn drop(&mut self) {
        self.fleet.lock()[self.index].connecting = false;
        self.fleet.connected.notify_waiters();
    }
}

/// One lease slot counted on its endpoint, from the choice of the endpoint
/// until the slot is dropped; it also counts the slot's leases there.
#[derive(Debug)]
pub(crate) struct FleetSlot {
    fleet: Arc<Fleet>,
    pub(crate) index: usize,
}

impl FleetSlot {
    /// The fleet the slot is counted in.
    pub(crate) fn fleet(&self) -> &Arc<Fleet> {
        &self.fleet
    }

    /// A lease began on the slot.
    pub(crate) fn lease_started(&self) {
        let mut health = self.fleet.lock();
        health[self.index].leased += 1;
        health[self.index].served += 1;
    }

    /// The slot's lease ended.
    pub(crate) fn lease_ended(&self) {
        let mut health = self.fleet.lock();
        let h = &mut health[self.index];
        h.leased = h.leased.saturating_sub(1);
    }
}

impl Drop for FleetSlot {
    fn drop(&mut self) {
        let mut health = self.fleet.lock();
        let h = &mut health[self.index];
        h.slots = h.slots.saturating_sub(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fleet(n: usize, cap: Option<usize>) -> Arc<Fleet> {
        let endpoints: Vec<String> = (0..n).map(|i| format!("ws://e{i}")).collect();
        Arc::new(Fleet::new(
            &endpoints,
            FleetPolicy {
                max_leases_per_endpoint: cap,
                ..FleetPolicy::default()
            },
        ))
    }

    #[test]
    fn new_slots_go_to_the_endpoint_with_the_fewest_until_each_is_at_its_cap() {
        let f = fleet(3, Some(2));
        let slots: Vec<FleetSlot> = (0..6).map(|_| f.choose(&[]).unwrap()).collect();
        let on: Vec<usize> = slots.iter().map(|s| s.index).collect();
        assert_eq!(on, [0, 1, 2, 0, 1, 2]);
        assert!(matches!(f.choose(&[]), Err(Refusal::AtCapacity)));
        drop(slots);
        assert!(f.stats().iter().all(|s| s.slots == 0));
    }

    #[test]
    fn a_lost_endpoint_gets_no_slot_until_a_retry_brings_it_back() {
        let f = fleet(2, None);
        f.lost(0, "connection closed");
        for _ in 0..3 {
            assert_eq!(f.choose(&[]).unwrap().index, 1);
        }
        assert!(f.due_retries().is_empty(), "retried before its backoff");
        std::thread::sleep(f.policy.backoff.mul_f64(1.3));
        assert_eq!(f.due_retries(), [(0, "ws://e0".to_owned())]);
        f.retried(0, Err("refused".into()));
        assert_eq!(
            f.stats()[0].backoff_ms,
            (f.policy.backoff * 2).as_millis() as u64
        );
        assert_eq!(f.stats()[0].state, EndpointState::BackingOff);
        f.retried(0, Ok(()));
        assert_eq!(f.choose(&[]).unwrap().index, 0);
    }

    fn fleet_with_retries(n: usize, max_retries: u32) -> Arc<Fleet> {
        let endpoints: Vec<String> = (0..n).map(|i| format!("ws://e{i}")).collect();
        Arc::new(Fleet::new(
            &endpoints,
            FleetPolicy {
                backoff: Duration::from_millis(1),
                max_backoff: Duration::from_millis(1),
                max_retries: Some(max_retries),
                ..FleetPolicy::default()
            },
        ))
    }

    #[test]
    fn an_endpoint_is_given_up_after_max_retries_failed_retries() {
        let f = fleet_with_retries(2, 2);
        f.lost(0, "connection closed");
        for attempt in 1..=2 {
            std::thread::sleep(Duration::from_millis(3));
            assert_eq!(f.due_retries().len(), 1, "retry {attempt} not due");
            f.retried(0, Err("refused".into()));
        }
        std::thread::sleep(Duration::from_millis(3));
        assert!(f.due_retries().is_empty(), "retried past max_retries");
        assert!(!f.retry_due());
        assert_eq!(f.stats()[0].state, EndpointState::GivenUp);
        f.lost(0, "lost again");
        assert_eq!(f.stats()[0].state, EndpointState::GivenUp);
        assert_eq!(f.choose(&[]).unwrap().index, 1);
    }

    #[test]
    fn max_retries_zero_gives_an_endpoint_up_at_its_loss() {
        let f = fleet_with_retries(1, 0);
        f.lost(0, "connection closed");
        std::thread::sleep(Duration::from_millis(3));
        assert!(f.due_retries().is_empty());
        let Err(Refusal::NoneUp(e)) = f.choose(&[]) else {
            panic!("a given-up endpoint was chosen")
        };
        assert!(e.to_string().contains("given up"), "{e}");
    }

    #[test]
    fn with_none_up_the_error_names_every_endpoint_and_why() {
        let f = fleet(2, None);
        f.lost(0, "connection refused");
        f.lost(1, "heartbeat unanswered");
        let Err(Refusal::NoneUp(e)) = f.choose(&[]) else {
            panic!("an endpoint was chosen with none up")
        };
        let text = e.to_string();
        for says in [
            "ws://e0",
            "connection refused",
            "ws://e1",
            "heartbeat unanswered",
        ] {
            assert!(text.contains(says), "{text}");
        }
    }

    #[test]
    fn an_endpoint_two_slots_above_the_lightest_is_over_its_share() {
        let f = fleet(2, None);
        f.lost(1, "gone");
        let held: Vec<FleetSlot> = (0..3).map(|_| f.choose(&[]).unwrap()).collect();
        assert!(!f.over_share(0), "the only endpoint up holds no excess");
        f.retried(1, Ok(()));
        assert!(f.over_share(0));
        assert!(!f.over_share(1));
        drop(held);
    }
}
