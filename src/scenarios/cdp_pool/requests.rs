//! One request on each side (a new target, or a pooled session and one
//! batch), the concurrent reuse of one session pool, and the attribution
//! check of a batch.

use super::*;
use tidepool_pools::Error as PoolError;

/// The baseline request: a new page target, navigation, the seven commands
/// one round trip each, and closing the target (the pooled side's reset is
/// timed too). Returns (total ms, commands ms, waits).
pub(super) async fn baseline_request(lease: &Lease, url: &str) -> Result<(f64, f64, u64)> {
    let t = Instant::now();
    let params = CreateTargetParams::builder()
        .url("about:blank")
        .browser_context_id(lease.context_id().clone())
        .build()
        .map_err(|message| PoolError::Cdp {
            browser: lease.browser_id(),
            endpoint: String::new(),
            action: "building Target.createTarget".into(),
            message,
        })?;
    let page = lease
        .call("creating a page", lease.browser().new_page(params))
        .await?;
    lease.call("navigating", page.goto(url)).await?;
    let commands = Instant::now();
    let mut stamps = Vec::with_capacity(STEP_COMMANDS);
    macro_rules! one {
        ($cmd:expr) => {{
            let sent = Instant::now();
            lease.call("a step command", page.execute($cmd)).await?;
            stamps.push((sent, Instant::now()));
        }};
    }
    one!(EvaluateParams::new("document.title"));
    one!(GetDocumentParams::default());
    one!(EvaluateParams::new("document.querySelectorAll('a').length"));
    one!(GetCookiesParams::default());
    one!(GetLayoutMetricsParams::default());
    one!(EvaluateParams::new("document.body.innerText.length"));
    one!(EvaluateParams::new(
        "document.querySelector('#price').textContent"
    ));
    let commands = ms(commands);
    lease.call("closing the page", page.close()).await?;
    Ok((ms(t), commands, crate::cdp::round_trip_waits(&stamps)))
}

/// Renderers of the browser at `pid`, counted off the runtime.
pub(super) async fn renderers(pid: u32) -> usize {
    tokio::task::spawn_blocking(move || count_of_kind(pid, "renderer"))
        .await
        .unwrap_or(0)
}

/// Waits (up to 2 s) until the browser runs no more than `n` renderers. A
/// baseline page has a renderer of its own, which exits after
/// `Target.closeTarget` has answered; its teardown belongs to the baseline,
/// not to the pooled step measured next.
pub(super) async fn settle(pid: Option<u32>, n: usize) {
    let Some(pid) = pid else { return };
    let deadline = Instant::now() + Duration::from_secs(2);
    while renderers(pid).await > n && Instant::now() < deadline {
        // Waiting on another process to exit: it signals nothing we can await.
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// A baseline request, then the wait for its page's renderer to exit.
pub(super) async fn settled_baseline(lease: &Lease, url: &str) -> Result<(f64, f64, u64)> {
    let renderers_before = match lease.pid() {
        Some(pid) => renderers(pid).await,
        None => 0,
    };
    let measured = baseline_request(lease, url).await?;
    settle(lease.pid(), renderers_before).await;
    Ok(measured)
}

/// The pooled request: a session from the pool, navigation, the seven
/// commands in one batch, and the reset that returns the session (the
/// baseline's counterpart, closing its target, is timed too). Returns (total
/// ms, the batch's own ms).
pub(super) async fn pooled_request(
    lease: &Lease,
    sessions: &SessionPool,
    url: &str,
    variant: Variant,
) -> Result<(f64, f64)> {
    let t = Instant::now();
    let session = sessions.acquire().await?;
    session.goto(url).await?;
    let mut batch = session.batch();
    push_step(&mut batch);
    let sent = Instant::now();
    let results = variant.send(batch).await;
    let batch_ms = ms(sent);
    if let Some(Err(e)) = results.iter().find(|r| r.is_err()) {
        return Err(PoolError::Cdp {
            browser: lease.browser_id(),
            endpoint: String::new(),
            action: "a pooled step".into(),
            message: e.to_string(),
        }
        .into());
    }
    session.release().await;
    Ok((ms(t), batch_ms))
}

/// `USERS` concurrent users of one session pool, each taking, using and
/// returning sessions: the share of acquisitions after the first round that
/// reused a session. Returns (reused, counted).
pub(super) async fn concurrent_reuse(
    sessions: &SessionPool,
    server: &FixtureServer,
    per_user: usize,
) -> Result<(u64, u64)> {
    let users = (0..USERS).map(|u| {
        let sessions = sessions.clone();
        let base = server.url("/page/");
        async move {
            let mut reused = Vec::with_capacity(per_user);
            for i in 0..per_user {
                let session = sessions.acquire().await?;
                reused.push(session.reused());
                session.goto(&format!("{base}{}", u * 1000 + i)).await?;
                let mut batch = session.batch();
                batch.push(EvaluateParams::new("document.title"));
                for r in batch.send().await {
                    r?;
                }
                session.release().await;
            }
            Ok::<_, Error>(reused)
        }
    });
    let per_user_results = futures::future::try_join_all(users).await?;
    let (mut hits, mut counted) = (0, 0);
    for results in per_user_results {
        // Each user's first acquisition finds the pool empty: not steady state.
        for r in results.into_iter().skip(1) {
            counted += 1;
            hits += u64::from(r);
        }
    }
    Ok((hits, counted))
}

/// Distinct values a batch must return in their places: `n * 7919`.
pub(super) const ATTRIBUTION_VALUES: u64 = 8;

/// A batch of `ATTRIBUTION_VALUES` evaluations with distinct expected values
/// and an invalid command in the middle: every command must get its own
/// result, checked value by value, and the invalid one its own error.
/// Returns how many commands got another's result, or none.
pub(super) async fn misattributed(session: &crate::cdp::Session, variant: Variant) -> u64 {
    let mut batch = session.batch();
    let half = ATTRIBUTION_VALUES / 2;
    let mut expected: Vec<Option<u64>> = Vec::new();
    for n in 1..=half {
        batch.push(EvaluateParams::new(format!("{n} * 7919")));
        expected.push(Some(n * 7919));
    }
    batch.push(DescribeNodeParams::default()); // no node named: CDP refuses it
    expected.push(None);
    for n in half + 1..=ATTRIBUTION_VALUES {
        batch.push(EvaluateParams::new(format!("{n} * 7919")));
        expected.push(Some(n * 7919));
    }
    let results = variant.send(batch).await;
    if results.len() != expected.len() {
        return expected.len() as u64;
    }
    results
        .into_iter()
        .zip(expected)
        .filter(|(got, want)| match (got, want) {
            (Ok(v), Some(n)) => v["result"]["value"].as_u64() != Some(*n),
            (Err(_), None) => false,
            _ => true,
        })
        .count() as u64
}
