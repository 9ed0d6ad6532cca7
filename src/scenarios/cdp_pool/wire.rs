//! The step on the wire: a second browser behind a recording relay.

use super::*;

/// The step on the wire: a second browser, reached through a recording relay,
/// so the pipelining verdict comes from frame times on the socket rather than
/// from when our futures were polled; each side's request is also counted in
/// commands and bytes, including what the CDP client sends by itself when it
/// attaches a page.
pub(super) async fn on_the_wire(
    s: &mut MetricSummary,
    server: &FixtureServer,
    profile: RunProfile,
    variant: Variant,
) -> Result<()> {
    let urls: Vec<String> = (0..profile.scaled(10, 40))
        .map(|i| server.url(&format!("/page/{i}")))
        .collect();
    // Run as a service runs its work, in a task: from the thread that blocks
    // on the runtime, every command of a batch wakes a worker on its own and
    // the batch reaches the wire in pieces (0.14-0.33 waits per command,
    // against 0.125 from a task).
    let wire = tokio::spawn(wire_figures(urls, variant))
        .await
        .map_err(|e| Error::task("cdp_pool on the wire", e))??;
    s.ratio_of(
        "wire_waits_per_command",
        wire.waits as f64,
        wire.commands as f64,
    )?;
    if variant == Variant::Honest {
        s.measure("wire_commands_pooled", "commands", &wire.pooled_commands)?;
        s.measure("wire_kb_pooled", "KB", &wire.pooled_kb)?;
        s.measure(
            "wire_commands_new_target",
            "commands",
            &wire.new_target_commands,
        )?;
        s.measure("wire_kb_new_target", "KB", &wire.new_target_kb)?;
        s.note("on the wire: a second browser behind a recording relay; waits per command counted from the frame times of each step batch's commands; commands and KB are the client's frames per request, the CDP client's own attach and init commands included");
    }
    Ok(())
}

/// What the relay saw of the step batches and of each side's requests.
#[derive(Default)]
pub(super) struct Wire {
    pub(super) waits: u64,
    pub(super) commands: u64,
    pub(super) pooled_commands: Vec<f64>,
    pub(super) pooled_kb: Vec<f64>,
    pub(super) new_target_commands: Vec<f64>,
    pub(super) new_target_kb: Vec<f64>,
}

pub(super) async fn wire_figures(urls: Vec<String>, variant: Variant) -> Result<Wire> {
    let chromium = ExternalChromium::start().await?;
    let measured = match CdpRelay::start(&chromium.ws_url).await {
        Ok(relay) => {
            let config = BrowserPoolConfig {
                source: BrowserSource::Connect {
                    endpoints: vec![relay.ws_url()],
                },
                min_idle: 1,
                max_size: 1,
                warm_up: 1,
                memory: None,
                // The relay counts every message: no heartbeat among them.
                fleet: FleetPolicy {
                    heartbeat: None,
                    ..FleetPolicy::default()
                },
                ..BrowserPoolConfig::default()
            };
            match BrowserPool::new(config).await {
                Ok(pool) => {
                    let measured = through_relay(&pool, &relay, &urls, variant).await;
                    pool.close().await;
                    measured
                }
                Err(e) => Err(e.into()),
            }
        }
        Err(e) => Err(e.into()),
    };
    chromium.stop().await;
    measured
}

pub(super) async fn through_relay(
    pool: &BrowserPool,
    relay: &CdpRelay,
    urls: &[String],
    variant: Variant,
) -> Result<Wire> {
    let lease = pool.acquire().await?;
    let sessions = SessionPool::new(&lease, variant.sessions())?;
    let mut wire = Wire::default();
    for url in urls {
        relay.clear();
        let session = sessions.acquire().await?;
        session.goto(url).await?;
        let sent_before = relay.frames().len();
        let mut batch = session.batch();
        push_step(&mut batch);
        let results = variant.send(batch).await;
        let frames = relay.frames();
        // The session's own commands only: the pool's health checks share
        // the socket.
        let id = session.page().session_id().as_ref().to_owned();
        let (waits, commands) = wire_round_trip_waits(&frames[sent_before..], |f| {
            f.session.as_deref() == Some(id.as_str())
        });
        session.release().await;
        if let Some(err) = results.into_iter().find_map(|r| r.err()) {
            return Err(err.into());
        }
        wire.waits += waits;
        wire.commands += commands;
        let (n, bytes) = commands_sent(&relay.frames());
        wire.pooled_commands.push(n as f64);
        wire.pooled_kb.push(bytes as f64 / 1e3);
        if variant == Variant::Honest {
            relay.clear();
            baseline_request(&lease, url).await?;
            let (n, bytes) = commands_sent(&relay.frames());
            wire.new_target_commands.push(n as f64);
            wire.new_target_kb.push(bytes as f64 / 1e3);
        }
    }
    Ok(wire)
}
