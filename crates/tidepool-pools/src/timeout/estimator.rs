use std::collections::VecDeque;
use std::fmt::Debug;

use serde::{Deserialize, Serialize};

/// Learns a timeout from observed latencies (in seconds).
///
/// An estimator sees only successful requests: a request that timed out has no
/// latency to learn from, and the backoff of
/// [`AdaptiveTimeouts`](super::AdaptiveTimeouts) handles it instead.
pub trait Estimator: Send + Debug {
    /// Learns from one successful request's latency, in seconds.
    fn observe(&mut self, latency: f64);
    /// The timeout it proposes now, in seconds; `None` before any observation.
    fn timeout(&self) -> Option<f64>;
    /// Its state, for persistence.
    fn state(&self) -> EstimatorState;
}

/// Which estimator to use, and its parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum EstimatorKind {
    /// TCP's retransmission timer (RFC 6298): `SRTT + 4 RTTVAR`, with
    /// `alpha = 1/8`, `beta = 1/4`.
    Rfc6298,
    /// A high quantile of the last `window` latencies times `safety_factor`.
    Percentile {
        /// The quantile, e.g. 0.99.
        quantile: f64,
        /// How many recent latencies it keeps.
        window: usize,
        /// Multiplier on the quantile.
        safety_factor: f64,
    },
    /// The original spec's formula: `0.7 avg + 0.3 previous + buffer`, with
    /// `buffer = max(buffer_floor, 0.2 avg)`, `avg` the mean of the last `window`.
    Spec {
        /// How many recent latencies the average covers.
        window: usize,
        /// The buffer's floor, seconds (500 ms in the spec).
        buffer_floor: f64,
    },
}

impl EstimatorKind {
    /// The default: p99 of the last 200 latencies, times 1.5.
    pub const DEFAULT: EstimatorKind = EstimatorKind::Percentile {
        quantile: 0.99,
        window: 200,
        safety_factor: 1.5,
    };

    /// A short name for reports (`rfc6298`, `percentile`, `spec`).
    pub fn name(&self) -> &'static str {
        match self {
            EstimatorKind::Rfc6298 => "rfc6298",
            EstimatorKind::Percentile { .. } => "percentile",
            EstimatorKind::Spec { .. } => "spec",
        }
    }

    /// Checks the parameters; the error text names the field.
    pub(crate) fn validate(&self) -> Result<(), (String, String)> {
        match *self {
            EstimatorKind::Rfc6298 => Ok(()),
            EstimatorKind::Percentile {
                quantile,
                window,
                safety_factor,
            } => {
                if !(0.0..=1.0).contains(&quantile) {
                    Err((
                        "estimator.quantile".into(),
                        format!("must be within 0..=1, got {quantile}"),
                    ))
                } else if window == 0 {
                    Err(("estimator.window".into(), "must be at least 1".into()))
                } else if !(safety_factor.is_finite() && safety_factor >= 1.0) {
                    Err((
                        "estimator.safety_factor".into(),
                        format!("must be at least 1, got {safety_factor}"),
                    ))
                } else {
                    Ok(())
                }
            }
            EstimatorKind::Spec {
                window,
                buffer_floor,
            } => {
                if window == 0 {
                    Err(("estimator.window".into(), "must be at least 1".into()))
                } else if !(buffer_floor.is_finite() && buffer_floor >= 0.0) {
                    Err((
                        "estimator.buffer_floor".into(),
                        format!("must be a non-negative number of seconds, got {buffer_floor}"),
                    ))
                } else {
                    Ok(())
                }
            }
        }
    }

    /// A fresh estimator of this kind.
    pub fn build(&self) -> Box<dyn Estimator> {
        self.restore(None)
    }

    /// An estimator of this kind, resumed from `state` when it is of the same kind.
    pub(crate) fn restore(&self, state: Option<EstimatorState>) -> Box<dyn Estimator> {
        match (self, state) {
            (EstimatorKind::Rfc6298, Some(EstimatorState::Rfc6298 { srtt, rttvar })) => {
                Box::new(Rfc6298 {
                    srtt: Some(srtt),
                    rttvar,
                })
            }
            (EstimatorKind::Rfc6298, _) => Box::new(Rfc6298 {
                srtt: None,
                rttvar: 0.0,
            }),
            (
                &EstimatorKind::Percentile {
                    quantile,
                    window,
                    safety_factor,
                },
                state,
            ) => {
                let mut recent = match state {
                    Some(EstimatorState::Window { recent, .. }) => recent,
                    _ => VecDeque::new(),
                };
                while recent.len() > window {
                    recent.pop_front();
                }
                Box::new(Percentile {
                    quantile,
                    window,
                    safety_factor,
                    recent,
                })
            }
            (
                &EstimatorKind::Spec {
                    window,
                    buffer_floor,
                },
                state,
            ) => {
                let (recent, previous) = match state {
                    Some(EstimatorState::Window { recent, previous }) => (recent, previous),
                    _ => (VecDeque::new(), None),
                };
                Box::new(Spec {
                    window,
                    buffer_floor,
                    recent,
                    previous,
                })
            }
        }
    }
}

/// The persisted state of an estimator.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum EstimatorState {
    /// Smoothed RTT and its variation, seconds.
    Rfc6298 {
        /// Smoothed latency.
        srtt: f64,
        /// Latency variation.
        rttvar: f64,
    },
    /// A window of recent latencies, and the last proposed timeout.
    Window {
        /// Recent latencies, oldest first.
        recent: VecDeque<f64>,
        /// The previous timeout (used by `spec`).
        previous: Option<f64>,
    },
}

#[derive(Debug)]
struct Rfc6298 {
    srtt: Option<f64>,
    rttvar: f64,
}

