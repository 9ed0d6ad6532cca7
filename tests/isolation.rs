//! Isolation per lease on real Chromium: every kind of state one lease can
//! leave is written, and the next lease of the same browser looks for it.
//! `Isolation::None` keeps it all, which shows each probe can see what it
//! looks for: the wipe's and the context's clean result is evidence, not a
//! probe that cannot find anything.

use chromiumoxide::cdp::browser_protocol::browser::{
    PermissionDescriptor, PermissionSetting, SetPermissionParams,
};
use chromiumoxide::cdp::browser_protocol::emulation::{
    MediaFeature, SetDeviceMetricsOverrideParams, SetEmulatedMediaParams,
    SetTimezoneOverrideParams, SetUserAgentOverrideParams,
};
use chromiumoxide::cdp::browser_protocol::network::{Headers, SetExtraHttpHeadersParams};
use chromiumoxide::cdp::browser_protocol::page::AddScriptToEvaluateOnNewDocumentParams;
use rstest::rstest;
use std::collections::BTreeMap;
use std::time::Duration;
use tidepool::browser::{
    BrowserPool, BrowserPoolConfig, Emulation, Isolation, Lease, LeaseOptions,
};
use tidepool::testkit::{init_tracing, FixtureServer, ResourceCheck};

/// Every kind of state, by name, as the next lease's page sees it: `true`
/// when it is there. Each line reads one kind.
const PROBE: &str = r#"(async () => {
  const seen = {};
  seen.cookie = document.cookie.includes('leak=1');
  seen.local_storage = localStorage.getItem('leak') !== null;
  seen.session_storage = sessionStorage.getItem('leak') !== null;
  seen.indexed_db = (await indexedDB.databases()).some(d => d.name === 'leak');
  seen.cache_storage = await caches.has('leak');
  seen.service_worker = (await navigator.serviceWorker.getRegistrations()).length > 0;
  seen.permission = (await navigator.permissions.query({name: 'geolocation'})).state === 'granted';
  seen.device_metrics = window.innerWidth === 333;
  seen.timezone = Intl.DateTimeFormat().resolvedOptions().timeZone === 'Pacific/Chatham';
  seen.user_agent = navigator.userAgent === 'tidepool-leak';
  seen.media = matchMedia('(prefers-color-scheme: dark)').matches;
  seen.extra_header = (await (await fetch('/echo-header/x-tidepool-leak')).text()) === '1';
  seen.init_script = window.__tidepool_leak === 1;
  seen.locale_option = Intl.NumberFormat().resolvedOptions().locale === 'fr-CA';
  // Without a grant, headless Chromium leaves the permission prompt open
  // and the request unanswered: no answer within 2 s is no position.
  seen.geolocation_option = await new Promise(ok => {
    setTimeout(() => ok(false), 2000);
    navigator.geolocation.getCurrentPosition(p => ok(p.coords.latitude === 45.5), () => ok(false));
  });
  return JSON.stringify(seen);
})()"#;

/// Writes every kind of state from inside the page, where a site would,
/// one kind per step.
const WRITES: &[(&str, &str)] = &[
    (
        "cookie",
        "document.cookie = 'leak=1; path=/; max-age=3600', true",
    ),
    ("local_storage", "localStorage.setItem('leak', '1'), true"),
    (
        "session_storage",
        "sessionStorage.setItem('leak', '1'), true",
    ),
    (
        "indexed_db",
        r#"new Promise((ok, err) => {
            const r = indexedDB.open('leak');
            r.onupgradeneeded = () => r.result.createObjectStore('s');
            r.onsuccess = () => { r.result.close(); ok(true); };
            r.onerror = () => err(r.error);
        })"#,
    ),
    (
        "cache_storage",
        "caches.open('leak').then(c => c.put('/leak', new Response('1'))).then(() => true)",
    ),
    (
        "service_worker",
        // The registration is stored before its worker starts; a worker
        // auto-attached by chromiumoxide may start late, so the promise of
        // register() is not awaited, the stored registration is.
        r#"(navigator.serviceWorker.register('/sw.js').catch(() => {}),
            new Promise(ok => setTimeout(ok, 300))
              .then(() => navigator.serviceWorker.getRegistrations())
              .then(rs => rs.length > 0))"#,
    ),
    (
        "http_cache",
        "fetch('/cached/leak').then(r => r.text()).then(() => true)",
    ),
];

