//! tidepool keeps the two expensive resources of a page-rendering service warm and
//! bounded, headless Chromium browsers and WASM instances, and proves with
//! performance contracts, measured on the real things, that the pools deliver.
//!
//! The data flow of every measurement: a scenario ([`scenarios`]) drives a
//! workload and returns a [`report::MetricSummary`] of named measurements
//! ([`stats::Summary`] each), counters and ratios; the [`contract::Contract`]
//! loaded from `perf-contract.toml` judges it threshold by threshold; the report
//! is written as versioned JSON, and the tests snapshot its deterministic part.
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
pub use retention::Retention;
