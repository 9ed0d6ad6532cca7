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

use super::{ms_since as ms, Control, Scenario, ScenarioFuture};
use crate::browser::{BrowserPool, BrowserPoolConfig, BrowserSource, FleetPolicy, Lease};
use crate::cdp::{Batch, SessionPool, SessionPoolConfig};
use crate::error::{Error, Result};
use crate::memory::{count_of_kind, MemoryPolicy};
use crate::profile::RunProfile;
use crate::summary::MetricSummary;
use crate::summary::{FigureSpec, ScenarioSpec};
use crate::testkit::{
    commands_sent, wire_round_trip_waits, CdpRelay, ExternalChromium, FixtureServer,
};

mod requests;
mod wire;
use requests::*;
use wire::*;

pub(super) const SCENARIO: Scenario = Scenario {
    spec: ScenarioSpec {
        name: "cdp_pool",
        description: "reused page sessions + pipelined batches vs a new target per request + one round trip per command",
        figures: &[
            FigureSpec::measurement("baseline_ms", "ms"),
            FigureSpec::measurement("pooled_ms", "ms"),
            FigureSpec::measurement("rtt_ms", "ms"),
            FigureSpec::measurement("batch_ms", "ms"),
            FigureSpec::measurement("sequential_ms", "ms"),
            FigureSpec::ratio("reuse_rate"),
            FigureSpec::ratio("batched_waits_per_command"),
            FigureSpec::ratio("sequential_waits_per_command"),
            FigureSpec::ratio("wire_waits_per_command"),
            FigureSpec::measurement("wire_commands_pooled", "commands"),
            FigureSpec::measurement("wire_commands_new_target", "commands"),
            FigureSpec::measurement("wire_kb_pooled", "KB"),
            FigureSpec::measurement("wire_kb_new_target", "KB"),
            FigureSpec::counter("requests").scales(),
            FigureSpec::counter("misattributed_results"),
            FigureSpec::counter("leaked_targets"),
        ],
    },
    run: start,
    needs_browser: true,
    controls: CONTROLS,
};

fn start(profile: RunProfile) -> ScenarioFuture {
    Box::pin(run(profile, Variant::Honest))
}

/// The session pool and batch the run uses: the real ones, or a bad variant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Variant {
    Honest,
    /// Batches sent one command at a time, each after the previous reply.
    SequentialBatch,
    /// An idle timeout shorter than the gap between uses: nothing is reused.
    NoReuse,
    /// A batch that hands one reply to every command of the same method.
    CoalescingBatch,
    /// A page opened in the lease's context and never closed.
    LeakedPage,
}

/// The negative controls.
const CONTROLS: &[Control] = &[
    Control {
        name: "sequential_batch",
        what: "the step's batch sent one command at a time, each after the previous reply",
        rejects: &["batches_wait_once"],
        run: |p| Box::pin(run(p, Variant::SequentialBatch)),
    },
    Control {
        name: "no_reuse",
        what: "a session pool whose idle timeout (1 us) is shorter than any gap between uses",
        rejects: &["sessions_are_reused", "pooled_beats_new_target"],
        run: |p| Box::pin(run(p, Variant::NoReuse)),
    },
    Control {
        name: "coalescing_batch",
        what: "a batch that sends one command per method and hands its reply to all of that method",
        rejects: &["no_command_lost_or_misattributed"],
        run: |p| Box::pin(run(p, Variant::CoalescingBatch)),
    },
    Control {
        name: "leaked_page",
        what: "a page opened in the lease's context and never closed",
        rejects: &["no_leaked_targets"],
        run: |p| Box::pin(run(p, Variant::LeakedPage)),
    },
];

/// Concurrent users of one session pool in the reuse part.
const USERS: usize = 4;

impl Variant {
    fn sessions(self) -> SessionPoolConfig {
        match self {
            Variant::NoReuse => {
                let mut config = SessionPoolConfig::default();
                config.retention.idle_timeout = Duration::from_micros(1);
                config
            }
            _ => SessionPoolConfig::default(),
        }
    }

    async fn send<'a>(self, batch: Batch<'a>) -> Vec<tidepool_pools::Result<serde_json::Value>> {
        match self {
            Variant::SequentialBatch => batch.send_sequential().await,
            Variant::CoalescingBatch => {
                tidepool_pools::controls::BrokenBatch::send_coalescing_by_method(batch).await
            }
            _ => batch.send().await,
        }
    }
}

/// The independent commands of a step, after its navigation.
pub(crate) const STEP_COMMANDS: usize = 7;

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

async fn run(profile: RunProfile, variant: Variant) -> Result<MetricSummary> {
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
    let result = measure(&server, &lease, profile, variant).await;
    drop(lease);
    pool.close().await;
    server.shutdown().await;
    result
}

