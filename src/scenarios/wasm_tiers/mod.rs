//! The tiered WASM pool: acquire latency per tier, and a seeded Zipf workload
//! over 50 modules against the oracle (the truly most popular modules hot) and
//! against FIFO pools: one with the same residency, one with as many modules
//! as the tiered pool keeps hot.
//!
//! The workload runs on a logical clock (one tick per acquisition, a rebalance
//! every [`INTERVAL`] ticks), so which module sits in which tier is the same in
//! every run; only the times vary.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::Instant;

use super::{Control, Scenario, ScenarioFuture};
use crate::error::Result;
use crate::profile::RunProfile;
use crate::summary::MetricSummary;
use crate::summary::{FigureSpec, ScenarioSpec};
use crate::testkit::wasm_fixtures as fixtures;
use crate::testkit::SeededRng;
use crate::wasm::{
    AotCache, HostState, ModuleOptions, Tier, WasmCacheConfig, WasmEngine, WasmEngineConfig,
    WasmPool, WasmPoolConfig,
};

mod fifo;
mod parts;
use fifo::*;
use parts::*;

pub(super) const SCENARIO: Scenario = Scenario {
    spec: ScenarioSpec {
        name: "wasm_tiers",
        description:
            "tiered WASM pool: per-tier acquire latency; Zipf workload vs oracle and FIFO pools",
        figures: &[
            FigureSpec::measurement("hot_us", "us"),
            FigureSpec::measurement("warm_us", "us"),
            FigureSpec::measurement("cold_us", "us"),
            FigureSpec::ratio("hot_hit_rate"),
            FigureSpec::ratio("oracle_hit_rate"),
            FigureSpec::ratio("shifted_hot_hit_rate"),
            FigureSpec::ratio("shifted_oracle_hit_rate"),
            FigureSpec::ratio("tiered_total_ms"),
            FigureSpec::ratio("fifo_total_ms"),
            FigureSpec::ratio("oracle_equal_residency_total_ms"),
            FigureSpec::ratio("fifo_equal_residency_total_ms"),
            FigureSpec::counter("acquisitions").scales(),
            FigureSpec::counter("promotions").scales(),
            FigureSpec::counter("demotions").scales(),
            FigureSpec::counter("faults"),
            FigureSpec::counter("seeded_hot"),
            FigureSpec::counter("seeded_warm"),
            FigureSpec::counter("seeded_cold"),
            FigureSpec::counter("seeded_promotions"),
            FigureSpec::counter("seeded_demotions"),
        ],
    },
    run: start,
    needs_browser: false,
    controls: CONTROLS,
};

fn start(profile: RunProfile) -> ScenarioFuture {
    super::blocking("wasm_tiers", profile, run)
}

/// Modules of the workload.
pub(crate) const MODULES: usize = 50;
/// Zipf exponent of module popularity.
const ZIPF_S: f64 = 1.1;
/// Logical ticks (acquisitions) between rebalances.
pub(crate) const INTERVAL: u64 = 100;
/// Half-life of the access rate, in ticks.
const HALF_LIFE: f64 = 100.0;
/// Acquisitions before the hit rate counts.
const WARMUP: usize = 300;
const SEED: u64 = 0x5a17_0f00;
/// Paired tiered/FIFO replays; the comparison takes the median of their totals.
const REPEATS: usize = 5;
/// Acquisitions of the profile-independent replay behind the snapshot.
const SEEDED_N: usize = 1000;

/// The pool config of the workload: 50 modules, hot 25 %, warm 50 %.
pub(crate) fn workload_config() -> WasmPoolConfig {
    WasmPoolConfig {
        capacity: MODULES,
        half_life: std::time::Duration::from_secs_f64(HALF_LIFE),
        ..WasmPoolConfig::default()
    }
}

/// A seeded Zipf trace of `n` module indices; after `shift_at`, popularity
/// rank `r` maps to module `(r + MODULES / 2) % MODULES`.
pub(crate) fn zipf_trace(n: usize, shift_at: usize, seed: u64) -> Vec<usize> {
    let weights: Vec<f64> = (1..=MODULES).map(|k| (k as f64).powf(-ZIPF_S)).collect();
    let total: f64 = weights.iter().sum();
    let cdf: Vec<f64> = weights
        .iter()
        .scan(0.0, |acc, w| {
            *acc += w / total;
            Some(*acc)
        })
        .collect();
    let mut rng = SeededRng::new(seed);
    (0..n)
        .map(|i| {
            let u = rng.next_f64();
            let rank = cdf.iter().position(|&c| u < c).unwrap_or(MODULES - 1);
            if i >= shift_at {
                (rank + MODULES / 2) % MODULES
            } else {
                rank
            }
        })
        .collect()
}

