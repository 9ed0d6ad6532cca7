//! A lease's own settings put on its pages before it gets them: emulation
//! (one command per setting, all at once) and request blocking (requests
//! paused by Chromium and failed by a listener that lives as long as the
//! lease).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use chromiumoxide::cdp::browser_protocol::browser::{
    BrowserContextId, PermissionDescriptor, PermissionSetting, SetPermissionParams,
};
use chromiumoxide::cdp::browser_protocol::emulation::{
    SetDeviceMetricsOverrideParams, SetGeolocationOverrideParams, SetLocaleOverrideParams,
    SetTimezoneOverrideParams, SetUserAgentOverrideParams,
};
use chromiumoxide::cdp::browser_protocol::fetch::{
    self, ContinueRequestParams, EventRequestPaused, FailRequestParams, RequestPattern,
    RequestStage,
};
use chromiumoxide::cdp::browser_protocol::network::{
    ErrorReason, Headers, ResourceType, SetExtraHttpHeadersParams,
};
use chromiumoxide::error::CdpError;
use chromiumoxide::{Browser, Page};
use futures::future::{try_join_all, BoxFuture};
use futures::{FutureExt, StreamExt};

use super::listener::Listener;
use crate::browser::blocking::{is_private_host, Blocking, ResourceKind};
use crate::browser::emulation::Emulation;

/// A lease's settings for each of its pages, fixed at its acquire.
#[derive(Debug, Clone, Default)]
pub(crate) struct LeaseSettings {
    pub(crate) emulation: Option<Emulation>,
    pub(crate) blocking: Option<Blocking>,
    /// Requests refused on the lease's pages so far.
    pub(crate) blocked: Arc<AtomicU64>,
}

impl LeaseSettings {
    /// Whether a page of the lease needs anything done to it.
    pub(crate) fn is_empty(&self) -> bool {
        self.emulation.as_ref().is_none_or(Emulation::is_empty)
            && self.blocking.as_ref().is_none_or(Blocking::is_empty)
    }
}

/// Fails the matching requests of one page until dropped.
pub(crate) type RequestBlocker = Listener;

/// Puts `settings` on `page`, a page of `context`: the emulation, then the
/// blocking, whose blocker the caller keeps for as long as the page is the
/// lease's. `proxy_auth` keeps the proxy's challenges answered once
/// `Fetch.enable` is sent again with the blocking's patterns.
pub(crate) async fn apply(
    browser: &Browser,
    context: &BrowserContextId,
    page: &Page,
    settings: &LeaseSettings,
    proxy_auth: bool,
) -> Result<Option<RequestBlocker>, CdpError> {
    if let Some(emulation) = &settings.emulation {
        emulate(browser, context, page, emulation).await?;
    }
    match &settings.blocking {
        Some(blocking) if !blocking.is_empty() => {
            block(page, blocking, settings.blocked.clone(), proxy_auth)
                .await
                .map(Some)
        }
        _ => Ok(None),
    }
}

async fn emulate(
    browser: &Browser,
    context: &BrowserContextId,
    page: &Page,
    e: &Emulation,
) -> Result<(), CdpError> {
    let mut calls: Vec<BoxFuture<'_, Result<(), CdpError>>> = Vec::new();
    if let Some(ua) = &e.user_agent {
        let mut params = SetUserAgentOverrideParams::new(ua.clone());
        params.accept_language = e.locale.clone();
        calls.push(async move { page.execute(params).await.map(drop) }.boxed());
    }
    if let Some(v) = e.viewport {
        let params = SetDeviceMetricsOverrideParams::new(
            i64::from(v.width),
            i64::from(v.height),
            v.device_scale_factor,
            false,
        );
        calls.push(async move { page.execute(params).await.map(drop) }.boxed());
    }
    if let Some(locale) = &e.locale {
        let params = SetLocaleOverrideParams::builder()
            .locale(locale.clone())
            .build();
        calls.push(async move { page.execute(params).await.map(drop) }.boxed());
    }
    if let Some(tz) = &e.timezone {
        let params = SetTimezoneOverrideParams::new(tz.clone());
        calls.push(async move { page.execute(params).await.map(drop) }.boxed());
    }
    if let Some(g) = e.geolocation {
        let params = SetGeolocationOverrideParams::builder()
            .latitude(g.latitude)
            .longitude(g.longitude)
            .accuracy(g.accuracy)
            .build();
        calls.push(async move { page.execute(params).await.map(drop) }.boxed());
        // Without the permission, a page's request for the position is
        // denied in headless Chromium, and the override answers nobody.
        let mut grant = SetPermissionParams::new(
            PermissionDescriptor::new("geolocation"),
            PermissionSetting::Granted,
        );
        grant.browser_context_id = Some(context.clone());
        calls.push(async move { browser.execute(grant).await.map(drop) }.boxed());
    }
    let mut headers = e.extra_headers.clone();
    if let Some(locale) = &e.locale {
        let named = |n: &String| n.eq_ignore_ascii_case("accept-language");
        if !headers.keys().any(named) {
            headers.insert("Accept-Language".into(), locale.clone());
        }
    }
    if !headers.is_empty() {
        let params = SetExtraHttpHeadersParams::new(Headers::new(serde_json::json!(headers)));
        calls.push(async move { page.execute(params).await.map(drop) }.boxed());
    }
    try_join_all(calls).await.map(drop)
}

