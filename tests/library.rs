//! tidepool embedded in a service: bounded memory over a million acquires,
//! metrics a Prometheus server scrapes, a proxy per lease, lifecycle hooks,
//! a consumer crate without the CLI's dependencies, and the examples running.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use std::collections::BTreeSet;

use assert_matches::assert_matches;
use tidepool::browser::{BrowserPool, BrowserPoolConfig, Hooks, LeaseOptions};
use tidepool::testkit::wasm_fixtures as fixtures;
use tidepool::testkit::{get_once, init_tracing, CountingProxy, FixtureServer, ResourceCheck};
use tidepool::wasm::{
    AotCache, ModuleOptions, Tier, WasmCacheConfig, WasmEngine, WasmEngineConfig, WasmPool,
    WasmPoolConfig,
};
use tidepool_pools::Error;

/// Counts the bytes this test process has allocated and not freed.
struct CountingAllocator;

static LIVE_BYTES: AtomicIsize = AtomicIsize::new(0);

// The one way to see a pool's heap exactly: wrap the system allocator.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE_BYTES.fetch_add(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: the caller's contract for `alloc` is passed on unchanged.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE_BYTES.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: `ptr` came from `alloc` above with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE_BYTES.fetch_add(
            new_size as isize - layout.size() as isize,
            Ordering::Relaxed,
        );
        // SAFETY: as for `realloc` itself.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

