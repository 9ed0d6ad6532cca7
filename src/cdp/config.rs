//! How a session pool keeps its page sessions.

use std::time::Duration;

use crate::error::{Error, Result};

/// How a [`SessionPool`] keeps its page sessions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionPoolConfig {
    /// Attached page sessions kept at most (default 10).
    pub max_sessions: usize,
    /// An idle session is closed after this long unused (default 30 s).
    pub idle_timeout: Duration,
    /// Every session is closed at this age (default 300 s).
    pub max_lifetime: Duration,
    /// A session idle longer than this is probed (`Runtime.evaluate 1`) before reuse (default 10 s).
    pub health_check_interval: Duration,
    /// Deadline of that probe (default 1 s).
    pub health_check_timeout: Duration,
    /// Whether a reset also clears the context's cookies (default true). Off,
    /// sessions of one lease share their cookies as tabs of one browser would.
    pub clear_cookies_on_reset: bool,
}

impl Default for SessionPoolConfig {
    fn default() -> Self {
        SessionPoolConfig {
            max_sessions: 10,
            idle_timeout: Duration::from_secs(30),
            max_lifetime: Duration::from_secs(300),
            health_check_interval: Duration::from_secs(10),
            health_check_timeout: Duration::from_secs(1),
            clear_cookies_on_reset: true,
        }
    }
}

impl SessionPoolConfig {
    /// Checks every field; the error names the field.
    pub fn validate(&self) -> Result<()> {
        if self.max_sessions == 0 {
            return Err(Error::config("sessions.max_sessions", "must be at least 1"));
        }
        for (name, d) in [
            ("idle_timeout", self.idle_timeout),
            ("max_lifetime", self.max_lifetime),
            ("health_check_interval", self.health_check_interval),
            ("health_check_timeout", self.health_check_timeout),
        ] {
            if d.is_zero() {
                return Err(Error::config(
                    format!("sessions.{name}"),
                    "must be greater than zero",
                ));
            }
        }
        Ok(())
    }
}
