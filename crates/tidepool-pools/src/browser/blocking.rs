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
/// With [`private_addresses`](Self::private_addresses), requests to
/// loopback, private, link-local and cloud-metadata addresses are refused
/// too, navigations included: a page that tries to reach the machine's own
/// services (server-side request forgery through the browser) gets
/// `net::ERR_BLOCKED_BY_CLIENT`, and a `goto` there fails naming the URL.
/// The host is judged as the URL writes it; a public name that resolves to
/// a private address is not caught here (that needs a resolver or a proxy
/// that checks). Chromium then pauses every request and the pool decides
/// each: one CDP message per request.
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
    /// Requests to loopback, private, link-local and metadata hosts refused.
    pub private_addresses: bool,
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

    /// Also blocks every request to a loopback, private, link-local or
    /// cloud-metadata host.
    pub fn private_addresses(mut self) -> Blocking {
        self.private_addresses = true;
        self
    }

    /// Whether it blocks nothing.
    pub fn is_empty(&self) -> bool {
        self.kinds.is_empty() && self.url_patterns.is_empty() && !self.private_addresses
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

/// Whether `url`'s host, as written, is one a page must not reach when
/// private addresses are blocked: loopback, private, link-local,
/// unspecified or shared (CGNAT) addresses, `localhost`, and the cloud
/// metadata names.
pub(crate) fn is_private_host(url: &str) -> bool {
    use std::net::IpAddr;
    let Ok(url) = url::Url::parse(url) else {
        return false;
    };
    match url.host() {
        Some(url::Host::Ipv4(ip)) => private_ip(IpAddr::V4(ip)),
        Some(url::Host::Ipv6(ip)) => private_ip(IpAddr::V6(ip)),
        Some(url::Host::Domain(name)) => {
            let name = name.trim_end_matches('.').to_ascii_lowercase();
            name == "localhost"
                || name.ends_with(".localhost")
                || name == "metadata"
                || name == "metadata.google.internal"
        }
        None => false,
    }
}

fn private_ip(ip: std::net::IpAddr) -> bool {
    use std::net::IpAddr;
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                // 100.64.0.0/10, carrier-grade NAT: other tenants' hosts.
                || (a == 100 && (64..128).contains(&b))
        }
        IpAddr::V6(v6) => {
            let first = v6.segments()[0];
            v6.is_loopback()
                || v6.is_unspecified()
                // fc00::/7 unique local (fd00:ec2::254 is AWS's metadata),
                // fe80::/10 link-local.
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80
                || v6.to_ipv4_mapped().is_some_and(|v4| private_ip(IpAddr::V4(v4)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::is_private_host;

    #[test]
    fn private_hosts_are_told_from_public_ones_as_written() {
        for url in [
            "http://127.0.0.1:9222/json/version",
            "http://localhost:8080/",
            "http://api.localhost/",
            "http://10.1.2.3/",
            "http://172.16.0.1/",
            "http://192.168.1.1/admin",
            "http://169.254.169.254/latest/meta-data/",
            "http://metadata.google.internal/computeMetadata/v1/",
            "http://100.64.0.1/",
            "http://0.0.0.0:8080/",
            "http://[::1]:9222/",
            "http://[fd00:ec2::254]/",
            "http://[fe80::1]/",
            "http://[::ffff:127.0.0.1]/",
            "ws://127.0.0.1:9222/devtools/browser/x",
        ] {
            assert!(is_private_host(url), "{url}");
        }
        for url in [
            "https://example.com/",
            "http://8.8.8.8/",
            "http://172.32.0.1/",
            "http://100.128.0.1/",
            "http://[2001:db8::1]/",
            "data:text/html,hi",
            "about:blank",
        ] {
            assert!(!is_private_host(url), "{url}");
        }
    }
}
