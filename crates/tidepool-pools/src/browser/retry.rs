//! Work retried in a new lease while it fails in a way a new lease may fix
//! ([`Error::is_retryable`]): a lost browser or endpoint, a crashed page, a
//! missed deadline. The pacing between attempts is the fleet's too.

use std::future::Future;
use std::time::Duration;

use super::backoff::jittered;
use super::{BrowserPool, Lease};
use crate::error::{Error, Result};

/// How [`BrowserPool::run_with_retries`] retries work.
///
/// # Example
///
/// ```
/// use std::time::Duration;
/// use tidepool_pools::browser::RetryPolicy;
///
/// let policy = RetryPolicy { attempts: 5, ..RetryPolicy::default() };
/// policy.validate()?;
/// assert_eq!(policy.backoff, Duration::from_millis(100));
/// # Ok::<(), tidepool_pools::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included (default 3), each in a lease of
    /// its own.
    pub attempts: u32,
    /// The wait before the second attempt (default 100 ms). Each later
    /// wait doubles, up to `max_backoff`; each is jittered by ±25 % so that
    /// many workers that failed together do not retry in step.
    pub backoff: Duration,
    /// The longest wait between two attempts (default 2 s).
    pub max_backoff: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            attempts: 3,
            backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(2),
        }
    }
}

impl RetryPolicy {
    /// Checks the fields; the error names the one at fault.
    pub fn validate(&self) -> Result<()> {
        if self.attempts == 0 {
            return Err(Error::config("retry.attempts", "must be at least 1"));
        }
        if self.max_backoff < self.backoff {
            return Err(Error::config(
                "retry.max_backoff",
                format!(
                    "is {:?}, shorter than backoff ({:?})",
                    self.max_backoff, self.backoff
                ),
            ));
        }
        Ok(())
    }
}

impl BrowserPool {
    /// Runs `work` in a lease of its own, and again in a new lease after a
    /// backoff while it fails with a [retryable](Error::is_retryable) error,
    /// up to `policy.attempts` attempts in all. A failure to acquire counts
    /// as an attempt. Returns the first success, the first error that is
    /// not retryable, or the last error once the attempts are spent.
    ///
    /// The lease is `work`'s to drop: it goes back to the pool when the
    /// attempt's future ends.
    ///
    /// ```no_run
    /// # async fn f(pool: &tidepool_pools::browser::BrowserPool) -> tidepool_pools::Result<()> {
    /// use tidepool_pools::browser::RetryPolicy;
    ///
    /// let title: String = pool
    ///     .run_with_retries(&RetryPolicy::default(), |lease| async move {
    ///         lease.goto("https://example.com/").await?;
    ///         lease.evaluate("document.title").await
    ///     })
    ///     .await?;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn run_with_retries<T, F, Fut>(&self, policy: &RetryPolicy, mut work: F) -> Result<T>
    where
        F: FnMut(Lease) -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        policy.validate()?;
        let mut backoff = policy.backoff;
        let mut attempt = 1;
        loop {
            let result = match self.acquire().await {
                Ok(lease) => work(lease).await,
                Err(e) => Err(e),
            };
            match result {
                Ok(value) => return Ok(value),
                Err(e) if e.is_retryable() && attempt < policy.attempts => {
                    let wait = jittered(backoff);
                    tracing::debug!(attempt, error = %e, ?wait, "retrying in a new lease");
                    tokio::time::sleep(wait).await;
                    backoff = (backoff * 2).min(policy.max_backoff);
                    attempt += 1;
                }
                Err(e) => return Err(e),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_policy_names_the_field_at_fault() {
        assert!(RetryPolicy::default().validate().is_ok());
        let zero = RetryPolicy {
            attempts: 0,
            ..RetryPolicy::default()
        };
        assert!(zero
            .validate()
            .unwrap_err()
            .to_string()
            .contains("retry.attempts"));
        let short = RetryPolicy {
            max_backoff: Duration::from_millis(1),
            ..RetryPolicy::default()
        };
        assert!(short
            .validate()
            .unwrap_err()
            .to_string()
            .contains("retry.max_backoff"));
    }
}
