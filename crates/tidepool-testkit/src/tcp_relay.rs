//! A TCP relay in front of one endpoint, the network between a service and
//! a remote browser, with one fault it can put on the wire: a connection
//! whose browser side closed is held open towards the client, as a
//! half-dead NAT, load balancer or proxy does. A client then learns of the
//! loss only by its own deadlines or heartbeat.

use std::net::SocketAddr;

use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;

use tidepool_pools::{Error, Result};

/// What the relay does to the client's socket when the upstream closes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpstreamClosed {
    /// Closes it too: the client sees the close at once, as on a direct
    /// connection.
    Close,
    /// Keeps it open and silent for as long as the relay lives.
    Hold,
}

/// A TCP relay on 127.0.0.1 that forwards every connection to `upstream`
/// byte for byte, HTTP (`/json/version`) and WebSocket alike.
///
/// A pool in connect mode keeps the configured host and port when it
/// resolves an `http://` endpoint, so pointing it at
/// [`http_url`](TcpRelay::http_url) routes all of its traffic through the
/// relay. Dropping the relay closes every connection it holds.
///
/// # Example
///
/// ```no_run
/// # async fn run() -> tidepool_pools::Result<()> {
/// use tidepool_testkit::{ExternalChromium, TcpRelay, UpstreamClosed};
///
/// let chromium = ExternalChromium::start().await?;
/// let relay = TcpRelay::start(&chromium.http_url(), UpstreamClosed::Hold).await?;
/// // A pool connected to `relay.http_url()` does not see the browser's
/// // socket close when the browser is killed.
/// # drop(relay);
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct TcpRelay {
    addr: SocketAddr,
    accept: tokio::task::JoinHandle<()>,
}

impl TcpRelay {
    /// Starts relaying to `upstream`, an `http://host:port` or `host:port`
    /// address, on the current runtime.
    pub async fn start(upstream: &str, on_close: UpstreamClosed) -> Result<TcpRelay> {
        let target = upstream
            .strip_prefix("http://")
            .unwrap_or(upstream)
            .trim_end_matches('/')
            .to_owned();
        if target.contains('/') {
            return Err(Error::config(
                "relay upstream",
                format!("{upstream}: give a host and port, not a path"),
            ));
        }
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|e| Error::io("binding the TCP relay", "127.0.0.1:0", e))?;
        let addr = listener
            .local_addr()
            .map_err(|e| Error::io("reading the TCP relay's address", "127.0.0.1:0", e))?;
        let accept = tokio::spawn(async move {
            // Dropped with the accept loop when the relay is: every
            // connection ends with it, held ones included.
            let mut connections = JoinSet::new();
            while let Ok((client, _)) = listener.accept().await {
                connections.spawn(pipe(client, target.clone(), on_close));
                while connections.try_join_next().is_some() {}
            }
        });
        Ok(TcpRelay { addr, accept })
    }

    /// The address a client connects to instead of the upstream's.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://` and [`addr`](Self::addr): an endpoint for a pool in
    /// connect mode.
    pub fn http_url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for TcpRelay {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

async fn pipe(client: TcpStream, upstream: String, on_close: UpstreamClosed) {
    // Refused upstream (a browser down): the client's connection closes,
    // as a direct one would be refused.
    let Ok(server) = TcpStream::connect(&upstream).await else {
        return;
    };
    // Forwarded as soon as read, as on a direct connection.
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let (mut from_client, mut to_client) = client.into_split();
    let (mut from_server, mut to_server) = server.into_split();
    let up = async {
        let _ = tokio::io::copy(&mut from_client, &mut to_server).await;
        let _ = to_server.shutdown().await;
    };
    let down = async {
        let _ = tokio::io::copy(&mut from_server, &mut to_client).await;
        if on_close == UpstreamClosed::Hold {
            tracing::debug!(
                upstream,
                "upstream closed; holding the client's socket open"
            );
            std::future::pending::<()>().await;
        }
        let _ = to_client.shutdown().await;
    };
    tokio::join!(up, down);
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;
    use tokio::io::AsyncReadExt;

    /// An upstream that answers one line and closes.
    async fn upstream_that_closes() -> String {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = listener.accept().await {
                let mut buf = [0u8; 5];
                let _ = s.read_exact(&mut buf).await;
                let _ = s.write_all(b"bye\n").await;
            }
        });
        addr.to_string()
    }

    async fn after_close(on_close: UpstreamClosed) -> (Vec<u8>, bool) {
        let relay = TcpRelay::start(&upstream_that_closes().await, on_close)
            .await
            .unwrap();
        let mut client = TcpStream::connect(relay.addr()).await.unwrap();
        client.write_all(b"hello").await.unwrap();
        let mut got = Vec::new();
        let ended = tokio::time::timeout(Duration::from_millis(500), client.read_to_end(&mut got))
            .await
            .is_ok();
        (got, ended)
    }

    #[tokio::test]
    async fn a_closed_upstream_closes_the_client_socket() {
        let (got, ended) = after_close(UpstreamClosed::Close).await;
        assert_eq!(got, b"bye\n");
        assert!(ended, "the client saw no close");
    }

    #[tokio::test]
    async fn a_held_connection_forwards_then_never_closes() {
        let relay = TcpRelay::start(&upstream_that_closes().await, UpstreamClosed::Hold)
            .await
            .unwrap();
        let mut client = TcpStream::connect(relay.addr()).await.unwrap();
        client.write_all(b"hello").await.unwrap();
        let mut line = [0u8; 4];
        client.read_exact(&mut line).await.unwrap();
        assert_eq!(&line, b"bye\n");
        let mut more = [0u8; 1];
        let read = tokio::time::timeout(Duration::from_millis(300), client.read(&mut more)).await;
        assert!(read.is_err(), "the held socket answered: {read:?}");
        drop(relay);
        let read = tokio::time::timeout(Duration::from_secs(2), client.read(&mut more)).await;
        assert!(
            matches!(read, Ok(Ok(0)) | Ok(Err(_))),
            "dropping the relay left the held socket open: {read:?}"
        );
    }

    #[tokio::test]
    async fn a_path_is_refused_with_the_address_named() {
        let e = TcpRelay::start("http://127.0.0.1:9222/json", UpstreamClosed::Close)
            .await
            .unwrap_err();
        assert!(e.to_string().contains("127.0.0.1:9222/json"), "{e}");
    }
}
