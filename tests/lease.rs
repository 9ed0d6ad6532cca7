//! What a render service asks of every lease, on real Chromium: screenshots
//! and PDFs that come back within their deadline, or fail naming why, and
//! pages that fight back (dialogs) answered without stalling it, and a
//! proxy that asks who it is answered, its password never printed;
//! requests blocked by kind and URL, and emulation, on every page of the
//! lease and on none of the next lease's; popups closed, downloads denied,
//! a script that never yields stopped at its deadline, and a memory bomb
//! that costs only its page; private addresses refused to a lease that
//! asks. Every
//! test checks at its end that it leaked no browser process, profile
//! directory or file descriptor.

use std::time::{Duration, Instant};

use assert_matches::assert_matches;
use rstest::rstest;
use tidepool::browser::{
    Blocking, BrowserPool, BrowserPoolConfig, Emulation, Isolation, Lease, LeaseOptions, Popups,
    ResourceKind, Viewport,
};
use tidepool::testkit::{init_tracing, CountingProxy, FixtureServer, ResourceCheck};
use tidepool_pools::chromiumoxide::cdp::browser_protocol::page::PrintToPdfParams;
use tidepool_pools::chromiumoxide::cdp::browser_protocol::target::GetTargetsParams;
use tidepool_pools::chromiumoxide::cdp::js_protocol::runtime::EvaluateParams;
use tidepool_pools::chromiumoxide::page::ScreenshotParams;
use tidepool_pools::Error;

fn one_browser(hidden_pages: bool) -> BrowserPoolConfig {
    BrowserPoolConfig {
        min_idle: 1,
        max_size: 1,
        warm_up: 1,
        hidden_pages,
        ..BrowserPoolConfig::default()
    }
}

/// One test's bench: the leak check, started first, a fixture server and a
/// pool; `finish` closes the pool and the server and checks that nothing
/// leaked.
struct Bench {
    resources: ResourceCheck,
    server: FixtureServer,
    pool: BrowserPool,
}

impl Bench {
    async fn start(config: BrowserPoolConfig) -> Bench {
        init_tracing();
        let resources = ResourceCheck::start();
        let server = FixtureServer::start().await.unwrap();
        let pool = BrowserPool::new(config).await.unwrap();
        Bench {
            resources,
            server,
            pool,
        }
    }

    async fn finish(self) {
        self.pool.close().await;
        self.server.shutdown().await;
        self.resources.assert_clean().await;
    }
}

/// The width and height a PNG's header declares.
fn png_size(png: &[u8]) -> (u32, u32) {
    assert!(
        png.starts_with(b"\x89PNG\r\n\x1a\n") && png.len() > 24,
        "not a PNG: {:?}",
        &png[..png.len().min(16)]
    );
    let be = |at: usize| u32::from_be_bytes([png[at], png[at + 1], png[at + 2], png[at + 3]]);
    (be(16), be(20))
}

fn assert_pdf(pdf: &[u8]) {
    assert!(
        pdf.starts_with(b"%PDF-"),
        "not a PDF: {:?}",
        &pdf[..pdf.len().min(16)]
    );
    assert!(
        pdf.trim_ascii_end().ends_with(b"%%EOF"),
        "a PDF cut short ({} bytes)",
        pdf.len()
    );
}

