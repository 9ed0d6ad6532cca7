//! The crawls: pooled with a lease per page, pooled with a lease per
//! worker (reported), and naive with a browser per page, all driven by one
//! work queue.

use super::*;
use tidepool_pools::Error as PoolError;

/// The pooled crawl of `urls` with `concurrency` workers, each page in a
/// lease of its own (a fresh incognito context): isolated from every other
/// page as the naive side's browser per page is. The wall clock includes the
/// pools' warm-up.
pub async fn crawl_pooled(urls: &[String], concurrency: usize) -> Result<CrawlOutcome> {
    crawl_pooled_variant(urls, concurrency, Variant::Honest).await
}

pub(super) async fn crawl_pooled_variant(
    urls: &[String],
    concurrency: usize,
    variant: Variant,
) -> Result<CrawlOutcome> {
    let Warm {
        wasm,
        browsers,
        timeouts,
        setup,
    } = Warm::start(concurrency, variant).await?;
    let shared = match variant {
        Variant::SharedPage => Some(Arc::new(browsers.acquire().await?)),
        _ => None,
    };
    let outcome = crawl("pooled", urls, concurrency, |work| {
        let (browsers, wasm_pool, timeouts, shared) = (
            browsers.clone(),
            wasm.pool.clone(),
            timeouts.clone(),
            shared.clone(),
        );
        async move {
            while let Some(url) = work.claim() {
                let t0 = Instant::now();
                // The wait for a lease is the pool's, not the host's: the
                // learned per-host timeout covers the page's own work only.
                let result = async {
                    let own = match &shared {
                        Some(_) => None,
                        None => Some(browsers.acquire().await?),
                    };
                    let lease = own
                        .as_ref()
                        .or(shared.as_deref())
                        .ok_or(PoolError::PoolClosed { what: "browser" })?;
                    // The shared page's crawler reads whatever the page
                    // shows when its navigation was cut off by another's.
                    let must_load = shared.is_none();
                    timeouts
                        .run(&host_of(url), leased_step(lease, url, must_load))
                        .await
                        .map_err(Error::from)
                        .and_then(|r| r)
                }
                .await
                .and_then(|values| Extracted::from_step(values, |html| extract(&wasm_pool, html)));
                work.record("pooled", url, t0.elapsed(), result);
            }
        }
    })
    .await;
    drop(shared);
    browsers.close().await;
    let mut outcome = outcome?;
    outcome.wall += setup;
    Ok(outcome)
}

/// One page on a lease's page: navigate, then [`STEP`] pipelined (every
/// command sent before any reply is awaited). A failed navigation fails the
/// page unless `must_load` is off (the shared-page control's sloppy crawler).
pub(super) async fn leased_step(lease: &Lease, url: &str, must_load: bool) -> Result<Vec<String>> {
    match lease.goto(url).await {
        Err(e) if must_load => return Err(e.into()),
        _ => {}
    }
    let replies = futures::future::join_all(STEP.iter().map(|expression| async move {
        lease
            .call(
                &format!("evaluating {expression}"),
                lease.page().execute(EvaluateParams::new(*expression)),
            )
            .await
    }))
    .await;
    replies
        .into_iter()
        .zip(STEP)
        .map(|(reply, expression)| string_value(reply?.result, expression, url))
        .collect()
}

/// An evaluation's string value, or an error naming the expression and page.
pub(crate) fn string_value(result: EvaluateReturns, expression: &str, url: &str) -> Result<String> {
    match result.result.value {
        Some(serde_json::Value::String(s)) => Ok(s),
        other => Err(PoolError::Task {
            what: format!("evaluating {expression} on {url}"),
            message: format!("expected a string, got {other:?}"),
        }
        .into()),
    }
}

/// The shared-lease crawl: each worker keeps one lease for the whole crawl
/// and reuses its page sessions, reset between pages. Faster, and it isolates
/// nothing between a worker's pages (its context's storage, HTTP cache and
/// service workers carry over): a second figure, never the headline.
pub async fn crawl_pooled_shared(urls: &[String], concurrency: usize) -> Result<CrawlOutcome> {
    let Warm {
        wasm,
        browsers,
        timeouts,
        setup,
    } = Warm::start(concurrency, Variant::Honest).await?;
    let outcome = crawl("pooled shared", urls, concurrency, |work| {
        let (browsers, wasm_pool, timeouts) =
            (browsers.clone(), wasm.pool.clone(), timeouts.clone());
        async move {
            let mut worker: Option<(Lease, SessionPool)> = None;
            while let Some(url) = work.claim() {
                let t0 = Instant::now();
                if worker.is_none() {
                    worker = match browsers.acquire().await {
                        Ok(lease) => match SessionPool::new(&lease, SessionPoolConfig::default()) {
                            Ok(sessions) => Some((lease, sessions)),
                            Err(e) => {
                                tracing::warn!(error = %e, "no session pool for a crawl worker");
                                None
                            }
                        },
                        Err(e) => {
                            tracing::warn!(error = %e, "no lease for a crawl worker");
                            None
                        }
                    };
                }
                let result = match &worker {
                    Some((_, sessions)) => timeouts
                        .run(&host_of(url), pooled_step(sessions, url))
                        .await
                        .map_err(Error::from)
                        .and_then(|r| r)
                        .and_then(|values| {
                            Extracted::from_step(values, |html| extract(&wasm_pool, html))
                        }),
                    None => Err(PoolError::PoolClosed { what: "browser" }.into()),
                };
                // A lease whose browser crashed or was evicted is given back for a new one.
                let lost = matches!(
                    result,
                    Err(Error::Pool(
                        PoolError::BrowserCrashed { .. } | PoolError::BrowserEvicted { .. }
                    ))
                );
                work.record("pooled shared", url, t0.elapsed(), result);
                if lost {
                    worker = None;
                }
            }
        }
    })
    .await;
    browsers.close().await;
    let mut outcome = outcome?;
    outcome.wall += setup;
    Ok(outcome)
}

