//! A crawl on a launched pool: a few workers, each page in a lease of its
//! own (a fresh incognito context), the pool's browsers kept warm between
//! them.
//!
//! ```text
//! cargo run -p tidepool-pools --example crawl -- https://example.com/ https://example.org/
//! ```
//!
//! With no URLs it crawls a few `data:` pages, so it runs without a network.

use std::sync::Arc;

use tidepool_pools::browser::{BrowserPool, BrowserPoolConfig};

const WORKERS: usize = 2;

#[tokio::main]
async fn main() -> tidepool_pools::Result<()> {
    let mut urls: Vec<String> = std::env::args().skip(1).collect();
    if urls.is_empty() {
        urls = (1..=6)
            .map(|i| format!("data:text/html,<title>page {i}</title><a href=x>x</a>"))
            .collect();
    }
    let pool = BrowserPool::new(BrowserPoolConfig {
        max_size: WORKERS,
        warm_up: WORKERS,
        min_idle: 1,
        ..BrowserPoolConfig::default()
    })
    .await?;
    let queue = Arc::new(std::sync::Mutex::new(urls));
    let workers = (0..WORKERS).map(|_| {
        let (pool, queue) = (pool.clone(), queue.clone());
        tokio::spawn(async move {
            let mut done = Vec::new();
            loop {
                let Some(url) = queue.lock().unwrap_or_else(|p| p.into_inner()).pop() else {
                    return Ok::<_, tidepool_pools::Error>(done);
                };
                let lease = pool.acquire().await?;
                lease.goto(&url).await?;
                let title: String = lease.evaluate("document.title").await?;
                let links: u64 = lease.evaluate("document.links.length").await?;
                done.push((url, title, links));
            }
        })
    });
    for worker in workers {
        let pages = worker
            .await
            .map_err(|e| tidepool_pools::Error::task("crawl worker", e))??;
        for (url, title, links) in pages {
            println!("{title:?} ({links} links) <- {url}");
        }
    }
    let stats = pool.stats();
    println!(
        "crawled with {} browsers launched for {} leases; acquire p50 {:.1} ms",
        stats.launched, stats.acquires, stats.acquire_latency.p50_ms
    );
    pool.close().await;
    Ok(())
}
