//! How much of the leases before it a lease may see: the choice per lease,
//! and the options an acquire takes.

use serde::{Deserialize, Serialize};

use super::blocking::Blocking;
use super::emulation::Emulation;

/// What a lease is guaranteed not to inherit from the earlier leases of the
/// same browser. Ordered from weakest to strongest: a browser made ready for
/// a stronger isolation serves a weaker one too.
///
/// | mode | between leases | left shared |
/// |---|---|---|
/// | [`Context`](Isolation::Context) | the incognito context is disposed, a fresh one made | the browser process and its caches of compiled code |
/// | [`Wipe`](Isolation::Wipe) | the context and its page are kept and wiped | as above, plus the renderer process, the network service's connection pool and socket reuse, the JS engine's code cache, origins not recorded (see below) |
/// | [`None`](Isolation::None) | nothing but closing the pages the lease opened | everything: storage, cookies, cache, overrides, the page's document |
///
/// A wipe clears, for the context: cookies, the HTTP cache and permission
/// grants; for every origin the page visited (its navigation history and its
/// frames at the end of the lease): local and session storage, IndexedDB,
/// Cache Storage, service workers, file systems and the other
/// `Storage.clearDataForOrigin` types; for the page's CDP session: init
/// scripts, device-metrics, geolocation, media, timezone, locale and
/// user-agent overrides, extra HTTP headers, script execution, the DOM agent.
/// It closes every other page of the context and unloads the page to
/// `about:blank`. An origin reached only by a frame that was gone before the
/// lease ended is not recorded, so not wiped; a lease that must not see such
/// state asks for [`Context`](Isolation::Context).
///
/// # Example
///
/// ```no_run
/// # async fn demo(pool: &tidepool_pools::browser::BrowserPool) -> tidepool_pools::Result<()> {
/// use tidepool_pools::browser::{Isolation, LeaseOptions};
///
/// // A crawler's pages of one site need no incognito context each.
/// let lease = pool.acquire_with(LeaseOptions::new().isolation(Isolation::Wipe)).await?;
/// lease.goto("http://127.0.0.1:8080/").await?;
/// # Ok(()) }
/// ```
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Isolation {
    /// The page as the last lease left it.
    None,
    /// The context and page reused, every kind of state cleared.
    Wipe,
    /// A fresh incognito context per lease: the strongest, and the default.
    #[default]
    Context,
}

impl Isolation {
    /// Every mode, weakest first.
    pub const ALL: [Isolation; 3] = [Isolation::None, Isolation::Wipe, Isolation::Context];

    /// Its name in configs and reports.
    pub fn name(self) -> &'static str {
        match self {
            Isolation::None => "none",
            Isolation::Wipe => "wipe",
            Isolation::Context => "context",
        }
    }

    /// Whether a browser made ready to `self` serves a lease asking `wanted`.
    pub fn covers(self, wanted: Isolation) -> bool {
        self >= wanted
    }
}

impl std::fmt::Display for Isolation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Isolation {
    type Err = crate::Error;

    fn from_str(s: &str) -> crate::Result<Isolation> {
        Isolation::ALL
            .into_iter()
            .find(|i| i.name() == s)
            .ok_or_else(|| {
                crate::Error::config(
                    "browser.isolation",
                    format!("{s:?} is not one of \"none\", \"wipe\", \"context\""),
                )
            })
    }
}

