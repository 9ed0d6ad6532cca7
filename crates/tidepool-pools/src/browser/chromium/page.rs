//! What the pool does to every page it opens for a lease: where it opens
//! (in a minimized window when pages are hidden), and what is set up on it
//! before a lease uses it (its dialogs answered, its proxy's challenges).

use std::sync::Arc;

use chromiumoxide::auth::Credentials;
use chromiumoxide::cdp::browser_protocol::browser::BrowserContextId;
use chromiumoxide::cdp::browser_protocol::target::{CreateTargetParams, WindowState};
use chromiumoxide::error::CdpError;
use chromiumoxide::Page;

use super::dialogs::{answer_dialogs, DialogAnswerer};
use super::settings::RequestBlocker;
use crate::browser::isolation::ProxyCredentials;
use crate::recording::Counter;

/// How the pool sets up every page it opens for a slot's leases.
#[derive(Debug, Clone, Default)]
pub(crate) struct PageSetup {
    /// Pages are opened in minimized windows: see
    /// [`BrowserPoolConfig::hidden_pages`](crate::browser::BrowserPoolConfig::hidden_pages).
    pub(crate) hidden: bool,
    /// Counts the dialogs answered on the pages (the pool's stats).
    pub(crate) dialogs: Option<Arc<Counter>>,
}

/// What serves one of a lease's pages until the lease ends: its dialogs'
/// answerer, its requests' blocker. Each stops when dropped.
#[derive(Debug, Default)]
pub(crate) struct PageGuard {
    _dialogs: Option<DialogAnswerer>,
    _blocker: Option<RequestBlocker>,
}

impl PageGuard {
    pub(crate) fn new(dialogs: Option<DialogAnswerer>, blocker: Option<RequestBlocker>) -> Self {
        PageGuard {
            _dialogs: dialogs,
            _blocker: blocker,
        }
    }
}

/// Sets up `page` before a lease uses it: its dialogs answered (counted as
/// `setup` says), and its proxy's challenges if it has `credentials`.
pub(crate) async fn set_up(
    page: &Page,
    setup: &PageSetup,
    credentials: Option<&ProxyCredentials>,
) -> Result<DialogAnswerer, CdpError> {
    let answerer = answer_dialogs(page, setup.dialogs.clone()).await?;
    if let Some(c) = credentials {
        let credentials = Credentials {
            username: c.username.clone(),
            password: c.password().to_owned(),
        };
        page.authenticate(credentials).await?;
        // The client enables `Fetch` as it handles that message: a round
        // trip on the page's session after it puts the enabling on the wire
        // before anything the lease sends.
        page.evaluate("0").await?;
    }
    Ok(answerer)
}

/// `Target.createTarget` for a page in `context`: in a minimized window of
/// its own when `hidden`, where Chromium paints nothing.
pub(crate) fn page_params(
    url: &str,
    context: &BrowserContextId,
    hidden: bool,
) -> chromiumoxide::cdp::browser_protocol::target::CreateTargetParamsBuilder {
    let params = CreateTargetParams::builder()
        .url(url)
        .browser_context_id(context.clone());
    if hidden {
        params.new_window(true).window_state(WindowState::Minimized)
    } else {
        params
    }
}
