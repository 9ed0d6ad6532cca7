//! Browser memory under pressure, measured as the PSS of each browser's
//! process tree: the idle footprint and the cost of a page; twenty browsers
//! under load; eviction at the hard limit; one warning per crossing of the soft
//! limit; and a leak check over many lease cycles.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{Scenario, ScenarioFuture};
use crate::browser::{
    own_tag_prefix, tagged_processes, BrowserPool, BrowserPoolConfig, MemoryEventKind,
};
use crate::contract::{FigureKind::*, FigureSpec, ScenarioSpec};
use crate::error::{Error, Result};
use crate::memory::{tree_memory, MemoryPolicy};
use crate::profile::RunProfile;
use crate::report::MetricSummary;
use crate::testkit::{open_fds, FixtureServer};

pub(super) const SCENARIO: Scenario = Scenario {
    spec: ScenarioSpec {
        name: "memory_pressure",
        description: "browser memory (process-tree PSS): 20 browsers under load, hard-limit eviction, soft-limit warnings, leak check",
        figures: &[
            FigureSpec { name: "idle_mb", kind: Measurement("MB") },
            FigureSpec { name: "idle_rss_sum_mb", kind: Measurement("MB") },
            FigureSpec { name: "launch_ms", kind: Measurement("ms") },
            FigureSpec { name: "recovery_ms", kind: Measurement("ms") },
            FigureSpec { name: "per_page_mb", kind: Ratio },
            FigureSpec { name: "peak_total_pss_mb", kind: Ratio },
            FigureSpec { name: "pss_slope_mb_per_100", kind: Ratio },
            FigureSpec { name: "pss_growth_ratio", kind: Ratio },
            FigureSpec { name: "load_acquires", kind: Counter },
            FigureSpec { name: "load_failures", kind: Counter },
            FigureSpec { name: "load_crashes", kind: Counter },
            FigureSpec { name: "hard_evictions", kind: Counter },
            FigureSpec { name: "other_lease_failures", kind: Counter },
            FigureSpec { name: "soft_crossings", kind: Counter },
            FigureSpec { name: "soft_warnings", kind: Counter },
            FigureSpec { name: "soft_evictions", kind: Counter },
            FigureSpec { name: "leak_cycles", kind: Counter },
            FigureSpec { name: "process_delta", kind: Counter },
            FigureSpec { name: "fd_delta", kind: Counter },
        ],
    },
    run: start,
    needs_browser: true,
    controls: CONTROLS,
};

fn start(profile: RunProfile) -> ScenarioFuture {
    Box::pin(run(profile))
}

const MB: f64 = 1e6;

fn ms(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1e3
}

