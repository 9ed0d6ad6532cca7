use std::collections::VecDeque;
use std::time::Duration;

use crate::error::{Error, Result};

/// Per-browser memory limits and how they are judged.
///
/// The defaults come from this machine (2 vCPU, Chromium 156): an idle
/// headless browser's process tree is ~220-360 MB PSS (~800+ MB if RSS were
/// summed) and each open page adds ~12 MB. A soft limit of 400 MB leaves room
/// for a lease's pages; the hard limit of 500 MB catches a page that keeps
/// allocating.
///
/// # Example
///
/// ```
/// use tidepool::memory::MemoryPolicy;
///
/// let p = MemoryPolicy { soft_limit_bytes: 300_000_000, ..MemoryPolicy::default() };
/// p.validate()?;
/// # Ok::<(), tidepool::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemoryPolicy {
    /// Above this for most samples of the window: a warning (default 400 MB).
    pub soft_limit_bytes: u64,
    /// Above this in one sample: the browser is evicted (default 500 MB).
    pub hard_limit_bytes: u64,
    /// How often each browser is measured (default 1 s).
    pub sample_interval: Duration,
    /// Samples the soft limit is judged over (default 5).
    pub window: usize,
    /// A warning clears only below `soft_limit - hysteresis` (default 20 MB).
    pub hysteresis_bytes: u64,
}

impl Default for MemoryPolicy {
    fn default() -> Self {
        MemoryPolicy {
            soft_limit_bytes: 400_000_000,
            hard_limit_bytes: 500_000_000,
            sample_interval: Duration::from_secs(1),
            window: 5,
            hysteresis_bytes: 20_000_000,
        }
    }
}

impl MemoryPolicy {
    /// Checks every field; the error names the field.
    pub fn validate(&self) -> Result<()> {
        let field = |name: &str, problem: String| {
            Err(Error::config(format!("browser.memory.{name}"), problem))
        };
        if self.soft_limit_bytes == 0 {
            return field("soft_limit_bytes", "must be greater than zero".into());
        }
        if self.hard_limit_bytes < self.soft_limit_bytes {
            return field(
                "hard_limit_bytes",
                format!(
                    "{} is below soft_limit_bytes {}",
                    self.hard_limit_bytes, self.soft_limit_bytes
                ),
            );
        }
        if self.sample_interval.is_zero() {
            return field("sample_interval", "must be greater than zero".into());
        }
        if self.window == 0 {
            return field("window", "must be at least 1".into());
        }
        if self.hysteresis_bytes >= self.soft_limit_bytes {
            return field("hysteresis_bytes", "must be below soft_limit_bytes".into());
        }
        Ok(())
    }
}

/// What one sample changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SoftEvent {
    /// Over the soft limit for most of the window: warn, once.
    Exceeded,
    /// Back below the soft limit minus the hysteresis.
    Cleared,
}

/// The soft-limit judgement of one browser, over a sliding window of samples.
#[derive(Debug, Clone)]
pub struct SoftLimitTracker {
    limit: u64,
    clear_below: u64,
    window: usize,
    recent: VecDeque<bool>,
    warned: bool,
}

impl SoftLimitTracker {
    /// A tracker for `policy`.
    pub fn new(policy: &MemoryPolicy) -> SoftLimitTracker {
        SoftLimitTracker {
            limit: policy.soft_limit_bytes,
            clear_below: policy.soft_limit_bytes - policy.hysteresis_bytes,
            window: policy.window,
            recent: VecDeque::with_capacity(policy.window),
            warned: false,
        }
    }

    /// Takes one sample; returns the event it causes, if any. A warning fires
    /// once when more than half the window is over the limit, and not again
    /// until the memory has cleared, so a browser hovering at the limit does
    /// not flap.
    pub fn sample(&mut self, bytes: u64) -> Option<SoftEvent> {
        if self.recent.len() == self.window {
            self.recent.pop_front();
        }
        self.recent.push_back(bytes > self.limit);
        let over = self.recent.iter().filter(|&&o| o).count();
        if !self.warned && over * 2 > self.window {
            self.warned = true;
            return Some(SoftEvent::Exceeded);
        }
        if self.warned && bytes < self.clear_below {
            self.warned = false;
            self.recent.clear();
            return Some(SoftEvent::Cleared);
        }
        None
    }

    /// Whether a warning is in force.
    pub fn warned(&self) -> bool {
        self.warned
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> MemoryPolicy {
        MemoryPolicy {
            soft_limit_bytes: 100,
            hard_limit_bytes: 200,
            window: 5,
            hysteresis_bytes: 10,
            ..MemoryPolicy::default()
        }
    }

    #[test]
    fn hovering_at_the_limit_warns_once_and_clearing_needs_the_margin() {
        let mut t = SoftLimitTracker::new(&policy());
        let samples = [
            101, 99, 101, 101, 99, 101, 99, 101, 95, 101, 101, 89, 101, 101, 101,
        ];
        let events: Vec<(usize, SoftEvent)> = samples
            .iter()
            .enumerate()
            .filter_map(|(i, &b)| t.sample(b).map(|e| (i, e)))
            .collect();
        // Warned when 3 of 5 are over (index 3); 99 and 95 do not clear (not
        // below 90); 89 clears; then a second crossing warns once more.
        assert_eq!(
            events,
            vec![
                (3, SoftEvent::Exceeded),
                (11, SoftEvent::Cleared),
                (14, SoftEvent::Exceeded)
            ]
        );
    }

    #[test]
    fn a_single_spike_does_not_warn() {
        let mut t = SoftLimitTracker::new(&policy());
        for b in [50, 150, 50, 50, 50, 150, 50] {
            assert_eq!(t.sample(b), None);
        }
    }

    #[test]
    fn inconsistent_limits_name_the_field() {
        let e = MemoryPolicy {
            hard_limit_bytes: 50,
            ..policy()
        }
        .validate()
        .unwrap_err()
        .to_string();
        assert!(e.contains("browser.memory.hard_limit_bytes"), "{e}");
    }
}
