//! The one tower middleware every request goes through: request id, a tracing span joined to
//! the caller's trace, the concurrency limit, the unary timeout and status recording.

use std::collections::{HashMap, HashSet};
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

use super::ServerConfig;
use super::gate::{Gate, GateCall, filter_response, peek_message};
use super::limits::{IdleBody, RateLimiter, RequestBody, remote_ip};
use super::observe::{ObservedBody, Recorder, client_decode_error_is_invalid_argument, status_in};
use crate::context::{ACTOR_HEADER, REQUEST_ID_HEADER, RequestId, is_valid_request_id};

/// Path prefix of the health service, exempt from the concurrency limit.
const HEALTH_PREFIX: &str = "/grpc.health.v1.Health/";

struct Shared {
    request_timeout: Duration,
    streaming: HashSet<String>,
    permits: Arc<Semaphore>,
    gate: Option<Arc<dyn Gate>>,
    max_message_bytes: usize,
    limiter: Option<Arc<RateLimiter>>,
    stream_idle_timeout: Duration,
    default_request_bytes: usize,
    /// Per method: its request size limit and, if it has one, its own concurrency permits.
    methods: HashMap<String, (usize, Option<Arc<Semaphore>>)>,
}

/// Builds [`RpcService`]s sharing one timeout, one set of streaming paths and one semaphore.
#[derive(Clone)]
pub(crate) struct RpcLayer {
    shared: Arc<Shared>,
}

