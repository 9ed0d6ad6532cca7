//! A service's use of tidepool-pools: a browser
//! pool rendering pages and a timeout that learns from the calls it guards.
//!
//! `cargo run --manifest-path examples/embed/Cargo.toml -- 'data:text/html,<title>hi</title>'`

use tidepool_pools::browser::{BrowserPool, BrowserPoolConfig};
use tidepool_pools::timeout::{AdaptiveTimeouts, AdaptiveTimeoutsConfig};

#[tokio::main]
async fn main() -> tidepool_pools::Result<()> {
    let urls: Vec<String> = std::env::args().skip(1).collect();
    let urls = if urls.is_empty() {
        vec!["data:text/html,<title>embedded</title>".to_owned()]
    } else {
        urls
    };
    let pool = BrowserPool::new(BrowserPoolConfig {
        max_size: 2,
        warm_up: 1,
        ..BrowserPoolConfig::default()
    })
    .await?;
    let timeouts = AdaptiveTimeouts::new(AdaptiveTimeoutsConfig::default())?;
    for url in &urls {
        let lease = pool.acquire().await?;
        let title: String = timeouts
            .run("render", async {
                lease.goto(url).await?;
                lease.evaluate("document.title").await
            })
            .await??;
        println!("{url}: {title:?}");
    }
    let stats = pool.stats();
    println!(
        "{} leases, acquire p95 {:.1} ms, next timeout {:?}",
        stats.acquires,
        stats.acquire_latency.p95_ms,
        timeouts.timeout_for("render")
    );
    pool.close().await;
    Ok(())
}
