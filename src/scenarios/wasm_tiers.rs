//! The tiered WASM pool: acquire latency per tier, and a seeded Zipf workload
//! over 50 modules against the oracle (the truly most popular modules hot) and
//! against a simple FIFO pool with the same instance budget.
//!
//! The workload runs on a logical clock (one tick per acquisition, a rebalance
//! every [`INTERVAL`] ticks), so which module sits in which tier is the same in
//! every run; only the times vary.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::Instant;

use super::{Control, Scenario, ScenarioFuture};
use crate::error::{Error, Result};
use crate::profile::RunProfile;
use crate::summary::MetricSummary;
use crate::summary::{FigureSpec, ScenarioSpec};
use crate::testkit::SeededRng;
use crate::wasm::{
    fixtures, AotCache, HostState, ModuleOptions, Tier, WasmCacheConfig, WasmEngine,
    WasmEngineConfig, WasmPool, WasmPoolConfig,
};

pub(super) const SCENARIO: Scenario = Scenario {
    spec: ScenarioSpec {
        name: "wasm_tiers",
        description:
            "tiered WASM pool: per-tier acquire latency; Zipf workload vs oracle and a FIFO pool",
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
            FigureSpec::ratio("tiered_with_rebalance_total_ms"),
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
        if tick as u64 % INTERVAL == 0 && tick > 0 {
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

/// A store and its instance, ready to call.
type Ready = (wasmtime::Store<HostState>, wasmtime::Instance);

/// A pool with the tiered pool's residency but no frequency tracking: the
/// `resident` modules most recently loaded stay deserialised (as the tiered
/// pool's hot plus warm modules do), the newest `hot` of them keep a ready
/// instance (as its hot modules do), and the oldest is evicted first in,
/// first out; a miss loads from the same AOT cache.
///
/// As an oracle ([`FifoPool::oracle`]) it keeps instead the `resident` most
/// popular modules of the distribution in force, known in advance, and
/// never another: for independent draws no policy keeps a better set of that
/// size, so its total bounds what a pool of that residency can expect.
struct FifoPool<'a> {
    engine: &'a WasmEngine,
    cache: &'a AotCache,
    hot: usize,
    resident: usize,
    /// Load order, newest last.
    order: VecDeque<String>,
    loaded: HashMap<String, (wasmtime::InstancePre<HostState>, Option<Ready>)>,
    /// For the oracle: the acquisition at which popularity shifts, and the
    /// acquisitions served so far.
    oracle: Option<(usize, usize)>,
}

impl<'a> FifoPool<'a> {
    /// A FIFO pool with the hot capacity of a tiered pool of `config`,
    /// keeping `resident` modules deserialised.
    fn new(
        engine: &'a WasmEngine,
        cache: &'a AotCache,
        config: &WasmPoolConfig,
        resident: usize,
    ) -> Self {
        FifoPool {
            engine,
            cache,
            hot: config.hot_capacity(),
            resident: resident.max(config.hot_capacity()),
            order: VecDeque::new(),
            loaded: HashMap::new(),
            oracle: None,
        }
    }

    /// The oracle of the same residency for a trace whose popularity shifts
    /// at `shift_at` (see [`zipf_trace`]).
    fn oracle(
        engine: &'a WasmEngine,
        cache: &'a AotCache,
        config: &WasmPoolConfig,
        resident: usize,
        shift_at: usize,
    ) -> Self {
        FifoPool {
            oracle: Some((shift_at, 0)),
            ..FifoPool::new(engine, cache, config, resident)
        }
    }

    /// The oracle's acquire: module `m` stays loaded when its popularity rank
    /// is below `resident`, and keeps a ready instance below `hot`. What the
    /// old distribution's set held is dropped at the shift, untimed: the
    /// bound only gets lower for it.
    fn acquire_as_oracle(&mut self, m: usize, id: &str, wasm: &[u8]) -> Result<Ready> {
        let Some((shift_at, served)) = self.oracle.as_mut() else {
            return self.acquire(id, wasm);
        };
        if *served == *shift_at {
            self.loaded.clear();
        }
        let shifted = *served >= *shift_at;
        *served += 1;
        let rank = if shifted {
            (m + MODULES - MODULES / 2) % MODULES
        } else {
            m
        };
        if let Some((pre, ready)) = self.loaded.get_mut(id) {
            return match ready.take() {
                Some(ready) => Ok(ready),
                None => {
                    let pre = pre.clone();
                    self.instantiate(id, &pre)
                }
            };
        }
        let (module, _) = self.cache.load(self.engine, id, wasm)?;
        let pre = self.engine.prepare(id, &module)?;
        let ready = self.instantiate(id, &pre)?;
        if rank < self.resident {
            self.loaded.insert(id.to_owned(), (pre, None));
        }
        Ok(ready)
    }

    fn acquire(&mut self, id: &str, wasm: &[u8]) -> Result<Ready> {
        if let Some((pre, ready)) = self.loaded.get_mut(id) {
            return match ready.take() {
                Some(ready) => Ok(ready),
                None => {
                    let pre = pre.clone();
                    self.instantiate(id, &pre)
                }
            };
        }
        let (module, _) = self.cache.load(self.engine, id, wasm)?;
        let pre = self.engine.prepare(id, &module)?;
        let ready = self.instantiate(id, &pre)?;
        self.order.push_back(id.to_owned());
        if self.order.len() > self.resident {
            if let Some(old) = self.order.pop_front() {
                self.loaded.remove(&old);
            }
        }
        // The module that just left the newest `hot` drops its ready instance.
        if let Some(cooled) = self.order.len().checked_sub(self.hot + 1) {
            if let Some(slot) = self.loaded.get_mut(&self.order[cooled]) {
                slot.1 = None;
            }
        }
        self.loaded.insert(id.to_owned(), (pre, None));
        Ok(ready)
    }

    /// Refills the module's ready instance if it is among the newest `hot`
    /// (for the oracle: the `hot` most popular), as the tiered pool does for
    /// a hot module on release.
    fn release(&mut self, m: usize, id: &str) -> Result<()> {
        let hot = match self.oracle {
            Some((shift_at, served)) => {
                let rank = if served > shift_at {
                    (m + MODULES - MODULES / 2) % MODULES
                } else {
                    m
                };
                rank < self.hot
            }
            None => self.order.iter().rev().take(self.hot).any(|o| o == id),
        };
        if let (true, Some((pre, None))) = (hot, self.loaded.get(id)) {
            let pre = pre.clone();
            let ready = self.instantiate(id, &pre)?;
            if let Some(slot) = self.loaded.get_mut(id) {
                slot.1 = Some(ready);
            }
        }
        Ok(())
    }

    fn instantiate(&self, id: &str, pre: &wasmtime::InstancePre<HostState>) -> Result<Ready> {
        let mut store = self.engine.store();
        let instance = pre.instantiate(&mut store).map_err(|e| Error::Wasm {
            module: id.to_owned(),
            fault: crate::WasmFault::Instantiate,
            message: e.to_string(),
        })?;
        Ok((store, instance))
    }

    /// One acquisition of module `m`, call and release; returns the acquire
    /// time in ms.
    fn serve(&mut self, m: usize, id: &str, wasm: &[u8]) -> Result<f64> {
        let t = Instant::now();
        let (mut store, instance) = self.acquire_as_oracle(m, id, wasm)?;
        let took = t.elapsed().as_secs_f64() * 1e3;
        let f = instance
            .get_typed_func::<(), i32>(&mut store, "id")
            .map_err(|e| Error::Wasm {
                module: id.to_owned(),
                fault: crate::WasmFault::Usage,
                message: e.to_string(),
            })?;
        engine_call(self.engine, &mut store, &f, id)?;
        self.release(m, id)?;
        Ok(took)
    }
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
    /// The "tiered" side of the comparison is a FIFO pool too.
    FifoBothSides,
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
        what: "the tiered side replaced by a FIFO pool of the same residency",
        rejects: &["beats_fifo"],
        run: |p| super::blocking("wasm_tiers", p, |p| run_variant(p, Variant::FifoBothSides)),
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
    dir: std::path::PathBuf,
}

impl Bench {
    fn new(trapping: Option<usize>) -> Result<Bench> {
        let engine = WasmEngine::new(WasmEngineConfig::default())?;
        let dir = std::env::temp_dir().join(format!(
            "tidepool-tiers-{}-{}",
            std::process::id(),
            crate::testkit::unique_suffix()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        let cache = Arc::new(AotCache::open(WasmCacheConfig::new(&dir), &engine)?);
        let modules: Vec<Vec<u8>> = (0..MODULES as u32)
            .map(|i| match trapping {
                Some(t) if t == i as usize => fixtures::trapping_variant(i),
                _ => fixtures::extractor_variant(i),
            })
            .collect::<Result<_>>()?;
        // Every module has a cache entry: cold means "deserialize", as in service.
        for (i, wasm) in modules.iter().enumerate() {
            cache.load(&engine, &module_id(i), wasm)?;
        }
        Ok(Bench {
            engine,
            cache,
            modules,
            dir,
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

impl Drop for Bench {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
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
            tiered_vs_fifo(&bench, &mut s, profile, false)?;
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
        Variant::FifoBothSides => tiered_vs_fifo(&Bench::new(None)?, &mut s, profile, true)?,
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

/// Part 1: per-tier latency. Module 0 is made hot, 1 warm, and with one hot
/// and one warm slot, 2 has no room above cold: every acquire of it
/// deserializes from the cache. With `check_tiers` a module served from
/// another tier than intended fails the run.
fn tier_latencies(
    bench: &Bench,
    s: &mut MetricSummary,
    profile: RunProfile,
    check_tiers: bool,
) -> Result<()> {
    let one_each = if check_tiers {
        WasmPoolConfig {
            capacity: 4,
            hot_fraction: 0.25,
            warm_fraction: 0.25,
            ..WasmPoolConfig::default()
        }
    } else {
        WasmPoolConfig {
            capacity: 4,
            hot_fraction: 0.0,
            warm_fraction: 0.0,
            ..WasmPoolConfig::default()
        }
    };
    let pool = bench.pool(one_each)?;
    for _ in 0..5 {
        drop(pool.acquire_at(&module_id(0), 0.0)?);
    }
    drop(pool.acquire_at(&module_id(1), 0.0)?);
    pool.rebalance_at(0.0)?;
    let (mut hot, mut warm, mut cold) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..profile.iterations() {
        for (m, samples, tier) in [
            (0, &mut hot, Tier::Hot),
            (1, &mut warm, Tier::Warm),
            (2, &mut cold, Tier::Cold),
        ] {
            let t = Instant::now();
            let lease = pool.acquire_at(&module_id(m), 0.0)?;
            samples.push(t.elapsed().as_secs_f64() * 1e6);
            if check_tiers && lease.tier() != tier {
                return Err(Error::Wasm {
                    module: module_id(m),
                    fault: crate::WasmFault::Usage,
                    message: format!("expected {tier:?}, served {:?}", lease.tier()),
                });
            }
        }
    }
    s.measure("hot_us", "us", &hot)?;
    s.measure("warm_us", "us", &warm)?;
    s.measure("cold_us", "us", &cold)?;
    Ok(())
}

/// Part 2: the Zipf workload, shifted halfway, against the oracle.
fn zipf_rates(
    bench: &Bench,
    s: &mut MetricSummary,
    profile: RunProfile,
    config: WasmPoolConfig,
) -> Result<()> {
    let n = profile.scaled(1000, 10_000);
    let shift_at = n / 2;
    let trace = zipf_trace(n, shift_at, SEED);
    let k = config.hot_capacity();
    let pool = bench.pool(config.clone())?;
    let served = replay(&pool, &trace)?;
    let before = WARMUP..shift_at;
    let after = (shift_at + 3 * INTERVAL as usize).min(n)..n;
    s.ratio("hot_hit_rate", hot_rate(&served, before.clone()));
    s.ratio("oracle_hit_rate", oracle_rate(&trace, before, false, k));
    s.ratio("shifted_hot_hit_rate", hot_rate(&served, after.clone()));
    s.ratio(
        "shifted_oracle_hit_rate",
        oracle_rate(&trace, after, true, k),
    );
    let stats = pool.stats();
    s.count("acquisitions", n as u64);
    s.count("promotions", stats.promotions);
    s.count("demotions", stats.demotions);
    s.count("faults", stats.faults);
    s.note(format!(
        "Zipf s={ZIPF_S} over {MODULES} modules, {n} acquisitions, popularity shifted at {shift_at}; hot capacity {k}, warm {}; rebalance every {INTERVAL} acquisitions, half-life {:?}; hit rates exclude the first {WARMUP}; after the shift they count from 3 rebalances on",
        config.warm_capacity(), config.half_life
    ));
    s.note(format!(
        "acquisitions served per tier [hot, warm, cold]: {:?}",
        stats.served
    ));
    Ok(())
}

/// Part 3: tiered against FIFO, on fresh pools, interleaved acquisition by
/// acquisition so the machine's noise falls on every side alike; the median
/// of REPEATS totals, so one preemption cannot decide the comparison.
///
/// The headline FIFO pool keeps as many ready instances as the tiered pool
/// keeps hot modules, and the tiered total leaves out its rebalances. A
/// second FIFO pool keeps the tiered pool's whole residency (hot plus warm
/// modules deserialised), and the tiered total with its rebalances is
/// reported beside it: the like-for-like figures, reported, not yet judged
/// (see the note). With `fifo_both` the tiered side is a FIFO pool too (a
/// negative control).
fn tiered_vs_fifo(
    bench: &Bench,
    s: &mut MetricSummary,
    profile: RunProfile,
    fifo_both: bool,
) -> Result<()> {
    let n = profile.scaled(1000, 10_000);
    let trace = zipf_trace(n, n / 2, SEED);
    let config = workload_config();
    let (k, resident) = (
        config.hot_capacity(),
        config.hot_capacity() + config.warm_capacity(),
    );
    let mut totals: [Vec<f64>; 5] = Default::default();
    for _ in 0..REPEATS {
        let tiered = bench.pool(config.clone())?;
        let (engine, cache) = (&bench.engine, &bench.cache);
        let mut stand_in = FifoPool::new(engine, cache, &config, k);
        let mut fifo = FifoPool::new(engine, cache, &config, k);
        let mut fifo_equal = FifoPool::new(engine, cache, &config, resident);
        let mut oracle = FifoPool::oracle(engine, cache, &config, resident, n / 2);
        // tiered, its rebalances, FIFO, FIFO with equal residency, oracle
        let mut total = [0.0; 5];
        for (tick, &m) in trace.iter().enumerate() {
            let (id, wasm) = (module_id(m), &bench.modules[m]);
            for side in (0..4).map(|i| (i + tick) % 4) {
                match side {
                    0 if fifo_both => total[0] += stand_in.serve(m, &id, wasm)?,
                    0 => {
                        if tick as u64 % INTERVAL == 0 && tick > 0 {
                            let t = Instant::now();
                            tiered.rebalance_at(tick as f64)?;
                            total[1] += t.elapsed().as_secs_f64() * 1e3;
                        }
                        let t = Instant::now();
                        let mut lease = tiered.acquire_at(&id, tick as f64)?;
                        total[0] += t.elapsed().as_secs_f64() * 1e3;
                        let _: i32 = lease.call("id", ())?;
                    }
                    1 => total[2] += fifo.serve(m, &id, wasm)?,
                    2 => total[3] += fifo_equal.serve(m, &id, wasm)?,
                    _ => total[4] += oracle.serve(m, &id, wasm)?,
                }
            }
        }
        for (all, one) in totals.iter_mut().zip(total) {
            all.push(one);
        }
    }
    let median = |i: usize| crate::stats::percentile("replay totals", &totals[i], 0.5);
    let (tiered, rebalance, fifo) = (median(0)?, median(1)?, median(2)?);
    let (fifo_equal, oracle) = (median(3)?, median(4)?);
    let with_rebalance: Vec<f64> = totals[0]
        .iter()
        .zip(&totals[1])
        .map(|(a, b)| a + b)
        .collect();
    let with_rebalance = crate::stats::percentile("replay totals", &with_rebalance, 0.5)?;
    s.ratio("tiered_total_ms", tiered);
    s.ratio("fifo_total_ms", fifo);
    s.ratio("tiered_with_rebalance_total_ms", with_rebalance);
    s.ratio("fifo_equal_residency_total_ms", fifo_equal);
    s.ratio("oracle_equal_residency_total_ms", oracle);
    s.note(format!(
        "tiered vs FIFO: the headline FIFO pool keeps {k} modules with a ready instance; the tiered pool keeps {k} hot and {} warm, and its total leaves out its rebalances (median {rebalance:.2} ms); totals are the median of {REPEATS} interleaved replays of {n} acquisitions on fresh pools",
        config.warm_capacity(),
    ));
    s.note(format!(
        "like for like, {resident} modules deserialised and {k} ready on every side: tiered with its rebalances {with_rebalance:.2} ms ({:.3} of FIFO), FIFO {fifo_equal:.2} ms, and an oracle keeping the {resident} most popular modules of the distribution in force {oracle:.2} ms ({:.3} of FIFO): no pool of this residency can go below the oracle, so a limit of 0.5 of FIFO is out of reach whenever the oracle's share is above it",
        with_rebalance / fifo_equal,
        oracle / fifo_equal,
    ));
    Ok(())
}

/// A fixed-size replay whose tier decisions (not times) are the same in every
/// run and every profile: what the snapshot holds.
fn seeded_replay(bench: &Bench, s: &mut MetricSummary) -> Result<()> {
    let seeded = bench.pool(workload_config())?;
    replay(&seeded, &zipf_trace(SEEDED_N, SEEDED_N / 2, SEED))?;
    let seeded = seeded.stats();
    for (name, value) in [
        ("seeded_hot", seeded.served[0]),
        ("seeded_warm", seeded.served[1]),
        ("seeded_cold", seeded.served[2]),
        ("seeded_promotions", seeded.promotions),
        ("seeded_demotions", seeded.demotions),
    ] {
        s.count(name, value);
    }
    Ok(())
}

fn engine_call(
    engine: &WasmEngine,
    store: &mut wasmtime::Store<HostState>,
    f: &wasmtime::TypedFunc<(), i32>,
    id: &str,
) -> Result<i32> {
    engine.arm(store);
    f.call(&mut *store, ()).map_err(|e| Error::Wasm {
        module: id.to_owned(),
        fault: crate::WasmFault::Trap,
        message: e.to_string(),
    })
}
