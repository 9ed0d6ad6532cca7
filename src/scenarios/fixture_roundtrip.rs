//! The fixture server's HTTP round trip over a real socket: a new connection per
//! request against one keep-alive connection, interleaved so both see the same
//! noise. It exercises the whole measuring path (server, clock, stats, contract,
//! report) without a browser, and is the smallest instance of the pooled vs
//! naive comparison every other scenario makes.

use std::time::Instant;

use super::{Control, Scenario, ScenarioFuture};
use crate::error::Result;
use crate::profile::RunProfile;
use crate::summary::MetricSummary;
use crate::summary::{FigureSpec, ScenarioSpec};
use crate::testkit::{get_once, FixtureServer, HttpConnection, HttpResponse};

pub(super) const SCENARIO: Scenario = Scenario {
    spec: ScenarioSpec {
        name: "fixture_roundtrip",
        description:
            "HTTP GET of a fixture page: new connection per request vs one keep-alive connection",
        figures: &[
            FigureSpec::measurement("new_connection_us", "us"),
            FigureSpec::measurement("keepalive_us", "us"),
            FigureSpec::counter("requests_sent").scales(),
            FigureSpec::counter("requests_served").scales(),
            FigureSpec::counter("failed_requests"),
            FigureSpec::ratio("keepalive_vs_new_connection_p50"),
        ],
    },
    run: start,
    needs_browser: false,
    controls: CONTROLS,
};

fn start(profile: RunProfile) -> ScenarioFuture {
    Box::pin(run(profile, Variant::Honest))
}

/// The negative controls: each a client a real regression could produce.
const CONTROLS: &[Control] = &[
    Control {
        name: "reconnecting_keepalive",
        what: "the keep-alive side opens a new connection for every request",
        rejects: &["keepalive_beats_new_connection"],
        // Both sides then do the same thing: enough samples that noise
        // cannot put one a tenth ahead.
        run: |p| {
            Box::pin(run(
                RunProfile::new(p.depth, Some(300)),
                Variant::ReconnectingKeepalive,
            ))
        },
    },
    Control {
        name: "stale_address",
        what: "every fifth request goes to an address the server no longer listens on",
        rejects: &["every_request_served", "no_failed_requests"],
        run: |p| Box::pin(run(p, Variant::StaleAddress)),
    },
    Control {
        name: "run_cut_short",
        what: "a run of 10 iterations where the contract asks for 20 samples",
        rejects: &["enough_samples"],
        run: |p| Box::pin(run(RunProfile::new(p.depth, Some(10)), Variant::Honest)),
    },
];

/// Which client the run uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Variant {
    Honest,
    /// Reconnects for every "keep-alive" request.
    ReconnectingKeepalive,
    /// Sends every fifth request of each side to a closed port.
    StaleAddress,
}

/// Requests on each path before measuring: first-use costs (lazy statics, the
/// server's first accept) are not what the scenario compares.
const WARM_UP: usize = 5;

/// A loopback address nothing listens on any more: bound, then released.
async fn stale_addr() -> Result<std::net::SocketAddr> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| crate::Error::io("binding", "127.0.0.1:0", e))?;
    listener
        .local_addr()
        .map_err(|e| crate::Error::io("binding", "127.0.0.1:0", e))
}

async fn run(profile: RunProfile, variant: Variant) -> Result<MetricSummary> {
    let server = FixtureServer::start().await?;
    let addr = server.addr();
    let stale = stale_addr().await?;
    let target = |i: usize| match variant {
        Variant::StaleAddress if i % 5 == 4 => stale,
        _ => addr,
    };
    let mut conn = HttpConnection::open(addr).await?;
    for i in 0..WARM_UP {
        get_once(addr, &format!("/page/{i}")).await?;
        conn.get(&format!("/page/{i}")).await?;
    }
    let served_before = server.served();
    let n = profile.iterations();
    let (mut fresh, mut kept) = (Vec::with_capacity(n), Vec::with_capacity(n));
    let mut failed = 0u64;
    let ok = |r: &tidepool_pools::Result<HttpResponse>| matches!(r, Ok(resp) if resp.status == 200);
    for i in 0..n {
        let path = format!("/page/{i}");
        let t = Instant::now();
        let r = get_once(target(i), &path).await;
        let elapsed = t.elapsed();
        if ok(&r) {
            fresh.push(elapsed.as_secs_f64() * 1e6);
        } else {
            tracing::warn!(?r, %path, "new-connection request failed");
            failed += 1;
        }
        let t = Instant::now();
        let r = match variant {
            Variant::Honest => conn.get(&path).await,
            Variant::ReconnectingKeepalive => match HttpConnection::open(addr).await {
                Ok(mut fresh) => fresh.get(&path).await,
                Err(e) => Err(e),
            },
            Variant::StaleAddress => match target(i) {
                a if a == addr => conn.get(&path).await,
                a => get_once(a, &path).await,
            },
        };
        let elapsed = t.elapsed();
        if ok(&r) {
            kept.push(elapsed.as_secs_f64() * 1e6);
        } else {
            tracing::warn!(?r, %path, "keep-alive request failed");
            failed += 1;
        }
    }
    drop(conn);
    let served = server.served() - served_before;
    server.shutdown().await;

    let mut s = MetricSummary::new(SCENARIO.spec.name, profile);
    let fresh_p50 = s.measure("new_connection_us", "us", &fresh)?.p50;
    let kept_p50 = s.measure("keepalive_us", "us", &kept)?.p50;
    s.count("requests_sent", 2 * n as u64);
    s.count("requests_served", served);
    s.count("failed_requests", failed);
    s.ratio_of("keepalive_vs_new_connection_p50", kept_p50, fresh_p50)?;
    Ok(s)
}
