//! A pool of browsers that run elsewhere (a container, browserless, another
//! machine): connect mode, each lease in its own incognito context of the
//! remote browser, which the pool never kills.
//!
//! ```text
//! chromium --headless --remote-debugging-port=9222 &
//! cargo run -p tidepool-pools --example connect -- ws://127.0.0.1:9222/devtools/browser/<id>
//! ```
//!
//! With no endpoint it starts a local Chromium to connect to.

use tidepool_pools::browser::{BrowserPool, BrowserPoolConfig, BrowserSource};
use tidepool_testkit::ExternalChromium;

#[tokio::main]
async fn main() -> tidepool_pools::Result<()> {
    let (endpoint, local) = match std::env::args().nth(1) {
        Some(endpoint) => (endpoint, None),
        None => {
            let chromium = ExternalChromium::start().await?;
            (chromium.ws_url.clone(), Some(chromium))
        }
    };
    let pool = BrowserPool::new(BrowserPoolConfig {
        source: BrowserSource::Connect {
            endpoints: vec![endpoint.clone()],
        },
        max_size: 2,
        warm_up: 1,
        ..BrowserPoolConfig::default()
    })
    .await?;
    for i in 1..=3 {
        let lease = pool.acquire().await?;
        lease
            .goto(&format!("data:text/html,<title>remote {i}</title>"))
            .await?;
        let title: String = lease.evaluate("document.title").await?;
        println!(
            "{title:?} in context {:?} of {endpoint}",
            lease.context_id()
        );
    }
    pool.close().await;
    if let Some(chromium) = local {
        chromium.stop().await;
    }
    Ok(())
}
