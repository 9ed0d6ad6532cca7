//! What the library's CDP client must do for its headlines, checked as a
//! dependent gets it: batches pipelined on the wire, and a killed remote
//! browser found at once, not by a heartbeat or a deadline.
//!
//! Written against `tidepool_pools` and `tidepool_testkit` alone, so the
//! same file runs here and in `examples/embed`, a crate outside this
//! workspace that depends on the library by path, with its own lockfile and
//! no `[patch]` (its `tests/cdp_client.rs` includes this one).
//!
//! Pipelining is judged on the wire: a pool in connect mode talks to
//! Chromium through a recording relay, and the waits per command are counted
//! from the frames' own timestamps, not from when our futures were polled.

use std::time::{Duration, Instant};

use tidepool_pools::browser::{BrowserPool, BrowserPoolConfig, BrowserSource};
use tidepool_pools::cdp::{SessionPool, SessionPoolConfig};
use tidepool_pools::chromiumoxide::cdp::js_protocol::runtime::EvaluateParams;
use tidepool_testkit::{
    init_tracing, wire_waits_per_command, CdpRelay, ExternalChromium, FixtureServer, ResourceCheck,
    WireFrame,
};

/// Commands per batch: distinct expressions, so each frame is its own.
const COMMANDS: u64 = 8;
const BATCHES: u64 = 30;

/// A pool of one browser in connect mode, warm.
async fn one_browser_at(endpoint: String) -> BrowserPool {
    BrowserPool::new(BrowserPoolConfig {
        source: BrowserSource::Connect {
            endpoints: vec![endpoint],
        },
        min_idle: 1,
        max_size: 1,
        warm_up: 1,
        memory: None,
        ..BrowserPoolConfig::default()
    })
    .await
    .unwrap()
}

/// The batch's evaluations, as the relay saw them.
fn measured(frame: &WireFrame) -> bool {
    frame.method.as_deref() == Some("Runtime.evaluate")
}

/// Runs `BATCHES` batches through the relay, one command at a time or
/// pipelined, and returns the waits per command the wire shows, batch by
/// batch averaged.
///
/// The tests run it in a task, as a service runs its work: from the thread
/// that blocks on the runtime, each command of a batch wakes a worker on its
/// own, and the batch reaches the wire in pieces (0.14-0.33 waits per command
/// measured that way, against 0.125 every time from a task).
async fn waits_on_the_wire(sequential: bool) -> f64 {
    let server = FixtureServer::start().await.unwrap();
    let chromium = ExternalChromium::start().await.unwrap();
    let relay = CdpRelay::start(&chromium.ws_url).await.unwrap();
    let pool = one_browser_at(relay.ws_url()).await;
    let lease = pool.acquire().await.unwrap();
    let sessions = SessionPool::new(&lease, SessionPoolConfig::default()).unwrap();
    let session = sessions.acquire().await.unwrap();
    session.goto(&server.url("/page/1")).await.unwrap();
    let mut per_batch = Vec::new();
    for b in 0..BATCHES {
        relay.clear();
        let mut batch = session.batch();
        for n in 0..COMMANDS {
            batch.push(EvaluateParams::new(format!("{} * 7919", b * COMMANDS + n)));
        }
        let results = if sequential {
            batch.send_sequential().await
        } else {
            batch.send().await
        };
        for (n, r) in results.into_iter().enumerate() {
            let value = r.unwrap()["result"]["value"].as_u64();
            assert_eq!(value, Some((b * COMMANDS + n as u64) * 7919));
        }
        let frames = relay.frames();
        let commands = frames
            .iter()
            .filter(|f| f.to_browser && measured(f))
            .count() as u64;
        assert_eq!(
            commands, COMMANDS,
            "the relay saw every command of the batch"
        );
        if std::env::var_os("TIDEPOOL_WIRE_DEBUG").is_some() {
            let t0 = frames[0].at;
            for f in &frames {
                eprintln!(
                    "{:>8.3} ms {} id={:?} {:?}",
                    (f.at - t0).as_secs_f64() * 1e3,
                    if f.to_browser { "->" } else { "<-" },
                    f.id,
                    f.method
                );
            }
        }
        per_batch.push(wire_waits_per_command(&frames, measured).unwrap());
    }
    session.release().await;
    drop(sessions);
    drop(lease);
    pool.close().await;
    drop(relay);
    chromium.stop().await;
    server.shutdown().await;
    per_batch.iter().sum::<f64>() / per_batch.len() as f64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_sent_one_by_one_waits_once_per_command_on_the_wire() {
    init_tracing();
    let resources = ResourceCheck::start();
    let waits = tokio::spawn(waits_on_the_wire(true)).await.unwrap();
    println!("sequential: {waits:.3} waits per command on the wire");
    assert!(
        waits >= 0.9,
        "sequential sending must read about one wait per command on the wire: {waits:.3} (limit >= 0.9, ratio {:.2})",
        waits / 0.9
    );
    resources.assert_clean().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pipelined_batch_waits_once_for_all_its_commands_on_the_wire() {
    init_tracing();
    let resources = ResourceCheck::start();
    let waits = tokio::spawn(waits_on_the_wire(false)).await.unwrap();
    println!("pipelined: {waits:.3} waits per command on the wire");
    assert!(
        waits <= 0.2,
        "a pipelined batch must put its commands on the wire before their replies: {waits:.3} waits per command (limit <= 0.2, ratio {:.2}); chromiumoxide 0.9.1 reads 0.91 (README, \"The CDP client\")",
        waits / 0.2
    );
    resources.assert_clean().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_remote_browser_fails_its_lease_within_a_second_naming_it() {
    init_tracing();
    let resources = ResourceCheck::start();
    let server = FixtureServer::start().await.unwrap();
    let chromium = ExternalChromium::start().await.unwrap();
    let endpoint = chromium.http_url();
    let pool = one_browser_at(endpoint.clone()).await;
    let lease = pool.acquire().await.unwrap();
    lease.goto(&server.url("/page/1")).await.unwrap();

    // SIGKILL and the reap: from here, only the closed socket can tell.
    let killed = Instant::now();
    chromium.stop().await;
    let err = lease
        .goto(&server.url("/slow?ms=5000"))
        .await
        .expect_err("a lease on a killed browser must fail");
    let found = killed.elapsed();
    println!("a killed remote browser failed its lease {found:?} after the SIGKILL");
    assert!(
        found <= Duration::from_secs(1),
        "the loss took {found:?} to reach the lease (limit 1 s, ratio {:.2}); stock chromiumoxide 0.9.1 leaves it to the heartbeat or the call's deadline (README, \"The CDP client\")",
        found.as_secs_f64()
    );
    let text = err.to_string();
    let address = endpoint.trim_start_matches("http://");
    assert!(
        text.contains(address),
        "the error names the endpoint {address}: {text}"
    );
    drop(lease);
    pool.close().await;
    server.shutdown().await;
    resources.assert_clean().await;
}
