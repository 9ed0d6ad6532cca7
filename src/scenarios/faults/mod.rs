//! Faults injected on purpose, N of each kind: browsers killed mid-batch and
//! mid-navigation, a browser hung by SIGSTOP, a renderer crash, cancelled
//! acquires, corrupt and planted AOT cache entries, torn reports and
//! malformed contracts. Per kind: how many were injected, how many the
//! library survived (the fault named by a clear error in time, the pool
//! whole again, the work redone right), how many pages or commands were
//! lost (neither a result nor an error of their own), and the time to
//! recover.

pub(super) use super::{ms_since as ms, wait_for};
use super::{Control, Scenario, ScenarioFuture};
use crate::error::Result;
use crate::profile::RunProfile;
use crate::summary::MetricSummary;
use crate::summary::{FigureSpec, ScenarioSpec};

mod browser;
mod files;

pub(super) const SCENARIO: Scenario = Scenario {
    spec: ScenarioSpec {
        name: "faults",
        description: "injected faults, N of each kind: killed, hung and crashed browsers, cancelled acquires, bad cache entries, torn reports, malformed contracts",
        figures: &[
            FigureSpec::measurement("recovery_ms", "ms"),
            FigureSpec::ratio("launch_p50_ms"),
            FigureSpec::counter("injected").scales(),
            FigureSpec::counter("survived").scales(),
            FigureSpec::counter("lost"),
            FigureSpec::counter("killed_mid_batch_injected").scales(),
            FigureSpec::counter("killed_mid_batch_survived").scales(),
            FigureSpec::counter("killed_mid_batch_lost"),
            FigureSpec::counter("killed_mid_navigation_injected").scales(),
            FigureSpec::counter("killed_mid_navigation_survived").scales(),
            FigureSpec::counter("killed_mid_navigation_lost"),
            FigureSpec::counter("hung_browser_injected").scales(),
            FigureSpec::counter("hung_browser_survived").scales(),
            FigureSpec::counter("hung_browser_lost"),
            FigureSpec::counter("renderer_crash_injected").scales(),
            FigureSpec::counter("renderer_crash_survived").scales(),
            FigureSpec::counter("renderer_crash_lost"),
            FigureSpec::counter("cancelled_acquire_injected").scales(),
            FigureSpec::counter("cancelled_acquire_survived").scales(),
            FigureSpec::counter("cancelled_acquire_lost"),
            FigureSpec::counter("bad_cache_entry_injected").scales(),
            FigureSpec::counter("bad_cache_entry_survived").scales(),
            FigureSpec::counter("bad_cache_entry_lost"),
            FigureSpec::counter("torn_report_injected").scales(),
            FigureSpec::counter("torn_report_survived").scales(),
            FigureSpec::counter("torn_report_lost"),
            FigureSpec::counter("malformed_contract_injected").scales(),
            FigureSpec::counter("malformed_contract_survived").scales(),
            FigureSpec::counter("malformed_contract_lost"),
        ],
    },
    run: start,
    needs_browser: true,
    controls: CONTROLS,
};

fn start(profile: RunProfile) -> ScenarioFuture {
    Box::pin(run(profile, Variant::Honest))
}

/// The library as it is, or a bad variant a regression could produce.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Variant {
    Honest,
    /// A pool whose CDP timeout is an hour: a hung browser hangs its caller.
    NoHangDeadline,
    /// A batch that returns at its first error, dropping the replies due.
    DroppingBatch,
    /// A pool without an idle minimum: a dead browser is replaced only when
    /// a lease asks.
    NoReplacement,
}

const CONTROLS: &[Control] = &[
    Control {
        name: "no_hang_deadline",
        what: "a pool whose CDP timeout is an hour, so a browser hung by SIGSTOP hangs the lease's caller",
        rejects: &["every_fault_survived"],
        run: |p| Box::pin(run(p, Variant::NoHangDeadline)),
    },
    Control {
        name: "dropping_batch",
        what: "a batch that returns at its first error and drops the replies still due (as try_join_all would)",
        rejects: &["no_work_lost"],
        run: |p| Box::pin(run(p, Variant::DroppingBatch)),
    },
    Control {
        name: "no_replacement",
        what: "a pool without an idle minimum: a killed browser is replaced only when a lease asks",
        rejects: &["recovery_within_three_launches"],
        run: |p| Box::pin(run(p, Variant::NoReplacement)),
    },
];

/// The kinds of fault, in the order they run and are reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    KilledMidBatch,
    KilledMidNavigation,
    HungBrowser,
    RendererCrash,
    CancelledAcquire,
    BadCacheEntry,
    TornReport,
    MalformedContract,
}

impl Kind {
    const ALL: [Kind; 8] = [
        Kind::KilledMidBatch,
        Kind::KilledMidNavigation,
        Kind::HungBrowser,
        Kind::RendererCrash,
        Kind::CancelledAcquire,
        Kind::BadCacheEntry,
        Kind::TornReport,
        Kind::MalformedContract,
    ];

