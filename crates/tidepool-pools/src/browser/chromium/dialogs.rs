//! JavaScript dialogs answered the moment they open. Headless Chromium has
//! no one to click a page's `alert()`, `confirm()` or `prompt()`: while the
//! Page domain is on (the CDP client turns it on for every page), the dialog
//! stalls the page's script, its load and every later evaluation until a
//! `Page.handleJavaScriptDialog` answers it. A crawler's lease would hang on
//! the first page that greets its visitors. Every page the pool opens gets
//! an answerer: dialogs are dismissed (`confirm()` is false, `prompt()` is
//! null), except `beforeunload`, which is accepted so the page can be left.

use std::sync::Arc;

use chromiumoxide::cdp::browser_protocol::page::{
    DialogType, EventJavascriptDialogOpening, HandleJavaScriptDialogParams,
};
use chromiumoxide::Page;
use futures::StreamExt;

use super::listener::Listener;
use crate::recording::Counter;

/// Answers the dialogs of one page until dropped.
pub(crate) type DialogAnswerer = Listener;

/// Starts answering the dialogs of `page`, counting each in `answered`.
pub(crate) async fn answer_dialogs(
    page: &Page,
    answered: Option<Arc<Counter>>,
) -> Result<DialogAnswerer, chromiumoxide::error::CdpError> {
    let mut dialogs = page
        .event_listener::<EventJavascriptDialogOpening>()
        .await?;
    let page = page.clone();
    let task = tokio::spawn(async move {
        while let Some(dialog) = dialogs.next().await {
            let accept = dialog.r#type == DialogType::Beforeunload;
            tracing::debug!(kind = ?dialog.r#type, accept, "answering a page's dialog");
            // A page that closed meanwhile needs no answer.
            if page
                .execute(HandleJavaScriptDialogParams::new(accept))
                .await
                .is_ok()
            {
                if let Some(answered) = &answered {
                    answered.incr();
                }
            }
        }
    });
    Ok(Listener::new(task))
}
