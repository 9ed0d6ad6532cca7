use std::path::PathBuf;
use std::time::Duration;

use crate::error::{Error, Result};
use crate::memory::MemoryPolicy;
use crate::retention::Retention;

use super::blocking::Blocking;
use super::chromium::sandbox::Sandbox;
use super::emulation::Emulation;
use super::fleet::FleetPolicy;
use super::isolation::Isolation;

/// Where the pool's browsers come from.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum BrowserSource {
    /// Launch local Chromium processes.
    Launch {
        /// The binary; `None` searches `$CHROME`, `$CHROMIUM_PATH`, then `PATH`
        /// for `chromium`, `chromium-browser`, `google-chrome` (see
        /// [`locate_chromium`](super::locate_chromium)).
        executable: Option<PathBuf>,
    },
    /// Connect to browsers that run elsewhere: a fleet of browserless
    /// instances, Chrome in pods behind Services, VMs with remote debugging.
    /// Each new slot opens on the endpoint with the fewest, a lost endpoint
    /// is retried with backoff and rejoins when it answers, and `acquire`
    /// fails only when none is up ([`FleetPolicy`]). The pool never kills
    /// these browsers; it only disposes the contexts it created, which are
    /// also made to go with the pool's connection if the process dies.
    Connect {
        /// `ws://host:port/devtools/browser/<id>` URLs, used as given, or
        /// `http://host:port` addresses, resolved through their
        /// `/json/version` at every connection (a restarted Chrome gets a
        /// new browser id). Query parameters (a browserless `token` or
        /// `timeout`) are kept and passed on to the WebSocket.
        endpoints: Vec<String>,
    },
}

/// Flags passed to every launched Chromium unless the config replaces them.
///
/// They keep a headless browser quiet and self-contained: no first-run UI, no
/// background connections to Google (refused on closed networks, and noise in
/// any measurement), no GPU process work, `/tmp` instead of `/dev/shm` for
/// shared memory (small in containers). `--no-sandbox` is not among them: it
/// is added only when [`BrowserPoolConfig::sandbox`] resolves to off.
///
/// The `--disable-features` list turns off renderers no lease ever uses. Every
/// new incognito context got a WebUI omnibox popup preloaded (two renderers,
/// one each for `WebUIOmniboxPopup` and `WebUIOmniboxAimPopup`) and a spare
/// renderer warmed for it (`SpareRendererForSitePerProcess`), which a pool
/// throws away with the context. Measured on Chromium 156: a context with its
/// first page started 3 renderers and cost ~300 ms of CPU; with these off, 1
/// renderer and ~130 ms. A cold launch gets cheaper too (its first window
/// preloads the same popup).
///
/// `BackForwardCache` is off because a pooled page never goes back. With it
/// on, every navigation away from a site (the session reset's `about:blank`
/// included) keeps the old document alive in the cache and swaps to a new
/// renderer process for the next one. Measured on Chromium 156 over 40 reused
/// sessions: 9-10 renderers alive for one page and a reset of ~52 ms, against
/// 3 renderers and ~20 ms with it off.
///
/// A caller passing its own `--disable-features` should repeat these:
/// Chromium keeps only the last one.
///
/// The pool itself always adds `--headless=new` (unless a `--headless` flag is
/// given), `--remote-debugging-port=0` and a fresh `--user-data-dir` per browser.
pub const DEFAULT_FLAGS: &[&str] = &[
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--disable-extensions",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--mute-audio",
    "--hide-scrollbars",
    "--metrics-recording-only",
    "--password-store=basic",
    "--use-mock-keychain",
    "--disable-features=SpareRendererForSitePerProcess,WebUIOmniboxPopup,WebUIOmniboxAimPopup,BackForwardCache",
];

