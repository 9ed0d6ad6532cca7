//! A pool driving a fleet of three remote browsers, real Chromium processes
//! started with `--remote-debugging-port` and reached through their
//! `http://` addresses through a TCP relay each (the network between a
//! service and its fleet), while the fleet fails under it. Six workers crawl
//! the fixture pages, each page in a lease of its own, in three phases:
//!
//! 1. all three endpoints up;
//! 2. one endpoint killed with SIGKILL a tenth of the way in, and left down;
//! 3. the killed one restarted on its port (a new browser id, found again
//!    through `/json/version`) and rejoined, then another stopped with
//!    SIGSTOP a tenth of the way in, and continued 5 s later.
//!
//! A page whose attempt fails is retried, on whatever endpoint the pool
//! gives it, when the library calls the failure retryable
//! (`Error::is_retryable`). Measured: pages loaded and lost; the failover
//! latency, from a loss to each of the lost endpoint's pages running
//! elsewhere, against the scenario's own cold launch of a browser; the
//! throughput with one endpoint down against all up; how many backoff
//! periods a returning endpoint takes to rejoin; and each endpoint's leases.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::{ms_since, wait_for, Control, Scenario, ScenarioFuture};
use crate::browser::{
    BrowserPool, BrowserPoolConfig, BrowserSource, EndpointState, FleetPolicy, Isolation,
};
use crate::error::{Error, Result};
use crate::profile::RunProfile;
use crate::summary::{FigureSpec, MetricSummary, ScenarioSpec};
use crate::testkit::{
    continue_process, free_port, stop_process, ExternalChromium, FixtureServer, TcpRelay,
    UpstreamClosed,
};
use tidepool_pools::Error as PoolError;

pub(super) const SCENARIO: Scenario = Scenario {
    spec: ScenarioSpec {
        name: "fleet",
        description: "a pool over three remote Chromium endpoints while one is killed and another hung: pages lost, failover latency, throughput with one down, rejoin",
        figures: &[
            FigureSpec::counter("pages").scales(),
            FigureSpec::counter("loaded").scales(),
            FigureSpec::counter("lost"),
            FigureSpec::counter("retried").varies(),
            FigureSpec::measurement("failover_ms", "ms"),
            FigureSpec::ratio("cold_launch_ms"),
            FigureSpec::ratio("pages_per_s_all_up"),
            FigureSpec::ratio("pages_per_s_one_down"),
            FigureSpec::ratio("rejoin_backoffs"),
            FigureSpec::counter("endpoint_0_leases").scales(),
            FigureSpec::counter("endpoint_1_leases").scales(),
            FigureSpec::counter("endpoint_2_leases").scales(),
            FigureSpec::counter("endpoint_0_losses").varies(),
            FigureSpec::counter("endpoint_1_losses").varies(),
            FigureSpec::counter("endpoint_2_losses").varies(),
        ],
    },
    run: start,
    needs_browser: true,
    controls: CONTROLS,
};

fn start(profile: RunProfile) -> ScenarioFuture {
    Box::pin(run(profile, Variant::Honest))
}

/// The pool and workers as they are, or a bad variant a regression could
/// produce.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Variant {
    Honest,
    /// Workers that give a page up when its attempt fails.
    NoRetry,
    /// A closed socket noticed only by the CDP deadline (20 s), and no
    /// heartbeat: the relays hold the client's socket open after the
    /// browser's closed (a fault on the wire), with `heartbeat: None`.
    NoLossDetection,
    /// A lost endpoint never retried: `FleetPolicy::max_retries: Some(0)`.
    NoRejoin,
}

const CONTROLS: &[Control] = &[
    Control {
        name: "no_retry",
        what: "workers that give a page up when its endpoint is lost, instead of retrying it elsewhere",
        rejects: &["every_page_loads"],
        run: |p| Box::pin(run(p, Variant::NoRetry)),
    },
    Control {
        name: "no_loss_detection",
        what: "relays that hold the client's socket open after the browser's closed (a half-dead proxy on the wire) and `heartbeat: None`: a loss noticed only by the CDP deadline (20 s)",
        rejects: &["failover_within_two_seconds", "throughput_with_one_down"],
        run: |p| Box::pin(run(p, Variant::NoLossDetection)),
    },
    Control {
        name: "no_rejoin",
        what: "`FleetPolicy::max_retries: Some(0)`: a lost endpoint is given up, never retried",
        rejects: &["rejoin_within_three_backoffs"],
        run: |p| Box::pin(run(p, Variant::NoRejoin)),
    },
];

