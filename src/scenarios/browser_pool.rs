//! BrowserPool against launching a browser per page, side by side in one run:
//! time to a page's title (warm lease vs cold launch), acquire latency against
//! launch latency, and throughput of a crawl with concurrent workers.

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
        let load = naive::load_page(&executable, &flags, &url, "document.title").await?;
        if load.value != expected {
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

    // Part 2: a crawl with concurrent workers, pooled then naive.
    let pages = profile.scaled(40, 200);
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
    let next = Arc::new(AtomicUsize::new(0));
    let t = Instant::now();
    let workers: Vec<_> = (0..WORKERS)
        .map(|_| {
            let (pool, next, errs) = (pool.clone(), next.clone(), crawl_errors.clone());
            let base = server.url("/page/");
            tokio::spawn(async move {
                while let Some(i) = claim(&next, pages) {
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
    let pooled_rate = pages as f64 / t.elapsed().as_secs_f64();
    crashed += pool.stats().crashed;
    pool.close().await;

    next.store(0, Ordering::SeqCst);
    let t = Instant::now();
    let workers: Vec<_> = (0..WORKERS)
        .map(|_| {
            let (next, errs) = (next.clone(), crawl_errors.clone());
            let (exe, flags, base) = (executable.clone(), flags.clone(), server.url("/page/"));
            tokio::spawn(async move {
                while let Some(i) = claim(&next, pages) {
                    let ok = naive::load_page(&exe, &flags, &format!("{base}{i}"), "document.title").await;
                    if !matches!(ok, Ok(ref load) if load.value == format!("Page {i}")) {
                        tracing::warn!(page = i, result = ?ok.map(|l| l.value), "naive crawl page failed");
                        errs.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
        })
        .collect();
    join_workers(workers).await?;
    let naive_rate = pages as f64 / t.elapsed().as_secs_f64();
    server.shutdown().await;

    s.ratio("pooled_pages_per_s", pooled_rate);
    s.ratio("naive_pages_per_s", naive_rate);
    s.count("crawl_pages", pages as u64);
    s.count("crawl_errors", crawl_errors.load(Ordering::SeqCst));
    s.count("browsers_crashed", crashed);
    let leftovers = leftover_browser_processes(Duration::from_secs(3)).await;
    s.count("leftover_processes", leftovers.len() as u64);
    s.note(format!(
        "crawl: {pages} fixture pages, {WORKERS} concurrent workers; pool max_size {WORKERS}; naive launches a browser per page"
    ));
    Ok(s)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn claim(next: &AtomicUsize, pages: usize) -> Option<usize> {
    let i = next.fetch_add(1, Ordering::SeqCst);
    (i < pages).then_some(i)
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