async fn measure(
    server: &FixtureServer,
    lease: &Lease,
    profile: RunProfile,
    variant: Variant,
) -> Result<MetricSummary> {
    let mut s = MetricSummary::new(SCENARIO.spec.name, profile);
    if matches!(variant, Variant::Honest | Variant::SequentialBatch) {
        on_the_wire(&mut s, server, profile, variant).await?;
        if variant == Variant::SequentialBatch {
            return Ok(s);
        }
    }
    let sessions = SessionPool::new(lease, variant.sessions())?;
    if variant == Variant::CoalescingBatch {
        count_misattributed(&mut s, &sessions, server, variant).await?;
        return Ok(s);
    }
    if variant == Variant::LeakedPage {
        let session = sessions.acquire().await?;
        session.release().await;
        let params = CreateTargetParams::builder()
            .url("about:blank")
            .browser_context_id(lease.context_id().clone())
            .build()
            .map_err(|message| Error::config("control", message))?;
        // Opened and forgotten: the handle goes, the target stays.
        drop(
            lease
                .call("opening a page", lease.browser().new_page(params))
                .await?,
        );
        s.count("leaked_targets", leaked_targets(&sessions).await?);
        return Ok(s);
    }

    // One command's round trip on an open session.
    let mut rtt = Vec::new();
    if variant == Variant::Honest {
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

    let n = match variant {
        Variant::Honest => profile.scaled(40, 200),
        _ => profile.scaled(20, 100),
    };
    let (mut baseline, mut pooled, mut sequential, mut seq_waits) =
        (Vec::new(), Vec::new(), Vec::new(), 0u64);
    let mut batches = Vec::new();
    for i in 0..n {
        let url = server.url(&format!("/page/{i}"));
        // Alternating which side goes first: whatever one side leaves the
        // browser doing lands on each side equally often.
        let (base, (pooled_ms, batch_ms)) = if i % 2 == 0 {
            let base = settled_baseline(lease, &url).await?;
            (base, pooled_request(lease, &sessions, &url, variant).await?)
        } else {
            let pooled = pooled_request(lease, &sessions, &url, variant).await?;
            (settled_baseline(lease, &url).await?, pooled)
        };
        let (total, commands, waits) = base;
        baseline.push(total);
        sequential.push(commands);
        seq_waits += waits;
        pooled.push(pooled_ms);
        batches.push(batch_ms);
    }
    let counts = sessions.stats();
    s.measure("baseline_ms", "ms", &baseline)?;
    s.measure("pooled_ms", "ms", &pooled)?;
    s.measure("sequential_ms", "ms", &sequential)?;
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
    s.note(format!(
        "sessions: {} created, {} reused, {} resets, {} expired, {} discarded; {} batches, {} commands, {} round-trip waits",
        counts.created, counts.reused, counts.resets, counts.expired, counts.discarded, counts.batches, counts.batched_commands, counts.batch_waits
    ));
    s.note("a pooled request is timed from acquiring the session to its reset done; a baseline request from creating its target to closing it (its renderer's exit afterwards is not timed)");

    let per_user = profile.scaled(10, 40);
    let (reused, counted) = concurrent_reuse(&sessions, server, per_user).await?;
    s.ratio_of("reuse_rate", reused as f64, counted as f64)?;
    s.note(format!(
        "reuse rate: {USERS} concurrent users of one session pool, {per_user} requests each, counted after each user's first"
    ));
    if variant != Variant::Honest {
        return Ok(s);
    }

    count_misattributed(&mut s, &sessions, server, variant).await?;
    s.count("leaked_targets", leaked_targets(&sessions).await?);
    s.measure("rtt_ms", "ms", &rtt)?;
    s.measure("batch_ms", "ms", &batches)?;
    s.note(format!("round-trip waits counted from each command's send and reply times; attribution checked on a batch of {ATTRIBUTION_VALUES} evaluations with distinct values and an invalid command in the middle"));
    Ok(s)
}

/// Runs the attribution batch on a loaded page and counts its misplaced results.
async fn count_misattributed(
    s: &mut MetricSummary,
    sessions: &SessionPool,
    server: &FixtureServer,
    variant: Variant,
) -> Result<()> {
    let session = sessions.acquire().await?;
    session.goto(&server.url("/page/1")).await?;
    s.count(
        "misattributed_results",
        misattributed(&session, variant).await,
    );
    session.release().await;
    Ok(())
}

/// The browser's own count of page targets in the context against the
/// pool's: its idle sessions plus the lease's own first page.
async fn leaked_targets(sessions: &SessionPool) -> Result<u64> {
    let targets = sessions.page_targets_in_context().await?;
    Ok(targets.abs_diff(sessions.idle_count() + 1) as u64)
}
