//! Operator metrics: `steward up` with `STEWARD_METRICS_LISTEN` serves Prometheus text at
//! `/metrics` with request counts per method and code, latency histograms, the outbox depth of
//! every service, event bus lag, database pool usage and backend health.

use steward_proto::tracking as pb;

use crate::support::metrics::{http, sample, scrape};
use crate::support::server::{Server, free_addr};
use crate::support::tracking::{self as t, unique};

const TRACKING: &str = "steward.tracking.v1.TrackingService";

#[tokio::test]
async fn steward_up_serves_prometheus_metrics_per_method_and_backend() {
    let dir = tempfile::tempdir().unwrap();
    let metrics = free_addr();
    let server = Server::steward_up(
        dir.path(),
        &[("STEWARD_METRICS_LISTEN", &metrics.to_string())],
    )
    .await;
    let mut tc = server.tracking();
    t::create_experiment(&mut tc, &unique("metrics-a")).await;
    t::create_experiment(&mut tc, &unique("metrics-b")).await;
    let bad = tc
        .create_experiment(pb::CreateExperimentRequest {
            experiment: Some(pb::Experiment::default()),
            request_id: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(bad.code(), tonic::Code::InvalidArgument, "{bad:?}");

    let text = scrape(metrics).await;
    let series = |name: &str, labels: &str| format!("{name}{{{labels}}}");
    let create = format!(r#"service="{TRACKING}",method="CreateExperiment""#);
    assert_eq!(
        sample(
            &text,
            &series(
                "steward_grpc_requests_total",
                &format!(r#"{create},code="OK""#)
            )
        ),
        Some(2.0),
        "{text}"
    );
    assert_eq!(
        sample(
            &text,
            &series(
                "steward_grpc_requests_total",
                &format!(r#"{create},code="INVALID_ARGUMENT""#)
            )
        ),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        sample(
            &text,
            &series("steward_grpc_request_duration_seconds_count", &create)
        ),
        Some(3.0),
        "{text}"
    );
    assert_eq!(
        sample(
            &text,
            &series(
                "steward_grpc_request_duration_seconds_bucket",
                &format!(r#"{create},le="+Inf""#)
            )
        ),
        Some(3.0),
        "{text}"
    );
    // The health checks the harness made while waiting are counted too.
    assert!(
        sample(
            &text,
            &series(
                "steward_grpc_requests_total",
                r#"service="grpc.health.v1.Health",method="Check",code="OK""#
            )
        )
        .is_some_and(|n| n >= 1.0),
        "{text}"
    );
    for service in ["tracking", "registry", "deployment", "monitoring"] {
        let depth = sample(
            &text,
            &series("steward_outbox_depth", &format!(r#"service="{service}""#)),
        );
        assert!(depth.is_some_and(|n| n >= 0.0), "{service}: {text}");
        assert!(
            sample(
                &text,
                &series(
                    "steward_outbox_oldest_age_seconds",
                    &format!(r#"service="{service}""#)
                )
            )
            .is_some(),
            "{service}: {text}"
        );
    }
    // In-process bus: the groups the services subscribed to at start-up.
    assert!(
        sample(
            &text,
            &series(
                "steward_event_group_pending",
                r#"group="monitoring-decisions""#
            )
        )
        .is_some(),
        "{text}"
    );
    assert_eq!(
        sample(&text, r#"steward_backend_up{backend="database"}"#),
        Some(1.0)
    );
    assert_eq!(
        sample(&text, r#"steward_backend_up{backend="event_bus"}"#),
        Some(1.0)
    );
    assert!(sample(&text, "steward_db_pool_max_connections").is_some_and(|n| n >= 1.0));
    assert!(sample(&text, "process_resident_memory_bytes").is_some_and(|n| n > 1e6));
    assert!(text.contains("# TYPE steward_grpc_request_duration_seconds histogram"));

    // Only GET /metrics is served.
    assert_eq!(http(metrics, "POST", "/metrics").await.0, 405);
    assert_eq!(http(metrics, "GET", "/").await.0, 404);
    assert!(
        server
            .proc
            .stdout()
            .contains(&format!("metrics:   http://{metrics}/metrics")),
        "the banner names the endpoint: {}",
        server.proc.stdout()
    );
}
