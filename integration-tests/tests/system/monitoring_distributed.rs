//! Distributed mode with monitoring: `steward-tracking`, `steward-registry`,
//! `steward-deployment` and `steward-monitoring` as four processes on Postgres and Redis (the
//! real-backend tier). ModelInfer decisions travel from the deployment process to the
//! monitoring process over Redis Streams; a drift alert travels back and rolls the running
//! canary back.

use std::time::{Duration, Instant};

use steward_proto::deployment as dpb;
use steward_proto::deployment::deployment_service_client::DeploymentServiceClient;
use steward_proto::inference as oip;
use steward_proto::inference::grpc_inference_service_client::GrpcInferenceServiceClient;
use steward_proto::monitoring as mpb;
use steward_proto::monitoring::monitoring_service_client::MonitoringServiceClient;
use steward_proto::registry as rpb;
use steward_proto::registry::registry_service_client::RegistryServiceClient;
use steward_storage::testing::TestDb;

use crate::support::binaries;
use crate::support::env;
use crate::support::metrics;
use crate::support::process::command;
use crate::support::server::{Server, free_addr};
use crate::support::tracking::{self as t, unique};

/// The demo model the deployment service ships.
const DEMO_MODEL: &[u8] = include_bytes!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../services/deployment/models/fraud_demo.onnx"
));
const ROWS: i64 = 100;

async fn start(bin: &str, common: &[(String, String)], extra: &[(&str, String)]) -> Server {
    let addr = free_addr();
    let dir = tempfile::tempdir().unwrap().keep();
    let mut cmd = command(binaries::path(bin));
    cmd.args(["--listen", &addr.to_string(), "--data-dir"])
        .arg(dir)
        .envs(common.iter().map(|(k, v)| (k, v)))
        .envs(extra.iter().map(|(k, v)| (*k, v)));
    Server::start(bin, cmd, addr).await
}

/// A deterministic value in [0, 1) for row `i`, feature `j`.
fn u(i: i64, j: usize) -> f32 {
    let x = (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)
        ^ (j as u64).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    ((x >> 40) as f32) / (1u64 << 24) as f32
}

fn infer(dep: &str, id: &str, i: i64, shift: f32) -> oip::ModelInferRequest {
    oip::ModelInferRequest {
        model_name: dep.into(),
        id: id.into(),
        inputs: vec![oip::model_infer_request::InferInputTensor {
            name: "features".into(),
            datatype: "FP32".into(),
            shape: vec![1, 8],
            contents: Some(oip::InferTensorContents {
                fp32_contents: (0..8).map(|j| u(i, j) + shift).collect(),
                ..Default::default()
            }),
            ..Default::default()
        }],
        ..Default::default()
    }
}

async fn report(
    m: &mut MonitoringServiceClient<tonic::transport::Channel>,
    n: i64,
) -> mpb::DriftReport {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        match m
            .get_drift_report(mpb::GetDriftReportRequest {
                monitor: "monitors/live".into(),
                window: n,
            })
            .await
        {
            Ok(r) => return r.into_inner(),
            Err(s) if s.code() == tonic::Code::NotFound && Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(100)).await
            }
            Err(s) => panic!("window {n} has no report: {s:?}"),
        }
    }
}

