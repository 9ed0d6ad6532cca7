//! BrowserPool against launching a browser per page, side by side in one run:
//! time to a page's title (warm lease vs cold launch), acquire latency against
//! launch latency, and throughput of a crawl with concurrent workers.

use std::ops::Range;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tidepool_pools::controls;

use super::{naive, Control, Scenario, ScenarioFuture};
use crate::browser::{locate_chromium, BrowserPool, BrowserPoolConfig, DEFAULT_FLAGS};
use crate::error::{Error, Result};
use crate::profile::RunProfile;
use crate::summary::MetricSummary;
use crate::summary::{FigureSpec, ScenarioSpec};
use crate::testkit::{kill_process, leftover_browser_processes, FixtureServer};
use tidepool_pools::Error as PoolError;

pub(super) const SCENARIO: Scenario = Scenario {
    spec: ScenarioSpec {
        name: "browser_pool",
        description: "warm leases from a pre-warmed BrowserPool vs launching Chromium per page",
        figures: &[
            FigureSpec::measurement("cold_ms", "ms"),
            FigureSpec::measurement("warm_ms", "ms"),
            FigureSpec::measurement("launch_ms", "ms"),
            FigureSpec::measurement("acquire_ms", "ms"),
            FigureSpec::ratio("pooled_pages_per_s"),
            FigureSpec::ratio("naive_pages_per_s"),
            FigureSpec::counter("crawl_pages").scales(),
            FigureSpec::counter("crawl_errors"),
            FigureSpec::counter("browsers_crashed"),
            FigureSpec::counter("leftover_processes"),
        ],
    },
    run: start,
    needs_browser: true,
    controls: CONTROLS,
};

fn start(profile: RunProfile) -> ScenarioFuture {
    Box::pin(run(profile, Variant::Honest))
}

/// The pool the run uses: the real one, or a bad variant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Variant {
    Honest,
    /// No idle browsers kept, none warmed up, each browser retired after one lease.
    LaunchPerLease,
    /// Browsers retired after one lease in the crawl.
    SingleUseBrowsers,
    /// Every crawl worker drives the one page of a single shared lease.
    SharedLease,
    /// One of the crawl's browsers is killed mid-crawl.
    KilledBrowser,
    /// A shutdown that drops the browser without closing, killing or reaping it.
    AbandonedBrowser,
}

/// The negative controls.
const CONTROLS: &[Control] = &[
    Control {
        name: "launch_per_lease",
        what: "a pool that keeps nothing warm: no idle minimum, no warm-up, each browser retired after one lease",
        rejects: &["warm_beats_cold", "acquire_is_nearly_free"],
        run: |p| Box::pin(run(p, Variant::LaunchPerLease)),
    },
    Control {
        name: "single_use_browsers",
        what: "a crawl pool whose browsers are retired after one lease (max_uses 1)",
        rejects: &["pooled_crawl_throughput"],
        run: |p| Box::pin(run(p, Variant::SingleUseBrowsers)),
    },
    Control {
        name: "shared_lease",
        what: "a pool that hands every worker the same lease and page",
        rejects: &["no_crawl_errors"],
        run: |p| Box::pin(run(p, Variant::SharedLease)),
    },
    Control {
        name: "killed_browser",
        what: "one of the crawl's browsers killed (SIGKILL) mid-crawl",
        rejects: &["no_crashes"],
        run: |p| Box::pin(run(p, Variant::KilledBrowser)),
    },
    Control {
        name: "abandoned_browser",
        what: "a shutdown that drops the browser without closing, killing or reaping it (chromiumoxide #50)",
        rejects: &["no_leftover_processes"],
        run: |p| Box::pin(run(p, Variant::AbandonedBrowser)),
    },
];

/// Concurrent workers of the crawl.
const WORKERS: usize = 4;

async fn run(profile: RunProfile, variant: Variant) -> Result<MetricSummary> {
    let server = FixtureServer::start().await?;
    let executable = locate_chromium(None)?;
    let flags: Vec<String> = DEFAULT_FLAGS.iter().map(|f| f.to_string()).collect();
    let mut s = MetricSummary::new(SCENARIO.spec.name, profile);
    let errors = Arc::new(AtomicU64::new(0));
    let mut crashed = 0;
    let run = Run {
        server: &server,
        executable: &executable,
        flags: &flags,
        profile,
        variant,
        errors: &errors,
    };
    if matches!(variant, Variant::Honest | Variant::LaunchPerLease) {
        crashed += one_at_a_time(&run, &mut s).await?;
    }
    if matches!(
        variant,
        Variant::Honest
            | Variant::SingleUseBrowsers
            | Variant::SharedLease
            | Variant::KilledBrowser
    ) {
        crashed += crawl(&run, &mut s).await?;
        s.count("crawl_errors", errors.load(Ordering::SeqCst));
        s.count("browsers_crashed", crashed);
    }
    if variant == Variant::AbandonedBrowser {
        let instance = naive::launch(&executable, &flags).await?;
        let left = instance.abandon();
        s.count("leftover_processes", leftovers().await);
        if let Some(left) = left {
            left.clean_up().await;
        }
    }
    server.shutdown().await;
    if variant == Variant::Honest {
        s.count("leftover_processes", leftovers().await);
    }
    Ok(s)
}

