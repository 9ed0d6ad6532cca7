//! The AOT cache against compiling: load time of a verified entry vs a fresh
//! compile of a generated module, and detection of corrupt, truncated and
//! foreign entries.

use std::sync::Arc;
use std::time::Instant;

use super::{ms_since as ms, Control, Scenario, ScenarioFuture};
use crate::error::{Error, Result};
use crate::profile::RunProfile;
use crate::summary::MetricSummary;
use crate::summary::{FigureSpec, ScenarioSpec};
use crate::testkit::wasm_fixtures as fixtures;
use crate::wasm::{AotCache, CacheOutcome, WasmCacheConfig, WasmEngine, WasmEngineConfig};
use tidepool_pools::controls::{encode_entry, plain_hash_entry, skip_checksum, ENTRY_HEADER};
use tidepool_pools::Error as PoolError;

pub(super) const SCENARIO: Scenario = Scenario {
    spec: ScenarioSpec {
        name: "aot_cache",
        description: "loading a verified AOT cache entry vs compiling; corrupt, truncated and foreign entries",
        figures: &[
            FigureSpec::measurement("compile_ms", "ms"),
            FigureSpec::measurement("cache_load_ms", "ms"),
            FigureSpec::counter("module_functions").scales(),
            FigureSpec::counter("bad_entries_injected"),
            FigureSpec::counter("bad_entries_detected"),
            FigureSpec::counter("bad_entries_loaded"),
        ],
    },
    run: start,
    needs_browser: false,
    controls: CONTROLS,
};

fn start(profile: RunProfile) -> ScenarioFuture {
    super::blocking("aot_cache", profile, run)
}

/// The cache the run uses: the real one, or a bad variant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Variant {
    Honest,
    /// Keeps a copy of the .wasm and compiles it on every load.
    CopyingCache,
    /// Skips its checksum, trusting wasmtime's header check.
    UnverifiedCache,
}

/// The negative controls.
const CONTROLS: &[Control] = &[
    Control {
        name: "copying_cache",
        what: "a cache that stores a copy of the .wasm and compiles it on every load (the prototype's)",
        rejects: &["cache_hit_beats_compile"],
        run: |p| super::blocking("aot_cache", p, |p| run_variant(p, Variant::CopyingCache)),
    },
    Control {
        name: "unverified_cache",
        what: "a cache that skips its keyed MAC and trusts wasmtime's header check",
        rejects: &["every_bad_entry_detected", "no_bad_entry_loaded"],
        run: |p| super::blocking("aot_cache", p, |p| run_variant(p, Variant::UnverifiedCache)),
    },
];

fn run(profile: RunProfile) -> Result<MetricSummary> {
    run_variant(profile, Variant::Honest)
}

/// One way to damage a cache entry: what, which entry, the module it holds,
/// and the damage.
type Injection<'a> = (
    &'static str,
    &'a std::path::Path,
    &'a [u8],
    Box<dyn Fn(&mut Vec<u8>)>,
);

/// The floor for the generated module's compile time: below it, a
/// cache saves too little to be worth measuring.
const MIN_COMPILE_MS: f64 = 50.0;

fn run_variant(profile: RunProfile, variant: Variant) -> Result<MetricSummary> {
    let engine = WasmEngine::new(WasmEngineConfig::default())?;
    let dir = crate::testkit::scratch_dir("tidepool-aot-")?;
    measure(&engine, dir.path(), profile, variant)
}

