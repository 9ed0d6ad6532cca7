//! The fixtures tidepool's scenarios and contract suites measure with. Not
//! published: a service depends on `tidepool-pools` alone.
//!
//! - [`FixtureServer`]: a real HTTP server on 127.0.0.1 with the routes the
//!   scenarios need (pages, latency, memory, cookies, status codes, counters).
//! - [`HttpConnection`]: one real keep-alive client connection.
//! - [`CdpRelay`]: a recording WebSocket relay in front of a browser.
//! - [`TcpRelay`]: a TCP relay in front of an endpoint that can hold a
//!   client's socket open after the browser's closed (a fault on the wire).
//! - [`CountingProxy`]: a forward HTTP proxy that records what passes through.
//! - [`ExternalChromium`]: a browser started outside any pool, to connect to.
//! - [`ResourceCheck`]: processes, profiles and descriptors back where they were.
//! - [`check_report_page`]: a report page as headless Chromium shows it.
//! - [`machine_cpu_ms`] and its kin: CPU time from `/proc`, for CPU per page.
//! - [`wasm_fixtures`]: the WASM modules the scenarios and tests run.
//!
//! The harness that runs a scenario against the contract is in the suite
//! crate (`tidepool::harness`).

mod client;
mod cpu;
mod external;
mod logging;
mod page_check;
mod proxy;
mod relay;
mod resources;
mod server;
mod tcp_relay;
mod trace;
pub mod wasm_fixtures;

pub use client::{get_once, HttpConnection, HttpResponse};
pub use cpu::{browser_cpu_by_kind, machine_cpu_ms, own_cpu_ms, process_cpu_ms, settle};
pub use external::{free_port, ExternalChromium};
pub use logging::{init_tracing, DEFAULT_LOG_FILTER};
pub use page_check::{check_report_page, PageCheck};
pub use proxy::CountingProxy;
pub use relay::{
    commands_sent, wire_round_trip_waits, wire_waits_per_command, CdpRelay, WireFrame,
};
pub use resources::{
    become_child_subreaper, continue_process, interrupt_process, kill_process,
    leftover_browser_processes, leftover_profiles, open_fds, process_alive,
    processes_naming_own_profiles, stop_process, tagged_processes, zombie_children, ResourceCheck,
};
pub use server::{
    generated_page_html, generated_page_html_sized, FixtureServer, FixtureServerConfig,
    RequestRecord,
};
pub use tcp_relay::{TcpRelay, UpstreamClosed};
pub use trace::SeededRng;

/// A scratch directory under the temp dir, created fresh (never an existing
/// one) with an unpredictable name after `prefix`, owner-only, and removed
/// when the returned handle drops.
pub fn scratch_dir(prefix: &str) -> tidepool_pools::Result<tempfile::TempDir> {
    tempfile::Builder::new()
        .prefix(prefix)
        .tempdir()
        .map_err(|e| {
            tidepool_pools::Error::io(
                "creating a scratch directory",
                std::env::temp_dir().join(prefix),
                e,
            )
        })
}

/// A suffix no other call in this process returns: scenarios and controls
/// that run in one process (the CLI runs them back to back) never share a
/// scratch directory.
pub fn unique_suffix() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed)
}