/// What every part of a run shares.
#[derive(Clone, Copy)]
struct Run<'a> {
    server: &'a FixtureServer,
    executable: &'a std::path::Path,
    flags: &'a [String],
    profile: RunProfile,
    variant: Variant,
    errors: &'a Arc<AtomicU64>,
}

/// Live processes of browsers this process launched, through two lenses: the
/// environment tag the cleanup itself uses, and any command line naming one
/// of our profile directories. Both are counted, once per process.
async fn leftovers() -> u64 {
    let tagged = leftover_browser_processes(Duration::from_secs(3)).await;
    let named = tokio::task::spawn_blocking(crate::testkit::processes_naming_own_profiles)
        .await
        .unwrap_or_default();
    if !named.is_empty() {
        tracing::warn!(?named, "processes still naming our browser profiles");
    }
    let mut pids: Vec<u32> = tagged.iter().chain(&named).map(|(p, _)| *p).collect();
    pids.sort_unstable();
    pids.dedup();
    pids.len() as u64
}

/// Part 1: one page at a time, cold and warm interleaved so both see the
/// same machine. Before each, the pool is let back to warm: this measures
/// time to first navigation from a warm pool, not a saturated one. Returns
/// the browsers that crashed.
async fn one_at_a_time(run: &Run<'_>, s: &mut MetricSummary) -> Result<u64> {
    let Run {
        server,
        executable,
        flags,
        profile,
        variant,
        errors,
    } = *run;
    let (config, idle) = match variant {
        Variant::LaunchPerLease => (
            BrowserPoolConfig {
                min_idle: 0,
                max_size: 3,
                warm_up: 0,
                max_uses: Some(1),
                ..BrowserPoolConfig::default()
            },
            0,
        ),
        _ => (
            BrowserPoolConfig {
                min_idle: 2,
                max_size: 3,
                warm_up: 2,
                ..BrowserPoolConfig::default()
            },
            2,
        ),
    };
    let pool = BrowserPool::new(config).await?;
    let (mut cold, mut warm, mut launch) = (Vec::new(), Vec::new(), Vec::new());
    let mut acquire = Vec::new();
    // Ten pairs at quick size: warm/cold reads 0.08 against a limit of
    // 0.35 and acquire/launch 0.0004 against 0.02, so ten p50s and p95s
    // decide them as surely as twenty (make test's time goes to launches).
    for i in 0..profile.scaled(10, 100) {
        let url = server.url(&format!("/page/{i}"));
        let expected = format!("Page {i}");
        // Quiet before the naive side is timed: no warm-up competes with it.
        super::warm_before(&pool, idle, Duration::from_secs(30), "a cold load").await?;
        let load = naive::load_page(executable, flags, &url, &["document.title"]).await?;
        if load.values != [expected.as_str()] {
            errors.fetch_add(1, Ordering::Relaxed);
        }
        s.machine.chromium.get_or_insert(load.product.clone());
        cold.push(ms(load.total));
        launch.push(ms(load.launch));

        super::warm_before(&pool, idle, Duration::from_secs(30), "a warm acquire").await?;
        let t = Instant::now();
        let lease = pool.acquire().await?;
        acquire.push(ms(t.elapsed()));
        lease.goto(&url).await?;
        let title: String = lease.evaluate("document.title").await?;
        warm.push(ms(t.elapsed()));
        if title != expected {
            errors.fetch_add(1, Ordering::Relaxed);
        }
    }
    // Every dropped lease's recycling done first: a crash is counted there.
    if !controls::settle(&pool, Duration::from_secs(30)).await {
        return Err(PoolError::Timeout {
            key: "the browser pool settling before its crash count".into(),
            after: Duration::from_secs(30),
        }
        .into());
    }
    let crashed = pool.stats().crashed;
    pool.close().await;
    s.measure("cold_ms", "ms", &cold)?;
    s.measure("warm_ms", "ms", &warm)?;
    s.measure("launch_ms", "ms", &launch)?;
    s.measure("acquire_ms", "ms", &acquire)?;
    Ok(crashed)
}

