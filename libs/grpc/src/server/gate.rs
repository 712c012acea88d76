//! The gate: authentication and authorization hooked into the server stack.
//!
//! The stack owns the mechanics (reading the first request message without consuming it,
//! replacing the caller header, rewriting a unary response); a [`Gate`] decides. Steward's gate
//! lives in `steward-auth`.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use futures::future::BoxFuture;
use http::HeaderMap;
use http_body::{Body as HttpBody, Frame, SizeHint};
use http_body_util::BodyExt as _;
use tonic::Status;
use tonic::body::Body;

/// What a [`Gate`] sees of a call (its `Debug` leaves the headers out: they hold credentials).
pub struct GateCall<'a> {
    /// `/package.Service/Method`.
    pub path: &'a str,
    /// Request headers (gRPC metadata), `authorization` included.
    pub headers: &'a HeaderMap,
    /// The first request message (protobuf, without the gRPC frame header): `None` on the
    /// first pass; on the second pass (after [`Admission::need_message`]) the message, or
    /// `None` when the client sent none.
    pub message: Option<&'a [u8]>,
    /// Whether this is the second pass.
    pub with_message: bool,
}

impl std::fmt::Debug for GateCall<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GateCall")
            .field("path", &self.path)
            .field("message_bytes", &self.message.map(<[u8]>::len))
            .field("with_message", &self.with_message)
            .finish_non_exhaustive()
    }
}

/// Rewrites a unary response message (protobuf bytes in, protobuf bytes out), e.g. to drop
/// list items the caller may not read.
pub type ResponseFilter = Box<dyn FnOnce(Bytes) -> Result<Bytes, Status> + Send>;

/// A call the gate let through (so far).
#[derive(Default)]
pub struct Admission {
    /// The authenticated principal: becomes the call's `x-steward-actor` (a value the client
    /// sent is replaced) and the key of its rate limit. `None` leaves the header as the client
    /// sent it (open local mode).
    pub actor: Option<String>,
    /// Applied to the response message of a successful unary call.
    pub filter: Option<ResponseFilter>,
    /// The caller is authenticated but the decision needs the first request message: the
    /// stack reads it (once the call holds a concurrency slot, so only admitted callers make
    /// the server buffer anything) and asks again with it.
    pub need_message: bool,
    /// Exempt from rate limits (services calling each other).
    pub unlimited: bool,
}

impl std::fmt::Debug for Admission {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Admission")
            .field("actor", &self.actor)
            .field("filter", &self.filter.is_some())
            .field("need_message", &self.need_message)
            .field("unlimited", &self.unlimited)
            .finish()
    }
}

/// Decides whether a call may proceed. Every call except health checks passes the gate: first
/// with the headers alone, and again with the first request message when the first answer
/// asked for it.
pub trait Gate: Send + Sync + 'static {
    /// Admits the call, or refuses it with the status to answer (`UNAUTHENTICATED`,
    /// `PERMISSION_DENIED`, ...).
    fn admit<'a>(&'a self, call: GateCall<'a>) -> BoxFuture<'a, Result<Admission, Status>>;
}

/// Reads the first gRPC message of `body` (waiting at most `wait`), returning it and a body
/// that yields everything read and then the rest. `Ok((None, body))` when the stream ends
/// before a whole message.
///
/// # Errors
/// `RESOURCE_EXHAUSTED` for a message over `max_bytes`, `DEADLINE_EXCEEDED` when the client
/// sends nothing for `wait`, `UNIMPLEMENTED` for a compressed message (the servers accept none),
/// `CANCELLED` when the client's stream fails.
pub(crate) async fn peek_message(
    mut body: Body,
    max_bytes: usize,
    wait: Duration,
) -> Result<(Option<Bytes>, Body), Status> {
    let mut buf = BytesMut::new();
    let mut ended = false;
    let read = async {
        loop {
            if let Some(total) = frame_len(&buf, max_bytes)?
                && buf.len() >= total
            {
                return Ok::<_, Status>(());
            }
            match body.frame().await {
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        buf.extend_from_slice(&data);
                    }
                }
                Some(Err(status)) => return Err(status),
                None => {
                    ended = true;
                    return Ok(());
                }
            }
        }
    };
    match tokio::time::timeout(wait, read).await {
        Ok(result) => result?,
        Err(_) => {
            return Err(Status::deadline_exceeded(format!(
                "no request message within {}s",
                wait.as_secs_f64()
            )));
        }
    }
    let buffered = buf.freeze();
    let message = match frame_len(&buffered, max_bytes)? {
        Some(total) if buffered.len() >= total => {
            if buffered[0] != 0 {
                return Err(Status::unimplemented(
                    "compressed requests are not accepted (grpc-encoding)",
                ));
            }
            Some(buffered.slice(5..total))
        }
        _ => None,
    };
    let rest = if ended { None } else { Some(body) };
    Ok((message, Body::new(Prefixed::new(buffered, rest))))
}

/// Total length (header included) of the frame at the start of `buf`, once its header is in.
fn frame_len(buf: &[u8], max_bytes: usize) -> Result<Option<usize>, Status> {
    if buf.len() < 5 {
        return Ok(None);
    }
    let len = u32::from_be_bytes([buf[1], buf[2], buf[3], buf[4]]) as usize;
    if len > max_bytes {
        return Err(Status::resource_exhausted(format!(
            "request message of {len} bytes is over the {max_bytes}-byte limit"
        )));
    }
    Ok(Some(5 + len))
}

