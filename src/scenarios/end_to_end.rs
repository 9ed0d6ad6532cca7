//! A crawl end to end, pooled against naive, in the same run: each page is
//! loaded in Chromium, its HTML handed to a WASM extractor (a link counter),
//! under a per-host timeout.
//!
//! - pooled: BrowserPool (pre-warmed; each worker holds a lease), page
//!   sessions reused across the pages a worker crawls (reset between pages),
//!   the step's commands sent as one pipelined batch, a hot instance from the
//!   tiered WASM pool, adaptive per-host timeouts.
//! - naive: a browser launched per page, the step's commands one round trip
//!   each, the extractor compiled per page, a fixed 30 s timeout.
//!
//! Both sides take the same three things from every page (see [`STEP`]), and
//! the fixture crawl checks all three.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chromiumoxide::cdp::js_protocol::runtime::{EvaluateParams, EvaluateReturns};

use super::{naive, Control, Scenario, ScenarioFuture};
use crate::browser::{locate_chromium, BrowserPool, BrowserPoolConfig, Lease, DEFAULT_FLAGS};
use crate::cdp::{typed, SessionPool, SessionPoolConfig};
use crate::error::{Error, Result, WasmFault};
use crate::profile::RunProfile;
use crate::summary::MetricSummary;
use crate::summary::{FigureSpec, ScenarioSpec};
use crate::testkit::FixtureServer;
use crate::timeout::{AdaptiveTimeouts, AdaptiveTimeoutsConfig};
use crate::wasm::{
    fixtures, AotCache, ModuleOptions, WasmCacheConfig, WasmEngine, WasmEngineConfig, WasmPool,
    WasmPoolConfig,
};

pub(super) const SCENARIO: Scenario = Scenario {
    spec: ScenarioSpec {
        name: "end_to_end",
        description: "crawl: pooled browsers + reused sessions + batches + warm WASM + adaptive timeouts vs launch/compile per page with a fixed timeout",
        figures: &[
            FigureSpec::measurement("pooled_page_ms", "ms"),
            FigureSpec::measurement("naive_page_ms", "ms"),
            FigureSpec::ratio("pooled_pages_per_s"),
            FigureSpec::measurement("pooled_shared_page_ms", "ms"),
            FigureSpec::ratio("pooled_shared_pages_per_s"),
            FigureSpec::ratio("naive_pages_per_s"),
            FigureSpec::counter("pooled_pages").scales(),
            FigureSpec::counter("naive_pages").scales(),
            FigureSpec::counter("page_errors").only_on_fixtures(),
            FigureSpec::counter("wrong_extractions").only_on_fixtures(),
        ],
    },
    run: start,
    needs_browser: true,
    controls: CONTROLS,
};

fn start(profile: RunProfile) -> ScenarioFuture {
    Box::pin(run(profile, Variant::Honest))
}

/// How the pooled side crawls: for real, or as a bad variant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Variant {
    /// A lease (a fresh incognito context) per page: the headline.
    Honest,
    /// Browsers retired after one lease: a launch per page, in the background.
    SingleUseBrowsers,
    /// Timeouts clamped to 1 ms, as a seconds-for-milliseconds slip would.
    MillisecondTimeouts,
    /// One lease, its page driven by every worker at once.
    SharedPage,
}

/// The negative controls.
const CONTROLS: &[Control] = &[
    Control {
        name: "single_use_browsers",
        what: "a pool whose browsers are retired after one lease (max_uses 1)",
        rejects: &["pooled_throughput", "pooled_tail_latency"],
        run: |p| Box::pin(run(p, Variant::SingleUseBrowsers)),
    },
    Control {
        name: "millisecond_timeouts",
        what: "adaptive timeouts clamped to 1 ms (a seconds-for-milliseconds slip)",
        rejects: &["every_page_loads"],
        run: |p| Box::pin(run(p, Variant::MillisecondTimeouts)),
    },
    Control {
        name: "shared_page",
        what: "a pool that hands every worker the same lease, so pages are read while another worker navigates",
        rejects: &["every_extraction_right"],
        run: |p| Box::pin(run(p, Variant::SharedPage)),
    },
];

/// Concurrent crawl workers.
pub const DEFAULT_CONCURRENCY: usize = 4;
/// The naive baseline's fixed timeout.
const FIXED_TIMEOUT: Duration = Duration::from_secs(30);
/// The crawler's step on a loaded page: three independent commands, for the
/// HTML the extractor reads, the title, and the URL the page ended on.
pub const STEP: [&str; 3] = [
    "document.documentElement.outerHTML",
    "document.title",
    "location.href",
];
/// Links on every generated fixture page (`/page/{n}` has ten).
const FIXTURE_LINKS: i32 = 10;