/// The lease's viewport in device pixels.
async fn viewport(lease: &Lease) -> (u32, u32) {
    let size: Vec<f64> = lease
        .evaluate("[innerWidth * devicePixelRatio, innerHeight * devicePixelRatio]")
        .await
        .unwrap();
    (size[0].round() as u32, size[1].round() as u32)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_screenshot_is_the_viewport_and_a_pdf_is_whole_each_within_its_deadline() {
    let bench = Bench::start(one_browser(false)).await;
    let (server, pool) = (&bench.server, &bench.pool);
    let lease = pool.acquire().await.unwrap();
    lease.goto(&server.url("/page/1")).await.unwrap();

    let png = lease
        .screenshot(ScreenshotParams::default(), Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(
        png_size(&png),
        viewport(&lease).await,
        "the viewport's size"
    );
    let pdf = lease
        .pdf(PrintToPdfParams::default(), Duration::from_secs(30))
        .await
        .unwrap();
    assert_pdf(&pdf);

    // No PDF is printed in a millisecond: the deadline ends the wait, and
    // the error names the capture, the browser and the deadline.
    let late = lease
        .pdf(PrintToPdfParams::default(), Duration::from_millis(1))
        .await;
    assert_matches!(
        late,
        Err(Error::Timeout { ref key, after })
            if key.contains("a PDF") && key.contains(&format!("browser {}", lease.browser_id()))
                && after == Duration::from_millis(1),
        "a capture past its deadline"
    );
    drop(lease);
    bench.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hidden_page_refuses_a_screenshot_at_once_naming_the_option_and_still_prints() {
    let bench = Bench::start(one_browser(true)).await;
    let (server, pool) = (&bench.server, &bench.pool);
    let lease = pool.acquire().await.unwrap();
    lease.goto(&server.url("/page/1")).await.unwrap();

    // Chromium never answers a capture of a page it does not paint: without
    // the check, this call would wait out its whole deadline.
    let t = Instant::now();
    let shot = lease
        .screenshot(ScreenshotParams::default(), Duration::from_secs(10))
        .await;
    assert_matches!(
        shot,
        Err(Error::Config { ref field, ref problem })
            if field == "browser.hidden_pages" && problem.contains("never answers"),
        "a screenshot of a hidden page"
    );
    assert!(
        t.elapsed() < Duration::from_millis(100),
        "refused after {:?}, not at once",
        t.elapsed()
    );
    let pdf = lease
        .pdf(PrintToPdfParams::default(), Duration::from_secs(30))
        .await
        .unwrap();
    assert_pdf(&pdf);
    drop(lease);
    bench.finish().await;
}

/// Waits up to 10 s for `fut`: a lease call that stalls on an unanswered
/// dialog fails here instead of holding the suite.
async fn within<T>(what: &str, fut: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(10), fut)
        .await
        .unwrap_or_else(|_| panic!("{what} stalled for 10 s: a dialog left unanswered?"))
}

/// The title of a page the lease opens at `url`.
async fn new_page_title(lease: &Lease, url: &str) -> String {
    let page = within("opening a page", lease.new_page(url)).await.unwrap();
    page.evaluate("document.title")
        .await
        .unwrap()
        .into_value()
        .unwrap()
}

/// Waits up to 5 s for the pool's count of answered dialogs to reach `n`:
/// the count follows Chromium's reply to the answer, which may come after
/// the page's own.
async fn dialogs_reach(pool: &BrowserPool, n: u64) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while pool.stats().dialogs_answered < n && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(pool.stats().dialogs_answered, n, "dialogs answered");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pages_dialogs_are_dismissed_counted_and_never_stall_its_lease() {
    let bench = Bench::start(one_browser(false)).await;
    let (server, pool) = (&bench.server, &bench.pool);
    let url = server.url("/html/dialogs.html");
    let lease = pool.acquire().await.unwrap();

    // alert(), confirm() and prompt() while the page loads: each would stop
    // its parser, and so its load, until answered.
    within("loading a page with dialogs", lease.goto(&url))
        .await
        .unwrap();
    let (title, confirmed, prompted): (String, bool, Option<String>) = lease
        .evaluate("[document.title, window.confirmed, window.prompted]")
        .await
        .unwrap();
    assert_eq!(
        title, "After its dialogs",
        "the script ran past its dialogs"
    );
    assert!(!confirmed, "confirm() is dismissed");
    assert_eq!(prompted, None, "prompt() is dismissed");
    dialogs_reach(pool, 3).await;

    // A dialog an evaluation opens: answered, and the evaluation returns.
    let again: bool = within(
        "an evaluation that opens a dialog",
        lease.evaluate("confirm('again')"),
    )
    .await
    .unwrap();
    assert!(!again);
    // A page the lease opens is answered from its first load.
    assert_eq!(new_page_title(&lease, &url).await, "After its dialogs");
    dialogs_reach(pool, 7).await;
    drop(lease);

    // The browser's next leases: a fresh context and page, then a page
    // readied for a lease without isolation, then that same page reused.
    for isolation in [Isolation::Context, Isolation::None, Isolation::None] {
        let lease = pool
            .acquire_with(LeaseOptions::new().isolation(isolation))
            .await
            .unwrap();
        let answered: bool = within(
            "a dialog in the next lease",
            lease.evaluate("confirm('next')"),
        )
        .await
        .unwrap();
        assert!(!answered, "{isolation}: confirm() is dismissed");
    }
    dialogs_reach(pool, 10).await;
    bench.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_proxy_that_asks_for_credentials_gets_them_and_no_error_prints_the_password() {
    init_tracing();
    let resources = ResourceCheck::start();
    let server = FixtureServer::start().await.unwrap();
    let proxy = CountingProxy::with_credentials("crawler", "s3cret-pass")
        .await
        .unwrap();
    let pool = BrowserPool::new(one_browser(false)).await.unwrap();
    // Chromium never proxies loopback unless told to: `<-loopback>`.
    let through = |password: &str| {
        LeaseOptions::new()
            .proxy(proxy.server())
            .proxy_bypass_list("<-loopback>")
            .proxy_credentials("crawler", password)
    };

    let lease = pool.acquire_with(through("s3cret-pass")).await.unwrap();
    within(
        "a page through the proxy",
        lease.goto(&server.url("/page/1")),
    )
    .await
    .unwrap();
    let title: String = lease.evaluate("document.title").await.unwrap();
    assert_eq!(title, "Page 1", "the page came back through the proxy");
    // A page the lease opens answers the proxy too.
    assert_eq!(
        new_page_title(&lease, &server.url("/page/2")).await,
        "Page 2"
    );
    let relayed = proxy.requests();
    for path in ["/page/1", "/page/2"] {
        assert!(
            relayed.iter().any(|u| u.ends_with(path)),
            "{path} was not relayed: {relayed:?}"
        );
    }
    assert!(
        proxy.refused() >= 1,
        "Chromium asks without credentials first: the proxy must have challenged it"
    );
    drop(lease);

    // A wrong password: the proxy relays nothing, whatever the page shows.
    let lease = pool.acquire_with(through("wrong")).await.unwrap();
    let refused_before = proxy.refused();
    let loaded = within(
        "a page with a wrong password",
        lease.goto(&server.url("/page/3")),
    )
    .await;
    if loaded.is_ok() {
        let title: String = lease.evaluate("document.title").await.unwrap();
        assert_ne!(
            title, "Page 3",
            "a page came through with the wrong password"
        );
    }
    assert!(
        proxy.refused() > refused_before,
        "the wrong password was not refused"
    );
    assert!(!proxy.requests().iter().any(|u| u.ends_with("/page/3")));
    drop(lease);

    // Credentials inside the server's URL, which Chromium refuses: a
    // config error that names the field and the way, never the password.
    let inline = format!(
        "http://crawler:s3cret-pass@{}",
        proxy.server().trim_start_matches("http://")
    );
    let refused = pool.acquire_with(LeaseOptions::new().proxy(inline)).await;
    assert_matches!(
        refused,
        Err(Error::Config { ref field, ref problem })
            if field == "lease.proxy_server" && problem.contains("proxy_credentials")
                && !problem.contains("s3cret-pass"),
        "credentials in the proxy's URL"
    );
    assert!(!format!("{:?}", through("s3cret-pass")).contains("s3cret-pass"));
    pool.close().await;
    proxy.shutdown().await;
    server.shutdown().await;
    resources.assert_clean().await;
}

/// The fixture page's subresources the server was asked for since `from`
/// requests, by file name.
fn assets_fetched(server: &FixtureServer, from: usize) -> Vec<String> {
    server.requests()[from..]
        .iter()
        .filter_map(|r| r.path.strip_prefix("/asset/").map(str::to_owned))
        .collect()
}

/// Loads the fixture page with an image, a font, a stylesheet and a script,
/// waits for its fonts, and returns what it fetched and whether its
/// stylesheet and script ran.
async fn load_resources(lease: &Lease, server: &FixtureServer) -> (Vec<String>, bool, bool) {
    let from = server.requests().len();
    within(
        "loading the resources page",
        lease.goto(&server.url("/html/resources.html")),
    )
    .await
    .unwrap();
    let (styled, scripted): (bool, bool) = within(
        "reading the page",
        lease.evaluate(
            "document.fonts.ready.then(() => [getComputedStyle(document.body).color === 'rgb(1, 2, 3)', window.__asset_tracker === 1])",
        ),
    )
    .await
    .unwrap();
    (assets_fetched(server, from), styled, scripted)
}

#[rstest]
#[case::wipe(Isolation::Wipe)]
#[case::none(Isolation::None)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocked_kinds_and_urls_never_leave_the_page_and_the_next_lease_loads_them(
    #[case] isolation: Isolation,
) {
    // One browser whose page the next lease keeps: the blocking must end
    // with its lease, in both modes that keep the page.
    let bench = Bench::start(BrowserPoolConfig {
        isolation,
        ..one_browser(false)
    })
    .await;
    let (server, pool) = (&bench.server, &bench.pool);
    let blocking = Blocking::new()
        .kinds([ResourceKind::Image, ResourceKind::Font])
        .url_pattern("*/asset/tracker.js");
    let lease = pool
        .acquire_with(LeaseOptions::new().blocking(blocking.clone()))
        .await
        .unwrap();
    let (fetched, styled, scripted) = load_resources(&lease, server).await;
    assert_eq!(fetched, ["style.css"], "only the stylesheet may be fetched");
    assert!(styled, "the stylesheet, not blocked, applies");
    assert!(!scripted, "the blocked script never ran");
    assert_eq!(lease.requests_blocked(), 3, "image, font and script");
    // A page the lease opens blocks the same.
    let from = server.requests().len();
    let page = within(
        "opening a second page",
        lease.new_page(&server.url("/html/resources.html")),
    )
    .await
    .unwrap();
    let _ = page.evaluate("document.fonts.ready.then(() => 0)").await;
    assert_eq!(assets_fetched(server, from), ["style.css"]);
    assert_eq!(lease.requests_blocked(), 6);
    drop(page);
    drop(lease);

    let next = pool.acquire().await.unwrap();
    let (mut fetched, styled, scripted) = load_resources(&next, server).await;
    fetched.sort();
    assert_eq!(
        fetched,
        ["face.woff2", "pixel.png", "style.css", "tracker.js"],
        "{isolation}: the next lease, with no blocking, fetches everything"
    );
    assert!(styled && scripted);
    assert_eq!(next.requests_blocked(), 0);
    drop(next);
    bench.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocking_and_a_proxys_credentials_work_together() {
    init_tracing();
    let resources = ResourceCheck::start();
    let server = FixtureServer::start().await.unwrap();
    let proxy = CountingProxy::with_credentials("crawler", "s3cret-pass")
        .await
        .unwrap();
    let pool = BrowserPool::new(one_browser(false)).await.unwrap();
    // Both answer through CDP's `Fetch` domain, which takes one set of
    // patterns per page: the blocking's must keep the proxy's challenges.
    let options = LeaseOptions::new()
        .proxy(proxy.server())
        .proxy_bypass_list("<-loopback>")
        .proxy_credentials("crawler", "s3cret-pass")
        .blocking(Blocking::new().kinds([ResourceKind::Image]));
    let lease = pool.acquire_with(options).await.unwrap();
    let (mut fetched, styled, scripted) = load_resources(&lease, &server).await;
    fetched.sort();
    assert_eq!(fetched, ["face.woff2", "style.css", "tracker.js"]);
    assert!(styled && scripted);
    assert_eq!(lease.requests_blocked(), 1);
    let relayed = proxy.requests();
    assert!(
        relayed.iter().any(|u| u.ends_with("/html/resources.html")),
        "the page came through the proxy: {relayed:?}"
    );
    assert!(!relayed.iter().any(|u| u.ends_with("/asset/pixel.png")));
    drop(lease);
    pool.close().await;
    proxy.shutdown().await;
    server.shutdown().await;
    resources.assert_clean().await;
}

/// What a page reports of the emulated settings, and the headers the server
/// got from it.
const EMULATED: &str = r#"(async () => {
  const position = await new Promise(ok => navigator.geolocation.getCurrentPosition(
      p => ok([p.coords.latitude, p.coords.longitude]), e => ok(String(e.message)), {timeout: 5000}));
  const header = async name => (await fetch('/echo-header/' + name)).text();
  return JSON.stringify({
    user_agent: navigator.userAgent,
    language: navigator.language,
    viewport: [innerWidth, innerHeight, devicePixelRatio],
    timezone: Intl.DateTimeFormat().resolvedOptions().timeZone,
    locale: Intl.NumberFormat().resolvedOptions().locale,
    position,
    crawler: await header('x-crawler'),
    accept_language: await header('accept-language'),
  });
})()"#;

async fn emulated(page: &tidepool_pools::chromiumoxide::Page) -> serde_json::Value {
    let json: String = within("reading the emulation", page.evaluate(EMULATED))
        .await
        .unwrap()
        .into_value()
        .unwrap();
    serde_json::from_str(&json).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leases_emulation_shows_on_each_of_its_pages_and_the_pools_default_on_the_next() {
    let bench = Bench::start(BrowserPoolConfig {
        emulation: Some(Emulation::new().user_agent("tidepool-pool-default")),
        ..one_browser(false)
    })
    .await;
    let (server, pool) = (&bench.server, &bench.pool);
    let phone = Emulation::new()
        .user_agent("tidepool-phone")
        .viewport(Viewport::new(390, 844).device_scale_factor(3.0))
        .locale("fr-CA")
        .timezone("America/Toronto")
        .geolocation(45.5, -73.5)
        .header("X-Crawler", "tidepool");
    let lease = pool
        .acquire_with(LeaseOptions::new().emulation(phone))
        .await
        .unwrap();
    lease.goto(&server.url("/page/1")).await.unwrap();
    let want = serde_json::json!({
        "user_agent": "tidepool-phone",
        "language": "fr-CA",
        "viewport": [390, 844, 3],
        "timezone": "America/Toronto",
        "locale": "fr-CA",
        "position": [45.5, -73.5],
        "crawler": "tidepool",
        "accept_language": "fr-CA",
    });
    assert_eq!(emulated(lease.page()).await, want, "the lease's first page");
    let page = within(
        "opening a second page",
        lease.new_page(&server.url("/page/2")),
    )
    .await
    .unwrap();
    assert_eq!(emulated(&page).await, want, "a page the lease opened");
    drop(page);
    drop(lease);

    let next = pool.acquire().await.unwrap();
    next.goto(&server.url("/page/3")).await.unwrap();
    let seen = emulated(next.page()).await;
    assert_eq!(seen["user_agent"], "tidepool-pool-default");
    assert_ne!(seen["timezone"], "America/Toronto");
    assert_eq!(seen["crawler"], "", "no header of the last lease's");
    drop(next);

    let bad = pool
        .acquire_with(LeaseOptions::new().emulation(Emulation::new().geolocation(0.0, 200.0)))
        .await;
    assert_matches!(
        bad,
        Err(Error::Config { ref field, .. }) if field == "lease.emulation.geolocation"
    );
    bench.finish().await;
}

/// The pages open in the lease's context, its own included.
async fn pages_in_context(lease: &Lease) -> usize {
    let targets = lease
        .call(
            "listing targets",
            lease.browser().execute(GetTargetsParams::default()),
        )
        .await
        .unwrap();
    targets
        .result
        .target_infos
        .iter()
        .filter(|t| t.r#type == "page" && t.browser_context_id.as_ref() == Some(lease.context_id()))
        .count()
}

#[rstest]
#[case::closed(Popups::Close)]
#[case::kept(Popups::Keep)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_window_open_storm_is_closed_as_it_opens_and_never_reaches_the_next_lease(
    #[case] popups: Popups,
) {
    // Isolation::None keeps the context for the next lease: the mode in
    // which a popup left open would pass to it.
    let bench = Bench::start(BrowserPoolConfig {
        isolation: Isolation::None,
        popups,
        ..one_browser(false)
    })
    .await;
    let (server, pool) = (&bench.server, &bench.pool);
    let lease = pool.acquire().await.unwrap();
    lease.goto(&server.url("/page/1")).await.unwrap();
    // Each with a user gesture, as a click gives: the popup blocker lets
    // them through.
    const STORM: usize = 5;
    for i in 0..STORM {
        let open = EvaluateParams::builder()
            .expression(format!("window.open('/page/{}') !== null", 10 + i))
            .user_gesture(true)
            .build()
            .unwrap();
        within("opening a popup", lease.page().execute(open))
            .await
            .unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    let want_closed = if popups == Popups::Close {
        STORM as u64
    } else {
        0
    };
    while pool.stats().popups_closed < want_closed && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(pool.stats().popups_closed, want_closed, "popups closed");
    let title: String = within("a call after the storm", lease.evaluate("document.title"))
        .await
        .unwrap();
    assert_eq!(title, "Page 1");
    drop(lease);

    let next = pool.acquire().await.unwrap();
    let pages = pages_in_context(&next).await;
    match popups {
        Popups::Close => assert_eq!(pages, 1, "only the next lease's own page"),
        // The evidence that the count can see a popup left open.
        _ => assert_eq!(
            pages,
            1 + STORM,
            "Popups::Keep under Isolation::None keeps them"
        ),
    }
    drop(next);
    bench.finish().await;
}

/// Where Chromium saves a download nobody told it where to put: the
/// user's Downloads folder.
fn downloads_named(name: &str) -> Vec<std::path::PathBuf> {
    let home = std::env::var_os("HOME").map(std::path::PathBuf::from);
    let dirs = [
        home.map(|h| h.join("Downloads")),
        Some(std::env::temp_dir()),
    ];
    dirs.into_iter()
        .flatten()
        .filter_map(|d| std::fs::read_dir(d).ok())
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .is_some_and(|f| f.to_string_lossy().contains(name))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forced_download_is_denied_and_writes_nothing_to_disk() {
    let bench = Bench::start(one_browser(false)).await;
    let (server, pool) = (&bench.server, &bench.pool);
    let name = format!("tidepool_download_{}.bin", std::process::id());
    let lease = pool.acquire().await.unwrap();
    lease.goto(&server.url("/page/1")).await.unwrap();
    // A link the page clicks itself, as a hostile page would.
    let click = format!(
        "(() => {{ const a = document.createElement('a'); a.href = '/download/{name}'; \
         document.body.append(a); a.click(); return true; }})()"
    );
    let asked = || {
        server
            .requests()
            .iter()
            .filter(|r| r.path.contains(&name))
            .count()
    };
    /// Waits up to 5 s for the server to have been asked `n` times.
    async fn asked_reaches(asked: impl Fn() -> usize, n: usize) {
        let deadline = Instant::now() + Duration::from_secs(5);
        while asked() < n && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    let _: bool = lease.evaluate(&click).await.unwrap();
    // The click's request on the wire before the next navigation, which
    // would otherwise cancel it.
    asked_reaches(asked, 1).await;
    assert_eq!(asked(), 1, "the click asked for the download");
    // Navigating to it directly: a load that never comes, so an error at
    // once that names the download, not a wait for the deadline.
    let url = server.url(&format!("/download/{name}"));
    let t = Instant::now();
    let navigated = within("navigating to a download", lease.goto(&url)).await;
    assert_matches!(
        navigated,
        Err(Error::DownloadDenied { url: ref denied, .. }) if *denied == url,
        "a navigation that is a download"
    );
    assert!(
        t.elapsed() < Duration::from_secs(2),
        "denied after {:?}",
        t.elapsed()
    );
    asked_reaches(asked, 2).await;
    assert_eq!(asked(), 2, "the page asked for the download twice");
    // A saved download takes its time to land: wait as long as one would.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let saved = downloads_named(&name);
    for file in &saved {
        let _ = std::fs::remove_file(file);
    }
    assert!(saved.is_empty(), "downloads reached the disk: {saved:?}");
    let title: String = lease.evaluate("document.title").await.unwrap();
    assert_eq!(title, "Page 1", "the page stays where it was");
    drop(lease);
    bench.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_script_that_never_yields_is_stopped_at_the_deadline_and_the_page_answers_again() {
    let bench = Bench::start(one_browser(false)).await;
    let (server, pool) = (&bench.server, &bench.pool);
    let lease = pool.acquire().await.unwrap();
    lease.goto(&server.url("/page/1")).await.unwrap();
    let deadline = Duration::from_millis(500);

    // An evaluation that spins: stopped at its deadline, not the CDP's.
    let t = Instant::now();
    let spun = within(
        "a spinning evaluation",
        lease.evaluate_within::<bool>("for (;;) {}", deadline),
    )
    .await;
    assert_matches!(
        spun,
        Err(Error::Timeout { ref key, after }) if key.contains("its script stopped") && after == deadline,
        "an evaluation that never yields"
    );
    assert!(
        t.elapsed() < Duration::from_secs(3),
        "stopped after {:?}",
        t.elapsed()
    );
    let two: i64 = within("the next evaluation", lease.evaluate("1 + 1"))
        .await
        .unwrap();
    assert_eq!(two, 2, "the page answers again");

    // A page whose own script spins while it loads.
    let spun = within(
        "a spinning page",
        lease.goto_within(&server.url("/html/spin.html"), deadline),
    )
    .await;
    assert_matches!(spun, Err(Error::Timeout { .. }), "a page that never yields");
    within("navigating on", lease.goto(&server.url("/page/2")))
        .await
        .unwrap();
    let title: String = lease.evaluate("document.title").await.unwrap();
    assert_eq!(title, "Page 2");
    drop(lease);
    bench.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_memory_bomb_crashes_only_its_page_and_the_next_lease_gets_a_fresh_one() {
    init_tracing();
    let resources = ResourceCheck::start();
    let server = FixtureServer::start().await.unwrap();
    // A small V8 heap, so the bomb goes off in a second, not after gigabytes.
    let mut config = one_browser(false);
    config
        .flags
        .push("--js-flags=--max-old-space-size=64".into());
    let pool = BrowserPool::new(config).await.unwrap();
    let lease = pool.acquire().await.unwrap();
    let browser = lease.browser_id();
    let bombed = within(
        "loading a memory bomb",
        lease.goto(&server.url("/html/bomb.html")),
    )
    .await;
    // The navigation may be answered before the renderer dies; the call
    // after it is answered only by the crash.
    assert_matches!(
        bombed,
        Ok(()) | Err(Error::PageCrashed { .. }),
        "the bomb's navigation"
    );
    let after = within("a call after the bomb", lease.evaluate::<i64>("1")).await;
    assert_matches!(
        after,
        Err(Error::PageCrashed { browser: b, .. }) if b == browser,
        "a page that allocates until its renderer dies"
    );
    drop(lease);

    let next = within("the next acquire", pool.acquire()).await.unwrap();
    assert_eq!(next.browser_id(), browser, "the browser lives on");
    within("a page after the bomb", next.goto(&server.url("/page/1")))
        .await
        .unwrap();
    let title: String = next.evaluate("document.title").await.unwrap();
    assert_eq!(title, "Page 1");
    drop(next);
    pool.close().await;
    server.shutdown().await;
    resources.assert_clean().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lease_that_blocks_private_addresses_reaches_no_loopback_metadata_or_devtools_port() {
    let bench = Bench::start(one_browser(false)).await;
    let (server, pool) = (&bench.server, &bench.pool);
    let lease = pool
        .acquire_with(LeaseOptions::new().blocking(Blocking::new().private_addresses()))
        .await
        .unwrap();
    let devtools = lease
        .browser()
        .websocket_address()
        .replace("ws://", "http://")
        .split("/devtools")
        .next()
        .unwrap()
        .to_owned()
        + "/json/version";
    let targets = [
        server.url("/page/1"),
        "http://169.254.169.254/latest/meta-data/".to_owned(),
        devtools,
    ];
    for (i, url) in targets.iter().enumerate() {
        let t = Instant::now();
        let refused = within("a private address", lease.goto(url)).await;
        assert_matches!(
            refused,
            Err(Error::Cdp { ref action, ref message, .. })
                if action.contains(url.as_str()) && message.contains("ERR_BLOCKED_BY_CLIENT"),
            "{url}"
        );
        assert!(
            t.elapsed() < Duration::from_secs(2),
            "{url}: refused after {:?}",
            t.elapsed()
        );
        assert_eq!(lease.requests_blocked(), i as u64 + 1);
    }
    assert!(
        server.requests().is_empty(),
        "the fixture server was reached"
    );
    drop(lease);

    // The next lease asks for no such blocking, and reaches loopback.
    let next = pool.acquire().await.unwrap();
    within("a loopback page", next.goto(&server.url("/page/2")))
        .await
        .unwrap();
    drop(next);
    bench.finish().await;
}
