//! tidepool keeps the two expensive resources of a page-rendering service warm and
//! bounded, headless Chromium browsers and WASM instances, and proves with
//! performance contracts, measured on the real things, that the pools deliver.
//!
//! # Use it in a service
//!
//! Depend on it with `default-features = false`: the pools ([`browser`],
//! [`cdp`], [`memory`], [`wasm`], [`timeout`]) need neither the CLI nor the
//! testkit.
//!
//! ```no_run
//! use tidepool::browser::{BrowserPool, BrowserPoolConfig, LeaseOptions};
//!
//! # async fn service() -> tidepool::Result<()> {
//! let pool = BrowserPool::new(BrowserPoolConfig {
//!     max_size: 4,
//!     warm_up: 2,
//!     ..BrowserPoolConfig::default()
//! })
//! .await?;
//! let lease = pool.acquire().await?; // its own incognito context, a page ready
//! lease.goto("https://example.com/").await?;
//! let title: String = lease.evaluate("document.title").await?;
//! drop(lease); // the browser goes back, readied for the next lease
//!
//! // A lease whose context sends its traffic through a proxy.
//! let proxied = pool
//!     .acquire_with(LeaseOptions::new().proxy("http://proxy.internal:3128"))
//!     .await?;
//! # drop((title, proxied));
//! println!("p95 acquire: {:.1} ms", pool.stats().acquire_latency.p95_ms);
//! pool.close().await;
//! # Ok(()) }
//! ```
//!
//! The examples in `examples/` cover the rest: a crawl on a launched pool
//! (`crawl.rs`), browsers that run elsewhere (`connect.rs`), the WASM pool
//! serving an extractor (`wasm_extractor.rs`), adaptive timeouts around HTTP
//! calls (`adaptive_timeouts.rs`) and Prometheus metrics (`metrics.rs`, with
//! the names on [`metrics_catalog`]). Lifecycle hooks are
//! [`browser::Hooks`]. Every pool keeps its records bounded: counters and
//! fixed-size latency histograms ([`LatencySummary`] in each `stats()`).
//!
//! # Features
//!
//! - `cli` (default): the `tidepool` binary; turns on `testkit`.
//! - `testkit`: the fixture server, CDP relay, counting proxy, WASM fixtures,
//!   the scenarios and the harness the contract suites run.
//!
//! # The measurements
//!
//! The data flow of every measurement: a scenario (`scenarios`, feature
//! `testkit`) drives a workload and returns a [`report::MetricSummary`] of
//! named measurements ([`stats::Summary`] each), counters and ratios; the
//! [`contract::Contract`] loaded from `perf-contract.toml` judges it threshold
//! by threshold; the report is written as versioned JSON, and the tests
//! snapshot its deterministic part.
//!
//! ```
//! use tidepool::stats::Summary;
//!
//! let s = Summary::from_samples("page_ms", &[61.0, 64.5, 70.2, 63.3])?;
//! assert!(s.p50 < s.p95);
//! # Ok::<(), tidepool::Error>(())
//! ```

mod atomic_file;
pub mod browser;
pub mod cdp;
pub mod contract;
mod error;
#[cfg(feature = "testkit")]
pub mod harness;
pub mod memory;
pub mod metrics_catalog;
pub mod profile;
mod recording;
pub mod report;
mod retention;
#[cfg(feature = "testkit")]
pub mod scenarios;
pub mod stats;
pub mod summary;
#[cfg(feature = "testkit")]
pub mod testkit;
pub mod timeout;
pub mod wasm;

pub use atomic_file::write_atomic;
pub use error::{Error, Result, WasmFault};
pub use recording::LatencySummary;
pub use retention::Retention;
