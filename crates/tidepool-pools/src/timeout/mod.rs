//! Adaptive timeouts learned per key (a host, a route, a scenario).
//!
//! A fixed timeout is either too long (a dead request holds a worker for all of
//! it) or too short (slow but healthy pages are cut off). [`AdaptiveTimeouts`]
//! learns each key's timeout from the latencies it observes, within bounds, and
//! backs off after a timeout so a slow period is not cut off again and again.

mod estimator;
mod saved;

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

pub use estimator::{Estimator, EstimatorKind, EstimatorState};

use crate::error::{Error, Result};

/// How timeouts are learned and bounded.
///
/// # Example
///
/// ```
/// use std::time::Duration;
/// use tidepool_pools::timeout::{AdaptiveTimeouts, AdaptiveTimeoutsConfig};
///
/// let timeouts = AdaptiveTimeouts::new(AdaptiveTimeoutsConfig::default())?;
/// for _ in 0..20 {
///     timeouts.record_success("example.com", Duration::from_millis(400));
/// }
/// // p99 of 400 ms times the safety factor 1.5 is 600 ms, below the 1 s floor.
/// assert_eq!(timeouts.timeout_for("example.com"), Duration::from_secs(1));
/// assert_eq!(timeouts.timeout_for("unknown.org"), Duration::from_secs(30));
/// # Ok::<(), tidepool_pools::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AdaptiveTimeoutsConfig {
    /// The estimator (default: p99 of the last 200 latencies times 1.5).
    pub estimator: EstimatorKind,
    /// No learned timeout is shorter (default 1 s).
    pub min: Duration,
    /// No timeout, backed off or not, is longer (default 60 s).
    pub max: Duration,
    /// The timeout of a key with fewer than `min_samples` observations (default 30 s).
    pub default: Duration,
    /// Observations before a key's estimate is trusted as it is (default 20).
    /// From the first observation until then, the timeout is the estimate times
    /// `warmup_factor`, capped at `default`: a key learns from its first answer,
    /// as TCP does from its first RTT sample, but with room for what few
    /// samples cannot show.
    pub min_samples: u64,
    /// The multiplier on the estimate during warm-up (default 3).
    pub warmup_factor: f64,
    /// Each timeout multiplies the key's timeout by this (default 2).
    pub backoff_factor: f64,
    /// Successes over which a backoff fades (default 10): each success removes
    /// 1/n of what is left of it. Fading at once would cut off the next slow
    /// answers before the estimator's window has learned the new latencies.
    pub backoff_recovery: u32,
}

impl Default for AdaptiveTimeoutsConfig {
    fn default() -> Self {
        AdaptiveTimeoutsConfig {
            estimator: EstimatorKind::DEFAULT,
            min: Duration::from_secs(1),
            max: Duration::from_secs(60),
            default: Duration::from_secs(30),
            min_samples: 20,
            warmup_factor: 3.0,
            backoff_factor: 2.0,
            backoff_recovery: 10,
        }
    }
}

impl AdaptiveTimeoutsConfig {
    /// Checks every field; the error names the field.
    pub fn validate(&self) -> Result<()> {
        let field =
            |name: &str, problem: String| Err(Error::config(format!("timeouts.{name}"), problem));
        if self.min.is_zero() {
            return field("min", "must be greater than zero".into());
        }
        if self.max < self.min {
            return field("max", format!("{:?} is below min {:?}", self.max, self.min));
        }
        if self.default < self.min || self.default > self.max {
            return field(
                "default",
                format!(
                    "{:?} is outside min..=max ({:?}..={:?})",
                    self.default, self.min, self.max
                ),
            );
        }
        if !(self.warmup_factor.is_finite() && self.warmup_factor >= 1.0) {
            return field(
                "warmup_factor",
                format!("must be at least 1, got {}", self.warmup_factor),
            );
        }
        if !(self.backoff_factor.is_finite() && self.backoff_factor >= 1.0) {
            return field(
                "backoff_factor",
                format!("must be at least 1, got {}", self.backoff_factor),
            );
        }
        if self.backoff_recovery == 0 {
            return field("backoff_recovery", "must be at least 1".into());
        }
        self.estimator
            .validate()
            .or_else(|(name, problem)| field(&name, problem))
    }