/// The choices an [`acquire_with`](super::BrowserPool::acquire_with) makes
/// for one lease; [`acquire`](super::BrowserPool::acquire) takes the pool's
/// defaults.
///
/// A lease with a proxy gets a context made for it
/// (`Target.createBrowserContext` with `proxyServer`), on the acquire's time;
/// one without takes the context the pool prepared ahead. A proxy that asks
/// for credentials (407) gets [`proxy_credentials`](Self::proxy_credentials)
/// through `Fetch.authRequired`: Chromium refuses them inside the server's
/// URL. The password is never printed (`Debug` shows `***`).
///
/// ```
/// use tidepool_pools::browser::{Isolation, LeaseOptions};
///
/// let options = LeaseOptions::new()
///     .isolation(Isolation::None)
///     .proxy("http://proxy.internal:3128")
///     .proxy_bypass_list("*.internal;<-loopback>");
/// assert_eq!(options.isolation, Some(Isolation::None));
/// assert!(options.validate().is_ok());
/// assert!(LeaseOptions::new().proxy("ftp://x:1").validate().is_err());
///
/// let secret = LeaseOptions::new()
///     .proxy("http://proxy.internal:3128")
///     .proxy_credentials("crawler", "s3cret");
/// assert!(secret.validate().is_ok());
/// assert!(!format!("{secret:?}").contains("s3cret"));
/// let inline = LeaseOptions::new().proxy("http://crawler:s3cret@proxy.internal:3128");
/// assert!(!inline.validate().unwrap_err().to_string().contains("s3cret"));
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct LeaseOptions {
    /// The lease's isolation; `None` takes
    /// [`BrowserPoolConfig::isolation`](super::BrowserPoolConfig::isolation).
    pub isolation: Option<Isolation>,
    /// The proxy every request of the lease's context goes through:
    /// `host:port` or `scheme://host:port` with scheme `http`, `https`,
    /// `socks4` or `socks5`, as Chromium's `--proxy-server` takes it.
    pub proxy_server: Option<String>,
    /// Hosts that bypass the proxy, `;`-separated, in Chromium's
    /// `--proxy-bypass-list` syntax. Chromium bypasses loopback addresses
    /// by default; `<-loopback>` sends them through the proxy too.
    pub proxy_bypass_list: Option<String>,
    /// What the lease answers a proxy that asks who it is.
    pub proxy_credentials: Option<ProxyCredentials>,
    /// What the lease's pages emulate; `None` takes
    /// [`BrowserPoolConfig::emulation`](super::BrowserPoolConfig::emulation).
    pub emulation: Option<Emulation>,
    /// Requests the lease's pages never send; `None` takes
    /// [`BrowserPoolConfig::blocking`](super::BrowserPoolConfig::blocking).
    pub blocking: Option<Blocking>,
}

/// A user name and password for a proxy, answered to its 407 challenge.
/// The password is not printed: `Debug` shows `***` in its place.
#[derive(Clone, PartialEq, Eq)]
pub struct ProxyCredentials {
    /// The user name.
    pub username: String,
    password: String,
}

impl ProxyCredentials {
    /// Credentials of `username` with `password`.
    pub fn new(username: impl Into<String>, password: impl Into<String>) -> ProxyCredentials {
        ProxyCredentials {
            username: username.into(),
            password: password.into(),
        }
    }

    /// The password, for the one place that sends it.
    pub(crate) fn password(&self) -> &str {
        &self.password
    }
}

impl std::fmt::Debug for ProxyCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProxyCredentials")
            .field("username", &self.username)
            .field("password", &"***")
            .finish()
    }
}

/// Schemes Chromium takes in a proxy server.
const PROXY_SCHEMES: [&str; 4] = ["http", "https", "socks4", "socks5"];

impl LeaseOptions {
    /// The pool's defaults.
    pub fn new() -> LeaseOptions {
        LeaseOptions::default()
    }

    /// Asks for `isolation` instead of the pool's default.
    pub fn isolation(mut self, isolation: Isolation) -> LeaseOptions {
        self.isolation = Some(isolation);
        self
    }

    /// Sends the lease's requests through `server`.
    pub fn proxy(mut self, server: impl Into<String>) -> LeaseOptions {
        self.proxy_server = Some(server.into());
        self
    }

    /// Hosts that skip the proxy.
    pub fn proxy_bypass_list(mut self, list: impl Into<String>) -> LeaseOptions {
        self.proxy_bypass_list = Some(list.into());
        self
    }

    /// Answers a proxy's 407 with `username` and `password`.
    pub fn proxy_credentials(
        mut self,
        username: impl Into<String>,
        password: impl Into<String>,
    ) -> LeaseOptions {
        self.proxy_credentials = Some(ProxyCredentials::new(username, password));
        self
    }

