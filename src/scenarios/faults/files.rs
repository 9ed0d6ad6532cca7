//! The faults files meet: AOT cache entries corrupted or planted, reports
//! torn part-way, contracts written wrong.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;
use std::time::Instant;

use super::{ms, Kind, Tally};
use crate::contract::Contract;
use crate::error::{Error, Result};
use crate::profile::{Depth, RunProfile};
use crate::report::{self, ScenarioReport};
use crate::summary::MetricSummary;
use crate::testkit::wasm_fixtures as fixtures;
use crate::testkit::{scratch_dir, SeededRng};
use crate::wasm::{AotCache, CacheOutcome, WasmCacheConfig, WasmEngine, WasmEngineConfig};
use tidepool_pools::Error as PoolError;

/// Runs `n` injections of a file kind.
pub(super) fn inject(kind: Kind, n: usize) -> Result<Tally> {
    match kind {
        Kind::BadCacheEntry => bad_cache_entries(n),
        Kind::TornReport => torn_reports(n),
        Kind::MalformedContract => malformed_contracts(n),
        _ => Ok(Tally::default()),
    }
}

/// An entry flipped, truncated or replaced by a planted artifact behind a
/// plain SHA-256: the cache must notice, recompile, and the extractor still
/// return what it should; the entry it writes back must hit.
fn bad_cache_entries(n: usize) -> Result<Tally> {
    const ID: u32 = 7;
    let engine = WasmEngine::new(WasmEngineConfig::default())?;
    let dir = scratch_dir("tidepool-faults-cache-")?;
    let cache = AotCache::open(WasmCacheConfig::new(dir.path()), &engine)?;
    let wasm = fixtures::extractor_variant(ID)?;
    let id = "extractor-7";
    cache.load(&engine, id, &wasm)?;
    let entry = cache.entry_path(&wasm);
    let mut tally = Tally::default();
    for i in 0..n {
        let mut bytes = std::fs::read(&entry).map_err(|e| Error::io("reading", &entry, e))?;
        match i % 3 {
            0 => {
                let at = bytes.len() / 2;
                bytes[at] ^= 0x40;
            }
            1 => bytes.truncate(bytes.len() / 3),
            _ => {
                let payload =
                    bytes.split_off(tidepool_pools::controls::ENTRY_HEADER.min(bytes.len()));
                bytes = tidepool_pools::controls::plain_hash_entry(&payload);
            }
        }
        std::fs::write(&entry, &bytes).map_err(|e| Error::io("writing", &entry, e))?;
        let corrupt = cache.stats().corrupt;
        let t = Instant::now();
        let (module, outcome) = cache.load(&engine, id, &wasm)?;
        let detected = outcome == CacheOutcome::Recompiled && cache.stats().corrupt == corrupt + 1;
        let value = extract(&engine, id, &module);
        let recovery = ms(t);
        let right = matches!(value, Ok(v) if v == ID as i32);
        let whole_again = matches!(cache.load(&engine, id, &wasm), Ok((_, CacheOutcome::Hit)));
        tally.record(
            Kind::BadCacheEntry,
            &[
                ("detected and recompiled", detected),
                ("the rewritten entry hits", whole_again),
            ],
            u64::from(!right),
            Some(recovery),
        );
    }
    Ok(tally)
}

/// Calls the extractor's `id` export.
fn extract(engine: &WasmEngine, id: &str, module: &wasmtime::Module) -> Result<i32> {
    let pre = engine.prepare(id, module)?;
    let mut store = engine.store();
    let fault = |fault, e: wasmtime::Error| PoolError::Wasm {
        module: id.to_owned(),
        fault,
        message: e.to_string(),
    };
    let instance = pre
        .instantiate(&mut store)
        .map_err(|e| fault(crate::WasmFault::Instantiate, e))?;
    let f = instance
        .get_typed_func::<(), i32>(&mut store, "id")
        .map_err(|e| fault(crate::WasmFault::Usage, e))?;
    engine.arm(&mut store);
    let id = f
        .call(&mut store, ())
        .map_err(|e| fault(crate::WasmFault::Trap, e))?;
    Ok(id)
}