    /// The same config with every duration (and the spec estimator's buffer)
    /// multiplied by `scale`: for running a latency trace in compressed time.
    pub fn scaled(&self, scale: f64) -> AdaptiveTimeoutsConfig {
        let estimator = match self.estimator {
            EstimatorKind::Spec {
                window,
                buffer_floor,
            } => EstimatorKind::Spec {
                window,
                buffer_floor: buffer_floor * scale,
            },
            ref other => other.clone(),
        };
        AdaptiveTimeoutsConfig {
            estimator,
            min: self.min.mul_f64(scale),
            max: self.max.mul_f64(scale),
            default: self.default.mul_f64(scale),
            ..self.clone()
        }
    }
}

/// What is known of one key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KeyMetrics {
    /// The timeout `timeout_for` returns now.
    pub current_timeout: Duration,
    /// Successful observations.
    pub samples: u64,
    /// Requests that timed out.
    pub timeouts: u64,
    /// Times the timeout was backed off.
    pub backoffs: u64,
    /// The backoff multiplier now (1 = none).
    pub backoff: f64,
}

#[derive(Debug)]
struct KeyState {
    estimator: Box<dyn Estimator>,
    samples: u64,
    timeouts: u64,
    backoffs: u64,
    backoff: f64,
}

/// Per-key learned timeouts; cheap to share (`Clone` shares the state).
///
/// The key map sits behind a read-write lock taken for reading on every call
/// (writers only add keys); each key's state has its own mutex, so
/// observations of different keys never wait for each other.
#[derive(Debug, Clone)]
pub struct AdaptiveTimeouts {
    config: Arc<AdaptiveTimeoutsConfig>,
    keys: Arc<RwLock<HashMap<String, Arc<Mutex<KeyState>>>>>,
}

impl AdaptiveTimeouts {
    /// An empty set of timeouts; fails on an invalid config.
    pub fn new(config: AdaptiveTimeoutsConfig) -> Result<AdaptiveTimeouts> {
        config.validate()?;
        Ok(AdaptiveTimeouts {
            config: Arc::new(config),
            keys: Arc::new(RwLock::new(HashMap::new())),
        })
    }

    /// The config in force.
    pub fn config(&self) -> &AdaptiveTimeoutsConfig {
        &self.config
    }

    fn key(&self, key: &str) -> Arc<Mutex<KeyState>> {
        if let Some(state) = self.keys.read().unwrap_or_else(|p| p.into_inner()).get(key) {
            return state.clone();
        }
        let mut keys = self.keys.write().unwrap_or_else(|p| p.into_inner());
        keys.entry(key.to_owned())
            .or_insert_with(|| {
                Arc::new(Mutex::new(KeyState {
                    estimator: self.config.estimator.build(),
                    samples: 0,
                    timeouts: 0,
                    backoffs: 0,
                    backoff: 1.0,
                }))
            })
            .clone()
    }

    fn timeout_of(&self, state: &KeyState) -> Duration {
        let c = &self.config;
        // In f64 seconds to the end: an estimate or backoff out of
        // Duration's range (a huge value in a hand-edited file) is clamped,
        // never a panic in `Duration::from_secs_f64`.
        let base = match state.estimator.timeout() {
            Some(secs) if state.samples >= c.min_samples => secs,
            Some(secs) => (secs * c.warmup_factor).min(c.default.as_secs_f64()),
            None => c.default.as_secs_f64(),
        };
        let secs = base * state.backoff;
        let (min, max) = (c.min.as_secs_f64(), c.max.as_secs_f64());
        let secs = if secs.is_nan() {
            max
        } else {
            secs.clamp(min, max)
        };
        Duration::try_from_secs_f64(secs).unwrap_or(c.max)
    }

