//! BrowserPool against launching a browser per page, side by side in one run:
//! time to a page's title (warm lease vs cold launch), acquire latency against
//! launch latency, and throughput of a crawl with concurrent workers.

use std::ops::Range;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{naive, Scenario, ScenarioFuture};
use crate::browser::{locate_chromium, BrowserPool, BrowserPoolConfig, DEFAULT_FLAGS};
use crate::contract::{FigureKind::*, FigureSpec, ScenarioSpec};
use crate::error::{Error, Result};
use crate::profile::RunProfile;
use crate::report::MetricSummary;
use crate::testkit::{leftover_browser_processes, FixtureServer};

pub(super) const SCENARIO: Scenario = Scenario {
    spec: ScenarioSpec {
        name: "browser_pool",
        description: "warm leases from a pre-warmed BrowserPool vs launching Chromium per page",
        figures: &[
            FigureSpec {
                name: "cold_ms",
                kind: Measurement("ms"),
            },
            FigureSpec {
                name: "warm_ms",
                kind: Measurement("ms"),
            },
            FigureSpec {
                name: "launch_ms",
                kind: Measurement("ms"),
            },
            FigureSpec {
                name: "acquire_ms",
                kind: Measurement("ms"),
            },
            FigureSpec {
                name: "pooled_pages_per_s",
                kind: Ratio,
            },
            FigureSpec {
                name: "naive_pages_per_s",
                kind: Ratio,
            },
            FigureSpec {
                name: "crawl_pages",
                kind: Counter,
            },
            FigureSpec {
                name: "crawl_errors",
                kind: Counter,
            },
            FigureSpec {
                name: "browsers_crashed",
                kind: Counter,
            },
            FigureSpec {
                name: "leftover_processes",
                kind: Counter,
            },
        ],
    },
    run: start,
    needs_browser: true,
    controls: CONTROLS,
};

fn start(profile: RunProfile) -> ScenarioFuture {
    Box::pin(run(profile))
}

/// Concurrent workers of the crawl.
const WORKERS: usize = 4;

async fn run(profile: RunProfile) -> Result<MetricSummary> {
    let server = FixtureServer::start().await?;
    let executable = locate_chromium(None)?;
    let flags: Vec<String> = DEFAULT_FLAGS.iter().map(|f| f.to_string()).collect();
    let mut s = MetricSummary::new(SCENARIO.spec.name, profile);

    // Part 1: one page at a time, cold and warm interleaved so both see the
    // same machine. Before each, the pool is let back to warm: this measures
    // time to first navigation from a warm pool, not a saturated one.
    let pool = BrowserPool::new(BrowserPoolConfig {
        min_idle: 2,
        max_size: 3,
        warm_up: 2,
        ..BrowserPoolConfig::default()
    })
    .await?;
    let (mut cold, mut warm, mut launch) = (Vec::new(), Vec::new(), Vec::new());
    let mut errors = 0u64;
    for i in 0..profile.iterations() {
        let url = server.url(&format!("/page/{i}"));
        let expected = format!("Page {i}");
        pool.wait_until_idle(2, Duration::from_secs(30)).await;
        let load = naive::load_page(&executable, &flags, &url, &["document.title"]).await?;
        if load.values != [expected.as_str()] {
            errors += 1;
        }
        s.machine.chromium.get_or_insert(load.product.clone());
        cold.push(ms(load.total));
        launch.push(ms(load.launch));

        pool.wait_until_idle(2, Duration::from_secs(30)).await;
        let t = Instant::now();
        let lease = pool.acquire().await?;
        lease.goto(&url).await?;
        let title: String = lease.evaluate("document.title").await?;
        warm.push(ms(t.elapsed()));
        if title != expected {
            errors += 1;
        }
    }
    let acquire = pool.acquire_latencies_ms();
    let mut crashed = pool.stats().crashed;
    pool.close().await;
    s.measure("cold_ms", "ms", &cold)?;
    s.measure("warm_ms", "ms", &warm)?;
    s.measure("launch_ms", "ms", &launch)?;
    s.measure("acquire_ms", "ms", &acquire)?;

    // Part 2: a crawl with concurrent workers, in rounds that alternate which
    // side goes first, so a slow or busy spell of the machine falls on both.
    let pages = profile.scaled(80, 200);
    let rounds = profile.scaled(2, 5);
    // One browser per worker: on two cores the crawl is CPU-bound, and spare
    // browsers (measured: max_size 6) only add processes competing for it.
    let pool = BrowserPool::new(BrowserPoolConfig {
        min_idle: WORKERS,
        max_size: WORKERS,
        warm_up: WORKERS,
        ..BrowserPoolConfig::default()
    })
    .await?;
    pool.wait_until_idle(WORKERS, Duration::from_secs(60)).await;
    let crawl_errors = Arc::new(AtomicU64::new(errors));
    let side = Side {
        executable: &executable,
        flags: &flags,
        base: server.url("/page/"),
        errors: crawl_errors.clone(),
    };
    let (mut pooled_time, mut naive_time) = (Duration::ZERO, Duration::ZERO);
    for round in 0..rounds {
        let batch = round * pages / rounds..(round + 1) * pages / rounds;
        for pooled_side in [round % 2 == 0, round % 2 == 1] {
            if pooled_side {
                pooled_time += side.pooled(&pool, batch.clone()).await?;
            } else {
                naive_time += side.naive(batch.clone()).await?;
            }
        }
    }
    let pooled_rate = pages as f64 / pooled_time.as_secs_f64();
    let naive_rate = pages as f64 / naive_time.as_secs_f64();
    crashed += pool.stats().crashed;
    pool.close().await;
    server.shutdown().await;

    s.ratio("pooled_pages_per_s", pooled_rate);
    s.ratio("naive_pages_per_s", naive_rate);
    s.count("crawl_pages", pages as u64);
    s.count("crawl_errors", crawl_errors.load(Ordering::SeqCst));
    s.count("browsers_crashed", crashed);
    let leftovers = leftover_browser_processes(Duration::from_secs(3)).await;
    s.count("leftover_processes", leftovers.len() as u64);
    s.note(format!(
        "crawl: {pages} fixture pages in {rounds} rounds alternating which side goes first, {WORKERS} concurrent workers; pool max_size {WORKERS}, its time counted until the last lease is recycled; naive launches a browser per page"
    ));
    Ok(s)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// What both sides of the crawl share.
struct Side<'a> {
    executable: &'a std::path::Path,
    flags: &'a [String],
    base: String,
    errors: Arc<AtomicU64>,
}

