//! The loop closed end to end: a deployment's ModelInfer decisions feed a monitor over the
//! event bus; training-like traffic raises nothing; shifted traffic raises a drift alert whose
//! event rolls the running canary back; wrong ground truth raises a performance alert.

use std::time::Duration;

use steward_proto::deployment as dpb;
use steward_proto::inference as oip;
use steward_proto::monitoring as pb;

use crate::harness::{self, Lcg};

const ROWS: i64 = 200;

fn infer(dep: &str, id: &str, g: &mut Lcg, shift: f32) -> oip::ModelInferRequest {
    oip::ModelInferRequest {
        model_name: dep.into(),
        id: id.into(),
        inputs: vec![oip::model_infer_request::InferInputTensor {
            name: steward_deployment::infer::DEMO_INPUT.into(),
            datatype: "FP32".into(),
            shape: vec![1, steward_deployment::infer::DEMO_FEATURES as i64],
            contents: Some(oip::InferTensorContents {
                fp32_contents: (0..steward_deployment::infer::DEMO_FEATURES)
                    .map(|_| g.next() as f32 + shift)
                    .collect(),
                ..Default::default()
            }),
            ..Default::default()
        }],
        ..Default::default()
    }
}

#[tokio::test]
async fn drift_in_live_traffic_rolls_the_canary_back_and_bad_feedback_alerts() {
    for mut h in harness::all().await {
        let l = h.label.clone();
        let model = h.model_with_versions(2).await;
        let d = h
            .dep
            .create_deployment(dpb::CreateDeploymentRequest {
                deployment: Some(dpb::Deployment {
                    registered_model: format!("registeredModels/{model}"),
                    environment: "environments/staging".into(),
                    ..Default::default()
                }),
                variants: vec![dpb::Variant {
                    name: "stable".into(),
                    model_version: format!("registeredModels/{model}/versions/1"),
                    weight_bp: 10_000,
                    ..Default::default()
                }],
                shadow: None,
                request_id: String::new(),
            })
            .await
            .unwrap()
            .into_inner();
        let rollout = h
            .dep
            .start_rollout(dpb::StartRolloutRequest {
                deployment: d.name.clone(),
                model_version: format!("registeredModels/{model}/versions/2"),
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
                guardrails: None,
                request_id: String::new(),
            })
            .await
            .unwrap()
            .into_inner();

        // The training baseline: 8 features uniform in [0, 1), named f0..f7 (mapped to the
        // input tensor's columns by position).
        let mut g = Lcg(7);
        let cols: Vec<(String, Vec<f64>)> = (0..8)
            .map(|j| (format!("f{j}"), (0..2000).map(|_| g.next()).collect()))
            .collect();
        let cols_ref: Vec<(&str, Vec<f64>)> =
            cols.iter().map(|(n, v)| (n.as_str(), v.clone())).collect();
        h.numeric_baseline("train", &cols_ref, None).await;
        h.count_monitor("live", "train", &d.name, ROWS).await;
        for (id, metric, cmp, threshold) in [
            (
                "drift",
                "drift.dataset",
                pb::Comparator::GreaterOrEqual,
                1.0,
            ),
            (
                "accuracy",
                "performance.accuracy",
                pb::Comparator::Less,
                0.5,
            ),
        ] {
            h.mon
                .create_alert_rule(pb::CreateAlertRuleRequest {
                    monitor: "monitors/live".into(),
                    rule_id: id.into(),
                    rule: Some(pb::AlertRule {
                        metric: metric.into(),
                        comparator: cmp as i32,
                        threshold,
                        window: Some(prost_types::Duration {
                            seconds: 3600,
                            nanos: 0,
                        }),
                        severity: "critical".into(),
                        ..Default::default()
                    }),
                    request_id: String::new(),
                })
                .await
                .unwrap();
        }

        // Traffic like the training data: window 0 closes without drift.
        let mut t = Lcg(99);
        for i in 0..ROWS {
            h.oip
                .model_infer(infer(&d.name, &format!("ok-{i}"), &mut t, 0.0))
                .await
                .unwrap();
        }
        let rep = h.report("live", 0).await;
        assert!(!rep.dataset_drift, "{l}: {rep:?}");
        assert_eq!(rep.features.len(), 8);
        assert!(
            rep.features.iter().all(|f| f.current_rows == ROWS),
            "{l}: {rep:?}"
        );
        let r = h
            .dep
            .get_rollout(dpb::GetRolloutRequest {
                name: rollout.name.clone(),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(r.state, dpb::RolloutState::Running as i32, "{l}");

        // Shifted traffic: window 1 drifts, the alert fires and the canary rolls back.
        for i in 0..ROWS {
            h.oip
                .model_infer(infer(&d.name, &format!("shift-{i}"), &mut t, 0.7))
                .await
                .unwrap();
        }
        let rep = h.report("live", 1).await;
        assert!(rep.dataset_drift, "{l}: {rep:?}");
        let alert = h.wait_alert("live", "FIRING").await;
        assert_eq!(alert.deployment, d.name);
        let mut rolled = None;
        for _ in 0..400 {
            let r = h
                .dep
                .get_rollout(dpb::GetRolloutRequest {
                    name: rollout.name.clone(),
                })
                .await
                .unwrap()
                .into_inner();
            if r.state == dpb::RolloutState::RolledBack as i32 {
                rolled = Some(r);
                break;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        let rolled = rolled.unwrap_or_else(|| panic!("{l}: the canary was not rolled back"));
        assert!(
            rolled.reason.contains(&alert.name),
            "{l}: {}",
            rolled.reason
        );

        let perf = h
            .mon
            .get_performance(pb::GetPerformanceRequest {
                monitor: "monitors/live".into(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(
            perf.variants[0].predictions,
            2 * ROWS,
            "{l}: every ModelInfer counted once"
        );
        let rows =
            steward_monitoring::store::records::joined(h.backends.db.conn(), "live", 0, i64::MAX)
                .await
                .unwrap();
        assert_eq!(rows.len() as i64, 2 * ROWS);
        // Ground truth that contradicts every answer of window 0: accuracy 0 < 0.5.
        let mut labels = Vec::new();
        for i in 0..ROWS {
            let id = format!("ok-{i}");
            let p = h
                .dep
                .get_decision(dpb::GetDecisionRequest {
                    request_id: id.clone(),
                })
                .await
                .unwrap()
                .into_inner();
            let score: f64 = serde_json::from_str::<serde_json::Value>(&p.outputs_json).unwrap()[0]
                ["data"][0]
                .as_f64()
                .unwrap();
            labels.push(pb::Feedback {
                request_id: id,
                label: Some(pb::Value {
                    kind: Some(pb::value::Kind::Number(if score >= 0.5 {
                        0.0
                    } else {
                        1.0
                    })),
                }),
            });
        }
        h.mon
            .ingest_feedback(pb::IngestFeedbackRequest {
                monitor: "monitors/live".into(),
                feedback: labels,
            })
            .await
            .unwrap();
        let mut perf_alert = None;
        for _ in 0..400 {
            let a = h
                .mon
                .list_alerts(pb::ListAlertsRequest {
                    filter: "state = \"FIRING\" AND monitor = \"monitors/live\"".into(),
                    ..Default::default()
                })
                .await
                .unwrap()
                .into_inner();
            if let Some(a) = a
                .alerts
                .into_iter()
                .find(|a| a.metric == "performance.accuracy")
            {
                perf_alert = Some(a);
                break;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        let a = perf_alert.unwrap_or_else(|| panic!("{l}: no performance alert"));
        assert_eq!(a.value, 0.0, "{l}");
        h.stop().await;
    }
}