/// Applies `filter` to the single message of a successful unary response, keeping headers and
/// trailers. Responses with another status are passed through unchanged.
pub(crate) async fn filter_response(
    response: http::Response<Body>,
    filter: ResponseFilter,
) -> http::Response<Body> {
    let (parts, body) = response.into_parts();
    let collected = match body.collect().await {
        Ok(c) => c,
        Err(_) => return Status::internal("response stream failed").into_http(),
    };
    let trailers = collected.trailers().cloned();
    let ok = trailers
        .as_ref()
        .or(Some(&parts.headers))
        .and_then(|h| h.get("grpc-status"))
        .is_some_and(|v| v.as_bytes() == b"0");
    let mut data = collected.to_bytes();
    if !data.is_empty() {
        let one_message = data.len() >= 5
            && data[0] == 0
            && data.len() == 5 + u32::from_be_bytes([data[1], data[2], data[3], data[4]]) as usize;
        if !(ok && one_message) {
            // Never pass on data that could not be filtered.
            return Status::internal("unexpected response framing").into_http();
        }
        data.advance(5);
        match filter(data) {
            Ok(message) => data = frame(&message),
            Err(status) => return status.into_http(),
        }
    }
    let frames = [Some(Frame::data(data)), trailers.map(Frame::trailers)];
    let body = http_body_util::StreamBody::new(futures::stream::iter(
        frames.into_iter().flatten().map(Ok::<_, Status>),
    ));
    http::Response::from_parts(parts, Body::new(body))
}

fn frame(message: &[u8]) -> Bytes {
    let mut out = BytesMut::with_capacity(5 + message.len());
    out.extend_from_slice(&[0]);
    out.extend_from_slice(&(message.len() as u32).to_be_bytes());
    out.extend_from_slice(message);
    out.freeze()
}

/// A body that yields `prefix`, then the frames of `rest`.
struct Prefixed {
    prefix: Option<Bytes>,
    rest: Option<Body>,
}

impl Prefixed {
    fn new(prefix: Bytes, rest: Option<Body>) -> Self {
        Self {
            prefix: (!prefix.is_empty()).then_some(prefix),
            rest,
        }
    }
}

impl HttpBody for Prefixed {
    type Data = Bytes;
    type Error = Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Status>>> {
        if let Some(prefix) = self.prefix.take() {
            return Poll::Ready(Some(Ok(Frame::data(prefix))));
        }
        match self.rest.as_mut() {
            Some(rest) => Pin::new(rest).poll_frame(cx),
            None => Poll::Ready(None),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.prefix.is_none() && self.rest.as_ref().is_none_or(|r| r.is_end_stream())
    }

    fn size_hint(&self) -> SizeHint {
        let mut hint = self
            .rest
            .as_ref()
            .map(|r| r.size_hint())
            .unwrap_or_else(|| SizeHint::with_exact(0));
        let extra = self.prefix.as_ref().map_or(0, |p| p.len() as u64);
        hint.set_lower(hint.lower() + extra);
        if let Some(upper) = hint.upper() {
            hint.set_upper(upper + extra);
        }
        hint
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body_of(chunks: Vec<&'static [u8]>) -> Body {
        let frames = chunks
            .into_iter()
            .map(|c| Ok::<_, Status>(Frame::data(Bytes::from_static(c))));
        Body::new(http_body_util::StreamBody::new(futures::stream::iter(
            frames,
        )))
    }

    async fn all(body: Body) -> Vec<u8> {
        body.collect().await.unwrap().to_bytes().to_vec()
    }

    #[tokio::test]
    async fn the_first_message_is_read_and_every_byte_is_passed_on() {
        // Two messages, split across frames at awkward places.
        let chunks: Vec<&'static [u8]> = vec![b"\0\0\0", b"\0\x03ab", b"c\0\0\0\0\x01z"];
        let (msg, body) = peek_message(body_of(chunks), 1024, Duration::from_secs(1))
            .await
            .unwrap();
        assert_eq!(msg.as_deref(), Some(&b"abc"[..]));
        assert_eq!(all(body).await, b"\0\0\0\0\x03abc\0\0\0\0\x01z");
    }

    #[tokio::test]
    async fn short_empty_oversized_and_compressed_streams() {
        let (msg, body) = peek_message(body_of(vec![b"\0\0\0"]), 1024, Duration::from_secs(1))
            .await
            .unwrap();
        assert!(msg.is_none());
        assert_eq!(all(body).await, b"\0\0\0");
        let (msg, _) = peek_message(body_of(vec![]), 1024, Duration::from_secs(1))
            .await
            .unwrap();
        assert!(msg.is_none());
        let err = peek_message(body_of(vec![b"\0\0\x10\0\0"]), 1024, Duration::from_secs(1))
            .await
            .unwrap_err();
        assert_eq!(err.code(), tonic::Code::ResourceExhausted);
        let err = peek_message(
            body_of(vec![b"\x01\0\0\0\x01x"]),
            1024,
            Duration::from_secs(1),
        )
        .await
        .unwrap_err();
        assert_eq!(err.code(), tonic::Code::Unimplemented);
    }

    #[tokio::test]
    async fn a_silent_client_times_out() {
        let never = Body::new(http_body_util::StreamBody::new(futures::stream::pending::<
            Result<Frame<Bytes>, Status>,
        >()));
        let err = peek_message(never, 1024, Duration::from_millis(50))
            .await
            .unwrap_err();
        assert_eq!(err.code(), tonic::Code::DeadlineExceeded);
    }
}
