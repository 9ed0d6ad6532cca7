//! BrowserPool on real Chromium: the performance contract, and the behaviour a
//! scraping service depends on. Every test checks at its end that it leaked no
//! browser process, profile directory or file descriptor.

use std::sync::Arc;
use std::time::{Duration, Instant};
use tidepool_pools::controls;

use assert_matches::assert_matches;
use tidepool::browser::{BrowserPool, BrowserPoolConfig, BrowserSource, Lease, RetryPolicy};
use tidepool::harness::run_contract;
use tidepool::testkit::{init_tracing, ExternalChromium, FixtureServer, ResourceCheck};
use tidepool_pools::Error;

fn small_pool(max_size: usize) -> BrowserPoolConfig {
    BrowserPoolConfig {
        min_idle: 1.min(max_size),
        max_size,
        warm_up: 1.min(max_size),
        ..BrowserPoolConfig::default()
    }
}

use tidepool::testkit::process_alive as is_alive;

/// Whether `pid` is gone within `grace`: a retired browser's shutdown
/// (Browser.close, then SIGKILL after the pool's grace) runs in the background.
async fn gone_within(pid: u32, grace: Duration) -> bool {
    let deadline = Instant::now() + grace;
    while is_alive(pid) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    !is_alive(pid)
}

fn kill9(pid: u32) {
    assert!(tidepool::testkit::kill_process(pid), "could not kill {pid}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_pool_meets_its_contract() {
    let resources = ResourceCheck::start();
    let report = run_contract("browser_pool").await;
    let summary = &report.summary;
    // One warm and one cold page per pair: 10 pairs quick, 100 under perf.
    let pairs = tidepool::profile::RunProfile::from_env()
        .unwrap()
        .scaled(10, 100);
    assert_eq!(summary.metrics["warm_ms"].summary.n, pairs);
    assert_eq!(summary.metrics["cold_ms"].summary.n, pairs);
    tidepool::assert_contract_snapshot!("browser_pool", report);
    resources.assert_clean().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cookie_of_one_lease_is_absent_in_the_next_on_the_same_browser() {
    init_tracing();
    let resources = ResourceCheck::start();
    let server = FixtureServer::start().await.unwrap();
    let pool = BrowserPool::new(small_pool(1)).await.unwrap();

    let a = pool.acquire().await.unwrap();
    let browser = a.browser_id();
    a.goto(&server.url("/set-cookie?name=lease&value=A"))
        .await
        .unwrap();
    let _: bool = a
        .evaluate("localStorage.setItem('k', 'A'), true")
        .await
        .unwrap();
    a.goto(&server.url("/echo-cookies")).await.unwrap();
    let seen_by_a: String = a.evaluate("document.body.innerText").await.unwrap();
    assert_eq!(
        seen_by_a.trim(),
        "lease=A",
        "the cookie must work within its lease"
    );
    drop(a);

    let b = pool.acquire().await.unwrap();
    assert_eq!(
        b.browser_id(),
        browser,
        "max_size 1: the same browser serves the next lease"
    );
    b.goto(&server.url("/echo-cookies")).await.unwrap();
    let seen_by_b: String = b.evaluate("document.body.innerText").await.unwrap();
    assert_eq!(seen_by_b.trim(), "", "lease B saw lease A's cookie");
    {
        let empty: bool = b
            .evaluate("localStorage.length === 0 && sessionStorage.length === 0")
            .await
            .unwrap();
        assert!(empty, "lease B saw storage");
    }
    drop(b);

    let last = server
        .requests()
        .into_iter()
        .rfind(|r| r.path == "/echo-cookies")
        .unwrap();
    assert_eq!(
        last.cookie, None,
        "the server received a cookie from lease B"
    );
    pool.close().await;
    server.shutdown().await;
    resources.assert_clean().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_browser_errors_its_lease_within_a_second_and_is_replaced() {
    init_tracing();
    let resources = ResourceCheck::start();
    let server = FixtureServer::start().await.unwrap();
    let pool = BrowserPool::new(small_pool(2)).await.unwrap();

    let lease = pool.acquire().await.unwrap();
    lease.goto(&server.url("/page/1")).await.unwrap();
    let pid = lease.pid().unwrap();
    let crashed_browser = lease.browser_id();
    kill9(pid);
    let t = Instant::now();
    let err = lease.goto(&server.url("/page/2")).await.unwrap_err();
    let took = t.elapsed();
    assert_matches!(err, Error::BrowserCrashed { .. }, "got {err}");
    assert!(
        took < Duration::from_secs(1),
        "the lease learned of the crash after {took:?}"
    );
    assert!(err.to_string().contains("crashed"), "{err}");
    drop(lease);

    let next = pool.acquire().await.unwrap();
    assert_ne!(next.browser_id(), crashed_browser);
    next.goto(&server.url("/page/3")).await.unwrap();
    drop(next);
    assert!(pool.wait_until_idle(1, Duration::from_secs(10)).await);
    let stats = pool.stats();
    assert_eq!(stats.crashed, 1, "{stats:?}");
    assert!(!is_alive(pid));
    pool.close().await;
    server.shutdown().await;
    resources.assert_clean().await;
}

/// A websocket endpoint that completes the handshake and then never answers.
async fn silent_cdp_endpoint() -> (String, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            if let Ok(ws) = async_tungstenite::tokio::accept_async(stream).await {
                held.push(ws);
            }
        }
    });
    (format!("ws://{addr}/devtools/browser/silent"), task)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endpoint_that_never_answers_times_out_instead_of_hanging() {
    init_tracing();
    let (url, server) = silent_cdp_endpoint().await;
    let pool = BrowserPool::new(BrowserPoolConfig {
        source: BrowserSource::Connect {
            endpoints: vec![url],
        },
        min_idle: 0,
        warm_up: 0,
        max_size: 1,
        acquire_timeout: Duration::from_millis(1500),
        ..BrowserPoolConfig::default()
    })
    .await
    .unwrap();
    let t = Instant::now();
    let err = tokio::time::timeout(Duration::from_secs(10), pool.acquire())
        .await
        .expect("acquire hung past its timeout")
        .unwrap_err();
    assert_matches!(err, Error::AcquireTimeout { .. }, "got {err}");
    assert!(
        t.elapsed() < Duration::from_secs(3),
        "took {:?}",
        t.elapsed()
    );
    assert_eq!(pool.stats().acquire_timeouts, 1);
    pool.close().await;
    server.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_pool_queues_acquirers_and_times_them_out() {
    init_tracing();
    let resources = ResourceCheck::start();
    let pool = BrowserPool::new(BrowserPoolConfig {
        acquire_timeout: Duration::from_secs(20),
        ..small_pool(2)
    })
    .await
    .unwrap();
    let first = pool.acquire().await.unwrap();
    let second = pool.acquire().await.unwrap();
    let third = {
        let pool = pool.clone();
        tokio::spawn(async move { pool.acquire().await.map(|l| l.browser_id()) })
    };
    tokio::time::sleep(Duration::from_millis(300)).await; // let the third queue
    assert!(
        !third.is_finished(),
        "a third lease was granted beyond max_size 2"
    );
    let freed = first.browser_id();
    drop(first);
    let got = tokio::time::timeout(Duration::from_secs(10), third)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(
        got,
        freed,
        "the waiter gets the released browser, no third one is launched (second holds browser {}; {:?})",
        second.browser_id(),
        pool.stats()
    );
    assert_eq!(pool.stats().launched, 2);
    assert!(pool.stats().acquire_waits >= 1);

    let short = BrowserPool::new(BrowserPoolConfig {
        acquire_timeout: Duration::from_millis(400),
        ..small_pool(1)
    })
    .await
    .unwrap();
    let held = short.acquire().await.unwrap();
    let t = Instant::now();
    let err = short.acquire().await.unwrap_err();
    assert_matches!(
        err,
        Error::AcquireTimeout {
            max_size: 1,
            in_use: 1,
            ..
        }
    );
    assert!(t.elapsed() >= Duration::from_millis(400) && t.elapsed() < Duration::from_secs(2));
    drop((held, second));
    short.close().await;
    pool.close().await;
    resources.assert_clean().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_browser_is_retired_after_max_uses_and_really_gone() {
    init_tracing();
    let resources = ResourceCheck::start();
    let pool = BrowserPool::new(BrowserPoolConfig {
        max_uses: Some(3),
        ..small_pool(1)
    })
    .await
    .unwrap();
    let mut ids = Vec::new();
    let mut first_pid = None;
    for _ in 0..4 {
        let lease = pool.acquire().await.unwrap();
        first_pid.get_or_insert(lease.pid().unwrap());
        ids.push(lease.browser_id());
    }
    assert_eq!(ids[0], ids[1]);
    assert_eq!(ids[1], ids[2]);
    assert_ne!(ids[2], ids[3], "the 4th acquire must get a new browser");
    assert!(
        !is_alive(first_pid.unwrap()),
        "a retired browser is still running"
    );
    assert_eq!(pool.stats().retired_max_uses, 1);
    pool.close().await;
    resources.assert_clean().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_browser_past_its_lifetime_is_retired_by_maintenance_and_replaced() {
    init_tracing();
    let resources = ResourceCheck::start();
    let mut config = small_pool(1);
    config.retention.max_lifetime = Duration::from_millis(1500);
    let pool = BrowserPool::new(config).await.unwrap();
    let first = controls::pids(&pool);
    assert_eq!(first.len(), 1, "warm-up starts one browser");
    // Never leased: only the maintenance loop can retire it.
    let deadline = Instant::now() + Duration::from_secs(20);
    while pool.stats().retired_lifetime == 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        pool.stats().retired_lifetime >= 1,
        "an idle browser past max_lifetime was kept: {:?}",
        pool.stats()
    );
    assert!(
        pool.wait_until_idle(1, Duration::from_secs(20)).await,
        "min_idle was not restored after the retirement"
    );
    assert!(
        gone_within(first[0], Duration::from_secs(5)).await,
        "the retired browser is still running"
    );
    pool.close().await;
    resources.assert_clean().await;
}

/// Renderers in a browser's process tree, counted after `settle` lets the
/// renderers of disposed contexts exit.
async fn renderers(pid: u32, settle: Duration) -> usize {
    let count = || tidepool::memory::count_of_kind(pid, "renderer");
    let deadline = Instant::now() + settle;
    let mut n = count();
    while n > 2 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
        n = count();
    }
    n
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recycled_browser_runs_one_renderer_per_context_and_nothing_spare() {
    init_tracing();
    let resources = ResourceCheck::start();
    let server = FixtureServer::start().await.unwrap();
    let pool = BrowserPool::new(small_pool(1)).await.unwrap();
    let mut pid = None;
    for i in 0..3 {
        let lease = pool.acquire().await.unwrap();
        pid = lease.pid();
        lease
            .goto(&server.url(&format!("/page/{i}")))
            .await
            .unwrap();
    }
    assert!(pool.wait_until_idle(1, Duration::from_secs(10)).await);
    // The browser's first tab and the next lease's prepared page. Chromium's
    // defaults add a preloaded omnibox popup (two renderers) and a spare
    // renderer per context, which DEFAULT_FLAGS turns off: with them, this
    // reads 5 and every lease pays ~170 ms more CPU.
    let n = renderers(pid.unwrap(), Duration::from_secs(3)).await;
    assert_eq!(
        n, 2,
        "renderers in an idle browser after 3 leases: {n}, expected 2"
    );
    pool.close().await;
    server.shutdown().await;
    resources.assert_clean().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_mode_isolates_leases_and_leaves_a_foreign_browser_running() {
    init_tracing();
    let server = FixtureServer::start().await.unwrap();
    let chromium = ExternalChromium::start().await.unwrap();
    let (pid, url) = (chromium.pid().unwrap(), chromium.ws_url.clone());
    let pool = BrowserPool::new(BrowserPoolConfig {
        source: BrowserSource::Connect {
            endpoints: vec![url.clone()],
        },
        ..small_pool(1)
    })
    .await
    .unwrap();
    let a = pool.acquire().await.unwrap();
    assert_eq!(
        a.pid(),
        None,
        "a connected browser has no pid of the pool's"
    );
    a.goto(&server.url("/set-cookie?name=remote&value=1"))
        .await
        .unwrap();
    drop(a);
    let b = pool.acquire().await.unwrap();
    b.goto(&server.url("/echo-cookies")).await.unwrap();
    let seen: String = b.evaluate("document.body.innerText").await.unwrap();
    assert_eq!(
        seen.trim(),
        "",
        "isolation must hold on a remote browser too"
    );
    drop(b);
    pool.close().await;

    assert!(
        is_alive(pid),
        "close() killed a browser the pool does not own"
    );
    // The browser still serves CDP, and no context of the pool's is left in it.
    let (browser, mut handler) = chromiumoxide::Browser::connect(url).await.unwrap();
    let h = tokio::spawn(async move {
        use futures::StreamExt;
        while handler.next().await.is_some() {}
    });
    let contexts = browser
        .execute(chromiumoxide::cdp::browser_protocol::target::GetBrowserContextsParams::default())
        .await
        .unwrap();
    assert!(
        contexts.result.browser_context_ids.is_empty(),
        "left contexts: {:?}",
        contexts.result.browser_context_ids
    );
    h.abort();
    chromium.stop().await;
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_config_and_a_missing_binary_name_the_field_and_the_path() {
    let err = BrowserPool::new(BrowserPoolConfig {
        min_idle: 5,
        max_size: 2,
        ..BrowserPoolConfig::default()
    })
    .await
    .unwrap_err();
    assert!(err.to_string().contains("browser.min_idle"), "{err}");
    let err = BrowserPool::new(BrowserPoolConfig {
        max_size: 0,
        min_idle: 0,
        warm_up: 0,
        ..BrowserPoolConfig::default()
    })
    .await
    .unwrap_err();
    assert!(err.to_string().contains("browser.max_size"), "{err}");
    let err = BrowserPool::new(BrowserPoolConfig {
        acquire_timeout: Duration::ZERO,
        ..BrowserPoolConfig::default()
    })
    .await
    .unwrap_err();
    assert!(err.to_string().contains("browser.acquire_timeout"), "{err}");
    let err = BrowserPool::new(BrowserPoolConfig {
        flags: vec!["--user-data-dir=/tmp/x".into()],
        ..BrowserPoolConfig::default()
    })
    .await
    .unwrap_err();
    assert!(err.to_string().contains("browser.flags"), "{err}");
    let err = BrowserPool::new(BrowserPoolConfig {
        source: BrowserSource::Launch {
            executable: Some("/opt/no/chromium".into()),
        },
        ..BrowserPoolConfig::default()
    })
    .await
    .unwrap_err();
    assert_matches!(err, Error::ChromiumNotFound { .. });
    assert!(err.to_string().contains("/opt/no/chromium"), "{err}");
    // A binary that exists but is not a browser: the launch error carries its output.
    let err = BrowserPool::new(BrowserPoolConfig {
        source: BrowserSource::Launch {
            executable: Some("/bin/false".into()),
        },
        launch_timeout: Duration::from_secs(5),
        ..small_pool(1)
    })
    .await
    .unwrap_err();
    assert_matches!(err, Error::Launch { .. });
    assert!(
        err.to_string().contains("/bin/false") && err.to_string().contains("exited"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pool_dropped_without_close_leaves_no_process_behind() {
    init_tracing();
    let resources = ResourceCheck::start();
    let pool = BrowserPool::new(small_pool(2)).await.unwrap();
    let lease = pool.acquire().await.unwrap();
    let pids: Vec<u32> = controls::pids(&pool)
        .into_iter()
        .chain(lease.pid())
        .collect();
    assert!(!pids.is_empty());
    drop(lease);
    drop(Arc::new(pool));
    resources.assert_clean().await;
}

fn shared_pool(max_size: usize, leases_per_browser: usize) -> BrowserPoolConfig {
    BrowserPoolConfig {
        max_size,
        min_idle: 0,
        warm_up: max_size,
        leases_per_browser,
        ..BrowserPoolConfig::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leases_sharing_a_browser_have_contexts_of_their_own_and_share_its_crash() {
    init_tracing();
    let resources = ResourceCheck::start();
    let server = FixtureServer::start().await.unwrap();
    let pool = BrowserPool::new(shared_pool(4, 2)).await.unwrap();
    assert_eq!(
        controls::pids(&pool).len(),
        2,
        "4 slots, 2 per browser: 2 browsers"
    );
    assert_eq!(pool.stats().launched, 2);

    let leases = futures::future::try_join_all((0..4).map(|_| pool.acquire()))
        .await
        .unwrap();
    let mut by_browser = std::collections::BTreeMap::<u64, Vec<&tidepool::browser::Lease>>::new();
    for lease in &leases {
        by_browser
            .entry(lease.browser_id())
            .or_default()
            .push(lease);
    }
    assert_eq!(
        by_browser.len(),
        2,
        "each browser serves two leases at once"
    );
    let contexts: std::collections::BTreeSet<String> = leases
        .iter()
        .map(|l| l.context_id().inner().clone())
        .collect();
    assert_eq!(contexts.len(), 4, "every lease has a context of its own");

    // A cookie of one lease is not seen by the other lease in its browser,
    // while both are held.
    let (a, b) = {
        let pair = by_browser.values().next().unwrap();
        (pair[0], pair[1])
    };
    a.goto(&server.url("/set-cookie?name=slot&value=A"))
        .await
        .unwrap();
    b.goto(&server.url("/echo-cookies")).await.unwrap();
    let seen_by_b: String = b.evaluate("document.body.innerText").await.unwrap();
    assert!(
        !seen_by_b.contains("slot=A"),
        "a lease saw its sibling's cookie: {seen_by_b:?}"
    );

    // A crash ends every lease of that browser, and only those.
    let crashed = a.browser_id();
    let pid = a.pid().unwrap();
    kill9(pid);
    for lease in &leases {
        let result = lease.goto(&server.url("/page/1")).await;
        if lease.browser_id() == crashed {
            assert_matches!(result, Err(Error::BrowserCrashed { .. }));
        } else {
            result.unwrap();
        }
    }
    drop(by_browser);
    drop(leases);
    let next = pool.acquire().await.unwrap();
    assert_ne!(next.browser_id(), crashed);
    drop(next);
    assert_eq!(pool.stats().crashed, 1, "one browser crashed, counted once");
    assert!(!is_alive(pid));
    pool.close().await;
    server.shutdown().await;
    resources.assert_clean().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_uses_counts_the_leases_of_every_slot_and_retires_the_browser_once() {
    init_tracing();
    let resources = ResourceCheck::start();
    let pool = BrowserPool::new(BrowserPoolConfig {
        max_uses: Some(2),
        ..shared_pool(2, 2)
    })
    .await
    .unwrap();
    let (a, b) = (pool.acquire().await.unwrap(), pool.acquire().await.unwrap());
    let (first, pid) = (a.browser_id(), a.pid().unwrap());
    assert_eq!(b.browser_id(), first, "two slots in one browser");
    drop(a);
    drop(b);
    assert!(pool.wait_until_idle(1, Duration::from_secs(20)).await);
    let c = pool.acquire().await.unwrap();
    assert_ne!(
        c.browser_id(),
        first,
        "the browser served its 2 leases; its other slot must not serve a third"
    );
    drop(c);
    assert!(pool.wait_until_idle(1, Duration::from_secs(20)).await);
    let stats = pool.stats();
    assert_eq!(stats.retired_max_uses, 1, "{stats:?}");
    assert!(
        gone_within(pid, Duration::from_secs(5)).await,
        "the used-up browser is still running"
    );
    pool.close().await;
    resources.assert_clean().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hidden_pages_are_hidden_and_the_default_pages_are_visible() {
    init_tracing();
    let resources = ResourceCheck::start();
    let server = FixtureServer::start().await.unwrap();
    for hidden_pages in [false, true] {
        let pool = BrowserPool::new(BrowserPoolConfig {
            hidden_pages,
            ..shared_pool(2, 2)
        })
        .await
        .unwrap();
        let want = if hidden_pages { "hidden" } else { "visible" };
        let lease = pool.acquire().await.unwrap();
        lease.goto(&server.url("/page/1")).await.unwrap();
        let seen: String = lease.evaluate("document.visibilityState").await.unwrap();
        assert_eq!(seen, want, "hidden_pages {hidden_pages}: the lease's page");
        let other = lease.new_page(&server.url("/page/2")).await.unwrap();
        let seen: String = lease
            .call(
                "reading visibility",
                other.evaluate("document.visibilityState"),
            )
            .await
            .unwrap()
            .into_value()
            .unwrap();
        assert_eq!(seen, want, "hidden_pages {hidden_pages}: a page it opened");
        drop(lease);
        pool.close().await;
    }
    server.shutdown().await;
    resources.assert_clean().await;
}

fn signal(pid: u32, sig: &str) {
    let ok = std::process::Command::new("kill")
        .args([sig, &pid.to_string()])
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "kill {sig} {pid} failed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_browser_fails_its_lease_as_not_responding_within_cdp_timeout_and_is_replaced() {
    init_tracing();
    let resources = ResourceCheck::start();
    let cdp_timeout = Duration::from_secs(2);
    let pool = BrowserPool::new(BrowserPoolConfig {
        cdp_timeout,
        ..small_pool(1)
    })
    .await
    .unwrap();
    let lease = pool.acquire().await.unwrap();
    let (browser, pid) = (lease.browser_id(), lease.pid().unwrap());
    signal(pid, "-STOP");
    let t = Instant::now();
    let err = lease.evaluate::<u32>("1 + 1").await.unwrap_err();
    let took = t.elapsed();
    signal(pid, "-CONT");
    assert!(
        err.to_string().contains("not responding"),
        "a hung browser must be named as such: {err}"
    );
    // Half the timeout between probes, half for the probe to answer.
    assert!(
        took <= cdp_timeout + Duration::from_millis(500),
        "the lease failed after {took:?}, limit {cdp_timeout:?} (ratio {:.2})",
        took.as_secs_f64() / cdp_timeout.as_secs_f64()
    );
    drop(lease);
    assert!(
        gone_within(pid, Duration::from_secs(10)).await,
        "the hung browser must be killed, and SIGCONT must not revive it"
    );
    let next = pool.acquire().await.unwrap();
    assert_ne!(next.browser_id(), browser, "a new browser replaces it");
    assert_eq!(next.evaluate::<u32>("1 + 1").await.unwrap(), 2);
    drop(next);
    assert_eq!(pool.stats().crashed, 1);
    pool.close().await;
    resources.assert_clean().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelled_acquires_leave_exact_counts_and_no_ghost_browser() {
    use tidepool::browser::{Isolation, LeaseOptions};
    use tidepool::testkit::SeededRng;
    init_tracing();
    let resources = ResourceCheck::start();
    let pool = BrowserPool::new(BrowserPoolConfig {
        isolation: Isolation::None,
        ..small_pool(2)
    })
    .await
    .unwrap();
    let mut rng = SeededRng::new(0x7e57);
    let (mut completed, mut cancelled) = (0u64, 0u64);
    // A cancelled preparation costs a relaunch (about half a second): 15
    // rounds under make test, 1000 under perf.
    let rounds = tidepool::profile::RunProfile::from_env()
        .unwrap()
        .scaled(15, 1000);
    for round in 0..rounds {
        // A third of the rounds queue behind two held leases; the rest ask
        // for a fresh context from browsers readied for none, so the
        // deadline falls inside the preparation, a probe or a launch.
        let held = if round % 3 == 0 {
            vec![pool.acquire().await.unwrap(), pool.acquire().await.unwrap()]
        } else {
            Vec::new()
        };
        let deadline = Duration::from_micros(rng.next_u64() % 120_000);
        let acquire = pool.acquire_with(LeaseOptions::new().isolation(Isolation::Context));
        let acquired = if round % 2 == 0 {
            tokio::time::timeout(deadline, acquire).await.ok()
        } else {
            // Losing a select! to a competing branch drops the acquire too.
            tokio::select! {
                lease = acquire => Some(lease),
                _ = tokio::time::sleep(deadline) => None,
            }
        };
        match acquired {
            Some(lease) => {
                drop(lease.unwrap());
                completed += 1;
            }
            None => cancelled += 1,
        }
        completed += held.len() as u64;
        drop(held);
    }
    assert!(
        controls::settle(&pool, Duration::from_secs(30)).await,
        "the pool never settled"
    );
    assert!(
        cancelled as usize >= rounds / 3,
        "the deadlines cancelled only {cancelled} acquires"
    );
    let stats = pool.stats();
    assert_eq!(stats.acquires, completed, "{stats:?}");
    // No ghost: every browser the memory watch follows is alive, and none
    // is followed that the pool no longer holds.
    let live = stats.idle + stats.in_use;
    assert_eq!(pool.browser_memory().len(), live, "{stats:?}");
    for pid in controls::pids(&pool) {
        assert!(is_alive(pid), "the pool follows a dead browser, pid {pid}");
    }
    println!(
        "{completed} acquires completed, {cancelled} cancelled, {} browsers retired as cancelled",
        stats.retired_cancelled
    );
    pool.close().await;
    resources.assert_clean().await;
}

/// A lease whose page is crashed by `Page.crash`, then asked for `1 + 1`:
/// the library's own `PageCrashed`.
async fn crash_the_page(lease: &Lease) -> tidepool_pools::Result<u32> {
    use chromiumoxide::cdp::browser_protocol::page::CrashParams;
    // The crash takes its renderer down before any reply can come.
    let _ = tokio::time::timeout(
        Duration::from_millis(500),
        lease.page().execute(CrashParams::default()),
    )
    .await;
    lease.evaluate::<u32>("1 + 1").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn work_is_retried_in_a_new_lease_only_while_its_failure_is_retryable() {
    init_tracing();
    let resources = ResourceCheck::start();
    let pool = BrowserPool::new(BrowserPoolConfig {
        memory: None,
        ..small_pool(1)
    })
    .await
    .unwrap();
    let policy = RetryPolicy {
        attempts: 3,
        backoff: Duration::from_millis(10),
        max_backoff: Duration::from_millis(20),
    };
    let contexts = std::sync::Mutex::new(Vec::new());
    let attempt = |lease: &Lease| {
        let mut seen = contexts.lock().unwrap();
        seen.push(lease.context_id().inner().clone());
        seen.len()
    };

    // A crashed page, then a good one: two attempts, two leases.
    let value = pool
        .run_with_retries(&policy, |lease| async move {
            if attempt(&lease) == 1 {
                crash_the_page(&lease).await
            } else {
                lease.evaluate::<u32>("6 * 7").await
            }
        })
        .await
        .unwrap();
    let seen = std::mem::take(&mut *contexts.lock().unwrap());
    assert_eq!(value, 42);
    assert_eq!(seen.len(), 2, "a crashed page is retried once: {seen:?}");
    assert_ne!(seen[0], seen[1], "the retry ran in a new lease");

    // A script error fails the same way again: one attempt, its error.
    let err = pool
        .run_with_retries(&policy, |lease| async move {
            attempt(&lease);
            lease
                .evaluate::<u32>("(() => { throw new Error('boom') })()")
                .await
        })
        .await
        .unwrap_err();
    assert!(
        !err.is_retryable() && err.to_string().contains("boom"),
        "{err}"
    );
    assert_eq!(std::mem::take(&mut *contexts.lock().unwrap()).len(), 1);

    // A crash every time: the attempts are spent, the last error returned.
    let err = pool
        .run_with_retries(&policy, |lease| async move {
            attempt(&lease);
            crash_the_page(&lease).await
        })
        .await
        .unwrap_err();
    assert_matches!(err, tidepool_pools::Error::PageCrashed { .. });
    assert_eq!(std::mem::take(&mut *contexts.lock().unwrap()).len(), 3);

    pool.close().await;
    resources.assert_clean().await;
}
