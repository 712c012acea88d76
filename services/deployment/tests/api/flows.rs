//! End-to-end flows of the deployment service through its gRPC API.

use std::time::Duration;

use steward_proto::deployment as pb;
use steward_proto::events::{AlertFired, EventEnvelope, event_envelope::Payload};
use steward_proto::inference as oip;
use steward_proto::registry as rpb;
use tonic::Code;

use crate::harness::{self, Harness, assert_bad, reason, variant};

async fn route(h: &mut Harness, dep: &str, key: &str, id: &str) -> pb::RouteResponse {
    h.dep
        .route(pb::RouteRequest {
            deployment: dep.into(),
            routing_key: key.into(),
            request_id: id.into(),
        })
        .await
        .unwrap()
        .into_inner()
}

async fn wait_rollout(h: &mut Harness, name: &str, state: pb::RolloutState) -> pb::Rollout {
    for _ in 0..200 {
        let r = h
            .dep
            .get_rollout(pb::GetRolloutRequest { name: name.into() })
            .await
            .unwrap()
            .into_inner();
        if r.state == state as i32 {
            return r;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("rollout {name} never reached {state:?}");
}

fn steps(w: &[(i32, u64)]) -> Vec<pb::RolloutStep> {
    w.iter()
        .map(|(bp, ms)| pb::RolloutStep {
            weight_bp: *bp,
            bake: Some(prost_types::Duration {
                seconds: (*ms / 1000) as i64,
                nanos: ((*ms % 1000) * 1_000_000) as i32,
            }),
        })
        .collect()
}

#[tokio::test]
async fn environments_gate_production_and_deployments_route_and_roll_back() {
    for mut h in harness::all().await {
        let l = h.label.clone();
        let envs = h
            .dep
            .list_environments(pb::ListEnvironmentsRequest {})
            .await
            .unwrap()
            .into_inner();
        let names: Vec<&str> = envs.environments.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(
            names,
            ["environments/staging", "environments/production"],
            "{l}"
        );
        let model = h.model_with_versions(2).await;
        // Production refuses an unapproved version, and one that never ran in staging.
        let e = h
            .deploy(&model, "production", &[("main", 1, 10_000)])
            .await
            .unwrap_err();
        assert_eq!(
            (e.code(), reason(&e).as_str()),
            (Code::FailedPrecondition, "POLICY_VIOLATION"),
            "{l}"
        );
        assert!(e.message().contains("APPROVED"), "{}", e.message());
        h.approve(&model, 1).await;
        let e = h
            .deploy(&model, "production", &[("main", 1, 10_000)])
            .await
            .unwrap_err();
        assert!(e.message().contains("staging"), "{}", e.message());
        let staging = h
            .deploy(&model, "staging", &[("main", 1, 10_000)])
            .await
            .unwrap();
        assert_eq!(staging.name, format!("deployments/{model}-staging"));
        let prod = h
            .deploy(&model, "production", &[("main", 1, 10_000)])
            .await
            .unwrap();
        let dep = prod.name.clone();
        assert_eq!(prod.current_revision.as_ref().unwrap().number, 1);
        // Bad input names the field and writes nothing.
        let e = h
            .deploy(&model, "staging", &[("a", 1, 9_000), ("b", 2, 999)])
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument);
        let e = h
            .deploy(&model, "nowhere", &[("a", 1, 10_000)])
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::NotFound);
        let other = h.model_with_versions(1).await;
        let e = h
            .dep
            .apply_revision(pb::ApplyRevisionRequest {
                deployment: dep.clone(),
                variants: vec![variant(&other, "x", 1, 10_000)],
                ..Default::default()
            })
            .await
            .unwrap_err();
        assert_bad(e, Code::InvalidArgument, Some("variants[0].model_version"));
        // A 90/10 split with v2 (approved, ran in staging).
        h.approve(&model, 2).await;
        h.dep
            .apply_revision(pb::ApplyRevisionRequest {
                deployment: staging.name.clone(),
                variants: vec![variant(&model, "main", 2, 10_000)],
                ..Default::default()
            })
            .await
            .unwrap();
        let d = h
            .dep
            .apply_revision(pb::ApplyRevisionRequest {
                deployment: dep.clone(),
                variants: vec![
                    variant(&model, "stable", 1, 9_000),
                    variant(&model, "canary", 2, 1_000),
                ],
                reason: "try v2".into(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(d.current_revision.as_ref().unwrap().number, 2, "{l}");
        // Routing: deterministic per key, roughly 90/10, and every answer is recorded once.
        let mut canary = 0;
        for i in 0..1000 {
            let a = route(&mut h, &dep, &format!("user-{i}"), &format!("r-{i}")).await;
            let b = route(&mut h, &dep, &format!("user-{i}"), "").await;
            assert_eq!(a.variant, b.variant, "sticky");
            assert_eq!(a.revision, 2);
            if a.variant == "canary" {
                assert_eq!(
                    a.model_version,
                    format!("registeredModels/{model}/versions/2")
                );
                canary += 1;
            }
        }
        assert!(
            (50..=150).contains(&canary),
            "{l}: {canary} of 1000 on the 10% canary"
        );
        // A retried request id answers with its recorded decision.
        let again = route(&mut h, &dep, "someone-else", "r-7").await;
        let first = h
            .dep
            .get_decision(pb::GetDecisionRequest {
                request_id: "r-7".into(),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(
            (again.variant.as_str(), first.routing_key.as_str()),
            (first.variant.as_str(), "user-7")
        );
        // Rollback re-applies revision 1 as revision 3.
        let rb = h
            .dep
            .rollback_deployment(pb::RollbackDeploymentRequest {
                deployment: dep.clone(),
                revision: 1,
                reason: "v2 is worse".into(),
                request_id: String::new(),
            })
            .await
            .unwrap()
            .into_inner();
        let rev = rb.current_revision.unwrap();
        assert_eq!((rev.number, rev.variants.len()), (3, 1));
        assert!(rev.reason.contains("rollback to 1"), "{}", rev.reason);
        assert_eq!(
            route(&mut h, &dep, "user-1", "").await.revision,
            3,
            "the applying replica routes on the new revision at once"
        );
        let revs = h
            .dep
            .list_revisions(pb::ListRevisionsRequest {
                deployment: dep.clone(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(
            revs.revisions.iter().map(|r| r.number).collect::<Vec<_>>(),
            [3, 2, 1]
        );
        // The registry now knows: the model cannot be deleted, and the lineage lists deployments.
        let e = h
            .reg
            .delete_registered_model(rpb::DeleteRegisteredModelRequest {
                name: format!("registeredModels/{model}"),
                ..Default::default()
            })
            .await
            .unwrap_err();
        assert_eq!(reason(&e), "MODEL_DEPLOYED", "{l}");
        let lin = h
            .reg
            .get_lineage(rpb::GetLineageRequest {
                name: format!("registeredModels/{model}/versions/2"),
            })
            .await
            .unwrap()
            .into_inner();
        let mut deps = lin.deployments.clone();
        deps.sort();
        assert_eq!(deps, [dep.clone(), staging.name.clone()], "{l}");
        h.stop().await;
    }
}

#[tokio::test]
async fn canary_rollouts_advance_roll_back_on_guardrails_alerts_and_request() {
    for mut h in harness::all().await {
        let l = h.label.clone();
        let model = h.model_with_versions(2).await;
        // An external sklearn version with no upstream: every prediction on it fails.
        let broken = h
            .reg
            .create_model_version(rpb::CreateModelVersionRequest {
                parent: format!("registeredModels/{model}"),
                model_version: Some(rpb::ModelVersion {
                    source_uri: "s3://models/broken".into(),
                    content_digest: format!("sha256:{}", "f".repeat(64)),
                    format: "sklearn".into(),
                    ..Default::default()
                }),
                request_id: String::new(),
            })
            .await
            .unwrap()
            .into_inner();
        let dep = h
            .deploy(&model, "staging", &[("stable", 1, 10_000)])
            .await
            .unwrap()
            .name;
        // 1. Healthy: the controller walks the steps and succeeds.
        let r = h
            .dep
            .start_rollout(pb::StartRolloutRequest {
                deployment: dep.clone(),
                model_version: format!("registeredModels/{model}/versions/2"),
                steps: steps(&[(2_500, 100), (5_000, 100), (10_000, 100)]),
                guardrails: None,
                request_id: String::new(),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(r.state, pb::RolloutState::Running as i32);
        let d = h
            .dep
            .get_deployment(pb::GetDeploymentRequest { name: dep.clone() })
            .await
            .unwrap()
            .into_inner();
        let rev = d.current_revision.unwrap();
        assert_eq!(
            rev.variants
                .iter()
                .map(|v| (v.name.as_str(), v.weight_bp))
                .collect::<Vec<_>>(),
            [("canary", 2_500), ("stable", 7_500)]
        );
        // No other change while it runs.
        let e = h
            .dep
            .apply_revision(pb::ApplyRevisionRequest {
                deployment: dep.clone(),
                variants: vec![variant(&model, "x", 1, 10_000)],
                ..Default::default()
            })
            .await
            .unwrap_err();
        assert_eq!(reason(&e), "ROLLOUT_RUNNING");
        let done = wait_rollout(&mut h, &r.name, pb::RolloutState::Succeeded).await;
        let kinds: Vec<&str> = done.history.iter().map(|e| e.kind.as_str()).collect();
        assert_eq!(kinds, ["started", "step", "step", "succeeded"], "{l}");
        let d = h
            .dep
            .get_deployment(pb::GetDeploymentRequest { name: dep.clone() })
            .await
            .unwrap()
            .into_inner();
        let rev = d.current_revision.unwrap();
        assert_eq!(
            (
                rev.variants.len(),
                rev.variants[0].version,
                rev.variants[0].weight_bp
            ),
            (1, 2, 10_000)
        );
        assert!(d.active_rollout.is_empty());

        // 2. Guardrail: the broken canary's errors roll it back.
        let r = h
            .dep
            .start_rollout(pb::StartRolloutRequest {
                deployment: dep.clone(),
                model_version: broken.name.clone(),
                steps: steps(&[(5_000, 60_000), (10_000, 0)]),
                guardrails: Some(pb::Guardrails {
                    max_error_rate: 0.1,
                    max_p99_latency_ms: 0.0,
                    min_requests: 5,
                }),
                request_id: String::new(),
            })
            .await
            .unwrap()
            .into_inner();
        for i in 0..60 {
            let _ = h
                .oip
                .model_infer(demo_request(&dep, &format!("g-{i}"), 1))
                .await;
        }
        let rolled = wait_rollout(&mut h, &r.name, pb::RolloutState::RolledBack).await;
        assert!(
            rolled.reason.contains("error rate"),
            "{l}: {}",
            rolled.reason
        );
        let d = h
            .dep
            .get_deployment(pb::GetDeploymentRequest { name: dep.clone() })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(
            d.current_revision.unwrap().variants[0].version,
            2,
            "back on the base revision"
        );

        // 3. An alert for the deployment rolls back a healthy-looking rollout.
        let r = h
            .dep
            .start_rollout(pb::StartRolloutRequest {
                deployment: dep.clone(),
                model_version: format!("registeredModels/{model}/versions/1"),
                steps: steps(&[(1_000, 60_000), (10_000, 0)]),
                guardrails: None,
                request_id: String::new(),
            })
            .await
            .unwrap()
            .into_inner();
        let env = EventEnvelope {
            event_id: uuid::Uuid::new_v4().simple().to_string(),
            r#type: "monitoring.alert.fired".into(),
            source: "alerts/a1".into(),
            producer: "monitoring".into(),
            payload: Some(Payload::AlertFired(AlertFired {
                alert: "alerts/a1".into(),
                monitor: "monitors/m1".into(),
                deployment: dep.clone(),
                severity: "critical".into(),
                reason: "feature amount drifted (PSI 0.4)".into(),
            })),
            ..Default::default()
        };
        h.backends.bus.publish(&env).await.unwrap();
        let rolled = wait_rollout(&mut h, &r.name, pb::RolloutState::RolledBack).await;
        assert!(
            rolled.reason.contains("alerts/a1") && rolled.reason.contains("drifted"),
            "{l}: {}",
            rolled.reason
        );

        // 4. On request: promote, then roll back.
        let r = h
            .dep
            .start_rollout(pb::StartRolloutRequest {
                deployment: dep.clone(),
                model_version: format!("registeredModels/{model}/versions/1"),
                steps: steps(&[(1_000, 60_000), (5_000, 60_000)]),
                guardrails: None,
                request_id: String::new(),
            })
            .await
            .unwrap()
            .into_inner();
        let p = h
            .dep
            .promote_rollout(pb::PromoteRolloutRequest {
                name: r.name.clone(),
                reason: "looks fine".into(),
                request_id: String::new(),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(p.current_step, 1);
        let b = h
            .dep
            .rollback_rollout(pb::RollbackRolloutRequest {
                name: r.name.clone(),
                reason: "changed my mind".into(),
                request_id: String::new(),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(b.state, pb::RolloutState::RolledBack as i32);
        let e = h
            .dep
            .promote_rollout(pb::PromoteRolloutRequest {
                name: r.name.clone(),
                ..Default::default()
            })
            .await
            .unwrap_err();
        assert_eq!(reason(&e), "ROLLOUT_NOT_RUNNING");
        // Bad plans name the field.
        let e = h
            .dep
            .start_rollout(pb::StartRolloutRequest {
                deployment: dep.clone(),
                model_version: format!("registeredModels/{model}/versions/1"),
                steps: steps(&[(5_000, 0), (2_000, 0)]),
                ..Default::default()
            })
            .await
            .unwrap_err();
        assert_bad(e, Code::InvalidArgument, Some("steps[1].weight_bp"));
        h.stop().await;
    }
}

fn demo_request(dep: &str, id: &str, rows: usize) -> oip::ModelInferRequest {
    oip::ModelInferRequest {
        model_name: dep.into(),
        id: id.into(),
        inputs: vec![oip::model_infer_request::InferInputTensor {
            name: steward_deployment::infer::DEMO_INPUT.into(),
            datatype: "FP32".into(),
            shape: vec![rows as i64, steward_deployment::infer::DEMO_FEATURES as i64],
            contents: Some(oip::InferTensorContents {
                fp32_contents: (0..rows * steward_deployment::infer::DEMO_FEATURES)
                    .map(|i| (i % 7) as f32 * 0.25)
                    .collect(),
                ..Default::default()
            }),
            ..Default::default()
        }],
        ..Default::default()
    }
}

#[tokio::test]
async fn model_infer_serves_onnx_records_and_explains_every_prediction() {
    for mut h in harness::all().await {
        let l = h.label.clone();
        let model = h.model_with_versions(1).await;
        h.approve(&model, 1).await;
        let dep = h
            .deploy(&model, "staging", &[("main", 1, 10_000)])
            .await
            .unwrap()
            .name;
        let live = h
            .oip
            .server_live(oip::ServerLiveRequest {})
            .await
            .unwrap()
            .into_inner();
        assert!(live.live);
        let ready = h
            .oip
            .model_ready(oip::ModelReadyRequest {
                name: dep.clone(),
                version: String::new(),
            })
            .await
            .unwrap()
            .into_inner();
        assert!(ready.ready, "{l}");
        let meta = h
            .oip
            .model_metadata(oip::ModelMetadataRequest {
                name: dep.clone(),
                version: String::new(),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(meta.inputs[0].name, steward_deployment::infer::DEMO_INPUT);
        let resp = h
            .oip
            .model_infer(demo_request(&dep, "req-1", 4))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(resp.id, "req-1");
        assert_eq!(resp.model_version, "1");
        let scores = &resp.outputs[0].contents.as_ref().unwrap().fp32_contents;
        assert_eq!(scores.len(), 4);
        // Same as running the model directly.
        let direct =
            steward_deployment::infer::onnx::OnnxModel::load(steward_deployment::infer::DEMO_MODEL)
                .unwrap();
        let inputs =
            steward_deployment::infer::tensor::from_request(&demo_request(&dep, "x", 4)).unwrap();
        let out = direct.run(inputs).unwrap();
        let expect = steward_deployment::infer::tensor::to_output_tensors(out);
        assert_eq!(
            &expect[0].contents.as_ref().unwrap().fp32_contents,
            scores,
            "{l}"
        );
        // The decision is durable before the answer, with the digest and (sample rate 1) inputs.
        let d = h
            .dep
            .get_decision(pb::GetDecisionRequest {
                request_id: "req-1".into(),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(
            (d.kind.as_str(), d.variant.as_str(), d.revision),
            ("infer", "main", 1)
        );
        assert_eq!(d.input_digest.len(), 64);
        assert!(!d.inputs_json.is_empty() && !d.outputs_json.is_empty());
        // Explain it back to approval, data and rollout.
        let x = h
            .dep
            .explain_decision(pb::ExplainDecisionRequest {
                request_id: "req-1".into(),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(
            x.model_version,
            format!("registeredModels/{model}/versions/1")
        );
        assert_eq!(
            (x.approval_state.as_str(), x.approved_by.as_str()),
            ("APPROVED", "bob"),
            "{l}"
        );
        assert_eq!(x.datasets[0].digest, format!("sha256:{}", "e".repeat(64)));
        assert_eq!(x.git_commit, "c0ffee0");
        let rev = x.revision.unwrap();
        assert_eq!(
            (rev.creator.as_str(), rev.variants[0].weight_bp),
            ("alice", 10_000)
        );
        // Erase the inputs (personal data): the digest stays.
        let n = h
            .dep
            .erase_decision_inputs(pb::EraseDecisionInputsRequest {
                request_ids: vec!["req-1".into(), "nope".into()],
                reason: "GDPR art. 17".into(),
                request_id: String::new(),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(n.erased, 1);
        let d2 = h
            .dep
            .get_decision(pb::GetDecisionRequest {
                request_id: "req-1".into(),
            })
            .await
            .unwrap()
            .into_inner();
        assert!(d2.inputs_erased && d2.inputs_json.is_empty());
        assert_eq!(d2.input_digest, d.input_digest);
        // Hostile input: shape/contents mismatch, unknown deployment.
        let mut bad = demo_request(&dep, "req-2", 2);
        bad.inputs[0].shape = vec![3, 8];
        assert_eq!(
            h.oip.model_infer(bad).await.unwrap_err().code(),
            Code::InvalidArgument
        );
        assert_eq!(
            h.oip
                .model_infer(demo_request("deployments/none", "req-3", 1))
                .await
                .unwrap_err()
                .code(),
            Code::NotFound
        );
        assert_eq!(
            h.dep
                .get_decision(pb::GetDecisionRequest {
                    request_id: "req-2".into()
                })
                .await
                .unwrap_err()
                .code(),
            Code::NotFound,
            "a rejected request records nothing"
        );
        h.stop().await;
    }
}

#[tokio::test]
async fn an_ab_test_reads_results_and_promotes_its_winner() {
    for mut h in harness::all().await {
        let l = h.label.clone();
        let model = h.model_with_versions(2).await;
        let dep = h
            .deploy(
                &model,
                "staging",
                &[("control", 1, 5_000), ("treatment", 2, 5_000)],
            )
            .await
            .unwrap()
            .name;
        let t = h
            .dep
            .create_ab_test(pb::CreateAbTestRequest {
                deployment: dep.clone(),
                ab_test: Some(pb::AbTest {
                    variants: vec!["control".into(), "treatment".into()],
                    metric: "converted".into(),
                    metric_kind: pb::MetricKind::Binary as i32,
                    ..Default::default()
                }),
                request_id: String::new(),
            })
            .await
            .unwrap()
            .into_inner();
        // Conversion: exactly every 10th control user and 3 in 10 treatment
        // users, counted within each variant, so the true effect is 0.2
        // whichever users the (salted) hash assigns where.
        let (mut n_control, mut n_treatment) = (0_u32, 0_u32);
        for i in 0..1200 {
            let r = route(&mut h, &dep, &format!("u{i}"), &format!("ab-{i}")).await;
            let converted = if r.variant == "control" {
                n_control += 1;
                n_control % 10 == 0
            } else {
                n_treatment += 1;
                n_treatment % 10 < 3
            };
            h.dep
                .report_outcome(pb::ReportOutcomeRequest {
                    ab_test: t.name.clone(),
                    request_id: r.request_id.clone(),
                    value: f64::from(u8::from(converted)),
                })
                .await
                .unwrap();
        }
        let bad = h
            .dep
            .report_outcome(pb::ReportOutcomeRequest {
                ab_test: t.name.clone(),
                request_id: "ab-1".into(),
                value: 0.5,
            })
            .await
            .unwrap_err();
        assert_bad(bad, Code::InvalidArgument, Some("value"));
        let res = h
            .dep
            .get_ab_test_results(pb::GetAbTestResultsRequest {
                name: t.name.clone(),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(
            res.variants.iter().map(|v| v.assigned).sum::<i64>(),
            1200,
            "{l}"
        );
        assert!(
            !res.sample_ratio_mismatch,
            "{l}: 50/50 assignment: srm p {}",
            res.srm_p_value
        );
        let c = &res.comparisons[0];
        assert_eq!(c.variant, "treatment");
        assert!(
            c.significant && c.p_value < 1e-6 && c.effect > 0.15 && c.ci_low > 0.0,
            "{l}: {c:?}"
        );
        let done = h
            .dep
            .conclude_ab_test(pb::ConcludeAbTestRequest {
                name: t.name.clone(),
                promote_best: true,
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(done.winner, "treatment");
        let d = h
            .dep
            .get_deployment(pb::GetDeploymentRequest { name: dep.clone() })
            .await
            .unwrap()
            .into_inner();
        let rev = d.current_revision.unwrap();
        assert_eq!(
            (
                rev.variants.len(),
                rev.variants[0].name.as_str(),
                rev.variants[0].weight_bp
            ),
            (1, "treatment", 10_000)
        );
        assert!(rev.reason.contains("winner treatment"), "{}", rev.reason);
        h.stop().await;
    }
}
