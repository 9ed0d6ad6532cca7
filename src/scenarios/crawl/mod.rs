//! A crawl at the floor: tidepool's three isolation modes against the least
//! a raw CDP client can do, on the same fixture pages, in alternating rounds.
//!
//! Every side does the same work per page (navigate, wait for the load, one
//! evaluation of the title, checked, and no painting: every page is in a
//! minimized window) with [`WORKERS`] concurrent workers, and
//! each side's wall clock holds its own start-up: the floor's launch and
//! page opening, the pool's warm-up. Machine CPU per page is reported with
//! each side's pages per second, and split by process kind, because on a
//! CPU-bound crawler CPU per page is throughput.

mod floor;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tidepool_pools::controls;

use chromiumoxide::cdp::js_protocol::runtime::EvaluateParams;

use super::end_to_end::string_value;
use super::{Control, Scenario, ScenarioFuture};
use crate::browser::{
    locate_chromium, BrowserPool, BrowserPoolConfig, BrowserSource, FleetPolicy, Isolation, Lease,
};
use crate::error::Result;
use crate::profile::RunProfile;
use crate::summary::{FigureSpec, MetricSummary, ScenarioSpec};
use crate::testkit::{
    browser_cpu_by_kind, commands_sent, machine_cpu_ms, own_cpu_ms, settle, unique_suffix,
    CdpRelay, FixtureServer,
};
use floor::Floor;
use tidepool_pools::Error as PoolError;

/// How long a browser of the census gets to close before it is killed.
const CLOSE_GRACE: Duration = Duration::from_secs(2);

/// The figures of one side, named `{side}_...`.
macro_rules! side_figures {
    ($($side:literal),*) => {
        &[
            $(
                FigureSpec::measurement(concat!($side, "_page_ms"), "ms"),
                FigureSpec::ratio(concat!($side, "_pages_per_s")),
                FigureSpec::ratio(concat!($side, "_cpu_ms_per_page")),
                FigureSpec::ratio(concat!($side, "_client_cpu_ms_per_page")),
                FigureSpec::ratio(concat!($side, "_browser_cpu_ms_per_page")),
                FigureSpec::ratio(concat!($side, "_renderer_cpu_ms_per_page")),
                FigureSpec::ratio(concat!($side, "_commands_per_page")),
                FigureSpec::ratio(concat!($side, "_events_per_page")),
            )*
            FigureSpec::counter("pages").scales(),
            FigureSpec::counter("pages_not_right"),
        ]
    };
}

pub(super) const SCENARIO: Scenario = Scenario {
    spec: ScenarioSpec {
        name: "crawl",
        description: "a crawl with each isolation mode (a fresh context, a wiped one, none) vs a raw-CDP floor client, alternating rounds on the same pages",
        figures: side_figures!("floor", "floor_context", "none", "wipe", "context"),
    },
    run: start,
    needs_browser: true,
    controls: CONTROLS,
};

fn start(profile: RunProfile) -> ScenarioFuture {
    Box::pin(run(profile, Variant::Honest))
}

/// The pool's sides as they should be, or a bad variant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Variant {
    Honest,
    /// Every browser retired after one lease: a launch per page.
    LaunchPerLease,
    /// Every worker drives the page of one shared lease.
    SharedLease,
}

const CONTROLS: &[Control] = &[
    Control {
        name: "launch_per_lease",
        what: "pools whose browsers are retired after one lease (max_uses 1), so each page waits on a launch",
        rejects: &[
            "none_near_the_floor",
            "wipe_near_the_floor",
            "context_near_the_floor",
            "context_near_its_floor",
        ],
        run: |p| Box::pin(run(p, Variant::LaunchPerLease)),
    },
    Control {
        name: "shared_lease",
        what: "one lease whose page every worker navigates at once, so a worker reads another's page",
        rejects: &["every_page_right"],
        run: |p| Box::pin(run(p, Variant::SharedLease)),
    },
];