/// What the crawl took from one page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Extracted {
    /// Links the WASM extractor counted in the page's HTML.
    pub links: i32,
    /// The page's title.
    pub title: String,
    /// The URL the page ended on, after redirects.
    pub final_url: String,
}

impl Extracted {
    /// Runs `extract` on the HTML of a [`STEP`]'s values and keeps the rest.
    fn from_step(values: Vec<String>, extract: impl FnOnce(&str) -> Result<i32>) -> Result<Self> {
        let [html, title, final_url]: [String; 3] =
            values.try_into().map_err(|v: Vec<String>| Error::Task {
                what: "a crawl step".into(),
                message: format!("{} values for {} commands", v.len(), STEP.len()),
            })?;
        Ok(Extracted {
            links: extract(&html)?,
            title,
            final_url,
        })
    }

    /// Whether this is what fixture page `url` (`/page/{n}`) holds.
    fn is_fixture_page(&self, url: &str) -> bool {
        let n = url.rsplit_once("/page/").map_or("", |(_, n)| n);
        self.links == FIXTURE_LINKS && self.title == format!("Page {n}") && self.final_url == url
    }
}

/// What one side of the crawl measured.
#[derive(Debug, Default)]
pub struct CrawlOutcome {
    /// Per-page latency of pages that loaded, ms.
    pub latencies_ms: Vec<f64>,
    /// What was taken from each loaded page, by URL.
    pub pages: BTreeMap<String, Extracted>,
    /// Pages that failed (unreachable, timed out, error page), by host.
    pub failures_by_host: BTreeMap<String, u64>,
    /// Wall time of the whole crawl.
    pub wall: Duration,
}

impl CrawlOutcome {
    fn pages_per_s(&self) -> f64 {
        self.latencies_ms.len() as f64 / self.wall.as_secs_f64().max(1e-9)
    }

    fn failures(&self) -> u64 {
        self.failures_by_host.values().sum()
    }

    /// Records one page of `side`'s crawl, which took `took` to get.
    fn record(&mut self, side: &str, url: &str, took: Duration, result: Result<Extracted>) {
        match result {
            Ok(page) => {
                self.latencies_ms.push(took.as_secs_f64() * 1e3);
                self.pages.insert(url.to_owned(), page);
            }
            Err(e) => {
                tracing::warn!(side, %url, error = %e, "page failed");
                *self.failures_by_host.entry(host_of(url)).or_default() += 1;
            }
        }
    }
}

/// The host (and port) of a URL, the key of its adaptive timeout.
pub fn host_of(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    rest.split(['/', '?', '#'])
        .next()
        .unwrap_or(rest)
        .to_owned()
}

/// Runs the extractor on `html` in an instance from `pool`.
fn extract(pool: &WasmPool, html: &str) -> Result<i32> {
    let mut lease = pool.acquire("extractor")?;
    let ptr = lease.write_input(html.as_bytes())?;
    lease.call("count_links", (ptr, html.len() as u32))
}

/// The naive extractor: compile the module, instantiate, run, throw away.
fn extract_naive(engine: &WasmEngine, wasm: &[u8], html: &str) -> Result<i32> {
    let module = engine.compile("extractor", wasm)?;
    let pre = engine.prepare("extractor", &module)?;
    let mut store = engine.store();
    let usage = |message: String| Error::Wasm {
        module: "extractor".into(),
        fault: WasmFault::Usage,
        message,
    };
    let instance = pre
        .instantiate(&mut store)
        .map_err(|e| usage(e.to_string()))?;
    let alloc = instance
        .get_typed_func::<u32, u32>(&mut store, "alloc")
        .map_err(|e| usage(e.to_string()))?;
    let count = instance
        .get_typed_func::<(u32, u32), i32>(&mut store, "count_links")
        .map_err(|e| usage(e.to_string()))?;
    let memory = instance
        .get_memory(&mut store, "memory")
        .ok_or_else(|| usage("no memory export".into()))?;
    engine.arm(&mut store);
    let ptr = alloc
        .call(&mut store, html.len() as u32)
        .map_err(|e| engine.fault("extractor", &store, e))?;
    memory
        .write(&mut store, ptr as usize, html.as_bytes())
        .map_err(|e| usage(e.to_string()))?;
    count
        .call(&mut store, (ptr, html.len() as u32))
        .map_err(|e| engine.fault("extractor", &store, e))
}

