//! Browser memory under pressure, measured as the PSS of each browser's
//! process tree: the idle footprint and the cost of a page; twenty browsers
//! under load; eviction at the hard limit; one warning per crossing of the soft
//! limit; and a leak check over many lease cycles.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{Control, Scenario, ScenarioFuture};
use crate::browser::{
    own_tag_prefix, tagged_processes, BrowserPool, BrowserPoolConfig, MemoryEventKind,
};
use crate::error::{Error, Result};
use crate::memory::{tree_memory, MemoryPolicy};
use crate::profile::RunProfile;
use crate::summary::MetricSummary;
use crate::summary::{FigureSpec, ScenarioSpec};
use crate::testkit::{kill_process, open_fds, FixtureServer};

pub(super) const SCENARIO: Scenario = Scenario {
    spec: ScenarioSpec {
        name: "memory_pressure",
        description: "browser memory (process-tree PSS): 20 browsers under load, hard-limit eviction, soft-limit warnings, leak check",
        figures: &[
            FigureSpec::measurement("idle_mb", "MB"),
            FigureSpec::measurement("idle_rss_sum_mb", "MB"),
            FigureSpec::measurement("launch_ms", "ms"),
            FigureSpec::measurement("recovery_ms", "ms"),
            FigureSpec::ratio("per_page_mb"),
            FigureSpec::ratio("peak_total_pss_mb"),
            FigureSpec::ratio("pss_slope_mb_per_100"),
            FigureSpec::ratio("pss_growth_ratio"),
            FigureSpec::ratio("pss_slope_lower_mb_per_100"),
            FigureSpec::counter("load_acquires"),
            FigureSpec::counter("load_failures"),
            FigureSpec::counter("load_crashes"),
            FigureSpec::counter("hard_evictions").scales(),
            FigureSpec::counter("other_lease_failures"),
            FigureSpec::counter("soft_crossings"),
            FigureSpec::counter("soft_warnings"),
            FigureSpec::counter("soft_evictions"),
            FigureSpec::counter("leak_cycles").scales(),
            FigureSpec::counter("process_delta"),
            FigureSpec::counter("fd_delta").scales(),
        ],
    },
    run: start,
    needs_browser: true,
    controls: CONTROLS,
};

fn start(profile: RunProfile) -> ScenarioFuture {
    Box::pin(run(profile, Variant::Honest))
}

/// The pool and policy the run uses: the real ones, or a bad variant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Variant {
    Honest,
    /// A browser's memory read as the sum of its processes' RSS.
    SummedRss,
    /// Twenty workers on a pool capped at two, with a 2 s acquire timeout.
    UndersizedPool,
    /// One of the loaded browsers killed while its lease is held.
    KilledUnderLoad,
    /// A sampler that reads once an hour: the hard limit is never seen.
    UnsampledHardLimit,
    /// No idle minimum: an evicted browser is replaced only on demand.
    NoReplacement,
    /// A hard limit below a browser's idle footprint.
    HardLimitBelowIdle,
    /// A soft limit judged over 250 samples (50 s), longer than a crossing.
    LongSoftWindow,
    /// A hard limit 1 MB above the soft one: the soft limit evicts.
    SoftAsHard,
    /// A soft-limit tracker without its latch: it warns again on every
    /// sample while the browser hovers over the limit.
    UnlatchedSoftLimit,
    /// A client that leaks a page and a CDP connection per lease cycle.
    LeakingClient,
}

