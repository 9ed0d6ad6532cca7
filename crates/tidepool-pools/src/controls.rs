//! Seams for tidepool's performance suite (feature `controls`): the
//! deliberately broken variants of the library's own code paths that the
//! suite's negative controls run to show its contract rejects them, the
//! unpooled browser its naive baseline and floor launch the way the pool
//! does, and the diagnostics its checks read (a pool's pids, a wait for its
//! background work). Never on by default, hidden from the docs, and no part of the API a
//! service uses: every item here breaks a promise of the library on purpose.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use crate::browser::{BrowserPool, Lease, Sandbox};
use crate::browser::{LocalProcess, Slot};
use crate::cdp::Batch;
use crate::error::Result;

/// A browser launched and connected outside any pool, through the pool's
/// own launch path (flags, sandbox choice, tag, profile directory).
#[derive(Debug)]
pub struct UnpooledBrowser(Slot);

impl UnpooledBrowser {
    /// Launches it; `tag` marks its processes as this process's.
    pub async fn launch(
        id: u64,
        executable: &Path,
        flags: &[String],
        sandbox: Sandbox,
        tag: &str,
        launch_timeout: Duration,
        cdp_timeout: Duration,
    ) -> Result<UnpooledBrowser> {
        crate::browser::Connection::launch(
            id,
            executable,
            flags,
            sandbox,
            tag,
            launch_timeout,
            cdp_timeout,
        )
        .await
        .map(|launched| UnpooledBrowser(Slot::first_in(launched)))
    }

    /// The id it was launched with.
    pub fn id(&self) -> u64 {
        self.0.id
    }

    /// Its CDP endpoint (`ws://...`).
    pub fn endpoint(&self) -> &str {
        self.0.endpoint()
    }

    /// The chromiumoxide browser.
    pub fn browser(&self) -> &Arc<chromiumoxide::Browser> {
        self.0.browser()
    }

    /// Runs one CDP call under the pool's deadline and crash detection.
    pub async fn cdp<T>(
        &self,
        action: &str,
        fut: impl Future<Output = std::result::Result<T, chromiumoxide::error::CdpError>>,
    ) -> Result<T> {
        self.0.cdp(action, fut).await
    }

    /// Closes it as the pool does: `Browser.close`, a kill after `grace`,
    /// the reap, the profile removed.
    pub async fn shut_down(self, grace: Duration) -> bool {
        self.0.shut_down(grace).await
    }

    /// The broken shutdown of the leftover check's control: the handle is
    /// dropped without `Browser.close`, a kill or a reap, so the browser
    /// lives on. `None` for a browser that cannot be abandoned.
    pub fn abandon(self) -> Option<Abandoned> {
        self.0
            .abandon_for_control()
            .map(|(tag, dir)| Abandoned { tag, dir })
    }
}

/// What [`UnpooledBrowser::abandon`] or a broken shutdown left running.
#[derive(Debug)]
pub struct Abandoned {
    tag: String,
    dir: PathBuf,
}

impl Abandoned {
    /// Kills what was left and removes its profile.
    pub async fn clean_up(self) {
        crate::browser::clean_up_after_control(self.tag, self.dir).await;
    }
}

/// A Chromium process launched with the pool's flags and sandbox choice,
/// with no CDP client: what the suite's floor connects its raw client to.
#[derive(Debug)]
pub struct RawProcess(LocalProcess);

impl RawProcess {
    /// Launches it; returns it with its CDP endpoint (`ws://...`).
    pub async fn launch(
        executable: &Path,
        flags: &[String],
        sandbox: Sandbox,
        tag: &str,
        timeout: Duration,
    ) -> Result<(RawProcess, String)> {
        LocalProcess::launch(executable, flags, sandbox, tag, timeout)
            .await
            .map(|(p, endpoint)| (RawProcess(p), endpoint))
    }

    /// Its pid.
    pub fn pid(&self) -> u32 {
        self.0.pid
    }

    /// Ends it: SIGTERM, SIGKILL after `grace`, the reap, the profile removed.
    pub async fn terminate(&mut self, grace: Duration) {
        self.0.terminate(grace).await
    }
}

/// Broken ways to send a [`Batch`].
pub trait BrokenBatch {
    /// Sends every command together but returns at the first error, dropping
    /// the replies still due, as `try_join_all` would.
    fn send_stopping_at_first_error(self) -> impl Future<Output = Vec<Result<Value>>> + Send;
    /// Sends the first command of each method and hands its reply to every
    /// command of the same method, as a cache keyed by method name would.
    fn send_coalescing_by_method(self) -> impl Future<Output = Vec<Result<Value>>> + Send;
}

impl BrokenBatch for Batch<'_> {
    fn send_stopping_at_first_error(self) -> impl Future<Output = Vec<Result<Value>>> + Send {
        self.send_stopping_at_first_error_for_control()
    }

    fn send_coalescing_by_method(self) -> impl Future<Output = Vec<Result<Value>>> + Send {
        self.send_coalescing_by_method_for_control()
    }
}

/// The pids of the browsers `pool` launched that are alive now: idle,
/// leased or recycling.
pub fn pids(pool: &BrowserPool) -> Vec<u32> {
    pool.pids()
}

/// Waits until no returned lease of `pool` is still being recycled or
/// retired, and no browser is starting, or `timeout` passes; whether it
/// settled. A check reads the pool's stats after it when a count must
/// include every lease already dropped.
pub async fn settle(pool: &BrowserPool, timeout: Duration) -> bool {
    pool.settle(timeout).await
}

/// Browsers launched from now on in this process get no parent-death
/// signal: they outlive a service killed by SIGKILL (the control of the
/// kill -9 check).
pub fn launch_without_parent_death_signal() {
    crate::browser::launch_without_parent_death_signal();
}

/// Pools started from now on in this process do not sweep what dead
/// services left (the control of the kill -9 check).
pub fn skip_orphan_sweep() {
    crate::browser::skip_sweep();
}

/// `pool`'s soft-limit trackers lose their latch and warn on every sample
/// over the limit (`one_warning_per_crossing`'s control).
pub fn unlatch_soft_limit(pool: &BrowserPool) {
    pool.unlatch_soft_limit_for_control();
}

/// The lease's browser endpoint, for a second connection that leaks pages.
pub fn websocket_url(lease: &Lease) -> &str {
    lease.websocket_url()
}

/// Contexts made from now on in this process outlive their connection
/// (the control of the check that a killed client leaves none behind).
pub fn keep_contexts_after_disconnect() {
    crate::browser::keep_contexts_after_disconnect();
}

#[cfg(feature = "wasm")]
pub use wasm::*;

#[cfg(feature = "wasm")]
mod wasm {
    use crate::wasm::AotCache;

    /// Bytes before an AOT cache entry's payload: its magic and its MAC.
    pub const ENTRY_HEADER: usize = crate::wasm::ENTRY_HEADER;

    /// An entry of the layout before MACs, a plain SHA-256 of its payload:
    /// what anyone who can write to the cache directory could plant.
    pub fn plain_hash_entry(payload: &[u8]) -> Vec<u8> {
        crate::wasm::plain_hash_entry(payload)
    }

    /// A well-formed entry of `cache` holding `payload` (its magic, its MAC
    /// under the cache's key): an artifact planted by someone with the key.
    pub fn encode_entry(cache: &AotCache, payload: &[u8]) -> Vec<u8> {
        cache.encode_entry(payload)
    }

    /// The cache without its own checksum, trusting wasmtime's header
    /// check (the `aot_cache` control).
    pub fn skip_checksum(cache: AotCache) -> AotCache {
        cache.skipping_checksum_for_control()
    }
}
