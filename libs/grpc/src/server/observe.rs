//! Recording the final gRPC status of an RPC on its span.
//!
//! A unary error comes back "trailers-only" (`grpc-status` in the response headers); every
//! other outcome arrives in the trailers at the end of the response body, so the body is
//! wrapped to see them. The span lives as long as the body, so the exported span covers the
//! whole response stream.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Instant;

use bytes::Bytes;
use http_body::{Frame, SizeHint};
use tonic::body::Body;
use tonic::{Code, Status};
use tracing::Span;

use crate::metrics::{InFlight, MethodStats};

/// Records the status of one RPC on its span and in the process metrics, exactly once.
pub(crate) struct Recorder {
    span: Span,
    start: Instant,
    done: bool,
    stats: Arc<MethodStats>,
    in_flight: Option<InFlight>,
}

impl Recorder {
    pub(crate) fn new(span: Span, stats: Arc<MethodStats>, in_flight: InFlight) -> Self {
        Self {
            span,
            start: Instant::now(),
            done: false,
            stats,
            in_flight: Some(in_flight),
        }
    }

    pub(crate) fn record(&mut self, code: Code) {
        if std::mem::replace(&mut self.done, true) {
            return;
        }
        self.span.record("rpc.grpc.status_code", code as i32);
        if is_server_error(code) {
            self.span.record("otel.status_code", "ERROR");
        }
        let elapsed = self.start.elapsed();
        self.stats.observe(code, elapsed);
        self.in_flight = None;
        let elapsed_ms = elapsed.as_secs_f64() * 1e3;
        self.span
            .in_scope(|| tracing::debug!(grpc.code = ?code, elapsed_ms, "rpc finished"));
    }
}

impl Drop for Recorder {
    /// A response dropped before its trailers were sent was cancelled (client gone).
    fn drop(&mut self) {
        self.record(Code::Cancelled);
    }
}

/// The codes OpenTelemetry marks as errors on server spans.
fn is_server_error(code: Code) -> bool {
    matches!(
        code,
        Code::Unknown
            | Code::DeadlineExceeded
            | Code::Unimplemented
            | Code::Internal
            | Code::Unavailable
            | Code::DataLoss
    )
}

/// tonic answers a request message that is not valid protobuf (bytes that are not UTF-8 in a
/// string field, a wrong wire type, a truncated message) with INTERNAL. It is the client's
/// error: this turns it into INVALID_ARGUMENT, keeping prost's message, which names the field
/// (`Experiment.display_name: ... data is not UTF-8 encoded`).
pub(crate) fn client_decode_error_is_invalid_argument(map: &mut http::HeaderMap) {
    const DECODE: &[u8] = b"failed%20to%20decode%20Protobuf%20message";
    let internal = map
        .get("grpc-status")
        .is_some_and(|v| v.as_bytes() == b"13");
    let decode = map.get("grpc-message").is_some_and(|v| {
        v.as_bytes().starts_with(DECODE)
            || v.as_bytes()
                .starts_with(b"failed to decode Protobuf message")
    });
    if internal && decode {
        map.insert("grpc-status", http::HeaderValue::from_static("3"));
    }
}

/// The `grpc-status` in a header or trailer map.
pub(crate) fn status_in(headers: &http::HeaderMap) -> Option<Code> {
    headers
        .get("grpc-status")
        .map(|v| Code::from_bytes(v.as_bytes()))
}

pin_project_lite::pin_project! {
    /// A response body that records the status it ends with.
    pub(crate) struct ObservedBody {
        #[pin]
        inner: Body,
        recorder: Recorder,
    }
}

impl ObservedBody {
    pub(crate) fn new(inner: Body, recorder: Recorder) -> Self {
        Self { inner, recorder }
    }
}

impl http_body::Body for ObservedBody {
    type Data = Bytes;
    type Error = Status;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Status>>> {
        let this = self.project();
        let mut polled = ready!(this.inner.poll_frame(cx));
        if let Some(Ok(frame)) = &mut polled
            && let Some(trailers) = frame.trailers_mut()
        {
            client_decode_error_is_invalid_argument(trailers);
        }
        match &polled {
            Some(Ok(frame)) => {
                if let Some(code) = frame.trailers_ref().and_then(status_in) {
                    this.recorder.record(code);
                }
            }
            Some(Err(status)) => this.recorder.record(status.code()),
            // A gRPC response that ends without a status is an error on the client side too.
            None => this.recorder.record(Code::Unknown),
        }
        Poll::Ready(polled)
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

    #[test]
    fn undecodable_requests_are_the_clients_error() {
        let mut h = http::HeaderMap::new();
        h.insert("grpc-status", http::HeaderValue::from_static("13"));
        h.insert(
            "grpc-message",
            http::HeaderValue::from_static(
                "failed%20to%20decode%20Protobuf%20message:%20Experiment.display_name",
            ),
        );
        client_decode_error_is_invalid_argument(&mut h);
        assert_eq!(status_in(&h), Some(Code::InvalidArgument));

        // Any other INTERNAL stays INTERNAL.
        let mut h = http::HeaderMap::new();
        h.insert("grpc-status", http::HeaderValue::from_static("13"));
        h.insert(
            "grpc-message",
            http::HeaderValue::from_static("internal%20error"),
        );
        client_decode_error_is_invalid_argument(&mut h);
        assert_eq!(status_in(&h), Some(Code::Internal));
    }
}
