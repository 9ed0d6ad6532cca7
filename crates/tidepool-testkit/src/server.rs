use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Path, Query, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde::Deserialize;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use tidepool_pools::{Error, Result};

/// One request the fixture server received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestRecord {
    /// HTTP method.
    pub method: String,
    /// Path without the query.
    pub path: String,
    /// The query string, if any.
    pub query: Option<String>,
    /// The `Cookie` header, if any.
    pub cookie: Option<String>,
    /// When it arrived, since the server started.
    pub at: Duration,
}

/// Where the fixture server finds its static pages.
#[derive(Debug, Clone)]
pub struct FixtureServerConfig {
    /// Directory served under `/html/{name}`; defaults to this crate's `fixtures/html`.
    pub html_dir: PathBuf,
}

impl Default for FixtureServerConfig {
    fn default() -> Self {
        FixtureServerConfig {
            html_dir: PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/html")),
        }
    }
}

struct Shared {
    html_dir: PathBuf,
    started: Instant,
    log: Mutex<Vec<RequestRecord>>,
    served: AtomicU64,
    shutdown: watch::Receiver<bool>,
}

/// An HTTP server on 127.0.0.1 with an ephemeral port, for tests and scenarios.
///
/// Routes:
///
/// | route | answer |
/// |---|---|
/// | `/html/{name}` | a file from `fixtures/html` |
/// | `/page/{n}?kb=K` | a generated page titled `Page n`, with text and ten links, padded to K KiB if given |
/// | `/slow?ms=N` | `ok` after N milliseconds, fractions allowed (the only injected latency; it exists for timeout tests) |
/// | `/hang` | never answers; held until the server shuts down |
/// | `/alloc?mb=N` | a page whose script keeps N MB alive in the JS heap |
/// | `/set-cookie?name=&value=` | sets a cookie (default `tidepool=1`) |
/// | `/echo-cookies` | the request's `Cookie` header as plain text |
/// | `/status/{code}` | an empty answer with that status |
/// | `/count` | how many requests the server has answered before this one |
/// | `/cached/{key}` | `key`, cacheable for an hour (a second request means the HTTP cache missed) |
/// | `/echo-header/{name}` | the value of the request's header `name`, empty if absent |
/// | `/sw.js` | a service worker script that does nothing |
/// | `/download/{name}` | 64 KiB of bytes as an attachment named `name`: a forced download |
/// | `/asset/{stem}.{png,woff2,css,js}` | a subresource of that type: a pixel, a font's bytes, a style colouring the body `rgb(1, 2, 3)`, a script setting `window.__asset_<stem>` |
///
/// Every request is recorded; [`FixtureServer::requests`] returns them.
///
/// # Example
///
/// ```
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// use tidepool_testkit::{FixtureServer, HttpConnection};
///
/// let server = FixtureServer::start().await?;
/// let mut conn = HttpConnection::open(server.addr()).await?;
/// let page = conn.get("/page/7").await?;
/// assert_eq!(page.status, 200);
/// assert!(page.text().contains("<title>Page 7</title>"));
/// assert_eq!(server.requests()[0].path, "/page/7");
/// server.shutdown().await;
/// # Ok::<(), tidepool_pools::Error>(())
/// # }).unwrap();
/// ```
pub struct FixtureServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
    shutdown: watch::Sender<bool>,
    task: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for FixtureServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FixtureServer")
            .field("addr", &self.addr)
            .finish()
    }
}

impl FixtureServer {
    /// Starts a server with the default config.
    pub async fn start() -> Result<FixtureServer> {
        FixtureServer::start_with(FixtureServerConfig::default()).await
    }

    /// Starts a server with `config`.
    pub async fn start_with(config: FixtureServerConfig) -> Result<FixtureServer> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|e| Error::io("binding the fixture server on", "127.0.0.1:0", e))?;
        let addr = listener
            .local_addr()
            .map_err(|e| Error::io("reading the address of", "127.0.0.1:0", e))?;
        let (shutdown, rx) = watch::channel(false);
        let shared = Arc::new(Shared {
            html_dir: config.html_dir,
            started: Instant::now(),
            log: Mutex::new(Vec::new()),
            served: AtomicU64::new(0),
            shutdown: rx.clone(),
        });
        let app = Router::new()
            .route("/html/{name}", get(static_page))
            .route("/page/{n}", get(generated_page))
            .route("/slow", get(slow))
            .route("/hang", get(hang))
            .route("/alloc", get(alloc))
            .route("/set-cookie", get(set_cookie))
            .route("/echo-cookies", get(echo_cookies))
            .route("/status/{code}", get(status))
            .route("/count", get(count))
            .route("/cached/{key}", get(cached))
            .route("/echo-header/{name}", get(echo_header))
            .route("/sw.js", get(service_worker))
            .route("/asset/{name}", get(asset))
            .route("/download/{name}", get(download))
            .layer(middleware::from_fn_with_state(shared.clone(), record))
            .with_state(shared.clone());
        let mut stop = rx;
        let task = tokio::spawn(async move {
            let serve = axum::serve(listener, app).with_graceful_shutdown(async move {
                let _ = stop.wait_for(|s| *s).await;
            });
            if let Err(e) = serve.await {
                tracing::warn!(error = %e, "fixture server stopped with an error");
            }
        });
        tracing::debug!(%addr, "fixture server started");
        Ok(FixtureServer {
            addr,
            shared,
            shutdown,
            task: Some(task),
        })
    }

    /// The socket address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT` followed by `path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// Every request received so far, in arrival order.
    pub fn requests(&self) -> Vec<RequestRecord> {
        self.shared
            .log
            .lock()
            .map(|log| log.clone())
            .unwrap_or_default()
    }

    /// How many requests have been answered so far.
    pub fn served(&self) -> u64 {
        self.shared.served.load(Ordering::SeqCst)
    }

    /// Stops accepting, releases held requests and waits for open connections to end.
    pub async fn shutdown(mut self) {
        let _ = self.shutdown.send(true);
        if let Some(task) = self.task.take() {
            // Clients that keep idle connections open would hold graceful
            // shutdown forever; after a grace period, stop serving outright.
            let abort = task.abort_handle();
            if tokio::time::timeout(Duration::from_secs(2), task)
                .await
                .is_err()
            {
                abort.abort();
            }
        }
    }
}

