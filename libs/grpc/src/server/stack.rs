//! The one tower middleware every request goes through: request id, a tracing span joined to
//! the caller's trace, the concurrency limit, the unary timeout and status recording.

use std::collections::HashSet;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use futures::future::BoxFuture;
use http::HeaderValue;
use tokio::sync::Semaphore;
use tonic::Status;
use tonic::body::Body;
use tower::ServiceExt as _;
use tower_layer::Layer;
use tower_service::Service;
use tracing::Instrument as _;

use super::observe::{ObservedBody, Recorder, client_decode_error_is_invalid_argument, status_in};
use crate::context::{REQUEST_ID_HEADER, RequestId, is_valid_request_id};

/// Path prefix of the health service, exempt from the concurrency limit.
const HEALTH_PREFIX: &str = "/grpc.health.v1.Health/";

struct Shared {
    request_timeout: Duration,
    streaming: HashSet<String>,
    permits: Arc<Semaphore>,
}

/// Builds [`RpcService`]s sharing one timeout, one set of streaming paths and one semaphore.
#[derive(Clone)]
pub(crate) struct RpcLayer {
    shared: Arc<Shared>,
}

impl RpcLayer {
    pub(crate) fn new(
        request_timeout: Duration,
        concurrency_limit: usize,
        streaming: HashSet<String>,
    ) -> Self {
        let limit = concurrency_limit.clamp(1, Semaphore::MAX_PERMITS);
        let permits = Arc::new(Semaphore::new(limit));
        crate::metrics::global().set_concurrency(permits.clone(), limit);
        Self {
            shared: Arc::new(Shared {
                request_timeout,
                streaming,
                permits,
            }),
        }
    }
}

impl<S> Layer<S> for RpcLayer {
    type Service = RpcService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RpcService {
            inner,
            shared: self.shared.clone(),
        }
    }
}

/// See the module docs. Always ready: waiting for a concurrency permit happens inside the
/// request's future, under its span and its timeout.
#[derive(Clone)]
pub(crate) struct RpcService<S> {
    inner: S,
    shared: Arc<Shared>,
}

/// `/pkg.Service/Method` -> (`pkg.Service`, `Method`).
fn split_path(path: &str) -> (&str, &str) {
    path.strip_prefix('/')
        .and_then(|p| p.split_once('/'))
        .unwrap_or(("unknown", path))
}

/// The client's valid `x-request-id`, else a new UUID; set on the request headers and
/// extensions so handlers see it either way.
fn assign_request_id<B>(req: &mut http::Request<B>) -> HeaderValue {
    let given = req
        .headers()
        .get(REQUEST_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|id| is_valid_request_id(id))
        .map(str::to_owned);
    let id = given.unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let value = HeaderValue::try_from(id.as_str())
        .unwrap_or_else(|_| HeaderValue::from_static("invalid-request-id"));
    req.headers_mut().insert(REQUEST_ID_HEADER, value.clone());
    req.extensions_mut().insert(RequestId(id));
    value
}

impl<S, B> Service<http::Request<B>> for RpcService<S>
where
    S: Service<http::Request<B>, Response = http::Response<Body>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    B: Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<http::Response<Body>, S::Error>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, mut req: http::Request<B>) -> Self::Future {
        let request_id = assign_request_id(&mut req);
        let path = req.uri().path().to_owned();
        let (service, method) = split_path(&path);
        let span = tracing::info_span!(
            "grpc.server",
            otel.name = %format_args!("{service}/{method}"),
            otel.kind = "server",
            rpc.system = "grpc",
            rpc.service = %service,
            rpc.method = %method,
            request_id = request_id.to_str().unwrap_or_default(),
            rpc.grpc.status_code = tracing::field::Empty,
            otel.status_code = tracing::field::Empty,
        );
        steward_telemetry::set_parent_from_headers(&span, req.headers());

        let timeout =
            (!self.shared.streaming.contains(&path)).then_some(self.shared.request_timeout);
        // Health checks skip the queue so probes answer even under overload.
        let permits = (!path.starts_with(HEALTH_PREFIX)).then(|| self.shared.permits.clone());
        // Take the service that was (trivially) made ready and leave a fresh clone behind.
        let clone = self.inner.clone();
        let inner = std::mem::replace(&mut self.inner, clone);
        let metrics = crate::metrics::global();
        let mut recorder = Recorder::new(
            span.clone(),
            metrics.method(&path, service, method),
            metrics.enter(),
        );

        let future = async move {
            let call = async move {
                let _permit = match permits {
                    // Never closed, so acquiring only waits for a free slot.
                    Some(permits) => match permits.acquire_owned().await {
                        Ok(permit) => Some(permit),
                        Err(_) => return Ok(Status::unavailable("shutting down").into_http()),
                    },
                    None => None,
                };
                inner.oneshot(req).await
            };
            let mut response = match timeout {
                Some(limit) => match tokio::time::timeout(limit, call).await {
                    Ok(response) => response?,
                    Err(_) => Status::deadline_exceeded(format!(
                        "the request took longer than the server's {}s limit",
                        limit.as_secs_f64()
                    ))
                    .into_http(),
                },
                None => call.await?,
            };
            response.headers_mut().insert(REQUEST_ID_HEADER, request_id);
            client_decode_error_is_invalid_argument(response.headers_mut());
            if let Some(code) = status_in(response.headers()) {
                recorder.record(code);
            }
            Ok(response.map(|body| Body::new(ObservedBody::new(body, recorder))))
        };
        Box::pin(future.instrument(span))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_split_into_service_and_method() {
        assert_eq!(
            split_path("/steward.tracking.v1.TrackingService/GetRun"),
            ("steward.tracking.v1.TrackingService", "GetRun")
        );
        assert_eq!(split_path("/weird"), ("unknown", "/weird"));
    }

    #[test]
    fn request_ids_are_kept_or_generated() {
        let mut req = http::Request::new(());
        req.headers_mut()
            .insert(REQUEST_ID_HEADER, HeaderValue::from_static("abc"));
        assert_eq!(assign_request_id(&mut req), "abc");
        assert_eq!(req.extensions().get::<RequestId>().unwrap().0, "abc");

        let mut req = http::Request::new(());
        req.headers_mut()
            .insert(REQUEST_ID_HEADER, HeaderValue::from_static("not valid"));
        let id = assign_request_id(&mut req);
        assert!(uuid::Uuid::parse_str(id.to_str().unwrap()).is_ok());
        assert_eq!(req.headers()[REQUEST_ID_HEADER], id);
    }
}