/// How a [`BrowserPool`](super::BrowserPool) sizes, warms and retires browsers.
///
/// # Example
///
/// ```
/// use std::time::Duration;
/// use tidepool_pools::browser::BrowserPoolConfig;
///
/// let config = BrowserPoolConfig {
///     max_size: 4,
///     min_idle: 1,
///     warm_up: 1,
///     max_uses: Some(50),
///     ..BrowserPoolConfig::default()
/// };
/// config.validate()?;
/// # Ok::<(), tidepool_pools::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct BrowserPoolConfig {
    /// Launch or connect.
    pub source: BrowserSource,
    /// Idle lease slots kept ready by the background task (default 2).
    pub min_idle: usize,
    /// Most lease slots at once: idle, leased and starting (default 10).
    /// With one lease per browser (the default), the most browsers.
    pub max_size: usize,
    /// Lease slots ready when [`BrowserPool::new`](super::BrowserPool::new)
    /// returns (default 3, capped at `max_size`).
    pub warm_up: usize,
    /// How many leases one browser serves at once, each in its own context
    /// and page (default 1). Above 1, a pool of `max_size` slots runs
    /// `max_size / leases_per_browser` browsers (rounded up) instead of
    /// `max_size`: one browser process, GPU process and network service
    /// for several leases, which on a CPU-bound crawler halves the CPU per
    /// page. What the leases of one browser share: its renderer processes
    /// when their pages are same-site (under [`Isolation::Wipe`] and
    /// [`Isolation::None`], where a context outlives its lease), its
    /// memory limit (an eviction or a crash ends every lease in it), and
    /// its lifetime and `max_uses`, which count the leases of all its slots.
    pub leases_per_browser: usize,
    /// How long `acquire` waits for a browser before `Error::AcquireTimeout` (default 30 s).
    pub acquire_timeout: Duration,
    /// When browsers are retired for idleness or age and probed before reuse
    /// (default [`Retention::default`]: 60 s idle, 30 min lifetime, probed
    /// every 30 s with a 2 s deadline). `min_idle` browsers are kept however
    /// long they idle.
    pub retention: Retention,
    /// A browser is retired after this many leases (default none).
    pub max_uses: Option<u32>,
    /// Whether leases' pages live in minimized windows (default false).
    /// Chromium then loads, lays out and scripts them but paints nothing:
    /// no compositor frames, no GPU-process work, about a third less
    /// machine CPU per page on a crawl that only reads the DOM (the crawl
    /// suite measures it). The price, on the page: `document.visibilityState`
    /// is `"hidden"`, `requestAnimationFrame` callbacks never run, timers
    /// are throttled as in a background tab, and `Page.captureScreenshot`
    /// never answers. `Page.printToPDF` still works. Leave it off for
    /// screenshots and for pages that render in animation frames.
    pub hidden_pages: bool,
    /// What [`acquire`](super::BrowserPool::acquire) isolates each lease
    /// from the ones before it (default [`Isolation::Context`], a fresh
    /// incognito context); [`acquire_with`](super::BrowserPool::acquire_with)
    /// chooses per lease.
    pub isolation: Isolation,
    /// Deadline from process start to a connected, ready browser (default 20 s:
    /// a cold disk on two cores can take several seconds).
    pub launch_timeout: Duration,
    /// Deadline of each CDP command the pool sends itself (default 10 s).
    pub cdp_timeout: Duration,
    /// Command-line flags for launched browsers (default [`DEFAULT_FLAGS`]).
    pub flags: Vec<String>,
    /// Whether launched browsers run in Chromium's sandbox (default
    /// [`Sandbox::Auto`]: the `TIDEPOOL_SANDBOX` switch, else on unless root).
    pub sandbox: Sandbox,
    /// Memory limits per lease and the optional pool-wide budget (default
    /// [`MemoryPolicy::default`]); `None` turns measuring off. A browser is
    /// held to them times its `leases_per_browser`
    /// ([`MemoryPolicy::for_leases`]), so with one lease per browser they
    /// are the browser's; in connect mode with
    /// [`FleetPolicy::max_leases_per_endpoint`] set, times that cap, and
    /// per endpoint. The budget spans every browser, local or remote. A launched
    /// browser is measured by the PSS of its process tree, a connected one
    /// (no process here) by the V8 heaps of the pool's pages in it.
    pub memory: Option<MemoryPolicy>,
    /// How leases are spread over remote endpoints and a lost one is
    /// retried (default [`FleetPolicy::default`]); read in connect mode only.
    pub fleet: FleetPolicy,
    /// What every lease's pages emulate unless its
    /// [`LeaseOptions`](super::LeaseOptions) say otherwise (default none).
    pub emulation: Option<Emulation>,
    /// Requests every lease's pages never send unless its
    /// [`LeaseOptions`](super::LeaseOptions) say otherwise (default none).
    pub blocking: Option<Blocking>,
    /// What happens to the pages a lease's pages open by themselves
    /// (default [`Popups::Close`]).
    pub popups: Popups,
}

/// What the pool does with a popup: a page that a lease's page opened
/// (`window.open`, a `target=_blank` link), as opposed to one the lease
/// opened through [`Lease::new_page`](super::Lease::new_page).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Popups {
    /// Closed as it opens, and counted in
    /// [`BrowserPoolStats::popups_closed`](super::BrowserPoolStats::popups_closed):
    /// a `window.open` storm costs no renderers, and no popup outlives its
    /// lease.
    #[default]
    Close,
    /// Left open, for flows that need them (a login window). They go with
    /// the lease's context under [`Isolation::Context`] and are closed by
    /// the wipe under [`Isolation::Wipe`]; under [`Isolation::None`] the
    /// next lease inherits them, as it inherits everything.
    Keep,
}