impl RpcLayer {
    pub(crate) fn new(
        cfg: &ServerConfig,
        streaming: HashSet<String>,
        gate: Option<Arc<dyn Gate>>,
    ) -> Self {
        let max_message_bytes = cfg.max_message_bytes;
        let limit = cfg.concurrency_limit.clamp(1, Semaphore::MAX_PERMITS);
        let permits = Arc::new(Semaphore::new(limit));
        crate::metrics::global().set_concurrency(permits.clone(), limit);
        Self {
            shared: Arc::new(Shared {
                request_timeout: cfg.request_timeout,
                streaming,
                permits,
                gate,
                max_message_bytes,
                limiter: cfg.rate_limit.map(|l| Arc::new(RateLimiter::new(l))),
                stream_idle_timeout: cfg.stream_idle_timeout,
                default_request_bytes: cfg
                    .default_request_bytes
                    .unwrap_or(max_message_bytes)
                    .min(max_message_bytes),
                methods: cfg
                    .method_limits
                    .iter()
                    .map(|(path, l)| {
                        let permits = l
                            .max_in_flight
                            .map(|n| Arc::new(Semaphore::new(n.clamp(1, Semaphore::MAX_PERMITS))));
                        (
                            path.clone(),
                            (l.max_request_bytes.min(max_message_bytes), permits),
                        )
                    })
                    .collect(),
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

impl<S> Service<http::Request<Body>> for RpcService<S>
where
    S: Service<http::Request<Body>, Response = http::Response<Body>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<http::Response<Body>, S::Error>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, mut req: http::Request<Body>) -> Self::Future {
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
        // Health checks skip the queue and the gate so probes answer even under overload.
        let health = path.starts_with(HEALTH_PREFIX);
        let permits = (!health).then(|| self.shared.permits.clone());
        let gate = if health {
            None
        } else {
            self.shared.gate.clone()
        };
        let (max_message_bytes, first_message_wait) =
            (self.shared.max_message_bytes, self.shared.request_timeout);
        let limiter = if health {
            None
        } else {
            self.shared.limiter.clone()
        };
        let (request_bytes, method_permits) = match self.shared.methods.get(&path) {
            Some((bytes, permits)) => (*bytes, permits.clone()),
            None => (self.shared.default_request_bytes, None),
        };
        let limit = (request_bytes < max_message_bytes && !health).then_some(request_bytes);
        req = req.map(|b| Body::new(RequestBody::new(b, limit)));
        // Streams end when the client goes silent (unary calls have the timeout).
        let idle = self
            .shared
            .streaming
            .contains(&path)
            .then_some(self.shared.stream_idle_timeout);
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
                let mut filter = None;
                let mut need_message = false;
                let mut principal = None;
                let mut unlimited = false;
                if let Some(gate) = &gate {
                    match admit(&**gate, &mut req, None).await {
                        Ok(a) => {
                            (filter, need_message, principal, unlimited) =
                                (a.filter, a.need_message, a.actor, a.unlimited)
                        }
                        Err(status) => return Ok(status.into_http()),
                    }
                }
                if let (Some(limiter), false) = (&limiter, unlimited) {
                    // The authenticated principal, else the client's address (never a name
                    // the client chose).
                    let who = principal
                        .map(|p| format!("principal:{p}"))
                        .or_else(|| remote_ip(&req).map(|ip| format!("ip:{ip}")))
                        .unwrap_or_default();
                    if let Err(wait) = limiter.check(&who, req.uri().path()) {
                        return Ok(rate_limited(wait).into_http());
                    }
                }
                // A method's own slots first, so waiting for one holds no server-wide slot.
                let _method_permit = match method_permits {
                    Some(permits) => match permits.acquire_owned().await {
                        Ok(permit) => Some(permit),
                        Err(_) => return Ok(Status::unavailable("shutting down").into_http()),
                    },
                    None => None,
                };
                let _permit = match permits {
                    // Never closed, so acquiring only waits for a free slot.
                    Some(permits) => match permits.acquire_owned().await {
                        Ok(permit) => Some(permit),
                        Err(_) => return Ok(Status::unavailable("shutting down").into_http()),
                    },
                    None => None,
                };
                if let (Some(gate), true) = (&gate, need_message) {
                    let wait = (request_bytes, first_message_wait);
                    match admit(&**gate, &mut req, Some(wait)).await {
                        Ok(a) => filter = a.filter,
                        Err(status) => return Ok(status.into_http()),
                    }
                }
                if let Some(idle) = idle {
                    req = req.map(|b| Body::new(IdleBody::new(b, idle)));
                }
                let response = inner.oneshot(req).await?;
                Ok(match filter {
                    Some(f) => filter_response(response, f).await,
                    None => response,
                })
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

/// One pass of `gate` over `req`: the first (headers only) when `read` is `None`, else the
/// second, reading the first message (at most `read.0` bytes, waiting at most `read.1`).
/// Puts the admitted principal in the actor header.
async fn admit(
    gate: &dyn Gate,
    req: &mut http::Request<Body>,
    read: Option<(usize, Duration)>,
) -> Result<super::gate::Admission, Status> {
    let path = req.uri().path().to_owned();
    let message = match read {
        Some((max_bytes, wait)) => {
            let body = std::mem::take(req.body_mut());
            let (message, body) = peek_message(body, max_bytes, wait).await?;
            *req.body_mut() = body;
            message
        }
        None => None,
    };
    let admission = gate
        .admit(GateCall {
            path: &path,
            headers: req.headers(),
            message: message.as_deref(),
            with_message: read.is_some(),
        })
        .await?;
    if read.is_some() && admission.need_message {
        return Err(Status::internal(
            "the gate asked for the request message twice",
        ));
    }
    if let Some(actor) = &admission.actor {
        let value = HeaderValue::from_bytes(actor.as_bytes())
            .map_err(|_| Status::internal("principal is not a valid header value"))?;
        req.headers_mut().insert(ACTOR_HEADER, value);
    }
    Ok(admission)
}

/// `RESOURCE_EXHAUSTED` (`RATE_LIMITED`) with a `google.rpc.RetryInfo` of `wait`.
fn rate_limited(wait: Duration) -> Status {
    use tonic_types::{ErrorDetails, StatusExt as _};
    let wait = wait.max(Duration::from_millis(1));
    let mut details = ErrorDetails::with_retry_info(Some(wait));
    details.set_error_info(
        "RATE_LIMITED",
        crate::ERROR_DOMAIN,
        std::collections::HashMap::new(),
    );
    Status::with_error_details(
        tonic::Code::ResourceExhausted,
        format!(
            "too many requests to this method; retry in {} ms",
            wait.as_millis().max(1)
        ),
        details,
    )
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
