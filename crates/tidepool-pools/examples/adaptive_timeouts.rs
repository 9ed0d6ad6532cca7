//! Adaptive timeouts around HTTP calls: each host's timeout follows its own
//! latencies (an RTO estimator), instead of one fixed number for all.
//!
//! ```text
//! cargo run -p tidepool-pools --example adaptive_timeouts
//! ```
//!
//! The calls go to a local fixture server whose `/slow?ms=N` route answers
//! after N ms: one fast "host" and one slow.

use tidepool_pools::timeout::{AdaptiveTimeouts, AdaptiveTimeoutsConfig};
use tidepool_testkit::{get_once, FixtureServer};

#[tokio::main]
async fn main() -> tidepool_pools::Result<()> {
    let server = FixtureServer::start().await?;
    let timeouts = AdaptiveTimeouts::new(AdaptiveTimeoutsConfig::default())?;
    let hosts = [("fast.example", 5.0), ("slow.example", 60.0)];
    println!("before: {:?}", timeouts.timeout_for("fast.example"));
    for round in 0..20 {
        for (host, ms) in hosts {
            // A little jitter, as real latencies have.
            let path = format!("/slow?ms={}", ms * (1.0 + (round % 3) as f64 * 0.2));
            let response = timeouts.run(host, get_once(server.addr(), &path)).await??;
            assert_eq!(response.status, 200);
        }
    }
    for (host, _) in hosts {
        println!("{host}: timeout now {:?}", timeouts.timeout_for(host));
    }
    server.shutdown().await;
    Ok(())
}