/// What the pooled side keeps warm besides its browsers: the extractor's
/// WASM pool (hot) and its AOT cache directory, removed on drop.
struct WarmWasm {
    pool: WasmPool,
    dir: std::path::PathBuf,
}

impl WarmWasm {
    fn new() -> Result<WarmWasm> {
        let engine = WasmEngine::new(WasmEngineConfig::default())?;
        let dir = std::env::temp_dir().join(format!(
            "tidepool-e2e-{}-{}",
            std::process::id(),
            crate::testkit::unique_suffix()
        ));
        let cache = Arc::new(AotCache::open(WasmCacheConfig::new(&dir), &engine)?);
        let pool = WasmPool::new(
            engine,
            cache,
            WasmPoolConfig {
                capacity: 4,
                ..WasmPoolConfig::default()
            },
        )?;
        pool.register(
            "extractor",
            fixtures::extractor()?,
            ModuleOptions::default(),
        );
        drop(pool.acquire("extractor")?);
        pool.rebalance()?;
        Ok(WarmWasm { pool, dir })
    }
}

impl Drop for WarmWasm {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Everything the pooled side starts before its first page, and how long
/// that took (it belongs in the pooled wall clock).
struct Warm {
    wasm: WarmWasm,
    browsers: BrowserPool,
    timeouts: AdaptiveTimeouts,
    setup: Duration,
}

impl Warm {
    async fn start(concurrency: usize, variant: Variant) -> Result<Warm> {
        let t = Instant::now();
        let wasm = WarmWasm::new()?;
        let browsers = BrowserPool::new(BrowserPoolConfig {
            min_idle: concurrency,
            max_size: concurrency,
            warm_up: concurrency,
            max_uses: (variant == Variant::SingleUseBrowsers).then_some(1),
            ..BrowserPoolConfig::default()
        })
        .await?;
        let timeouts = AdaptiveTimeouts::new(match variant {
            Variant::MillisecondTimeouts => AdaptiveTimeoutsConfig {
                min: Duration::from_millis(1),
                max: Duration::from_millis(1),
                default: Duration::from_millis(1),
                ..AdaptiveTimeoutsConfig::default()
            },
            _ => AdaptiveTimeoutsConfig::default(),
        })?;
        browsers
            .wait_until_idle(concurrency, Duration::from_secs(60))
            .await;
        Ok(Warm {
            wasm,
            browsers,
            timeouts,
            setup: t.elapsed(),
        })
    }
}

/// The pooled crawl of `urls` with `concurrency` workers, each page in a
/// lease of its own (a fresh incognito context): isolated from every other
/// page as the naive side's browser per page is. The wall clock includes the
/// pools' warm-up.
pub async fn crawl_pooled(urls: &[String], concurrency: usize) -> Result<CrawlOutcome> {
    crawl_pooled_variant(urls, concurrency, Variant::Honest).await
}

async fn crawl_pooled_variant(
    urls: &[String],
    concurrency: usize,
    variant: Variant,
) -> Result<CrawlOutcome> {
    let Warm {
        wasm,
        browsers,
        timeouts,
        setup,
    } = Warm::start(concurrency, variant).await?;
    let shared = match variant {
        Variant::SharedPage => Some(Arc::new(browsers.acquire().await?)),
        _ => None,
    };
    let outcome = crawl("pooled", urls, concurrency, |work| {
        let (browsers, wasm_pool, timeouts, shared) = (
            browsers.clone(),
            wasm.pool.clone(),
            timeouts.clone(),
            shared.clone(),
        );
        async move {
            while let Some(url) = work.claim() {
                let t0 = Instant::now();
                // The wait for a lease is the pool's, not the host's: the
                // learned per-host timeout covers the page's own work only.
                let result = async {
                    let own = match &shared {
                        Some(_) => None,
                        None => Some(browsers.acquire().await?),
                    };
                    let lease = own
                        .as_ref()
                        .or(shared.as_deref())
                        .ok_or(Error::PoolClosed { what: "browser" })?;
                    timeouts
                        .run(&host_of(url), leased_step(lease, url))
                        .await
                        .and_then(|r| r)
                }
                .await
                .and_then(|values| Extracted::from_step(values, |html| extract(&wasm_pool, html)));
                work.record("pooled", url, t0.elapsed(), result);
            }
        }
    })
    .await;
    drop(shared);
    browsers.close().await;
    let mut outcome = outcome?;
    outcome.wall += setup;
    Ok(outcome)
}

/// One page on a lease's page: navigate, then [`STEP`] pipelined (every
/// command sent before any reply is awaited).
async fn leased_step(lease: &Lease, url: &str) -> Result<Vec<String>> {
    lease.goto(url).await?;
    let replies = futures::future::join_all(STEP.iter().map(|expression| async move {
        lease
            .call(
                &format!("evaluating {expression}"),
                lease.page().execute(EvaluateParams::new(*expression)),
            )
            .await
    }))
    .await;
    replies
        .into_iter()
        .zip(STEP)
        .map(|(reply, expression)| string_value(reply?.result, expression, url))
        .collect()
}

/// An evaluation's string value, or an error naming the expression and page.
fn string_value(result: EvaluateReturns, expression: &str, url: &str) -> Result<String> {
    match result.result.value {
        Some(serde_json::Value::String(s)) => Ok(s),
        other => Err(Error::Task {
            what: format!("evaluating {expression} on {url}"),
            message: format!("expected a string, got {other:?}"),
        }),
    }
}

/// The shared-lease crawl: each worker keeps one lease for the whole crawl
/// and reuses its page sessions, reset between pages. Faster, and it isolates
/// nothing between a worker's pages (its context's storage, HTTP cache and
/// service workers carry over): a second figure, never the headline.
pub async fn crawl_pooled_shared(urls: &[String], concurrency: usize) -> Result<CrawlOutcome> {
    let Warm {
        wasm,
        browsers,
        timeouts,
        setup,
    } = Warm::start(concurrency, Variant::Honest).await?;
    let outcome = crawl("pooled shared", urls, concurrency, |work| {
        let (browsers, wasm_pool, timeouts) =
            (browsers.clone(), wasm.pool.clone(), timeouts.clone());
        async move {
            let mut worker: Option<(Lease, SessionPool)> = None;
            while let Some(url) = work.claim() {
                let t0 = Instant::now();
                if worker.is_none() {
                    worker = match browsers.acquire().await {
                        Ok(lease) => match SessionPool::new(&lease, SessionPoolConfig::default()) {
                            Ok(sessions) => Some((lease, sessions)),
                            Err(e) => {
                                tracing::warn!(error = %e, "no session pool for a crawl worker");
                                None
                            }
                        },
                        Err(e) => {
                            tracing::warn!(error = %e, "no lease for a crawl worker");
                            None
                        }
                    };
                }
                let result = match &worker {
                    Some((_, sessions)) => timeouts
                        .run(&host_of(url), pooled_step(sessions, url))
                        .await
                        .and_then(|r| r)
                        .and_then(|values| {
                            Extracted::from_step(values, |html| extract(&wasm_pool, html))
                        }),
                    None => Err(Error::PoolClosed { what: "browser" }),
                };
                // A lease whose browser crashed or was evicted is given back for a new one.
                let lost = matches!(
                    result,
                    Err(Error::BrowserCrashed { .. } | Error::BrowserEvicted { .. })
                );
                work.record("pooled shared", url, t0.elapsed(), result);
                if lost {
                    worker = None;
                }
            }
        }
    })
    .await;
    browsers.close().await;
    let mut outcome = outcome?;
    outcome.wall += setup;
    Ok(outcome)
}

/// One page on a reused session: navigate, then [`STEP`] in one pipelined
/// batch; every command's own error is kept.
async fn pooled_step(sessions: &SessionPool, url: &str) -> Result<Vec<String>> {
    let session = sessions.acquire().await?;
    session.goto(url).await?;
    let mut batch = session.batch();
    for expression in STEP {
        batch.push(EvaluateParams::new(expression));
    }
    let results = batch.send().await;
    session.release().await;
    results
        .into_iter()
        .zip(STEP)
        .map(|(result, expression)| {
            string_value(typed::<EvaluateReturns>(result)?, expression, url)
        })
        .collect()
}

/// The naive crawl: a browser launched and the extractor compiled per page,
/// under a fixed 30 s timeout.
pub async fn crawl_naive(urls: &[String], concurrency: usize) -> Result<CrawlOutcome> {
    let executable = Arc::new(locate_chromium(None)?);
    let flags: Arc<Vec<String>> = Arc::new(DEFAULT_FLAGS.iter().map(|f| f.to_string()).collect());
    let engine = WasmEngine::new(WasmEngineConfig::default())?;
    let wasm = Arc::new(fixtures::extractor()?);
    crawl("naive", urls, concurrency, |work| {
        let (executable, flags, engine, wasm) = (
            executable.clone(),
            flags.clone(),
            engine.clone(),
            wasm.clone(),
        );
        async move {
            while let Some(url) = work.claim() {
                // Per-page latency as on the pooled side: from starting to get
                // a page to the result in hand. The browser's shutdown comes
                // after (it is in the wall clock, not in the page's latency).
                let (took, result) = match tokio::time::timeout(
                    FIXED_TIMEOUT,
                    naive::load_page(&executable, &flags, url, &STEP),
                )
                .await
                {
                    Ok(Ok(load)) => {
                        let t = Instant::now();
                        let page = Extracted::from_step(load.values, |html| {
                            extract_naive(&engine, &wasm, html)
                        });
                        (load.total + t.elapsed(), page)
                    }
                    Ok(Err(e)) => (FIXED_TIMEOUT, Err(e)),
                    Err(_) => (
                        FIXED_TIMEOUT,
                        Err(Error::Timeout {
                            key: host_of(url),
                            after: FIXED_TIMEOUT,
                        }),
                    ),
                };
                work.record("naive", url, took, result);
            }
        }
    })
    .await
}

/// The URLs of one crawl, handed out one at a time, and what came of them.
struct Crawl {
    urls: Vec<String>,
    next: AtomicUsize,
    outcome: Mutex<CrawlOutcome>,
}

impl Crawl {
    /// The next URL no worker has taken yet.
    fn claim(&self) -> Option<&str> {
        self.urls
            .get(self.next.fetch_add(1, Ordering::SeqCst))
            .map(String::as_str)
    }

