//! Opening a slot: in a started browser with room for one, or in a browser
//! launched or connected to for it, with its first context readied and the
//! service's `after_launch` hook run.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::connection::{Connection, Liveness};
use super::page::PageSetup;
use super::popups::close_popups;
use super::sampler::Gauge;
use super::slot::Slot;
use crate::browser::alive::AliveToken;
use crate::browser::close::CLOSE_GRACE;
use crate::browser::config::{BrowserSource, Popups};
use crate::browser::fleet::{watch_endpoint, EndpointTicket};
use crate::browser::hooks::HookPoint;
use crate::browser::inner::PoolInner;
use crate::browser::placement;
use crate::browser::stats::RetireReason;
use crate::error::{Error, Result};
use crate::memory::tree_memory;

impl PoolInner {
    /// A new slot, prepared: in a started browser with room for it (see
    /// [`BrowserPoolConfig::leases_per_browser`](crate::browser::BrowserPoolConfig::leases_per_browser)), or in a new browser.
    pub(crate) async fn start_slot(self: &Arc<Self>) -> Result<Slot> {
        self.start_slot_if_room()
            .await?
            .ok_or_else(|| {
                Error::Timeout {
            key: "a free slot on a fleet endpoint (every endpoint up holds max_leases_per_endpoint)"
                .into(),
            after: Duration::ZERO,
        }
            })
    }

    /// [`start_slot`](Self::start_slot), or `None` when every fleet endpoint
    /// up holds its cap of slots: the caller then waits for one of them to
    /// come back idle, as it would at `max_size`.
    pub(crate) async fn start_slot_if_room(self: &Arc<Self>) -> Result<Option<Slot>> {
        if let Some(fleet) = &self.fleet {
            return self.start_on_endpoint(fleet).await;
        }
        let Some(mut slot) = self.open_room(None) else {
            return self.start_browser().await.map(Some);
        };
        match slot.prepare().await {
            Ok(()) => {
                tracing::debug!(
                    pool = self.id,
                    browser = slot.id,
                    slots = slot.slots(),
                    "slot opened"
                );
                Ok(Some(slot))
            }
            Err(e) => {
                self.retire(slot, RetireReason::Unhealthy);
                Err(e)
            }
        }
    }

    /// An unprepared slot in the first started browser with room for one
    /// (on fleet endpoint `on`, in connect mode).
    pub(crate) fn open_room(&self, on: Option<usize>) -> Option<Slot> {
        let mut rooms = self.rooms.lock().unwrap_or_else(|p| p.into_inner());
        placement::open_in_started(&mut rooms, on, self.config.slots_per_browser())
    }

    /// Lets later slots open in `slot`'s browser.
    fn add_room(&self, slot: &Slot) {
        self.rooms
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(slot.room());
    }

    /// Launches or connects one browser and prepares its first context.
    pub(crate) async fn start_browser(&self) -> Result<Slot> {
        self.start_browser_with(None, None).await
    }

    /// [`start_browser`](Self::start_browser); with `connected`, the
    /// browser takes other slots as soon as it is connected, and
    /// `connected` says so, so that the pool's warm-up prepares every slot
    /// at once instead of the first before the others (a context and page
    /// cost ~0.1 s each on two cores). In connect mode, `on` is the fleet
    /// endpoint chosen for it.
    pub(crate) async fn start_browser_with(
        &self,
        connected: Option<tokio::sync::oneshot::Sender<()>>,
        on: Option<EndpointTicket>,
    ) -> Result<Slot> {
        let started = Instant::now();
        let id = self.next_browser.fetch_add(1, Ordering::Relaxed);
        let c = &self.config;
        let mut slot = match (&c.source, &self.executable) {
            (BrowserSource::Launch { .. }, Some(exe)) => {
                let tag = format!("{}{}-{id}", super::leftovers::own_tag_prefix(), self.id);
                let launched = Connection::launch(
                    id,
                    exe,
                    &c.flags,
                    c.sandbox,
                    &tag,
                    c.launch_timeout,
                    c.cdp_timeout,
                )
                .await?;
                Slot::first_in(launched)
            }
            (BrowserSource::Connect { .. }, _) => {
                let Some(on) = on else {
                    return Err(Error::config(
                        "browser.source",
                        "connect mode without a fleet endpoint chosen",
                    ));
                };
                let endpoint = on.fleet().endpoint(on.index);
                // A remote browser answers in milliseconds or is down: the
                // CDP deadline, not the launch one, bounds the attempt.
                let timeout = c.cdp_timeout.min(c.launch_timeout);
                let url = super::endpoint::resolve(&endpoint, timeout).await?;
                let liveness = Liveness {
                    heartbeat: c.fleet.heartbeat,
                };
                let connected =
                    Connection::connect(id, &url, timeout, c.cdp_timeout, liveness).await?;
                let mut slot = Slot::first_in(connected);
                watch_endpoint(&slot, on.fleet().clone(), on.index);
                slot.on_endpoint = Some(on);
                slot
            }
            (BrowserSource::Launch { .. }, None) => {
                return Err(Error::config(
                    "browser.source",
                    "launch mode without an executable",
                ))
            }
        };
        slot.pages = PageSetup {
            hidden: c.hidden_pages,
            dialogs: Some(self.recorder.dialogs_answered.clone()),
        };
        if c.popups == Popups::Close {
            let closer = close_popups(
                slot.browser(),
                slot.core.contexts.clone(),
                self.recorder.popups_closed.clone(),
            );
            match slot.cdp("listening for popups", closer).await {
                Ok(closer) => {
                    let _ = slot.core.popups.set(closer);
                }
                Err(e) => {
                    slot.shut_down(CLOSE_GRACE).await;
                    return Err(e);
                }
            }
        }
        let early_room = connected.is_some();
        if let Some(connected) = connected {
            self.add_room(&slot);
            let _ = connected.send(());
        }
        if let Err(e) = slot.prepare().await {
            slot.shut_down(CLOSE_GRACE).await;
            return Err(e);
        }
        let after_launch = self.hooks.run(HookPoint::AfterLaunch, c.cdp_timeout, || {
            slot.hook_context()
        });
        if let Err(e) = after_launch.await {
            self.recorder.retired(RetireReason::Hook);
            slot.shut_down(CLOSE_GRACE).await;
            return Err(e);
        }
        let _ = slot.core.alive.set(AliveToken::new(&self.alive));
        let gauge = match slot.pid() {
            Some(pid) => Gauge::Process(pid),
            None => Gauge::Remote {
                browser: slot.browser().clone(),
                contexts: slot.core.contexts.clone(),
            },
        };
        // Under a budget a new browser counts from its start, not from the
        // next sample, or a burst of acquires could all launch past it.
        let first = match (&gauge, self.budget()) {
            (Gauge::Process(pid), Some(_)) => {
                let pid = *pid;
                tokio::task::spawn_blocking(move || tree_memory(pid).total_bytes)
                    .await
                    .unwrap_or(0)
            }
            _ => 0,
        };
        let memory = self.browser_memory.as_ref();
        self.members
            .add(id, gauge, slot.gone_sender(), memory, first);
        self.recorder.launched.incr();
        self.recorder.record_launch(started.elapsed());
        if !early_room {
            self.add_room(&slot);
        }
        tracing::debug!(pool = self.id, browser = id, pid = ?slot.pid(), "browser started");
        Ok(slot)
    }
}
