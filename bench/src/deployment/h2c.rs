//! The load generator's gRPC client: unary calls over one HTTP/2 connection driven directly by
//! the `h2` crate (the HTTP/2 implementation under hyper and tonic).
//!
//! The load runs on the same cores as the server it measures, so what the client spends per
//! call is taken from the server. tonic's `Channel` hands every call to a buffer task and back
//! (about 30 µs of CPU per call on the reference machine); this client sends the request
//! straight on the connection and reads the answer in the calling task, and still speaks
//! plain gRPC: `application/grpc`, length-prefixed protobuf messages, `grpc-status` in the
//! trailers (or trailers-only for an error), which it checks on every call.

use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use bytes::{BufMut, Bytes, BytesMut};
use http::header::{CONTENT_TYPE, TE};
use http::uri::{Authority, PathAndQuery, Scheme};
use http::{HeaderMap, Method, Request, Uri};
use prost::Message;

/// Longest any single call may take.
const RPC_TIMEOUT: Duration = Duration::from_secs(60);

/// One HTTP/2 connection (cleartext, `http://` URLs); clones share it.
#[derive(Clone)]
pub struct H2Conn {
    send: h2::client::SendRequest<Bytes>,
    authority: Authority,
}

impl H2Conn {
    /// Connects to `url` (`http://host:port`).
    pub async fn connect(url: &str) -> Result<Self> {
        let uri: Uri = url.parse().with_context(|| format!("{url} is not a URL"))?;
        ensure!(
            uri.scheme() == Some(&Scheme::HTTP),
            "the load client speaks cleartext HTTP/2 only; {url} is not http://"
        );
        let authority = uri
            .authority()
            .with_context(|| format!("{url} has no host"))?
            .clone();
        let port = authority.port_u16().unwrap_or(80);
        let tcp = tokio::time::timeout(
            Duration::from_secs(5),
            // `[::1]` -> `::1`.
            tokio::net::TcpStream::connect((
                authority
                    .host()
                    .trim_start_matches('[')
                    .trim_end_matches(']'),
                port,
            )),
        )
        .await
        .with_context(|| format!("connecting to {url}: timed out"))?
        .with_context(|| format!("connecting to {url}"))?;
        tcp.set_nodelay(true)?;
        let (send, conn) = h2::client::Builder::new()
            .initial_window_size(1 << 20)
            .initial_connection_window_size(1 << 24)
            .handshake::<_, Bytes>(tcp)
            .await
            .with_context(|| format!("HTTP/2 handshake with {url}"))?;
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                eprintln!("  load connection closed: {e}");
            }
        });
        Ok(Self { send, authority })
    }

    /// `n` connections to `url`.
    pub async fn many(url: &str, n: usize) -> Result<Vec<Self>> {
        let mut v = Vec::with_capacity(n);
        for _ in 0..n {
            v.push(Self::connect(url).await?);
        }
        Ok(v)
    }

    /// Calls the unary method `path` (`/package.Service/Method`) with `req`.
    pub async fn unary<Q: Message, A: Message + Default>(
        &self,
        path: &'static str,
        req: &Q,
    ) -> Result<A> {
        tokio::time::timeout(RPC_TIMEOUT, self.call(path, req))
            .await
            .with_context(|| format!("{path}: no answer in {RPC_TIMEOUT:?}"))?
    }

    async fn call<Q: Message, A: Message + Default>(
        &self,
        path: &'static str,
        req: &Q,
    ) -> Result<A> {
        let request = Request::builder()
            .method(Method::POST)
            .uri(
                Uri::builder()
                    .scheme(Scheme::HTTP)
                    .authority(self.authority.clone())
                    .path_and_query(PathAndQuery::from_static(path))
                    .build()?,
            )
            .header(CONTENT_TYPE, "application/grpc")
            .header(TE, "trailers")
            .body(())?;
        let mut send = self
            .send
            .clone()
            .ready()
            .await
            .context("the connection is gone")?;
        let (answer, mut stream) = send.send_request(request, false)?;
        stream.send_data(frame(req)?, true)?;
        let (head, mut body) = answer.await?.into_parts();
        ensure!(
            head.status == http::StatusCode::OK,
            "{path}: HTTP status {}",
            head.status
        );
        if head.headers.contains_key("grpc-status") {
            // Trailers-only: an error (or an empty answer, which no method here gives).
            check_status(path, &head.headers)?;
            bail!("{path}: answered without a message");
        }
        let mut data = BytesMut::new();
        while let Some(chunk) = body.data().await {
            let chunk = chunk?;
            let _ = body.flow_control().release_capacity(chunk.len());
            data.extend_from_slice(&chunk);
        }
        let trailers = body
            .trailers()
            .await?
            .with_context(|| format!("{path}: answer without trailers"))?;
        check_status(path, &trailers)?;
        unframe(path, &data)
    }
}

