//! A tiny hand-written gRPC service to put behind `GrpcServer` in tests. It reuses the
//! `grpc.health.v1` messages so no proto needs compiling: the request's `service` field is the
//! argument, and the handler reports what it saw in response metadata.

use std::convert::Infallible;
use std::task::{Context, Poll};
use std::time::Duration;

use futures::future::BoxFuture;
use steward_common::Error;
use tonic::body::Body;
use tonic::metadata::MetadataValue;
use tonic::server::NamedService;
use tonic::{Request, Response, Status};
use tonic_health::pb::{HealthCheckRequest, HealthCheckResponse};
use tonic_prost::ProstCodec;

pub const NAME: &str = "steward.test.v1.Probe";
/// Sleeps `service` milliseconds, then answers with what the handler saw.
pub const SLEEP: &str = "/steward.test.v1.Probe/Sleep";
/// The same handler, registered as a streaming method (exempt from the unary timeout).
pub const SLEEP_STREAMING: &str = "/steward.test.v1.Probe/SleepStreaming";
/// Fails with an `INVALID_ARGUMENT` built by `steward_grpc::to_status`.
pub const FAIL: &str = "/steward.test.v1.Probe/Fail";

#[derive(Clone, Default)]
pub struct Probe;

impl NamedService for Probe {
    const NAME: &'static str = NAME;
}

fn meta(value: &str) -> MetadataValue<tonic::metadata::Ascii> {
    MetadataValue::try_from(value).unwrap()
}

async fn sleep(req: Request<HealthCheckRequest>) -> Result<Response<HealthCheckResponse>, Status> {
    let millis: u64 = req.get_ref().service.parse().unwrap_or(0);
    tokio::time::sleep(Duration::from_millis(millis)).await;
    let extension = req
        .extensions()
        .get::<steward_grpc::RequestId>()
        .map(|r| r.0.clone());
    let mut resp = Response::new(HealthCheckResponse { status: 1 });
    let md = resp.metadata_mut();
    md.insert("x-seen-actor", meta(&steward_grpc::actor(req.metadata())));
    md.insert(
        "x-seen-request-id",
        meta(&steward_grpc::request_id(req.metadata()).unwrap_or_default()),
    );
    md.insert("x-seen-extension", meta(&extension.unwrap_or_default()));
    md.insert(
        "x-seen-trace-id",
        meta(&steward_telemetry::current_trace_id()),
    );
    let mut outgoing = tonic::metadata::MetadataMap::new();
    steward_telemetry::inject_into_metadata(&mut outgoing);
    if let Some(tp) = outgoing.get("traceparent") {
        md.insert("x-seen-outgoing-traceparent", tp.clone());
    }
    Ok(resp)
}

async fn fail(_req: Request<HealthCheckRequest>) -> Result<Response<HealthCheckResponse>, Status> {
    let e = Error::invalid_field("run.name", "must not be empty").with_metadata("experiment", "e1");
    Err(steward_grpc::to_status(&e))
}

impl tower_service::Service<http::Request<Body>> for Probe {
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<http::Response<Body>, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<Body>) -> Self::Future {
        Box::pin(async move {
            let mut grpc = tonic::server::Grpc::new(ProstCodec::<
                HealthCheckResponse,
                HealthCheckRequest,
            >::default());
            let path = req.uri().path().to_owned();
            Ok(match path.as_str() {
                SLEEP | SLEEP_STREAMING => grpc.unary(tower::service_fn(sleep), req).await,
                FAIL => grpc.unary(tower::service_fn(fail), req).await,
                _ => Status::unimplemented(path).into_http(),
            })
        })
    }
}

/// A unary call of `path` with `arg` and extra request metadata.
pub async fn call(
    channel: tonic::transport::Channel,
    path: &'static str,
    arg: &str,
    metadata: &[(&'static str, &str)],
) -> Result<Response<HealthCheckResponse>, Status> {
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready()
        .await
        .map_err(|e| Status::unavailable(e.to_string()))?;
    let mut req = Request::new(HealthCheckRequest {
        service: arg.to_owned(),
    });
    for (k, v) in metadata {
        req.metadata_mut().insert(*k, meta(v));
    }
    let codec = ProstCodec::<HealthCheckRequest, HealthCheckResponse>::default();
    grpc.unary(req, http::uri::PathAndQuery::from_static(path), codec)
        .await
}
