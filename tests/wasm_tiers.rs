//! The tiered WASM pool: its contract, faults that must never poison the pool,
//! and leases that return their instance exactly once.

use std::sync::Arc;
use std::time::{Duration, Instant};

use assert_matches::assert_matches;
use tidepool::harness::run_contract;
use tidepool::testkit::wasm_fixtures as fixtures;
use tidepool::wasm::{
    AotCache, ModuleOptions, Tier, WasmCacheConfig, WasmEngine, WasmEngineConfig, WasmPool,
    WasmPoolConfig,
};
use tidepool_pools::{Error, WasmFault};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wasm_tiers_meets_its_contract() {
    let report = run_contract("wasm_tiers").await;
    let summary = &report.summary;
    assert_eq!(
        summary.counters["seeded_hot"]
            + summary.counters["seeded_warm"]
            + summary.counters["seeded_cold"],
        1000
    );
    tidepool::assert_contract_snapshot!("wasm_tiers", report);
}

fn pool(engine: &WasmEngine, tag: &str) -> (WasmPool, std::path::PathBuf) {
    let dir =
        std::env::temp_dir().join(format!("tidepool-tiers-test-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let cache = Arc::new(AotCache::open(WasmCacheConfig::new(&dir), engine).unwrap());
    (
        WasmPool::new(
            engine.clone(),
            cache,
            WasmPoolConfig {
                capacity: 8,
                ..WasmPoolConfig::default()
            },
        )
        .unwrap(),
        dir,
    )
}

/// Makes `id` hot: acquired, then promoted by a rebalance.
fn make_hot(pool: &WasmPool, id: &str) {
    drop(pool.acquire_at(id, 0.0).unwrap());
    pool.rebalance_at(0.0).unwrap();
    assert_eq!(pool.tier(id), Some(Tier::Hot));
}

#[test]
fn a_runaway_guest_is_interrupted_and_the_pool_keeps_serving() {
    let engine = WasmEngine::new(WasmEngineConfig {
        call_deadline: Duration::from_millis(100),
        ..WasmEngineConfig::default()
    })
    .unwrap();
    let (pool, dir) = pool(&engine, "spin");
    pool.register(
        "spin",
        fixtures::spin().unwrap(),
        ModuleOptions { stateless: true },
    );
    pool.register(
        "x",
        fixtures::extractor().unwrap(),
        ModuleOptions::default(),
    );
    make_hot(&pool, "spin");

    let mut lease = pool.acquire_at("spin", 1.0).unwrap();
    let t = Instant::now();
    let err = lease.call::<(), ()>("spin", ()).unwrap_err();
    assert!(
        t.elapsed() < Duration::from_secs(2),
        "interrupted after {:?}",
        t.elapsed()
    );
    assert_matches!(err, Error::Wasm { ref module, fault: WasmFault::Deadline, .. } if module == "spin");
    assert!(lease.faulted());
    assert_matches!(
        lease.call::<(), ()>("spin", ()),
        Err(Error::Wasm {
            fault: WasmFault::Usage,
            ..
        })
    );
    drop(lease);

    // Even for a stateless module, the interrupted instance is not handed out again.
    let again = pool.acquire_at("spin", 2.0).unwrap();
    assert!(!again.faulted());
    drop(again);
    let mut other = pool.acquire_at("x", 2.0).unwrap();
    let html = b"<a href=1>1</a> <a href=2>2</a>";
    let ptr = other.write_input(html).unwrap();
    assert_eq!(
        other
            .call::<(u32, u32), i32>("count_links", (ptr, html.len() as u32))
            .unwrap(),
        2
    );
    assert_eq!(pool.stats().faults, 1);
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn a_guest_growing_past_its_memory_limit_fails_cleanly() {
    let engine = WasmEngine::new(WasmEngineConfig {
        max_memory_bytes: 4 << 20,
        ..WasmEngineConfig::default()
    })
    .unwrap();
    let (pool, dir) = pool(&engine, "grow");
    pool.register(
        "grow",
        fixtures::grow().unwrap(),
        ModuleOptions { stateless: true },
    );
    make_hot(&pool, "grow");
    let mut lease = pool.acquire_at("grow", 1.0).unwrap();
    let err = lease.call::<(), ()>("grow", ()).unwrap_err();
    assert_matches!(
        err,
        Error::Wasm {
            fault: WasmFault::MemoryLimit,
            ..
        },
        "{err}"
    );
    assert!(
        err.to_string().contains("grow") && err.to_string().contains("memory limit"),
        "{err}"
    );
    drop(lease);
    let fresh = pool.acquire_at("grow", 2.0).unwrap();
    assert!(!fresh.faulted());
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn each_lease_gets_a_fresh_instance_unless_the_module_is_stateless() {
    let engine = WasmEngine::new(WasmEngineConfig::default()).unwrap();
    let (pool, dir) = pool(&engine, "fresh");
    pool.register(
        "x",
        fixtures::extractor().unwrap(),
        ModuleOptions::default(),
    );
    pool.register(
        "s",
        fixtures::extractor_variant(7).unwrap(),
        ModuleOptions { stateless: true },
    );
    for id in ["x", "s"] {
        drop(pool.acquire_at(id, 0.0).unwrap());
    }
    pool.rebalance_at(0.0).unwrap();
    // The bump allocator's heap pointer is per-instance state: a fresh
    // instance starts it at 1024 again, a reused one does not.
    let heap_after_alloc = |id: &str| {
        let mut l = pool.acquire_at(id, 1.0).unwrap();
        assert_eq!(l.tier(), Tier::Hot);
        l.write_input(b"0123456789").unwrap()
    };
    assert_eq!(heap_after_alloc("x"), 1024);
    assert_eq!(heap_after_alloc("x"), 1024, "state leaked between leases");
    assert_eq!(heap_after_alloc("s"), 1024);
    assert_eq!(
        heap_after_alloc("s"),
        1034,
        "a stateless module's instance is reused"
    );
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn unknown_modules_and_bad_configs_are_named() {
    let engine = WasmEngine::new(WasmEngineConfig::default()).unwrap();
    let (pool, dir) = pool(&engine, "unknown");
    let err = pool.acquire("nope").unwrap_err();
    assert!(
        err.to_string().contains("nope") && err.to_string().contains("no module registered"),
        "{err}"
    );
    assert!(pool.register(
        "x",
        fixtures::extractor().unwrap(),
        ModuleOptions::default()
    ));
    assert!(
        !pool.register(
            "x",
            fixtures::extractor().unwrap(),
            ModuleOptions::default()
        ),
        "registered twice"
    );
    assert_eq!(pool.stats().modules, [0, 0, 1]);
    let err = WasmPool::new(
        engine.clone(),
        Arc::new(AotCache::open(WasmCacheConfig::new(&dir), &engine).unwrap()),
        WasmPoolConfig {
            hot_fraction: 0.8,
            warm_fraction: 0.5,
            ..WasmPoolConfig::default()
        },
    )
    .unwrap_err();
    assert!(err.to_string().contains("wasm_pool.warm_fraction"), "{err}");
    let err = WasmEngine::new(WasmEngineConfig {
        call_deadline: Duration::ZERO,
        ..WasmEngineConfig::default()
    })
    .unwrap_err();
    assert!(err.to_string().contains("wasm.call_deadline"), "{err}");
    std::fs::remove_dir_all(dir).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_abandoned_acquires_and_leases_leak_no_instance() {
    use std::sync::atomic::{AtomicU64, Ordering};
    use tidepool::testkit::SeededRng;

    // A small instance pool: a handful of leaked instances would show as
    // acquires that fail at the end.
    let engine = WasmEngine::new(WasmEngineConfig {
        max_instances: 16,
        ..WasmEngineConfig::default()
    })
    .unwrap();
    let (pool, dir) = pool(&engine, "abandon");
    for i in 0..4 {
        pool.register(
            &format!("m{i}"),
            fixtures::extractor_variant(i).unwrap(),
            ModuleOptions::default(),
        );
    }
    pool.register(
        "trap",
        fixtures::trapping_variant(7).unwrap(),
        ModuleOptions::default(),
    );
    let mut rng = SeededRng::new(0xa5a5);
    let finished = Arc::new(AtomicU64::new(0));
    let (mut abandoned, mut traps) = (0u64, 0u64);
    for round in 0..1000u64 {
        let pick = rng.next_u64() % 5;
        let id = if pick == 4 {
            traps += 1;
            "trap".to_owned()
        } else {
            format!("m{pick}")
        };
        let end = rng.next_u64() % 3;
        let deadline = Duration::from_micros(rng.next_u64() % 200);
        let (p, done) = (pool.clone(), finished.clone());
        // The acquire is synchronous: what a caller gives up is its wait on
        // it, and the lease then ends wherever the work had got to.
        let work = tokio::task::spawn_blocking(move || {
            let outcome = p.acquire_at(&id, round as f64).map(|mut lease| {
                if end > 0 {
                    let _ = lease.call::<(), i32>("id", ());
                }
                if end == 2 {
                    drop(lease);
                }
            });
            done.fetch_add(1, Ordering::SeqCst);
            outcome
        });
        if round % 3 == 0 {
            // A competing branch that is ready at once wins the select!.
            tokio::select! {
                biased;
                _ = std::future::ready(()) => abandoned += 1,
                r = work => r.unwrap().unwrap(),
            }
        } else {
            tokio::select! {
                r = work => r.unwrap().unwrap(),
                _ = tokio::time::sleep(deadline) => abandoned += 1,
            }
        }
        if round % 100 == 99 {
            pool.rebalance_at(round as f64).unwrap();
        }
    }
    let settle = Instant::now();
    while finished.load(Ordering::SeqCst) < 1000 {
        assert!(
            settle.elapsed() < Duration::from_secs(10),
            "abandoned work never finished"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(abandoned >= 333, "only {abandoned} waits were given up");
    let stats = pool.stats();
    assert_eq!(stats.served.iter().sum::<u64>(), 1000, "{stats:?}");
    assert!(
        stats.faults >= 1 && stats.faults <= traps,
        "{traps} traps called at most: {stats:?}"
    );
    // No instance is held by anyone: all but the hot modules' ready ones
    // (two at capacity 8) can be leased at once.
    let held: Vec<_> = (0..14)
        .map(|k| {
            pool.acquire_at("m0", 2000.0)
                .unwrap_or_else(|e| panic!("lease {k} of 14 failed, so instances leaked: {e}"))
        })
        .collect();
    println!("{abandoned} of 1000 waits abandoned, {traps} traps; {stats:?}");
    drop(held);
    let _ = std::fs::remove_dir_all(dir);
}
