//! The one error type of the pools.
//!
//! Every variant says what went wrong and where: the config field, the file,
//! the endpoint, the browser, the module. Callers match on the variant; people read the
//! `Display` text, which is written to be enough on its own in a CI log.

use std::path::PathBuf;
use std::time::Duration;

/// A `Result` whose error is the pools' [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in a pool.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A configuration value is out of its allowed range or inconsistent with another.
    #[error("invalid config: `{field}` {problem}")]
    Config {
        /// The field, as spelled in the config struct or file (`browser.max_size`).
        field: String,
        /// What is wrong with it.
        problem: String,
    },

    /// A file-system operation failed.
    #[error("{action} {}: {source}", path.display())]
    Io {
        /// What was being done (`reading`, `writing`, `renaming`...).
        action: &'static str,
        /// The path it was done to.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },

    /// A file the library saved earlier (learned timeouts) is unreadable or of
    /// another version; the caller starts fresh.
    #[error("{}: {message}", path.display())]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },

    /// JSON (de)serialisation failed.
    #[error("JSON for {what}: {source}")]
    Json {
        /// What was being (de)serialised.
        what: String,
        /// The underlying error.
        #[source]
        source: serde_json::Error,
    },

    /// An HTTP exchange with a fixture or target server failed.
    #[error("HTTP {url}: {message}")]
    Http {
        /// The URL requested.
        url: String,
        /// What failed.
        message: String,
    },

    /// No Chromium binary was found.
    #[error("no Chromium binary found; looked at: {looked}. Install it (Debian: apt-get install chromium) or set $CHROME")]
    ChromiumNotFound {
        /// Every place that was searched, and why each failed.
        looked: String,
    },

    /// A Chromium process could not be started or did not become ready.
    #[error("launching {}: {message}", executable.display())]
    Launch {
        /// The binary that was started.
        executable: PathBuf,
        /// What went wrong, with the tail of its stderr when there is one.
        message: String,
    },

    /// A CDP exchange with a browser failed.
    #[error("browser {browser} ({endpoint}): {action}: {message}")]
    Cdp {
        /// The pool's id for the browser.
        browser: u64,
        /// Its DevTools websocket URL.
        endpoint: String,
        /// What was being done.
        action: String,
        /// The underlying error.
        message: String,
    },

    /// The browser behind a lease crashed or disconnected.
    #[error("browser {browser} crashed during {action}: {detail}")]
    BrowserCrashed {
        /// The pool's id for the browser.
        browser: u64,
        /// The call that found it gone.
        action: String,
        /// How it ended (exit status, closed connection).
        detail: String,
    },

    /// The renderer of a lease's page crashed (out of memory, a renderer
    /// bug, `Page.crash`); the browser itself lives on.
    #[error("browser {browser}: the page's renderer crashed during {action}")]
    PageCrashed {
        /// The pool's id for the browser.
        browser: u64,
        /// The call that found the page crashed.
        action: String,
    },

    /// A call on a lease's page ended in a download, which the pool denies:
    /// nothing was written, and the page is where it was.
    #[error("browser {browser}: {action} started a download of {url}, which the pool denies")]
    DownloadDenied {
        /// The pool's id for the browser.
        browser: u64,
        /// The call that started it.
        action: String,
        /// What would have been downloaded.
        url: String,
    },

    /// The pool evicted the browser behind a lease (its memory passed the hard limit).
    #[error("browser {browser} was evicted during {action}: {reason}")]
    BrowserEvicted {
        /// The pool's id for the browser.
        browser: u64,
        /// The call that found it evicted.
        action: String,
        /// Why, with the figures.
        reason: String,
    },

    /// A pool in connect mode found no endpoint up to open a slot in.
    #[error("no browser endpoint is up: {endpoints}")]
    NoEndpointUp {
        /// Each endpoint, where it stands and why it was refused.
        endpoints: String,
    },

    /// No browser became available within the acquire timeout.
    #[error("no browser available within {waited:?} (pool max_size {max_size}, {in_use} in use)")]
    AcquireTimeout {
        /// How long the caller waited.
        waited: Duration,
        /// The pool's limit.
        max_size: usize,
        /// Leases out at the time.
        in_use: usize,
    },

    /// The pool was closed.
    #[error("the {what} pool is closed")]
    PoolClosed {
        /// Which pool.
        what: &'static str,
    },

    /// A WASM module failed to compile, link, or run.
    #[cfg(feature = "wasm")]
    #[error("wasm module {module}: {fault}: {message}")]
    Wasm {
        /// The module's id.
        module: String,
        /// What kind of failure.
        fault: WasmFault,
        /// wasmtime's account of it.
        message: String,
    },

    /// A lifecycle hook of the browser pool failed or ran past its deadline;
    /// the pool retired the browser it ran on.
    #[error("browser {browser}: the {hook} hook failed: {message}")]
    Hook {
        /// The pool's id for the browser.
        browser: u64,
        /// Which hook: `after_launch`, `before_lease` or `after_release`.
        hook: &'static str,
        /// The hook's error, or the deadline it missed.
        message: String,
    },

    /// A background task of a scenario or pool panicked or was cancelled.
    #[error("task {what} failed: {message}")]
    Task {
        /// Which task.
        what: String,
        /// Its panic message or cancellation.
        message: String,
    },

    /// An operation did not finish within its deadline.
    #[error("{key} timed out after {after:?}")]
    Timeout {
        /// What was waited for: the adaptive-timeout key (a host, a route, a
        /// scenario), or the operation and where it ran.
        key: String,
        /// How long it was given.
        after: Duration,
    },
}

