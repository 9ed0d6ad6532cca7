//! A pool in connect mode over a fleet of real Chromium processes started
//! with remote debugging: discovery through `/json/version`, scheduling by
//! load under a per-endpoint cap, loss detection, failover, rejoin, and
//! contexts that go with a client killed mid-lease. The contract
//! measurement of the same (the `fleet` scenario) is at the end.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use assert_matches::assert_matches;
use chromiumoxide::cdp::browser_protocol::target::GetTargetsParams;
use tidepool::browser::{
    BrowserPool, BrowserPoolConfig, BrowserSource, EndpointState, FleetPolicy, Isolation,
};
use tidepool::harness::run_contract;
use tidepool::memory::MemoryPolicy;
use tidepool::testkit::{
    free_port, init_tracing, kill_process, ExternalChromium, FixtureServer, ResourceCheck,
};
use tidepool_pools::Error;

const MB: u64 = 1024 * 1024;

fn fleet_config(endpoints: Vec<String>, cap: usize, max_size: usize) -> BrowserPoolConfig {
    BrowserPoolConfig {
        source: BrowserSource::Connect { endpoints },
        min_idle: 0,
        warm_up: 0,
        max_size,
        isolation: Isolation::Context,
        acquire_timeout: Duration::from_secs(20),
        cdp_timeout: Duration::from_secs(5),
        memory: None,
        fleet: FleetPolicy {
            max_leases_per_endpoint: Some(cap),
            backoff: Duration::from_millis(300),
            heartbeat: Some(Duration::from_millis(500)),
            ..FleetPolicy::default()
        },
        ..BrowserPoolConfig::default()
    }
}

async fn fleet_of(n: usize) -> Vec<ExternalChromium> {
    let mut fleet = Vec::new();
    for _ in 0..n {
        fleet.push(ExternalChromium::start().await.unwrap());
    }
    fleet
}

async fn stop_all(fleet: Vec<ExternalChromium>) {
    for chromium in fleet {
        chromium.stop().await;
    }
}

