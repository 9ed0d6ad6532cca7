//! The faults a browser pool meets: a browser killed mid-batch and
//! mid-navigation, hung by SIGSTOP, a renderer crashed, an acquire dropped
//! half-way.

use std::time::{Duration, Instant};
use tidepool_pools::controls;

use chromiumoxide::cdp::browser_protocol::page::CrashParams;
use chromiumoxide::cdp::js_protocol::runtime::EvaluateParams;

use super::{ms, wait_for, Kind, Tally, Variant};
use crate::browser::{BrowserPool, BrowserPoolConfig, Isolation, Lease, LeaseOptions};
use crate::cdp::{SessionPool, SessionPoolConfig};
use crate::error::{Error, Result};
use crate::testkit::{
    continue_process, kill_process, process_alive, stop_process, FixtureServer, SeededRng,
};
use tidepool_pools::Error as PoolError;

/// The pool's CDP timeout: a hung browser must fail its lease within it.
pub(super) const CDP_TIMEOUT: Duration = Duration::from_secs(2);
/// How long the scenario waits for a faulted operation before it counts the
/// operation as lost: three CDP timeouts.
const PATIENCE: Duration = Duration::from_secs(6);
/// How late past the CDP timeout a hung or crashed page's call may fail:
/// the health probe runs every half timeout and waits half a timeout.
const SLACK: Duration = Duration::from_millis(500);
/// Browsers of the pool, all kept idle and ready.
const BROWSERS: usize = 2;
/// Commands of the batch a browser is killed under.
const COMMANDS: usize = 8;

fn config(variant: Variant) -> BrowserPoolConfig {
    BrowserPoolConfig {
        min_idle: if variant == Variant::NoReplacement {
            0
        } else {
            BROWSERS
        },
        max_size: BROWSERS,
        warm_up: BROWSERS,
        // Leases ask for their own context when a kind needs one, so an
        // acquire's deadline can fall inside its preparation.
        isolation: Isolation::None,
        cdp_timeout: if variant == Variant::NoHangDeadline {
            Duration::from_secs(3600)
        } else {
            CDP_TIMEOUT
        },
        ..BrowserPoolConfig::default()
    }
}

/// Runs `n` injections of each of `kinds` on one pool; returns their tallies
/// and the pool's median cold launch, ms.
pub(super) async fn inject(
    kinds: &[Kind],
    n: usize,
    variant: Variant,
) -> Result<(Vec<(Kind, Tally)>, f64)> {
    let server = FixtureServer::start().await?;
    let pool = match BrowserPool::new(config(variant)).await {
        Ok(pool) => pool,
        Err(e) => {
            server.shutdown().await;
            return Err(e.into());
        }
    };
    let mut bench = Bench {
        pool: &pool,
        server: &server,
        variant,
        rng: SeededRng::new(0xfa17),
    };
    let result = async {
        let mut tallies = Vec::new();
        for &kind in kinds {
            let mut tally = Tally::default();
            for i in 0..n {
                bench.ready().await?;
                match kind {
                    Kind::KilledMidBatch => bench.killed_mid_batch(&mut tally, i).await?,
                    Kind::KilledMidNavigation => bench.killed_mid_navigation(&mut tally, i).await?,
                    Kind::HungBrowser => bench.hung_browser(&mut tally).await?,
                    Kind::RendererCrash => bench.renderer_crash(&mut tally, i).await?,
                    Kind::CancelledAcquire => bench.cancelled_acquire(&mut tally).await?,
                    _ => {}
                }
            }
            tallies.push((kind, tally));
        }
        Ok(tallies)
    }
    .await;
    let launch_p50 = pool.stats().launch_latency.p50_ms;
    pool.close().await;
    server.shutdown().await;
    result.map(|t| (t, launch_p50))
}

struct Bench<'a> {
    pool: &'a BrowserPool,
    server: &'a FixtureServer,
    variant: Variant,
    rng: SeededRng,
}