impl Drop for FixtureServer {
    fn drop(&mut self) {
        let _ = self.shutdown.send(true);
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

async fn record(State(shared): State<Arc<Shared>>, req: Request, next: Next) -> Response {
    let entry = RequestRecord {
        method: req.method().to_string(),
        path: req.uri().path().to_owned(),
        query: req.uri().query().map(str::to_owned),
        cookie: req
            .headers()
            .get(header::COOKIE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
        at: shared.started.elapsed(),
    };
    if let Ok(mut log) = shared.log.lock() {
        log.push(entry);
    }
    let response = next.run(req).await;
    shared.served.fetch_add(1, Ordering::SeqCst);
    response
}

async fn static_page(State(shared): State<Arc<Shared>>, Path(name): Path<String>) -> Response {
    if name.contains('/') || name.contains("..") || name.starts_with('.') {
        return (StatusCode::BAD_REQUEST, "bad fixture name").into_response();
    }
    match tokio::fs::read_to_string(shared.html_dir.join(&name)).await {
        Ok(body) => Html(body).into_response(),
        Err(_) => (StatusCode::NOT_FOUND, format!("no fixture page {name}")).into_response(),
    }
}

/// A deterministic page of moderate size (about 3 KB): a title, headings,
/// paragraphs, links.
pub fn generated_page_html(n: u64) -> String {
    generated_page_html_sized(n, 0)
}

/// [`generated_page_html`] padded with more paragraphs (no links) to at
/// least `min_bytes`, the size of a real article page.
pub fn generated_page_html_sized(n: u64, min_bytes: usize) -> String {
    let mut body = String::with_capacity(8 * 1024);
    for i in 0..20u64 {
        body += &format!(
            "<h2>Section {i}</h2><p class=\"para\">Paragraph {i} of page {n}: tidepool keeps browsers and WASM instances warm and bounded; item {}.</p>\n",
            (n * 31 + i * 7) % 997
        );
    }
    for k in 1..=10u64 {
        body += &format!("<a href=\"/page/{}\">next {k}</a>\n", (n + k) % 100_000);
    }
    let mut i = 0u64;
    while body.len() + 300 < min_bytes {
        body += &format!(
            "<p class=\"filler\">Filler {i} of page {n}: more text for the parser and the layout, {}.</p>\n",
            (n * 13 + i * 17) % 1009
        );
        i += 1;
    }
    format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>Page {n}</title></head><body><h1 id=\"title\">Page {n}</h1>{body}<div id=\"price\" data-sku=\"SKU-{n}\">{}.{:02}</div></body></html>",
        n % 500,
        n % 100
    )
}

#[derive(Deserialize)]
struct Size {
    /// Padded to at least this many KiB.
    kb: Option<usize>,
}

async fn generated_page(Path(n): Path<u64>, Query(size): Query<Size>) -> Html<String> {
    Html(generated_page_html_sized(n, size.kb.unwrap_or(0) * 1024))
}

#[derive(Deserialize)]
struct Ms {
    /// Milliseconds; fractions allowed, for traces run in compressed time.
    ms: f64,
}

/// Waits `d` unless the server shuts down first; true if the full wait elapsed.
async fn hold(shared: &Shared, d: Option<Duration>) -> bool {
    let mut stop = shared.shutdown.clone();
    let stopped = stop.wait_for(|s| *s);
    match d {
        // The injected latency of /slow: this route exists to be slow, for the
        // timeout tests, and is never used to stand in for a measurement.
        Some(d) => tokio::select! {
            _ = tokio::time::sleep(d) => true,
            _ = stopped => false,
        },
        None => {
            let _ = stopped.await;
            false
        }
    }
}

async fn slow(State(shared): State<Arc<Shared>>, Query(q): Query<Ms>) -> Response {
    let Ok(wait) = Duration::try_from_secs_f64(q.ms / 1e3) else {
        return (
            StatusCode::BAD_REQUEST,
            format!("ms={} is not a duration", q.ms),
        )
            .into_response();
    };
    if hold(&shared, Some(wait)).await {
        "ok".into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "server shutting down").into_response()
    }
}

async fn hang(State(shared): State<Arc<Shared>>) -> Response {
    hold(&shared, None).await;
    (StatusCode::SERVICE_UNAVAILABLE, "server shutting down").into_response()
}

#[derive(Deserialize)]
struct Mb {
    mb: u32,
}

async fn alloc(Query(q): Query<Mb>) -> Html<String> {
    // Each array of 131072 doubles is 1 MiB of V8 heap; distinct values keep V8
    // from sharing or compressing them.
    Html(format!(
        "<!doctype html><html><head><title>alloc {mb} MB</title></head><body><p id=\"mb\">{mb}</p><script>\
         window.__tidepoolHold = window.__tidepoolHold || [];\
         for (let i = 0; i < {mb}; i++) {{ const a = new Float64Array(131072); for (let j = 0; j < a.length; j += 512) a[j] = i + j; window.__tidepoolHold.push(Array.from(a)); }}\
         document.title = 'allocated {mb} MB';</script></body></html>",
        mb = q.mb
    ))
}

#[derive(Deserialize)]
struct CookieQuery {
    name: Option<String>,
    value: Option<String>,
}

async fn set_cookie(Query(q): Query<CookieQuery>) -> Response {
    let name = q.name.unwrap_or_else(|| "tidepool".into());
    let value = q.value.unwrap_or_else(|| "1".into());
    (
        [(header::SET_COOKIE, format!("{name}={value}; Path=/"))],
        Html(format!(
            "<html><head><title>cookie set</title></head><body>{name}={value}</body></html>"
        )),
    )
        .into_response()
}

async fn echo_cookies(headers: HeaderMap) -> String {
    headers
        .get(header::COOKIE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned()
}

async fn status(Path(code): Path<u16>) -> Response {
    match StatusCode::from_u16(code) {
        Ok(code) => (code, code.canonical_reason().unwrap_or("")).into_response(),
        Err(_) => (
            StatusCode::BAD_REQUEST,
            format!("{code} is not a status code"),
        )
            .into_response(),
    }
}

async fn count(State(shared): State<Arc<Shared>>) -> String {
    shared.served.load(Ordering::SeqCst).to_string()
}

async fn cached(Path(key): Path<String>) -> Response {
    ([(header::CACHE_CONTROL, "public, max-age=3600")], key).into_response()
}

async fn echo_header(Path(name): Path<String>, headers: HeaderMap) -> String {
    headers
        .get(name.as_str())
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned()
}

async fn service_worker() -> Response {
    (
        [(header::CONTENT_TYPE, "text/javascript")],
        "self.addEventListener('fetch', () => {});",
    )
        .into_response()
}

/// A 1x1 transparent PNG.
const PIXEL_PNG: &[u8] = &[
    0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48, 0x44, 0x52,
    0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06, 0x00, 0x00, 0x00, 0x1f, 0x15, 0xc4,
    0x89, 0x00, 0x00, 0x00, 0x0b, 0x49, 0x44, 0x41, 0x54, 0x78, 0x9c, 0x63, 0x60, 0x00, 0x02, 0x00,
    0x00, 0x05, 0x00, 0x01, 0x7a, 0x5e, 0xab, 0x3f, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45, 0x4e, 0x44,
    0xae, 0x42, 0x60, 0x82,
];

/// A page's subresources, by extension: `.png` a pixel, `.woff2` bytes
/// served as a font (they decode as none, so the text falls back), `.css`
/// a style that colours the body `rgb(1, 2, 3)`, `.js` a script that sets
/// `window.__asset_<stem>`. What a blocked kind of request must never reach.
async fn asset(Path(name): Path<String>) -> Response {
    let (stem, ext) = name.rsplit_once('.').unwrap_or((&name, ""));
    let (kind, body): (&str, Vec<u8>) = match ext {
        "png" => ("image/png", PIXEL_PNG.to_vec()),
        "woff2" => ("font/woff2", b"wOF2 tidepool fixture".to_vec()),
        "css" => ("text/css", b"body { color: rgb(1, 2, 3); }".to_vec()),
        "js" if stem.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') => (
            "text/javascript",
            format!("window.__asset_{stem} = 1;").into_bytes(),
        ),
        _ => {
            return (StatusCode::NOT_FOUND, format!("no asset {name}")).into_response();
        }
    };
    ([(header::CONTENT_TYPE, kind)], body).into_response()
}

/// 64 KiB sent as an attachment: what a browser saves to disk unless told
/// not to.
async fn download(Path(name): Path<String>) -> Response {
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '_')
    {
        return (StatusCode::BAD_REQUEST, "bad download name").into_response();
    }
    let disposition = format!("attachment; filename=\"{name}\"");
    (
        [
            (header::CONTENT_TYPE, "application/octet-stream".to_owned()),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        vec![b'x'; 64 * 1024],
    )
        .into_response()
}