/// Concurrent workers on every side; the floor opens as many pages.
const WORKERS: usize = 4;
/// The fixture pages' size, KiB: an article page.
const PAGE_KB: usize = 30;
/// Pages each side crawls through a recording relay for the wire census
/// (half as many at quick size).
const CENSUS_PAGES: usize = 16;
/// The longest wait for a quiet machine before a side's round.
const SETTLE_MAX: Duration = Duration::from_secs(3);
/// What each side evaluates on a loaded page.
const EXPRESSION: &str = "document.title";

/// One side of the comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    Floor,
    /// The floor with a fresh context per page: the least a raw client can
    /// do with the isolation of [`Isolation::Context`].
    FloorContext,
    Pool(Isolation),
}

impl Side {
    fn name(self) -> &'static str {
        match self {
            Side::Floor => "floor",
            Side::FloorContext => "floor_context",
            Side::Pool(i) => i.name(),
        }
    }
}

const SIDES: [Side; 5] = [
    Side::Floor,
    Side::Pool(Isolation::None),
    Side::Pool(Isolation::Wipe),
    Side::FloorContext,
    Side::Pool(Isolation::Context),
];

/// What one side measured over its rounds.
#[derive(Debug, Default)]
struct Tally {
    latencies_ms: Vec<f64>,
    not_right: u64,
    wall: Duration,
    machine_ms: f64,
    client_ms: f64,
    by_kind: BTreeMap<&'static str, f64>,
    errors: BTreeMap<String, u64>,
    /// Each round's wall clock and the start-up within it.
    rounds: Vec<(Duration, Duration)>,
}

impl Tally {
    fn pages(&self) -> usize {
        self.latencies_ms.len()
    }
}

/// One round of one side, measured from before its start-up to its last page.
#[derive(Debug)]
struct Round {
    pages: Vec<(Duration, Result<bool>)>,
    wall: Duration,
    /// From the start of the clocks until the first page could start.
    startup: Duration,
    machine_ms: f64,
    client_ms: f64,
    by_kind: BTreeMap<&'static str, f64>,
}

/// The pages still to crawl in a round, handed out one at a time.
struct Queue<'a> {
    urls: &'a [(String, String)],
    next: AtomicUsize,
}

impl<'a> Queue<'a> {
    fn new(urls: &'a [(String, String)]) -> Queue<'a> {
        Queue {
            urls,
            next: AtomicUsize::new(0),
        }
    }

    /// The next URL and the title its page must have.
    fn claim(&self) -> Option<&'a (String, String)> {
        self.urls.get(self.next.fetch_add(1, Ordering::Relaxed))
    }
}

async fn run(profile: RunProfile, variant: Variant) -> Result<MetricSummary> {
    let server = FixtureServer::start().await?;
    let result = measure(profile, variant, &server).await;
    server.shutdown().await;
    result
}

