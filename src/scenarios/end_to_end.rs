//! A crawl end to end, pooled against naive, in the same run: each page is
//! loaded in Chromium, its HTML handed to a WASM extractor (a link counter),
//! under a per-host timeout.
//!
//! - pooled: BrowserPool (pre-warmed; each worker holds a lease and reuses its
//!   page across the pages it crawls: session reuse), a hot instance from the
//!   tiered WASM pool, adaptive per-host timeouts.
//! - naive: a browser launched per page, the extractor compiled per page, a
//!   fixed 30 s timeout.
//!
//! Pipelined CDP batches are not used yet (they come with the CDP session
//! pool); the report's notes say which parts were active.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::{naive, Scenario, ScenarioFuture};
use crate::browser::{locate_chromium, BrowserPool, BrowserPoolConfig, DEFAULT_FLAGS};
use crate::contract::{FigureKind::*, FigureSpec, ScenarioSpec};
use crate::error::{Error, Result, WasmFault};
use crate::profile::RunProfile;
use crate::report::MetricSummary;
use crate::testkit::FixtureServer;
use crate::timeout::{AdaptiveTimeouts, AdaptiveTimeoutsConfig};
use crate::wasm::{
    fixtures, AotCache, ModuleOptions, WasmCacheConfig, WasmEngine, WasmEngineConfig, WasmPool,
    WasmPoolConfig,
};

pub(super) const SCENARIO: Scenario = Scenario {
    spec: ScenarioSpec {
        name: "end_to_end",
        description: "crawl: pooled browsers + warm WASM + adaptive timeouts vs launch/compile per page with a fixed timeout",
        figures: &[
            FigureSpec { name: "pooled_page_ms", kind: Measurement("ms") },
            FigureSpec { name: "naive_page_ms", kind: Measurement("ms") },
            FigureSpec { name: "pooled_pages_per_s", kind: Ratio },
            FigureSpec { name: "naive_pages_per_s", kind: Ratio },
            FigureSpec { name: "pooled_pages", kind: Counter },
            FigureSpec { name: "naive_pages", kind: Counter },
            FigureSpec { name: "page_errors", kind: Counter },
            FigureSpec { name: "wrong_extractions", kind: Counter },
        ],
    },
    run: start,
    needs_browser: true,
};

fn start(profile: RunProfile) -> ScenarioFuture {
    Box::pin(run(profile))
}

/// Concurrent crawl workers.
pub const DEFAULT_CONCURRENCY: usize = 4;
/// The naive baseline's fixed timeout.
const FIXED_TIMEOUT: Duration = Duration::from_secs(30);
const HTML: &str = "document.documentElement.outerHTML";
/// Links on every generated fixture page (`/page/{n}` has ten).
const FIXTURE_LINKS: i32 = 10;

/// What one side of the crawl measured.
#[derive(Debug, Default)]
pub struct CrawlOutcome {
    /// Per-page latency of pages that loaded, ms.
    pub latencies_ms: Vec<f64>,
    /// Links counted per loaded page, by URL.
    pub links: BTreeMap<String, i32>,
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

