//! How long a pooled resource is kept, and when it is probed: the rules the
//! browser pool and the session pool share.

use std::time::{Duration, Instant};

use crate::error::{Error, Result};

/// How long a pooled resource (a browser, a page session) is kept and when
/// it is probed before reuse.
///
/// Both [`BrowserPoolConfig`](crate::browser::BrowserPoolConfig) and
/// [`SessionPoolConfig`](crate::cdp::SessionPoolConfig) hold one; each pool
/// asks `Retention::decide` the same question at the same moments, so an
/// idle resource is judged by one rule wherever it waits.
///
/// ```
/// use std::time::Duration;
/// use tidepool_pools::Retention;
///
/// let retention = Retention {
///     idle_timeout: Duration::from_secs(20),
///     ..Retention::default()
/// };
/// retention.validate("browser.retention")?;
/// # Ok::<(), tidepool_pools::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// An idle resource unused this long is retired (default 60 s; the browser
    /// pool keeps `min_idle` browsers whatever their idleness).
    pub idle_timeout: Duration,
    /// A resource is retired at this age, at its next release or idle check
    /// (default 30 min).
    pub max_lifetime: Duration,
    /// A resource unchecked this long is probed before it is handed out, and
    /// the browser pool's maintenance probes idle browsers this often
    /// (default 30 s).
    pub health_check_interval: Duration,
    /// Deadline of one probe (default 2 s).
    pub health_check_timeout: Duration,
}

impl Default for Retention {
    fn default() -> Self {
        Retention {
            idle_timeout: Duration::from_secs(60),
            max_lifetime: Duration::from_secs(30 * 60),
            health_check_interval: Duration::from_secs(30),
            health_check_timeout: Duration::from_secs(2),
        }
    }
}

/// What [`Retention::decide`] says of one idle resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Decision {
    /// Older than `max_lifetime`: retire it.
    Expired,
    /// Unused longer than `idle_timeout` (and allowed to go): retire it.
    IdleTooLong,
    /// Unchecked longer than `health_check_interval`: probe it first.
    Probe,
    /// Hand it out as it is.
    Keep,
}

/// The moments a pooled resource's fate depends on.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Stamps {
    pub(crate) created: Instant,
    pub(crate) last_used: Instant,
    pub(crate) last_checked: Instant,
}

impl Retention {
    /// Checks every field; the error names the field under `section`
    /// (`"browser.retention"`, `"sessions.retention"`).
    pub fn validate(&self, section: &str) -> Result<()> {
        for (name, d) in [
            ("idle_timeout", self.idle_timeout),
            ("max_lifetime", self.max_lifetime),
            ("health_check_interval", self.health_check_interval),
            ("health_check_timeout", self.health_check_timeout),
        ] {
            if d.is_zero() {
                return Err(Error::config(
                    format!("{section}.{name}"),
                    "must be greater than zero",
                ));
            }
        }
        Ok(())
    }

    /// The fate of an idle resource with these `stamps`. `may_go_idle` is
    /// false where the pool must keep it despite its idleness (the browser
    /// pool's `min_idle`).
    pub(crate) fn decide(&self, stamps: Stamps, may_go_idle: bool) -> Decision {
        if self.expired(stamps.created) {
            Decision::Expired
        } else if may_go_idle && stamps.last_used.elapsed() > self.idle_timeout {
            Decision::IdleTooLong
        } else if stamps.last_checked.elapsed() > self.health_check_interval {
            Decision::Probe
        } else {
            Decision::Keep
        }
    }

    /// Whether a resource created at `created` has outlived `max_lifetime`.
    pub(crate) fn expired(&self, created: Instant) -> bool {
        created.elapsed() >= self.max_lifetime
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stamps(age: u64, unused: u64, unchecked: u64) -> Stamps {
        let now = Instant::now();
        let ago = |s| now.checked_sub(Duration::from_secs(s)).unwrap();
        Stamps {
            created: ago(age),
            last_used: ago(unused),
            last_checked: ago(unchecked),
        }
    }

    #[test]
    fn decides_age_before_idleness_before_probing() {
        let r = Retention::default();
        assert_eq!(r.decide(stamps(3600, 120, 120), true), Decision::Expired);
        assert_eq!(r.decide(stamps(600, 120, 120), true), Decision::IdleTooLong);
        assert_eq!(r.decide(stamps(600, 120, 120), false), Decision::Probe);
        assert_eq!(r.decide(stamps(600, 10, 10), true), Decision::Keep);
    }

    #[test]
    fn a_zero_duration_is_refused_by_its_full_name() {
        let r = Retention {
            health_check_timeout: Duration::ZERO,
            ..Retention::default()
        };
        let e = r.validate("sessions.retention").unwrap_err().to_string();
        assert!(e.contains("sessions.retention.health_check_timeout"), "{e}");
    }
}