impl Side<'_> {
    /// Crawls `pages` with a lease per page; the time runs until the pool has
    /// recycled the last lease, so no work of these pages is left uncounted.
    async fn pooled(&self, pool: &BrowserPool, pages: Range<usize>) -> Result<Duration> {
        let next = Arc::new(AtomicUsize::new(pages.start));
        let t = Instant::now();
        let workers: Vec<_> = (0..WORKERS)
            .map(|_| {
                let (pool, next, errs) = (pool.clone(), next.clone(), self.errors.clone());
                let (base, end) = (self.base.clone(), pages.end);
                tokio::spawn(async move {
                    while let Some(i) = claim(&next, end) {
                        let ok = async {
                            let lease = pool.acquire().await?;
                            lease.goto(&format!("{base}{i}")).await?;
                            lease.evaluate::<String>("document.title").await
                        }
                        .await;
                        if !matches!(ok, Ok(ref title) if *title == format!("Page {i}")) {
                            tracing::warn!(page = i, result = ?ok, "pooled crawl page failed");
                            errs.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                })
            })
            .collect();
        join_workers(workers).await?;
        pool.wait_until_idle(WORKERS, Duration::from_secs(60)).await;
        Ok(t.elapsed())
    }

    /// Crawls `pages` launching a browser per page.
    async fn naive(&self, pages: Range<usize>) -> Result<Duration> {
        let next = Arc::new(AtomicUsize::new(pages.start));
        let t = Instant::now();
        let workers: Vec<_> = (0..WORKERS)
            .map(|_| {
                let (next, errs) = (next.clone(), self.errors.clone());
                let (exe, flags) = (self.executable.to_path_buf(), self.flags.to_vec());
                let (base, end) = (self.base.clone(), pages.end);
                tokio::spawn(async move {
                    while let Some(i) = claim(&next, end) {
                        let ok = naive::load_page(&exe, &flags, &format!("{base}{i}"), &["document.title"]).await;
                        if !matches!(ok, Ok(ref load) if load.values == [format!("Page {i}")]) {
                            tracing::warn!(page = i, result = ?ok.map(|l| l.values), "naive crawl page failed");
                            errs.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                })
            })
            .collect();
        join_workers(workers).await?;
        Ok(t.elapsed())
    }
}

/// The next page below `end`, if any.
fn claim(next: &AtomicUsize, end: usize) -> Option<usize> {
    let i = next.fetch_add(1, Ordering::SeqCst);
    (i < end).then_some(i)
}

async fn join_workers(workers: Vec<tokio::task::JoinHandle<()>>) -> Result<()> {
    for w in workers {
        w.await.map_err(|e| Error::Task {
            what: "crawl worker".into(),
            message: e.to_string(),
        })?;
    }
    Ok(())
}

/// Its negative controls (see [`super::control`]).
const CONTROLS: &[super::Control] = &[];
