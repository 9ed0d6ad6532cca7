//! Requests a lease's pages never send: by resource type (images, fonts,
//! media, ...) and by URL pattern (trackers, ads), the largest per-page CPU
//! lever a crawler has.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The kinds of request a page makes, as Chromium's network stack types
/// them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ResourceKind {
    /// `<img>`, CSS backgrounds, favicons.
    Image,
    /// `<video>`, `<audio>`.
    Media,
    /// Web fonts.
    Font,
    /// CSS.
    Stylesheet,
    /// JavaScript files.
    Script,
    /// `XMLHttpRequest`.
    Xhr,
    /// `fetch()`.
    Fetch,
    /// `navigator.sendBeacon` and `<a ping>`.
    Ping,
    /// Web app manifests.
    Manifest,
    /// What Chromium types as none of the above.
    Other,
}

impl ResourceKind {
    /// Its name in configs and logs.
    pub fn name(self) -> &'static str {
        match self {
            ResourceKind::Image => "image",
            ResourceKind::Media => "media",
            ResourceKind::Font => "font",
            ResourceKind::Stylesheet => "stylesheet",
            ResourceKind::Script => "script",
            ResourceKind::Xhr => "xhr",
            ResourceKind::Fetch => "fetch",
            ResourceKind::Ping => "ping",
            ResourceKind::Manifest => "manifest",
            ResourceKind::Other => "other",
        }
    }
}

/// Requests to refuse on every page of a lease, as a pool default
/// ([`BrowserPoolConfig::blocking`](super::BrowserPoolConfig::blocking)) or
/// a lease's own ([`LeaseOptions::blocking`](super::LeaseOptions::blocking)).
///
/// A blocked request fails at once in the page (`net::ERR_BLOCKED_BY_CLIENT`),
/// before it reaches the network; the page's `load` does not wait for it.
/// Chromium pauses only the requests that match (CDP `Fetch.enable` with one
/// pattern per kind and URL pattern), and the pool fails each: one CDP
/// message per blocked request, none for the others. URL patterns are
/// Chromium's wildcards: `*` any run of characters, `?` one character,
/// matched against the whole URL.
///
/// Blocking is the lease's own in every isolation mode: it stops when the
/// lease ends, even under [`Isolation::None`](super::Isolation::None).
///
/// ```
/// use tidepool_pools::browser::{Blocking, ResourceKind};
///
/// let text_only = Blocking::new()
///     .kinds([ResourceKind::Image, ResourceKind::Font, ResourceKind::Media])
///     .url_pattern("*://*.doubleclick.net/*");
/// assert!(text_only.validate("lease.blocking").is_ok());
/// assert!(Blocking::new().url_pattern("").validate("lease.blocking").is_err());
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Blocking {
    /// Kinds of request refused whatever their URL.
    pub kinds: BTreeSet<ResourceKind>,
    /// URLs refused whatever their kind.
    pub url_patterns: Vec<String>,
}

impl Blocking {
    /// Blocks nothing; add kinds and patterns with the methods below.
    pub fn new() -> Blocking {
        Blocking::default()
    }

    /// Also blocks every request of these kinds.
    pub fn kinds(mut self, kinds: impl IntoIterator<Item = ResourceKind>) -> Blocking {
        self.kinds.extend(kinds);
        self
    }

    /// Also blocks every URL matching `pattern`.
    pub fn url_pattern(mut self, pattern: impl Into<String>) -> Blocking {
        self.url_patterns.push(pattern.into());
        self
    }

    /// Whether it blocks nothing.
    pub fn is_empty(&self) -> bool {
        self.kinds.is_empty() && self.url_patterns.is_empty()
    }

    /// Checks the patterns; the error names the field under `prefix`
    /// (`lease.blocking` or `browser.blocking`) and the pattern.
    pub fn validate(&self, prefix: &str) -> Result<()> {
        for (i, pattern) in self.url_patterns.iter().enumerate() {
            if pattern.is_empty() || pattern.contains(char::is_whitespace) {
                return Err(Error::config(
                    format!("{prefix}.url_patterns[{i}]"),
                    format!("{pattern:?} is empty or has whitespace in it"),
                ));
            }
        }
        Ok(())
    }
}
