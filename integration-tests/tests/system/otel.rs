//! OpenTelemetry across a process boundary: `steward up` exports its server span for a request
//! to an OTLP/gRPC collector (here an in-process one), in the caller's trace.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::trace::v1::Span;
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use steward_proto::tracking as pb;
use tokio_stream::wrappers::TcpListenerStream;

use crate::support::server::Server;
use crate::support::tracking::unique;

const TRACE_ID: &str = "0af7651916cd43dd8448eb211c80319c";
const PARENT_SPAN_ID: &str = "b7ad6b7169203331";

/// Keeps every exported span, with the `service.name` of the process that sent it.
#[derive(Clone, Default)]
struct Collector {
    spans: Arc<Mutex<Vec<Span>>>,
    services: Arc<Mutex<Vec<(String, Span)>>>,
}

#[tonic::async_trait]
impl TraceService for Collector {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let mut spans = self.spans.lock().unwrap();
        let mut services = self.services.lock().unwrap();
        for rs in request.into_inner().resource_spans {
            let service = rs
                .resource
                .as_ref()
                .and_then(|r| r.attributes.iter().find(|kv| kv.key == "service.name"))
                .and_then(|kv| match kv.value.as_ref()?.value.as_ref()? {
                    Value::StringValue(s) => Some(s.clone()),
                    _ => None,
                })
                .unwrap_or_default();
            for ss in rs.scope_spans {
                services.extend(ss.spans.iter().map(|s| (service.clone(), s.clone())));
                spans.extend(ss.spans);
            }
        }
        Ok(tonic::Response::new(ExportTraceServiceResponse {
            partial_success: None,
        }))
    }
}

fn attr(span: &Span, key: &str) -> Option<String> {
    span.attributes
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref()?.value.as_ref())
        .map(|v| match v {
            Value::StringValue(s) => s.clone(),
            other => format!("{other:?}"),
        })
}

/// The server span of a CreateExperiment call.
fn is_create_experiment(span: &Span) -> bool {
    attr(span, "rpc.method").as_deref() == Some("CreateExperiment")
        || span.name.contains("CreateExperiment")
}

#[tokio::test]
async fn server_spans_reach_an_otlp_collector_in_the_callers_trace() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let otlp = listener.local_addr().unwrap();
    let collector = Collector::default();
    let spans = collector.spans.clone();
    let _collector_task = tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(TraceServiceServer::new(collector))
            .serve_with_incoming(TcpListenerStream::new(listener)),
    );

    let data = tempfile::tempdir().unwrap();
    let endpoint = format!("http://{otlp}");
    let server = Server::steward_up(
        data.path(),
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()),
            ("OTEL_BSP_SCHEDULE_DELAY", "100"),
        ],
    )
    .await;

    let mut req = tonic::Request::new(pb::CreateExperimentRequest {
        experiment: Some(pb::Experiment {
            display_name: unique("traced"),
            ..Default::default()
        }),
        request_id: String::new(),
    });
    req.metadata_mut().insert(
        "traceparent",
        format!("00-{TRACE_ID}-{PARENT_SPAN_ID}-01")
            .parse()
            .unwrap(),
    );
    server
        .tracking()
        .create_experiment(req)
        .await
        .expect("CreateExperiment");

    let deadline = Instant::now() + Duration::from_secs(10);
    let span = loop {
        let found = spans
            .lock()
            .unwrap()
            .iter()
            .find(|s| hex::encode(&s.trace_id) == TRACE_ID && is_create_experiment(s))
            .cloned();
        if let Some(s) = found {
            break s;
        }
        if Instant::now() > deadline {
            let seen: Vec<_> = spans
                .lock()
                .unwrap()
                .iter()
                .map(|s| format!("{} trace={}", s.name, hex::encode(&s.trace_id)))
                .collect();
            panic!(
                "no CreateExperiment span in trace {TRACE_ID} within 10 s; spans seen: {seen:?}\n{}",
                server.proc.logs()
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(
        hex::encode(&span.parent_span_id),
        PARENT_SPAN_ID,
        "the server span is a child of the caller's span: {span:?}"
    );
    assert_eq!(span.kind, SpanKind::Server as i32, "{span:?}");
    assert_eq!(
        attr(&span, "rpc.service").as_deref(),
        Some("steward.tracking.v1.TrackingService"),
        "{span:?}"
    );
}

/// A span a trace must hold: the service that sends it, what it is, and how to recognise it.
type Wanted = (&'static str, &'static str, fn(&Span) -> bool);

/// Starts the in-process collector; returns it and its `http://` endpoint.
async fn collector() -> (Collector, String) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    let collector = Collector::default();
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(TraceServiceServer::new(collector.clone()))
            .serve_with_incoming(TcpListenerStream::new(listener)),
    );
    (collector, endpoint)
}

