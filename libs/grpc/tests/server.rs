//! `GrpcServer` over real gRPC on 127.0.0.1, checked with tonic clients.

#[path = "support/probe.rs"]
mod probe;

use std::net::SocketAddr;
use std::sync::Once;
use std::time::{Duration, Instant};

use steward_grpc::{GrpcServer, ServerConfig};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio_stream::StreamExt as _;
use tonic::Code;
use tonic::transport::Channel;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::{HealthCheckRequest, health_check_response};
use tonic_types::StatusExt as _;

const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const TRACEPARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

/// Installs the real subscriber (no OTLP endpoint: spans get ids but are not exported), once
/// for this test process, so trace propagation through the stack can be observed.
fn telemetry() {
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        let mut cfg = steward_telemetry::TelemetryConfig::new("steward-grpc-test");
        cfg.log_filter = "warn".into();
        std::mem::forget(steward_telemetry::init(&cfg).expect("telemetry"));
    });
}

struct Running {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<Result<(), steward_common::Error>>,
}

impl Running {
    async fn channel(&self) -> Channel {
        steward_grpc::connect(&format!("http://{}", self.addr))
            .await
            .unwrap()
    }

    fn shutdown(&mut self) {
        self.stop.take().unwrap().send(()).unwrap();
    }
}

async fn start(server: GrpcServer) -> Running {
    telemetry();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = oneshot::channel::<()>();
    let task = tokio::spawn(server.serve(listener, async {
        let _ = rx.await;
    }));
    Running {
        addr,
        stop: Some(tx),
        task,
    }
}

fn probe_server(cfg: ServerConfig) -> GrpcServer {
    GrpcServer::new(cfg)
        .add_service(probe::Probe)
        .add_streaming_methods(&[probe::SLEEP_STREAMING])
        .file_descriptor_set(steward_proto::FILE_DESCRIPTOR_SET)
        .file_descriptor_set(steward_proto::FILE_DESCRIPTOR_SET)
}

async fn health_of(channel: Channel, service: &str) -> Result<ServingStatus, tonic::Status> {
    let resp = HealthClient::new(channel)
        .check(HealthCheckRequest {
            service: service.into(),
        })
        .await?;
    Ok(resp.into_inner().status())
}

fn header<'a>(md: &'a tonic::metadata::MetadataMap, key: &str) -> &'a str {
    md.get(key).map(|v| v.to_str().unwrap()).unwrap_or_default()
}

#[tokio::test]
async fn health_reports_the_server_and_each_service() {
    let running = start(probe_server(ServerConfig::default())).await;
    let ch = running.channel().await;
    assert_eq!(
        health_of(ch.clone(), "").await.unwrap(),
        ServingStatus::Serving
    );
    assert_eq!(
        health_of(ch.clone(), probe::NAME).await.unwrap(),
        ServingStatus::Serving
    );
    let unknown = health_of(ch, "steward.nope.v1.Nope").await.unwrap_err();
    assert_eq!(unknown.code(), Code::NotFound);
}

mod reflection {
    use super::*;

    macro_rules! list_services {
        ($version:ident, $channel:expr) => {{
            use tonic_reflection::pb::$version::ServerReflectionRequest;
            use tonic_reflection::pb::$version::server_reflection_client::ServerReflectionClient;
            use tonic_reflection::pb::$version::server_reflection_request::MessageRequest;
            use tonic_reflection::pb::$version::server_reflection_response::MessageResponse;

            let ask = |m: MessageRequest| ServerReflectionRequest {
                host: String::new(),
                message_request: Some(m),
            };
            let requests = tokio_stream::iter(vec![
                ask(MessageRequest::ListServices(String::new())),
                ask(MessageRequest::FileContainingSymbol(
                    "grpc.health.v1.Health".into(),
                )),
            ]);
            let mut responses = ServerReflectionClient::new($channel)
                .server_reflection_info(requests)
                .await
                .unwrap()
                .into_inner();
            let listed = match responses.next().await.unwrap().unwrap().message_response {
                Some(MessageResponse::ListServicesResponse(l)) => {
                    l.service.into_iter().map(|s| s.name).collect::<Vec<_>>()
                }
                other => panic!("unexpected {other:?}"),
            };
            match responses.next().await.unwrap().unwrap().message_response {
                Some(MessageResponse::FileDescriptorResponse(f)) => {
                    assert!(!f.file_descriptor_proto.is_empty())
                }
                other => panic!("unexpected {other:?}"),
            }
            listed
        }};
    }

