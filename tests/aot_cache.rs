//! The AOT module cache: its contract, and the behaviour a service relies on.

use std::os::unix::fs::PermissionsExt;
use std::sync::Arc;

use tidepool::harness::run_contract;
use tidepool::testkit::wasm_fixtures as fixtures;
use tidepool::wasm::{AotCache, CacheOutcome, WasmCacheConfig, WasmEngine, WasmEngineConfig};

fn temp(tag: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("tidepool-aot-test-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aot_cache_meets_its_contract() {
    let report = run_contract("aot_cache").await;
    let summary = &report.summary;
    assert_eq!(summary.counters["bad_entries_injected"], 5);
    tidepool::assert_contract_snapshot!("aot_cache", report);
}

#[test]
fn the_cache_directory_is_owner_only_and_entries_survive_a_new_process() {
    let dir = temp("perm").join("nested");
    let engine = WasmEngine::new(WasmEngineConfig::default()).unwrap();
    let wasm = fixtures::extractor().unwrap();
    {
        let cache = AotCache::open(WasmCacheConfig::new(&dir), &engine).unwrap();
        assert_eq!(
            cache.load(&engine, "x", &wasm).unwrap().1,
            CacheOutcome::Compiled
        );
    }
    let mode = std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o700, "cache dir mode {mode:o}");
    // A new cache over the same directory (as a restarted process) hits.
    let cache = AotCache::open(WasmCacheConfig::new(&dir), &engine).unwrap();
    assert_eq!(
        cache.load(&engine, "x", &wasm).unwrap().1,
        CacheOutcome::Hit
    );
    std::fs::remove_dir_all(dir.parent().unwrap()).unwrap();
}

#[test]
fn a_directory_others_can_write_or_a_readable_key_is_refused_by_path_and_mode() {
    use std::os::unix::fs::PermissionsExt;
    let engine = WasmEngine::new(WasmEngineConfig::default()).unwrap();
    let dir = temp("shared");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
    let err = AotCache::open(WasmCacheConfig::new(&dir), &engine)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("wasm_cache.cache_dir")
            && err.contains(&dir.display().to_string())
            && err.contains("777"),
        "{err}"
    );

    // Owner-only again, the cache opens; its key must stay unreadable to others.
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
    drop(AotCache::open(WasmCacheConfig::new(&dir), &engine).unwrap());
    let key = dir.join("entries.key");
    assert_eq!(
        std::fs::metadata(&key).unwrap().permissions().mode() & 0o777,
        0o600
    );
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let err = AotCache::open(WasmCacheConfig::new(&dir), &engine)
        .unwrap_err()
        .to_string();
    assert!(err.contains("entries.key") && err.contains("644"), "{err}");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn another_engine_config_never_sees_the_entry() {
    let dir = temp("engines");
    let a = WasmEngine::new(WasmEngineConfig::default()).unwrap();
    let b = WasmEngine::new(WasmEngineConfig {
        fuel_per_call: Some(1_000_000),
        ..WasmEngineConfig::default()
    })
    .unwrap();
    let wasm = fixtures::extractor().unwrap();
    let ca = AotCache::open(WasmCacheConfig::new(&dir), &a).unwrap();
    let cb = AotCache::open(WasmCacheConfig::new(&dir), &b).unwrap();
    assert_ne!(
        ca.entry_path(&wasm),
        cb.entry_path(&wasm),
        "fuel changes the compatibility hash, so the key"
    );
    ca.load(&a, "x", &wasm).unwrap();
    assert_eq!(cb.load(&b, "x", &wasm).unwrap().1, CacheOutcome::Compiled);
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn over_its_size_the_least_recently_used_entries_go() {
    let dir = temp("lru");
    let engine = WasmEngine::new(WasmEngineConfig::default()).unwrap();
    let modules: Vec<Vec<u8>> = (0..6)
        .map(|i| fixtures::extractor_variant(i).unwrap())
        .collect();
    let probe = AotCache::open(WasmCacheConfig::new(&dir), &engine).unwrap();
    probe.load(&engine, "m0", &modules[0]).unwrap();
    let entry_size = std::fs::metadata(probe.entry_path(&modules[0]))
        .unwrap()
        .len();
    let cache = AotCache::open(
        WasmCacheConfig {
            max_size_bytes: entry_size * 3 + entry_size / 2,
            ..WasmCacheConfig::new(&dir)
        },
        &engine,
    )
    .unwrap();
    for (i, m) in modules.iter().enumerate() {
        cache.load(&engine, &format!("m{i}"), m).unwrap();
        // mtime resolution: make the access order unambiguous, oldest first.
        let f = std::fs::File::options()
            .write(true)
            .open(cache.entry_path(m))
            .unwrap();
        f.set_modified(
            std::time::SystemTime::now() - std::time::Duration::from_secs(100 - i as u64),
        )
        .unwrap();
    }
    cache.load(&engine, "m5", &modules[5]).unwrap();
    let total: u64 = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().len())
        .sum();
    assert!(
        total <= entry_size * 3 + entry_size / 2,
        "{total} bytes kept"
    );
    assert!(cache.stats().evictions >= 3, "{:?}", cache.stats());
    assert!(
        cache.entry_path(&modules[5]).exists(),
        "the most recently used entry must stay"
    );
    assert!(
        !cache.entry_path(&modules[0]).exists(),
        "the least recently used entry must go"
    );
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn two_writers_filling_the_same_entry_leave_a_whole_one() {
    let dir = temp("race");
    let engine = WasmEngine::new(WasmEngineConfig::default()).unwrap();
    let wasm = Arc::new(fixtures::generated(200).unwrap());
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let (engine, wasm, dir) = (engine.clone(), wasm.clone(), dir.clone());
            std::thread::spawn(move || {
                let cache = AotCache::open(WasmCacheConfig::new(&dir), &engine).unwrap();
                cache.load(&engine, "g", &wasm).unwrap().1
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    let cache = AotCache::open(WasmCacheConfig::new(&dir), &engine).unwrap();
    assert_eq!(
        cache.load(&engine, "g", &wasm).unwrap().1,
        CacheOutcome::Hit
    );
    let leftovers: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .filter(|n| n.to_string_lossy().contains(".tmp."))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    std::fs::remove_dir_all(dir).unwrap();
}
