//! Page-session reuse and pipelined batches on real Chromium: the contract, and
//! the guarantees that make reuse safe.

use std::time::{Duration, Instant};

use assert_matches::assert_matches;
use chromiumoxide::cdp::browser_protocol::page::GetLayoutMetricsParams;
use chromiumoxide::cdp::js_protocol::runtime::EvaluateParams;
use tidepool::browser::{BrowserPool, BrowserPoolConfig};
use tidepool::cdp::{SessionPool, SessionPoolConfig};
use tidepool::harness::run_contract;
use tidepool::testkit::{init_tracing, FixtureServer, ResourceCheck};
use tidepool_pools::Error;

fn one_browser() -> BrowserPoolConfig {
    BrowserPoolConfig {
        min_idle: 1,
        max_size: 1,
        warm_up: 1,
        ..BrowserPoolConfig::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cdp_pool_meets_its_contract() {
    let resources = ResourceCheck::start();
    let report = run_contract("cdp_pool").await;
    let summary = &report.summary;
    assert_eq!(
        summary.metrics["pooled_ms"].summary.n as u64,
        summary.counters["requests"]
    );
    tidepool::assert_contract_snapshot!("cdp_pool", report);
    resources.assert_clean().await;
}

async fn body_text(session: &tidepool::cdp::Session) -> String {
    let r = session
        .page()
        .evaluate("document.body.innerText")
        .await
        .unwrap();
    r.into_value::<String>().unwrap().trim().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reuse_keeps_leases_isolated_and_a_reset_clears_what_a_use_left() {
    init_tracing();
    let resources = ResourceCheck::start();
    let server = FixtureServer::start().await.unwrap();
    let pool = BrowserPool::new(one_browser()).await.unwrap();

    let lease_a = pool.acquire().await.unwrap();
    let sessions = SessionPool::new(&lease_a, SessionPoolConfig::default()).unwrap();
    let mut s = sessions.acquire().await.unwrap();
    s.add_init_script("window.__injected = 'yes';")
        .await
        .unwrap();
    s.goto(&server.url("/set-cookie?name=session&value=A"))
        .await
        .unwrap();
    let injected: String = s
        .page()
        .evaluate("window.__injected")
        .await
        .unwrap()
        .into_value()
        .unwrap();
    assert_eq!(injected, "yes");
    s.page()
        .execute(chromiumoxide::cdp::browser_protocol::dom::GetDocumentParams::default())
        .await
        .unwrap(); // turns the DOM agent on
    s.release().await;
    assert_eq!(sessions.idle_count(), 1);

    // The same session, reused after its reset: no cookie, no script.
    let s = sessions.acquire().await.unwrap();
    assert_eq!(sessions.stats().reused, 1);
    assert_eq!(
        s.page().url().await.unwrap().as_deref(),
        Some("about:blank")
    );
    s.goto(&server.url("/echo-cookies")).await.unwrap();
    assert_eq!(body_text(&s).await, "", "a cookie survived the reset");
    let injected: bool = s
        .page()
        .evaluate("window.__injected === undefined")
        .await
        .unwrap()
        .into_value()
        .unwrap();
    assert!(injected, "an init script survived the reset");
    let dom_off = s
        .page()
        .execute(chromiumoxide::cdp::browser_protocol::dom::DisableParams::default())
        .await
        .map(|_| ())
        .unwrap_err()
        .to_string();
    assert!(
        dom_off.contains("hasn't been enabled"),
        "the DOM agent a use turned on survived the reset: {dom_off}"
    );
    s.goto(&server.url("/set-cookie?name=session&value=A2"))
        .await
        .unwrap();
    drop(s); // dropped without release: reset in the background
    drop(sessions);
    drop(lease_a);

    // The next lease of the same browser sees nothing of lease A's.
    let lease_b = pool.acquire().await.unwrap();
    let sessions = SessionPool::new(&lease_b, SessionPoolConfig::default()).unwrap();
    let s = sessions.acquire().await.unwrap();
    s.goto(&server.url("/echo-cookies")).await.unwrap();
    assert_eq!(body_text(&s).await, "", "lease B saw lease A's cookie");
    s.release().await;
    let last = server
        .requests()
        .into_iter()
        .rfind(|r| r.path == "/echo-cookies")
        .unwrap();
    assert_eq!(last.cookie, None);
    drop(sessions);
    drop(lease_b);
    pool.close().await;
    server.shutdown().await;
    resources.assert_clean().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_whose_browser_dies_errors_every_command_at_once() {
    init_tracing();
    let resources = ResourceCheck::start();
    let server = FixtureServer::start().await.unwrap();
    let pool = BrowserPool::new(one_browser()).await.unwrap();
    let lease = pool.acquire().await.unwrap();
    let sessions = SessionPool::new(&lease, SessionPoolConfig::default()).unwrap();
    let s = sessions.acquire().await.unwrap();
    s.goto(&server.url("/page/1")).await.unwrap();

    let pid = lease.pid().unwrap();
    assert!(tidepool::testkit::kill_process(pid));

    let mut batch = s.batch();
    for _ in 0..5 {
        batch.push(EvaluateParams::new("1 + 1"));
    }
    batch.push(GetLayoutMetricsParams::default());
    let t = Instant::now();
    let results = batch.send().await;
    assert!(
        t.elapsed() < Duration::from_secs(1),
        "took {:?}",
        t.elapsed()
    );
    assert_eq!(results.len(), 6, "every command gets a result");
    for r in &results {
        assert_matches!(r, Err(Error::BrowserCrashed { .. }), "{r:?}");
    }
    drop(s);
    drop(sessions);
    drop(lease);
    pool.close().await;
    server.shutdown().await;
    resources.assert_clean().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_pool_closes_surplus_sessions_and_the_browser_agrees() {
    init_tracing();
    let resources = ResourceCheck::start();
    let pool = BrowserPool::new(one_browser()).await.unwrap();
    let lease = pool.acquire().await.unwrap();
    let sessions = SessionPool::new(
        &lease,
        SessionPoolConfig {
            max_sessions: 2,
            ..SessionPoolConfig::default()
        },
    )
    .unwrap();
    let held: Vec<_> = futures::future::join_all((0..4).map(|_| sessions.acquire()))
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    assert_eq!(sessions.page_targets_in_context().await.unwrap(), 4 + 1);
    for s in held {
        s.release().await;
    }
    assert_eq!(sessions.idle_count(), 2, "{:?}", sessions.stats());
    assert_eq!(
        sessions.page_targets_in_context().await.unwrap(),
        2 + 1,
        "surplus sessions must be closed: {:?}",
        sessions.stats()
    );
    assert_eq!(sessions.stats().created, 4);
    let err = SessionPool::new(
        &lease,
        SessionPoolConfig {
            max_sessions: 0,
            ..SessionPoolConfig::default()
        },
    )
    .unwrap_err();
    assert!(err.to_string().contains("sessions.max_sessions"), "{err}");
    drop(sessions);
    drop(lease);
    pool.close().await;
    resources.assert_clean().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn releasing_one_session_keeps_the_cookies_of_another_still_in_use() {
    init_tracing();
    let resources = ResourceCheck::start();
    let server = FixtureServer::start().await.unwrap();
    let pool = BrowserPool::new(one_browser()).await.unwrap();
    let lease = pool.acquire().await.unwrap();
    let sessions = SessionPool::new(&lease, SessionPoolConfig::default()).unwrap();

    let a = sessions.acquire().await.unwrap();
    let b = sessions.acquire().await.unwrap();
    b.goto(&server.url("/set-cookie?name=b&value=kept"))
        .await
        .unwrap();
    a.release().await;
    b.goto(&server.url("/echo-cookies")).await.unwrap();
    assert_eq!(
        body_text(&b).await,
        "b=kept",
        "releasing one session took another's cookie"
    );
    // The last session out clears the context's cookies.
    b.release().await;
    let c = sessions.acquire().await.unwrap();
    c.goto(&server.url("/echo-cookies")).await.unwrap();
    assert_eq!(body_text(&c).await, "", "the last release must clear them");
    c.release().await;
    drop(sessions);
    drop(lease);
    pool.close().await;
    server.shutdown().await;
    resources.assert_clean().await;
}

/// Waits (up to 10 s) until every page target of the context but the
/// lease's own is an idle session: the background work of dropped sessions
/// and cancelled acquires done. Returns (targets, idle).
async fn quiesce(sessions: &SessionPool) -> (usize, usize) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let targets = sessions.page_targets_in_context().await.unwrap();
        let idle = sessions.idle_count();
        if targets == idle + 1 || Instant::now() > deadline {
            return (targets, idle);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelled_session_acquires_leave_no_target_behind() {
    use tidepool::testkit::SeededRng;
    init_tracing();
    let resources = ResourceCheck::start();
    // Cancelled creations finish in the background, up to twenty at once
    // here (about 10 MB a target): no memory limit may evict the browser
    // under the test.
    let pool = BrowserPool::new(BrowserPoolConfig {
        memory: None,
        ..one_browser()
    })
    .await
    .unwrap();
    let lease = pool.acquire().await.unwrap();
    let sessions = SessionPool::new(&lease, SessionPoolConfig::default()).unwrap();
    let mut rng = SeededRng::new(0x5e55);
    let (mut completed, mut cancelled) = (0u64, 0u64);
    let mut held = Vec::new();
    // 1000 rounds under perf; 100 under make test, where each of the ~35
    // targets the rounds create costs 80 ms.
    let rounds = tidepool::profile::RunProfile::from_env()
        .unwrap()
        .scaled(100, 1000);
    for round in 0..rounds {
        // Most deadlines fall around a reuse (about 0.1 ms), some inside a
        // new target's creation (about 80 ms).
        let deadline = if rng.next_u64().is_multiple_of(5) {
            Duration::from_micros(rng.next_u64() % 100_000)
        } else {
            Duration::from_micros(rng.next_u64() % 400)
        };
        let acquired = if round % 2 == 0 {
            tokio::time::timeout(deadline, sessions.acquire())
                .await
                .ok()
        } else {
            // Losing a select! to a competing branch drops the acquire too.
            tokio::select! {
                s = sessions.acquire() => Some(s),
                _ = tokio::time::sleep(deadline) => None,
            }
        };
        match acquired {
            Some(s) => {
                let s = s.unwrap();
                completed += 1;
                // Some sessions stay out a while, so acquires also create.
                if rng.next_u64().is_multiple_of(4) && held.len() < 3 {
                    held.push(s);
                } else if rng.next_u64().is_multiple_of(8) {
                    s.release().await;
                } else {
                    // Returned (and reset) in the background.
                    drop(s);
                }
            }
            None => cancelled += 1,
        }
        // A service's callers come at the pace of their work: every 20
        // rounds the background returns catch up, and the open targets are
        // checked against the idle sessions each time.
        if round % 20 == 19 {
            for s in held.drain(..) {
                s.release().await;
            }
            let (targets, idle) = quiesce(&sessions).await;
            assert_eq!(
                targets,
                idle + 1,
                "round {round}: targets open in the browser vs idle sessions: {:?}",
                sessions.stats()
            );
        }
    }
    for s in held.drain(..) {
        s.release().await;
    }
    assert!(
        cancelled as usize >= rounds / 5 && completed as usize >= rounds / 5,
        "{completed} completed, {cancelled} cancelled"
    );
    let (targets, idle) = quiesce(&sessions).await;
    let stats = sessions.stats();
    // One target is the lease's own page.
    assert_eq!(targets, idle + 1, "{stats:?}");
    assert!(
        stats.created + stats.reused >= completed,
        "every completed acquire is counted: {completed} vs {stats:?}"
    );
    assert_eq!(
        stats.resets,
        stats.created + stats.reused,
        "every session handed out came back through a reset: {stats:?}"
    );
    assert_eq!(
        stats.created - stats.expired - stats.discarded - stats.surplus_closed,
        idle as u64,
        "sessions created, less those closed, are the idle ones: {stats:?}"
    );
    println!("{completed} acquires completed, {cancelled} cancelled; {stats:?}");
    drop(sessions);
    drop(lease);
    pool.close().await;
    resources.assert_clean().await;
}