/// Part 2: a crawl with concurrent workers, in rounds that alternate which
/// side goes first, so a slow or busy spell of the machine falls on both.
/// Returns the browsers that crashed.
async fn crawl(run: &Run<'_>, s: &mut MetricSummary) -> Result<u64> {
    let Run {
        server,
        executable,
        flags,
        profile,
        variant,
        errors,
    } = *run;
    let (pages, rounds) = match variant {
        // At 80 pages in 2 rounds one run's ratio spread with sd 0.22 about
        // 3.5 (16 runs), and CI read 2.93 against the limit of 3: half as
        // many pages and rounds again narrow the spread by about a fifth.
        Variant::Honest => (profile.scaled(120, 200), profile.scaled(3, 5)),
        // A control's crawl only has to show its figure on the wrong side: a
        // launch per page on both sides reads about 1x against 3x in 8 pages.
        Variant::SingleUseBrowsers => (profile.scaled(8, 40), 2),
        _ => (profile.scaled(16, 40), 2),
    };
    // One browser per worker: on two cores the crawl is CPU-bound, and spare
    // browsers (measured: max_size 6) only add processes competing for it.
    let pool = BrowserPool::new(BrowserPoolConfig {
        min_idle: WORKERS,
        max_size: WORKERS,
        warm_up: WORKERS,
        max_uses: (variant == Variant::SingleUseBrowsers).then_some(1),
        ..BrowserPoolConfig::default()
    })
    .await?;
    super::warm_before(&pool, WORKERS, Duration::from_secs(60), "the crawl").await?;
    let side = Side {
        executable,
        flags,
        base: server.url("/page/"),
        errors: errors.clone(),
        variant,
    };
    // At quick size the naive side crawls the first half of each round's
    // pages: both rates are pages per second of the same pages and workers,
    // and a launch per page made this make test's longest wait (60 s).
    let naive_share = if profile.depth == crate::profile::Depth::Quick {
        2
    } else {
        1
    };
    let (mut pooled_time, mut naive_time, mut naive_pages) = (Duration::ZERO, Duration::ZERO, 0);
    for round in 0..rounds {
        let batch = round * pages / rounds..(round + 1) * pages / rounds;
        for pooled_side in [round % 2 == 0, round % 2 == 1] {
            if pooled_side {
                pooled_time += side.pooled(&pool, batch.clone()).await?;
            } else if variant != Variant::SharedLease && variant != Variant::KilledBrowser {
                let half = batch.start..batch.start + batch.len().div_ceil(naive_share);
                naive_pages += half.len();
                naive_time += side.naive(half).await?;
            }
        }
    }
    // Every dropped lease's recycling done first: a crash is counted there.
    if !controls::settle(&pool, Duration::from_secs(30)).await {
        return Err(PoolError::Timeout {
            key: "the browser pool settling before its crash count".into(),
            after: Duration::from_secs(30),
        }
        .into());
    }
    let crashed = pool.stats().crashed;
    pool.close().await;
    s.ratio(
        "pooled_pages_per_s",
        pages as f64 / pooled_time.as_secs_f64(),
    );
    if !naive_time.is_zero() {
        s.ratio(
            "naive_pages_per_s",
            naive_pages as f64 / naive_time.as_secs_f64(),
        );
    }
    s.count("crawl_pages", pages as u64);
    s.note(format!(
        "crawl: {pages} fixture pages pooled and {naive_pages} of them naive, in {rounds} rounds alternating which side goes first, {WORKERS} concurrent workers; pool max_size {WORKERS}, its time counted until the last lease is recycled; naive launches a browser per page"
    ));
    Ok(crashed)
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
    variant: Variant,
}

impl Side<'_> {
    /// Crawls `pages` with a lease per page; the time runs until the pool has
    /// recycled the last lease, so no work of these pages is left uncounted.
    async fn pooled(&self, pool: &BrowserPool, pages: Range<usize>) -> Result<Duration> {
        let next = Arc::new(AtomicUsize::new(pages.start));
        let t = Instant::now();
        // The shared-lease control: one lease, its page driven by every worker.
        let shared = match self.variant {
            Variant::SharedLease => Some(Arc::new(pool.acquire().await?)),
            _ => None,
        };
        if self.variant == Variant::KilledBrowser {
            let (pool, next) = (pool.clone(), next.clone());
            let start = pages.start;
            tokio::spawn(async move {
                // Once the crawl is under way, a browser dies as a crash would.
                while next.load(Ordering::SeqCst) < start + WORKERS * 2 {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                if let Some(&pid) = controls::pids(&pool).first() {
                    kill_process(pid);
                }
            });
        }
        let workers: Vec<_> = (0..WORKERS)
            .map(|_| {
                let (pool, next, errs) = (pool.clone(), next.clone(), self.errors.clone());
                let (base, end, shared) = (self.base.clone(), pages.end, shared.clone());
                tokio::spawn(async move {
                    while let Some(i) = claim(&next, end) {
                        let ok = async {
                            let url = format!("{base}{i}");
                            match &shared {
                                Some(lease) => {
                                    lease.goto(&url).await?;
                                    lease.evaluate::<String>("document.title").await
                                }
                                None => {
                                    let lease = pool.acquire().await?;
                                    lease.goto(&url).await?;
                                    lease.evaluate::<String>("document.title").await
                                }
                            }
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
        drop(shared);
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
        w.await.map_err(|e| Error::task("crawl worker", e))?;
    }
    Ok(())
}
