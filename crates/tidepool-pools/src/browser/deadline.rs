//! Calls on a lease's page with a deadline of the caller's, for pages that
//! fight back with a script that never yields: at the deadline the page's
//! script is stopped (`Runtime.terminateExecution`, which V8 honours while
//! the script spins), so the page answers the lease's next call instead of
//! staying stuck until its lease ends.

use std::future::Future;
use std::time::Duration;

use chromiumoxide::cdp::js_protocol::runtime::TerminateExecutionParams;
use serde::de::DeserializeOwned;

use super::lease::Lease;
use crate::error::{Error, Result};

/// How long the page gets to confirm its script stopped; V8 stops a
/// spinning loop within milliseconds.
const STOP_GRACE: Duration = Duration::from_secs(2);

impl Lease {
    /// [`goto`](Self::goto) within `deadline`: past it, the page's script
    /// is stopped and the call fails with [`Error::Timeout`]; the page can
    /// be navigated again at once.
    ///
    /// ```no_run
    /// # async fn demo(lease: tidepool_pools::browser::Lease) -> tidepool_pools::Result<()> {
    /// use std::time::Duration;
    ///
    /// if lease.goto_within("https://example.com/", Duration::from_secs(15)).await.is_err() {
    ///     lease.goto("about:blank").await?;
    /// }
    /// # Ok(())
    /// # }
    /// ```
    pub async fn goto_within(&self, url: &str, deadline: Duration) -> Result<()> {
        self.stop_at(deadline, format!("navigating to {url}"), self.goto(url))
            .await
    }

    /// [`evaluate`](Self::evaluate) within `deadline`: past it, the
    /// script is stopped and the call fails with [`Error::Timeout`].
    ///
    /// ```no_run
    /// # async fn demo(lease: tidepool_pools::browser::Lease) -> tidepool_pools::Result<()> {
    /// use std::time::Duration;
    ///
    /// let links: Vec<String> = lease
    ///     .evaluate_within("[...document.links].map(a => a.href)", Duration::from_secs(2))
    ///     .await?;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn evaluate_within<T: DeserializeOwned>(
        &self,
        expression: &str,
        deadline: Duration,
    ) -> Result<T> {
        let action = format!("evaluating {expression:?}");
        self.stop_at(deadline, action, self.evaluate(expression))
            .await
    }

    async fn stop_at<T>(
        &self,
        deadline: Duration,
        action: String,
        call: impl Future<Output = Result<T>>,
    ) -> Result<T> {
        if let Ok(r) = tokio::time::timeout(deadline, call).await {
            return r;
        }
        let stop = self.call_on_page(
            "stopping the page's script",
            self.page().execute(TerminateExecutionParams::default()),
        );
        let stopped = matches!(tokio::time::timeout(STOP_GRACE, stop).await, Ok(Ok(_)));
        tracing::warn!(browser = self.browser_id(), %action, ?deadline, stopped, "a call on a page passed its deadline; its script was stopped");
        Err(Error::Timeout {
            key: format!(
                "{action} on browser {}'s page (its script stopped)",
                self.browser_id()
            ),
            after: deadline,
        })
    }
}
