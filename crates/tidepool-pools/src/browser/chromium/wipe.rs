//! Making a used context and page fit for the next lease: the wipe of
//! [`Isolation::Wipe`], and the closing of the pages
//! a lease opened.

use std::collections::BTreeSet;

use chromiumoxide::cdp::browser_protocol::browser::ResetPermissionsParams;
use chromiumoxide::cdp::browser_protocol::dom;
use chromiumoxide::cdp::browser_protocol::dom_storage::{self, StorageId};
use chromiumoxide::cdp::browser_protocol::emulation::{
    ClearDeviceMetricsOverrideParams, ClearGeolocationOverrideParams, MediaFeature,
    SetEmulatedMediaParams, SetLocaleOverrideParams, SetScriptExecutionDisabledParams,
    SetTimezoneOverrideParams, SetUserAgentOverrideParams,
};
use chromiumoxide::cdp::browser_protocol::fetch;
use chromiumoxide::cdp::browser_protocol::network::{
    ClearBrowserCacheParams, Headers, SetExtraHttpHeadersParams,
};
use chromiumoxide::cdp::browser_protocol::page::{
    AddScriptToEvaluateOnNewDocumentParams, FrameTree, GetFrameTreeParams,
    GetNavigationHistoryParams, NavigateParams, RemoveScriptToEvaluateOnNewDocumentParams,
    ResetNavigationHistoryParams,
};
use chromiumoxide::cdp::browser_protocol::storage::{ClearCookiesParams, ClearDataForOriginParams};
use chromiumoxide::cdp::browser_protocol::target::{CloseTargetParams, GetTargetsParams, TargetId};
use futures::future::try_join_all;

use super::slot::Slot;
use crate::browser::isolation::{ContextProxy, Isolation};
use crate::error::{Error, Result};

impl Slot {
    /// Brings the idle browser's context up to `wanted` before a lease gets
    /// it: nothing when it is clean enough, a wipe, or a fresh context.
    pub(crate) async fn ready(
        &mut self,
        wanted: Isolation,
        proxy: Option<ContextProxy>,
    ) -> Result<()> {
        let Some(p) = self.prepared.as_ref() else {
            return self.prepare_with(proxy).await;
        };
        if p.proxy != proxy {
            // A context's proxy is fixed at its creation: one made for this
            // lease replaces the prepared one.
            if let Some(p) = self.prepared.take() {
                self.dispose_context(p.context).await?;
            }
            return self.prepare_with(proxy).await;
        }
        if p.clean.covers(wanted) {
            Ok(())
        } else {
            self.recycle(wanted, Vec::new()).await
        }
    }

    /// Readies a browser whose lease ended for the next one, to `isolation`:
    /// a fresh context, a wiped one, or the same one minus the pages
    /// `opened` through the lease.
    pub(crate) async fn recycle(
        &mut self,
        isolation: Isolation,
        opened: Vec<TargetId>,
    ) -> Result<()> {
        // A page whose renderer crashed serves no next lease, whatever the
        // isolation: it goes with its context, and both are made afresh.
        let crashed = self
            .prepared
            .as_ref()
            .is_some_and(|p| self.has_crashed(p.page.target_id()));
        let isolation = if crashed {
            Isolation::Context
        } else {
            isolation
        };
        match isolation {
            Isolation::Context => {
                if let Some(p) = self.prepared.take() {
                    self.dispose_context(p.context).await?;
                }
                self.prepare().await
            }
            Isolation::Wipe => self.wipe().await,
            Isolation::None => {
                let closes = opened.into_iter().map(|id| self.close_target(id));
                try_join_all(closes).await?;
                if let Some(p) = self.prepared.as_mut() {
                    p.clean = Isolation::None;
                }
                Ok(())
            }
        }
    }

    /// Turns off the `Fetch` interception a lease's blocking left on the
    /// page it keeps for the next lease, which would otherwise hold every
    /// request the lease blocked, with no one left to fail it.
    pub(crate) async fn stop_blocking(&self) -> Result<()> {
        let Some(p) = self.prepared.as_ref() else {
            return Ok(());
        };
        let page = p.page.clone();
        tolerate(
            self.cdp(
                "turning request blocking off",
                page.execute(fetch::DisableParams::default()),
            )
            .await,
        )
    }