/// What a client's view of `chromium` shows: the browser context of every
/// target.
async fn contexts_of_targets(ws_url: &str) -> Vec<String> {
    let (browser, mut handler) = chromiumoxide::Browser::connect(ws_url).await.unwrap();
    let polling = tokio::spawn(async move {
        use futures::StreamExt;
        while handler.next().await.is_some() {}
    });
    let targets = browser.execute(GetTargetsParams::default()).await.unwrap();
    polling.abort();
    targets
        .result
        .target_infos
        .iter()
        .filter_map(|t| t.browser_context_id.as_ref().map(|c| c.inner().clone()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leases_spread_by_load_over_endpoints_found_through_json_version() {
    init_tracing();
    let resources = ResourceCheck::start();
    let server = FixtureServer::start().await.unwrap();
    let fleet = fleet_of(3).await;
    // Tokens and options of a browserless URL ride along to the WebSocket.
    let endpoints: Vec<String> = fleet
        .iter()
        .map(|c| format!("{}?token=t0k&timeout=60000", c.http_url()))
        .collect();
    let pool = BrowserPool::new(fleet_config(endpoints.clone(), 2, 6))
        .await
        .unwrap();
    let mut leases = Vec::new();
    for i in 0..6 {
        let lease = pool.acquire().await.unwrap();
        lease
            .goto(&server.url(&format!("/page/{i}")))
            .await
            .unwrap();
        leases.push(lease);
    }
    let mut on: BTreeMap<String, usize> = BTreeMap::new();
    for lease in &leases {
        *on.entry(lease.fleet_endpoint().unwrap()).or_default() += 1;
    }
    assert_eq!(
        on.values().copied().collect::<Vec<_>>(),
        [2, 2, 2],
        "six leases over three endpoints capped at two: {on:?}"
    );
    for stats in pool.endpoints() {
        assert_eq!(
            (stats.state, stats.leased, stats.slots),
            (EndpointState::Up, 2, 2)
        );
    }
    drop(leases);
    pool.close().await;
    let after = pool.endpoints();
    assert!(
        after.iter().all(|e| e.slots == 0 && e.leased == 0),
        "a closed pool counts no slot or lease on any endpoint: {after:?}"
    );
    stop_all(fleet).await;
    server.shutdown().await;
    resources.assert_clean().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_endpoint_fails_its_leases_at_once_and_rejoins_after_a_restart() {
    init_tracing();
    let server = FixtureServer::start().await.unwrap();
    let mut fleet = fleet_of(2).await;
    let port = fleet[0].port;
    let endpoints: Vec<String> = fleet.iter().map(|c| c.http_url()).collect();
    let pool = BrowserPool::new(fleet_config(endpoints.clone(), 2, 4))
        .await
        .unwrap();
    let a = pool.acquire().await.unwrap();
    let b = pool.acquire().await.unwrap();
    let on_lost = [&a, &b]
        .into_iter()
        .find(|l| l.fleet_endpoint().as_deref() == Some(endpoints[0].as_str()))
        .expect("one lease on each endpoint");

    let lost = fleet.remove(0);
    let killed = Instant::now();
    lost.stop().await;
    let err = on_lost
        .goto(&server.url("/slow?ms=5000"))
        .await
        .expect_err("a lease on a killed browser must fail");
    let detected = killed.elapsed();
    println!("the loss reached the lease {detected:?} after the kill");
    assert!(
        detected < Duration::from_secs(1),
        "the loss took {detected:?} to reach the lease (limit 1 s)"
    );
    let text = err.to_string();
    assert!(
        text.contains(&format!("127.0.0.1:{port}")),
        "the error names the endpoint: {text}"
    );
    drop((a, b));
    // The next leases go to the endpoint left.
    for _ in 0..3 {
        let lease = pool.acquire().await.unwrap();
        assert_eq!(
            lease.fleet_endpoint().as_deref(),
            Some(endpoints[1].as_str())
        );
        lease.goto(&server.url("/page/1")).await.unwrap();
    }
    let down = &pool.endpoints()[0];
    assert_ne!(down.state, EndpointState::Up, "{down:?}");
    assert!(down.losses >= 1);

    // Back on the same port with a new browser id: found again through
    // /json/version, within three backoff periods of answering.
    let back = ExternalChromium::start_on(port).await.unwrap();
    let answered = Instant::now();
    let backoff = Duration::from_millis(pool.endpoints()[0].backoff_ms);
    while pool.endpoints()[0].state != EndpointState::Up {
        assert!(
            answered.elapsed() < backoff * 3 + Duration::from_secs(1),
            "no rejoin within three backoffs of {backoff:?}: {:?}",
            pool.endpoints()[0]
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    pool.close().await;
    back.stop().await;
    stop_all(fleet).await;
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_no_endpoint_up_acquire_fails_naming_every_endpoint_and_why() {
    init_tracing();
    let endpoints: Vec<String> = (0..2)
        .map(|_| format!("http://127.0.0.1:{}", free_port().unwrap()))
        .collect();
    let pool = BrowserPool::new(fleet_config(endpoints.clone(), 2, 4))
        .await
        .unwrap();
    let started = Instant::now();
    let err = pool.acquire().await.expect_err("nothing listens there");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "acquire took {:?} to give up on a fleet that refuses",
        started.elapsed()
    );
    let text = err.to_string();
    assert_matches!(err, Error::NoEndpointUp { .. });
    for endpoint in &endpoints {
        assert!(
            text.contains(endpoint.as_str()),
            "{endpoint} unnamed: {text}"
        );
    }
    assert!(text.contains("refused"), "no reason given: {text}");
    pool.close().await;

    let err = BrowserPool::new(fleet_config(vec!["wss://fleet.example/x".into()], 2, 4))
        .await
        .expect_err("a wss:// endpoint cannot be reached by this build");
    assert!(err.to_string().contains("source.endpoints[0]"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_v8_heap_limits_apply_per_endpoint_and_an_eviction_spares_the_others() {
    init_tracing();
    let server = FixtureServer::start().await.unwrap();
    let fleet = fleet_of(2).await;
    let endpoints: Vec<String> = fleet.iter().map(|c| c.http_url()).collect();
    let pool = BrowserPool::new(BrowserPoolConfig {
        memory: Some(MemoryPolicy {
            v8_soft_limit_bytes: 40 * MB,
            v8_hard_limit_bytes: 80 * MB,
            sample_interval: Duration::from_millis(200),
            ..MemoryPolicy::default()
        }),
        ..fleet_config(endpoints.clone(), 2, 4)
    })
    .await
    .unwrap();
    let mut on: [Vec<tidepool::browser::Lease>; 2] = Default::default();
    for _ in 0..4 {
        let lease = pool.acquire().await.unwrap();
        lease.goto(&server.url("/page/1")).await.unwrap();
        let i = endpoints
            .iter()
            .position(|e| Some(e) == lease.fleet_endpoint().as_ref())
            .unwrap();
        on[i].push(lease);
    }
    assert_eq!((on[0].len(), on[1].len()), (2, 2));
    tokio::time::sleep(Duration::from_millis(600)).await; // three samples
    assert_eq!(
        pool.browser_memory().len(),
        2,
        "one memory figure per endpoint: {:?}",
        pool.browser_memory()
    );
    // 70 MB more puts endpoint 0's pages over one lease's 80 MB but under
    // the endpoint's 160 MB (two leases' worth): not evicted.
    on[0][0].goto(&server.url("/alloc?mb=70")).await.unwrap();
    tokio::time::sleep(Duration::from_millis(600)).await;
    let heaps = pool.browser_memory();
    let biggest = heaps.values().copied().max().unwrap_or(0);
    assert!(
        biggest > 80 * MB && biggest < 160 * MB,
        "endpoint 0's heaps read {biggest} bytes: expected between one lease's limit and two"
    );
    assert_eq!(
        pool.stats().memory_evictions,
        0,
        "evicted under the endpoint's limit"
    );
    let _ = on[0][1].goto(&server.url("/alloc?mb=100")).await;
    let deadline = Instant::now() + Duration::from_secs(3);
    let evicted = loop {
        match on[0][1].evaluate::<u32>("1").await {
            Err(e) => break e,
            Ok(_) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(50)).await
            }
            Ok(_) => panic!("170 MB allocated over an endpoint's 160 MB was not evicted in 3 s"),
        }
    };
    assert_matches!(evicted, Error::BrowserEvicted { .. });
    assert_matches!(
        on[0][0].evaluate::<u32>("1").await,
        Err(Error::BrowserEvicted { .. })
    );
    for lease in &on[1] {
        assert_eq!(
            lease.evaluate::<u32>("1 + 1").await.unwrap(),
            2,
            "the other endpoint was disturbed"
        );
    }
    assert_eq!(
        pool.endpoints()[0].state,
        EndpointState::Up,
        "an eviction is not a loss"
    );
    drop(on);
    pool.close().await;
    stop_all(fleet).await;
    server.shutdown().await;
}

/// Set in the client's environment by the control below: its contexts
/// outlive its connection.
const KEEP_CONTEXTS: &str = "TIDEPOOL_FLEET_CLIENT_KEEPS_CONTEXTS";

/// The client of the test below: holds two leases on the browser named by
/// `TIDEPOOL_FLEET_CLIENT_OF`, prints their contexts, and waits to be killed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fleet_client_process() {
    let Ok(endpoint) = std::env::var("TIDEPOOL_FLEET_CLIENT_OF") else {
        return; // Run as a test of its own: nothing to do.
    };
    if std::env::var_os(KEEP_CONTEXTS).is_some() {
        tidepool_pools::controls::keep_contexts_after_disconnect();
    }
    let pool = BrowserPool::new(fleet_config(vec![endpoint], 2, 2))
        .await
        .unwrap();
    let a = pool.acquire().await.unwrap();
    let b = pool.acquire().await.unwrap();
    println!(
        "contexts: {} {}",
        a.context_id().inner(),
        b.context_id().inner()
    );
    tokio::time::sleep(Duration::from_secs(60)).await;
    drop((a, b));
}

/// Starts the client above against `chromium`, waits for its contexts,
/// kills it with SIGKILL, and returns its contexts and what the browser
/// still shows of them after up to `wait`.
async fn kill_a_client_holding_leases(
    chromium: &ExternalChromium,
    keep_contexts: bool,
    wait: Duration,
) -> (Vec<String>, Vec<String>) {
    use tokio::io::AsyncBufReadExt;
    let mut command = tokio::process::Command::new(std::env::current_exe().unwrap());
    command
        .args(["fleet_client_process", "--exact", "--nocapture"])
        .env("TIDEPOOL_FLEET_CLIENT_OF", chromium.http_url())
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true);
    if keep_contexts {
        command.env(KEEP_CONTEXTS, "1");
    }
    let mut client = command.spawn().unwrap();
    let mut lines = tokio::io::BufReader::new(client.stdout.take().unwrap()).lines();
    let mine: Vec<String> = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if let Some(ids) = line.strip_prefix("contexts: ") {
                return ids.split(' ').map(str::to_owned).collect();
            }
        }
        panic!("the client ended without leasing")
    })
    .await
    .expect("the client leased nothing within 30 s");
    let before = contexts_of_targets(&chromium.ws_url).await;
    assert!(
        mine.iter().all(|c| before.contains(c)),
        "the client's contexts {mine:?} are not among the browser's {before:?}"
    );
    assert!(kill_process(client.id().unwrap()));
    client.wait().await.unwrap();
    let deadline = Instant::now() + wait;
    loop {
        let left: Vec<String> = contexts_of_targets(&chromium.ws_url)
            .await
            .into_iter()
            .filter(|c| mine.contains(c))
            .collect();
        if left.is_empty() || Instant::now() >= deadline {
            return (mine, left);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_killed_mid_lease_leaves_none_of_its_contexts_on_a_shared_browser() {
    init_tracing();
    let chromium = ExternalChromium::start().await.unwrap();
    let (mine, left) = kill_a_client_holding_leases(&chromium, false, Duration::from_secs(5)).await;
    assert!(
        left.is_empty(),
        "5 s after kill -9, {} of the client's {} contexts are still on the browser: {left:?}",
        left.len(),
        mine.len()
    );
    // The negative control: contexts made without disposeOnDetach stay, and
    // the check above sees them.
    let (mine, left) = kill_a_client_holding_leases(&chromium, true, Duration::from_secs(1)).await;
    assert_eq!(
        left.len(),
        mine.len(),
        "the control's contexts went anyway; the check cannot tell"
    );
    chromium.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fleet_meets_its_contract() {
    init_tracing();
    let resources = ResourceCheck::start();
    let report = run_contract("fleet").await;
    let counters = &report.summary.counters;
    assert_eq!(counters["loaded"], counters["pages"], "pages lost");
    for i in 0..3 {
        assert!(
            counters[&format!("endpoint_{i}_leases")] > 0,
            "endpoint {i} served no lease"
        );
    }
    tidepool::assert_contract_snapshot!("fleet", report);
    resources.assert_clean().await;
}
