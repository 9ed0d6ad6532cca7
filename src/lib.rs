//! The performance-contract suite of [`tidepool_pools`]: it proves, measured
//! on real Chromium and wasmtime, that the pools deliver what they promise.
//!
//! A service depends on `tidepool-pools`, not on this crate. This one holds
//! the scenarios, the contract, the reports and statistics, and the
//! `tidepool` binary (validate, ab, compare, report, stats); its fixtures
//! are in `tidepool-testkit` ([`testkit`] here). The library's modules are
//! re-exported ([`browser`], [`cdp`], [`memory`], [`wasm`], [`timeout`]) so
//! the suites read as a service's code does.
//!
//! # The measurements
//!
//! The data flow of every measurement: a scenario ([`scenarios`]) drives a workload and returns a [`report::MetricSummary`] of
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

pub mod contract;
mod error;
pub mod harness;
pub mod profile;
pub mod report;
pub mod scenarios;
pub mod stats;
pub mod summary;

pub use error::{Error, Result};
/// The library the suite measures, re-exported so that a suite reads
/// `tidepool::browser::BrowserPool` as a service reads
/// `tidepool_pools::browser::BrowserPool`.
pub use tidepool_pools::{browser, cdp, memory, metrics_catalog, timeout, wasm};
pub use tidepool_pools::{write_atomic, LatencySummary, Retention, WasmFault};
/// The fixtures the scenarios measure with.
pub use tidepool_testkit as testkit;
