//! A remote browser's address as the config gives it, and how it becomes the
//! DevTools WebSocket URL a connection is opened to.
//!
//! A `ws://` or `wss://` URL is used as given. An `http://host:port` address
//! is resolved through the browser's `/json/version` on every connection:
//! Chrome in a container gets a new `/devtools/browser/<uuid>` each time it
//! restarts, and only the HTTP address stays the same.

use std::time::Duration;

use url::Url;

use crate::error::{Error, Result};

/// The schemes a remote endpoint may use.
const SCHEMES: [&str; 4] = ["ws", "wss", "http", "https"];

/// Checks one configured endpoint; the message says what is wrong with it.
pub(crate) fn check(endpoint: &str) -> std::result::Result<(), String> {
    let url = Url::parse(endpoint).map_err(|e| format!("{endpoint:?} is not a URL ({e})"))?;
    if !SCHEMES.contains(&url.scheme()) {
        return Err(format!(
            "{endpoint:?} has scheme {:?}; expected ws://, wss:// (a DevTools WebSocket URL) or http://, https:// (resolved through /json/version)",
            url.scheme()
        ));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(format!("{endpoint:?} names no host"));
    }
    if matches!(url.scheme(), "wss" | "https") {
        // The CDP client here speaks plain TCP only: a wss:// connection
        // would fail at every attempt, so it is refused where it is written.
        return Err(format!(
            "{endpoint:?} needs TLS, which this build's CDP client does not speak; reach the browser over ws:// or http:// (a TLS-terminating proxy or a port-forward in front of it)"
        ));
    }
    Ok(())
}

/// The WebSocket URL to connect to for `endpoint`: itself for `ws://`, or
/// the `webSocketDebuggerUrl` of its `/json/version` for `http://`.
///
/// The resolved URL keeps the configured host and port (Chrome reports the
/// address it sees itself at, which behind a Service or a port-forward is
/// not the one the client can reach) and gains the configured query
/// parameters it lacks (a browserless `token` and `timeout` must reach the
/// WebSocket too).
pub async fn resolve(endpoint: &str, timeout: Duration) -> Result<String> {
    let configured = Url::parse(endpoint).map_err(|e| Error::Http {
        url: endpoint.to_owned(),
        message: format!("not a URL: {e}"),
    })?;
    if matches!(configured.scheme(), "ws" | "wss") {
        return Ok(endpoint.to_owned());
    }
    let version = version_url(&configured);
    let http = |message: String| Error::Http {
        url: version.to_string(),
        message,
    };
    let client = reqwest::Client::builder()
        .timeout(timeout)
        .build()
        .map_err(|e| http(format!("building the HTTP client: {e}")))?;
    let response = client
        .get(version.clone())
        .send()
        .await
        .map_err(|e| http(describe(&e)))?;
    let status = response.status();
    let body = response.bytes().await.map_err(|e| http(describe(&e)))?;
    if !status.is_success() {
        return Err(http(format!(
            "answered {status}: {}",
            String::from_utf8_lossy(&body[..body.len().min(200)])
        )));
    }
    let json: serde_json::Value = serde_json::from_slice(&body)
        .map_err(|e| http(format!("answered with something not JSON: {e}")))?;
    let reported = json
        .get("webSocketDebuggerUrl")
        .and_then(|v| v.as_str())
        .ok_or_else(|| http("answered without a webSocketDebuggerUrl".into()))?;
    let ws = Url::parse(reported)
        .map_err(|e| http(format!("reported webSocketDebuggerUrl {reported:?}: {e}")))?;
    Ok(reachable(&configured, ws).to_string())
}

/// `configured`'s `/json/version`, with its query.
fn version_url(configured: &Url) -> Url {
    let mut url = configured.clone();
    if !url.path().trim_end_matches('/').ends_with("/json/version") {
        let path = format!("{}/json/version", url.path().trim_end_matches('/'));
        url.set_path(&path);
    }
    url
}

/// The reported WebSocket URL at the configured address, with the configured
/// query parameters it does not already carry.
fn reachable(configured: &Url, mut ws: Url) -> Url {
    let scheme = if configured.scheme() == "https" {
        "wss"
    } else {
        "ws"
    };
    // Both are special schemes with an authority, so these cannot fail.
    let _ = ws.set_scheme(scheme);
    let _ = ws.set_host(configured.host_str());
    let _ = ws.set_port(configured.port());
    let has: Vec<String> = ws.query_pairs().map(|(k, _)| k.into_owned()).collect();
    let extra: Vec<(String, String)> = configured
        .query_pairs()
        .filter(|(k, _)| !has.iter().any(|h| h == k))
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    if !extra.is_empty() {
        ws.query_pairs_mut().extend_pairs(extra);
    }
    ws
}

/// A request error with its cause chain (reqwest's own text is only "error
/// sending request").
fn describe(e: &reqwest::Error) -> String {
    let mut text = if e.is_timeout() {
        "no answer in time".to_owned()
    } else {
        e.to_string()
    };
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_version_url_keeps_the_query_and_any_path_prefix() {
        let cases = [
            ("http://h:9222", "http://h:9222/json/version"),
            (
                "http://h:3000/?token=t&timeout=60000",
                "http://h:3000/json/version?token=t&timeout=60000",
            ),
            (
                "http://h/chrome/json/version/",
                "http://h/chrome/json/version/",
            ),
            ("http://h/chrome", "http://h/chrome/json/version"),
        ];
        for (configured, expected) in cases {
            let url = Url::parse(configured).unwrap();
            assert_eq!(version_url(&url).as_str(), expected, "for {configured}");
        }
    }

    #[test]
    fn the_resolved_url_is_at_the_configured_address_with_its_parameters() {
        let configured = Url::parse("http://fleet.svc:9222/?token=secret&timeout=60000").unwrap();
        let reported = Url::parse("ws://10.0.3.7:9222/devtools/browser/abc?timeout=1").unwrap();
        assert_eq!(
            reachable(&configured, reported).as_str(),
            "ws://fleet.svc:9222/devtools/browser/abc?timeout=1&token=secret"
        );
    }

    #[test]
    fn bad_endpoints_are_named_with_what_is_wrong() {
        for (endpoint, says) in [
            ("localhost:9222", "scheme"),
            ("ftp://h:1", "scheme \"ftp\""),
            ("not a url", "not a URL"),
            ("wss://h/devtools/browser/x", "needs TLS"),
        ] {
            let problem = check(endpoint).unwrap_err();
            assert!(
                problem.contains(says) && problem.contains(endpoint),
                "{endpoint}: {problem}"
            );
        }
        for good in [
            "ws://127.0.0.1:9222/devtools/browser/x",
            "http://chrome:9222",
        ] {
            assert_eq!(check(good), Ok(()), "{good}");
        }
    }
}