fn wasm_pool(tag: &str) -> (WasmPool, std::path::PathBuf) {
    let engine = WasmEngine::new(WasmEngineConfig::default()).unwrap();
    let dir = std::env::temp_dir().join(format!("tidepool-library-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let cache = Arc::new(AotCache::open(WasmCacheConfig::new(&dir), &engine).unwrap());
    let pool = WasmPool::new(engine, cache, WasmPoolConfig::default()).unwrap();
    pool.register(
        "extractor",
        fixtures::extractor().unwrap(),
        ModuleOptions { stateless: true },
    );
    drop(pool.acquire_at("extractor", 0.0).unwrap());
    pool.rebalance_at(0.0).unwrap();
    assert_eq!(pool.tier("extractor"), Some(Tier::Hot));
    (pool, dir)
}

/// The heap a million acquires may add: the pool records every acquire in
/// fixed-size histograms and counters, so nothing should grow; 64 KiB leaves
/// room for an allocator's or wasmtime's own bookkeeping, and is 0.4 % of
/// the 16 MB an unbounded latency log (16 bytes an acquire) would add.
const HEAP_GROWTH_LIMIT: isize = 64 * 1024;

#[test]
fn a_million_wasm_acquires_leave_the_pools_heap_flat() {
    let (pool, dir) = wasm_pool("heap");
    for _ in 0..10_000 {
        drop(pool.acquire_at("extractor", 0.0).unwrap());
    }
    let before = LIVE_BYTES.load(Ordering::Relaxed);
    for _ in 0..1_000_000 {
        drop(pool.acquire_at("extractor", 0.0).unwrap());
    }
    let growth = LIVE_BYTES.load(Ordering::Relaxed) - before;
    let hot = pool.acquire_latency(Tier::Hot);
    assert_eq!(hot.count, 1_010_000, "every acquire is in the histogram");
    assert!(hot.p50_ms > 0.0 && hot.p50_ms <= hot.p99_ms, "{hot:?}");
    assert!(
        growth <= HEAP_GROWTH_LIMIT,
        "a million acquires grew the heap by {growth} bytes, limit {HEAP_GROWTH_LIMIT} (ratio {:.2})",
        growth as f64 / HEAP_GROWTH_LIMIT as f64
    );
    println!("heap growth over 1,000,000 acquires: {growth} bytes (limit {HEAP_GROWTH_LIMIT}); hot acquire p50 {:.4} ms, p99 {:.4} ms", hot.p50_ms, hot.p99_ms);
    drop(pool);
    std::fs::remove_dir_all(dir).unwrap();
}

/// The value of one series in a Prometheus scrape, e.g.
/// `tidepool_wasm_serves_total{tier="hot"}`; absent reads as 0.
fn series(scrape: &str, name: &str) -> f64 {
    scrape
        .lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|l| {
            let (key, value) = l.rsplit_once(' ')?;
            (key == name).then(|| value.parse().ok())?
        })
        .unwrap_or(0.0)
}

fn free_port() -> std::net::SocketAddr {
    let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    probe.local_addr().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_scrapes_the_pools_counters_moving() {
    init_tracing();
    let resources = ResourceCheck::start();
    let addr = free_port();
    metrics_exporter_prometheus::PrometheusBuilder::new()
        .with_http_listener(addr)
        .install()
        .unwrap();
    let scrape = || async move {
        let r = get_once(addr, "/metrics").await.unwrap();
        assert_eq!(r.status, 200);
        r.text()
    };

    let (wasm, dir) = wasm_pool("metrics");
    let before = series(&scrape().await, "tidepool_wasm_serves_total{tier=\"hot\"}");
    for _ in 0..25 {
        drop(wasm.acquire_at("extractor", 0.0).unwrap());
    }
    let after = scrape().await;
    assert_eq!(
        series(&after, "tidepool_wasm_serves_total{tier=\"hot\"}") - before,
        25.0
    );
    assert!(series(&after, "tidepool_wasm_cache_misses_total") >= 1.0);
    assert!(after.contains("tidepool_wasm_acquire_seconds"), "{after}");

    let pool = BrowserPool::new(BrowserPoolConfig {
        max_size: 1,
        warm_up: 1,
        min_idle: 1,
        ..BrowserPoolConfig::default()
    })
    .await
    .unwrap();
    let lease = pool.acquire().await.unwrap();
    let leased = scrape().await;
    assert_eq!(series(&leased, "tidepool_browser_acquires_total"), 1.0);
    assert_eq!(series(&leased, "tidepool_browser_launches_total"), 1.0);
    assert_eq!(series(&leased, "tidepool_browser_in_use"), 1.0);
    assert_eq!(series(&leased, "tidepool_browser_idle"), 0.0);
    drop(lease);
    assert!(pool.wait_until_idle(1, Duration::from_secs(10)).await);
    drop(pool.acquire().await.unwrap());
    assert!(pool.wait_until_idle(1, Duration::from_secs(10)).await);
    let idle = scrape().await;
    assert_eq!(series(&idle, "tidepool_browser_acquires_total"), 2.0);
    assert_eq!(series(&idle, "tidepool_browser_in_use"), 0.0);
    assert_eq!(series(&idle, "tidepool_browser_idle"), 1.0);
    assert_eq!(series(&idle, "tidepool_browser_acquire_seconds_count"), 2.0);
    pool.close().await;
    drop(pool);
    let closed = scrape().await;
    assert_eq!(
        series(
            &closed,
            "tidepool_browser_retirements_total{reason=\"closed\"}"
        ),
        1.0
    );
    assert_eq!(series(&closed, "tidepool_browser_idle"), 0.0, "{closed}");
    drop(wasm);
    std::fs::remove_dir_all(dir).unwrap();
    resources.assert_clean().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lease_with_a_proxy_goes_through_it_and_no_other_lease_does() {
    init_tracing();
    let resources = ResourceCheck::start();
    let server = FixtureServer::start().await.unwrap();
    let proxy = CountingProxy::start().await.unwrap();
    let pool = BrowserPool::new(BrowserPoolConfig {
        max_size: 2,
        leases_per_browser: 2,
        warm_up: 2,
        min_idle: 2,
        ..BrowserPoolConfig::default()
    })
    .await
    .unwrap();

    // Chromium never proxies loopback unless told to: `<-loopback>`.
    let proxied = pool
        .acquire_with(
            LeaseOptions::new()
                .proxy(proxy.server())
                .proxy_bypass_list("<-loopback>"),
        )
        .await
        .unwrap();
    let direct = pool.acquire().await.unwrap();
    assert_eq!(
        proxied.browser_id(),
        direct.browser_id(),
        "one browser, two contexts"
    );
    proxied.goto(&server.url("/page/1")).await.unwrap();
    direct.goto(&server.url("/page/2")).await.unwrap();
    let title: String = proxied.evaluate("document.title").await.unwrap();
    assert_eq!(title, "Page 1", "the page came back through the proxy");
    drop((proxied, direct));
    assert!(pool.wait_until_idle(2, Duration::from_secs(10)).await);

    // The browser's next lease without a proxy gets a context without one.
    let after = pool.acquire().await.unwrap();
    after.goto(&server.url("/page/3")).await.unwrap();
    drop(after);

    let through = proxy.requests();
    assert!(
        through.iter().any(|u| u.ends_with("/page/1")),
        "the proxied lease's page is not in the proxy's log: {through:?}"
    );
    for other in ["/page/2", "/page/3"] {
        assert!(
            !through.iter().any(|u| u.ends_with(other)),
            "{other}, loaded by a lease without a proxy, went through it: {through:?}"
        );
    }
    let bad = pool
        .acquire_with(LeaseOptions::new().proxy("ftp://127.0.0.1:1"))
        .await;
    assert_matches!(bad, Err(Error::Config { ref field, .. }) if field == "lease.proxy_server");
    pool.close().await;
    proxy.shutdown().await;
    server.shutdown().await;
    resources.assert_clean().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hooks_run_at_launch_lease_and_release_and_a_failing_one_retires_only_its_browser() {
    init_tracing();
    let resources = ResourceCheck::start();
    let launched = Arc::new(AtomicU32::new(0));
    let leased_with_page = Arc::new(AtomicU32::new(0));
    let hooks = Hooks::new()
        .after_launch({
            let launched = launched.clone();
            move |_| {
                launched.fetch_add(1, Ordering::SeqCst);
                async { Ok(()) }
            }
        })
        .before_lease({
            let leased = leased_with_page.clone();
            move |b| {
                if b.page.is_some() {
                    leased.fetch_add(1, Ordering::SeqCst);
                }
                async { Ok(()) }
            }
        })
        // Vetoes a browser's reuse after its second lease.
        .after_release(|b| async move {
            if b.uses >= 2 {
                Err(format!("browser {} served {} leases", b.browser_id, b.uses).into())
            } else {
                Ok(())
            }
        });
    let pool = BrowserPool::with_hooks(
        BrowserPoolConfig {
            max_size: 1,
            warm_up: 1,
            min_idle: 1,
            ..BrowserPoolConfig::default()
        },
        hooks,
    )
    .await
    .unwrap();
    let mut browsers = Vec::new();
    for _ in 0..3 {
        let lease = pool.acquire().await.unwrap();
        browsers.push(lease.browser_id());
        drop(lease);
        assert!(pool.wait_until_idle(1, Duration::from_secs(15)).await);
    }
    assert_eq!(browsers[0], browsers[1], "reused while the hook allows it");
    assert_ne!(
        browsers[1], browsers[2],
        "the vetoed browser must not serve again"
    );
    let stats = pool.stats();
    assert_eq!(stats.retired_hook, 1, "{stats:?}");
    assert_eq!(u64::from(launched.load(Ordering::SeqCst)), stats.launched);
    assert_eq!(leased_with_page.load(Ordering::SeqCst), 3);
    pool.close().await;

    // A hook that fails at launch fails that acquire, not the pool.
    let failing = Hooks::new().after_launch(|_| async { Err("no".into()) });
    let err = BrowserPool::with_hooks(BrowserPoolConfig::default(), failing)
        .await
        .unwrap_err();
    assert_matches!(
        err,
        Error::Hook {
            hook: "after_launch",
            ..
        }
    );
    resources.assert_clean().await;
}

/// An example binary, built by cargo beside this test's own binary
/// (`target/<profile>/examples/`): `cargo nextest run` builds the examples
/// with the tests.
fn example(name: &str) -> std::path::PathBuf {
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe.parent().and_then(|deps| deps.parent()).unwrap();
    profile_dir.join("examples").join(name)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_examples_that_need_no_network_run() {
    init_tracing();
    let resources = ResourceCheck::start();
    for (name, expected) in [
        ("crawl", "\"page 6\" (1 links)"),
        ("connect", "\"remote 3\" in context"),
        ("wasm_extractor", "3 links in"),
        ("adaptive_timeouts", "slow.example: timeout now"),
        ("metrics", "tidepool_browser_acquires_total 3"),
    ] {
        let path = example(name);
        assert!(path.exists(), "{} is not built", path.display());
        let run = tokio::process::Command::new(&path)
            .kill_on_drop(true)
            .output();
        let out = tokio::time::timeout(Duration::from_secs(120), run)
            .await
            .unwrap_or_else(|_| panic!("example {name} ran past 120 s"))
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && stdout.contains(expected),
            "example {name}: {}, expected {expected:?} in its output:\n{stdout}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    resources.assert_clean().await;
}

/// What the library must not compile: the suite's and the testkit's
/// dependencies. (hyper is not among them: chromiumoxide itself depends on
/// reqwest, and through it on hyper's client.)
const NOT_IN_THE_LIBRARY: [&str; 9] = [
    "axum",
    "clap",
    "csv",
    "indicatif",
    "plotters",
    "tracing-subscriber",
    "wat",
    "tidepool",
    "tidepool-testkit",
];

/// `cargo tree` of `args`, as the set of packages and of `package/feature`
/// pairs it shows.
fn cargo_tree(args: &[&str]) -> (BTreeSet<String>, BTreeSet<String>) {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = std::process::Command::new(cargo)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["tree", "--locked", "--edges", "normal,build,features"])
        .args(["--prefix", "none", "--format", "{p} {f}"])
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "cargo tree {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (mut packages, mut features) = (BTreeSet::new(), BTreeSet::new());
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let mut words = line.split_whitespace();
        let Some(package) = words.next() else {
            continue;
        };
        packages.insert(package.to_owned());
        // `{f}` is the package's enabled features, comma-separated, after
        // its version and (for a path dependency) its path.
        for word in words.filter(|w| !w.starts_with('v') && !w.starts_with('(')) {
            for f in word.split(',') {
                features.insert(format!("{package}/{f}"));
            }
        }
    }
    (packages, features)
}

#[test]
fn the_library_compiles_none_of_the_suite_or_the_testkit() {
    let (packages, features) = cargo_tree(&["-p", "tidepool-pools"]);
    assert!(packages.contains("tidepool-pools"), "{packages:?}");
    let present: Vec<&str> = NOT_IN_THE_LIBRARY
        .into_iter()
        .filter(|p| packages.contains(*p))
        .collect();
    assert!(
        present.is_empty(),
        "the library compiles {present:?}; its packages: {packages:?}"
    );
    let servers: Vec<&String> = features
        .iter()
        .filter(|f| f.starts_with("hyper-util/server") || f.starts_with("hyper/server"))
        .collect();
    assert!(
        servers.is_empty(),
        "the library compiles an HTTP server: {servers:?}"
    );
    assert!(
        !features.contains("tidepool-pools/controls"),
        "the controls' seams are on in the library's own build: {features:?}"
    );
    println!("the library compiles {} packages", packages.len());

    // A service outside the workspace, depending on the library by path.
    let manifest = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/embed/Cargo.toml");
    let (embedded, features) = cargo_tree(&["--manifest-path", manifest]);
    assert!(embedded.contains("tidepool-pools"), "{embedded:?}");
    let present: Vec<&str> = NOT_IN_THE_LIBRARY
        .into_iter()
        .filter(|p| embedded.contains(*p))
        .collect();
    assert!(
        present.is_empty(),
        "a service embedding the pools compiles {present:?}"
    );
    assert!(
        !features.contains("tidepool-pools/controls"),
        "{features:?}"
    );
}

/// The library reads no environment switch but the two a user sets
/// (`$CHROME`, where Chromium is; `TIDEPOOL_SANDBOX`, its sandbox) and
/// `PATH`: no test or control switches its behaviour from outside.
#[test]
fn the_library_reads_only_the_documented_environment() {
    let src = concat!(env!("CARGO_MANIFEST_DIR"), "/crates/tidepool-pools/src");
    let mut reads = Vec::new();
    let mut dirs = vec![std::path::PathBuf::from(src)];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            for (n, line) in text.lines().enumerate() {
                if line.contains("env::var") || line.contains("env!(") {
                    reads.push(format!("{}:{}: {}", path.display(), n + 1, line.trim()));
                }
            }
        }
    }
    reads.sort();
    let allowed = [
        "std::env::var(k)",
        "var_os(\"PATH\")",
        "std::env::var(SANDBOX_ENV)",
    ];
    let unexpected: Vec<&String> = reads
        .iter()
        .filter(|r| !allowed.iter().any(|a| r.contains(a)))
        .collect();
    assert!(
        unexpected.is_empty(),
        "undocumented environment reads: {unexpected:#?}"
    );
    assert_eq!(reads.len(), allowed.len(), "{reads:#?}");
}