/// `req` as one uncompressed gRPC message: flag 0, length (big-endian u32), protobuf.
fn frame<Q: Message>(req: &Q) -> Result<Bytes> {
    let len = req.encoded_len();
    let mut buf = BytesMut::with_capacity(5 + len);
    buf.put_u8(0);
    buf.put_u32(u32::try_from(len).context("request too large")?);
    req.encode(&mut buf)?;
    Ok(buf.freeze())
}

/// The one message of a unary answer.
fn unframe<A: Message + Default>(path: &str, data: &[u8]) -> Result<A> {
    ensure!(
        data.len() >= 5,
        "{path}: answer shorter than a message header"
    );
    ensure!(
        data[0] == 0,
        "{path}: compressed answer (none was asked for)"
    );
    let len = u32::from_be_bytes([data[1], data[2], data[3], data[4]]) as usize;
    ensure!(
        data.len() == 5 + len,
        "{path}: answer of {} bytes for one message of {len}",
        data.len()
    );
    A::decode(&data[5..]).with_context(|| format!("{path}: undecodable answer"))
}

/// Fails unless `grpc-status` is 0, with the status and message.
fn check_status(path: &str, headers: &HeaderMap) -> Result<()> {
    let code = headers
        .get("grpc-status")
        .and_then(|v| v.to_str().ok())
        .with_context(|| format!("{path}: no grpc-status"))?;
    if code != "0" {
        let message = headers
            .get("grpc-message")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        bail!("{path}: grpc-status {code}: {message}");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use steward_proto::deployment as dpb;

    #[test]
    fn messages_round_trip_through_the_frame() {
        let req = dpb::RouteRequest {
            deployment: "deployments/d".into(),
            routing_key: "user-1".into(),
            request_id: "r-1".into(),
        };
        let f = frame(&req).unwrap();
        assert_eq!(f[0], 0);
        assert_eq!(f.len(), 5 + req.encoded_len());
        let back: dpb::RouteRequest = unframe("/p", &f).unwrap();
        assert_eq!(back, req);
    }

    #[test]
    fn bad_frames_and_statuses_are_errors() {
        let f = frame(&dpb::RouteRequest::default()).unwrap();
        assert!(unframe::<dpb::RouteRequest>("/p", &[0, 0, 0]).is_err());
        let mut compressed = f.to_vec();
        compressed[0] = 1;
        assert!(unframe::<dpb::RouteRequest>("/p", &compressed).is_err());
        let mut extra = f.to_vec();
        extra.push(7);
        assert!(unframe::<dpb::RouteRequest>("/p", &extra).is_err());

        let mut h = HeaderMap::new();
        assert!(check_status("/p", &h).is_err());
        h.insert("grpc-status", "0".parse().unwrap());
        assert!(check_status("/p", &h).is_ok());
        h.insert("grpc-status", "5".parse().unwrap());
        h.insert("grpc-message", "not found".parse().unwrap());
        let e = check_status("/p", &h).unwrap_err().to_string();
        assert!(e.contains('5') && e.contains("not found"), "{e}");
    }
}