/// One ModelInfer call, sent with a known `traceparent` to `steward-deployment`, in a suite of
/// four processes on Postgres, Redis and S3: the trace holds the deployment's server span, the
/// registry's and tracking's server spans for the calls it made (version resolution, the model
/// download), database statements, an S3 GetObject, the Redis publish of the decision event and
/// the monitoring process consuming that event: one trace, every hop.
#[tokio::test]
async fn one_model_infer_is_one_trace_across_services_database_redis_s3_and_events() {
    use steward_integration_tests::schema_fixture;
    use steward_proto::inference as oip;
    use steward_proto::inference::grpc_inference_service_client::GrpcInferenceServiceClient;
    use steward_proto::registry::registry_service_client::RegistryServiceClient;

    use crate::support::suite::Suite;
    use crate::support::tracking as t;

    let (collector, otlp) = collector().await;
    let Some(suite) = Suite::start(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", otlp),
        ("OTEL_BSP_SCHEDULE_DELAY", "100".into()),
    ])
    .await
    else {
        return;
    };
    let (tracking, registry, deployment) = (&suite.tracking, &suite.registry, &suite.deployment);

    let mut tc = tracking.tracking();
    let exp = t::create_experiment(&mut tc, &unique("trace")).await;
    let run = t::create_run(&mut tc, &exp.name, "train").await;
    t::upload(
        &mut tc,
        &run.name,
        "model/model.onnx",
        schema_fixture::MODEL_BYTES,
    )
    .await;
    let mut r = RegistryServiceClient::new(registry.channel.clone());
    schema_fixture::register(&mut r, "traced", &run.name)
        .await
        .unwrap();
    let dep = schema_fixture::deploy_staging(&deployment.channel, "traced")
        .await
        .unwrap();

    // The traced call: the first ModelInfer, which loads the model.
    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let mut req = tonic::Request::new(oip::ModelInferRequest {
        model_name: dep.clone(),
        id: unique("traced-infer"),
        inputs: vec![oip::model_infer_request::InferInputTensor {
            name: "features".into(),
            datatype: "FP32".into(),
            shape: vec![1, 8],
            contents: Some(oip::InferTensorContents {
                fp32_contents: vec![0.5; 8],
                ..Default::default()
            }),
            ..Default::default()
        }],
        ..Default::default()
    });
    req.metadata_mut().insert(
        "traceparent",
        format!("00-{trace_id}-00f067aa0ba902b7-01")
            .parse()
            .unwrap(),
    );
    GrpcInferenceServiceClient::new(deployment.channel.clone())
        .model_infer(req)
        .await
        .expect("ModelInfer");

    // Everything below must show up in that one trace.
    let wanted: [Wanted; 7] = [
        ("steward-deployment", "the ModelInfer server span", |s| {
            s.kind == SpanKind::Server as i32 && s.name.contains("ModelInfer")
        }),
        (
            "steward-tracking",
            "tracking's server span of the model download",
            |s| s.kind == SpanKind::Server as i32 && s.name.contains("DownloadArtifact"),
        ),
        ("steward-tracking", "an S3 GetObject", |s| {
            s.name == "S3 GetObject"
        }),
        (
            "steward-tracking",
            "a database statement in tracking",
            |s| attr(s, "db.system").as_deref() == Some("postgresql"),
        ),
        (
            "steward-deployment",
            "a database statement in deployment",
            |s| attr(s, "db.system").as_deref() == Some("postgresql"),
        ),
        (
            "steward-deployment",
            "the Redis publish of the decision event",
            |s| {
                s.kind == SpanKind::Producer as i32
                    && attr(s, "messaging.system").as_deref() == Some("redis")
            },
        ),
        (
            "steward-monitoring",
            "monitoring consuming the decision event",
            |s| s.name == "monitoring.decisions",
        ),
    ];
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let seen = collector.services.lock().unwrap().clone();
        let in_trace: Vec<&(String, Span)> = seen
            .iter()
            .filter(|(_, s)| hex::encode(&s.trace_id) == trace_id)
            .collect();
        let missing: Vec<&str> = wanted
            .iter()
            .filter(|(svc, _, is)| !in_trace.iter().any(|(s, span)| s == svc && is(span)))
            .map(|(_, what, _)| *what)
            .collect();
        if missing.is_empty() {
            // Every span of the trace hangs off a span of the trace (or the caller's span).
            let ids: Vec<Vec<u8>> = in_trace.iter().map(|(_, s)| s.span_id.clone()).collect();
            for (svc, s) in &in_trace {
                let parent = hex::encode(&s.parent_span_id);
                assert!(
                    parent == "00f067aa0ba902b7" || ids.contains(&s.parent_span_id),
                    "{svc} span {} has a parent outside the trace",
                    s.name
                );
            }
            break;
        }
        if Instant::now() > deadline {
            let listed: Vec<String> = in_trace
                .iter()
                .map(|(svc, s)| format!("{svc}: {} ({})", s.name, s.kind))
                .collect();
            panic!("missing from trace {trace_id}: {missing:?}\nspans in it: {listed:#?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    suite.stop().await;
}