async fn measure(
    profile: RunProfile,
    variant: Variant,
    server: &FixtureServer,
) -> Result<MetricSummary> {
    let executable = locate_chromium(None)?;
    // The controls need only show the figure move; a launch per page is slow.
    let n = match variant {
        Variant::Honest => profile.scaled(60, 200),
        // At 12 pages the floor's own start-up weighs so much that the
        // Context side read 0.19 of it, near its limit of 0.22.
        _ => 24,
    };
    let urls: Vec<(String, String)> = (0..n)
        .map(|i| {
            (
                server.url(&format!("/page/{i}?kb={PAGE_KB}")),
                format!("Page {i}"),
            )
        })
        .collect();
    let (rounds, sides): (usize, &[Side]) = match variant {
        Variant::Honest => (2, &SIDES),
        Variant::LaunchPerLease => (1, &SIDES),
        Variant::SharedLease => (1, &SIDES[1..2]),
    };
    if variant == Variant::Honest {
        // Untimed: the first launch of the run reads Chromium from disk
        // and builds its font cache, which no side should pay for alone.
        prime(&executable, &urls[..WORKERS.min(urls.len())]).await?;
    }
    let mut schedule = abba(sides, rounds);
    if variant == Variant::Honest {
        // The floor and None are the cheapest sides and the closest
        // comparison (0.9 of the floor, within the spread of two rounds on
        // this machine), so they run twice the rounds.
        schedule.extend(abba(&SIDES[..2], rounds));
    }
    let mut tallies: BTreeMap<&'static str, Tally> = BTreeMap::new();
    for side in schedule {
        // Untimed, and the same for every side: what the previous side
        // left behind is not this one's to pay for. (The controls read a
        // tenth of every limit; they need not wait.)
        if variant == Variant::Honest {
            settle(SETTLE_MAX).await;
        }
        let r = match side {
            Side::Floor => floor_round(&executable, &urls, false).await?,
            Side::FloorContext => floor_round(&executable, &urls, true).await?,
            Side::Pool(isolation) => pool_round(isolation, &urls, variant).await?,
        };
        let t = tallies.entry(side.name()).or_default();
        for (took, result) in r.pages {
            match result {
                Ok(true) => t.latencies_ms.push(took.as_secs_f64() * 1e3),
                Ok(false) => t.not_right += 1,
                Err(e) => {
                    t.not_right += 1;
                    *t.errors.entry(e.to_string()).or_default() += 1;
                }
            }
        }
        t.wall += r.wall;
        t.rounds.push((r.wall, r.startup));
        t.machine_ms += r.machine_ms;
        t.client_ms += r.client_ms;
        for (kind, ms) in r.by_kind {
            *t.by_kind.entry(kind).or_default() += ms;
        }
    }
    let mut wire = BTreeMap::new();
    if variant == Variant::Honest {
        let census_pages = profile.scaled(CENSUS_PAGES / 2, CENSUS_PAGES);
        for side in SIDES {
            let census_urls = &urls[..census_pages.min(urls.len())];
            wire.insert(side.name(), census(&executable, census_urls, side).await?);
        }
    }
    summarise(profile, n * rounds, &tallies, &wire)
}

/// One side's commands and events per page on the wire, untimed: its
/// browser behind a recording relay, its start-up left out of the count
/// and the pool's recycling of the last leases in. The pool connects to
/// the browser (it does not launch it here) with its memory watch off, the
/// one thing connect mode would add to the wire.
async fn census(
    executable: &std::path::Path,
    urls: &[(String, String)],
    side: Side,
) -> Result<Wire> {
    let (mut process, endpoint) = floor::launch_browser(executable, unique_suffix()).await?;
    let relay = match CdpRelay::start(&endpoint).await {
        Ok(relay) => relay,
        Err(e) => {
            process.terminate(CLOSE_GRACE).await;
            return Err(e.into());
        }
    };
    match side {
        Side::FloorContext => {
            let floor = Floor::connect(process, &relay.ws_url()).await?;
            relay.clear();
            let floor_ref = &floor;
            let done = workers(urls, move |_, url| async move {
                floor_ref.visit_in_fresh_context(url, EXPRESSION).await
            })
            .await;
            let wire = Wire::read(&relay, done.len());
            floor.close().await;
            Ok(wire)
        }
        Side::Floor => {
            let floor = Floor::connect(process, &relay.ws_url()).await?;
            let opened =
                futures::future::try_join_all((0..WORKERS).map(|_| floor.open_page())).await;
            let result = match opened {
                Ok(pages) => {
                    let pages: Vec<_> = pages.into_iter().map(tokio::sync::Mutex::new).collect();
                    relay.clear();
                    let (floor_ref, pages_ref) = (&floor, &pages);
                    let done = workers(urls, move |w, url| async move {
                        let mut page = pages_ref[w].lock().await;
                        floor_ref.visit(&mut page, url, EXPRESSION).await
                    })
                    .await;
                    Ok(Wire::read(&relay, done.len()))
                }
                Err(e) => Err(e),
            };
            floor.close().await;
            result
        }
        Side::Pool(isolation) => {
            let result = async {
                let pool = BrowserPool::new(BrowserPoolConfig {
                    source: BrowserSource::Connect {
                        endpoints: vec![relay.ws_url()],
                    },
                    memory: None,
                    // The relay counts every message: no heartbeat among them.
                    fleet: FleetPolicy {
                        heartbeat: None,
                        ..FleetPolicy::default()
                    },
                    ..pool_config(isolation, Variant::Honest)
                })
                .await?;
                relay.clear();
                let pool_ref = &pool;
                let done = workers(urls, move |_, url| async move {
                    let lease = pool_ref.acquire().await?;
                    visit(&lease, url).await
                })
                .await;
                pool.wait_until_idle(WORKERS, Duration::from_secs(30)).await;
                let wire = Wire::read(&relay, done.len());
                pool.close().await;
                Ok(wire)
            }
            .await;
            process.terminate(CLOSE_GRACE).await;
            result
        }
    }
}