pub(crate) fn module_id(i: usize) -> String {
    format!("extractor-{i:02}")
}

/// Replays `trace` through `pool` on the logical clock; returns, per
/// acquisition, the tier that served it and its acquire time in microseconds.
pub(crate) fn replay(pool: &WasmPool, trace: &[usize]) -> Result<Vec<(Tier, f64)>> {
    let mut out = Vec::with_capacity(trace.len());
    for (tick, &m) in trace.iter().enumerate() {
        let now = tick as f64;
        if (tick as u64).is_multiple_of(INTERVAL) && tick > 0 {
            pool.rebalance_at(now)?;
        }
        let t = Instant::now();
        let mut lease = pool.acquire_at(&module_id(m), now)?;
        let us = t.elapsed().as_secs_f64() * 1e6;
        let _: i32 = lease.call("id", ())?;
        out.push((lease.tier(), us));
    }
    Ok(out)
}

/// The share of `trace[range]` whose module is among the `k` most popular of
/// the distribution in force (what an oracle with `k` hot slots would hit).
fn oracle_rate(trace: &[usize], range: std::ops::Range<usize>, shifted: bool, k: usize) -> f64 {
    let top: HashSet<usize> = (0..k)
        .map(|r| {
            if shifted {
                (r + MODULES / 2) % MODULES
            } else {
                r
            }
        })
        .collect();
    let slice = &trace[range];
    slice.iter().filter(|m| top.contains(m)).count() as f64 / slice.len().max(1) as f64
}

fn hot_rate(served: &[(Tier, f64)], range: std::ops::Range<usize>) -> f64 {
    let slice = &served[range];
    slice.iter().filter(|(t, _)| *t == Tier::Hot).count() as f64 / slice.len().max(1) as f64
}

/// Which pool the run measures: the real one, or a bad variant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Variant {
    Honest,
    /// A pool that keeps nothing resident: hot and warm fractions of 0.
    NothingResident,
    /// An access rate that forgets within one tick: recency, not frequency.
    RecencyNotFrequency,
    /// An access rate that never decays: the past outweighs the present.
    NeverForgets,
    /// The "tiered" side of the comparison is a FIFO pool too, of this
    /// residency.
    FifoBothSides(Residency),
    /// One extractor of the workload traps on every call.
    TrappingExtractor,
}

/// The negative controls.
const CONTROLS: &[Control] = &[
    Control {
        name: "nothing_resident",
        what: "a pool that keeps no module hot or warm (fractions 0): every acquire deserializes",
        rejects: &["hot_below_warm", "warm_below_cold", "hot_vs_cold"],
        run: |p| super::blocking("wasm_tiers", p, |p| run_variant(p, Variant::NothingResident)),
    },
    Control {
        name: "recency_not_frequency",
        what: "an access rate with a half-life of 0.01 acquisitions: promotion by recency, as a naive LRU",
        rejects: &["hot_hit_rate_vs_oracle"],
        run: |p| super::blocking("wasm_tiers", p, |p| run_variant(p, Variant::RecencyNotFrequency)),
    },
    Control {
        name: "never_forgets",
        what: "an access rate with a half-life of 10^9 acquisitions: the popular set of the past stays hot",
        rejects: &["recovers_after_shift"],
        run: |p| super::blocking("wasm_tiers", p, |p| run_variant(p, Variant::NeverForgets)),
    },
    Control {
        name: "fifo_both_sides",
        what: "the tiered side replaced by a FIFO pool of the same residency (37 modules deserialised)",
        rejects: &["beats_fifo"],
        run: |p| {
            super::blocking("wasm_tiers", p, |p| {
                run_variant(p, Variant::FifoBothSides(Residency::Equal))
            })
        },
    },
    Control {
        name: "fifo_instance_pool_both_sides",
        what: "the tiered side replaced by a FIFO pool keeping only as many modules as the tiered pool keeps hot",
        rejects: &["beats_fifo_instance_pool"],
        run: |p| {
            super::blocking("wasm_tiers", p, |p| {
                run_variant(p, Variant::FifoBothSides(Residency::ReadyBudget))
            })
        },
    },
    Control {
        name: "trapping_extractor",
        what: "one extractor of the workload traps on every call",
        rejects: &["no_faults"],
        run: |p| super::blocking("wasm_tiers", p, |p| run_variant(p, Variant::TrappingExtractor)),
    },
];

