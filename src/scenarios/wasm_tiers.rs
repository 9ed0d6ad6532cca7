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

use super::{Scenario, ScenarioFuture};
use crate::contract::{FigureKind::*, FigureSpec, ScenarioSpec};
use crate::error::{Error, Result};
use crate::profile::RunProfile;
use crate::report::MetricSummary;
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
            FigureSpec {
                name: "hot_us",
                kind: Measurement("us"),
            },
            FigureSpec {
                name: "warm_us",
                kind: Measurement("us"),
            },
            FigureSpec {
                name: "cold_us",
                kind: Measurement("us"),
            },
            FigureSpec {
                name: "hot_hit_rate",
                kind: Ratio,
            },
            FigureSpec {
                name: "oracle_hit_rate",
                kind: Ratio,
            },
            FigureSpec {
                name: "shifted_hot_hit_rate",
                kind: Ratio,
            },
            FigureSpec {
                name: "shifted_oracle_hit_rate",
                kind: Ratio,
            },
            FigureSpec {
                name: "tiered_total_ms",
                kind: Ratio,
            },
            FigureSpec {
                name: "fifo_total_ms",
                kind: Ratio,
            },
            FigureSpec {
                name: "acquisitions",
                kind: Counter,
            },
            FigureSpec {
                name: "promotions",
                kind: Counter,
            },
            FigureSpec {
                name: "demotions",
                kind: Counter,
            },
            FigureSpec {
                name: "faults",
                kind: Counter,
            },
            FigureSpec {
                name: "seeded_hot",
                kind: Counter,
            },
            FigureSpec {
                name: "seeded_warm",
                kind: Counter,
            },
            FigureSpec {
                name: "seeded_cold",
                kind: Counter,
            },
            FigureSpec {
                name: "seeded_promotions",
                kind: Counter,
            },
            FigureSpec {
                name: "seeded_demotions",
                kind: Counter,
            },
        ],
    },
    run: start,
    needs_browser: false,
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

/// A pool without tiers or frequency tracking: the `budget` modules most
/// recently loaded keep a ready instance, evicted first in, first out; a miss
/// loads from the same AOT cache.
struct FifoPool<'a> {
    engine: &'a WasmEngine,
    cache: &'a AotCache,
    budget: usize,
    order: VecDeque<String>,
    loaded: HashMap<String, (wasmtime::InstancePre<HostState>, Option<Ready>)>,
}

