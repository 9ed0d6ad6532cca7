//! A task that serves one page or browser (answering its dialogs, failing
//! its blocked requests, closing its popups) for as long as its owner keeps
//! the handle: a page closed or a browser retired leaves no task behind.

use tokio::task::{AbortHandle, JoinHandle};

/// Stops its task when dropped.
#[derive(Debug)]
pub(crate) struct Listener(AbortHandle);

impl Listener {
    /// Takes charge of `task`.
    pub(crate) fn new(task: JoinHandle<()>) -> Listener {
        Listener(task.abort_handle())
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        self.0.abort();
    }
}