/// The negative controls.
const CONTROLS: &[Control] = &[
    Control {
        name: "summed_rss",
        what: "a browser's memory read as the summed RSS of its processes (shared pages counted in each)",
        rejects: &["pss_below_summed_rss"],
        run: |p| Box::pin(run(p, Variant::SummedRss)),
    },
    Control {
        name: "undersized_pool",
        what: "twenty workers on a pool capped at two browsers, with a 2 s acquire timeout",
        rejects: &["twenty_browsers_all_acquired", "twenty_browsers_no_failures"],
        run: |p| Box::pin(run(p, Variant::UndersizedPool)),
    },
    Control {
        name: "killed_under_load",
        what: "one of the loaded browsers killed (SIGKILL) while its lease is held",
        rejects: &["twenty_browsers_no_crashes"],
        run: |p| Box::pin(run(p, Variant::KilledUnderLoad)),
    },
    Control {
        name: "unsampled_hard_limit",
        what: "a sampler that reads once an hour, so the hard limit is never seen",
        rejects: &["hard_limit_evicts"],
        run: |p| Box::pin(run(p, Variant::UnsampledHardLimit)),
    },
    Control {
        name: "no_replacement",
        what: "a pool without an idle minimum: an evicted browser is replaced only when a lease asks",
        rejects: &["recovery_within_ten_launches"],
        run: |p| Box::pin(run(p, Variant::NoReplacement)),
    },
    Control {
        name: "hard_limit_below_idle",
        what: "a hard limit below a browser's idle footprint, so every browser is evicted",
        rejects: &["bystander_undisturbed"],
        run: |p| Box::pin(run(p, Variant::HardLimitBelowIdle)),
    },
    Control {
        name: "long_soft_window",
        what: "a soft limit judged over 250 samples (50 s), longer than a crossing lasts",
        rejects: &["every_crossing_warned"],
        run: |p| Box::pin(run(p, Variant::LongSoftWindow)),
    },
    Control {
        name: "soft_as_hard",
        what: "a hard limit 1 MB above the soft limit, so crossing the soft limit evicts",
        rejects: &["soft_limit_never_evicts"],
        run: |p| Box::pin(run(p, Variant::SoftAsHard)),
    },
    Control {
        name: "unlatched_soft_limit",
        what: "a soft limit whose warning does not hold until the memory clears: it warns on every sample over the limit",
        rejects: &["one_warning_per_crossing"],
        run: |p| Box::pin(run(p, Variant::UnlatchedSoftLimit)),
    },
    Control {
        name: "leaking_client",
        what: "a client that leaks a page and a CDP connection per lease cycle, and a browser every tenth",
        rejects: &[
            "no_process_leak",
            "no_fd_leak",
            "no_pss_growth",
            "pss_slope_bounded",
        ],
        run: |p| Box::pin(run(p, Variant::LeakingClient)),
    },
];

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

async fn run(profile: RunProfile, variant: Variant) -> Result<MetricSummary> {
    let server = FixtureServer::start().await?;
    let mut s = MetricSummary::new(SCENARIO.spec.name, profile);
    let result = measure(&server, &mut s, profile, variant).await;
    server.shutdown().await;
    result.map(|()| s)
}

async fn measure(
    server: &FixtureServer,
    s: &mut MetricSummary,
    profile: RunProfile,
    variant: Variant,
) -> Result<()> {
    use Variant::*;
    let idle = if matches!(
        variant,
        Honest
            | SummedRss
            | NoReplacement
            | HardLimitBelowIdle
            | LongSoftWindow
            | SoftAsHard
            | UnlatchedSoftLimit
    ) {
        idle_footprint(server, s, variant).await?
    } else {
        Vec::new()
    };
    if matches!(variant, Honest | UndersizedPool | KilledUnderLoad) {
        under_load(server, s, profile, variant).await?;
    }
    if matches!(
        variant,
        Honest | UnsampledHardLimit | NoReplacement | HardLimitBelowIdle
    ) {
        hard_limit(server, s, &idle, variant).await?;
    }
    if matches!(
        variant,
        Honest | LongSoftWindow | SoftAsHard | UnlatchedSoftLimit
    ) {
        soft_limit(server, s, &idle, variant).await?;
    }
    if matches!(variant, Honest | LeakingClient) {
        leak_check(server, s, profile, variant).await?;
    }
    Ok(())
}

/// Part 1: the idle footprint, and what a page adds. Returns the idle PSS of
/// each browser measured, MB.
async fn idle_footprint(
    server: &FixtureServer,
    s: &mut MetricSummary,
    variant: Variant,
) -> Result<Vec<f64>> {
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
            .map_err(task)?;
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
            .map_err(task)?;
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
    Ok(idle)
}