    fn check(mut listed: Vec<String>) {
        listed.sort();
        assert_eq!(
            listed,
            [
                "grpc.health.v1.Health",
                "grpc.reflection.v1.ServerReflection",
                "grpc.reflection.v1alpha.ServerReflection",
                probe::NAME,
            ],
            "exactly the served services (not every service in the descriptor sets)"
        );
    }

    #[tokio::test]
    async fn v1_and_v1alpha_list_the_served_services() {
        let running = start(probe_server(ServerConfig::default())).await;
        check(list_services!(v1, running.channel().await));
        check(list_services!(v1alpha, running.channel().await));
    }
}

#[tokio::test]
async fn request_ids_actor_and_trace_reach_the_handler() {
    let running = start(probe_server(ServerConfig::default())).await;
    let ch = running.channel().await;

    let given = [
        ("x-request-id", "req-123"),
        ("x-steward-actor", "  alice@example.com "),
        ("traceparent", TRACEPARENT),
    ];
    let resp = probe::call(ch.clone(), probe::SLEEP, "0", &given)
        .await
        .unwrap();
    let md = resp.metadata();
    assert_eq!(header(md, "x-request-id"), "req-123", "echoed");
    assert_eq!(header(md, "x-seen-request-id"), "req-123");
    assert_eq!(header(md, "x-seen-extension"), "req-123");
    assert_eq!(header(md, "x-seen-actor"), "alice@example.com");
    assert_eq!(
        header(md, "x-seen-trace-id"),
        TRACE_ID,
        "handler runs in the caller's trace"
    );
    let outgoing = header(md, "x-seen-outgoing-traceparent");
    assert!(
        outgoing.starts_with(&format!("00-{TRACE_ID}-")),
        "{outgoing}"
    );
    assert!(
        !outgoing.contains("00f067aa0ba902b7"),
        "downstream parent is the server span"
    );

    let resp = probe::call(ch, probe::SLEEP, "0", &[]).await.unwrap();
    let md = resp.metadata();
    let generated = header(md, "x-request-id");
    assert!(uuid::Uuid::parse_str(generated).is_ok(), "{generated}");
    assert_eq!(header(md, "x-seen-request-id"), generated);
    assert_eq!(header(md, "x-seen-actor"), "anonymous");
    assert_eq!(
        header(md, "x-seen-trace-id").len(),
        32,
        "a fresh trace without traceparent"
    );
    assert_ne!(header(md, "x-seen-trace-id"), TRACE_ID);
}

#[tokio::test]
async fn errors_carry_error_info_and_bad_request() {
    let running = start(probe_server(ServerConfig::default())).await;
    let status = probe::call(
        running.channel().await,
        probe::FAIL,
        "",
        &[("x-request-id", "r-9")],
    )
    .await
    .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(header(status.metadata(), "x-request-id"), "r-9");
    let details = status.get_error_details();
    let info = details.error_info().expect("ErrorInfo");
    assert_eq!(info.reason, "INVALID_ARGUMENT");
    assert_eq!(info.domain, "steward.dev");
    assert_eq!(info.metadata["experiment"], "e1");
    let violations = &details.bad_request().expect("BadRequest").field_violations;
    assert_eq!(violations.len(), 1);
    assert_eq!(violations[0].field, "run.name");
    assert_eq!(violations[0].description, "must not be empty");
    let back = steward_grpc::from_status(&status);
    assert_eq!(back.violations[0].field, "run.name");
}

#[tokio::test]
async fn unary_timeout_spares_streaming_methods() {
    let cfg = ServerConfig {
        request_timeout: Duration::from_millis(200),
        ..Default::default()
    };
    let running = start(probe_server(cfg)).await;
    let ch = running.channel().await;

    let started = Instant::now();
    let status = probe::call(ch.clone(), probe::SLEEP, "5000", &[])
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::DeadlineExceeded);
    assert!(started.elapsed() < Duration::from_secs(3));

    probe::call(ch, probe::SLEEP_STREAMING, "400", &[])
        .await
        .expect("exempt from the timeout");
}