/// What crossed the relay per page.
#[derive(Debug, Clone, Copy)]
struct Wire {
    commands: f64,
    events: f64,
}

impl Wire {
    fn read(relay: &CdpRelay, pages: usize) -> Wire {
        let frames = relay.frames();
        let pages = pages.max(1) as f64;
        let (commands, _) = commands_sent(&frames);
        let events = frames
            .iter()
            .filter(|f| !f.to_browser && f.id.is_none())
            .count();
        Wire {
            commands: commands as f64 / pages,
            events: events as f64 / pages,
        }
    }
}

fn summarise(
    profile: RunProfile,
    pages: usize,
    tallies: &BTreeMap<&'static str, Tally>,
    wire: &BTreeMap<&'static str, Wire>,
) -> Result<MetricSummary> {
    let mut s = MetricSummary::new(SCENARIO.spec.name, profile);
    s.count("pages", pages as u64);
    s.count(
        "pages_not_right",
        tallies.values().map(|t| t.not_right).sum(),
    );
    for (side, t) in tallies {
        if t.pages() == 0 {
            continue;
        }
        let per_page = |ms: f64| ms / t.pages() as f64;
        s.measure(&format!("{side}_page_ms"), "ms", &t.latencies_ms)?;
        s.ratio(
            &format!("{side}_pages_per_s"),
            t.pages() as f64 / t.wall.as_secs_f64().max(1e-9),
        );
        s.ratio(&format!("{side}_cpu_ms_per_page"), per_page(t.machine_ms));
        s.ratio(
            &format!("{side}_client_cpu_ms_per_page"),
            per_page(t.client_ms),
        );
        for kind in ["browser", "renderer"] {
            s.ratio(
                &format!("{side}_{kind}_cpu_ms_per_page"),
                per_page(t.by_kind.get(kind).copied().unwrap_or(0.0)),
            );
        }
        let rest: Vec<String> = t
            .by_kind
            .iter()
            .filter(|(k, _)| !matches!(**k, "browser" | "renderer"))
            .map(|(k, ms)| format!("{k} {:.1}", per_page(*ms)))
            .collect();
        s.note(format!(
            "{side}: {} pages in {:.1} s; CPU ms per page: machine {:.1}, client {:.1}, {}",
            t.pages(),
            t.wall.as_secs_f64(),
            per_page(t.machine_ms),
            per_page(t.client_ms),
            if rest.is_empty() {
                "no other browser process".to_owned()
            } else {
                rest.join(", ")
            }
        ));
        let rounds: Vec<String> = t
            .rounds
            .iter()
            .map(|(wall, startup)| {
                format!(
                    "{:.2} s ({:.2} s start-up)",
                    wall.as_secs_f64(),
                    startup.as_secs_f64()
                )
            })
            .collect();
        s.note(format!("{side} rounds: {}", rounds.join(", ")));
        if let Some(w) = wire.get(side) {
            s.ratio(&format!("{side}_commands_per_page"), w.commands);
            s.ratio(&format!("{side}_events_per_page"), w.events);
        }
        for (error, count) in &t.errors {
            s.note(format!("{side}: {count} pages failed: {error}"));
        }
    }
    s.note(format!(
        "every side: {WORKERS} workers, pages of {PAGE_KB} KiB, per page a navigation, its load, and {EXPRESSION} checked; wall clocks include each side's start-up (the floor's launch and pages, the pool's warm-up). no side paints: every page is in a minimized window. floor: one browser, {WORKERS} pages opened once and reused, raw CDP with only the Page domain on. floor_context: the same client with a fresh incognito context per page (created, its page opened and attached, disposed after the visit), the least a raw client does with the isolation of context. none/wipe/context: a lease per page from a pool of {WORKERS} slots in one browser (leases_per_browser {WORKERS}, hidden_pages), with that isolation. rounds alternate A B B A, each after the machine settles (untimed), and the floor and none run twice as many as the others, their comparison being the closest; an untimed floor round first warms the disk cache. client CPU is this process's (the fixture server's included, on every side alike); browser and renderer are the browsers' process trees by kind, read before they close. commands and events per page: a separate, untimed crawl of {CENSUS_PAGES} pages per side ({} at quick size) through a recording relay, start-up left out", CENSUS_PAGES / 2
    ));
    Ok(s)
}

