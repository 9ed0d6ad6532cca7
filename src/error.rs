//! The suite's error: what goes wrong measuring and judging (samples, the
//! contract file, reports, plots, scenario names), and every pool failure
//! the scenarios meet, as [`Error::Pool`].
//!
//! Every variant says what went wrong and where: the config field, the file and
//! line, the URL, the sample index. Callers match on the variant; people read the
//! `Display` text, which is written to be enough on its own in a CI log.

use std::path::PathBuf;

/// A `Result` whose error is the suite's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in a scenario, a contract or a report.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A statistic was asked of no samples.
    #[error("no samples for {what}: a summary needs at least one")]
    EmptySamples {
        /// What the samples were meant to describe.
        what: String,
    },

    /// A sample was NaN or infinite; statistics over it would be meaningless.
    #[error("sample {index} of {what} is {value}, not a finite number")]
    NonFiniteSample {
        /// What the samples describe.
        what: String,
        /// Zero-based position of the offending sample.
        index: usize,
        /// The offending value.
        value: f64,
    },

    /// A line of numeric input could not be read as a number.
    #[error("{source_name}:{line}: {text:?} is not a number ({reason})")]
    BadInputLine {
        /// The file name, or `<stdin>`.
        source_name: String,
        /// One-based line number.
        line: usize,
        /// The text of the line, trimmed.
        text: String,
        /// Why it was rejected.
        reason: String,
    },

    /// The performance contract file is malformed or names something that does not exist.
    #[error("{}{}: {message}", path.display(), line.map(|l| format!(":{l}")).unwrap_or_default())]
    Contract {
        /// The contract file.
        path: PathBuf,
        /// One-based line of the offending key, when known.
        line: Option<usize>,
        /// What is wrong, naming the key.
        message: String,
    },

    /// A report could not be read or is of an unsupported shape.
    #[error("report {}: {message}", path.display())]
    Report {
        /// The report file.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },

    /// A plot of a report could not be drawn.
    #[error("drawing {what}: {message}")]
    Render {
        /// The plot.
        what: String,
        /// What the plotting library said.
        message: String,
    },

    /// A scenario name was given that no scenario answers to.
    #[error("unknown scenario {name:?}; known scenarios: {known}")]
    UnknownScenario {
        /// The name that was asked for.
        name: String,
        /// The known names, comma-separated.
        known: String,
    },

    /// A pool (or a browser, a CDP call, a WASM module, a file the pools
    /// read) failed: the library's own error, unchanged.
    #[error(transparent)]
    Pool(#[from] tidepool_pools::Error),
}

impl Error {
    /// An [`Error::Pool`] for a background task that panicked or was cancelled.
    pub fn task(what: impl Into<String>, e: tokio::task::JoinError) -> Self {
        tidepool_pools::Error::task(what, e).into()
    }

    /// An [`Error::Pool`] for the file-system `action` on `path`.
    pub fn io(action: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        tidepool_pools::Error::io(action, path, source).into()
    }

    /// An [`Error::Pool`] for an invalid setting named `field`.
    pub fn config(field: impl Into<String>, problem: impl Into<String>) -> Self {
        tidepool_pools::Error::config(field, problem).into()
    }

    /// The pool failure inside, if this is one.
    pub fn as_pool(&self) -> Option<&tidepool_pools::Error> {
        match self {
            Error::Pool(e) => Some(e),
            _ => None,
        }
    }
}