impl Default for BrowserPoolConfig {
    fn default() -> Self {
        BrowserPoolConfig {
            source: BrowserSource::Launch { executable: None },
            min_idle: 2,
            max_size: 10,
            warm_up: 3,
            leases_per_browser: 1,
            hidden_pages: false,
            acquire_timeout: Duration::from_secs(30),
            retention: Retention::default(),
            max_uses: None,
            isolation: Isolation::Context,
            launch_timeout: Duration::from_secs(20),
            cdp_timeout: Duration::from_secs(10),
            flags: DEFAULT_FLAGS.iter().map(|f| f.to_string()).collect(),
            sandbox: Sandbox::Auto,
            memory: Some(MemoryPolicy::default()),
            fleet: FleetPolicy::default(),
            emulation: None,
            blocking: None,
            popups: Popups::Close,
        }
    }
}

impl BrowserPoolConfig {
    /// Checks every field and their combinations; the error names the field.
    pub fn validate(&self) -> Result<()> {
        let field =
            |name: &str, problem: String| Err(Error::config(format!("browser.{name}"), problem));
        if self.max_size == 0 {
            return field("max_size", "must be at least 1".into());
        }
        if let Some(e) = &self.emulation {
            e.validate("browser.emulation")?;
        }
        if let Some(b) = &self.blocking {
            b.validate("browser.blocking")?;
        }
        if self.min_idle > self.max_size {
            return field(
                "min_idle",
                format!(
                    "is {} but max_size is {}: the pool could never keep that many idle",
                    self.min_idle, self.max_size
                ),
            );
        }
        if self.leases_per_browser == 0 {
            return field("leases_per_browser", "must be at least 1".into());
        }
        if self.warm_up > self.max_size {
            return field(
                "warm_up",
                format!("is {} but max_size is {}", self.warm_up, self.max_size),
            );
        }
        for (name, d) in [
            ("acquire_timeout", self.acquire_timeout),
            ("launch_timeout", self.launch_timeout),
            ("cdp_timeout", self.cdp_timeout),
        ] {
            if d.is_zero() {
                return field(name, "must be greater than zero".into());
            }
        }
        self.retention.validate("browser.retention")?;
        if self.max_uses == Some(0) {
            return field(
                "max_uses",
                "must be at least 1 (or unset for no limit)".into(),
            );
        }
        let sandbox = self.sandbox.resolve()?;
        if sandbox.on && self.flags.iter().any(|f| f == "--no-sandbox") {
            return field(
                "flags",
                format!(
                    "hold --no-sandbox while the sandbox is on ({}); set sandbox to Off instead",
                    sandbox.by
                ),
            );
        }
        for flag in &self.flags {
            if flag.starts_with("--user-data-dir") || flag.starts_with("--remote-debugging-port") {
                return field(
                    "flags",
                    format!("{flag:?} is managed by the pool (a fresh profile and a free port per browser)"),
                );
            }
        }
        if let Some(memory) = &self.memory {
            memory.validate()?;
        }
        self.fleet.validate()?;
        match &self.source {
            BrowserSource::Connect { endpoints } if endpoints.is_empty() => field(
                "source.endpoints",
                "needs at least one ws:// or http:// address".into(),
            ),
            BrowserSource::Connect { endpoints } => {
                for (i, endpoint) in endpoints.iter().enumerate() {
                    if let Err(problem) = super::chromium::endpoint::check(endpoint) {
                        return field(&format!("source.endpoints[{i}]"), problem);
                    }
                    if endpoints[..i].contains(endpoint) {
                        return field(
                            &format!("source.endpoints[{i}]"),
                            format!("{endpoint:?} is listed twice"),
                        );
                    }
                }
                let Some(cap) = self.fleet.max_leases_per_endpoint else {
                    return Ok(());
                };
                let room = cap * endpoints.len();
                for (name, n) in [("warm_up", self.warm_up), ("min_idle", self.min_idle)] {
                    if n > room {
                        return field(
                            name,
                            format!(
                                "is {n} but {} endpoints of at most {cap} leases (fleet.max_leases_per_endpoint) hold {room}",
                                endpoints.len()
                            ),
                        );
                    }
                }
                Ok(())
            }
            BrowserSource::Launch { .. } => Ok(()),
        }
    }

    /// Lease slots one browser holds at most: `leases_per_browser`, or in
    /// connect mode under a per-endpoint cap, that cap (an endpoint's slots
    /// share its connection).
    pub(crate) fn slots_per_browser(&self) -> usize {
        match (&self.source, self.fleet.max_leases_per_endpoint) {
            (BrowserSource::Connect { .. }, Some(cap)) => cap,
            _ => self.leases_per_browser,
        }
    }
}
