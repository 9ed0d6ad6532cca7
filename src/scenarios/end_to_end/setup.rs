//! What a crawl is made of: what it takes from a page, what it adds up
//! to, and the warm pools of the pooled side.

use super::*;
use tidepool_pools::Error as PoolError;

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
    pub(super) fn from_step(
        values: Vec<String>,
        extract: impl FnOnce(&str) -> Result<i32>,
    ) -> Result<Self> {
        let [html, title, final_url]: [String; 3] =
            values
                .try_into()
                .map_err(|v: Vec<String>| PoolError::Task {
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
    pub(super) fn is_fixture_page(&self, url: &str) -> bool {
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
    pub(super) fn pages_per_s(&self) -> f64 {
        self.latencies_ms.len() as f64 / self.wall.as_secs_f64().max(1e-9)
    }

    pub(super) fn failures(&self) -> u64 {
        self.failures_by_host.values().sum()
    }

    /// Records one page of `side`'s crawl, which took `took` to get.
    pub(super) fn record(
        &mut self,
        side: &str,
        url: &str,
        took: Duration,
        result: Result<Extracted>,
    ) {
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
pub(super) fn extract(pool: &WasmPool, html: &str) -> Result<i32> {
    let mut lease = pool.acquire("extractor")?;
    let ptr = lease.write_input(html.as_bytes())?;
    Ok(lease.call("count_links", (ptr, html.len() as u32))?)
}

/// The naive extractor: compile the module, instantiate, run, throw away.
pub(super) fn extract_naive(engine: &WasmEngine, wasm: &[u8], html: &str) -> Result<i32> {
    let module = engine.compile("extractor", wasm)?;
    let pre = engine.prepare("extractor", &module)?;
    let mut store = engine.store();
    let usage = |message: String| PoolError::Wasm {
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
    let links = count
        .call(&mut store, (ptr, html.len() as u32))
        .map_err(|e| engine.fault("extractor", &store, e))?;
    Ok(links)
}

/// What the pooled side keeps warm besides its browsers: the extractor's
/// WASM pool (hot) and its AOT cache directory, removed on drop.
pub(super) struct WarmWasm {
    pub(super) pool: WasmPool,
    /// The AOT cache, removed when dropped.
    _dir: tempfile::TempDir,
}

impl WarmWasm {
    pub(super) fn new() -> Result<WarmWasm> {
        let engine = WasmEngine::new(WasmEngineConfig::default())?;
        let dir = crate::testkit::scratch_dir("tidepool-e2e-")?;
        let cache = Arc::new(AotCache::open(WasmCacheConfig::new(dir.path()), &engine)?);
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
        Ok(WarmWasm { pool, _dir: dir })
    }
}

/// Everything the pooled side starts before its first page, and how long
/// that took (it belongs in the pooled wall clock).
pub(super) struct Warm {
    pub(super) wasm: WarmWasm,
    pub(super) browsers: BrowserPool,
    pub(super) timeouts: AdaptiveTimeouts,
    pub(super) setup: Duration,
}

impl Warm {
    pub(super) async fn start(concurrency: usize, variant: Variant) -> Result<Warm> {
        let t = Instant::now();
        let wasm = WarmWasm::new()?;
        let browsers = BrowserPool::new(BrowserPoolConfig {
            min_idle: concurrency,
            max_size: concurrency,
            warm_up: concurrency,
            // One browser for all workers: each further browser costs its
            // own browser process, GPU process and network service (the
            // crawl suite measures it).
            leases_per_browser: concurrency,
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
        crate::scenarios::warm_before(
            &browsers,
            concurrency,
            Duration::from_secs(60),
            "the pooled crawl",
        )
        .await?;
        Ok(Warm {
            wasm,
            browsers,
            timeouts,
            setup: t.elapsed(),
        })
    }
}
