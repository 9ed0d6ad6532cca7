//! Screenshots and PDFs of a lease's page, each within a deadline of its
//! own: a capture of a large page can take longer than any CDP call the
//! pool bounds with `cdp_timeout`, and one that never ends must not hold
//! the lease forever.

use std::future::Future;
use std::time::Duration;

use chromiumoxide::cdp::browser_protocol::page::PrintToPdfParams;
use chromiumoxide::page::ScreenshotParams;

use super::lease::Lease;
use crate::error::{Error, Result};

impl Lease {
    /// A screenshot of the lease's first page as `params` asks (by default
    /// a PNG of the viewport), within `timeout`.
    ///
    /// On a pool with
    /// [`hidden_pages`](super::BrowserPoolConfig::hidden_pages) it fails at
    /// once with [`Error::Config`] naming that field: a hidden page paints
    /// nothing, and Chromium would never answer the capture.
    ///
    /// A `full_page` screenshot resizes the page's viewport to its content
    /// for the capture; the next lease does not see it under
    /// [`Isolation::Context`](super::Isolation::Context) (a new page) and
    /// may under weaker isolations.
    ///
    /// ```no_run
    /// # async fn demo(pool: tidepool_pools::browser::BrowserPool) -> tidepool_pools::Result<()> {
    /// use std::time::Duration;
    /// use tidepool_pools::chromiumoxide::page::ScreenshotParams;
    ///
    /// let lease = pool.acquire().await?;
    /// lease.goto("https://example.com/").await?;
    /// let png = lease
    ///     .screenshot(ScreenshotParams::builder().full_page(true).build(), Duration::from_secs(10))
    ///     .await?;
    /// assert!(png.starts_with(b"\x89PNG"));
    /// # Ok(())
    /// # }
    /// ```
    pub async fn screenshot(
        &self,
        params: impl Into<ScreenshotParams>,
        timeout: Duration,
    ) -> Result<Vec<u8>> {
        if self.hidden_pages() {
            return Err(Error::config(
                "browser.hidden_pages",
                "is on: a hidden page paints nothing, so Chromium never answers a screenshot \
                 of it; leave it off in a pool that takes screenshots (PDFs work either way)",
            ));
        }
        let params = params.into();
        self.capture("a screenshot", timeout, self.page().screenshot(params))
            .await
    }

    /// The lease's first page printed to PDF as `params` asks (by default
    /// Letter, portrait, backgrounds off), within `timeout`. Works on
    /// hidden pages too.
    ///
    /// ```no_run
    /// # async fn demo(pool: tidepool_pools::browser::BrowserPool) -> tidepool_pools::Result<()> {
    /// use std::time::Duration;
    /// use tidepool_pools::chromiumoxide::cdp::browser_protocol::page::PrintToPdfParams;
    ///
    /// let lease = pool.acquire().await?;
    /// lease.goto("https://example.com/").await?;
    /// let pdf = lease.pdf(PrintToPdfParams::default(), Duration::from_secs(30)).await?;
    /// assert!(pdf.starts_with(b"%PDF-"));
    /// # Ok(())
    /// # }
    /// ```
    pub async fn pdf(&self, params: PrintToPdfParams, timeout: Duration) -> Result<Vec<u8>> {
        self.capture("a PDF", timeout, self.page().pdf(params))
            .await
    }

    /// Runs the capture `what` on the lease's page, failing with
    /// [`Error::Timeout`] after `timeout` (and at once if the browser or
    /// the page dies).
    async fn capture(
        &self,
        what: &str,
        timeout: Duration,
        fut: impl Future<Output = std::result::Result<Vec<u8>, chromiumoxide::error::CdpError>>,
    ) -> Result<Vec<u8>> {
        let action = format!("taking {what} of browser {}'s page", self.browser_id());
        match tokio::time::timeout(timeout, self.call_on_page(&action, fut)).await {
            Ok(r) => r,
            Err(_) => Err(Error::Timeout {
                key: action,
                after: timeout,
            }),
        }
    }
}