impl FifoPool<'_> {
    fn acquire(&mut self, id: &str, wasm: &[u8]) -> Result<Ready> {
        if let Some((_, ready)) = self.loaded.get_mut(id) {
            if let Some(ready) = ready.take() {
                return Ok(ready);
            }
        }
        let (module, _) = self.cache.load(self.engine, id, wasm)?;
        let pre = self.engine.prepare(id, &module)?;
        let ready = self.instantiate(id, &pre)?;
        if self.order.len() == self.budget {
            if let Some(old) = self.order.pop_front() {
                self.loaded.remove(&old);
            }
        }
        self.order.push_back(id.to_owned());
        self.loaded.insert(id.to_owned(), (pre, None));
        Ok(ready)
    }

    /// Refills the module's ready instance, as the tiered pool does on release.
    fn release(&mut self, id: &str) -> Result<()> {
        if let Some((pre, None)) = self.loaded.get(id) {
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
}

fn run(profile: RunProfile) -> Result<MetricSummary> {
    let engine = WasmEngine::new(WasmEngineConfig::default())?;
    let dir = std::env::temp_dir().join(format!("tidepool-tiers-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let cache = Arc::new(AotCache::open(WasmCacheConfig::new(&dir), &engine)?);
    let modules: Vec<Vec<u8>> = (0..MODULES as u32)
        .map(fixtures::extractor_variant)
        .collect::<Result<_>>()?;
    // Every module has a cache entry: cold means "deserialize", as in service.
    for (i, wasm) in modules.iter().enumerate() {
        cache.load(&engine, &module_id(i), wasm)?;
    }
    let mut s = MetricSummary::new(SCENARIO.spec.name, profile);

    // Part 1: per-tier latency. Module 0 is made hot, 1 warm, and with one
    // hot and one warm slot, 2 has no room above cold: every acquire of it
    // deserializes from the cache.
    let one_each = WasmPoolConfig {
        capacity: 4,
        hot_fraction: 0.25,
        warm_fraction: 0.25,
        ..WasmPoolConfig::default()
    };
    let pool = WasmPool::new(engine.clone(), cache.clone(), one_each)?;
    for (i, wasm) in modules.iter().take(3).enumerate() {
        pool.register(&module_id(i), wasm.clone(), ModuleOptions::default());
    }
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
            if lease.tier() != tier {
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

    // Part 2: the Zipf workload, shifted halfway.
    let n = profile.scaled(1000, 10_000);
    let shift_at = n / 2;
    let trace = zipf_trace(n, shift_at, SEED);
    let pool = WasmPool::new(engine.clone(), cache.clone(), workload_config())?;
    for (i, wasm) in modules.iter().enumerate() {
        pool.register(&module_id(i), wasm.clone(), ModuleOptions::default());
    }
    let served = replay(&pool, &trace)?;
    let k = workload_config().hot_capacity();
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

    // Tiered against FIFO, on fresh pools, interleaved acquisition by
    // acquisition so the machine's noise falls on both alike; the median of
    // REPEATS totals, so one preemption cannot decide the comparison.
    let (mut tiered_totals, mut fifo_totals) = (Vec::new(), Vec::new());
    for _ in 0..REPEATS {
        let tiered = WasmPool::new(engine.clone(), cache.clone(), workload_config())?;
        for (i, wasm) in modules.iter().enumerate() {
            tiered.register(&module_id(i), wasm.clone(), ModuleOptions::default());
        }
        let mut fifo = FifoPool {
            engine: &engine,
            cache: &cache,
            budget: k,
            order: VecDeque::new(),
            loaded: HashMap::new(),
        };
        let (mut tiered_total, mut fifo_total) = (0.0, 0.0);
        for (tick, &m) in trace.iter().enumerate() {
            let id = module_id(m);
            if tick as u64 % INTERVAL == 0 && tick > 0 {
                tiered.rebalance_at(tick as f64)?;
            }
            let tiered_first = tick % 2 == 0;
            for side in [tiered_first, !tiered_first] {
                if side {
                    let t = Instant::now();
                    let mut lease = tiered.acquire_at(&id, tick as f64)?;
                    tiered_total += t.elapsed().as_secs_f64() * 1e3;
                    let _: i32 = lease.call("id", ())?;
                } else {
                    let t = Instant::now();
                    let (mut store, instance) = fifo.acquire(&id, &modules[m])?;
                    fifo_total += t.elapsed().as_secs_f64() * 1e3;
                    let f = instance
                        .get_typed_func::<(), i32>(&mut store, "id")
                        .map_err(|e| Error::Wasm {
                            module: id.clone(),
                            fault: crate::WasmFault::Usage,
                            message: e.to_string(),
                        })?;
                    engine_call(&engine, &mut store, &f, &id)?;
                    fifo.release(&id)?;
                }
            }
        }
        tiered_totals.push(tiered_total);
        fifo_totals.push(fifo_total);
    }
    let tiered_total = crate::stats::percentile("tiered totals", &tiered_totals, 0.5)?;
    let fifo_total = crate::stats::percentile("fifo totals", &fifo_totals, 0.5)?;

    // A fixed-size replay whose tier decisions (not times) are the same in
    // every run and every profile: what the snapshot holds.
    let seeded = WasmPool::new(engine.clone(), cache.clone(), workload_config())?;
    for (i, wasm) in modules.iter().enumerate() {
        seeded.register(&module_id(i), wasm.clone(), ModuleOptions::default());
    }
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

    s.ratio("tiered_total_ms", tiered_total);
    s.ratio("fifo_total_ms", fifo_total);
    s.count("acquisitions", n as u64);
    s.count("promotions", stats.promotions);
    s.count("demotions", stats.demotions);
    s.count("faults", stats.faults);
    s.note(format!(
        "Zipf s={ZIPF_S} over {MODULES} modules, {n} acquisitions, popularity shifted at {shift_at}; hot capacity {k}, warm {}; rebalance every {INTERVAL} acquisitions, half-life {HALF_LIFE} acquisitions; hit rates exclude the first {WARMUP}; after the shift they count from 3 rebalances on",
        workload_config().warm_capacity()
    ));
    s.note(format!(
        "acquisitions served per tier [hot, warm, cold]: {:?}; FIFO pool budget {k} ready instances; totals are the median of {REPEATS} interleaved replays on fresh pools",
        stats.served
    ));
    let _ = std::fs::remove_dir_all(&dir);
    Ok(s)
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