    fn name(self) -> &'static str {
        match self {
            Kind::KilledMidBatch => "killed_mid_batch",
            Kind::KilledMidNavigation => "killed_mid_navigation",
            Kind::HungBrowser => "hung_browser",
            Kind::RendererCrash => "renderer_crash",
            Kind::CancelledAcquire => "cancelled_acquire",
            Kind::BadCacheEntry => "bad_cache_entry",
            Kind::TornReport => "torn_report",
            Kind::MalformedContract => "malformed_contract",
        }
    }

    /// Whether its recovery is a browser pool's, judged against a launch.
    fn in_the_pool(self) -> bool {
        matches!(
            self,
            Kind::KilledMidBatch
                | Kind::KilledMidNavigation
                | Kind::HungBrowser
                | Kind::RendererCrash
                | Kind::CancelledAcquire
        )
    }
}

/// What the injections of one kind came to.
#[derive(Debug, Default, Clone)]
pub(super) struct Tally {
    pub(super) injected: u64,
    pub(super) survived: u64,
    pub(super) lost: u64,
    /// Per injection: from the fault's detection to the system whole again, ms.
    pub(super) recovery_ms: Vec<f64>,
}

impl Tally {
    /// Counts one injection and its recovery, if it recovered: survived
    /// when every check held, each of them logged when it did not.
    pub(super) fn record(
        &mut self,
        kind: Kind,
        checks: &[(&str, bool)],
        lost: u64,
        recovery_ms: Option<f64>,
    ) {
        self.injected += 1;
        self.lost += lost;
        self.recovery_ms.extend(recovery_ms);
        let failed: Vec<&str> = checks
            .iter()
            .filter(|(_, held)| !held)
            .map(|(what, _)| *what)
            .collect();
        if failed.is_empty() && lost == 0 {
            self.survived += 1;
        } else {
            tracing::warn!(
                kind = kind.name(),
                ?failed,
                lost,
                "a fault was not survived"
            );
        }
    }
}

/// Injections of each kind.
fn per_kind(profile: RunProfile) -> usize {
    profile.scaled(2, 10)
}

async fn run(profile: RunProfile, variant: Variant) -> Result<MetricSummary> {
    let mut s = MetricSummary::new(SCENARIO.spec.name, profile);
    // A control shows its fault on the first injection.
    let n = match variant {
        Variant::Honest => per_kind(profile),
        _ => 1,
    };
    let kinds: Vec<Kind> = match variant {
        Variant::Honest => Kind::ALL.to_vec(),
        Variant::NoHangDeadline => vec![Kind::HungBrowser],
        Variant::DroppingBatch => vec![Kind::KilledMidBatch],
        Variant::NoReplacement => vec![Kind::KilledMidNavigation],
    };
    let mut tallies: Vec<(Kind, Tally)> = Vec::new();
    let browser_kinds: Vec<Kind> = kinds.iter().copied().filter(|k| k.in_the_pool()).collect();
    if !browser_kinds.is_empty() {
        let (found, launch_p50) = browser::inject(&browser_kinds, n, variant).await?;
        tallies.extend(found);
        s.ratio("launch_p50_ms", launch_p50);
    }
    for kind in kinds.iter().copied().filter(|k| !k.in_the_pool()) {
        let tally = tokio::task::spawn_blocking(move || files::inject(kind, n))
            .await
            .map_err(|e| crate::error::Error::task("faults", e))??;
        tallies.push((kind, tally));
    }
    let mut recovery = Vec::new();
    let (mut injected, mut survived, mut lost) = (0, 0, 0);
    let mut table =
        vec!["fault kind | injected | survived | lost | recovery ms (median, max)".to_owned()];
    for (kind, t) in &tallies {
        s.count(&format!("{}_injected", kind.name()), t.injected);
        s.count(&format!("{}_survived", kind.name()), t.survived);
        s.count(&format!("{}_lost", kind.name()), t.lost);
        injected += t.injected;
        survived += t.survived;
        lost += t.lost;
        if kind.in_the_pool() {
            recovery.extend_from_slice(&t.recovery_ms);
        }
        let median = crate::stats::percentile("recovery", &t.recovery_ms, 0.5).ok();
        let max = t.recovery_ms.iter().copied().fold(f64::NAN, f64::max);
        table.push(format!(
            "{} | {} | {} | {} | {}",
            kind.name(),
            t.injected,
            t.survived,
            t.lost,
            match median {
                Some(m) => format!("{m:.0}, {max:.0}"),
                None => "-".into(),
            }
        ));
    }
    s.count("injected", injected);
    s.count("survived", survived);
    s.count("lost", lost);
    if !recovery.is_empty() {
        s.measure("recovery_ms", "ms", &recovery)?;
    }
    s.note(table.join("\n"));
    s.note(format!(
        "{n} faults of each kind on a pool of 2 browsers (min_idle 2, CDP timeout {:?}); survived: the fault named by its own error in time, the pool whole again (a browser launched after a fatal fault, min_idle browsers idle, no ghost in the memory watch) and the work redone right on a new lease; lost: a page or command with neither its result nor an error of its own; recovery: from the fault's detection to the pool standing ready again (for files: to the next right load or read)",
        browser::CDP_TIMEOUT
    ));
    Ok(s)
}