fn measure(
    engine: &WasmEngine,
    dir: &std::path::Path,
    profile: RunProfile,
    variant: Variant,
) -> Result<MetricSummary> {
    let mut cache = AotCache::open(WasmCacheConfig::new(dir), engine)?;
    if variant == Variant::UnverifiedCache {
        cache = skip_checksum(cache);
    }
    let cache = Arc::new(cache);
    let engine = engine.clone();

    // A module whose compile costs at least MIN_COMPILE_MS on this machine.
    let mut functions = 800;
    let wasm = loop {
        let wasm = fixtures::generated(functions)?;
        let t = Instant::now();
        engine.compile("generated", &wasm)?;
        if ms(t) >= MIN_COMPILE_MS || functions >= 12_800 {
            break wasm;
        }
        functions *= 2;
    };
    let mut s = MetricSummary::new(SCENARIO.spec.name, profile);
    s.count("module_functions", u64::from(functions));

    cache.load(&engine, "generated", &wasm)?;
    // The copying cache's store: the module's bytes, as a file.
    let copy = dir.join("generated.wasm");
    std::fs::write(&copy, &wasm).map_err(|e| Error::io("writing", &copy, e))?;
    let (mut compile, mut load) = (Vec::new(), Vec::new());
    for _ in 0..profile.iterations() {
        let t = Instant::now();
        engine.compile("generated", &wasm)?;
        compile.push(ms(t));
        let t = Instant::now();
        if variant == Variant::CopyingCache {
            let bytes = std::fs::read(&copy).map_err(|e| Error::io("reading", &copy, e))?;
            engine.compile("generated", &bytes)?;
            load.push(ms(t));
            continue;
        }
        let (_, outcome) = cache.load(&engine, "generated", &wasm)?;
        load.push(ms(t));
        if outcome != CacheOutcome::Hit {
            return Err(PoolError::Wasm {
                module: "generated".into(),
                fault: crate::WasmFault::Usage,
                message: format!("expected a cache hit, got {outcome:?}"),
            }
            .into());
        }
    }
    s.measure("compile_ms", "ms", &compile)?;
    s.measure("cache_load_ms", "ms", &load)?;
    if variant == Variant::CopyingCache {
        return Ok(s);
    }

    // Bad entries: each must be detected, removed and recompiled, never loaded.
    let path = cache.entry_path(&wasm);
    let small = fixtures::extractor()?;
    let small_path = cache.entry_path(&small);
    cache.load(&engine, "extractor", &small)?;
    let foreign_engine =
        wasmtime::Engine::new(&wasmtime::Config::new()).map_err(|e| PoolError::Wasm {
            module: "<foreign engine>".into(),
            fault: crate::WasmFault::Compile,
            message: e.to_string(),
        })?;
    let foreign = wasmtime::Module::new(&foreign_engine, &small)
        .and_then(|m| m.serialize())
        .map_err(|e| PoolError::Wasm {
            module: "extractor".into(),
            fault: crate::WasmFault::Compile,
            message: e.to_string(),
        })?;
    let foreign_entry = encode_entry(&cache, &foreign);
    let mut injections: Vec<Injection> = vec![
        (
            "one flipped byte",
            &path,
            &wasm,
            Box::new(|b: &mut Vec<u8>| {
                let i = b.len() / 2;
                b[i] ^= 0x40;
            }),
        ),
        (
            "truncated",
            &path,
            &wasm,
            Box::new(|b: &mut Vec<u8>| b.truncate(b.len() / 3)),
        ),
        // A well-formed entry (its checksum matches) holding an artifact of an
        // engine with another config: only wasmtime's own check can tell.
        (
            "foreign engine",
            &small_path,
            &small,
            Box::new(move |b: &mut Vec<u8>| *b = foreign_entry.clone()),
        ),
        // The right artifact behind a plain SHA-256, as anyone who can write
        // to the directory could make: only the keyed MAC can tell.
        (
            "planted with a plain hash",
            &small_path,
            &small,
            Box::new(|b: &mut Vec<u8>| {
                let payload = b.split_off(ENTRY_HEADER.min(b.len()));
                *b = plain_hash_entry(&payload);
            }),
        ),
    ];
    // Appended bytes leave the artifact itself intact: wasmtime loads it,
    // and only the cache's own checksum can tell the file was changed.
    injections.push((
        "bytes appended",
        &small_path,
        &small,
        Box::new(|b: &mut Vec<u8>| b.extend_from_slice(&[0xAB; 64])),
    ));
    // The control's cache skips its checksum: it gets only the damage
    // wasmtime itself survives, never a changed byte of code.
    if variant == Variant::UnverifiedCache {
        injections.retain(|(what, ..)| {
            matches!(
                *what,
                "foreign engine" | "bytes appended" | "planted with a plain hash"
            )
        });
    }
    // Two lenses: `detected` is the cache's own account (its corrupt count
    // rose and it recompiled); `loaded` is what it handed back: a hit served
    // from a file other than the one it wrote.
    let (mut detected, mut loaded_bad) = (0u64, 0u64);
    for (what, entry, bytes, damage) in &injections {
        let mut content = std::fs::read(entry).map_err(|e| Error::io("reading", *entry, e))?;
        damage(&mut content);
        std::fs::write(entry, &content).map_err(|e| Error::io("writing", *entry, e))?;
        let before = cache.stats().corrupt;
        let (_, outcome) = cache.load(&engine, what, bytes)?;
        if outcome == CacheOutcome::Recompiled && cache.stats().corrupt == before + 1 {
            detected += 1;
        } else {
            tracing::warn!(what, ?outcome, "bad AOT entry not detected");
        }
        if outcome == CacheOutcome::Hit {
            loaded_bad += 1;
        }
    }
    s.count("bad_entries_injected", injections.len() as u64);
    s.count("bad_entries_detected", detected);
    s.count("bad_entries_loaded", loaded_bad);
    let stats = cache.stats();
    s.note(format!(
        "cache: {} hits, {} misses, {} compiles, {} evictions, {} corrupt",
        stats.hits, stats.misses, stats.compiles, stats.evictions, stats.corrupt
    ));
    Ok(s)
}
