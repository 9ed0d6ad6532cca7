//! Parts 1 and 2: the idle footprint and what a page adds, then twenty
//! browsers under load.

use super::*;
use tidepool_pools::controls;

/// What part 1 measured that the limit parts size themselves by.
#[derive(Debug, Clone, Default)]
pub(super) struct Footprint {
    /// The idle PSS of each browser measured, MB.
    pub(super) idle: Vec<f64>,
    /// The median cold launch, ms.
    pub(super) launch_p50_ms: f64,
}

/// Part 1: the idle footprint, and what a page adds.
pub(super) async fn idle_footprint(
    server: &FixtureServer,
    s: &mut MetricSummary,
    variant: Variant,
) -> Result<Footprint> {
    let pool = BrowserPool::new(BrowserPoolConfig {
        min_idle: 0,
        max_size: 3,
        warm_up: 0,
        memory: None,
        ..BrowserPoolConfig::default()
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
            .map_err(|e| Error::task("memory_pressure", e))?;
        // What the policy reads: PSS, or (the control) the summed RSS a
        // policy of some peers reads.
        let reading = match variant {
            Variant::SummedRss => tree.rss_sum_bytes,
            _ => tree.total_bytes,
        };
        idle.push(reading as f64 / MB);
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
            .map_err(|e| Error::task("memory_pressure", e))?;
        per_page.push((with_pages - tree.total_bytes as f64 / MB) / 5.0);
        drop(pages);
        held.push(lease);
    }
    drop(held);
    pool.close().await;
    s.measure("idle_mb", "MB", &idle)?;
    s.measure("idle_rss_sum_mb", "MB", &rss)?;
    s.measure("launch_ms", "ms", &launch)?;
    s.ratio(
        "per_page_mb",
        crate::stats::percentile("per page", &per_page, 0.5)?,
    );
    let launch_p50_ms = crate::stats::percentile("launch", &launch, 0.5)?;
    Ok(Footprint {
        idle,
        launch_p50_ms,
    })
}

/// Part 2: twenty browsers, each leased by a worker loading pages.
pub(super) async fn under_load(
    server: &FixtureServer,
    s: &mut MetricSummary,
    profile: RunProfile,
    variant: Variant,
) -> Result<()> {
    let rounds = profile.scaled(2, 5);
    let (workers_n, max_size, acquire_timeout) = match variant {
        Variant::UndersizedPool => (20, 2, Duration::from_secs(2)),
        Variant::KilledUnderLoad => (3, 3, Duration::from_secs(60)),
        _ => (20, 20, Duration::from_secs(180)),
    };
    let pool = BrowserPool::new(BrowserPoolConfig {
        min_idle: 0,
        max_size,
        warm_up: 0,
        // Twenty Chromiums starting at once on two cores take far longer than
        // one: deadlines sized for that, not for a single browser.
        launch_timeout: Duration::from_secs(120),
        cdp_timeout: Duration::from_secs(60),
        acquire_timeout,
        memory: Some(MemoryPolicy {
            soft_limit_bytes: 1_500_000_000,
            hard_limit_bytes: 2_000_000_000,
            ..MemoryPolicy::default()
        }),
        ..BrowserPoolConfig::default()
    })
    .await?;
    let (acquires, failures) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    // Every worker holds its lease until all have loaded their pages and the
    // peak is measured; then they let go together.
    let loaded = Arc::new(tokio::sync::Barrier::new(workers_n + 1));
    let measured = Arc::new(tokio::sync::Barrier::new(workers_n + 1));
    let workers: Vec<_> = (0..workers_n)
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
    let pids = controls::pids(&pool);
    if variant == Variant::KilledUnderLoad {
        if let Some(&pid) = pids.first() {
            kill_process(pid);
        }
    }
    let peak: f64 = tokio::task::spawn_blocking(move || pids.iter().map(|&p| pss_mb(p)).sum())
        .await
        .map_err(|e| Error::task("memory_pressure", e))?;
    measured.wait().await;
    for w in workers {
        w.await.map_err(|e| Error::task("memory_pressure", e))?;
    }
    // A crash is counted when its lease comes back: let the returns settle.
    pool.wait_until_idle(
        max_size.min(workers_n) - usize::from(variant == Variant::KilledUnderLoad),
        Duration::from_secs(30),
    )
    .await;
    let stats = pool.stats();
    pool.close().await;
    s.count("load_acquires", acquires.load(Ordering::Relaxed));
    s.count("load_failures", failures.load(Ordering::Relaxed));
    s.count("load_crashes", stats.crashed);
    s.ratio(
        "peak_total_pss_mb",
        peak.max(stats.peak_total_pss_bytes as f64 / MB),
    );
    Ok(())
}