    /// Records one page of `side`'s crawl, begun at `started`.
    fn record(&mut self, side: &str, url: &str, started: Instant, result: &Result<i32>) {
        match result {
            Ok(links) => {
                self.latencies_ms
                    .push(started.elapsed().as_secs_f64() * 1e3);
                self.links.insert(url.to_owned(), *links);
            }
            Err(e) => {
                tracing::debug!(side, %url, error = %e, "page failed");
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

/// The pooled crawl of `urls` with `concurrency` workers.
pub async fn crawl_pooled(urls: &[String], concurrency: usize) -> Result<CrawlOutcome> {
    let engine = WasmEngine::new(WasmEngineConfig::default())?;
    let dir = std::env::temp_dir().join(format!("tidepool-e2e-{}", std::process::id()));
    let cache = Arc::new(AotCache::open(WasmCacheConfig::new(&dir), &engine)?);
    let wasm_pool = WasmPool::new(
        engine,
        cache,
        WasmPoolConfig {
            capacity: 4,
            ..WasmPoolConfig::default()
        },
    )?;
    wasm_pool.register(
        "extractor",
        fixtures::extractor()?,
        ModuleOptions::default(),
    );
    drop(wasm_pool.acquire("extractor")?);
    wasm_pool.rebalance()?;
    let browsers = BrowserPool::new(BrowserPoolConfig {
        min_idle: concurrency,
        max_size: concurrency,
        warm_up: concurrency,
        ..BrowserPoolConfig::default()
    })
    .await?;
    let timeouts = AdaptiveTimeouts::new(AdaptiveTimeoutsConfig::default())?;
    let outcome = crawl("pooled", urls, concurrency, |work| {
        let (browsers, wasm_pool, timeouts) =
            (browsers.clone(), wasm_pool.clone(), timeouts.clone());
        async move {
            let mut lease = None;
            while let Some(url) = work.claim() {
                let host = host_of(url);
                let t0 = Instant::now();
                if lease.is_none() {
                    lease = browsers.acquire().await.ok();
                }
                let result = match &lease {
                    Some(l) => timeouts
                        .run(&host, async {
                            l.goto(url).await?;
                            l.evaluate::<String>(HTML).await
                        })
                        .await
                        .and_then(|r| r)
                        .and_then(|html| extract(&wasm_pool, &html)),
                    None => Err(Error::PoolClosed { what: "browser" }),
                };
                work.record("pooled", url, t0, &result);
                // A lease whose browser crashed or was evicted is given back for a new one.
                if matches!(
                    result,
                    Err(Error::BrowserCrashed { .. } | Error::BrowserEvicted { .. })
                ) {
                    lease = None;
                }
            }
        }
    })
    .await;
    browsers.close().await;
    let _ = std::fs::remove_dir_all(&dir);
    outcome
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
                let t0 = Instant::now();
                let result = match tokio::time::timeout(
                    FIXED_TIMEOUT,
                    naive::load_page(&executable, &flags, url, HTML),
                )
                .await
                {
                    Ok(Ok(load)) => extract_naive(&engine, &wasm, &load.value),
                    Ok(Err(e)) => Err(e),
                    Err(_) => Err(Error::Timeout {
                        key: host_of(url),
                        after: FIXED_TIMEOUT,
                    }),
                };
                work.record("naive", url, t0, &result);
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

    fn record(&self, side: &str, url: &str, started: Instant, result: &Result<i32>) {
        self.outcome
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .record(side, url, started, result);
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

/// Both crawls of `urls`, summarised. `expected_links` checks every page's
/// extraction when the pages are known (the fixture pages).
pub async fn compare_crawls(
    profile: RunProfile,
    pooled_urls: &[String],
    naive_urls: &[String],
    concurrency: usize,
    expected_links: Option<i32>,
) -> Result<MetricSummary> {
    let pooled = crawl_pooled(pooled_urls, concurrency).await?;
    let naive = crawl_naive(naive_urls, concurrency).await?;
    let mut s = MetricSummary::new(SCENARIO.spec.name, profile);
    s.measure("pooled_page_ms", "ms", &pooled.latencies_ms)?;
    s.measure("naive_page_ms", "ms", &naive.latencies_ms)?;
    s.ratio("pooled_pages_per_s", pooled.pages_per_s());
    s.ratio("naive_pages_per_s", naive.pages_per_s());
    s.count("pooled_pages", pooled_urls.len() as u64);
    s.count("naive_pages", naive_urls.len() as u64);
    s.count("page_errors", pooled.failures() + naive.failures());
    let wrong = match expected_links {
        Some(n) => pooled
            .links
            .values()
            .chain(naive.links.values())
            .filter(|&&l| l != n)
            .count() as u64,
        None => 0,
    };
    s.count("wrong_extractions", wrong);
    for (side, o) in [("pooled", &pooled), ("naive", &naive)] {
        if !o.failures_by_host.is_empty() {
            s.note(format!(
                "{side}: failed pages by host: {:?}",
                o.failures_by_host
            ));
        }
    }
    s.note(format!(
        "active: browser pool (pre-warmed, {concurrency} browsers), session reuse (each worker reuses its lease's page), warm WASM (hot tier), adaptive per-host timeouts; not yet: pipelined CDP batches. Naive: launch per page, compile per page, fixed 30 s timeout. {concurrency} workers each."
    ));
    Ok(s)
}

async fn run(profile: RunProfile) -> Result<MetricSummary> {
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
    let pooled = urls(profile.scaled(60, 300));
    let naive = urls(profile.scaled(24, 300));
    let summary = compare_crawls(
        profile,
        &pooled,
        &naive,
        DEFAULT_CONCURRENCY,
        Some(FIXTURE_LINKS),
    )
    .await;
    for server in servers {
        server.shutdown().await;
    }
    summary
}

#[cfg(test)]
mod tests {
    use super::host_of;

    #[test]
    fn hosts_include_the_port_and_drop_the_path() {
        assert_eq!(
            host_of("http://127.0.0.1:8080/page/1?x=2"),
            "127.0.0.1:8080"
        );
        assert_eq!(host_of("https://example.com"), "example.com");
        assert_eq!(host_of("https://example.com#top"), "example.com");
    }
}
