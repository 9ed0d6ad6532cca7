//! One round of measurement: the PSS (or its RSS bound) of each launched
//! browser's process tree, the V8 heaps of the pool's pages in each
//! connected one.

use std::collections::{HashMap, HashSet};

use chromiumoxide::cdp::browser_protocol::target::GetTargetsParams;
use chromiumoxide::cdp::js_protocol::runtime::{GetHeapUsageParams, GetIsolateIdParams};
use chromiumoxide::Browser;

use super::{Gauge, Members, Sample};
use crate::browser::chromium::connection::{own_contexts, OwnContexts};
use crate::memory::{tree_memory, tree_rss_bytes, MemoryPolicy};

impl Members {
    /// Measures every browser once: the PSS of a launched browser's process
    /// tree, the V8 heaps of the pool's pages in a connected one.
    ///
    /// Far below the limits, the PSS is not read: the tree's summed RSS,
    /// an upper bound of it read at a fraction of the cost, already says
    /// that every judgement comes out as the PSS would make it (under the
    /// soft limit less its hysteresis: no warning, a warning cleared, no
    /// eviction). An exact PSS is still read every `window` samples, so the
    /// reported figures stay fresh, and always under a pool budget, which
    /// adds the figures up. Returns one sample per browser measured.
    pub(crate) async fn measure(&self, policy: &MemoryPolicy, budget: bool) -> Vec<Sample> {
        let gauges: Vec<(u64, Gauge, bool)> = self
            .lock()
            .iter()
            .map(|(id, m)| {
                (
                    *id,
                    m.gauge.clone(),
                    budget || m.bounded + 1 >= policy.window,
                )
            })
            .collect();
        if gauges.is_empty() {
            return Vec::new();
        }
        let (local, remote): (Vec<_>, Vec<_>) = gauges
            .into_iter()
            .partition(|(_, g, _)| matches!(g, Gauge::Process(_)));
        let bound_below = policy
            .soft_limit_bytes
            .saturating_sub(policy.hysteresis_bytes);
        // Reading smaps_rollup costs milliseconds per process: off the runtime.
        let local = tokio::task::spawn_blocking(move || {
            local
                .into_iter()
                .filter_map(|(id, g, exact_due)| {
                    let pid = g.pid()?;
                    if !exact_due {
                        let rss = tree_rss_bytes(pid);
                        if rss > 0 && rss < bound_below {
                            return Some(Sample {
                                id,
                                bytes: rss,
                                exact: false,
                            });
                        }
                    }
                    Some(Sample {
                        id,
                        bytes: tree_memory(pid).total_bytes,
                        exact: true,
                    })
                })
                .collect::<Vec<_>>()
        });
        let interval = policy.sample_interval;
        let remote = futures::future::join_all(remote.into_iter().map(|(id, g, _)| async move {
            let Gauge::Remote { browser, contexts } = g else {
                return None;
            };
            // A browser too busy to answer within the interval skips a sample.
            let heap = tokio::time::timeout(interval, v8_heap(&browser, &contexts));
            Some(Sample {
                id,
                bytes: heap.await.ok()??,
                exact: true,
            })
        }));
        let (local, remote) = futures::join!(local, remote);
        let Ok(local) = local else {
            return Vec::new();
        };
        local
            .into_iter()
            .chain(remote.into_iter().flatten())
            .collect()
    }
}

/// The V8 heap in use by the pages of `contexts`, counted once per isolate
/// (pages of one site in one context can share a renderer, and with it a
/// heap). `None` when the browser does not answer.
async fn v8_heap(browser: &Browser, contexts: &OwnContexts) -> Option<u64> {
    let ours: Vec<_> = own_contexts(contexts).clone();
    if ours.is_empty() {
        return Some(0);
    }
    let targets = browser.execute(GetTargetsParams::default()).await.ok()?;
    let pages: HashSet<_> = targets
        .result
        .target_infos
        .into_iter()
        .filter(|t| t.r#type == "page")
        .filter(|t| {
            t.browser_context_id
                .as_ref()
                .is_some_and(|c| ours.contains(c))
        })
        .map(|t| t.target_id)
        .collect();
    let reads = browser
        .pages()
        .await
        .ok()?
        .into_iter()
        .filter(|p| pages.contains(p.target_id()))
        .map(|page| async move {
            let (isolate, heap) = futures::join!(
                page.execute(GetIsolateIdParams::default()),
                page.execute(GetHeapUsageParams::default())
            );
            Some((isolate.ok()?.result.id, heap.ok()?.result.used_size as u64))
        });
    let by_isolate: HashMap<String, u64> = futures::future::join_all(reads)
        .await
        .into_iter()
        .flatten()
        .collect();
    Some(by_isolate.values().sum())
}
