//! A report page opened in headless Chromium through tidepool's own pool:
//! what a reader's browser would show, counted from the DOM, with every
//! console error and every request the page made.

use std::path::Path;
use std::time::Duration;

use chromiumoxide::cdp::browser_protocol::log::EventEntryAdded;
use chromiumoxide::cdp::browser_protocol::network::EventRequestWillBeSent;
use chromiumoxide::cdp::browser_protocol::page::CaptureScreenshotFormat;
use chromiumoxide::cdp::js_protocol::runtime::{
    ConsoleApiCalledType, EventConsoleApiCalled, EventExceptionThrown,
};
use chromiumoxide::page::ScreenshotParams;
use futures::StreamExt;

use tidepool_pools::browser::{BrowserPool, BrowserPoolConfig};
use tidepool_pools::{Error, Result};

/// What a browser made of a report page.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PageCheck {
    /// `<svg>` plots of measurements (`figure[data-kind=measurement]`).
    pub measurement_plots: usize,
    /// `<svg>` plots of thresholds (`figure[data-kind=threshold]`).
    pub threshold_plots: usize,
    /// Every `<svg>` on the page.
    pub plots: usize,
    /// Console errors, uncaught exceptions and error log entries, as text.
    pub console_errors: Vec<String>,
    /// Every URL the page requested besides its own file.
    pub requests: Vec<String>,
    /// Resource timing entries the page recorded (a second lens on requests).
    pub resources: usize,
}

/// Opens the HTML file at `path` in a headless Chromium leased from a
/// one-browser pool, counts its plots, collects console errors and requests,
/// and, with `screenshot`, saves a full-page PNG there.
pub async fn check_report_page(path: &Path, screenshot: Option<&Path>) -> Result<PageCheck> {
    let absolute = std::fs::canonicalize(path).map_err(|e| Error::io("opening", path, e))?;
    let url = format!("file://{}", absolute.display());
    let pool = BrowserPool::new(BrowserPoolConfig {
        min_idle: 0,
        max_size: 1,
        warm_up: 0,
        // A long page's full-page screenshot takes a renderer past the
        // default hard limit; the page is the caller's own report.
        memory: None,
        ..BrowserPoolConfig::default()
    })
    .await?;
    let outcome = visit(&pool, &url, screenshot).await;
    pool.close().await;
    outcome
}

async fn visit(pool: &BrowserPool, url: &str, screenshot: Option<&Path>) -> Result<PageCheck> {
    let lease = pool.acquire().await?;
    let page = lease.page();
    let cdp = |e: chromiumoxide::error::CdpError| Error::Task {
        what: format!("listening to {url}"),
        message: e.to_string(),
    };
    let mut requests = page
        .event_listener::<EventRequestWillBeSent>()
        .await
        .map_err(cdp)?;
    let mut console = page
        .event_listener::<EventConsoleApiCalled>()
        .await
        .map_err(cdp)?;
    let mut exceptions = page
        .event_listener::<EventExceptionThrown>()
        .await
        .map_err(cdp)?;
    let mut log = page
        .event_listener::<EventEntryAdded>()
        .await
        .map_err(cdp)?;
    lease.goto(url).await?;
    let count = |selector: &str| format!("document.querySelectorAll({selector:?}).length");
    let mut check = PageCheck {
        measurement_plots: lease
            .evaluate(&count("figure[data-kind=measurement] > svg"))
            .await?,
        threshold_plots: lease
            .evaluate(&count("figure[data-kind=threshold] > svg"))
            .await?,
        plots: lease.evaluate(&count("svg")).await?,
        resources: lease
            .evaluate("performance.getEntriesByType('resource').length")
            .await?,
        ..PageCheck::default()
    };
    if let Some(path) = screenshot {
        let png = page
            .screenshot(
                ScreenshotParams::builder()
                    .format(CaptureScreenshotFormat::Png)
                    .full_page(true)
                    .build(),
            )
            .await
            .map_err(|e| Error::Task {
                what: format!("a screenshot of {url}"),
                message: e.to_string(),
            })?;
        tidepool_pools::write_atomic(path, &png)?;
    }
    // Events the page sent are queued by now; a short grace collects any
    // still in flight without waiting on a stream that never ends.
    let grace = Duration::from_millis(200);
    while let Ok(Some(e)) = tokio::time::timeout(grace, requests.next()).await {
        if e.request.url != url {
            check.requests.push(e.request.url.clone());
        }
    }
    while let Ok(Some(e)) = tokio::time::timeout(grace, console.next()).await {
        if e.r#type == ConsoleApiCalledType::Error || e.r#type == ConsoleApiCalledType::Assert {
            check
                .console_errors
                .push(format!("console.{:?}: {:?}", e.r#type, e.args));
        }
    }
    while let Ok(Some(e)) = tokio::time::timeout(grace, exceptions.next()).await {
        check
            .console_errors
            .push(format!("uncaught: {}", e.exception_details.text));
    }
    while let Ok(Some(e)) = tokio::time::timeout(grace, log.next()).await {
        if format!("{:?}", e.entry.level).eq_ignore_ascii_case("error") {
            check
                .console_errors
                .push(format!("log: {} ({:?})", e.entry.text, e.entry.url));
        }
    }
    drop(lease);
    Ok(check)
}