#[tokio::test]
async fn four_services_close_the_loop_over_redis() {
    let (Some(_), Some(redis)) = (
        env("STEWARD_TEST_DATABASE_URL"),
        env("STEWARD_TEST_REDIS_URL"),
    ) else {
        eprintln!(
            "the four services need a shared database and Redis; set STEWARD_TEST_DATABASE_URL and STEWARD_TEST_REDIS_URL"
        );
        return;
    };
    let db = TestDb::postgres_with(false)
        .await
        .expect("STEWARD_TEST_DATABASE_URL is set");
    let common = vec![
        ("STEWARD_DATABASE_URL".to_string(), db.url.clone()),
        ("STEWARD_PAGE_TOKEN_KEY".to_string(), "k".repeat(64)),
        ("STEWARD_REDIS_URL".to_string(), redis),
        (
            "STEWARD_REDIS_KEY_PREFIX".to_string(),
            format!("{}:", unique("steward-mon")),
        ),
        ("STEWARD_ROLLOUT_TICK_MS".to_string(), "100".into()),
        ("STEWARD_MONITOR_TICK_MS".to_string(), "100".into()),
    ];
    let tracking = start(binaries::STEWARD_TRACKING, &common, &[]).await;
    let turl = tracking.url();
    let registry = start(
        binaries::STEWARD_REGISTRY,
        &common,
        &[("STEWARD_TRACKING_URL", turl.clone())],
    )
    .await;
    let dep_env = [
        ("STEWARD_TRACKING_URL", turl.clone()),
        ("STEWARD_REGISTRY_URL", registry.url()),
    ];
    let mon_metrics = free_addr();
    let mon_env = [
        ("STEWARD_TRACKING_URL", turl.clone()),
        ("STEWARD_METRICS_LISTEN", mon_metrics.to_string()),
    ];
    let (deployment, monitoring) = tokio::join!(
        start(binaries::STEWARD_DEPLOYMENT, &common, &dep_env),
        start(binaries::STEWARD_MONITORING, &common, &mon_env),
    );

    // Two versions of the demo model, from a run in the tracking process.
    let mut tc = tracking.tracking();
    let exp = t::create_experiment(&mut tc, &unique("mon")).await;
    let run = t::create_run(&mut tc, &exp.name, "train").await;
    t::upload(&mut tc, &run.name, "model/model.onnx", DEMO_MODEL).await;
    let mut r = RegistryServiceClient::new(registry.channel.clone());
    r.create_registered_model(rpb::CreateRegisteredModelRequest {
        registered_model: Some(rpb::RegisteredModel {
            name: "fraud".into(),
            ..Default::default()
        }),
        request_id: String::new(),
    })
    .await
    .unwrap();
    for _ in 0..2 {
        r.create_model_version(rpb::CreateModelVersionRequest {
            parent: "registeredModels/fraud".into(),
            model_version: Some(rpb::ModelVersion {
                source_run: run.name.clone(),
                artifact_path: "model".into(),
                format: "onnx".into(),
                ..Default::default()
            }),
            request_id: String::new(),
        })
        .await
        .unwrap();
    }
    let mut d = DeploymentServiceClient::new(deployment.channel.clone());
    let dep = d
        .create_deployment(dpb::CreateDeploymentRequest {
            deployment: Some(dpb::Deployment {
                registered_model: "registeredModels/fraud".into(),
                environment: "environments/staging".into(),
                ..Default::default()
            }),
            variants: vec![dpb::Variant {
                name: "stable".into(),
                model_version: "registeredModels/fraud/versions/1".into(),
                weight_bp: 10_000,
                ..Default::default()
            }],
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let rollout = d
        .start_rollout(dpb::StartRolloutRequest {
            deployment: dep.name.clone(),
            model_version: "registeredModels/fraud/versions/2".into(),
            steps: vec![
                dpb::RolloutStep {
                    weight_bp: 5_000,
                    bake: Some(prost_types::Duration {
                        seconds: 3600,
                        nanos: 0,
                    }),
                },
                dpb::RolloutStep {
                    weight_bp: 10_000,
                    bake: None,
                },
            ],
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();

    // The baseline: the training distribution of the 8 inputs.
    let mut m = MonitoringServiceClient::new(monitoring.channel.clone());
    m.create_baseline(mpb::CreateBaselineRequest {
        baseline_id: "train".into(),
        source: Some(mpb::create_baseline_request::Source::Sample(
            mpb::ReferenceSample {
                columns: (0..8)
                    .map(|j| mpb::Column {
                        name: format!("f{j}"),
                        kind: mpb::FeatureKind::Numeric as i32,
                        numbers: (0..2000).map(|i| f64::from(u(1_000_000 + i, j))).collect(),
                        categories: vec![],
                    })
                    .collect(),
                prediction_column: String::new(),
            },
        )),
        ..Default::default()
    })
    .await
    .unwrap();
    m.create_monitor(mpb::CreateMonitorRequest {
        monitor_id: "live".into(),
        monitor: Some(mpb::Monitor {
            baseline: "baselines/train".into(),
            deployment: dep.name.clone(),
            window: Some(mpb::Window {
                size: Some(mpb::window::Size::Count(ROWS)),
            }),
            ..Default::default()
        }),
        request_id: String::new(),
    })
    .await
    .unwrap();
    m.create_alert_rule(mpb::CreateAlertRuleRequest {
        monitor: "monitors/live".into(),
        rule_id: "drift".into(),
        rule: Some(mpb::AlertRule {
            metric: "drift.dataset".into(),
            comparator: mpb::Comparator::GreaterOrEqual as i32,
            threshold: 1.0,
            severity: "critical".into(),
            ..Default::default()
        }),
        request_id: String::new(),
    })
    .await
    .unwrap();

    let mut o = GrpcInferenceServiceClient::new(deployment.channel.clone());
    for i in 0..ROWS {
        o.model_infer(infer(&dep.name, &format!("ok-{i}"), i, 0.0))
            .await
            .unwrap();
    }
    let w0 = report(&mut m, 0).await;
    assert!(!w0.dataset_drift, "{w0:?}");
    assert!(w0.features.iter().all(|f| f.current_rows == ROWS), "{w0:?}");
    for i in 0..ROWS {
        o.model_infer(infer(&dep.name, &format!("shift-{i}"), ROWS + i, 0.8))
            .await
            .unwrap();
    }
    let w1 = report(&mut m, 1).await;
    assert!(w1.dataset_drift, "{w1:?}");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let r = d
            .get_rollout(dpb::GetRolloutRequest {
                name: rollout.name.clone(),
            })
            .await
            .unwrap()
            .into_inner();
        if r.state == dpb::RolloutState::RolledBack as i32 {
            assert!(r.reason.contains("alert"), "{}", r.reason);
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the drift alert did not roll the canary back: {r:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // The monitoring process's metrics: its own RPCs only, its outbox, and the lag of the
    // consumer groups on Redis (read from XINFO GROUPS).
    let text = metrics::scrape(mon_metrics).await;
    let drift_reports = metrics::sample(
        &text,
        r#"steward_grpc_requests_total{service="steward.monitoring.v1.MonitoringService",method="GetDriftReport",code="OK"}"#,
    );
    assert!(drift_reports.is_some_and(|n| n >= 2.0), "{text}");
    assert!(!text.contains("TrackingService"), "{text}");
    assert!(
        metrics::sample(&text, r#"steward_outbox_depth{service="monitoring"}"#).is_some(),
        "{text}"
    );
    assert!(
        metrics::sample(
            &text,
            r#"steward_event_group_pending{group="monitoring-decisions"}"#
        )
        .is_some(),
        "{text}"
    );
    assert!(
        metrics::sample(
            &text,
            r#"steward_event_group_undelivered{group="deployment-alerts"}"#
        )
        .is_some(),
        "{text}"
    );
    assert_eq!(
        metrics::sample(&text, r#"steward_backend_up{backend="event_bus"}"#),
        Some(1.0)
    );
    drop((monitoring, deployment, registry, tracking));
    db.cleanup().await;
}
