//! End to end: `init` with an OTLP endpoint exports spans to an in-process OTLP/gRPC collector,
//! keeping the trace of a known `traceparent`.
//!
//! Its own test binary (own process), because the global subscriber can be installed only once.

use std::sync::{Arc, Mutex};

use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::trace::v1::Span;
use steward_telemetry::{
    LogFormat, TelemetryConfig, current_trace_id, set_parent_from_traceparent,
};
use tokio_stream::wrappers::TcpListenerStream;

const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const PARENT_SPAN_ID: &str = "00f067aa0ba902b7";

/// Exported spans with the `service.name` of their resource.
#[derive(Clone, Default)]
struct Collector {
    spans: Arc<Mutex<Vec<(String, Span)>>>,
}

#[tonic::async_trait]
impl TraceService for Collector {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let mut spans = self.spans.lock().unwrap();
        for rs in request.into_inner().resource_spans {
            let service = rs
                .resource
                .iter()
                .flat_map(|r| &r.attributes)
                .find(|kv| kv.key == "service.name")
                .and_then(|kv| kv.value.as_ref()?.value.as_ref())
                .map(|v| match v {
                    Value::StringValue(s) => s.clone(),
                    other => format!("{other:?}"),
                })
                .unwrap_or_default();
            for ss in rs.scope_spans {
                spans.extend(ss.spans.into_iter().map(|s| (service.clone(), s)));
            }
        }
        Ok(tonic::Response::new(ExportTraceServiceResponse {
            partial_success: None,
        }))
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_reach_an_otlp_collector_in_the_callers_trace() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let collector = Collector::default();
    let received = collector.spans.clone();
    let server = tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(TraceServiceServer::new(collector))
            .serve_with_incoming(TcpListenerStream::new(listener)),
    );

    let mut cfg = TelemetryConfig::new("steward-test")
        .with_env("OTEL_EXPORTER_OTLP_ENDPOINT", format!("http://{addr}"))
        .with_env("OTEL_BSP_SCHEDULE_DELAY", "100");
    cfg.log_format = LogFormat::Json;
    let guard = steward_telemetry::init(&cfg).expect("init");
    assert!(guard.is_active());

    // A second init is a no-op, and dropping its guard does not stop export.
    let again = steward_telemetry::init(&cfg).expect("second init");
    assert!(!again.is_active());
    drop(again);

    {
        let span = tracing::info_span!("handle_event", event.type = "run.finished");
        set_parent_from_traceparent(&span, &format!("00-{TRACE_ID}-{PARENT_SPAN_ID}-01"));
        let _entered = span.enter();
        assert_eq!(current_trace_id(), TRACE_ID);
        tracing::info_span!("store_run").in_scope(|| tracing::info!("stored"));
        // The exporter's own transport is never exported (it would trace itself in a loop).
        tracing::info_span!(target: "h2", "transport_internal").in_scope(|| {});
    }

    guard.shutdown();

    let spans = received.lock().unwrap().clone();
    let find = |name: &str| spans.iter().find(|(_, s)| s.name == name);
    let (service, handle) = find("handle_event").expect("handle_event exported");
    assert_eq!(service, "steward-test");
    assert_eq!(hex(&handle.trace_id), TRACE_ID);
    assert_eq!(hex(&handle.parent_span_id), PARENT_SPAN_ID);
    let (_, store) = find("store_run").expect("child span exported");
    assert_eq!(hex(&store.trace_id), TRACE_ID);
    assert_eq!(store.parent_span_id, handle.span_id);
    assert!(
        find("transport_internal").is_none(),
        "transport spans are filtered"
    );
    server.abort();
}
