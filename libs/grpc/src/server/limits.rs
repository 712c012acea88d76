//! Per-caller request rate limits and the idle timeout of client streams.

use std::collections::HashMap;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::Mutex;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body::{Body as HttpBody, Frame, SizeHint};
use tonic::Status;
use tonic::body::Body;
use tonic::transport::server::{TcpConnectInfo, TlsConnectInfo};

/// A request rate per caller and method: `per_second` sustained, `burst` at once.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateLimit {
    /// Requests per second, sustained.
    pub per_second: f64,
    /// Requests allowed at once after a quiet period (at least 1).
    pub burst: u32,
}

/// Callers tracked at most; idle buckets (full again) are dropped first.
const MAX_BUCKETS: usize = 100_000;

/// Token buckets per (caller, method).
pub(crate) struct RateLimiter {
    limit: RateLimit,
    buckets: Mutex<HashMap<String, (f64, Instant)>>,
}

impl RateLimiter {
    pub(crate) fn new(limit: RateLimit) -> Self {
        Self {
            limit,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes a token for `who` calling `path`, or says how long until one is free.
    pub(crate) fn check(&self, who: &str, path: &str) -> Result<(), Duration> {
        let (rate, burst) = (self.limit.per_second, f64::from(self.limit.burst.max(1)));
        let now = Instant::now();
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        if buckets.len() >= MAX_BUCKETS {
            let refill = Duration::from_secs_f64(burst / rate);
            buckets.retain(|_, (_, at)| now.duration_since(*at) < refill);
            if buckets.len() >= MAX_BUCKETS {
                buckets.clear();
            }
        }
        let key = format!("{who}\n{path}");
        let (tokens, at) = buckets.entry(key).or_insert((burst, now));
        let available = (*tokens + now.duration_since(*at).as_secs_f64() * rate).min(burst);
        *at = now;
        if available >= 1.0 {
            *tokens = available - 1.0;
            Ok(())
        } else {
            *tokens = available;
            Err(Duration::from_secs_f64((1.0 - available) / rate))
        }
    }
}

/// The client's IP address, from the connection (plain or TLS).
pub(crate) fn remote_ip<B>(req: &http::Request<B>) -> Option<IpAddr> {
    let ext = req.extensions();
    ext.get::<TcpConnectInfo>()
        .and_then(TcpConnectInfo::remote_addr)
        .or_else(|| {
            ext.get::<TlsConnectInfo<TcpConnectInfo>>()
                .and_then(|t| t.get_ref().remote_addr())
        })
        .map(|a| a.ip())
}

/// A request body that fails with `DEADLINE_EXCEEDED` when the client sends nothing for
/// `idle` (a stalled or abandoned client stream frees its handler).
/// The clock starts when the handler asks for data that is not there, so the handler's own
/// work between messages is never counted as the client's silence.
pub(crate) struct IdleBody {
    inner: Body,
    idle: Duration,
    timer: Pin<Box<tokio::time::Sleep>>,
    /// Whether `timer` runs for the current wait.
    armed: bool,
}

impl IdleBody {
    pub(crate) fn new(inner: Body, idle: Duration) -> Self {
        Self {
            inner,
            idle,
            timer: Box::pin(tokio::time::sleep(idle)),
            armed: false,
        }
    }
}

impl HttpBody for IdleBody {
    type Data = Bytes;
    type Error = Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Status>>> {
        match Pin::new(&mut self.inner).poll_frame(cx) {
            Poll::Ready(frame) => {
                self.armed = false;
                Poll::Ready(frame)
            }
            Poll::Pending => {
                if !self.armed {
                    let deadline = tokio::time::Instant::now() + self.idle;
                    self.timer.as_mut().reset(deadline);
                    self.armed = true;
                }
                match self.timer.as_mut().poll(cx) {
                    Poll::Ready(()) => Poll::Ready(Some(Err(Status::deadline_exceeded(format!(
                        "the client sent nothing for {}s",
                        self.idle.as_secs_f64()
                    ))))),
                    Poll::Pending => Poll::Pending,
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt as _;

    #[test]
    fn buckets_allow_a_burst_then_the_rate() {
        let l = RateLimiter::new(RateLimit {
            per_second: 10.0,
            burst: 3,
        });
        for _ in 0..3 {
            l.check("alice", "/a").unwrap();
        }
        let wait = l.check("alice", "/a").unwrap_err();
        assert!(
            wait > Duration::ZERO && wait <= Duration::from_millis(100),
            "{wait:?}"
        );
        // Other callers and other methods have their own buckets.
        l.check("bob", "/a").unwrap();
        l.check("alice", "/b").unwrap();
        std::thread::sleep(Duration::from_millis(120));
        l.check("alice", "/a").expect("a token came back");
    }

    #[tokio::test]
    async fn a_silent_stream_fails_and_a_talking_one_does_not() {
        let (tx, rx) = tokio::sync::mpsc::channel::<Result<Frame<Bytes>, Status>>(4);
        let body = Body::new(http_body_util::StreamBody::new(
            tokio_stream::wrappers::ReceiverStream::new(rx),
        ));
        let mut body = IdleBody::new(body, Duration::from_millis(200));
        for _ in 0..3 {
            tokio::time::sleep(Duration::from_millis(100)).await;
            tx.send(Ok(Frame::data(Bytes::from_static(b"x"))))
                .await
                .unwrap();
            assert!(body.frame().await.unwrap().is_ok());
        }
        let err = body.frame().await.unwrap().unwrap_err();
        assert_eq!(err.code(), tonic::Code::DeadlineExceeded);
    }
}

/// Limits of one method, beyond the server-wide ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MethodLimit {
    /// Largest request message (each message of a client stream), bytes.
    pub max_request_bytes: usize,
    /// Most calls of this method handled at once; more wait (before taking a server-wide
    /// slot). `None`: only the server-wide limit.
    pub max_in_flight: Option<usize>,
}

/// Every request body, as the stack hands it on:
/// - without trailers: gRPC clients send none, and tonic would copy request trailers into the
///   metadata handlers read, over the headers the stack set (the caller's principal), so
///   dropping them keeps the authenticated identity the only one;
/// - with a size limit (`max`): fails with `RESOURCE_EXHAUSTED` as soon as a gRPC message
///   header announces more than `max` bytes, before the message is buffered.
pub(crate) struct RequestBody {
    inner: Body,
    max: Option<usize>,
    /// Header bytes seen of the current frame (0..5), and the header itself.
    header: [u8; 5],
    header_len: usize,
    /// Payload bytes of the current frame still to come.
    remaining: usize,
}

impl RequestBody {
    pub(crate) fn new(inner: Body, max: Option<usize>) -> Self {
        Self {
            inner,
            max,
            header: [0; 5],
            header_len: 0,
            remaining: 0,
        }
    }

    /// Walks `data` through the frame headers; the declared length of a frame over the limit.
    fn scan(&mut self, mut data: &[u8], max: usize) -> Option<usize> {
        while !data.is_empty() {
            if self.remaining > 0 {
                let n = self.remaining.min(data.len());
                self.remaining -= n;
                data = &data[n..];
                continue;
            }
            let n = (5 - self.header_len).min(data.len());
            self.header[self.header_len..self.header_len + n].copy_from_slice(&data[..n]);
            self.header_len += n;
            data = &data[n..];
            if self.header_len == 5 {
                let h = self.header;
                let len = u32::from_be_bytes([h[1], h[2], h[3], h[4]]) as usize;
                if len > max {
                    return Some(len);
                }
                self.remaining = len;
                self.header_len = 0;
            }
        }
        None
    }
}

impl HttpBody for RequestBody {
    type Data = Bytes;
    type Error = Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Status>>> {
        loop {
            let frame = match Pin::new(&mut self.inner).poll_frame(cx) {
                Poll::Ready(Some(Ok(frame))) => frame,
                other => return other,
            };
            if frame.is_trailers() {
                continue;
            }
            if let (Some(max), Some(data)) = (self.max, frame.data_ref()) {
                let data = data.clone();
                if let Some(len) = self.scan(&data, max) {
                    return Poll::Ready(Some(Err(Status::resource_exhausted(format!(
                        "a request message of {len} bytes is over this method's {max}-byte limit"
                    )))));
                }
            }
            return Poll::Ready(Some(Ok(frame)));
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod trailer_tests {
    use super::*;
    use http_body_util::BodyExt as _;

    #[tokio::test]
    async fn request_trailers_never_reach_the_handler() {
        let mut trailers = http::HeaderMap::new();
        trailers.insert(
            "x-steward-actor",
            http::HeaderValue::from_static("someone-else"),
        );
        let frames = vec![
            Ok::<_, Status>(Frame::data(Bytes::from_static(b"abc"))),
            Ok(Frame::trailers(trailers)),
        ];
        let body = Body::new(http_body_util::StreamBody::new(futures::stream::iter(
            frames,
        )));
        let collected = RequestBody::new(body, None).collect().await.unwrap();
        assert!(collected.trailers().is_none());
        assert_eq!(collected.to_bytes().as_ref(), b"abc");
    }
}

#[cfg(test)]
mod frame_tests {
    use super::*;
    use http_body_util::BodyExt as _;

    fn body(chunks: Vec<Vec<u8>>) -> Body {
        Body::new(http_body_util::StreamBody::new(futures::stream::iter(
            chunks
                .into_iter()
                .map(|c| Ok::<_, Status>(Frame::data(Bytes::from(c)))),
        )))
    }

    fn frame(len: u32) -> Vec<u8> {
        let mut f = vec![0];
        f.extend_from_slice(&len.to_be_bytes());
        f.extend(std::iter::repeat_n(7u8, len as usize));
        f
    }

    #[tokio::test]
    async fn messages_within_the_limit_pass_unchanged_however_they_are_split() {
        let mut all = frame(10);
        all.extend(frame(0));
        all.extend(frame(10));
        // Split at every awkward place: one byte per chunk.
        let chunks: Vec<Vec<u8>> = all.iter().map(|b| vec![*b]).collect();
        let out = RequestBody::new(body(chunks), Some(10))
            .collect()
            .await
            .unwrap();
        assert_eq!(out.to_bytes().to_vec(), all);
    }

    #[tokio::test]
    async fn a_message_over_the_limit_fails_at_its_header() {
        let mut all = frame(3);
        all.extend_from_slice(&[0, 0, 0x10, 0, 0]); // announces 1 MiB, sends nothing more
        let err = RequestBody::new(body(vec![all]), Some(1024))
            .collect()
            .await
            .unwrap_err();
        assert_eq!(err.code(), tonic::Code::ResourceExhausted);
        assert!(err.message().contains("1048576 bytes"), "{err:?}");
    }
}
