//! Learned timeouts saved to a file and resumed from it: the layout, and
//! the checks a saved figure must pass before it is trusted.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};

use super::{AdaptiveTimeouts, AdaptiveTimeoutsConfig, EstimatorState, KeyState};
use crate::error::{Error, Result};

/// The file layout of saved timeouts.
#[derive(Debug, Serialize, Deserialize)]
struct Saved {
    version: u32,
    estimator: String,
    keys: HashMap<String, SavedKey>,
}

#[derive(Debug, Serialize, Deserialize)]
struct SavedKey {
    state: EstimatorState,
    samples: u64,
    timeouts: u64,
    backoffs: u64,
    backoff: f64,
}

const SAVE_VERSION: u32 = 1;

/// The longest backoff a saved key may carry: beyond it every timeout is
/// `max` anyway (a backoff of 2^20 takes a 1 µs estimate past any `max`).
const MAX_SAVED_BACKOFF: f64 = (1u64 << 20) as f64;

impl SavedKey {
    /// Whether every figure is one this config could have produced: finite,
    /// latencies within 0..=`max`, a proposed timeout within 0..=10 `max`, the
    /// backoff within 1..=2^20.
    fn check(&self, config: &AdaptiveTimeoutsConfig) -> std::result::Result<(), String> {
        let max = config.max.as_secs_f64();
        let latency = |name: &str, v: f64| {
            if v.is_finite() && (0.0..=max).contains(&v) {
                Ok(())
            } else {
                Err(format!(
                    "{name} = {v} is not a latency within 0..={max} s (max)"
                ))
            }
        };
        match &self.state {
            EstimatorState::Rfc6298 { srtt, rttvar } => {
                latency("srtt", *srtt)?;
                latency("rttvar", *rttvar)?;
            }
            EstimatorState::Window { recent, previous } => {
                for v in recent {
                    latency("recent", *v)?;
                }
                // A timeout the estimator proposed, not a latency: it may
                // pass `max` (the spec formula adds a buffer), not tenfold.
                if let Some(v) =
                    previous.filter(|v| !(v.is_finite() && (0.0..=10.0 * max).contains(v)))
                {
                    return Err(format!(
                        "previous = {v} is not a timeout within 0..={} s",
                        10.0 * max
                    ));
                }
            }
        }
        if !(self.backoff.is_finite() && (1.0..=MAX_SAVED_BACKOFF).contains(&self.backoff)) {
            return Err(format!(
                "backoff = {} is not within 1..={MAX_SAVED_BACKOFF}",
                self.backoff
            ));
        }
        Ok(())
    }
}

impl AdaptiveTimeouts {
    /// Saves the learned state as JSON, atomically.
    pub fn save(&self, path: &Path) -> Result<()> {
        let keys = self.keys.read().unwrap_or_else(|p| p.into_inner());
        let saved = Saved {
            version: SAVE_VERSION,
            estimator: self.config.estimator.name().to_owned(),
            keys: keys
                .iter()
                .map(|(k, s)| {
                    let s = s.lock().unwrap_or_else(|p| p.into_inner());
                    let key = SavedKey {
                        state: s.estimator.state(),
                        samples: s.samples,
                        timeouts: s.timeouts,
                        backoffs: s.backoffs,
                        backoff: s.backoff,
                    };
                    (k.clone(), key)
                })
                .collect(),
        };
        drop(keys);
        let json = serde_json::to_vec_pretty(&saved).map_err(|source| Error::Json {
            what: "saved timeouts".into(),
            source,
        })?;
        crate::atomic_file::write_atomic(path, &json)
    }

    /// Builds timeouts from `config` and resumes the state saved at `path`.
    ///
    /// A missing file is a fresh start. A corrupt file, or one saved by another
    /// estimator or layout version, is reported in the returned error and
    /// ignored: the timeouts start fresh, never fail to start.
    pub fn load(
        config: AdaptiveTimeoutsConfig,
        path: &Path,
    ) -> Result<(AdaptiveTimeouts, Option<Error>)> {
        let timeouts = AdaptiveTimeouts::new(config)?;
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((timeouts, None)),
            Err(e) => return Ok((timeouts, Some(Error::io("reading saved timeouts", path, e)))),
        };
        let problem = |message: String| {
            let e = Error::Corrupt {
                path: path.to_owned(),
                message,
            };
            tracing::warn!(error = %e, "ignoring saved timeouts");
            Ok((timeouts.clone(), Some(e)))
        };
        let saved: Saved = match serde_json::from_str(&text) {
            Ok(saved) => saved,
            Err(e) => return problem(format!("not a saved-timeouts file: {e}")),
        };
        if saved.version != SAVE_VERSION {
            return problem(format!(
                "layout version {}, this tidepool reads {SAVE_VERSION}",
                saved.version
            ));
        }
        if saved.estimator != timeouts.config.estimator.name() {
            return problem(format!(
                "saved by estimator {:?}, configured {:?}",
                saved.estimator,
                timeouts.config.estimator.name()
            ));
        }
        for (k, s) in &saved.keys {
            if let Err(why) = s.check(&timeouts.config) {
                return problem(format!("key {k:?}: {why}"));
            }
        }
        {
            let mut keys = timeouts.keys.write().unwrap_or_else(|p| p.into_inner());
            for (k, s) in saved.keys {
                keys.insert(
                    k,
                    Arc::new(Mutex::new(KeyState {
                        estimator: timeouts.config.estimator.restore(Some(s.state)),
                        samples: s.samples,
                        timeouts: s.timeouts,
                        backoffs: s.backoffs,
                        backoff: s.backoff.max(1.0),
                    })),
                );
            }
        }
        Ok((timeouts, None))
    }
}