impl Estimator for Rfc6298 {
    fn observe(&mut self, r: f64) {
        const ALPHA: f64 = 1.0 / 8.0;
        const BETA: f64 = 1.0 / 4.0;
        match self.srtt {
            None => {
                self.srtt = Some(r);
                self.rttvar = r / 2.0;
            }
            Some(srtt) => {
                // RFC 6298 2.3: RTTVAR first, with the old SRTT.
                self.rttvar = (1.0 - BETA) * self.rttvar + BETA * (srtt - r).abs();
                self.srtt = Some((1.0 - ALPHA) * srtt + ALPHA * r);
            }
        }
    }

    fn timeout(&self) -> Option<f64> {
        self.srtt.map(|srtt| srtt + 4.0 * self.rttvar)
    }

    fn state(&self) -> EstimatorState {
        EstimatorState::Rfc6298 {
            srtt: self.srtt.unwrap_or(0.0),
            rttvar: self.rttvar,
        }
    }
}

#[derive(Debug)]
struct Percentile {
    quantile: f64,
    window: usize,
    safety_factor: f64,
    recent: VecDeque<f64>,
}

impl Estimator for Percentile {
    fn observe(&mut self, latency: f64) {
        if self.recent.len() == self.window {
            self.recent.pop_front();
        }
        self.recent.push_back(latency);
    }

    fn timeout(&self) -> Option<f64> {
        let (a, b) = self.recent.as_slices();
        let xs: Vec<f64> = a.iter().chain(b).copied().collect();
        quantile(xs, self.quantile).map(|q| q * self.safety_factor)
    }

    fn state(&self) -> EstimatorState {
        EstimatorState::Window {
            recent: self.recent.clone(),
            previous: None,
        }
    }
}

/// The `q`-quantile of `xs` by linear interpolation between order statistics
/// (numpy's default), interpolating from the nearer end so that it is monotone
/// in `q`; `None` for no finite sample.
fn quantile(mut xs: Vec<f64>, q: f64) -> Option<f64> {
    xs.retain(|x| x.is_finite());
    if xs.is_empty() {
        return None;
    }
    xs.sort_by(f64::total_cmp);
    let h = (xs.len() - 1) as f64 * q.clamp(0.0, 1.0);
    let lo = h.floor() as usize;
    let hi = (lo + 1).min(xs.len() - 1);
    let frac = h - lo as f64;
    let (a, b) = (xs[lo], xs[hi]);
    Some(if frac >= 0.5 {
        b - (b - a) * (1.0 - frac)
    } else {
        a + (b - a) * frac
    })
}

#[derive(Debug)]
struct Spec {
    window: usize,
    buffer_floor: f64,
    recent: VecDeque<f64>,
    previous: Option<f64>,
}

impl Spec {
    fn compute(&self) -> Option<f64> {
        if self.recent.is_empty() {
            return None;
        }
        let avg = self.recent.iter().sum::<f64>() / self.recent.len() as f64;
        let previous = self.previous.unwrap_or(avg);
        Some(0.7 * avg + 0.3 * previous + self.buffer_floor.max(0.2 * avg))
    }
}

impl Estimator for Spec {
    fn observe(&mut self, latency: f64) {
        if self.recent.len() == self.window {
            self.recent.pop_front();
        }
        self.recent.push_back(latency);
        self.previous = self.compute();
    }

    fn timeout(&self) -> Option<f64> {
        self.previous
    }

    fn state(&self) -> EstimatorState {
        EstimatorState::Window {
            recent: self.recent.clone(),
            previous: self.previous,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc6298_follows_the_rfc_arithmetic() {
        let mut e = EstimatorKind::Rfc6298.build();
        e.observe(1.0);
        // First sample: SRTT = R, RTTVAR = R/2, RTO = R + 4 R/2 = 3R.
        assert_eq!(e.timeout(), Some(3.0));
        e.observe(2.0);
        // RTTVAR = 3/4 * 0.5 + 1/4 * |1 - 2| = 0.625; SRTT = 7/8 + 2/8 = 1.125.
        assert!((e.timeout().unwrap() - (1.125 + 4.0 * 0.625)).abs() < 1e-12);
    }

    #[test]
    fn percentile_uses_the_window_and_the_factor() {
        let mut e = EstimatorKind::Percentile {
            quantile: 0.5,
            window: 3,
            safety_factor: 2.0,
        }
        .build();
        assert_eq!(e.timeout(), None);
        for x in [10.0, 1.0, 2.0, 3.0] {
            e.observe(x);
        }
        // The window keeps 1, 2, 3 (10 fell out): median 2, times 2.
        assert_eq!(e.timeout(), Some(4.0));
    }

    #[test]
    fn spec_follows_the_original_formula() {
        let mut e = EstimatorKind::Spec {
            window: 10,
            buffer_floor: 0.5,
        }
        .build();
        e.observe(1.0);
        // avg 1, previous = avg 1, buffer max(0.5, 0.2) = 0.5: 0.7 + 0.3 + 0.5.
        assert_eq!(e.timeout(), Some(1.5));
        e.observe(3.0);
        // avg 2, previous 1.5, buffer max(0.5, 0.4): 1.4 + 0.45 + 0.5.
        assert!((e.timeout().unwrap() - 2.35).abs() < 1e-12);
    }

    #[test]
    fn state_round_trips_through_restore() {
        for kind in [
            EstimatorKind::Rfc6298,
            EstimatorKind::DEFAULT,
            EstimatorKind::Spec {
                window: 5,
                buffer_floor: 0.5,
            },
        ] {
            let mut e = kind.build();
            for x in [0.2, 0.4, 0.3] {
                e.observe(x);
            }
            let resumed = kind.restore(Some(e.state()));
            assert_eq!(resumed.timeout(), e.timeout(), "{}", kind.name());
        }
    }
}
