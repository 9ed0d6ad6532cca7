//! Browser memory under pressure, measured as the PSS of each browser's
//! process tree: the idle footprint and the cost of a page; twenty browsers
//! under load; eviction at the hard limit; one warning per crossing of the soft
//! limit; and a leak check over many lease cycles.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{ms_since as ms, wait_for, Control, Scenario, ScenarioFuture};
use crate::browser::{own_tag_prefix, BrowserPool, BrowserPoolConfig, MemoryEventKind};
use crate::error::{Error, Result};
use crate::memory::{tree_memory, MemoryPolicy};
use crate::profile::RunProfile;
use crate::summary::MetricSummary;
use crate::summary::{FigureSpec, ScenarioSpec};
use crate::testkit::tagged_processes;
use crate::testkit::{kill_process, open_fds, FixtureServer};

mod leak;
mod limits;
mod load;
use leak::*;
use limits::*;
use load::*;

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
        Footprint::default()
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
