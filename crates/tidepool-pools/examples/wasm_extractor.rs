//! The WASM pool serving an extractor: compiled once into the AOT cache,
//! then served from hot instances.
//!
//! ```text
//! cargo run -p tidepool-pools --example wasm_extractor
//! ```

use std::sync::Arc;

use tidepool_pools::wasm::{
    AotCache, ModuleOptions, WasmCacheConfig, WasmEngine, WasmEngineConfig, WasmPool,
    WasmPoolConfig,
};

/// Counts the bytes `<a` in its input: a stand-in for a real extractor.
const EXTRACTOR: &str = r#"(module
  (memory (export "memory") 1)
  (global $next (mut i32) (i32.const 1024))
  (func (export "alloc") (param $len i32) (result i32)
    (local $p i32)
    (local.set $p (global.get $next))
    (global.set $next (i32.add (global.get $next) (local.get $len)))
    (local.get $p))
  (func (export "count_links") (param $p i32) (param $len i32) (result i32)
    (local $end i32) (local $n i32)
    (local.set $end (i32.add (local.get $p) (i32.sub (local.get $len) (i32.const 1))))
    (block $done
      (loop $scan
        (br_if $done (i32.ge_u (local.get $p) (local.get $end)))
        (if (i32.and
              (i32.eq (i32.load8_u (local.get $p)) (i32.const 60))
              (i32.eq (i32.load8_u (i32.add (local.get $p) (i32.const 1))) (i32.const 97)))
          (then (local.set $n (i32.add (local.get $n) (i32.const 1)))))
        (local.set $p (i32.add (local.get $p) (i32.const 1)))
        (br $scan)))
    (local.get $n)))"#;

fn main() -> tidepool_pools::Result<()> {
    let engine = WasmEngine::new(WasmEngineConfig::default())?;
    let dir = std::env::temp_dir().join(format!("tidepool-example-{}", std::process::id()));
    let cache = Arc::new(AotCache::open(WasmCacheConfig::new(&dir), &engine)?);
    let pool = WasmPool::new(engine, cache.clone(), WasmPoolConfig::default())?;
    let wasm = wat::parse_str(EXTRACTOR).map_err(|e| tidepool_pools::Error::Wasm {
        module: "links".into(),
        fault: tidepool_pools::WasmFault::Compile,
        message: e.to_string(),
    })?;
    pool.register("links", wasm, ModuleOptions::default());
    let pages = [
        "<a href=1>one</a>",
        "<p>none</p>",
        "<a href=1>1</a><a href=2>2</a><a href=3>3</a>",
    ];
    for (round, html) in pages.iter().cycle().take(30).enumerate() {
        let mut lease = pool.acquire("links")?;
        let ptr = lease.write_input(html.as_bytes())?;
        let links: i32 = lease.call("count_links", (ptr, html.len() as u32))?;
        if round < pages.len() {
            println!("{links} links in {html:?} (served {:?})", lease.tier());
        }
        drop(lease);
        if round == 2 {
            pool.rebalance()?; // normally the pool's own background task
        }
    }
    let stats = pool.stats();
    println!(
        "served hot/warm/cold: {:?}; cache {:?}",
        stats.served,
        cache.stats()
    );
    drop(pool);
    std::fs::remove_dir_all(&dir).map_err(|e| tidepool_pools::Error::io("removing", &dir, e))?;
    Ok(())
}