impl Bench<'_> {
    /// Every injection starts from a settled pool with its browsers ready.
    async fn ready(&self) -> Result<()> {
        controls::settle(self.pool, Duration::from_secs(30)).await;
        if self.variant == Variant::NoReplacement {
            return Ok(());
        }
        super::super::warm_before(self.pool, BROWSERS, Duration::from_secs(30), "a fault").await
    }

    fn pid(lease: &Lease) -> Result<u32> {
        lease.pid().ok_or_else(|| {
            Error::config(
                "browser.source",
                "the faults scenario needs launched browsers",
            )
        })
    }

    /// After a fatal fault: waits until a browser launched after `launched`
    /// stands ready beside the other, min_idle again; returns the wait, ms,
    /// from `detected`, or `None` when it never came. The no-replacement
    /// control gives up after six cold launches, twice the threshold's
    /// three, and reports that wait.
    async fn replaced(&self, launched: u64, detected: Instant) -> Option<f64> {
        let patience = match self.variant {
            Variant::NoReplacement => Duration::from_secs_f64(
                (6.0 * self.pool.stats().launch_latency.p50_ms / 1e3).clamp(1.0, 15.0),
            ),
            // Its verdict is the hang already counted; nothing to wait for.
            Variant::NoHangDeadline => Duration::from_secs(1),
            _ => Duration::from_secs(30),
        };
        let back = wait_for(patience, || {
            let st = self.pool.stats();
            st.launched > launched && st.idle >= BROWSERS
        })
        .await;
        match (back, self.variant) {
            (true, _) => Some(ms(detected)),
            (false, Variant::NoReplacement) => Some(ms(detected)),
            (false, _) => None,
        }
    }

    /// Part of "survived": the work redone on a new lease, right.
    async fn page_loads(&self, i: usize) -> bool {
        let redo = async {
            let lease = self.pool.acquire().await?;
            lease.goto(&self.server.url(&format!("/page/{i}"))).await?;
            lease.evaluate::<String>("document.title").await
        };
        match tokio::time::timeout(PATIENCE, redo).await {
            Ok(Ok(title)) => title.contains(&i.to_string()),
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "the redone page failed");
                false
            }
            Err(_) => false,
        }
    }

    /// A browser killed while a batch of commands is in flight: each command
    /// answers after its own delay, so the kill lands between replies.
    async fn killed_mid_batch(&self, tally: &mut Tally, i: usize) -> Result<()> {
        let lease = self.pool.acquire().await?;
        let pid = Self::pid(&lease)?;
        let launched = self.pool.stats().launched;
        let sessions = SessionPool::new(&lease, SessionPoolConfig::default())?;
        let session = sessions.acquire().await?;
        session
            .goto(&self.server.url(&format!("/page/{i}")))
            .await?;
        let mut batch = session.batch();
        for k in 0..COMMANDS {
            batch.push(
                EvaluateParams::builder()
                    .expression(format!(
                        "new Promise(r => setTimeout(() => r({k} * 7919), {}))",
                        40 * k
                    ))
                    .await_promise(true)
                    .build()
                    .map_err(|e| Error::config("faults.batch", e))?,
            );
        }
        let send = async {
            match self.variant {
                Variant::DroppingBatch => {
                    controls::BrokenBatch::send_stopping_at_first_error(batch).await
                }
                _ => batch.send().await,
            }
        };
        let kill = async {
            tokio::time::sleep(Duration::from_millis(100)).await;
            (kill_process(pid), Instant::now())
        };
        let (results, (killed, killed_at)) =
            tokio::join!(tokio::time::timeout(PATIENCE, send), kill);
        let detected = Instant::now();
        let answered_in = killed_at.elapsed();
        let results = results.unwrap_or_default();
        let right = |k: usize, r: &tidepool_pools::Result<serde_json::Value>| match r {
            Ok(v) => v.pointer("/result/value").and_then(|v| v.as_u64()) == Some(k as u64 * 7919),
            Err(PoolError::BrowserCrashed { .. }) => true,
            Err(_) => false,
        };
        let wrong = results
            .iter()
            .enumerate()
            .filter(|(k, r)| !right(*k, r))
            .count();
        let errors = results.iter().filter(|r| r.is_err()).count();
        let lost = (COMMANDS - results.len().min(COMMANDS) + wrong) as u64;
        drop(session);
        drop(sessions);
        drop(lease);
        let recovery = self.replaced(launched, detected).await;
        let redone = self.page_loads(i).await;
        tally.record(
            Kind::KilledMidBatch,
            &[
                ("killed", killed),
                ("the kill landed mid-batch", errors > 0),
                (
                    "answered within the CDP timeout",
                    answered_in <= CDP_TIMEOUT,
                ),
                ("replaced", recovery.is_some()),
                ("redone", redone),
            ],
            lost,
            recovery,
        );
        Ok(())
    }

    /// A browser killed while its page waits for a slow response.
    async fn killed_mid_navigation(&self, tally: &mut Tally, i: usize) -> Result<()> {
        let lease = self.pool.acquire().await?;
        let pid = Self::pid(&lease)?;
        let launched = self.pool.stats().launched;
        let slow = self.server.url("/slow?ms=2000");
        let kill = async {
            tokio::time::sleep(Duration::from_millis(150)).await;
            (kill_process(pid), Instant::now())
        };
        let (outcome, (killed, killed_at)) =
            tokio::join!(tokio::time::timeout(PATIENCE, lease.goto(&slow)), kill);
        let detected = Instant::now();
        let answered_in = killed_at.elapsed();
        let (named, lost) = match &outcome {
            Ok(Err(PoolError::BrowserCrashed { .. })) => (true, 0),
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "a killed navigation failed with another error");
                (false, 0)
            }
            // A navigation that completed on a killed browser is no answer.
            Ok(Ok(())) => (false, 1),
            Err(_) => (false, 1),
        };
        drop(lease);
        let recovery = self.replaced(launched, detected).await;
        let redone = self.page_loads(i).await;
        tally.record(
            Kind::KilledMidNavigation,
            &[
                ("killed", killed),
                ("the error names the crash", named),
                (
                    "answered within the CDP timeout",
                    answered_in <= CDP_TIMEOUT,
                ),
                ("replaced", recovery.is_some()),
                ("redone", redone),
            ],
            lost,
            recovery,
        );
        Ok(())
    }

    /// A browser stopped by SIGSTOP: hung, not dead. Its lease must fail as
    /// "not responding" within the CDP timeout, the browser be killed, and
    /// SIGCONT must not bring it back.
    async fn hung_browser(&self, tally: &mut Tally) -> Result<()> {
        let lease = self.pool.acquire().await?;
        let (pid, browser) = (Self::pid(&lease)?, lease.browser_id());
        let launched = self.pool.stats().launched;
        let stopped = stop_process(pid);
        let t = Instant::now();
        let outcome = tokio::time::timeout(PATIENCE, lease.evaluate::<u32>("1 + 1")).await;
        let detected = Instant::now();
        let took = t.elapsed();
        continue_process(pid);
        let (named, lost) = match &outcome {
            Ok(Err(e)) => (e.to_string().contains("not responding"), 0),
            Ok(Ok(_)) => (false, 0),
            Err(_) => (false, 1),
        };
        drop(lease);
        let recovery = self.replaced(launched, detected).await;
        let grace = match self.variant {
            Variant::NoHangDeadline => Duration::from_secs(1),
            _ => Duration::from_secs(10),
        };
        let gone = wait_for(grace, || !process_alive(pid)).await;
        let not_back = controls::pids(self.pool).iter().all(|&p| p != pid);
        let redone = async {
            let next = self.pool.acquire().await?;
            Ok::<_, Error>(
                next.browser_id() != browser && next.evaluate::<u32>("1 + 1").await? == 2,
            )
        };
        let redone = matches!(tokio::time::timeout(PATIENCE, redone).await, Ok(Ok(true)));
        tally.record(
            Kind::HungBrowser,
            &[
                ("stopped", stopped),
                ("the error says not responding", named),
                ("failed within the CDP timeout", took <= CDP_TIMEOUT + SLACK),
                ("killed after SIGCONT", gone && not_back),
                ("replaced", recovery.is_some()),
                ("redone", redone),
            ],
            lost,
            recovery,
        );
        Ok(())
    }

    /// The lease's renderer crashed by `Page.crash`: the lease's next call
    /// fails with an error of its own, the browser lives on, and the next
    /// lease works.
    async fn renderer_crash(&self, tally: &mut Tally, i: usize) -> Result<()> {
        // Every other crash hits a page reused between leases (Isolation::None).
        let isolation = if i.is_multiple_of(2) {
            Isolation::Context
        } else {
            Isolation::None
        };
        let lease = self
            .pool
            .acquire_with(LeaseOptions::new().isolation(isolation))
            .await?;
        let pid = Self::pid(&lease)?;
        lease.goto(&self.server.url(&format!("/page/{i}"))).await?;
        // The crash takes its renderer down before any reply can come.
        let _ = tokio::time::timeout(
            Duration::from_millis(500),
            lease.page().execute(CrashParams::default()),
        )
        .await;
        let t = Instant::now();
        let outcome = tokio::time::timeout(PATIENCE, lease.evaluate::<u32>("1 + 1")).await;
        let detected = Instant::now();
        let took = t.elapsed();
        let (failed, lost) = match &outcome {
            Ok(Err(PoolError::PageCrashed { .. })) => (true, 0),
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "a crashed page's call failed with another error");
                (false, 0)
            }
            Ok(Ok(_)) => (false, 0),
            Err(_) => (false, 1),
        };
        drop(lease);
        let ready = controls::settle(self.pool, Duration::from_secs(30)).await
            && self
                .pool
                .wait_until_idle(BROWSERS, Duration::from_secs(30))
                .await;
        let recovery = ready.then(|| ms(detected));
        let browser_lives = process_alive(pid);
        let redone = self.page_loads(i).await;
        tally.record(
            Kind::RendererCrash,
            &[
                ("the error names the crashed page", failed),
                ("failed within the CDP timeout", took <= CDP_TIMEOUT + SLACK),
                ("the browser lives on", browser_lives),
                ("ready again", recovery.is_some()),
                ("redone", redone),
            ],
            lost,
            recovery,
        );
        Ok(())
    }

    /// An acquire dropped at a seeded random point of its preparation (a
    /// fresh context for a browser readied for none): the counts stay exact
    /// and no ghost stays in the memory watch.
    async fn cancelled_acquire(&mut self, tally: &mut Tally) -> Result<()> {
        let before = self.pool.stats().acquires;
        let mut completed = 0;
        let mut cancelled_at = None;
        for _ in 0..100 {
            let deadline = Duration::from_micros(self.rng.next_u64() % 60_000);
            let acquire = self
                .pool
                .acquire_with(LeaseOptions::new().isolation(Isolation::Context));
            match tokio::time::timeout(deadline, acquire).await {
                Ok(lease) => {
                    drop(lease?);
                    completed += 1;
                }
                Err(_) => {
                    cancelled_at = Some(Instant::now());
                    break;
                }
            }
        }
        let Some(cancelled_at) = cancelled_at else {
            return Err(Error::config(
                "faults.cancelled_acquire",
                "100 deadlines of under 60 ms never cancelled an acquire",
            ));
        };
        let ready = controls::settle(self.pool, Duration::from_secs(30)).await
            && self
                .pool
                .wait_until_idle(BROWSERS, Duration::from_secs(30))
                .await;
        let recovery = ready.then(|| ms(cancelled_at));
        let stats = self.pool.stats();
        let live = stats.idle + stats.in_use;
        let watched = self.pool.browser_memory().len();
        let ghosts = watched.saturating_sub(live) as u64;
        let all_alive = controls::pids(self.pool).iter().all(|&p| process_alive(p));
        tally.record(
            Kind::CancelledAcquire,
            &[
                (
                    "acquires counted exactly",
                    stats.acquires == before + completed,
                ),
                ("no ghost in the memory watch", watched == live),
                ("every pid followed is alive", all_alive),
                ("ready again", recovery.is_some()),
            ],
            ghosts,
            recovery,
        );
        Ok(())
    }
}
