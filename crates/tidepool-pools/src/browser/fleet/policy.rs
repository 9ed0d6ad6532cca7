//! What a service sets for its fleet, and what it reads back of each
//! endpoint.

use std::time::Duration;

use serde::Serialize;

use crate::error::{Error, Result};

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

/// One endpoint's figures, from [`BrowserPool::endpoints`](crate::browser::BrowserPool::endpoints).
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
