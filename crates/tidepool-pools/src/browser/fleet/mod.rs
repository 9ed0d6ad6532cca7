//! The remote browsers of a pool in connect mode: where each endpoint stands
//! (up, or down and backing off until its next retry), which endpoint a new
//! slot goes to, and the per-endpoint counts a report shows.
//!
//! Every method here works under one short lock and never across a call to
//! a browser; the connecting and the retries are in [`connect`].

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::backoff::jittered;
use super::placement::{self, EndpointLoad, NoRoom};
use crate::error::Error;
use crate::recording::gauge_add;

mod connect;
mod policy;
#[cfg(test)]
mod tests;

pub(crate) use connect::watch_endpoint;
pub use policy::{EndpointState, EndpointStats, FleetPolicy};

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

    /// Each endpoint's figures for `placement`, by index.
    fn endpoint_loads(health: &[Health]) -> Vec<EndpointLoad> {
        health
            .iter()
            .map(|h| EndpointLoad {
                up: h.state == EndpointState::Up,
                slots: h.slots,
                leased: h.leased,
            })
            .collect()
    }

    fn cap(&self) -> usize {
        self.policy.max_leases_per_endpoint.unwrap_or(usize::MAX)
    }

    /// A new slot on the endpoint `placement` chooses; endpoints in `tried`
    /// are passed over. The slot is counted from here until its ticket
    /// drops.
    pub(crate) fn choose(self: &Arc<Self>, tried: &[usize]) -> Result<EndpointTicket, Refusal> {
        let cap = self.cap();
        let mut health = self.lock();
        match placement::endpoint_for_new_slot(&Self::endpoint_loads(&health), tried, cap) {
            Ok(index) => {
                health[index].slots += 1;
                Ok(EndpointTicket {
                    fleet: self.clone(),
                    index,
                })
            }
            Err(NoRoom::AtCapacity) => Err(Refusal::AtCapacity),
            Err(NoRoom::NoneUp) => Err(Refusal::NoneUp(none_up(&health, cap))),
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
    pub(crate) fn retried(&self, index: usize, outcome: Result<(), String>) {
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

    /// Each endpoint's figures for `placement`, by index.
    pub(crate) fn loads(&self) -> Vec<EndpointLoad> {
        Self::endpoint_loads(&self.lock())
    }

    /// Whether endpoints are up but every one holds its cap of slots.
    pub(crate) fn at_capacity(&self) -> bool {
        let loads = self.loads();
        placement::endpoint_for_new_slot(&loads, &[], self.cap()) == Err(NoRoom::AtCapacity)
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

    /// Whether endpoint `index` holds more than its share (see
    /// `placement`). A slot of it that comes back from a lease is then
    /// closed, and its replacement opens where there is room: how an
    /// endpoint that rejoins gets its share of a pool that is full.
    pub(crate) fn over_share(&self, index: usize) -> bool {
        placement::over_share(&self.loads(), index, self.cap())
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

/// A slot's place on its endpoint, counted from the choice of the endpoint
/// until the slot drops; it also counts the slot's leases there.
#[derive(Debug)]
pub(crate) struct EndpointTicket {
    fleet: Arc<Fleet>,
    pub(crate) index: usize,
}

impl EndpointTicket {
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

impl Drop for EndpointTicket {
    fn drop(&mut self) {
        let mut health = self.fleet.lock();
        let h = &mut health[self.index];
        h.slots = h.slots.saturating_sub(1);
    }
}