impl Error {
    /// Whether the same work may succeed in a new lease: the browser or
    /// endpoint behind the lease was lost (crashed, evicted, gone from the
    /// fleet, hung past a deadline), its page crashed, no browser was free in
    /// time, or a hook failed and its browser was retired. Not for a bad
    /// config, a missing binary, a script or protocol error the page itself
    /// answered with (`Cdp`), a closed pool, or a WASM fault: those fail the
    /// same way again.
    ///
    /// ```
    /// use std::time::Duration;
    /// use tidepool_pools::Error;
    ///
    /// let lost = Error::BrowserCrashed { browser: 3, action: "goto".into(), detail: "the connection closed".into() };
    /// assert!(lost.is_retryable());
    /// assert!(!Error::config("browser.max_size", "must be at least 1").is_retryable());
    /// ```
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::BrowserCrashed { .. }
            | Error::PageCrashed { .. }
            | Error::BrowserEvicted { .. }
            | Error::NoEndpointUp { .. }
            | Error::AcquireTimeout { .. }
            | Error::Hook { .. }
            | Error::Timeout { .. } => true,
            Error::Config { .. }
            | Error::Io { .. }
            | Error::Corrupt { .. }
            | Error::Json { .. }
            | Error::Http { .. }
            | Error::ChromiumNotFound { .. }
            | Error::Launch { .. }
            | Error::Cdp { .. }
            | Error::PoolClosed { .. }
            | Error::DownloadDenied { .. }
            | Error::Task { .. } => false,
            #[cfg(feature = "wasm")]
            Error::Wasm { .. } => false,
        }
    }

    /// An [`Error::Task`] for the task `what`, which panicked or was cancelled.
    pub fn task(what: impl Into<String>, e: tokio::task::JoinError) -> Self {
        Error::Task {
            what: what.into(),
            message: e.to_string(),
        }
    }

    /// An [`Error::Io`] for `action` on `path`.
    pub fn io(action: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            action,
            path: path.into(),
            source,
        }
    }

    /// An [`Error::Config`] naming `field`.
    pub fn config(field: impl Into<String>, problem: impl Into<String>) -> Self {
        Error::Config {
            field: field.into(),
            problem: problem.into(),
        }
    }
}

/// Why a WASM module failed.
#[cfg(feature = "wasm")]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum WasmFault {
    /// It did not compile (or the engine could not be configured).
    Compile,
    /// It could not be linked or instantiated.
    Instantiate,
    /// The guest trapped (unreachable, out-of-bounds access, ...).
    Trap,
    /// The guest ran past its call deadline and was interrupted.
    Deadline,
    /// The guest ran out of fuel.
    OutOfFuel,
    /// The guest tried to grow its memory past the limit.
    MemoryLimit,
    /// The host misused the module (missing export, wrong signature, bad input).
    Usage,
}

#[cfg(feature = "wasm")]
impl std::fmt::Display for WasmFault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            WasmFault::Compile => "compile error",
            WasmFault::Instantiate => "instantiation error",
            WasmFault::Trap => "trap",
            WasmFault::Deadline => "deadline exceeded",
            WasmFault::OutOfFuel => "out of fuel",
            WasmFault::MemoryLimit => "memory limit exceeded",
            WasmFault::Usage => "usage error",
        })
    }
}
