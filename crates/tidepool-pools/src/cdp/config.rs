//! How a session pool keeps its page sessions.

use std::time::Duration;

use crate::error::{Error, Result};
use crate::retention::Retention;

/// How a [`SessionPool`](super::SessionPool) keeps its page sessions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionPoolConfig {
    /// Attached page sessions kept at most (default 10).
    pub max_sessions: usize,
    /// When sessions are closed for idleness or age, and when one is probed
    /// (`Runtime.evaluate 1`) before reuse (default: closed after 30 s idle
    /// or at 300 s of age, probed when idle over 10 s, with a 1 s deadline).
    pub retention: Retention,
    /// Whether a reset also clears the context's cookies (default true). Off,
    /// sessions of one lease share their cookies as tabs of one browser would.
    pub clear_cookies_on_reset: bool,
}

impl Default for SessionPoolConfig {
    fn default() -> Self {
        SessionPoolConfig {
            max_sessions: 10,
            retention: Retention {
                idle_timeout: Duration::from_secs(30),
                max_lifetime: Duration::from_secs(300),
                health_check_interval: Duration::from_secs(10),
                health_check_timeout: Duration::from_secs(1),
            },
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
        self.retention.validate("sessions.retention")
    }
}
