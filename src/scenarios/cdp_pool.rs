//! Page-session reuse and pipelined batches against a new target per request
//! with one round trip per command, side by side on one browser.
//!
//! A request is a realistic step: navigate to a fixture page, then seven
//! independent commands (title, document, a selector count, cookies, layout
//! metrics, text length, a price).

use std::time::{Duration, Instant};

use chromiumoxide::cdp::browser_protocol::dom::{DescribeNodeParams, GetDocumentParams};
use chromiumoxide::cdp::browser_protocol::network::GetCookiesParams;
use chromiumoxide::cdp::browser_protocol::page::GetLayoutMetricsParams;
use chromiumoxide::cdp::browser_protocol::target::CreateTargetParams;
use chromiumoxide::cdp::js_protocol::runtime::EvaluateParams;

use super::{Scenario, ScenarioFuture};
use crate::browser::{BrowserPool, BrowserPoolConfig, Lease};
use crate::cdp::{Batch, SessionPool, SessionPoolConfig};
use crate::contract::{FigureKind::*, FigureSpec, ScenarioSpec};
use crate::error::{Error, Result};
use crate::memory::{count_of_kind, MemoryPolicy};
use crate::profile::RunProfile;
use crate::report::MetricSummary;
use crate::testkit::FixtureServer;

pub(super) const SCENARIO: Scenario = Scenario {
    spec: ScenarioSpec {
        name: "cdp_pool",
        description: "reused page sessions + pipelined batches vs a new target per request + one round trip per command",
        figures: &[
            FigureSpec { name: "baseline_ms", kind: Measurement("ms") },
            FigureSpec { name: "pooled_ms", kind: Measurement("ms") },
            FigureSpec { name: "rtt_ms", kind: Measurement("ms") },
            FigureSpec { name: "batch_ms", kind: Measurement("ms") },
            FigureSpec { name: "sequential_ms", kind: Measurement("ms") },
            FigureSpec { name: "reuse_rate", kind: Ratio },
            FigureSpec { name: "batched_waits_per_command", kind: Ratio },
            FigureSpec { name: "sequential_waits_per_command", kind: Ratio },
            FigureSpec { name: "requests", kind: Counter },
            FigureSpec { name: "misattributed_results", kind: Counter },
            FigureSpec { name: "leaked_targets", kind: Counter },
        ],
    },
    run: start,
    needs_browser: true,
};

fn start(profile: RunProfile) -> ScenarioFuture {
    Box::pin(run(profile))
}

/// The independent commands of a step, after its navigation.
pub(crate) const STEP_COMMANDS: usize = 7;
/// Requests before the reuse rate counts.
const WARMUP: usize = 5;

pub(crate) fn push_step(batch: &mut Batch<'_>) {
    batch.push(EvaluateParams::new("document.title"));
    batch.push(GetDocumentParams::default());
    batch.push(EvaluateParams::new("document.querySelectorAll('a').length"));
    batch.push(GetCookiesParams::default());
    batch.push(GetLayoutMetricsParams::default());
    batch.push(EvaluateParams::new("document.body.innerText.length"));
    batch.push(EvaluateParams::new(
        "document.querySelector('#price').textContent",
    ));
}

fn ms(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1e3
}