const WORKERS: usize = 6;
const ENDPOINTS: usize = 3;
/// A remote browser holds at most this many slots.
const CAP: usize = 4;
/// Slots in the pool: every endpoint's cap, twice the workers. A lease's
/// fresh context is readied (~0.2 s on two loaded cores) while other slots
/// serve, and a page retried after a loss finds one ready: with one
/// endpoint down, eight slots remain for six workers.
const SLOTS: usize = CAP * ENDPOINTS;
const BACKOFF: Duration = Duration::from_millis(500);
const MAX_BACKOFF: Duration = Duration::from_secs(2);
const HEARTBEAT: Duration = Duration::from_millis(250);
const STOPPED_FOR: Duration = Duration::from_secs(5);
/// Attempts a page gets before it counts as lost.
const ATTEMPTS: usize = 5;
/// How long a returning endpoint is waited for, in backoff periods, before
/// the wait gives up: the figure then reads this many.
const REJOIN_PATIENCE: u32 = 4;

/// One attempt at a page.
#[derive(Debug, Clone)]
struct Attempt {
    endpoint: Option<String>,
    /// When its lease was in hand.
    leased: Instant,
    /// When it ended.
    ended: Instant,
    ok: bool,
}

/// One page's attempts, in order.
type Record = Vec<Attempt>;

/// A loss injected: which endpoint, when.
#[derive(Debug, Clone)]
struct Loss {
    endpoint: String,
    at: Instant,
}

/// The scenario's remote browsers, each behind a relay: what the pool's fleet
/// connects to, and where its faults are injected.
struct RemoteBrowsers {
    browsers: Vec<Option<ExternalChromium>>,
    ports: Vec<u16>,
    /// In front of each browser's port, for every variant alike.
    relays: Vec<TcpRelay>,
    launches_ms: Vec<f64>,
}

impl RemoteBrowsers {
    async fn start(on_close: UpstreamClosed) -> Result<RemoteBrowsers> {
        let mut fleet = RemoteBrowsers {
            browsers: Vec::new(),
            ports: Vec::new(),
            relays: Vec::new(),
            launches_ms: Vec::new(),
        };
        for _ in 0..ENDPOINTS {
            let port = free_port()?;
            fleet.ports.push(port);
            let started = match fleet.launch(port).await {
                Ok(chromium) => {
                    fleet.browsers.push(Some(chromium));
                    TcpRelay::start(&format!("127.0.0.1:{port}"), on_close)
                        .await
                        .map_err(Error::from)
                }
                Err(e) => Err(e),
            };
            match started {
                Ok(relay) => fleet.relays.push(relay),
                Err(e) => {
                    fleet.stop().await;
                    return Err(e);
                }
            }
        }
        Ok(fleet)
    }

    /// Starts a browser on `port` and times it, from spawning to its
    /// `/json/version` answering: the scenario's cold launch.
    async fn launch(&mut self, port: u16) -> Result<ExternalChromium> {
        let started = Instant::now();
        let chromium = ExternalChromium::start_on(port).await?;
        self.launches_ms.push(ms_since(started));
        Ok(chromium)
    }

    /// Endpoint `i` as the pool knows it: its relay's address.
    fn endpoint(&self, i: usize) -> String {
        self.relays[i].http_url()
    }

    fn pid(&self, i: usize) -> Option<u32> {
        self.browsers[i].as_ref().and_then(ExternalChromium::pid)
    }

    async fn kill(&mut self, i: usize) {
        if let Some(chromium) = self.browsers[i].take() {
            chromium.stop().await;
        }
    }

    async fn restart(&mut self, i: usize) -> Result<()> {
        let chromium = self.launch(self.ports[i]).await?;
        self.browsers[i] = Some(chromium);
        Ok(())
    }

    async fn stop(&mut self) {
        for i in 0..self.browsers.len() {
            if let Some(pid) = self.pid(i) {
                continue_process(pid);
            }
            self.kill(i).await;
        }
    }
}

fn pool_config(fleet: &RemoteBrowsers, variant: Variant) -> BrowserPoolConfig {
    let blind = variant == Variant::NoLossDetection;
    BrowserPoolConfig {
        source: BrowserSource::Connect {
            endpoints: (0..ENDPOINTS).map(|i| fleet.endpoint(i)).collect(),
        },
        min_idle: 0,
        max_size: SLOTS,
        warm_up: SLOTS,
        isolation: Isolation::Context,
        // A crawl that reads the DOM: no painting, a third less CPU a page.
        hidden_pages: true,
        acquire_timeout: Duration::from_secs(60),
        cdp_timeout: if blind {
            Duration::from_secs(20)
        } else {
            Duration::from_secs(5)
        },
        memory: None,
        fleet: FleetPolicy {
            max_leases_per_endpoint: Some(CAP),
            backoff: BACKOFF,
            max_backoff: MAX_BACKOFF,
            heartbeat: (!blind).then_some(HEARTBEAT),
            max_retries: (variant == Variant::NoRejoin).then_some(0),
        },
        ..BrowserPoolConfig::default()
    }
}

