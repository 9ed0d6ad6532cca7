//! The metrics the pools report through the [`metrics`] facade: what a
//! service's recorder (Prometheus, StatsD, OpenTelemetry) receives.
//!
//! Nothing is reported until the service installs a recorder; without one each
//! call is a no-op. Every series is process-wide: counters and gauges sum the
//! pools of the process (gauges are moved by each pool's changes, and a
//! dropped pool takes its share back). Histograms are in seconds (latencies)
//! or bytes (memory). No label carries an id, so the number of series is fixed
//! whatever a service runs for.
//!
//! | name | kind | labels | what |
//! |---|---|---|---|
//! | `tidepool_browser_acquires_total` | counter | | leases handed out |
//! | `tidepool_browser_acquire_waits_total` | counter | | acquires that queued for a free slot |
//! | `tidepool_browser_acquire_timeouts_total` | counter | | acquires that gave up |
//! | `tidepool_browser_budget_waits_total` | counter | | acquires that waited on the memory budget |
//! | `tidepool_browser_launches_total` | counter | | browsers launched or connected |
//! | `tidepool_browser_replacements_total` | counter | | browsers started to make up for retired ones |
//! | `tidepool_browser_retirements_total` | counter | `reason`: `idle_timeout`, `lifetime`, `max_uses`, `unhealthy`, `crashed`, `memory`, `closed`, `hook`, `cancelled`, `rebalanced` | browsers retired (crashes and memory evictions included; `rebalanced` counts remote slots moved to a lighter endpoint) |
//! | `tidepool_browser_soft_warnings_total` | counter | | soft memory limit crossings |
//! | `tidepool_browser_dialogs_answered_total` | counter | | JavaScript dialogs answered on leases' pages |
//! | `tidepool_browser_popups_closed_total` | counter | | popups closed as leases' pages opened them |
//! | `tidepool_browser_endpoint_losses_total` | counter | | remote endpoints lost (socket closed, heartbeat missed, refused) |
//! | `tidepool_browser_endpoints_down` | gauge | | remote endpoints down or backing off now |
//! | `tidepool_browser_idle` | gauge | | idle lease slots |
//! | `tidepool_browser_in_use` | gauge | | leased slots |
//! | `tidepool_browser_starting` | gauge | | slots being launched or connected |
//! | `tidepool_browser_busy` | gauge | | slots being probed or recycled |
//! | `tidepool_browser_pss_bytes_total` | gauge | | PSS of the launched browsers, last sample |
//! | `tidepool_browser_peak_total_pss_bytes` | gauge | | the largest such total seen |
//! | `tidepool_browser_pss_bytes` | histogram | | one browser's PSS, each exact sample |
//! | `tidepool_browser_acquire_seconds` | histogram | | acquire latency |
//! | `tidepool_browser_launch_seconds` | histogram | | launch to first context ready |
//! | `tidepool_cdp_sessions_created_total` | counter | | page sessions created |
//! | `tidepool_cdp_sessions_reused_total` | counter | | acquisitions served by a kept session |
//! | `tidepool_cdp_session_resets_total` | counter | | resets between uses |
//! | `tidepool_cdp_sessions_expired_total` | counter | | sessions closed for idleness or age |
//! | `tidepool_cdp_sessions_discarded_total` | counter | | sessions thrown away (failed probe, reset or target) |
//! | `tidepool_cdp_sessions_surplus_closed_total` | counter | | sessions closed on return because `max_sessions` were already idle |
//! | `tidepool_cdp_batches_total` | counter | | batches sent |
//! | `tidepool_cdp_batched_commands_total` | counter | | commands sent in batches |
//! | `tidepool_cdp_batch_waits_total` | counter | | round trips batches waited through |
//! | `tidepool_cdp_batch_seconds` | histogram | | batch latency |
//! | `tidepool_wasm_serves_total` | counter | `tier`: `hot`, `warm`, `cold` | acquires by the tier that served them |
//! | `tidepool_wasm_acquire_seconds` | histogram | `tier` | acquire latency |
//! | `tidepool_wasm_instantiations_total` | counter | | instances created |
//! | `tidepool_wasm_faults_total` | counter | | guest traps and limit hits |
//! | `tidepool_wasm_cache_hits_total` | counter | | AOT artifacts loaded from disk |
//! | `tidepool_wasm_cache_misses_total` | counter | | artifacts not found |
//! | `tidepool_wasm_cache_compiles_total` | counter | | modules compiled |
//! | `tidepool_wasm_cache_evictions_total` | counter | | artifacts evicted |
//! | `tidepool_wasm_cache_rejections_total` | counter | | artifacts refused (corrupt, truncated, foreign) |
//! | `tidepool_wasm_cache_write_failures_total` | counter | | compiled modules that could not be stored (full disk, read-only directory) |
//!
//! Serving them to Prometheus takes one call in the service (see
//! `examples/metrics.rs`):
//!
//! ```ignore
//! metrics_exporter_prometheus::PrometheusBuilder::new()
//!     .with_http_listener(([127, 0, 0, 1], 9000))
//!     .install()?;
//! ```