    /// The timeout to apply to the next request of `key`.
    pub fn timeout_for(&self, key: &str) -> Duration {
        let state = self.key(key);
        let state = state.lock().unwrap_or_else(|p| p.into_inner());
        self.timeout_of(&state)
    }

    /// Learns from a request of `key` that answered after `latency`.
    pub fn record_success(&self, key: &str, latency: Duration) {
        let state = self.key(key);
        let mut state = state.lock().unwrap_or_else(|p| p.into_inner());
        state.estimator.observe(latency.as_secs_f64());
        state.samples += 1;
        let keep = 1.0 - 1.0 / f64::from(self.config.backoff_recovery);
        let excess = (state.backoff - 1.0) * keep;
        // The fade is geometric; below a 1 % excess it is over.
        state.backoff = if excess < 0.01 { 1.0 } else { 1.0 + excess };
    }

    /// Notes a request of `key` that timed out, and backs its timeout off.
    pub fn record_timeout(&self, key: &str) {
        let state = self.key(key);
        let mut state = state.lock().unwrap_or_else(|p| p.into_inner());
        state.timeouts += 1;
        let before = self.timeout_of(&state);
        if before < self.config.max {
            state.backoff *= self.config.backoff_factor;
            state.backoffs += 1;
        }
    }

    /// Runs `fut` under `key`'s timeout and returns [`Error::Timeout`]
    /// naming the key when it does not finish in time. It learns from what
    /// `fut` says: an `Ok` is a latency, a timeout backs the key off, and an
    /// `Err` (a refused connection, a 500) is neither, since a request that
    /// fails fast would otherwise teach a short timeout.
    ///
    /// ```
    /// # async fn demo() -> tidepool_pools::Result<()> {
    /// use tidepool_pools::timeout::{AdaptiveTimeouts, AdaptiveTimeoutsConfig};
    ///
    /// let timeouts = AdaptiveTimeouts::new(AdaptiveTimeoutsConfig::default())?;
    /// let answer: Result<u32, &str> = timeouts.run("api.example", async { Ok(200) }).await?;
    /// assert_eq!(answer, Ok(200));
    /// let failed: Result<u32, &str> = timeouts.run("api.example", async { Err("refused") }).await?;
    /// assert!(failed.is_err());
    /// assert_eq!(timeouts.metrics("api.example").map(|m| m.samples), Some(1));
    /// # Ok(()) }
    /// ```
    pub async fn run<T, E>(
        &self,
        key: &str,
        fut: impl Future<Output = std::result::Result<T, E>>,
    ) -> Result<std::result::Result<T, E>> {
        let after = self.timeout_for(key);
        let start = Instant::now();
        match tokio::time::timeout(after, fut).await {
            Ok(value) => {
                if value.is_ok() {
                    self.record_success(key, start.elapsed());
                }
                Ok(value)
            }
            Err(_) => {
                self.record_timeout(key);
                Err(Error::Timeout {
                    key: key.to_owned(),
                    after,
                })
            }
        }
    }

    /// What is known of `key`, or `None` for a key never seen.
    pub fn metrics(&self, key: &str) -> Option<KeyMetrics> {
        let state = self
            .keys
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(key)?
            .clone();
        let state = state.lock().unwrap_or_else(|p| p.into_inner());
        Some(KeyMetrics {
            current_timeout: self.timeout_of(&state),
            samples: state.samples,
            timeouts: state.timeouts,
            backoffs: state.backoffs,
            backoff: state.backoff,
        })
    }

    /// Every key seen, sorted.
    pub fn keys(&self) -> Vec<String> {
        let mut keys: Vec<String> = self
            .keys
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .keys()
            .cloned()
            .collect();
        keys.sort();
        keys
    }
}

#[cfg(test)]
mod tests;
