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

/// Keeps every exported span.
#[derive(Clone, Default)]
struct Collector {
    spans: Arc<Mutex<Vec<Span>>>,
}

#[tonic::async_trait]
impl TraceService for Collector {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let mut spans = self.spans.lock().unwrap();
        for rs in request.into_inner().resource_spans {
            for ss in rs.scope_spans {
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