/// What every part shares: the engine, the cache and the modules in it.
struct Bench {
    engine: WasmEngine,
    cache: Arc<AotCache>,
    modules: Vec<Vec<u8>>,
    /// Removed when the bench is dropped.
    _dir: tempfile::TempDir,
}

impl Bench {
    fn new(trapping: Option<usize>) -> Result<Bench> {
        let engine = WasmEngine::new(WasmEngineConfig::default())?;
        let dir = crate::testkit::scratch_dir("tidepool-tiers-")?;
        let cache = Arc::new(AotCache::open(WasmCacheConfig::new(dir.path()), &engine)?);
        let modules: Vec<Vec<u8>> = (0..MODULES as u32)
            .map(|i| match trapping {
                Some(t) if t == i as usize => fixtures::trapping_variant(i),
                _ => fixtures::extractor_variant(i),
            })
            .collect::<tidepool_pools::Result<_>>()?;
        // Every module has a cache entry: cold means "deserialize", as in service.
        for (i, wasm) in modules.iter().enumerate() {
            cache.load(&engine, &module_id(i), wasm)?;
        }
        Ok(Bench {
            engine,
            cache,
            modules,
            _dir: dir,
        })
    }

    fn pool(&self, config: WasmPoolConfig) -> Result<WasmPool> {
        let pool = WasmPool::new(self.engine.clone(), self.cache.clone(), config)?;
        for (i, wasm) in self.modules.iter().enumerate() {
            pool.register(&module_id(i), wasm.clone(), ModuleOptions::default());
        }
        Ok(pool)
    }
}

fn run(profile: RunProfile) -> Result<MetricSummary> {
    run_variant(profile, Variant::Honest)
}

fn run_variant(profile: RunProfile, variant: Variant) -> Result<MetricSummary> {
    let mut s = MetricSummary::new(SCENARIO.spec.name, profile);
    match variant {
        Variant::Honest => {
            let bench = Bench::new(None)?;
            tier_latencies(&bench, &mut s, profile, true)?;
            zipf_rates(&bench, &mut s, profile, workload_config())?;
            tiered_vs_fifo(&bench, &mut s, profile, None)?;
            seeded_replay(&bench, &mut s)?;
        }
        // Three tiers that are one: their medians differ only by noise, so
        // the control takes enough samples that noise cannot order them.
        Variant::NothingResident => tier_latencies(
            &Bench::new(None)?,
            &mut s,
            RunProfile::new(profile.depth, Some(300)),
            false,
        )?,
        Variant::RecencyNotFrequency | Variant::NeverForgets => {
            let half_life = if variant == Variant::NeverForgets {
                1e9
            } else {
                0.01
            };
            let config = WasmPoolConfig {
                half_life: std::time::Duration::from_secs_f64(half_life),
                ..workload_config()
            };
            zipf_rates(&Bench::new(None)?, &mut s, profile, config)?;
        }
        Variant::FifoBothSides(residency) => {
            tiered_vs_fifo(&Bench::new(None)?, &mut s, profile, Some(residency))?
        }
        Variant::TrappingExtractor => {
            // The most popular module traps: its faults show at once.
            let bench = Bench::new(Some(0))?;
            let pool = bench.pool(workload_config())?;
            for (tick, &m) in zipf_trace(profile.scaled(200, 1000), usize::MAX, SEED)
                .iter()
                .enumerate()
            {
                let mut lease = pool.acquire_at(&module_id(m), tick as f64)?;
                // A trap is the pool's to count; the control goes on.
                let _ = lease.call::<(), i32>("id", ());
            }
            s.count("faults", pool.stats().faults);
        }
    }
    Ok(s)
}
