//! The policies under test, one run of the trace through a policy, and
//! what its outcomes add up to.

use super::*;
use tidepool_pools::Error as PoolError;

#[derive(Clone)]
pub(super) enum Policy {
    Adaptive(AdaptiveTimeouts),
    Fixed(Duration),
    PerHost(Vec<Duration>),
}

impl Policy {
    pub(super) fn timeout_for(&self, host: usize) -> Duration {
        match self {
            Policy::Adaptive(t) => t.timeout_for(HOSTS[host].name),
            Policy::Fixed(d) => *d,
            Policy::PerHost(ds) => ds[host],
        }
    }

    pub(super) fn record(&self, host: usize, answered: Option<Duration>) {
        if let Policy::Adaptive(t) = self {
            match answered {
                Some(latency) => t.record_success(HOSTS[host].name, latency),
                None => t.record_timeout(HOSTS[host].name),
            }
        }
    }
}

#[derive(Debug, Clone, Copy)]
pub(super) struct Outcome {
    pub(super) request: Request,
    /// How long the client waited, at run scale.
    pub(super) waited: Duration,
    /// The timeout that was applied, at run scale.
    pub(super) applied: Duration,
    pub(super) timed_out: bool,
}

impl Outcome {
    /// Cut off although it would have answered (within 30 s, real scale).
    pub(super) fn false_timeout(&self) -> bool {
        self.timed_out && self.request.latency_ms.is_some_and(|ms| ms < 30_000.0)
    }
}

pub(super) async fn run_policy(
    server: &FixtureServer,
    trace: &[Request],
    policy: &Policy,
    scale: f64,
    concurrency: usize,
    client: Variant,
) -> Result<Vec<Outcome>> {
    let slots = Arc::new(Semaphore::new(concurrency));
    let mut tasks = tokio::task::JoinSet::new();
    let addr = server.addr();
    for &request in trace {
        let queued = Instant::now();
        let permit = slots
            .clone()
            .acquire_owned()
            .await
            .map_err(|e| PoolError::Task {
                what: "timeout trace".into(),
                message: e.to_string(),
            })?;
        let applied = policy.timeout_for(request.host);
        let policy = policy.clone();
        tasks.spawn(async move {
            let path = match request.latency_ms {
                Some(ms) => format!("/slow?ms={:.3}", ms * scale),
                None => "/hang".to_owned(),
            };
            let t = Instant::now();
            let deadline = match client {
                Variant::DeadlineFromQueue => queued + applied,
                _ => t + applied,
            };
            let mut answer = tokio::time::timeout_at(deadline.into(), get_once(addr, &path)).await;
            if client == Variant::HiddenRetry && answer.is_err() {
                answer = tokio::time::timeout(applied, get_once(addr, &path)).await;
            }
            let waited = t.elapsed();
            drop(permit);
            let timed_out = match answer {
                Ok(Ok(r)) if r.status == 200 => {
                    policy.record(request.host, Some(waited));
                    false
                }
                Ok(other) => {
                    tracing::warn!(?other, %path, "trace request failed");
                    false
                }
                Err(_) => {
                    policy.record(request.host, None);
                    true
                }
            };
            Outcome {
                request,
                waited,
                applied,
                timed_out,
            }
        });
    }
    let mut outcomes = Vec::with_capacity(trace.len());
    while let Some(done) = tasks.join_next().await {
        outcomes.push(done.map_err(|e| Error::task("timeout trace request", e))?);
    }
    Ok(outcomes)
}

/// Time spent waiting on requests that ended in a timeout, real-scale seconds.
pub(super) fn waste_s(outcomes: &[Outcome], scale: f64) -> f64 {
    outcomes
        .iter()
        .filter(|o| o.timed_out)
        .map(|o| o.waited.as_secs_f64())
        .sum::<f64>()
        / scale
}

/// False timeouts among requests past each host's warm-up.
pub(super) fn false_rate(outcomes: &[Outcome]) -> f64 {
    let counted: Vec<&Outcome> = outcomes
        .iter()
        .filter(|o| o.request.seq >= WARMUP)
        .collect();
    counted.iter().filter(|o| o.false_timeout()).count() as f64 / counted.len().max(1) as f64
}