/// The baseline request: a new page target, navigation, then the seven
/// commands one round trip each. Returns (total ms, commands ms, waits).
async fn baseline_request(lease: &Lease, url: &str) -> Result<(f64, f64, u64)> {
    let t = Instant::now();
    let params = CreateTargetParams::builder()
        .url("about:blank")
        .browser_context_id(lease.context_id().clone())
        .build()
        .map_err(|message| Error::Cdp {
            browser: lease.browser_id(),
            endpoint: String::new(),
            action: "building Target.createTarget".into(),
            message,
        })?;
    let page = lease
        .call("creating a page", lease.browser().new_page(params))
        .await?;
    lease.call("navigating", page.goto(url)).await?;
    let commands = Instant::now();
    let mut stamps = Vec::with_capacity(STEP_COMMANDS);
    macro_rules! one {
        ($cmd:expr) => {{
            let sent = Instant::now();
            lease.call("a step command", page.execute($cmd)).await?;
            stamps.push((sent, Instant::now()));
        }};
    }
    one!(EvaluateParams::new("document.title"));
    one!(GetDocumentParams::default());
    one!(EvaluateParams::new("document.querySelectorAll('a').length"));
    one!(GetCookiesParams::default());
    one!(GetLayoutMetricsParams::default());
    one!(EvaluateParams::new("document.body.innerText.length"));
    one!(EvaluateParams::new(
        "document.querySelector('#price').textContent"
    ));
    let (total, commands) = (ms(t), ms(commands));
    lease.call("closing the page", page.close()).await?;
    Ok((total, commands, crate::cdp::round_trip_waits(&stamps)))
}

/// Renderers of the browser at `pid`, counted off the runtime.
async fn renderers(pid: u32) -> usize {
    tokio::task::spawn_blocking(move || count_of_kind(pid, "renderer"))
        .await
        .unwrap_or(0)
}

