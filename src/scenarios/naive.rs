//! The naive baseline every pool is measured against: a fresh browser per page.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use chromiumoxide::cdp::browser_protocol::target::CreateTargetParams;

use crate::browser::{own_tag_prefix, Sandbox};
use crate::error::Result;
use tidepool_pools::controls::UnpooledBrowser;

/// Timings of one naive page load.
#[derive(Debug, Clone)]
pub(crate) struct NaiveLoad {
    /// Process start to the first CDP answer (`Browser.getVersion`).
    pub(crate) launch: Duration,
    /// Process start to the last expression's value in hand.
    pub(crate) total: Duration,
    /// What each expression evaluated to on the loaded page, in order.
    pub(crate) values: Vec<String>,
    /// The browser's product string, e.g. `Chrome/156.0.8078.79`.
    pub(crate) product: String,
}

const GRACE: Duration = Duration::from_secs(2);

/// Launches a browser of its own, outside any pool, tagged as this process's.
pub(crate) async fn launch(executable: &Path, flags: &[String]) -> Result<UnpooledBrowser> {
    static N: AtomicU64 = AtomicU64::new(1);
    let id = N.fetch_add(1, Ordering::Relaxed);
    let tag = format!("{}naive-{id}", own_tag_prefix());
    let browser = UnpooledBrowser::launch(
        id,
        executable,
        flags,
        // The same sandbox choice as the pools it is compared with.
        Sandbox::Auto,
        &tag,
        Duration::from_secs(20),
        Duration::from_secs(10),
    )
    .await?;
    Ok(browser)
}

/// Launches a browser, opens a page, navigates to `url`, evaluates each of
/// `expressions` (to a string) one round trip after another, and closes the
/// browser (closing is not part of `total`).
pub(crate) async fn load_page(
    executable: &Path,
    flags: &[String],
    url: &str,
    expressions: &[&str],
) -> Result<NaiveLoad> {
    let t0 = Instant::now();
    let instance = launch(executable, flags).await?;
    let id = instance.id();
    let result = async {
        let browser = instance.browser().clone();
        let version = instance
            .cdp("Browser.getVersion", browser.version())
            .await?;
        let launch = t0.elapsed();
        let page = instance
            .cdp(
                "opening a page",
                browser.new_page(CreateTargetParams::new("about:blank")),
            )
            .await?;
        instance
            .cdp(&format!("navigating to {url}"), page.goto(url))
            .await?;
        let mut values = Vec::with_capacity(expressions.len());
        for &expression in expressions {
            let value = instance
                .cdp(
                    &format!("evaluating {expression}"),
                    page.evaluate(expression),
                )
                .await?;
            values.push(value.into_value().map_err(|e| tidepool_pools::Error::Cdp {
                browser: id,
                endpoint: instance.endpoint().to_owned(),
                action: format!("reading the result of {expression}"),
                message: e.to_string(),
            })?);
        }
        Ok(NaiveLoad {
            launch,
            total: t0.elapsed(),
            values,
            product: version.product,
        })
    }
    .await;
    instance.shut_down(GRACE).await;
    result
}