/// Part 2: twenty browsers, each leased by a worker loading pages.
async fn under_load(
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
    let pids = pool.pids();
    if variant == Variant::KilledUnderLoad {
        if let Some(&pid) = pids.first() {
            kill_process(pid);
        }
    }
    let peak: f64 = tokio::task::spawn_blocking(move || pids.iter().map(|&p| pss_mb(p)).sum())
        .await
        .map_err(task)?;
    measured.wait().await;
    for w in workers {
        w.await.map_err(task)?;
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

/// Part 3: the hard limit, set just above the measured idle footprint.
async fn hard_limit(
    server: &FixtureServer,
    s: &mut MetricSummary,
    idle: &[f64],
    variant: Variant,
) -> Result<()> {
    let idle_p50 = crate::stats::percentile("idle", idle, 0.5).unwrap_or(300.0);
    let hard = match variant {
        Variant::HardLimitBelowIdle => ((idle_p50 - 100.0).max(50.0) * MB) as u64,
        _ => ((idle_p50 + 150.0) * MB) as u64,
    };
    let (min_idle, sample_interval) = match variant {
        Variant::UnsampledHardLimit => (2, Duration::from_secs(3600)),
        Variant::NoReplacement => (0, Duration::from_millis(200)),
        _ => (2, Duration::from_millis(200)),
    };
    let pool = BrowserPool::new(BrowserPoolConfig {
        min_idle,
        max_size: 3,
        warm_up: 2,
        memory: Some(MemoryPolicy {
            soft_limit_bytes: hard - 10_000_000,
            hard_limit_bytes: hard,
            sample_interval,
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
                    // One failure is the verdict; its browser is gone.
                    failures.fetch_add(1, Ordering::Relaxed);
                    break;
                }
                i += 1;
            }
            other
        })
    };
    let alloc = server.url("/alloc?mb=40").replace("127.0.0.1", "localhost");
    let mut pages = Vec::new();
    let mut evicted_at = None;
    let evicted = |pool: &BrowserPool| {
        pool.stats().memory_evictions > 0
            || pool
                .memory_events()
                .iter()
                .any(|e| e.kind == MemoryEventKind::Evicted)
    };
    // 30 pages of 40 MB pass any hard limit here; the unsampled control
    // stops at 12 (480 MB, three times the room above idle).
    let attempts = if variant == Variant::UnsampledHardLimit {
        12
    } else {
        30
    };
    for _ in 0..attempts {
        match greedy.new_page(&alloc).await {
            Ok(p) => pages.push(p),
            Err(Error::BrowserEvicted { .. }) => {
                evicted_at = Some(Instant::now());
                break;
            }
            Err(e) if variant == Variant::HardLimitBelowIdle => {
                tracing::debug!(error = %e, "the greedy lease's browser is gone");
                evicted_at = Some(Instant::now());
                break;
            }
            Err(e) => return Err(e),
        }
        if wait_for(Duration::from_millis(400), || evicted(&pool)).await {
            evicted_at = Some(Instant::now());
            break;
        }
    }
    if variant == Variant::HardLimitBelowIdle {
        // Let the bystander run into the eviction of its own browser too.
        wait_for(Duration::from_secs(3), || {
            other_failures.load(Ordering::Relaxed) > 0
        })
        .await;
    }
    let launched_before = pool.stats().launched;
    drop(pages);
    drop(greedy);
    // A failure is returned only after the pool is closed: its browsers and
    // profiles go with it, whatever the verdict.
    let outcome = match evicted_at {
        Some(evicted_at) => {
            // Recovered when the evicted browser is retired and a browser
            // launched after the eviction stands ready; the no-replacement
            // control gives up after 15 s and reports that wait.
            let recovered = wait_for(Duration::from_secs(15), || {
                let st = pool.stats();
                st.memory_evictions >= 1 && st.launched > launched_before && st.idle >= 2
            })
            .await;
            let recovery = ms(evicted_at);
            if !recovered && variant == Variant::Honest {
                Err(Error::Timeout {
                    key: "replacement of the evicted browser".into(),
                    after: Duration::from_secs(15),
                })
            } else {
                s.measure("recovery_ms", "ms", &[recovery]).map(|_| ())
            }
        }
        None if variant == Variant::Honest => Err(Error::config(
            "browser.memory.hard_limit_bytes",
            format!(
                "{} MB was never reached by 30 pages of 40 MB",
                hard / 1_000_000
            ),
        )),
        None => Ok(()),
    };
    stop.store(true, Ordering::Relaxed);
    // The bystander's lease goes back before the pool closes.
    let joined = bystander.await.map(drop).map_err(task);
    s.count("hard_evictions", pool.stats().memory_evictions);
    s.count(
        "other_lease_failures",
        other_failures.load(Ordering::Relaxed),
    );
    pool.close().await;
    outcome?;
    joined?;
    s.note(format!(
        "hard limit {} MB (idle p50 {idle_p50:.0} MB + 150), allocating pages of 40 MB",
        hard / 1_000_000
    ));
    Ok(())
}

/// Part 4: the soft limit, crossed twice, hovering above it each time.
/// Crossings are counted by a watcher of our own, sampling the browser's PSS
/// beside the pool's sampler, not taken from what the scenario attempted.
async fn soft_limit(
    server: &FixtureServer,
    s: &mut MetricSummary,
    idle: &[f64],
    variant: Variant,
) -> Result<()> {
    // Idle footprints differ by ~100 MB between launches; a soft limit below
    // a browser's idle level would never clear. So: above the largest idle
    // footprint measured, crossed by a page of 300 MB.
    let idle_max = idle.iter().copied().fold(0.0, f64::max);
    let soft = ((idle_max + 120.0) * MB) as u64;
    let (hard, window) = match variant {
        Variant::SoftAsHard => (soft + 1_000_000, 5),
        Variant::LongSoftWindow => (soft * 10, 250),
        _ => (soft * 10, 5),
    };
    let pool = BrowserPool::new(BrowserPoolConfig {
        min_idle: 1,
        max_size: 1,
        warm_up: 1,
        memory: Some(MemoryPolicy {
            soft_limit_bytes: soft,
            hard_limit_bytes: hard,
            sample_interval: Duration::from_millis(200),
            window,
            hysteresis_bytes: 20_000_000,
            ..MemoryPolicy::default()
        }),
        ..BrowserPoolConfig::default()
    })
    .await?;
    if variant == Variant::UnlatchedSoftLimit {
        pool.unlatch_soft_limit_for_control();
    }
    let lease = pool.acquire().await?;
    let watcher = lease.pid().map(|pid| {
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let seen = Arc::new(AtomicU64::new(0));
        let (stop2, seen2) = (stop.clone(), seen.clone());
        let clear_below = soft.saturating_sub(20_000_000);
        let task = tokio::task::spawn_blocking(move || {
            let mut above = false;
            while !stop2.load(Ordering::Relaxed) {
                let bytes = tree_memory(pid).total_bytes;
                if !above && bytes > soft {
                    above = true;
                    seen2.fetch_add(1, Ordering::Relaxed);
                } else if above && bytes < clear_below {
                    above = false;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        });
        (stop, seen, task)
    });
    for crossing in 0..2u64 {
        // A page of its own site gets its own renderer, whose exit on close
        // gives the memory back for real.
        let page = match lease
            .new_page(
                &server
                    .url("/alloc?mb=300")
                    .replace("127.0.0.1", "localhost"),
            )
            .await
        {
            Ok(page) => page,
            Err(Error::BrowserEvicted { .. }) if variant == Variant::SoftAsHard => break,
            Err(e) => return Err(e),
        };
        let patience = if variant == Variant::LongSoftWindow {
            Duration::from_secs(4)
        } else {
            Duration::from_secs(10)
        };
        let warned = wait_for(patience, || {
            pool.stats().soft_warnings > crossing || pool.stats().memory_evictions > 0
        })
        .await;
        // Hover over the limit for a while: no second warning may come.
        tokio::time::sleep(Duration::from_secs(2)).await;
        if pool.stats().memory_evictions > 0 {
            break;
        }
        lease
            .call("closing the allocating page", page.close())
            .await?;
        // Without a warning no clearing event comes: the control waits only
        // long enough for the page's memory to go back.
        let cleared = wait_for(
            if warned {
                Duration::from_secs(15)
            } else {
                Duration::from_secs(3)
            },
            || {
                pool.memory_events()
                    .iter()
                    .filter(|e| e.kind == MemoryEventKind::SoftCleared)
                    .count() as u64
                    > crossing
            },
        )
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
    let crossings = match watcher {
        Some((stop, seen, task)) => {
            stop.store(true, Ordering::Relaxed);
            task.await.map_err(task_err)?;
            seen.load(Ordering::Relaxed)
        }
        None => 0,
    };
    let evictions = pool
        .memory_events()
        .iter()
        .filter(|e| e.kind == MemoryEventKind::Evicted)
        .count() as u64;
    s.count("soft_crossings", crossings);
    s.count("soft_warnings", pool.stats().soft_warnings);
    s.count(
        "soft_evictions",
        evictions.max(pool.stats().memory_evictions),
    );
    drop(lease);
    pool.close().await;
    s.note(format!(
        "soft limit for the crossings {} MB (largest idle + 120), crossed by pages of 300 MB; crossings counted by a watcher sampling PSS every 100 ms beside the pool's sampler",
        soft / 1_000_000
    ));
    Ok(())
}

/// Part 5: leak check, lease cycles on a pool of two. With the leaking
/// client, each cycle also opens a page outside the lease's context and a
/// CDP connection, and keeps both.
async fn leak_check(
    server: &FixtureServer,
    s: &mut MetricSummary,
    profile: RunProfile,
    variant: Variant,
) -> Result<()> {
    let cycles = match variant {
        // Four samples of a leak of ~1000 MB per 100 cycles are plenty.
        Variant::LeakingClient => 50,
        _ => profile.scaled(100, 1000),
    };
    let pool = BrowserPool::new(BrowserPoolConfig {
        min_idle: 2,
        max_size: 2,
        warm_up: 2,
        memory: None,
        ..BrowserPoolConfig::default()
    })
    .await?;
    let warmup = 20;
    let measure_pool = |pool: &BrowserPool| {
        let pids = pool.pids();
        pids.iter().map(|&p| pss_mb(p)).sum::<f64>()
    };
    let (mut xs, mut ys) = (Vec::new(), Vec::new());
    let mut baseline = None;
    let (mut leaked, mut abandoned) = (Vec::new(), Vec::new());
    for c in 0..cycles {
        {
            let lease = pool.acquire().await?;
            let page = lease.new_page(&server.url(&format!("/page/{c}"))).await?;
            lease.goto(&server.url(&format!("/page/{}", c + 1))).await?;
            drop(page);
            if variant == Variant::LeakingClient {
                let url = server.url(&format!("/page/{c}"));
                let page = lease
                    .call(
                        "opening a leaked page",
                        lease.browser().new_page(
                            chromiumoxide::cdp::browser_protocol::target::CreateTargetParams::new(
                                url,
                            ),
                        ),
                    )
                    .await?;
                let connection = chromiumoxide::Browser::connect(lease.websocket_url())
                    .await
                    .map_err(|e| Error::config("control", e.to_string()))?;
                leaked.push((page, connection));
                // And every tenth cycle a helper browser it never closes.
                if c % 10 == 0 {
                    let executable = crate::browser::locate_chromium(None)?;
                    let flags: Vec<String> = crate::browser::DEFAULT_FLAGS
                        .iter()
                        .map(|f| f.to_string())
                        .collect();
                    if let Some(left) = super::naive::launch(&executable, &flags)
                        .await?
                        .abandon_for_control()
                    {
                        abandoned.push(left);
                    }
                }
            }
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
    // The leaked connections' handler tasks are never polled: dropping them
    // closes their sockets.
    drop(leaked);
    for (tag, dir) in abandoned {
        crate::browser::clean_up_after_control(tag, dir).await;
    }
    pool.close().await;
    let fit = least_squares(&xs, &ys);
    s.count("leak_cycles", cycles as u64);
    s.count("process_delta", procs_end.abs_diff(procs0) as u64);
    s.count("fd_delta", fds_end.abs_diff(fds0) as u64);
    s.ratio_of("pss_growth_ratio", pss_end, pss0)?;
    s.ratio("pss_slope_mb_per_100", fit.slope * 100.0);
    s.ratio("pss_slope_lower_mb_per_100", fit.lower_95 * 100.0);
    s.note(format!("leak check: {cycles} acquire/new-page/navigate/release cycles on a pool of 2, PSS sampled every 10 after {warmup}; slope {:.1} MB per 100 cycles, 95 % interval {:.1} to {:.1}", fit.slope * 100.0, fit.lower_95 * 100.0, fit.upper_95 * 100.0));
    Ok(())
}

fn task_err(e: tokio::task::JoinError) -> Error {
    task(e)
}

fn task(e: tokio::task::JoinError) -> Error {
    Error::Task {
        what: "memory_pressure".into(),
        message: e.to_string(),
    }
}

/// A least-squares line's slope and its 95 % confidence interval.
#[derive(Debug, Clone, Copy, PartialEq)]
struct SlopeFit {
    slope: f64,
    lower_95: f64,
    upper_95: f64,
}

/// The least-squares slope of `ys` over `xs`, with a 95 % interval from the
/// residuals' spread (Student's t, n - 2 degrees of freedom).
fn least_squares(xs: &[f64], ys: &[f64]) -> SlopeFit {
    let flat = SlopeFit {
        slope: 0.0,
        lower_95: 0.0,
        upper_95: 0.0,
    };
    let n = xs.len() as f64;
    if xs.len() < 3 {
        return flat;
    }
    let (mx, my) = (xs.iter().sum::<f64>() / n, ys.iter().sum::<f64>() / n);
    let sxy: f64 = xs.iter().zip(ys).map(|(x, y)| (x - mx) * (y - my)).sum();
    let sxx: f64 = xs.iter().map(|x| (x - mx) * (x - mx)).sum();
    if sxx == 0.0 {
        return flat;
    }
    let slope = sxy / sxx;
    let residuals: f64 = xs
        .iter()
        .zip(ys)
        .map(|(x, y)| (y - (my + slope * (x - mx))).powi(2))
        .sum();
    let se = (residuals / (n - 2.0) / sxx).sqrt();
    let t = statrs::distribution::StudentsT::new(0.0, 1.0, n - 2.0)
        .map(|d| statrs::distribution::ContinuousCDF::inverse_cdf(&d, 0.975))
        .unwrap_or(f64::INFINITY);
    SlopeFit {
        slope,
        lower_95: slope - t * se,
        upper_95: slope + t * se,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn slope_of_a_line_is_its_gradient_and_noise_widens_its_interval() {
        let xs = [10.0, 20.0, 30.0, 40.0];
        let ys: Vec<f64> = xs.iter().map(|x| 3.0 + 0.5 * x).collect();
        let fit = super::least_squares(&xs, &ys);
        assert!((fit.slope - 0.5).abs() < 1e-12);
        assert!((fit.lower_95 - 0.5).abs() < 1e-9, "{fit:?}");
        let noisy = [8.0, 14.0, 9.0, 22.0];
        let fit = super::least_squares(&xs, &noisy);
        assert!(
            fit.lower_95 < fit.slope && fit.slope < fit.upper_95,
            "{fit:?}"
        );
        // By hand: slope 185 / 500 = 0.37, standard error 0.233024, and
        // t(0.975, 2 degrees of freedom) = 4.302653.
        assert!((fit.slope - 0.37).abs() < 1e-12, "{fit:?}");
        assert!(
            (fit.upper_95 - fit.slope - 4.302653 * 0.233024).abs() < 1e-4,
            "{fit:?}"
        );
    }
}
