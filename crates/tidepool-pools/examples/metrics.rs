//! The pools' metrics served to Prometheus: install an exporter, and every
//! pool reports its counters, gauges and latency histograms through the
//! `metrics` facade (the names are listed on `tidepool_pools::metrics_catalog`).
//!
//! ```text
//! cargo run -p tidepool-pools --example metrics -- --serve   # then: curl 127.0.0.1:9000/metrics
//! ```
//!
//! Without `--serve` it prints the pools' series once and exits.

use std::net::SocketAddr;
use std::sync::Arc;

use metrics_exporter_prometheus::PrometheusBuilder;
use tidepool_pools::browser::{BrowserPool, BrowserPoolConfig};
use tidepool_pools::wasm::{
    AotCache, ModuleOptions, WasmCacheConfig, WasmEngine, WasmEngineConfig, WasmPool,
    WasmPoolConfig,
};
use tidepool_testkit::get_once;
use tidepool_testkit::wasm_fixtures as fixtures;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let serve = std::env::args().any(|a| a == "--serve");
    let addr: SocketAddr = if serve {
        ([127, 0, 0, 1], 9000).into()
    } else {
        std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?
    };
    PrometheusBuilder::new()
        .with_http_listener(addr)
        .install()?;

    let browsers = BrowserPool::new(BrowserPoolConfig {
        max_size: 1,
        warm_up: 1,
        min_idle: 1,
        ..BrowserPoolConfig::default()
    })
    .await?;
    for i in 0..3 {
        let lease = browsers.acquire().await?;
        lease
            .goto(&format!("data:text/html,<title>{i}</title>"))
            .await?;
    }

    let engine = WasmEngine::new(WasmEngineConfig::default())?;
    let dir = std::env::temp_dir().join(format!("tidepool-metrics-{}", std::process::id()));
    let cache = Arc::new(AotCache::open(WasmCacheConfig::new(&dir), &engine)?);
    let wasm = WasmPool::new(engine, cache, WasmPoolConfig::default())?;
    wasm.register(
        "extractor",
        fixtures::extractor()?,
        ModuleOptions::default(),
    );
    for _ in 0..100 {
        drop(wasm.acquire("extractor")?);
    }

    if serve {
        println!("serving http://{addr}/metrics; Ctrl-C to stop");
        tokio::signal::ctrl_c().await?;
    } else {
        let scrape = get_once(addr, "/metrics").await?.text();
        for line in scrape.lines().filter(|l| l.starts_with("tidepool_")) {
            println!("{line}");
        }
    }
    browsers.close().await;
    drop(wasm);
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}
