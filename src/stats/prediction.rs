//! Whether one new run lies beyond what past runs predict.

use statrs::distribution::{ContinuousCDF, StudentsT};

/// One-sided p that one new run's value `x` lies more than `threshold_pct`
/// beyond the centre of the past runs `past` (`above`: higher; else lower),
/// by Student's t prediction test on logs: the past runs' spread, one value
/// each, is the noise a new run is judged against. 1 without three positive
/// past values, or for a value at or below 0.
///
/// ```
/// use tidepool::stats::prediction_p;
///
/// let past = [20.0, 20.6, 19.7, 20.2, 19.9];
/// assert!(prediction_p(&past, 26.0, 5.0, true) < 0.01);
/// assert!(prediction_p(&past, 20.9, 5.0, true) > 0.5);
/// ```
pub fn prediction_p(past: &[f64], x: f64, threshold_pct: f64, above: bool) -> f64 {
    if past.len() < 3 || x <= 0.0 || past.iter().any(|&v| v <= 0.0) {
        return 1.0;
    }
    let logs: Vec<f64> = past.iter().map(|v| v.ln()).collect();
    let n = logs.len() as f64;
    let mean = logs.iter().sum::<f64>() / n;
    let sd = (logs.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt();
    let margin = (threshold_pct / 100.0).ln_1p();
    let distance = if above {
        x.ln() - mean - margin
    } else {
        mean - x.ln() - margin
    };
    let se = sd * (1.0 + 1.0 / n).sqrt();
    if se == 0.0 {
        return if distance > 0.0 { 0.0 } else { 1.0 };
    }
    StudentsT::new(0.0, 1.0, n - 1.0).map_or(1.0, |t| t.sf(distance / se))
}