/// Waits (polling the pool's sampler, which runs on its own clock) until
/// `done` holds or `timeout` passes; returns whether it held.
async fn wait_for(timeout: Duration, mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    while !done() {
        if Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    true
}

fn pss_mb(pid: u32) -> f64 {
    tree_memory(pid).total_bytes as f64 / MB
}

async fn run(profile: RunProfile) -> Result<MetricSummary> {
    let server = FixtureServer::start().await?;
    let mut s = MetricSummary::new(SCENARIO.spec.name, profile);
    let no_limits = BrowserPoolConfig {
        memory: None,
        ..BrowserPoolConfig::default()
    };

    // 1. The idle footprint, and what a page adds.
    let pool = BrowserPool::new(BrowserPoolConfig {
        min_idle: 0,
        max_size: 3,
        warm_up: 0,
        ..no_limits.clone()
    })
    .await?;
    let (mut idle, mut rss, mut launch) = (Vec::new(), Vec::new(), Vec::new());
    let mut per_page = Vec::new();
    // Each lease is held until the part ends, so each measurement is of a
    // freshly launched browser.
    let mut held = Vec::new();
    for _ in 0..3 {
        let t = Instant::now();
        let lease = pool.acquire().await?;
        launch.push(ms(t));
        let pid = lease.pid().ok_or_else(|| {
            Error::config("browser.source", "memory_pressure needs launched browsers")
        })?;
        lease.goto(&server.url("/page/1")).await?;
        let tree = tokio::task::spawn_blocking(move || tree_memory(pid))
            .await
            .map_err(task)?;
        idle.push(tree.total_bytes as f64 / MB);
        rss.push(tree.rss_sum_bytes as f64 / MB);
        let mut pages = Vec::new();
        for i in 0..5 {
            pages.push(
                lease
                    .new_page(&server.url(&format!("/page/{}", 10 + i)))
                    .await?,
            );
        }
        let with_pages = tokio::task::spawn_blocking(move || pss_mb(pid))
            .await
            .map_err(task)?;
        per_page.push((with_pages - tree.total_bytes as f64 / MB) / 5.0);
        drop(pages);
        held.push(lease);
    }
    drop(held);
    pool.close().await;
    let idle_p50 = s.measure("idle_mb", "MB", &idle)?.p50;
    s.measure("idle_rss_sum_mb", "MB", &rss)?;
    s.measure("launch_ms", "ms", &launch)?;
    s.ratio(
        "per_page_mb",
        crate::stats::percentile("per page", &per_page, 0.5)?,
    );

    // 2. Twenty browsers, each leased by a worker loading pages.
    let rounds = profile.scaled(2, 5);
    let pool = BrowserPool::new(BrowserPoolConfig {
        min_idle: 0,
        max_size: 20,
        warm_up: 0,
        // Twenty Chromiums starting at once on two cores take far longer than
        // one: deadlines sized for that, not for a single browser.
        launch_timeout: Duration::from_secs(120),
        cdp_timeout: Duration::from_secs(60),
        acquire_timeout: Duration::from_secs(180),
        memory: Some(MemoryPolicy {
            soft_limit_bytes: 1_500_000_000,
            hard_limit_bytes: 2_000_000_000,
            ..MemoryPolicy::default()
        }),
        ..BrowserPoolConfig::default()
    })
    .await?;
    let (acquires, failures) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    // Every worker holds its lease until all twenty have loaded their pages
    // and the peak is measured; then they let go together.
    let loaded = Arc::new(tokio::sync::Barrier::new(21));
    let measured = Arc::new(tokio::sync::Barrier::new(21));
    let workers: Vec<_> = (0..20)
        .map(|w| {
            let (pool, acquires, failures, base) = (
                pool.clone(),
                acquires.clone(),
                failures.clone(),
                server.url("/page/"),
            );
            let (loaded, measured) = (loaded.clone(), measured.clone());
            tokio::spawn(async move {
                let lease = match pool.acquire().await {
                    Ok(l) => Some(l),
                    Err(e) => {
                        tracing::warn!(worker = w, error = %e, "acquire failed under load");
                        failures.fetch_add(1, Ordering::Relaxed);
                        None
                    }
                };
                if let Some(lease) = &lease {
                    acquires.fetch_add(1, Ordering::Relaxed);
                    for r in 0..rounds {
                        if let Err(e) = lease.goto(&format!("{base}{}", w * 100 + r)).await {
                            tracing::warn!(worker = w, error = %e, "page load failed under load");
                            failures.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
                loaded.wait().await;
                measured.wait().await;
                drop(lease);
            })
        })
        .collect();
    loaded.wait().await;
    let pids = pool.pids();
    let peak: f64 = tokio::task::spawn_blocking(move || pids.iter().map(|&p| pss_mb(p)).sum())
        .await
        .map_err(task)?;
    measured.wait().await;
    for w in workers {
        w.await.map_err(task)?;
    }
    let stats = pool.stats();
    pool.close().await;
    s.count("load_acquires", acquires.load(Ordering::Relaxed));
    s.count("load_failures", failures.load(Ordering::Relaxed));
    s.count("load_crashes", stats.crashed);
    s.ratio(
        "peak_total_pss_mb",
        peak.max(stats.peak_total_pss_bytes as f64 / MB),
    );

    // 3. The hard limit, set just above the measured idle footprint.
    let hard = ((idle_p50 + 150.0) * MB) as u64;
    let pool = BrowserPool::new(BrowserPoolConfig {
        min_idle: 2,
        max_size: 3,
        warm_up: 2,
        memory: Some(MemoryPolicy {
            soft_limit_bytes: hard - 10_000_000,
            hard_limit_bytes: hard,
            sample_interval: Duration::from_millis(200),
            ..MemoryPolicy::default()
        }),
        ..BrowserPoolConfig::default()
    })
    .await?;
    let greedy = pool.acquire().await?;
    let other = pool.acquire().await?;
    let other_failures = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let bystander = {
        let (failures, stop, base) = (other_failures.clone(), stop.clone(), server.url("/page/"));
        tokio::spawn(async move {
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) {
                if other.goto(&format!("{base}{i}")).await.is_err() {
                    failures.fetch_add(1, Ordering::Relaxed);
                }
                i += 1;
            }
            other
        })
    };
    let alloc = server.url("/alloc?mb=40").replace("127.0.0.1", "localhost");
    let mut pages = Vec::new();
    let mut evicted_at = None;
    for _ in 0..30 {
        match greedy.new_page(&alloc).await {
            Ok(p) => pages.push(p),
            Err(Error::BrowserEvicted { .. }) => {
                evicted_at = Some(Instant::now());
                break;
            }
            Err(e) => return Err(e),
        }
        if wait_for(Duration::from_millis(400), || {
            pool.stats().memory_evictions > 0
                || !pool
                    .memory_events()
                    .iter()
                    .all(|e| e.kind != MemoryEventKind::Evicted)
        })
        .await
        {
            evicted_at = Some(Instant::now());
            break;
        }
    }
    let evicted_at = evicted_at.ok_or_else(|| {
        Error::config(
            "browser.memory.hard_limit_bytes",
            format!(
                "{} MB was never reached by 30 pages of 40 MB",
                hard / 1_000_000
            ),
        )
    })?;
    let launched_before = pool.stats().launched;
    drop(pages);
    drop(greedy);
    // Recovered when the evicted browser is retired and a browser launched
    // after the eviction stands ready.
    let recovered = wait_for(Duration::from_secs(30), || {
        let st = pool.stats();
        st.memory_evictions >= 1 && st.launched > launched_before && st.idle >= 2
    })
    .await;
    let recovery = ms(evicted_at);
    if !recovered {
        return Err(Error::Timeout {
            key: "replacement of the evicted browser".into(),
            after: Duration::from_secs(30),
        });
    }
    stop.store(true, Ordering::Relaxed);
    drop(bystander.await.map_err(task)?);
    s.measure("recovery_ms", "ms", &[recovery])?;
    s.count("hard_evictions", pool.stats().memory_evictions);
    s.count(
        "other_lease_failures",
        other_failures.load(Ordering::Relaxed),
    );
    pool.close().await;

    // 4. The soft limit, crossed twice, hovering above it each time.
    // Idle footprints differ by ~100 MB between launches; a soft limit below
    // a browser's idle level would never clear. So: above the largest idle
    // footprint measured, crossed by a page of 300 MB.
    let idle_max = idle.iter().copied().fold(0.0, f64::max);
    let soft = ((idle_max + 120.0) * MB) as u64;
    let pool = BrowserPool::new(BrowserPoolConfig {
        min_idle: 1,
        max_size: 1,
        warm_up: 1,
        memory: Some(MemoryPolicy {
            soft_limit_bytes: soft,
            hard_limit_bytes: soft * 10,
            sample_interval: Duration::from_millis(200),
            window: 5,
            hysteresis_bytes: 20_000_000,
            ..MemoryPolicy::default()
        }),
        ..BrowserPoolConfig::default()
    })
    .await?;
    let lease = pool.acquire().await?;
    let crossings = 2;
    for crossing in 0..crossings {
        // A page of its own site gets its own renderer, whose exit on close
        // gives the memory back for real.
        let page = lease
            .new_page(
                &server
                    .url("/alloc?mb=300")
                    .replace("127.0.0.1", "localhost"),
            )
            .await?;
        let warned = wait_for(Duration::from_secs(10), || {
            pool.stats().soft_warnings > crossing
        })
        .await;
        // Hover over the limit for a while: no second warning may come.
        tokio::time::sleep(Duration::from_secs(2)).await;
        lease
            .call("closing the allocating page", page.close())
            .await?;
        let cleared = wait_for(Duration::from_secs(15), || {
            pool.memory_events()
                .iter()
                .filter(|e| e.kind == MemoryEventKind::SoftCleared)
                .count() as u64
                > crossing
        })
        .await;
        if !(warned && cleared) {
            tracing::warn!(
                crossing,
                warned,
                cleared,
                "soft-limit crossing not seen through"
            );
        }
    }
    s.count("soft_crossings", crossings);
    s.count("soft_warnings", pool.stats().soft_warnings);
    s.count("soft_evictions", pool.stats().memory_evictions);
    drop(lease);
    pool.close().await;

    // 5. Leak check: lease cycles on a pool of two.
    let cycles = profile.scaled(100, 1000);
    let pool = BrowserPool::new(BrowserPoolConfig {
        min_idle: 2,
        max_size: 2,
        warm_up: 2,
        ..no_limits
    })
    .await?;
    let warmup = 20;
    let measure_pool = |pool: &BrowserPool| {
        let pids = pool.pids();
        pids.iter().map(|&p| pss_mb(p)).sum::<f64>()
    };
    let (mut xs, mut ys) = (Vec::new(), Vec::new());
    let mut baseline = None;
    for c in 0..cycles {
        {
            let lease = pool.acquire().await?;
            let page = lease.new_page(&server.url(&format!("/page/{c}"))).await?;
            lease.goto(&server.url(&format!("/page/{}", c + 1))).await?;
            drop(page);
        }
        if c + 1 == warmup || (c + 1) % 10 == 0 {
            pool.wait_until_idle(2, Duration::from_secs(30)).await;
            let pool2 = pool.clone();
            let pss = tokio::task::spawn_blocking(move || measure_pool(&pool2))
                .await
                .map_err(task)?;
            if c + 1 == warmup {
                let procs = tagged_processes(&own_tag_prefix()).len();
                baseline = Some((procs, open_fds(), pss));
            }
            if c + 1 >= warmup {
                xs.push((c + 1) as f64);
                ys.push(pss);
            }
        }
    }
    pool.wait_until_idle(2, Duration::from_secs(30)).await;
    let (procs0, fds0, pss0) = baseline.unwrap_or((0, 0, 0.0));
    let pool2 = pool.clone();
    let pss_end = tokio::task::spawn_blocking(move || measure_pool(&pool2))
        .await
        .map_err(task)?;
    let procs_end = tagged_processes(&own_tag_prefix()).len();
    let fds_end = open_fds();
    pool.close().await;
    s.count("leak_cycles", cycles as u64);
    s.count("process_delta", procs_end.abs_diff(procs0) as u64);
    s.count("fd_delta", fds_end.abs_diff(fds0) as u64);
    s.ratio_of("pss_growth_ratio", pss_end, pss0)?;
    s.ratio(
        "pss_slope_mb_per_100",
        least_squares_slope(&xs, &ys) * 100.0,
    );

    server.shutdown().await;
    s.note(format!(
        "hard limit {} MB (idle p50 {idle_p50:.0} MB + 150), soft limit for the crossings {} MB (largest idle + 120); allocating pages of 40 and 300 MB",
        hard / 1_000_000,
        soft / 1_000_000
    ));
    s.note(format!("leak check: {cycles} acquire/new-page/navigate/release cycles on a pool of 2, PSS sampled every 10 after {warmup}"));
    Ok(s)
}

fn task(e: tokio::task::JoinError) -> Error {
    Error::Task {
        what: "memory_pressure".into(),
        message: e.to_string(),
    }
}

/// The least-squares slope of `ys` over `xs`.
fn least_squares_slope(xs: &[f64], ys: &[f64]) -> f64 {
    let n = xs.len() as f64;
    if xs.len() < 2 {
        return 0.0;
    }
    let (mx, my) = (xs.iter().sum::<f64>() / n, ys.iter().sum::<f64>() / n);
    let sxy: f64 = xs.iter().zip(ys).map(|(x, y)| (x - mx) * (y - my)).sum();
    let sxx: f64 = xs.iter().map(|x| (x - mx) * (x - mx)).sum();
    if sxx == 0.0 {
        0.0
    } else {
        sxy / sxx
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn slope_of_a_line_is_its_gradient() {
        let xs = [10.0, 20.0, 30.0, 40.0];
        let ys: Vec<f64> = xs.iter().map(|x| 3.0 + 0.5 * x).collect();
        assert!((super::least_squares_slope(&xs, &ys) - 0.5).abs() < 1e-12);
    }
}

/// Its negative controls (see [`super::control`]).
const CONTROLS: &[super::Control] = &[];