/// Whether the library says `e` may succeed in a new lease.
fn retryable(e: &Error) -> bool {
    e.as_pool().is_some_and(PoolError::is_retryable)
}

/// Loads page `n` in a lease of its own, retried up to [`ATTEMPTS`] times
/// while its failures are retryable (once, for the no_retry control); its
/// attempts, in order.
async fn load(pool: &BrowserPool, server: &FixtureServer, n: usize, retry: bool) -> Record {
    let mut record = Vec::new();
    for _ in 0..if retry { ATTEMPTS } else { 1 } {
        let asked = Instant::now();
        let attempt = async {
            let lease = pool.acquire().await?;
            let (endpoint, leased) = (lease.fleet_endpoint(), Instant::now());
            let done = async {
                lease.goto(&server.url(&format!("/page/{n}"))).await?;
                let title: String = lease.evaluate("document.title").await?;
                if title == format!("Page {n}") {
                    Ok::<(), Error>(())
                } else {
                    Err(PoolError::Task {
                        what: format!("page {n}"),
                        message: format!("read the title {title:?}"),
                    }
                    .into())
                }
            }
            .await;
            Ok::<_, Error>((endpoint, leased, done))
        }
        .await;
        // Retried only when the library calls the failure retryable: a loss
        // it misclassified would lose its page, and `every_page_loads` says so.
        let (endpoint, leased, ok, retryable) = match attempt {
            Ok((endpoint, leased, done)) => {
                if let Err(e) = &done {
                    tracing::debug!(page = n, ?endpoint, error = %e, "a page attempt failed");
                }
                let retryable = done.as_ref().err().is_some_and(retryable);
                (endpoint, leased, done.is_ok(), retryable)
            }
            Err(e) => {
                tracing::debug!(page = n, error = %e, "no lease for a page");
                (None, asked, false, retryable(&e))
            }
        };
        record.push(Attempt {
            endpoint,
            leased,
            ended: Instant::now(),
            ok,
        });
        if ok || !retryable {
            break;
        }
    }
    record
}

/// Loads `pages` with [`WORKERS`] workers. A `loss` is injected beside the
/// crawl once a tenth of the pages are done, and once a lease is out on
/// its endpoint; it returns when it struck, which is returned with the
/// pages' records.
async fn crawl<F: std::future::Future<Output = Instant>>(
    pool: &BrowserPool,
    server: &FixtureServer,
    pages: std::ops::Range<usize>,
    retry: bool,
    loss: Option<(usize, F)>,
) -> (Vec<Record>, Option<Instant>) {
    let after = pages.len() / 10;
    let next = Arc::new(Mutex::new(pages.clone()));
    let done = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let records = Arc::new(Mutex::new(Vec::new()));
    let workers = (0..WORKERS).map(|_| {
        let (next, done, records) = (next.clone(), done.clone(), records.clone());
        async move {
            loop {
                let n = next.lock().ok().and_then(|mut pages| pages.next());
                let Some(n) = n else { return };
                let record = load(pool, server, n, retry).await;
                if let Ok(mut records) = records.lock() {
                    records.push(record);
                }
                done.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            }
        }
    });
    let event = async {
        let (endpoint, inject) = loss?;
        wait_for(Duration::from_secs(600), || {
            done.load(std::sync::atomic::Ordering::SeqCst) >= after
        })
        .await;
        leased_on(pool, endpoint).await;
        Some(inject.await)
    };
    let (_, struck) = futures::future::join(futures::future::join_all(workers), event).await;
    let records = std::mem::take(&mut *records.lock().unwrap_or_else(|p| p.into_inner()));
    (records, struck)
}

/// Pages per second over `records`, counting the pages done from `from` on.
fn throughput(records: &[Record], from: Instant) -> f64 {
    let ends: Vec<Instant> = records
        .iter()
        .filter_map(|r| {
            r.last()
                .filter(|a| a.ok && a.ended >= from)
                .map(|a| a.ended)
        })
        .collect();
    let Some(last) = ends.iter().max() else {
        return 0.0;
    };
    ends.len() as f64 / last.duration_since(from).as_secs_f64().max(1e-3)
}