#[tokio::test]
async fn requests_over_the_concurrency_limit_wait_their_turn() {
    let cfg = ServerConfig {
        concurrency_limit: 1,
        ..Default::default()
    };
    let running = start(probe_server(cfg)).await;
    let ch = running.channel().await;
    let started = Instant::now();
    let (a, b) = tokio::join!(
        probe::call(ch.clone(), probe::SLEEP, "300", &[]),
        probe::call(ch.clone(), probe::SLEEP, "300", &[]),
    );
    a.unwrap();
    b.unwrap();
    assert!(
        started.elapsed() >= Duration::from_millis(600),
        "one at a time: {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn health_checks_skip_the_concurrency_queue() {
    let cfg = ServerConfig {
        concurrency_limit: 1,
        ..Default::default()
    };
    let running = start(probe_server(cfg)).await;
    let ch = running.channel().await;
    let busy = tokio::spawn(probe::call(ch.clone(), probe::SLEEP, "1500", &[]));
    tokio::time::sleep(Duration::from_millis(100)).await;
    let started = Instant::now();
    assert_eq!(health_of(ch, "").await.unwrap(), ServingStatus::Serving);
    assert!(
        started.elapsed() < Duration::from_millis(1000),
        "{:?}",
        started.elapsed()
    );
    busy.await.unwrap().unwrap();
}

#[tokio::test]
async fn server_side_interceptors_are_accepted() {
    fn require_actor(req: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        match req.metadata().get(steward_grpc::ACTOR_HEADER) {
            Some(_) => Ok(req),
            None => Err(tonic::Status::unauthenticated("name yourself")),
        }
    }
    let guarded = tonic::service::interceptor::InterceptedService::new(probe::Probe, require_actor);
    let running = start(GrpcServer::new(ServerConfig::default()).add_service(guarded)).await;
    let ch = running.channel().await;
    let denied = probe::call(ch.clone(), probe::SLEEP, "0", &[])
        .await
        .unwrap_err();
    assert_eq!(denied.code(), Code::Unauthenticated);
    assert!(
        denied.metadata().get("x-request-id").is_some(),
        "the stack still applies"
    );
    let ok = probe::call(ch, probe::SLEEP, "0", &[("x-steward-actor", "bob")])
        .await
        .unwrap();
    assert_eq!(header(ok.metadata(), "x-seen-actor"), "bob");
}

#[tokio::test]
async fn shutdown_reports_not_serving_and_drains() {
    let mut running = start(probe_server(ServerConfig::default())).await;
    let ch = running.channel().await;
    let mut watch = HealthClient::new(ch.clone())
        .watch(HealthCheckRequest {
            service: probe::NAME.into(),
        })
        .await
        .unwrap()
        .into_inner();
    let first = watch.next().await.unwrap().unwrap();
    assert_eq!(
        first.status(),
        health_check_response::ServingStatus::Serving
    );

    let in_flight = tokio::spawn(probe::call(ch, probe::SLEEP, "500", &[]));
    tokio::time::sleep(Duration::from_millis(100)).await;
    let started = Instant::now();
    running.shutdown();

    let update = watch.next().await.unwrap().unwrap();
    assert_eq!(
        update.status(),
        health_check_response::ServingStatus::NotServing
    );
    drop(watch);

    in_flight
        .await
        .unwrap()
        .expect("the in-flight request completes");
    let served = tokio::time::timeout(Duration::from_secs(5), running.task)
        .await
        .expect("serve returns once drained, well before the 10 s grace")
        .unwrap();
    served.unwrap();
    assert!(
        started.elapsed() >= Duration::from_millis(350),
        "waited for the in-flight call"
    );
    let refused = tokio::net::TcpStream::connect(running.addr).await;
    assert!(refused.is_err(), "no longer accepting connections");
}

#[tokio::test]
async fn the_grace_period_bounds_draining() {
    let cfg = ServerConfig {
        shutdown_grace: Duration::from_millis(200),
        ..Default::default()
    };
    let mut running = start(probe_server(cfg)).await;
    let ch = running.channel().await;
    let _stuck = tokio::spawn(probe::call(ch, probe::SLEEP_STREAMING, "30000", &[]));
    tokio::time::sleep(Duration::from_millis(100)).await;
    let started = Instant::now();
    running.shutdown();
    tokio::time::timeout(Duration::from_secs(3), running.task)
        .await
        .expect("serve returns after the grace period")
        .unwrap()
        .unwrap();
    assert!(started.elapsed() >= Duration::from_millis(200));
}

#[tokio::test]
async fn adding_a_service_twice_is_refused() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let (_reporter, health) = tonic_health::server::health_reporter();
    let err = GrpcServer::new(ServerConfig::default())
        .add_service(probe::Probe)
        .add_service(health)
        .serve(listener, std::future::ready(()))
        .await
        .unwrap_err();
    assert_eq!(err.reason, "DUPLICATE_SERVICE");
    assert!(err.message.contains("grpc.health.v1.Health"));
}

#[tokio::test]
async fn unusable_limits_are_refused() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let cfg = ServerConfig {
        concurrency_limit: 0,
        request_timeout: Duration::ZERO,
        ..Default::default()
    };
    let err = GrpcServer::new(cfg)
        .serve(listener, std::future::ready(()))
        .await
        .unwrap_err();
    let fields: Vec<_> = err.violations.iter().map(|v| v.field.as_str()).collect();
    assert_eq!(fields, ["request_timeout", "concurrency_limit"]);
}