fn resource_type(kind: ResourceKind) -> ResourceType {
    match kind {
        ResourceKind::Image => ResourceType::Image,
        ResourceKind::Media => ResourceType::Media,
        ResourceKind::Font => ResourceType::Font,
        ResourceKind::Stylesheet => ResourceType::Stylesheet,
        ResourceKind::Script => ResourceType::Script,
        ResourceKind::Xhr => ResourceType::Xhr,
        ResourceKind::Fetch => ResourceType::Fetch,
        ResourceKind::Ping => ResourceType::Ping,
        ResourceKind::Manifest => ResourceType::Manifest,
        ResourceKind::Other => ResourceType::Other,
    }
}

/// Chromium pauses the requests `blocking` names, and a listener fails
/// each one. The CDP client fails or continues every paused request itself
/// unless told the page's listener does: adding the listener and turning its
/// own handling off tell it so.
///
/// `Fetch` takes one set of patterns per page, and Chromium asks for a
/// proxy's credentials only for requests it paused: with `proxy_auth`,
/// every request is paused, and the listener continues those `blocking`
/// does not name (one more message per request, as the CDP client's own
/// credential handling costs).
async fn block(
    page: &Page,
    blocking: &Blocking,
    blocked: Arc<AtomicU64>,
    proxy_auth: bool,
) -> Result<RequestBlocker, CdpError> {
    let mut paused = page.event_listener::<EventRequestPaused>().await?;
    // chromey's flag reads inverted: `false` hands paused requests to the
    // page's own listeners.
    page.set_request_interception(false).await?;
    let pattern = |url: &str, kind: Option<ResourceKind>| {
        let p = RequestPattern::builder()
            .url_pattern(url)
            .request_stage(RequestStage::Request);
        match kind {
            Some(k) => p.resource_type(resource_type(k)).build(),
            None => p.build(),
        }
    };
    // Some requests are judged here, not by Chromium's patterns.
    let judged_here = proxy_auth || blocking.private_addresses;
    let patterns: Vec<RequestPattern> = if judged_here {
        vec![pattern("*", None)]
    } else {
        let by_kind = blocking.kinds.iter().map(|k| pattern("*", Some(*k)));
        let by_url = blocking.url_patterns.iter().map(|u| pattern(u, None));
        by_kind.chain(by_url).collect()
    };
    let enable = fetch::EnableParams::builder()
        .patterns(patterns)
        .handle_auth_requests(proxy_auth)
        .build();
    // Otherwise Chromium paused only what is to be blocked.
    let decide = judged_here.then(|| blocking.clone());
    let page_ = page.clone();
    let task = tokio::spawn(async move {
        while let Some(request) = paused.next().await {
            let id = request.request_id.clone();
            let block = decide
                .as_ref()
                .is_none_or(|b| blocks(b, &request.resource_type, &request.request.url));
            let answered = if block {
                tracing::debug!(url = %request.request.url, kind = ?request.resource_type, "blocking a request");
                let fail = FailRequestParams::new(id, ErrorReason::BlockedByClient);
                page_.execute(fail).await.map(drop)
            } else {
                page_
                    .execute(ContinueRequestParams::new(id))
                    .await
                    .map(drop)
            };
            // A page that closed meanwhile has nothing left to block.
            if block && answered.is_ok() {
                blocked.fetch_add(1, Ordering::Relaxed);
            }
        }
    });
    let blocker = Listener::new(task);
    page.execute(enable).await?;
    Ok(blocker)
}

/// Whether `blocking` names a request of type `kind` for `url`, as Chromium
/// would match its patterns.
fn blocks(blocking: &Blocking, kind: &ResourceType, url: &str) -> bool {
    blocking.kinds.iter().any(|k| resource_type(*k) == *kind)
        || blocking.url_patterns.iter().any(|p| wildcard_match(p, url))
        || (blocking.private_addresses && is_private_host(url))
}

/// Chromium's URL pattern wildcards: `*` any run, `?` one character, `\`
/// escapes the next; the pattern matches the whole text.
pub(crate) fn wildcard_match(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    // Greedy with one backtrack point, the classic linear-space matcher.
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        match p.get(pi) {
            Some('*') => {
                star = Some((pi, ti));
                pi += 1;
                continue;
            }
            Some('?') => {
                pi += 1;
                ti += 1;
                continue;
            }
            Some('\\') if p.get(pi + 1) == Some(&t[ti]) => {
                pi += 2;
                ti += 1;
                continue;
            }
            Some(c) if *c != '\\' && *c == t[ti] => {
                pi += 1;
                ti += 1;
                continue;
            }
            _ => {}
        }
        match star {
            Some((sp, st)) => {
                pi = sp + 1;
                ti = st + 1;
                star = Some((sp, st + 1));
            }
            None => return false,
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

#[cfg(test)]
mod tests {
    use super::wildcard_match;

    #[test]
    fn wildcards_match_as_chromiums_url_patterns_do() {
        let url = "http://127.0.0.1:8080/asset/tracker.js?v=1";
        for (pattern, matches) in [
            ("*", true),
            ("*/asset/tracker.js*", true),
            ("*/asset/tracker.js", false),
            ("http://127.0.0.1:????/*", true),
            ("http://127.0.0.1:???/*", false),
            ("*tracker*", true),
            ("*.png", false),
            ("http://*.example.com/*", false),
            ("*\\?v=1", true),
            ("*\\*", false),
            ("", false),
        ] {
            assert_eq!(wildcard_match(pattern, url), matches, "{pattern}");
        }
        assert!(wildcard_match("", ""));
        assert!(wildcard_match("a\\*b", "a*b"));
        assert!(!wildcard_match("a\\*b", "axb"));
    }
}