/// For each page whose attempt on the lost endpoint failed after the loss,
/// the time from the loss to its next lease in hand elsewhere, ms.
fn failovers(records: &[Record], loss: &Loss) -> Vec<f64> {
    records
        .iter()
        .filter_map(|r| {
            let failed = r.iter().position(|a| {
                !a.ok && a.ended >= loss.at && a.endpoint.as_deref() == Some(&loss.endpoint)
            })?;
            let elsewhere = r[failed + 1..]
                .iter()
                .find(|a| a.endpoint.as_deref() != Some(&loss.endpoint) && a.endpoint.is_some())?;
            tracing::debug!(
                detected_ms = r[failed]
                    .ended
                    .saturating_duration_since(loss.at)
                    .as_millis() as u64,
                leased_ms = elsewhere.leased.duration_since(r[failed].ended).as_millis() as u64,
                attempts = r.len(),
                "failover"
            );
            Some(elsewhere.leased.duration_since(loss.at).as_secs_f64() * 1e3)
        })
        .collect()
}

/// Waits until leases are out on endpoint `i`: a loss is injected under
/// pages, or there would be none to fail over. Two are waited for (up to
/// 5 s), then one (up to 5 s more): a lease is out about a quarter of a
/// worker's time (the rest goes to readying contexts) and ends within
/// ~0.1 s of the look, so the look is every 2 ms, and with two out one is
/// all but sure to be struck mid-call.
async fn leased_on(pool: &BrowserPool, i: usize) {
    for wanted in [2, 1] {
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if pool.endpoints()[i].leased >= wanted {
                return;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }
}

/// Waits for endpoint `i` to be up again; returns the wait in backoff
/// periods (the endpoint's own, as it came back), or [`REJOIN_PATIENCE`]
/// periods when it never did.
async fn rejoin(pool: &BrowserPool, i: usize) -> (f64, Duration) {
    let answered = Instant::now();
    let backoff = Duration::from_millis(pool.endpoints()[i].backoff_ms.max(1));
    let up = wait_for(backoff * REJOIN_PATIENCE, || {
        pool.endpoints()[i].state == EndpointState::Up
    })
    .await;
    let waited = answered.elapsed();
    let periods = if up {
        waited.as_secs_f64() / backoff.as_secs_f64()
    } else {
        f64::from(REJOIN_PATIENCE)
    };
    (periods, waited)
}

async fn run(profile: RunProfile, variant: Variant) -> Result<MetricSummary> {
    let server = FixtureServer::start().await?;
    let on_close = if variant == Variant::NoLossDetection {
        UpstreamClosed::Hold
    } else {
        UpstreamClosed::Close
    };
    let mut fleet = match RemoteBrowsers::start(on_close).await {
        Ok(fleet) => fleet,
        Err(e) => {
            server.shutdown().await;
            return Err(e);
        }
    };
    let result = measure(profile, variant, &server, &mut fleet).await;
    fleet.stop().await;
    server.shutdown().await;
    result
}

async fn measure(
    profile: RunProfile,
    variant: Variant,
    server: &FixtureServer,
    fleet: &mut RemoteBrowsers,
) -> Result<MetricSummary> {
    let mut s = MetricSummary::new(SCENARIO.spec.name, profile);
    let per_phase = match variant {
        Variant::Honest => profile.scaled(50, 100),
        _ => 30,
    };
    let retry = variant != Variant::NoRetry;
    let pool = BrowserPool::new(pool_config(fleet, variant)).await?;
    let (killed, hung) = (0, 1);
    let mut records = Vec::new();
    let mut losses = Vec::new();
    let mut notes = Vec::new();

    // Phase 1: all up.
    let p1 = Instant::now();
    let (phase, _) = crawl(
        &pool,
        server,
        0..per_phase,
        retry,
        None::<(usize, std::future::Ready<Instant>)>,
    )
    .await;
    let all_up = throughput(&phase, p1);
    records.extend(phase);

    // Phase 2: one killed a tenth of the way in, and left down.
    let pid = fleet.pid(killed);
    let kill = async move {
        let at = Instant::now();
        if let Some(pid) = pid {
            crate::testkit::kill_process(pid);
        }
        at
    };
    let (phase, struck) = crawl(
        &pool,
        server,
        per_phase..2 * per_phase,
        retry,
        Some((killed, kill)),
    )
    .await;
    let killed_at = struck.unwrap_or_else(Instant::now);
    let one_down = throughput(&phase, killed_at);
    losses.push(Loss {
        endpoint: fleet.endpoint(killed),
        at: killed_at,
    });
    records.extend(phase);
    fleet.kill(killed).await;

    // Phase 3: the killed one back on its port, rejoined; another hung.
    // (For the controls, only the rejoin.)
    fleet.restart(killed).await?;
    let (killed_rejoin, killed_waited) = rejoin(&pool, killed).await;
    notes.push(format!(
        "the killed endpoint, restarted, rejoined {killed_waited:?} after it answered ({killed_rejoin:.2} backoff periods)"
    ));
    // The controls each fail a threshold the first two phases judge.
    let hung_rejoin = if variant == Variant::Honest {
        let hung_pid = fleet.pid(hung);
        let stop = async move {
            let at = Instant::now();
            if let Some(pid) = hung_pid {
                stop_process(pid);
                tokio::time::sleep(STOPPED_FOR).await;
                continue_process(pid);
            }
            at
        };
        let (phase, struck) = crawl(
            &pool,
            server,
            2 * per_phase..3 * per_phase,
            retry,
            Some((hung, stop)),
        )
        .await;
        let stopped_at = struck.unwrap_or_else(Instant::now);
        losses.push(Loss {
            endpoint: fleet.endpoint(hung),
            at: stopped_at,
        });
        records.extend(phase);
        let (hung_rejoin, hung_waited) = rejoin(&pool, hung).await;
        notes.push(format!(
            "the hung endpoint, continued after {STOPPED_FOR:?}, rejoined {hung_waited:?} later ({hung_rejoin:.2} backoff periods)"
        ));
        hung_rejoin
    } else {
        0.0
    };

    let endpoints = pool.endpoints();
    pool.close().await;

    let pages = records.len() as u64;
    let loaded = records
        .iter()
        .filter(|r| r.last().is_some_and(|a| a.ok))
        .count() as u64;
    let retried = records.iter().map(|r| r.len() as u64 - 1).sum::<u64>();
    s.count("pages", pages);
    s.count("loaded", loaded);
    let asked = if variant == Variant::Honest { 3 } else { 2 } * per_phase as u64;
    s.count("lost", asked - loaded);
    s.count("retried", retried);
    let mut failover = Vec::new();
    for (loss, what) in losses.iter().zip(["killed", "hung"]) {
        let each = failovers(&records, loss);
        let max = each.iter().copied().fold(0.0, f64::max);
        notes.push(format!(
            "{what} endpoint {}: {} pages failed over, the slowest {max:.0} ms after the loss",
            loss.endpoint,
            each.len()
        ));
        failover.extend(each);
    }
    // Without retries (the no_retry control) no page fails over: the
    // figure is left out, and only the lost pages are judged.
    if !failover.is_empty() {
        s.measure("failover_ms", "ms", &failover)?;
    } else if retry {
        return Err(PoolError::Task {
            what: "fleet".into(),
            message: "no page was on a lost endpoint when it was lost: no failover to time".into(),
        }
        .into());
    }
    let cold = crate::stats::percentile("cold launch", &fleet.launches_ms, 0.5)?;
    s.ratio("cold_launch_ms", cold);
    s.ratio("pages_per_s_all_up", all_up);
    s.ratio("pages_per_s_one_down", one_down);
    s.ratio("rejoin_backoffs", killed_rejoin.max(hung_rejoin));
    let mut table = vec!["endpoint | leases served | losses | state at the end".to_owned()];
    for (i, e) in endpoints.iter().enumerate() {
        s.count(&format!("endpoint_{i}_leases"), e.served);
        s.count(&format!("endpoint_{i}_losses"), e.losses);
        table.push(format!(
            "{} | {} | {} | {:?}",
            e.endpoint, e.served, e.losses, e.state
        ));
    }
    s.note(table.join("\n"));
    for note in notes {
        s.note(note);
    }
    s.note(format!(
        "{WORKERS} workers, {per_phase} pages per phase, each page in a lease of its own (a fresh context), up to {ATTEMPTS} attempts; {SLOTS} slots over {ENDPOINTS} endpoints of at most {CAP} leases each, backoff {BACKOFF:?} to {MAX_BACKOFF:?}, heartbeat {:?}; cold launches (ms): {:?}",
        (variant != Variant::NoLossDetection).then_some(HEARTBEAT),
        fleet.launches_ms.iter().map(|m| m.round()).collect::<Vec<_>>()
    ));
    Ok(s)
}