    fn record(&self, side: &str, url: &str, took: Duration, result: Result<Extracted>) {
        self.outcome
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .record(side, url, took, result);
    }
}

/// Runs `concurrency` workers made by `worker` over one shared crawl of
/// `urls`, and returns the outcome with the wall time of the whole crawl.
async fn crawl<W, F>(
    side: &str,
    urls: &[String],
    concurrency: usize,
    worker: W,
) -> Result<CrawlOutcome>
where
    W: Fn(Arc<Crawl>) -> F,
    F: std::future::Future<Output = ()> + Send + 'static,
{
    let work = Arc::new(Crawl {
        urls: urls.to_vec(),
        next: AtomicUsize::new(0),
        outcome: Mutex::new(CrawlOutcome::default()),
    });
    let t = Instant::now();
    let workers: Vec<_> = (0..concurrency)
        .map(|_| tokio::spawn(worker(work.clone())))
        .collect();
    for w in workers {
        w.await.map_err(|e| Error::Task {
            what: format!("{side} crawl worker"),
            message: e.to_string(),
        })?;
    }
    let mut outcome = std::mem::take(&mut *work.outcome.lock().unwrap_or_else(|p| p.into_inner()));
    outcome.wall = t.elapsed();
    Ok(outcome)
}

/// Both crawls of `urls`, summarised. With `fixture_pages`, every page is
/// checked to be the fixture page its URL names: its ten links, its title,
/// its URL.
pub async fn compare_crawls(
    profile: RunProfile,
    pooled_urls: &[String],
    naive_urls: &[String],
    concurrency: usize,
    fixture_pages: bool,
) -> Result<MetricSummary> {
    compare_variant(
        profile,
        pooled_urls,
        naive_urls,
        concurrency,
        fixture_pages,
        Variant::Honest,
    )
    .await
}

async fn compare_variant(
    profile: RunProfile,
    pooled_urls: &[String],
    naive_urls: &[String],
    concurrency: usize,
    fixture_pages: bool,
    variant: Variant,
) -> Result<MetricSummary> {
    let mut s = MetricSummary::new(SCENARIO.spec.name, profile);
    let pooled = crawl_pooled_variant(pooled_urls, concurrency, variant).await?;
    // A run where no page loaded has no latencies: the contract then names
    // the missing figure, and page_errors says why.
    if !pooled.latencies_ms.is_empty() {
        s.measure("pooled_page_ms", "ms", &pooled.latencies_ms)?;
    }
    s.ratio("pooled_pages_per_s", pooled.pages_per_s());
    s.count("pooled_pages", pooled_urls.len() as u64);
    let mut sides = vec![("pooled", pooled)];
    if matches!(variant, Variant::Honest | Variant::SingleUseBrowsers) {
        let naive = crawl_naive(naive_urls, concurrency).await?;
        s.measure("naive_page_ms", "ms", &naive.latencies_ms)?;
        s.ratio("naive_pages_per_s", naive.pages_per_s());
        s.count("naive_pages", naive_urls.len() as u64);
        sides.push(("naive", naive));
    }
    if variant == Variant::Honest {
        let shared = crawl_pooled_shared(pooled_urls, concurrency).await?;
        s.measure("pooled_shared_page_ms", "ms", &shared.latencies_ms)?;
        s.ratio("pooled_shared_pages_per_s", shared.pages_per_s());
        sides.push(("pooled shared", shared));
    }
    s.count("page_errors", sides.iter().map(|(_, o)| o.failures()).sum());
    let wrong = if fixture_pages {
        sides
            .iter()
            .flat_map(|(_, o)| &o.pages)
            .filter(|(url, page)| !page.is_fixture_page(url))
            .count() as u64
    } else {
        0
    };
    s.count("wrong_extractions", wrong);
    for (side, o) in &sides {
        if !o.failures_by_host.is_empty() {
            s.note(format!(
                "{side}: failed pages by host: {:?}",
                o.failures_by_host
            ));
        }
    }
    s.note(format!(
        "pooled (the headline): a lease per page, so each page has a fresh incognito context as the naive side has a fresh browser; pre-warmed pool of {concurrency} browsers, the step's {} commands pipelined on the lease's page, warm WASM (hot tier), adaptive per-host timeouts; its wall clock includes the pools' warm-up. Naive: a browser launched per page, the step's commands one round trip each, the extractor compiled per page, fixed 30 s timeout. Per-page latency on both sides: from starting to get a page to the extracted result in hand (the naive browser's shutdown comes after). {concurrency} workers each.",
        STEP.len()
    ));
    s.note("pooled shared (reported, not judged): a lease per worker for the whole crawl, page sessions reused and reset between pages, the step in one batch; it isolates nothing between a worker's pages beyond the reset (cookies; not local/session storage, IndexedDB, caches or service workers)");
    Ok(s)
}

async fn run(profile: RunProfile, variant: Variant) -> Result<MetricSummary> {
    // Three hosts, so the timeouts are learned per host.
    let servers = [
        FixtureServer::start().await?,
        FixtureServer::start().await?,
        FixtureServer::start().await?,
    ];
    let urls = |n: usize| -> Vec<String> {
        (0..n)
            .map(|i| servers[i % servers.len()].url(&format!("/page/{i}")))
            .collect()
    };
    let (pooled, naive) = match variant {
        // The pooled side's wall clock includes its warm-up: enough pages
        // that the quick profile measures the crawl rather than the start.
        Variant::Honest => (
            urls(profile.scaled(120, 300)),
            urls(profile.scaled(24, 300)),
        ),
        _ => (urls(profile.scaled(16, 40)), urls(profile.scaled(16, 40))),
    };
    let summary =
        compare_variant(profile, &pooled, &naive, DEFAULT_CONCURRENCY, true, variant).await;
    for server in servers {
        server.shutdown().await;
    }
    summary
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_include_the_port_and_drop_the_path() {
        assert_eq!(
            host_of("http://127.0.0.1:8080/page/1?x=2"),
            "127.0.0.1:8080"
        );
        assert_eq!(host_of("https://example.com"), "example.com");
        assert_eq!(host_of("https://example.com#top"), "example.com");
    }

    #[test]
    fn a_page_is_the_fixture_page_only_with_its_links_title_and_url() {
        let url = "http://127.0.0.1:9/page/7";
        let page = |links: i32, title: &str, final_url: &str| Extracted {
            links,
            title: title.into(),
            final_url: final_url.into(),
        };
        assert!(page(10, "Page 7", url).is_fixture_page(url));
        assert!(!page(9, "Page 7", url).is_fixture_page(url));
        assert!(!page(10, "Page 8", url).is_fixture_page(url));
        assert!(!page(10, "Page 7", "http://127.0.0.1:9/page/8").is_fixture_page(url));
    }

    #[test]
    fn a_step_with_a_missing_value_is_an_error_not_a_page() {
        let two = vec!["<html></html>".to_owned(), "t".to_owned()];
        let e = Extracted::from_step(two, |_| Ok(0)).unwrap_err();
        assert!(e.to_string().contains("2 values for 3 commands"), "{e}");
    }
}