/// Starts a CPU and wall clock for one side's round.
struct Clocks {
    t0: Instant,
    machine: f64,
    own: f64,
}

impl Clocks {
    fn start() -> Clocks {
        Clocks {
            t0: Instant::now(),
            machine: machine_cpu_ms(),
            own: own_cpu_ms(),
        }
    }

    /// How long the round has run.
    fn elapsed(&self) -> Duration {
        self.t0.elapsed()
    }

    /// The round's figures, with the browsers' trees read now.
    fn stop(
        self,
        startup: Duration,
        pages: Vec<(Duration, Result<bool>)>,
        browsers: &[u32],
    ) -> Round {
        Round {
            wall: self.t0.elapsed(),
            startup,
            machine_ms: machine_cpu_ms() - self.machine,
            client_ms: own_cpu_ms() - self.own,
            by_kind: browser_cpu_by_kind(browsers),
            pages,
        }
    }
}

/// Runs `WORKERS` workers over `urls`, each visiting with `visit`, and
/// returns every page's latency and whether its title was right.
async fn workers<'a, W, F>(urls: &'a [(String, String)], visit: W) -> Vec<(Duration, Result<bool>)>
where
    W: Fn(usize, &'a str) -> F,
    F: std::future::Future<Output = Result<String>> + 'a,
{
    let queue = Queue::new(urls);
    let each = (0..WORKERS).map(|w| {
        let (queue, visit) = (&queue, &visit);
        async move {
            let mut done = Vec::new();
            while let Some((url, title)) = queue.claim() {
                let t = Instant::now();
                let result = visit(w, url).await.map(|seen| seen == *title);
                done.push((t.elapsed(), result));
            }
            done
        }
    });
    futures::future::join_all(each)
        .await
        .into_iter()
        .flatten()
        .collect()
}

/// `rounds` rounds of `sides`, every other one in reverse (A B B A), so
/// each side's neighbours stay its neighbours and a machine that drifts
/// slower or faster through the run costs every side alike.
fn abba(sides: &[Side], rounds: usize) -> Vec<Side> {
    (0..rounds)
        .flat_map(|round| {
            let mut order = sides.to_vec();
            if round % 2 == 1 {
                order.reverse();
            }
            order
        })
        .collect()
}

/// One untimed floor round over `urls`, its figures dropped.
async fn prime(executable: &std::path::Path, urls: &[(String, String)]) -> Result<()> {
    let round = floor_round(executable, urls, false).await?;
    match round.pages.into_iter().find_map(|(_, r)| r.err()) {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

async fn floor_round(
    executable: &std::path::Path,
    urls: &[(String, String)],
    context_per_page: bool,
) -> Result<Round> {
    let clocks = Clocks::start();
    let floor = Floor::launch(executable, unique_suffix()).await?;
    if context_per_page {
        let startup = clocks.elapsed();
        let floor_ref = &floor;
        let done = workers(urls, move |_, url| async move {
            floor_ref.visit_in_fresh_context(url, EXPRESSION).await
        })
        .await;
        let round = clocks.stop(startup, done, &[floor.pid()]);
        floor.close().await;
        return Ok(round);
    }
    let opened = futures::future::try_join_all((0..WORKERS).map(|_| floor.open_page())).await;
    let pages = match opened {
        Ok(pages) => pages,
        Err(e) => {
            floor.close().await;
            return Err(e);
        }
    };
    let startup = clocks.elapsed();
    let pages: Vec<tokio::sync::Mutex<floor::FloorPage>> =
        pages.into_iter().map(tokio::sync::Mutex::new).collect();
    let (floor_ref, pages_ref) = (&floor, &pages);
    let done = workers(urls, move |w, url| async move {
        // Each worker owns its page; the lock is never contended.
        let mut page = pages_ref[w].lock().await;
        floor_ref.visit(&mut page, url, EXPRESSION).await
    })
    .await;
    let round = clocks.stop(startup, done, &[floor.pid()]);
    drop(pages);
    floor.close().await;
    Ok(round)
}

async fn pool_round(
    isolation: Isolation,
    urls: &[(String, String)],
    variant: Variant,
) -> Result<Round> {
    let clocks = Clocks::start();
    let pool = BrowserPool::new(pool_config(isolation, variant)).await?;
    let shared = match variant {
        Variant::SharedLease => Some(pool.acquire().await?),
        _ => None,
    };
    let startup = clocks.elapsed();
    let (pool_ref, shared_ref) = (&pool, &shared);
    let done = workers(urls, move |_, url| async move {
        match shared_ref {
            Some(lease) => visit(lease, url).await,
            None => {
                let lease = pool_ref.acquire().await?;
                visit(&lease, url).await
            }
        }
    })
    .await;
    let round = clocks.stop(startup, done, &controls::pids(&pool));
    drop(shared);
    pool.close().await;
    Ok(round)
}

/// A pool side's pool: as many slots as workers, in one browser.
fn pool_config(isolation: Isolation, variant: Variant) -> BrowserPoolConfig {
    BrowserPoolConfig {
        max_size: WORKERS,
        min_idle: WORKERS,
        warm_up: WORKERS,
        // One browser for every worker, as the floor: each further browser
        // costs its own browser process, GPU process and network service.
        leases_per_browser: WORKERS,
        // The floor paints nothing; neither do the pool's pages.
        hidden_pages: true,
        isolation,
        max_uses: (variant == Variant::LaunchPerLease).then_some(1),
        ..BrowserPoolConfig::default()
    }
}

/// One page on a lease: navigate, wait for the load, evaluate.
async fn visit(lease: &Lease, url: &str) -> Result<String> {
    lease.goto(url).await?;
    let evaluate = EvaluateParams::builder()
        .expression(EXPRESSION)
        .return_by_value(true)
        .build()
        .map_err(|message| PoolError::Task {
            what: "building Runtime.evaluate".into(),
            message,
        })?;
    let reply = lease
        .call(
            &format!("evaluating {EXPRESSION} on {url}"),
            lease.page().execute(evaluate),
        )
        .await?;
    string_value(reply.result, EXPRESSION, url)
}