/// Sets every override a lease can make over CDP.
async fn override_everything(lease: &Lease, origin: &str) {
    let page = lease.page();
    let grant = SetPermissionParams::builder()
        .permission(PermissionDescriptor::new("geolocation"))
        .setting(PermissionSetting::Granted)
        .origin(origin)
        .browser_context_id(lease.context_id().clone())
        .build()
        .unwrap();
    lease
        .call("grant", lease.browser().execute(grant))
        .await
        .unwrap();
    let metrics = SetDeviceMetricsOverrideParams::new(333, 444, 1.0, false);
    lease.call("metrics", page.execute(metrics)).await.unwrap();
    let tz = SetTimezoneOverrideParams::new("Pacific/Chatham");
    lease.call("timezone", page.execute(tz)).await.unwrap();
    let ua = SetUserAgentOverrideParams::new("tidepool-leak");
    lease.call("user agent", page.execute(ua)).await.unwrap();
    let media = SetEmulatedMediaParams::builder()
        .features(vec![MediaFeature::new("prefers-color-scheme", "dark")])
        .build();
    lease.call("media", page.execute(media)).await.unwrap();
    let headers =
        SetExtraHttpHeadersParams::new(Headers::new(serde_json::json!({"x-tidepool-leak": "1"})));
    lease.call("headers", page.execute(headers)).await.unwrap();
    let script = AddScriptToEvaluateOnNewDocumentParams::new("window.__tidepool_leak = 1");
    lease
        .call("init script", page.execute(script))
        .await
        .unwrap();
}

/// Awaits one step of a test, failing with its name if it hangs.
async fn step<T>(what: &str, fut: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(20), fut)
        .await
        .unwrap_or_else(|_| panic!("{what}: no answer within 20 s"))
}

async fn probe(lease: &Lease, url: &str) -> BTreeMap<String, bool> {
    step("loading the probe page", lease.goto(url))
        .await
        .unwrap();
    // A tab the lease opened took the front: Chromium answers no position
    // to a page in the background.
    step("bringing the page to front", lease.page().bring_to_front())
        .await
        .unwrap();
    let seen: String = step("probing", lease.evaluate(PROBE)).await.unwrap();
    serde_json::from_str(&seen).unwrap()
}

