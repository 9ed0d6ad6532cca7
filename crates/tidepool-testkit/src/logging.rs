//! Test logging: `tracing` into the test's captured output.

/// The log filter when `RUST_LOG` is unset. chromiumoxide is silenced: it logs
/// every CDP message of a newer Chromium it cannot model, and an error for every
/// socket a retired browser drops, which is expected and drowns what matters.
pub const DEFAULT_LOG_FILTER: &str = "warn,chromiumoxide=off,tidepool=info";

/// Sends `tracing` output to the test's captured output, filtered by `RUST_LOG`
/// (default [`DEFAULT_LOG_FILTER`]). Safe to call more than once.
pub fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(DEFAULT_LOG_FILTER));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_test_writer()
        .with_ansi(false)
        .try_init();
}
