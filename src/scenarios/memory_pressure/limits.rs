//! Parts 3 and 4: the hard limit evicts and the pool recovers; the soft
//! limit warns once per crossing and never evicts.

use super::*;
use tidepool_pools::Error as PoolError;

/// Part 3: the hard limit, set just above the measured idle footprint.
pub(super) async fn hard_limit(
    server: &FixtureServer,
    s: &mut MetricSummary,
    footprint: &Footprint,
    variant: Variant,
) -> Result<()> {
    let idle_p50 = crate::stats::percentile("idle", &footprint.idle, 0.5).unwrap_or(300.0);
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
    // stops at 8 (320 MB, twice the room above idle).
    let attempts = if variant == Variant::UnsampledHardLimit {
        8
    } else {
        30
    };
    for _ in 0..attempts {
        match greedy.new_page(&alloc).await {
            Ok(p) => pages.push(p),
            Err(PoolError::BrowserEvicted { .. }) => {
                evicted_at = Some(Instant::now());
                break;
            }
            Err(e) if variant == Variant::HardLimitBelowIdle => {
                tracing::debug!(error = %e, "the greedy lease's browser is gone");
                evicted_at = Some(Instant::now());
                break;
            }
            Err(e) => return Err(e.into()),
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
        // Every browser of this control is evicted, so none ever recovers:
        // its verdict is the bystander's, and waiting would prove nothing.
        Some(_) if variant == Variant::HardLimitBelowIdle => Ok(()),
        Some(evicted_at) => {
            // Recovered when the evicted browser is retired and a browser
            // launched after the eviction stands ready. The no-replacement
            // control gives up once it has waited fifteen cold launches, half
            // again the threshold's ten, and reports that wait.
            let patience = match variant {
                Variant::NoReplacement => {
                    Duration::from_secs_f64((15.0 * footprint.launch_p50_ms / 1e3).clamp(1.0, 15.0))
                }
                _ => Duration::from_secs(15),
            };
            let recovered = wait_for(patience, || {
                let st = pool.stats();
                st.memory_evictions >= 1 && st.launched > launched_before && st.idle >= 2
            })
            .await;
            let recovery = ms(evicted_at);
            if !recovered && variant == Variant::Honest {
                Err(PoolError::Timeout {
                    key: "replacement of the evicted browser".into(),
                    after: patience,
                }
                .into())
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
    let joined = bystander
        .await
        .map(drop)
        .map_err(|e| Error::task("memory_pressure", e));
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

/// Part 4: the soft limit, crossed twice (once by the controls that show
/// their fault at once), hovering above it each time.
/// Crossings are counted by a watcher of our own, sampling the browser's PSS
/// beside the pool's sampler, not taken from what the scenario attempted.
pub(super) async fn soft_limit(
    server: &FixtureServer,
    s: &mut MetricSummary,
    footprint: &Footprint,
    variant: Variant,
) -> Result<()> {
    // Idle footprints differ by ~100 MB between launches; a soft limit below
    // a browser's idle level would never clear. So: above the largest idle
    // footprint measured, crossed by a page of 300 MB.
    let idle_max = footprint.idle.iter().copied().fold(0.0, f64::max);
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
        tidepool_pools::controls::unlatch_soft_limit(&pool);
    }
    let lease = pool.acquire().await?;
    let watcher = lease.pid().map(|pid| {
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let seen = Arc::new(AtomicU64::new(0));
        let above = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (stop2, seen2, above2) = (stop.clone(), seen.clone(), above.clone());
        let clear_below = soft.saturating_sub(20_000_000);
        let task = tokio::task::spawn_blocking(move || {
            while !stop2.load(Ordering::Relaxed) {
                let bytes = tree_memory(pid).total_bytes;
                let was_above = above2.load(Ordering::Relaxed);
                if !was_above && bytes > soft {
                    above2.store(true, Ordering::Relaxed);
                    seen2.fetch_add(1, Ordering::Relaxed);
                } else if was_above && bytes < clear_below {
                    above2.store(false, Ordering::Relaxed);
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        });
        (stop, seen, above, task)
    });
    // The controls that can never warn (a window longer than a crossing) or
    // warn without end (no latch) show it on their first crossing.
    let planned = match variant {
        Variant::LongSoftWindow | Variant::UnlatchedSoftLimit => 1,
        _ => 2u64,
    };
    for crossing in 0..planned {
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
            Err(PoolError::BrowserEvicted { .. }) if variant == Variant::SoftAsHard => break,
            Err(e) => return Err(e.into()),
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
        // The next crossing starts only once the watcher too has seen this
        // one end: otherwise two crossings can merge into one in its eyes,
        // and its count is the thresholds' denominator (it once counted 1
        // where the pool, rightly, warned twice).
        if let Some((_, _, above, _)) = &watcher {
            wait_for(Duration::from_secs(5), || !above.load(Ordering::Relaxed)).await;
        }
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
        Some((stop, seen, _, task)) => {
            stop.store(true, Ordering::Relaxed);
            task.await.map_err(|e| Error::task("memory_pressure", e))?;
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