/// A report cut at a seeded random byte, as a copy or a writer killed
/// part-way leaves it: reading it must fail naming the file and the line,
/// never hand back part of a report; the whole report beside it still reads.
fn torn_reports(n: usize) -> Result<Tally> {
    let dir = scratch_dir("tidepool-faults-reports-")?;
    let mut summary = MetricSummary::new("faults", RunProfile::new(Depth::Quick, None));
    summary.measure(
        "recovery_ms",
        "ms",
        &(1..=50).map(f64::from).collect::<Vec<_>>(),
    )?;
    let whole = report::write_json(&ScenarioReport::new(summary, Vec::new()), dir.path())?;
    let bytes = std::fs::read(&whole).map_err(|e| Error::io("reading", &whole, e))?;
    let mut rng = SeededRng::new(0x7042);
    let mut tally = Tally::default();
    for i in 0..n {
        let cut = 1 + (rng.next_u64() as usize) % (bytes.len() - 1);
        let torn = dir.path().join(format!("torn-{i}.json"));
        std::fs::write(&torn, &bytes[..cut]).map_err(|e| Error::io("writing", &torn, e))?;
        let t = Instant::now();
        let read = catch_unwind(AssertUnwindSafe(|| report::read_json(&torn)));
        let still_whole = report::read_json(&whole).is_ok();
        let recovery = ms(t);
        let (named, lost) = match &read {
            Ok(Err(e)) => (names_file_and_line(&e.to_string(), &torn), 0),
            // Part of a report taken for a whole one is silent data loss.
            Ok(Ok(_)) => (false, 1),
            Err(_) => (false, 1),
        };
        tally.record(
            Kind::TornReport,
            &[
                ("the error names the file and line", named),
                ("the whole report beside it reads", still_whole),
            ],
            lost,
            Some(recovery),
        );
    }
    Ok(tally)
}

/// Contracts written wrong, one defect each on line 3: each must be an
/// error naming the file, the line and the key, never a panic and never a
/// contract with a threshold missing; the right contract still loads.
fn malformed_contracts(n: usize) -> Result<Tally> {
    const DEFECTS: &[&str] = &[
        "x = { metric = \"no_such_figure\", op = \"<=\", value = 0 }",
        "x = { metric = \"lost\", op = \"<=\", value = }",
        "x = { metric = \"lost\", op = \"=<\", value = 0 }",
        "x = { metric = \"lost\", op = \"<=\", value = \"none\" }",
        "x = { metric = \"lost\", op = \"<=\", value = nan }",
        "x = { metric = \"lost\", op = \"<=\", value = 0, limit = 1 }",
    ];
    let catalog = super::super::catalog();
    let path = Path::new("faults-contract.toml");
    let mut tally = Tally::default();
    for i in 0..n {
        let defect = DEFECTS[i % DEFECTS.len()];
        let text =
            format!("[faults]\nfine = {{ metric = \"lost\", op = \"<=\", value = 0 }}\n{defect}\n");
        let t = Instant::now();
        let parsed = catch_unwind(AssertUnwindSafe(|| Contract::parse(path, &text, &catalog)));
        let right = Contract::parse(
            path,
            "[faults]\nfine = { metric = \"lost\", op = \"<=\", value = 0 }\n",
            &catalog,
        )
        .is_ok();
        let recovery = ms(t);
        let (named, lost) = match &parsed {
            Ok(Err(e)) => {
                let message = e.to_string();
                (names_file_and_line(&message, path), 0)
            }
            Ok(Ok(_)) => (false, 1),
            Err(_) => (false, 1),
        };
        tally.record(
            Kind::MalformedContract,
            &[
                ("the error names the file and line", named),
                ("the right contract loads", right),
            ],
            lost,
            Some(recovery),
        );
    }
    Ok(tally)
}

/// Whether `message` names `file` and a line in it (`file:LINE` or "line").
fn names_file_and_line(message: &str, file: &Path) -> bool {
    let file = file.display().to_string();
    let Some(at) = message.find(&file) else {
        tracing::warn!(message, file, "the error does not name the file");
        return false;
    };
    let after = &message[at + file.len()..];
    let line = after.starts_with(':') && after[1..].starts_with(|c: char| c.is_ascii_digit())
        || message.contains("line ");
    if !line {
        tracing::warn!(message, "the error does not name the line");
    }
    line
}
