use std::net::SocketAddr;

use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;

use tidepool_pools::{Error, Result};

/// A response read whole.
#[derive(Debug, Clone)]
pub struct HttpResponse {
    /// Status code.
    pub status: u16,
    /// The body bytes.
    pub body: Bytes,
}

impl HttpResponse {
    /// The body as text (lossy UTF-8).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// One HTTP/1.1 keep-alive connection to a server on this machine.
///
/// Scenarios use it to measure the fixture server over a real socket; it is a
/// thin layer over hyper's connection API, with no pooling of its own, so what a
/// scenario times is exactly one connection's work.
#[derive(Debug)]
pub struct HttpConnection {
    addr: SocketAddr,
    sender: SendRequest<Empty<Bytes>>,
    driver: tokio::task::JoinHandle<()>,
}

impl HttpConnection {
    /// Connects to `addr` and completes the HTTP/1 handshake.
    pub async fn open(addr: SocketAddr) -> Result<HttpConnection> {
        let http_err = |message: String| Error::Http {
            url: format!("http://{addr}"),
            message,
        };
        let stream = tokio::net::TcpStream::connect(addr)
            .await
            .map_err(|e| http_err(format!("connect: {e}")))?;
        let _ = stream.set_nodelay(true);
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| http_err(format!("handshake: {}", causes(&e))))?;
        let driver = tokio::spawn(async move {
            // The connection ends when the sender is dropped or the peer closes;
            // either way there is no one left to tell.
            let _ = conn.await;
        });
        Ok(HttpConnection {
            addr,
            sender,
            driver,
        })
    }

    /// GETs `path` (with query) and reads the whole body.
    pub async fn get(&mut self, path: &str) -> Result<HttpResponse> {
        let url = format!("http://{}{}", self.addr, path);
        let http_err = |message: String| Error::Http {
            url: url.clone(),
            message,
        };
        let request = hyper::Request::get(path)
            .header(hyper::header::HOST, self.addr.to_string())
            .body(Empty::<Bytes>::new())
            .map_err(|e| http_err(format!("building the request: {e}")))?;
        // After a response, the connection is reusable only once its driver
        // task has run; sending before that fails with "connection was not
        // ready" (seen under load). `ready` waits for it.
        self.sender
            .ready()
            .await
            .map_err(|e| http_err(format!("waiting for the connection: {}", causes(&e))))?;
        let response = self
            .sender
            .send_request(request)
            .await
            .map_err(|e| http_err(format!("request: {}", causes(&e))))?;
        let status = response.status().as_u16();
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|e| http_err(format!("reading the body: {}", causes(&e))))?
            .to_bytes();
        Ok(HttpResponse { status, body })
    }
}

impl Drop for HttpConnection {
    fn drop(&mut self) {
        self.driver.abort();
    }
}

/// An error with its causes: hyper's own message is often only "operation
/// was canceled", with the reason (a reset connection, say) in its source.
fn causes(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// GETs `path` from `addr` on a connection of its own, closed afterwards.
pub async fn get_once(addr: SocketAddr, path: &str) -> Result<HttpResponse> {
    HttpConnection::open(addr).await?.get(path).await
}
