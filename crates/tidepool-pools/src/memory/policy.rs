use std::collections::VecDeque;
use std::time::Duration;

use crate::error::{Error, Result};

/// Per-browser memory limits and how they are judged.
///
/// The defaults come from this machine (2 vCPU, Chromium 156, the pool's
/// default flags; `make perf`, `memory_pressure` report): an idle headless
/// browser's process tree is ~230 MB PSS (~850 MB if RSS were summed) and each
/// open fixture page adds ~16 MB. A soft limit of 400 MB leaves room for about
/// ten pages; the hard limit of 500 MB (about sixteen) catches a page that
/// keeps allocating.
///
/// A connected browser (connect mode) runs on another machine: there is no
/// process tree to measure, only the V8 heaps of the pool's own pages there,
/// read over CDP (`Runtime.getHeapUsage`, once per isolate). Its limits are
/// the `v8_*` ones. A fixture page's heap is ~1 MB here and a busy
/// single-page app's tens of MB, so the defaults (150 MB soft, 250 MB hard)
/// catch a page that keeps allocating, not a lease with many pages.
///
/// The optional pool-wide budget is the sum of the latest figure of every
/// browser in the pool. While it is reached, the pool launches no browser:
/// not to keep `min_idle`, and not for an `acquire`, which waits for a
/// browser to come back instead (up to `acquire_timeout`).
///
/// # Example
///
/// ```
/// use tidepool_pools::memory::MemoryPolicy;
///
/// let p = MemoryPolicy { soft_limit_bytes: 300_000_000, ..MemoryPolicy::default() };
/// p.validate()?;
/// # Ok::<(), tidepool_pools::Error>(())
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
    /// Soft limit of a connected browser's V8 heaps (default 150 MB).
    pub v8_soft_limit_bytes: u64,
    /// Hard limit of a connected browser's V8 heaps (default 250 MB).
    pub v8_hard_limit_bytes: u64,
    /// Pool-wide budget: no launch while the pool's browsers together use
    /// this much (default none).
    pub pool_budget_bytes: Option<u64>,
}

impl Default for MemoryPolicy {
    fn default() -> Self {
        MemoryPolicy {
            soft_limit_bytes: 400_000_000,
            hard_limit_bytes: 500_000_000,
            sample_interval: Duration::from_secs(1),
            window: 5,
            hysteresis_bytes: 20_000_000,
            v8_soft_limit_bytes: 150_000_000,
            v8_hard_limit_bytes: 250_000_000,
            pool_budget_bytes: None,
        }
    }
}

impl MemoryPolicy {
    /// The limits of one browser serving `leases` leases at once: each
    /// per-browser limit (soft, hard, hysteresis, and their V8 forms) times
    /// `leases`, since every lease brings a page, and often a renderer, of
    /// its own. The sampling and the pool's budget stay as they are.
    ///
    /// ```
    /// use tidepool_pools::memory::MemoryPolicy;
    ///
    /// let one = MemoryPolicy::default();
    /// let four = one.for_leases(4);
    /// assert_eq!(four.hard_limit_bytes, 4 * one.hard_limit_bytes);
    /// assert_eq!(four.pool_budget_bytes, one.pool_budget_bytes);
    /// ```
    pub fn for_leases(&self, leases: usize) -> MemoryPolicy {
        let n = leases.max(1) as u64;
        MemoryPolicy {
            soft_limit_bytes: self.soft_limit_bytes.saturating_mul(n),
            hard_limit_bytes: self.hard_limit_bytes.saturating_mul(n),
            hysteresis_bytes: self.hysteresis_bytes.saturating_mul(n),
            v8_soft_limit_bytes: self.v8_soft_limit_bytes.saturating_mul(n),
            v8_hard_limit_bytes: self.v8_hard_limit_bytes.saturating_mul(n),
            ..self.clone()
        }
    }

    /// Checks every field; the error names the field.
    pub fn validate(&self) -> Result<()> {
        let field = |name: &str, problem: String| {
            Err(Error::config(format!("browser.memory.{name}"), problem))
        };
        if self.soft_limit_bytes == 0 {
            return field("soft_limit_bytes", "must be greater than zero".into());
        }
        for (hard, soft, prefix) in [
            (self.hard_limit_bytes, self.soft_limit_bytes, ""),
            (self.v8_hard_limit_bytes, self.v8_soft_limit_bytes, "v8_"),
        ] {
            if hard < soft {
                return field(
                    &format!("{prefix}hard_limit_bytes"),
                    format!("{hard} is below {prefix}soft_limit_bytes {soft}"),
                );
            }
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
        if self.hysteresis_bytes >= self.v8_soft_limit_bytes {
            return field(
                "v8_soft_limit_bytes",
                format!(
                    "{} is not above hysteresis_bytes {}",
                    self.v8_soft_limit_bytes, self.hysteresis_bytes
                ),
            );
        }
        if self.pool_budget_bytes == Some(0) {
            return field(
                "pool_budget_bytes",
                "must be greater than zero (or unset for no budget)".into(),
            );
        }
        Ok(())
    }
}

/// What one sample changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
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
    /// A warning holds until the memory clears; off only in the negative
    /// control of `one_warning_per_crossing`.
    latched: bool,
}

impl SoftLimitTracker {
    /// A tracker of a launched browser's process tree under `policy`.
    pub fn new(policy: &MemoryPolicy) -> SoftLimitTracker {
        Self::with_limit(policy, policy.soft_limit_bytes)
    }

    /// A tracker of a connected browser's V8 heaps under `policy`.
    pub fn new_v8(policy: &MemoryPolicy) -> SoftLimitTracker {
        Self::with_limit(policy, policy.v8_soft_limit_bytes)
    }

    fn with_limit(policy: &MemoryPolicy, limit: u64) -> SoftLimitTracker {
        SoftLimitTracker {
            limit,
            clear_below: limit.saturating_sub(policy.hysteresis_bytes),
            window: policy.window,
            recent: VecDeque::with_capacity(policy.window),
            warned: false,
            latched: true,
        }
    }

    /// The same tracker without its latch: it warns again on every sample
    /// while most of the window is over the limit, the flapping a missing
    /// latch would cause. For the negative control of
    /// `one_warning_per_crossing` only.
    #[cfg(feature = "controls")]
    pub(crate) fn unlatch_for_control(&mut self) {
        self.latched = false;
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
        if (!self.warned || !self.latched) && over * 2 > self.window {
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
        let cases = [
            (
                MemoryPolicy {
                    hard_limit_bytes: 50,
                    ..policy()
                },
                "hard_limit_bytes",
            ),
            (
                MemoryPolicy {
                    v8_hard_limit_bytes: 1,
                    ..policy()
                },
                "v8_hard_limit_bytes",
            ),
            (
                MemoryPolicy {
                    pool_budget_bytes: Some(0),
                    ..policy()
                },
                "pool_budget_bytes",
            ),
        ];
        for (bad, field) in cases {
            let e = bad.validate().unwrap_err().to_string();
            assert!(e.contains(&format!("browser.memory.{field}")), "{e}");
        }
    }

    #[test]
    fn a_v8_tracker_judges_against_the_v8_limit() {
        let p = MemoryPolicy {
            v8_soft_limit_bytes: 50,
            v8_hard_limit_bytes: 60,
            window: 1,
            ..policy()
        };
        assert_eq!(SoftLimitTracker::new(&p).sample(70), None);
        assert_eq!(
            SoftLimitTracker::new_v8(&p).sample(70),
            Some(SoftEvent::Exceeded)
        );
    }
}
