//! Warm, bounded pools of the two expensive resources of a page-rendering
//! service: headless Chromium browsers and WASM instances.
//!
//! This is the library a service adds; the `tidepool` suite that proves its
//! performance contracts (scenarios, contract, reports, the `tidepool` binary)
//! and its test fixtures live in crates of their own, so nothing of them is
//! compiled here.
//!
//! ```no_run
//! use tidepool_pools::browser::{BrowserPool, BrowserPoolConfig, LeaseOptions};
//!
//! # async fn service() -> tidepool_pools::Result<()> {
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
//! - [`browser`]: the browser pool, its leases, isolation modes, fleets of
//!   remote browsers, lifecycle [`browser::Hooks`] and memory limits.
//! - [`cdp`]: pooled CDP sessions and pipelined command batches.
//! - [`wasm`] (feature `wasm`, on by default): the tiered WASM instance pool
//!   and its verified AOT cache.
//! - [`timeout`]: adaptive timeouts learned per key.
//! - [`memory`]: a process tree's memory, and the policy that limits it.
//! - [`metrics_catalog`]: the names every pool reports through the `metrics`
//!   facade. Every pool keeps its records bounded: counters and fixed-size
//!   latency histograms ([`LatencySummary`] in each `stats()`).
//!
//! # Platform
//!
//! Linux is the supported platform: the browser pool reads `/proc` for
//! process trees, memory and leftover processes, and signals its Chromium
//! processes by pid. On another Unix it compiles, and a pool leases
//! browsers but measures no memory and sweeps no leftovers; Windows is not
//! supported.
//!
//! # Features
//!
//! - `wasm` (default): the WASM pool; a browser-only service turns it off and
//!   compiles no Cranelift.

#![cfg_attr(docsrs, feature(doc_cfg))]
#![deny(nonstandard_style, rust_2018_idioms, rustdoc::private_intra_doc_links)]
#![forbid(non_ascii_idents)]
#![warn(unused_lifetimes, unused_qualifications, unused_import_braces)]

#[cfg(not(unix))]
compile_error!("tidepool-pools supports Linux (and compiles, degraded, on other Unix systems)");

mod atomic_file;
pub mod browser;
pub mod cdp;
#[cfg(feature = "controls")]
#[doc(hidden)]
pub mod controls;
mod error;
pub mod memory;
pub mod metrics_catalog;
mod os;
mod recording;
mod retention;
pub mod timeout;
#[cfg(feature = "wasm")]
#[cfg_attr(docsrs, doc(cfg(feature = "wasm")))]
pub mod wasm;

/// The CDP client the pools speak through (chromey, whose library is named
/// `chromiumoxide`): its `Page`, `Browser` and protocol types appear in the
/// browser pool's API, so a service names them through this re-export and
/// never compiles a second version.
pub use chromiumoxide;
/// wasmtime, whose `Store`, `TypedFunc` and errors appear in the WASM pool's
/// API.
#[cfg(feature = "wasm")]
#[cfg_attr(docsrs, doc(cfg(feature = "wasm")))]
pub use wasmtime;

pub use atomic_file::write_atomic;
#[cfg(feature = "wasm")]
pub use error::WasmFault;
pub use error::{Error, Result};
pub use recording::LatencySummary;
pub use retention::Retention;
