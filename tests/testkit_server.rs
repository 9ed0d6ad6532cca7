//! The fixture server answers every route as documented and records what it served.

use std::time::{Duration, Instant};

use tidepool::testkit::{get_once, FixtureServer, HttpConnection};

#[tokio::test]
async fn routes_answer_as_documented_and_every_request_is_recorded() {
    let server = FixtureServer::start().await.unwrap();
    let addr = server.addr();
    let mut c = HttpConnection::open(addr).await.unwrap();

    let page = c.get("/html/article.html").await.unwrap();
    assert_eq!(page.status, 200);
    assert!(page
        .text()
        .contains("<title>Warm pools for cold starts</title>"));
    assert_eq!(c.get("/html/missing.html").await.unwrap().status, 404);
    assert_eq!(c.get("/html/..%2FCargo.toml").await.unwrap().status, 400);

    let generated = c.get("/page/42").await.unwrap().text();
    assert!(generated.contains("<title>Page 42</title>") && generated.contains("SKU-42"));
    assert_eq!(
        generated,
        c.get("/page/42").await.unwrap().text(),
        "pages are deterministic"
    );

    assert_eq!(c.get("/status/503").await.unwrap().status, 503);
    let cookie = c.get("/set-cookie?name=a&value=b").await.unwrap();
    assert_eq!(cookie.status, 200);
    assert!(cookie.text().contains("a=b"));
    assert_eq!(c.get("/echo-cookies").await.unwrap().text(), "");
    let alloc = c.get("/alloc?mb=3").await.unwrap().text();
    assert!(alloc.contains("i < 3;"), "{alloc}");

    let t = Instant::now();
    assert_eq!(c.get("/slow?ms=120").await.unwrap().text(), "ok");
    assert!(
        t.elapsed() >= Duration::from_millis(120),
        "/slow answered early: {:?}",
        t.elapsed()
    );

    // /count answers how many requests were served before it.
    assert_eq!(c.get("/count").await.unwrap().text(), "10");
    let log = server.requests();
    assert_eq!(log.len(), 11);
    let png = c.get("/asset/pixel.png").await.unwrap();
    assert!(png.body.starts_with(b"\x89PNG\r\n\x1a\n"), "a PNG");
    let script = c.get("/asset/tracker.js").await.unwrap().text();
    assert_eq!(script, "window.__asset_tracker = 1;");
    assert_eq!(c.get("/asset/x.exe").await.unwrap().status, 404);
    assert_eq!(c.get("/asset/a-b.js").await.unwrap().status, 404);
    assert_eq!(log[8].path, "/alloc");
    assert_eq!(log[8].query.as_deref(), Some("mb=3"));
    assert!(log.windows(2).all(|w| w[0].at <= w[1].at));
    server.shutdown().await;
}

#[tokio::test]
async fn a_held_request_is_released_by_shutdown_not_answered_before() {
    let server = FixtureServer::start().await.unwrap();
    let addr = server.addr();
    let held = tokio::spawn(async move { get_once(addr, "/hang").await });
    let early = tokio::time::timeout(Duration::from_millis(300), async {
        while server.requests().is_empty() {
            tokio::task::yield_now().await;
        }
    })
    .await;
    assert!(early.is_ok(), "the server never received /hang");
    assert!(!held.is_finished(), "/hang answered before shutdown");
    let t = Instant::now();
    server.shutdown().await;
    let answer = held.await.unwrap().unwrap();
    assert_eq!(answer.status, 503);
    assert!(
        t.elapsed() < Duration::from_secs(2),
        "shutdown took {:?}",
        t.elapsed()
    );
}