/// One page on a reused session: navigate, then [`STEP`] in one pipelined
/// batch; every command's own error is kept.
pub(super) async fn pooled_step(sessions: &SessionPool, url: &str) -> Result<Vec<String>> {
    let session = sessions.acquire().await?;
    session.goto(url).await?;
    let mut batch = session.batch();
    for expression in STEP {
        batch.push(EvaluateParams::new(expression));
    }
    let results = batch.send().await;
    session.release().await;
    results
        .into_iter()
        .zip(STEP)
        .map(|(result, expression)| {
            string_value(typed::<EvaluateReturns>(result)?, expression, url)
        })
        .collect()
}

/// The naive crawl: a browser launched and the extractor compiled per page,
/// under a fixed 30 s timeout.
pub async fn crawl_naive(urls: &[String], concurrency: usize) -> Result<CrawlOutcome> {
    let executable = Arc::new(locate_chromium(None)?);
    let flags: Arc<Vec<String>> = Arc::new(DEFAULT_FLAGS.iter().map(|f| f.to_string()).collect());
    let engine = WasmEngine::new(WasmEngineConfig::default())?;
    let wasm = Arc::new(fixtures::extractor()?);
    crawl("naive", urls, concurrency, |work| {
        let (executable, flags, engine, wasm) = (
            executable.clone(),
            flags.clone(),
            engine.clone(),
            wasm.clone(),
        );
        async move {
            while let Some(url) = work.claim() {
                // Per-page latency as on the pooled side: from starting to get
                // a page to the result in hand. The browser's shutdown comes
                // after (it is in the wall clock, not in the page's latency).
                let (took, result) = match tokio::time::timeout(
                    FIXED_TIMEOUT,
                    naive::load_page(&executable, &flags, url, &STEP),
                )
                .await
                {
                    Ok(Ok(load)) => {
                        let t = Instant::now();
                        let page = Extracted::from_step(load.values, |html| {
                            extract_naive(&engine, &wasm, html)
                        });
                        (load.total + t.elapsed(), page)
                    }
                    Ok(Err(e)) => (FIXED_TIMEOUT, Err(e)),
                    Err(_) => (
                        FIXED_TIMEOUT,
                        Err(PoolError::Timeout {
                            key: host_of(url),
                            after: FIXED_TIMEOUT,
                        }
                        .into()),
                    ),
                };
                work.record("naive", url, took, result);
            }
        }
    })
    .await
}

/// The URLs of one crawl, handed out one at a time, and what came of them.
pub(super) struct Crawl {
    urls: Vec<String>,
    next: AtomicUsize,
    outcome: Mutex<CrawlOutcome>,
}

impl Crawl {
    /// The next URL no worker has taken yet.
    pub(super) fn claim(&self) -> Option<&str> {
        self.urls
            .get(self.next.fetch_add(1, Ordering::SeqCst))
            .map(String::as_str)
    }

    pub(super) fn record(&self, side: &str, url: &str, took: Duration, result: Result<Extracted>) {
        self.outcome
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .record(side, url, took, result);
    }
}

/// Runs `concurrency` workers made by `worker` over one shared crawl of
/// `urls`, and returns the outcome with the wall time of the whole crawl.
pub(super) async fn crawl<W, F>(
    side: &str,
    urls: &[String],
    concurrency: usize,
    worker: W,
) -> Result<CrawlOutcome>
where
    W: Fn(Arc<Crawl>) -> F,
    F: std::future::Future<Output = ()> + Send + 'static,
{
    let work = Arc::new(Crawl {
        urls: urls.to_vec(),
        next: AtomicUsize::new(0),
        outcome: Mutex::new(CrawlOutcome::default()),
    });
    let t = Instant::now();
    let workers: Vec<_> = (0..concurrency)
        .map(|_| tokio::spawn(worker(work.clone())))
        .collect();
    for w in workers {
        w.await
            .map_err(|e| Error::task(format!("{side} crawl worker"), e))?;
    }
    let mut outcome = std::mem::take(&mut *work.outcome.lock().unwrap_or_else(|p| p.into_inner()));
    outcome.wall = t.elapsed();
    Ok(outcome)
}