/// A gate for the tests: refuses calls with `x-deny`, admits as `gate-actor`, asks for the
/// message once, remembers it, and rewrites the response status to 3 (SERVICE_UNKNOWN).
#[derive(Default)]
struct TestGate {
    seen: std::sync::Mutex<Vec<(bool, Option<Vec<u8>>)>>,
}

impl steward_grpc::Gate for TestGate {
    fn admit<'a>(
        &'a self,
        call: steward_grpc::GateCall<'a>,
    ) -> futures::future::BoxFuture<'a, Result<steward_grpc::Admission, tonic::Status>> {
        Box::pin(async move {
            self.seen
                .lock()
                .unwrap()
                .push((call.with_message, call.message.map(<[u8]>::to_vec)));
            if call.headers.contains_key("x-deny") {
                return Err(tonic::Status::permission_denied("denied by the test gate"));
            }
            let filter: steward_grpc::ResponseFilter = Box::new(|bytes| {
                let mut resp: tonic_health::pb::HealthCheckResponse =
                    prost::Message::decode(bytes).unwrap();
                resp.status = 3;
                Ok(prost::Message::encode_to_vec(&resp).into())
            });
            Ok(steward_grpc::Admission {
                actor: Some("gate-actor".into()),
                filter: call.with_message.then_some(filter),
                need_message: !call.with_message,
                unlimited: false,
            })
        })
    }
}

#[tokio::test]
async fn the_gate_sees_headers_then_the_message_and_its_verdict_holds() {
    let gate = std::sync::Arc::new(TestGate::default());
    let server = probe_server(ServerConfig::default()).gate(gate.clone());
    let running = start(server).await;
    let ch = running.channel().await;

    let ok = probe::call(
        ch.clone(),
        probe::SLEEP,
        "7",
        &[("x-steward-actor", "mallory")],
    )
    .await
    .unwrap();
    assert_eq!(
        header(ok.metadata(), "x-seen-actor"),
        "gate-actor",
        "the gate's principal replaces the header"
    );
    assert_eq!(ok.get_ref().status, 3, "the response filter ran");
    let seen = gate.seen.lock().unwrap().clone();
    let sent = prost::Message::encode_to_vec(&HealthCheckRequest {
        service: "7".into(),
    });
    assert_eq!(
        seen,
        vec![(false, None), (true, Some(sent))],
        "headers first, then the message"
    );

    let denied = probe::call(ch.clone(), probe::SLEEP, "7", &[("x-deny", "1")])
        .await
        .unwrap_err();
    assert_eq!(denied.code(), Code::PermissionDenied);
    // Health never reaches the gate.
    gate.seen.lock().unwrap().clear();
    assert_eq!(health_of(ch, "").await.unwrap(), ServingStatus::Serving);
    assert!(gate.seen.lock().unwrap().is_empty());
}

#[tokio::test]
async fn callers_over_the_rate_limit_are_told_when_to_retry() {
    let cfg = ServerConfig {
        rate_limit: Some(steward_grpc::RateLimit {
            per_second: 2.0,
            burst: 2,
        }),
        ..Default::default()
    };
    let running = start(probe_server(cfg)).await;
    let ch = running.channel().await;
    for _ in 0..2 {
        probe::call(ch.clone(), probe::SLEEP, "0", &[])
            .await
            .unwrap();
    }
    let limited = probe::call(ch.clone(), probe::SLEEP, "0", &[])
        .await
        .unwrap_err();
    assert_eq!(limited.code(), Code::ResourceExhausted);
    let retry = limited
        .get_details_retry_info()
        .and_then(|r| r.retry_delay)
        .expect("RetryInfo");
    assert!(
        retry > Duration::ZERO && retry <= Duration::from_millis(500),
        "{retry:?}"
    );
    assert_eq!(
        limited.get_details_error_info().map(|i| i.reason),
        Some("RATE_LIMITED".into())
    );
    // Another method has its own budget; health has none.
    let other = probe::call(ch.clone(), probe::FAIL, "0", &[])
        .await
        .unwrap_err();
    assert_eq!(other.code(), Code::InvalidArgument, "{other:?}");
    assert_eq!(
        health_of(ch.clone(), "").await.unwrap(),
        ServingStatus::Serving
    );
    tokio::time::sleep(retry + Duration::from_millis(50)).await;
    probe::call(ch, probe::SLEEP, "0", &[])
        .await
        .expect("a token came back after the advertised delay");
}