    /// Emulates `emulation` on the lease's pages, instead of the pool's.
    pub fn emulation(mut self, emulation: Emulation) -> LeaseOptions {
        self.emulation = Some(emulation);
        self
    }

    /// Blocks what `blocking` names on the lease's pages, instead of what
    /// the pool's default blocks.
    pub fn blocking(mut self, blocking: Blocking) -> LeaseOptions {
        self.blocking = Some(blocking);
        self
    }

    /// Checks the proxy, emulation and blocking settings; the error names
    /// the field and the value (a password in it replaced by `***`).
    pub fn validate(&self) -> crate::Result<()> {
        if let Some(e) = &self.emulation {
            e.validate("lease.emulation")?;
        }
        if let Some(b) = &self.blocking {
            b.validate("lease.blocking")?;
        }
        if let Some(server) = &self.proxy_server {
            let (scheme, rest) = server.split_once("://").unwrap_or(("http", server));
            let host = rest.split('/').next().unwrap_or(rest);
            if let Some((_, at)) = host.rsplit_once('@') {
                return Err(crate::Error::config(
                    "lease.proxy_server",
                    format!(
                        "\"{scheme}://***@{at}\" has credentials in it, which Chromium refuses: \
                         give them as lease.proxy_credentials"
                    ),
                ));
            }
            let bad = |why: &str| {
                Err(crate::Error::config(
                    "lease.proxy_server",
                    format!("{server:?} {why}"),
                ))
            };
            if !PROXY_SCHEMES.contains(&scheme) {
                return bad(
                    "has a scheme Chromium does not proxy through (http, https, socks4, socks5)",
                );
            }
            if rest.is_empty() || rest.starts_with(':') || rest.contains(char::is_whitespace) {
                return bad("names no host, or has whitespace in it");
            }
        }
        match (&self.proxy_server, &self.proxy_bypass_list) {
            (None, Some(list)) => Err(crate::Error::config(
                "lease.proxy_bypass_list",
                format!("{list:?} is set without a proxy_server"),
            )),
            (Some(_), Some(list)) if list.contains(char::is_whitespace) => {
                Err(crate::Error::config(
                    "lease.proxy_bypass_list",
                    format!("{list:?} has whitespace in it"),
                ))
            }
            _ => Ok(()),
        }?;
        if self.proxy_credentials.is_some() && self.proxy_server.is_none() {
            return Err(crate::Error::config(
                "lease.proxy_credentials",
                "is set without a proxy_server",
            ));
        }
        Ok(())
    }

    /// The context this lease needs, if not the pool's prepared one.
    pub(crate) fn context_proxy(&self) -> Option<ContextProxy> {
        self.proxy_server.as_ref().map(|server| ContextProxy {
            server: server.clone(),
            bypass_list: self.proxy_bypass_list.clone(),
            credentials: self.proxy_credentials.clone(),
        })
    }
}

/// The proxy a context was created with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ContextProxy {
    pub(crate) server: String,
    pub(crate) bypass_list: Option<String>,
    /// Answered to the proxy's challenges on every page of the context.
    pub(crate) credentials: Option<ProxyCredentials>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stronger_isolation_covers_the_weaker_ones_and_not_the_reverse() {
        assert!(Isolation::Context.covers(Isolation::Wipe));
        assert!(Isolation::Wipe.covers(Isolation::None));
        assert!(Isolation::Wipe.covers(Isolation::Wipe));
        assert!(!Isolation::Wipe.covers(Isolation::Context));
        assert!(!Isolation::None.covers(Isolation::Wipe));
    }

    #[test]
    fn names_round_trip_and_a_bad_one_names_the_field() {
        for i in Isolation::ALL {
            assert_eq!(i.name().parse::<Isolation>().unwrap(), i);
        }
        let e = "incognito".parse::<Isolation>().unwrap_err().to_string();
        assert!(
            e.contains("browser.isolation") && e.contains("incognito"),
            "{e}"
        );
    }
}