#[rstest]
#[case::context(Isolation::Context)]
#[case::wipe(Isolation::Wipe)]
#[case::none(Isolation::None)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_kind_of_state_crosses_to_the_next_lease_unless_isolation_is_none(
    #[case] isolation: Isolation,
) {
    init_tracing();
    let resources = ResourceCheck::start();
    let server = FixtureServer::start().await.unwrap();
    let page = server.url("/page/1");
    let origin = page.trim_end_matches("/page/1").to_owned();
    let pool = BrowserPool::new(BrowserPoolConfig {
        min_idle: 1,
        max_size: 1,
        warm_up: 1,
        isolation,
        ..BrowserPoolConfig::default()
    })
    .await
    .unwrap();

    // The lease's own emulation options are state too: set through the
    // pool, they must go as every override does.
    let options = Emulation::new().locale("fr-CA").geolocation(45.5, -73.5);
    let first = pool
        .acquire_with(LeaseOptions::new().emulation(options))
        .await
        .unwrap();
    let browser = first.browser_id();
    step("loading the page", first.goto(&page)).await.unwrap();
    for (kind, write) in WRITES {
        let wrote: bool = step(kind, first.evaluate(write)).await.unwrap();
        assert!(wrote, "{kind}");
    }
    step("overriding", override_everything(&first, &origin)).await;
    // A second tab of the lease's, with state of its own.
    let popup = step("opening a tab", first.new_page(&page)).await.unwrap();
    drop(popup);
    let within = probe(&first, &page).await;
    let missing: Vec<_> = within.iter().filter(|(_, seen)| !**seen).collect();
    assert!(
        missing.is_empty(),
        "every kind must be visible within the lease that wrote it, or the probe proves nothing: not seen {missing:?}"
    );
    let served_before = cached_requests(&server);
    drop(first);

    let second = step("the second acquire", pool.acquire()).await.unwrap();
    assert_eq!(second.browser_id(), browser, "max_size 1: the same browser");
    let after = probe(&second, &page).await;
    second.goto(&server.url("/page/2")).await.unwrap();
    let _: String = second
        .evaluate("fetch('/cached/leak').then(r => r.text())")
        .await
        .unwrap();
    let cache_missed = cached_requests(&server) > served_before;
    drop(second);
    pool.close().await;
    server.shutdown().await;

    let mut leaked: Vec<&str> = after
        .iter()
        .filter(|(_, seen)| **seen)
        .map(|(k, _)| k.as_str())
        .collect();
    if !cache_missed {
        leaked.push("http_cache");
    }
    match isolation {
        Isolation::None => {
            // Reused as is: every kind is still there (the evidence that each
            // probe can fail), but the lease's own pages are gone.
            let kept: Vec<_> = after.iter().filter(|(_, seen)| !**seen).collect();
            assert!(kept.is_empty(), "Isolation::None lost state: {kept:?}");
            assert!(!cache_missed, "Isolation::None lost the HTTP cache");
        }
        _ => assert!(
            leaked.is_empty(),
            "Isolation::{isolation:?} let state through to the next lease: {leaked:?}"
        ),
    }
    resources.assert_clean().await;
}

fn cached_requests(server: &FixtureServer) -> usize {
    server
        .requests()
        .iter()
        .filter(|r| r.path == "/cached/leak")
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lease_asking_for_more_isolation_than_the_idle_browser_has_gets_it() {
    init_tracing();
    let resources = ResourceCheck::start();
    let server = FixtureServer::start().await.unwrap();
    let page = server.url("/page/1");
    let pool = BrowserPool::new(BrowserPoolConfig {
        min_idle: 1,
        max_size: 1,
        warm_up: 1,
        isolation: Isolation::None,
        ..BrowserPoolConfig::default()
    })
    .await
    .unwrap();
    let first = pool.acquire().await.unwrap();
    assert_eq!(first.isolation(), Isolation::None);
    let context = first.context_id().clone();
    first.goto(&page).await.unwrap();
    let _: bool = first
        .evaluate("localStorage.setItem('leak', '1'), true")
        .await
        .unwrap();
    drop(first);

    let reused = pool.acquire().await.unwrap();
    assert_eq!(reused.context_id(), &context, "None reuses the context");
    reused.goto(&page).await.unwrap();
    let kept: bool = reused
        .evaluate("localStorage.getItem('leak') !== null")
        .await
        .unwrap();
    assert!(kept, "None keeps what the lease before left");
    drop(reused);

    let strict = pool
        .acquire_with(LeaseOptions::new().isolation(Isolation::Context))
        .await
        .unwrap();
    assert_eq!(strict.isolation(), Isolation::Context);
    assert_ne!(
        strict.context_id(),
        &context,
        "Context asks for a fresh context"
    );
    strict.goto(&page).await.unwrap();
    let leaked: bool = strict
        .evaluate("localStorage.getItem('leak') !== null")
        .await
        .unwrap();
    assert!(!leaked, "a Context lease saw the storage of a None lease");
    drop(strict);
    pool.close().await;
    server.shutdown().await;
    resources.assert_clean().await;
}