/// Waits (up to 2 s) until the browser runs no more than `n` renderers. A
/// baseline page has a renderer of its own, which exits after
/// `Target.closeTarget` has answered; its teardown belongs to the baseline,
/// not to the pooled step measured next.
async fn settle(pid: Option<u32>, n: usize) {
    let Some(pid) = pid else { return };
    let deadline = Instant::now() + Duration::from_secs(2);
    while renderers(pid).await > n && Instant::now() < deadline {
        // Waiting on another process to exit: it signals nothing we can await.
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// A baseline request, then the wait for its page's renderer to exit.
async fn settled_baseline(lease: &Lease, url: &str) -> Result<(f64, f64, u64)> {
    let renderers_before = match lease.pid() {
        Some(pid) => renderers(pid).await,
        None => 0,
    };
    let measured = baseline_request(lease, url).await?;
    settle(lease.pid(), renderers_before).await;
    Ok(measured)
}

/// The pooled request: a session from the pool, navigation, the seven
/// commands in one batch. Returns (total ms, whether the session was reused).
async fn pooled_request(lease: &Lease, sessions: &SessionPool, url: &str) -> Result<(f64, bool)> {
    let before = sessions.counts().reused;
    let t = Instant::now();
    let session = sessions.acquire().await?;
    session.goto(url).await?;
    let mut batch = session.batch();
    push_step(&mut batch);
    let results = batch.send().await;
    let total = ms(t);
    if let Some(Err(e)) = results.iter().find(|r| r.is_err()) {
        return Err(Error::Cdp {
            browser: lease.browser_id(),
            endpoint: String::new(),
            action: "a pooled step".into(),
            message: e.to_string(),
        });
    }
    session.release().await;
    Ok((total, sessions.counts().reused > before))
}

async fn run(profile: RunProfile) -> Result<MetricSummary> {
    let server = FixtureServer::start().await?;
    // Up to ten sessions and a baseline page per request live in one browser:
    // ~300 MB idle plus ~20 MB a page passes the default 500 MB hard limit,
    // which is sized for leases with a few pages. Memory is not what this
    // scenario measures, so its limits are sized for its pages.
    let memory = MemoryPolicy {
        soft_limit_bytes: 1_200_000_000,
        hard_limit_bytes: 1_500_000_000,
        ..MemoryPolicy::default()
    };
    let pool = BrowserPool::new(BrowserPoolConfig {
        min_idle: 1,
        max_size: 1,
        warm_up: 1,
        memory: Some(memory),
        ..BrowserPoolConfig::default()
    })
    .await?;
    let lease = pool.acquire().await?;
    let sessions = SessionPool::new(&lease, SessionPoolConfig::default())?;
    let mut s = MetricSummary::new(SCENARIO.spec.name, profile);

    // One command's round trip on an open session.
    let mut rtt = Vec::new();
    {
        let session = sessions.acquire().await?;
        for _ in 0..profile.scaled(50, 200) {
            let t = Instant::now();
            lease
                .call(
                    "Runtime.evaluate 1",
                    session.page().execute(EvaluateParams::new("1")),
                )
                .await?;
            rtt.push(ms(t));
        }
        session.release().await;
    }

    let n = profile.scaled(40, 200);
    let (mut baseline, mut pooled, mut sequential, mut seq_waits) =
        (Vec::new(), Vec::new(), Vec::new(), 0u64);
    let (mut reused_after_warmup, mut counted) = (0u64, 0u64);
    for i in 0..n {
        let url = server.url(&format!("/page/{i}"));
        // Alternating which side goes first: whatever one side leaves the
        // browser doing lands on each side equally often.
        let (base, (pooled_ms, reused)) = if i % 2 == 0 {
            let base = settled_baseline(&lease, &url).await?;
            (base, pooled_request(&lease, &sessions, &url).await?)
        } else {
            let pooled = pooled_request(&lease, &sessions, &url).await?;
            (settled_baseline(&lease, &url).await?, pooled)
        };
        let (total, commands, waits) = base;
        baseline.push(total);
        sequential.push(commands);
        seq_waits += waits;
        pooled.push(pooled_ms);
        if i >= WARMUP {
            counted += 1;
            reused_after_warmup += u64::from(reused);
        }
    }

    // One invalid command among valid ones: it alone fails, in its place.
    let session = sessions.acquire().await?;
    session.goto(&server.url("/page/1")).await?;
    let mut batch = session.batch();
    batch.push(EvaluateParams::new("document.title"));
    batch.push(DescribeNodeParams::default()); // no node named: CDP refuses it
    batch.push(GetLayoutMetricsParams::default());
    let results = batch.send().await;
    let expected_ok = [true, false, true];
    let misattributed = if results.len() != expected_ok.len() {
        expected_ok.len() as u64
    } else {
        results
            .iter()
            .zip(expected_ok)
            .filter(|(r, ok)| r.is_ok() != *ok)
            .count() as u64
    };
    session.release().await;

    // The browser's own count of page targets in the context against the
    // pool's: its idle sessions plus the lease's own first page.
    let targets = sessions.page_targets_in_context().await?;
    let leaked = targets.abs_diff(sessions.idle_count() + 1) as u64;

    let counts = sessions.counts();
    s.measure("rtt_ms", "ms", &rtt)?;
    s.measure("baseline_ms", "ms", &baseline)?;
    s.measure("pooled_ms", "ms", &pooled)?;
    s.measure("sequential_ms", "ms", &sequential)?;
    s.measure("batch_ms", "ms", &sessions.batch_latencies_ms())?;
    s.ratio_of("reuse_rate", reused_after_warmup as f64, counted as f64)?;
    s.ratio_of(
        "batched_waits_per_command",
        counts.batch_waits as f64,
        counts.batched_commands as f64,
    )?;
    s.ratio_of(
        "sequential_waits_per_command",
        seq_waits as f64,
        (n * STEP_COMMANDS) as f64,
    )?;
    s.count("requests", n as u64);
    s.count("misattributed_results", misattributed);
    s.count("leaked_targets", leaked);
    s.note(format!(
        "sessions: {} created, {} reused, {} resets, {} expired, {} discarded; {} batches, {} commands, {} round-trip waits",
        counts.created, counts.reused, counts.resets, counts.expired, counts.discarded, counts.batches, counts.batched_commands, counts.batch_waits
    ));
    s.note(format!("reuse rate counted after the first {WARMUP} requests; round-trip waits counted from each command's send and reply times"));
    drop(sessions);
    drop(lease);
    pool.close().await;
    server.shutdown().await;
    Ok(s)
}