    async fn close_target(&self, id: TargetId) -> Result<()> {
        let browser = self.browser().clone();
        match self
            .cdp(
                "closing a page",
                browser.execute(CloseTargetParams::new(id)),
            )
            .await
        {
            // Already gone (the page closed itself): the wanted state.
            Ok(_) | Err(Error::Cdp { .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Clears every kind of state the lease could leave in its context and
    /// page (the list is on [`Isolation`]), keeping both.
    async fn wipe(&mut self) -> Result<()> {
        let Some(p) = self.prepared.as_ref() else {
            return self.prepare().await;
        };
        let this: &Slot = self;
        let (browser, page, context) = (this.browser().clone(), p.page.clone(), p.context.clone());
        let own = p.page.target_id().clone();

        // 1. What the lease visited and opened, and the number of its last
        //    init script, in one round trip. Script ids count up per CDP
        //    session ("1", "2", ...): adding one tells how far they got.
        let (targets, history, tree, marker) = futures::join!(
            this.cdp(
                "listing targets",
                browser.execute(GetTargetsParams::default())
            ),
            this.cdp(
                "reading the navigation history",
                page.execute(GetNavigationHistoryParams::default())
            ),
            this.cdp(
                "reading the frame tree",
                page.execute(GetFrameTreeParams::default())
            ),
            this.cdp(
                "numbering init scripts",
                page.execute(AddScriptToEvaluateOnNewDocumentParams::new("")),
            ),
        );
        let others: Vec<TargetId> = targets?
            .result
            .target_infos
            .into_iter()
            .filter(|t| t.browser_context_id.as_ref() == Some(&context) && t.target_id != own)
            .filter(|t| t.r#type == "page")
            .map(|t| t.target_id)
            .collect();
        let mut origins = BTreeSet::new();
        for entry in history?.result.entries {
            origins.extend(origin_of(&entry.url));
        }
        collect_frame_origins(&tree?.result.frame_tree, &mut origins);
        let last_script: u64 = marker?.result.identifier.inner().parse().unwrap_or(0);
        let first_script = p.scripts_cleared + 1;

        // 2. Nothing may write state while it is cleared: other pages close,
        //    this one unloads.
        try_join_all(others.into_iter().map(|id| this.close_target(id))).await?;
        this.cdp(
            "navigating to about:blank",
            page.execute(NavigateParams::new("about:blank")),
        )
        .await?;

        // 3. Everything else at once; each clear is independent.
        let per_origin = origins.iter().map(|origin| {
            let (page, origin) = (page.clone(), origin.clone());
            async move {
                this.cdp(
                    "clearing an origin's storage",
                    page.execute(ClearDataForOriginParams::new(origin.clone(), "all")),
                )
                .await?;
                let mut session = StorageId::new(false);
                session.security_origin = Some(origin);
                // An origin with no session storage in this tab answers an
                // error: there is nothing to clear.
                tolerate(
                    this.cdp(
                        "clearing session storage",
                        page.execute(dom_storage::ClearParams::new(session)),
                    )
                    .await,
                )
            }
        });
        let scripts = (first_script..=last_script).map(|id| {
            let page = page.clone();
            async move {
                tolerate(
                    this.cdp(
                        "removing an init script",
                        page.execute(RemoveScriptToEvaluateOnNewDocumentParams::new(
                            id.to_string(),
                        )),
                    )
                    .await,
                )
            }
        });
        let cookies = ClearCookiesParams::builder()
            .browser_context_id(context.clone())
            .build();
        let permissions = ResetPermissionsParams::builder()
            .browser_context_id(context.clone())
            .build();
        let context_wide = async {
            futures::try_join!(
                this.cdp("clearing cookies", browser.execute(cookies)),
                this.cdp("resetting permissions", browser.execute(permissions)),
                this.cdp(
                    "clearing the HTTP cache",
                    page.execute(ClearBrowserCacheParams::default())
                ),
            )
            .map(drop)
        };
        let media = SetEmulatedMediaParams::builder()
            .media("")
            .features(Vec::<MediaFeature>::new())
            .build();
        // A timezone or locale override that was never set, and a DOM agent
        // already off, answer errors: the state wanted, so they are tolerated.
        let session_overrides = async {
            futures::try_join!(
                this.cdp(
                    "clearing device metrics",
                    page.execute(ClearDeviceMetricsOverrideParams::default())
                ),
                this.cdp(
                    "clearing geolocation",
                    page.execute(ClearGeolocationOverrideParams::default())
                ),
                this.cdp("clearing media emulation", page.execute(media)),
                async {
                    tolerate(
                        this.cdp(
                            "clearing the timezone",
                            page.execute(SetTimezoneOverrideParams::new("")),
                        )
                        .await,
                    )
                },
                async {
                    tolerate(
                        this.cdp(
                            "clearing the locale",
                            page.execute(SetLocaleOverrideParams::default()),
                        )
                        .await,
                    )
                },
                this.cdp(
                    "clearing the user agent",
                    page.execute(SetUserAgentOverrideParams::new(""))
                ),
                this.cdp(
                    "clearing extra headers",
                    page.execute(SetExtraHttpHeadersParams::new(Headers::new(
                        serde_json::json!({})
                    ))),
                ),
                this.cdp(
                    "enabling scripts",
                    page.execute(SetScriptExecutionDisabledParams::new(false)),
                ),
                this.cdp(
                    "resetting history",
                    page.execute(ResetNavigationHistoryParams::default())
                ),
                async {
                    tolerate(
                        this.cdp(
                            "disabling the DOM agent",
                            page.execute(dom::DisableParams::default()),
                        )
                        .await,
                    )
                },
            )
            .map(drop)
        };
        futures::try_join!(
            try_join_all(per_origin),
            try_join_all(scripts),
            context_wide,
            session_overrides
        )?;
        if let Some(p) = self.prepared.as_mut() {
            p.clean = Isolation::Wipe;
            p.scripts_cleared = last_script.max(p.scripts_cleared);
        }
        tracing::debug!(browser = self.id, origins = origins.len(), "context wiped");
        Ok(())
    }
}

/// A command the browser refused (it answered with an error) is taken as
/// done; a dead browser or a timeout is still an error.
fn tolerate<T>(r: Result<T>) -> Result<()> {
    match r {
        Ok(_) | Err(Error::Cdp { .. }) => Ok(()),
        Err(e) => Err(e),
    }
}

fn collect_frame_origins(tree: &FrameTree, origins: &mut BTreeSet<String>) {
    origins.extend(origin_of(&tree.frame.url));
    for child in tree.child_frames.iter().flatten() {
        collect_frame_origins(child, origins);
    }
}

/// `scheme://host[:port]` of an http(s) URL; other schemes hold no storage
/// a wipe could name.
pub(crate) fn origin_of(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    if !matches!(scheme, "http" | "https") {
        return None;
    }
    let authority = rest.split(['/', '?', '#']).next()?;
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    if host.is_empty() {
        return None;
    }
    Some(format!("{scheme}://{host}"))
}

#[cfg(test)]
mod tests {
    use super::origin_of;

    #[test]
    fn an_origin_is_scheme_host_and_port_of_http_urls_only() {
        assert_eq!(
            origin_of("http://127.0.0.1:8080/page/1?x#y").as_deref(),
            Some("http://127.0.0.1:8080")
        );
        assert_eq!(
            origin_of("https://u:p@example.com").as_deref(),
            Some("https://example.com")
        );
        assert_eq!(origin_of("about:blank"), None);
        assert_eq!(origin_of("data:text/html,hi"), None);
        assert_eq!(origin_of("chrome-error://chromewebdata/"), None);
        assert_eq!(origin_of("http:///nohost"), None);
    }
}
