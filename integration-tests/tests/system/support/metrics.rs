//! Scraping a binary's Prometheus endpoint (`STEWARD_METRICS_LISTEN`) over plain HTTP/1.1.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

/// `(status code, body)` of `METHOD path` on `addr`.
pub async fn http(addr: SocketAddr, method: &str, path: &str) -> (u16, String) {
    let exchange = async {
        let mut s = tokio::net::TcpStream::connect(addr)
            .await
            .expect("connect to the metrics port");
        s.write_all(
            format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n")
                .as_bytes(),
        )
        .await
        .expect("write the request");
        let mut raw = Vec::new();
        s.read_to_end(&mut raw).await.expect("read the response");
        String::from_utf8(raw).expect("a UTF-8 response")
    };
    let text = tokio::time::timeout(Duration::from_secs(10), exchange)
        .await
        .expect("the metrics endpoint answers within 10 s");
    let (head, body) = text
        .split_once("\r\n\r\n")
        .expect("a header/body separator");
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {head:?}"));
    (status, body.to_string())
}

/// The metrics text of the endpoint at `addr`, asserting `200 OK`.
pub async fn scrape(addr: SocketAddr) -> String {
    let (status, body) = http(addr, "GET", "/metrics").await;
    assert_eq!(status, 200, "{body}");
    body
}

/// The value of the sample `name{labels}` exactly as written (labels in the order the server
/// writes them), if present.
pub fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|l| {
        let (s, v) = l.rsplit_once(' ')?;
        (s == series).then(|| v.parse().expect("a numeric sample"))
    })
}
