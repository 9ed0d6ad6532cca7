//! The workload: hosts with their latency distributions, a seeded trace of
//! requests, and the true p99 each policy is measured against.

use super::*;

/// Compression of time for the policy runs: 1 real second runs in 50 ms.
pub(super) const SCALE: f64 = 1.0 / 20.0;
pub(super) const HANG_RATE: f64 = 0.02;
pub(super) const SEED: u64 = 0x7169_6465_706f_6f6c;
/// Requests in flight at once.
pub(super) const CONCURRENCY: usize = 24;
/// Requests per host that count as warm-up (the default `min_samples`).
pub(super) const WARMUP: usize = 20;
/// The shortest trace, requests per host, whatever the iteration count: the
/// quick profile's. The contract's figures are rates over the trace, and a
/// shorter one measures its few events rather than the policy. At 200 per host
/// the trace holds 13 hangs in all, and the shift's unavoidable cut-offs
/// (4-7 requests in flight when the latency quadruples) are alone about 1 %
/// of what is counted; two hangs landing in the backoff after the shift then
/// moved the waste ratio between 1.17 and 1.58 from run to run.
pub(super) const MIN_PER_HOST: usize = 300;
/// The fixed baseline.
pub(super) const FIXED: Duration = Duration::from_secs(30);

pub(super) struct Host {
    pub(super) name: &'static str,
    pub(super) median_ms: f64,
    pub(super) sigma: f64,
    /// The median of the second half of the host's requests, if it shifts.
    pub(super) shifted_median_ms: Option<f64>,
}

pub(super) const HOSTS: [Host; 3] = [
    Host {
        name: "fast",
        median_ms: 50.0,
        sigma: 0.5,
        shifted_median_ms: None,
    },
    Host {
        name: "slow",
        median_ms: 800.0,
        sigma: 0.6,
        shifted_median_ms: None,
    },
    Host {
        name: "shifting",
        median_ms: 200.0,
        sigma: 0.5,
        shifted_median_ms: Some(800.0),
    },
];

#[derive(Debug, Clone, Copy)]
pub(super) struct Request {
    pub(super) host: usize,
    /// Position among the host's requests.
    pub(super) seq: usize,
    /// Real-scale latency; `None` never answers.
    pub(super) latency_ms: Option<f64>,
}

pub(super) fn trace(per_host: usize, seed: u64) -> Vec<Request> {
    let mut rng = SeededRng::new(seed);
    let mut out = Vec::with_capacity(per_host * HOSTS.len());
    for seq in 0..per_host {
        for (host, h) in HOSTS.iter().enumerate() {
            let median = match h.shifted_median_ms {
                Some(m) if seq >= per_host / 2 => m,
                _ => h.median_ms,
            };
            let hang = rng.chance(HANG_RATE);
            let latency = rng.lognormal(median, h.sigma);
            out.push(Request {
                host,
                seq,
                latency_ms: (!hang).then_some(latency),
            });
        }
    }
    out
}

/// The true p99 of a host's latency distribution, by bisection on its CDF (a
/// 50/50 mixture for the shifting host).
pub(super) fn true_p99_ms(h: &Host) -> f64 {
    let Ok(normal) = Normal::new(0.0, 1.0) else {
        return f64::NAN;
    };
    let cdf = |x: f64| {
        let one = |median: f64| normal.cdf((x / median).ln() / h.sigma);
        match h.shifted_median_ms {
            Some(m) => 0.5 * one(h.median_ms) + 0.5 * one(m),
            None => one(h.median_ms),
        }
    };
    let (mut lo, mut hi) = (1e-3_f64, 1e7_f64);
    for _ in 0..200 {
        let mid = (lo * hi).sqrt();
        if cdf(mid) < 0.99 {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    (lo * hi).sqrt()
}
