//! A forward HTTP proxy on 127.0.0.1 that counts what passes through it: the
//! witness of the per-lease proxy test (a lease's pages must go through the
//! proxy it asked for, and no other lease's pages may).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;

use tidepool_pools::{Error, Result};

type ProxyBody = BoxBody<Bytes, hyper::Error>;

/// A forward proxy for plain HTTP: it takes requests in absolute form
/// (`GET http://host:port/path`), sends each to its origin over a connection
/// of its own and relays the answer, recording the URL. `CONNECT` (HTTPS) is
/// recorded and refused. Started [`with_credentials`](Self::with_credentials),
/// it answers 407 to a request without them, as an authenticating proxy does,
/// and counts the refusals.
///
/// ```no_run
/// # async fn demo() -> tidepool_pools::Result<()> {
/// use tidepool_testkit::CountingProxy;
///
/// let proxy = CountingProxy::start().await?;
/// // Point a lease at proxy.server(), load pages, then:
/// println!("{} requests went through", proxy.requests().len());
/// proxy.shutdown().await;
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct CountingProxy {
    addr: SocketAddr,
    seen: Arc<Mutex<Vec<String>>>,
    refused: Arc<AtomicU64>,
    tasks: JoinSet<()>,
}

/// What the proxy asks of a request: the `Proxy-Authorization` it expects.
#[derive(Debug, Clone)]
struct Gate {
    expected: Option<String>,
    refused: Arc<AtomicU64>,
}

impl CountingProxy {
    /// Starts the proxy on an ephemeral port of 127.0.0.1.
    pub async fn start() -> Result<CountingProxy> {
        Self::start_gated(None).await
    }

    /// Starts a proxy that relays only requests with Basic credentials of
    /// `username` and `password`, and answers 407 to the others.
    pub async fn with_credentials(username: &str, password: &str) -> Result<CountingProxy> {
        use base64::Engine as _;
        let token =
            base64::engine::general_purpose::STANDARD.encode(format!("{username}:{password}"));
        Self::start_gated(Some(format!("Basic {token}"))).await
    }

    async fn start_gated(expected: Option<String>) -> Result<CountingProxy> {
        let failed = |e: std::io::Error| Error::Http {
            url: "http://127.0.0.1:0 (counting proxy)".into(),
            message: format!("binding: {e}"),
        };
        let listener = TcpListener::bind("127.0.0.1:0").await.map_err(failed)?;
        let addr = listener.local_addr().map_err(failed)?;
        let seen = Arc::new(Mutex::new(Vec::new()));
        let refused = Arc::new(AtomicU64::new(0));
        let gate = Gate {
            expected,
            refused: refused.clone(),
        };
        let mut tasks = JoinSet::new();
        let log = seen.clone();
        tasks.spawn(async move {
            let mut connections = JoinSet::new();
            while let Ok((stream, _)) = listener.accept().await {
                let (log, gate) = (log.clone(), gate.clone());
                connections.spawn(async move {
                    let service = hyper::service::service_fn(move |req| {
                        relay(req, log.clone(), gate.clone())
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
                // Reap finished connections so a long test keeps no handles.
                while connections.try_join_next().is_some() {}
            }
        });
        Ok(CountingProxy {
            addr,
            seen,
            refused,
            tasks,
        })
    }

    /// The address to give a browser: `http://127.0.0.1:<port>`.
    pub fn server(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Every request that came through so far, as absolute URLs, in order.
    pub fn requests(&self) -> Vec<String> {
        self.seen.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Requests answered 407 for want of the right credentials.
    pub fn refused(&self) -> u64 {
        self.refused.load(Ordering::Relaxed)
    }

    /// Stops accepting and closes every open connection.
    pub async fn shutdown(mut self) {
        self.tasks.shutdown().await;
    }
}

async fn relay(
    req: Request<Incoming>,
    seen: Arc<Mutex<Vec<String>>>,
    gate: Gate,
) -> std::result::Result<Response<ProxyBody>, hyper::Error> {
    if let Some(expected) = &gate.expected {
        let given = req.headers().get("proxy-authorization");
        if given.and_then(|v| v.to_str().ok()) != Some(expected.as_str()) {
            gate.refused.fetch_add(1, Ordering::Relaxed);
            let mut response = answer(
                StatusCode::PROXY_AUTHENTICATION_REQUIRED,
                "proxy credentials required",
            );
            response.headers_mut().insert(
                "proxy-authenticate",
                hyper::header::HeaderValue::from_static("Basic realm=\"tidepool\""),
            );
            return Ok(response);
        }
    }
    seen.lock()
        .unwrap_or_else(|p| p.into_inner())
        .push(req.uri().to_string());
    if req.method() == hyper::Method::CONNECT {
        return Ok(answer(
            StatusCode::NOT_IMPLEMENTED,
            "CONNECT is not relayed",
        ));
    }
    let Some(authority) = req.uri().authority().cloned() else {
        return Ok(answer(
            StatusCode::BAD_REQUEST,
            "not an absolute-form request",
        ));
    };
    let stream = match TcpStream::connect(authority.as_str()).await {
        Ok(s) => s,
        Err(e) => return Ok(answer(StatusCode::BAD_GATEWAY, &e.to_string())),
    };
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(conn);
    let (mut parts, body) = req.into_parts();
    parts.uri = parts
        .uri
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .parse()
        .unwrap_or_default();
    parts.headers.remove("proxy-connection");
    parts.headers.remove("proxy-authorization");
    let response = sender
        .send_request(Request::from_parts(parts, body))
        .await?;
    Ok(response.map(|b| b.boxed()))
}

fn answer(status: StatusCode, why: &str) -> Response<ProxyBody> {
    let body = Full::new(Bytes::from(why.to_owned()))
        .map_err(|never| match never {})
        .boxed();
    let mut response = Response::new(body);
    *response.status_mut() = status;
    response
}
