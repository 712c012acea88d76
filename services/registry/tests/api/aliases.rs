//! Aliases: set, move, resolve, delete, history ("which version was production on a date"),
//! policies on alias moves, and cache freshness after a move.

use steward_proto::registry as pb;
use tonic::Code;

use crate::harness::{self, Client, assert_bad, reason};

fn set(model: &str, alias: &str, version: i64) -> pb::SetModelVersionAliasRequest {
    pb::SetModelVersionAliasRequest {
        registered_model: model.into(),
        alias: alias.into(),
        version,
        request_id: String::new(),
    }
}

async fn resolve(c: &mut Client, name: &str) -> Result<i64, tonic::Status> {
    c.get_model_version(pb::GetModelVersionRequest { name: name.into() })
        .await
        .map(|r| r.into_inner().version)
}

#[tokio::test]
async fn aliases_resolve_move_and_keep_history() {
    for mut h in harness::all().await {
        let l = h.label.clone();
        let model = h.model().await;
        let run = h.trained_run(0.9, "0.1").await;
        for _ in 0..3 {
            h.version_from(&model, &run).await;
        }
        let prod = format!("{model}@production");
        assert_eq!(
            reason(
                &h.reg
                    .get_model_version(pb::GetModelVersionRequest { name: prod.clone() })
                    .await
                    .unwrap_err()
            ),
            "ALIAS_NOT_FOUND"
        );
        h.reg
            .set_model_version_alias(set(&model, "production", 1))
            .await
            .unwrap();
        assert_eq!(resolve(&mut h.reg, &prod).await.unwrap(), 1, "{l}");
        let t_between = prost_types::Timestamp::from(std::time::SystemTime::now());
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        // The replica that moved it resolves the new version at once (the old one was cached).
        h.reg
            .set_model_version_alias(set(&model, "production", 2))
            .await
            .unwrap();
        assert_eq!(
            resolve(&mut h.reg, &prod).await.unwrap(),
            2,
            "{l}: resolved right after the move"
        );
        h.reg
            .set_model_version_alias(set(&model, "champion", 2))
            .await
            .unwrap();
        let v2 = h
            .reg
            .get_model_version(pb::GetModelVersionRequest {
                name: format!("{model}/versions/2"),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(v2.aliases, ["champion", "production"]);
        let m = h
            .reg
            .get_registered_model(pb::GetRegisteredModelRequest {
                name: model.clone(),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(m.aliases["production"], 2);
        // Lineage and review accept aliases too.
        let lin = h
            .reg
            .get_lineage(pb::GetLineageRequest { name: prod.clone() })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(lin.model_version, format!("{model}/versions/2"));
        // Delete.
        h.reg
            .delete_model_version_alias(pb::DeleteModelVersionAliasRequest {
                registered_model: model.clone(),
                alias: "production".into(),
                request_id: String::new(),
            })
            .await
            .unwrap();
        assert_eq!(
            resolve(&mut h.reg, &prod).await.unwrap_err().code(),
            Code::NotFound,
            "{l}"
        );
        // History, newest first.
        let hist = h
            .reg
            .list_alias_history(pb::ListAliasHistoryRequest {
                registered_model: model.clone(),
                alias: "production".into(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        let moves: Vec<(i64, i64)> = hist
            .entries
            .iter()
            .map(|e| (e.previous_version, e.version))
            .collect();
        assert_eq!(moves, [(2, 0), (1, 2), (0, 1)], "{l}");
        assert!(hist.entries.iter().all(|e| e.actor == "alice"));
        // Which version was production at t_between? Version 1.
        let at = h
            .reg
            .list_alias_history(pb::ListAliasHistoryRequest {
                registered_model: model.clone(),
                alias: "production".into(),
                as_of: Some(t_between),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(at.entries.len(), 1);
        assert_eq!(at.entries[0].version, 1, "{l}");
        // Paging through all moves of the model.
        let mut seen = 0;
        let mut token = String::new();
        loop {
            let r = h
                .reg
                .list_alias_history(pb::ListAliasHistoryRequest {
                    registered_model: model.clone(),
                    page_size: 2,
                    page_token: token,
                    ..Default::default()
                })
                .await
                .unwrap()
                .into_inner();
            seen += r.entries.len();
            if r.next_page_token.is_empty() {
                break;
            }
            token = r.next_page_token;
        }
        assert_eq!(seen, 4, "{l}");
        h.stop().await;
    }
}

#[tokio::test]
async fn bad_alias_requests_name_the_field() {
    for mut h in harness::all().await {
        let model = h.model().await;
        let run = h.trained_run(0.9, "0.1").await;
        h.version_from(&model, &run).await;
        for (alias, version, field) in [
            ("Prod", 1, "alias"),
            ("latest", 1, "alias"),
            ("v3", 1, "alias"),
            ("a b", 1, "alias"),
            ("", 1, "alias"),
            ("ok", 0, "version"),
        ] {
            let e = h
                .reg
                .set_model_version_alias(set(&model, alias, version))
                .await
                .unwrap_err();
            assert_bad(e, Code::InvalidArgument, Some(field));
        }
        let e = h
            .reg
            .set_model_version_alias(set(&model, "prod", 9))
            .await
            .unwrap_err();
        assert_eq!(
            (e.code(), reason(&e).as_str()),
            (Code::NotFound, "MODEL_VERSION_NOT_FOUND")
        );
        let e = h
            .reg
            .set_model_version_alias(set("registeredModels/none", "prod", 1))
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::NotFound);
        let e = h
            .reg
            .list_alias_history(pb::ListAliasHistoryRequest {
                registered_model: model.clone(),
                as_of: Some(prost_types::Timestamp {
                    seconds: 1,
                    nanos: 0,
                }),
                ..Default::default()
            })
            .await
            .unwrap_err();
        assert_bad(e, Code::InvalidArgument, Some("alias"));
        let hist = h
            .reg
            .list_alias_history(pb::ListAliasHistoryRequest {
                registered_model: model.clone(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        assert!(hist.entries.is_empty(), "{}: nothing written", h.label);
        h.stop().await;
    }
}

#[tokio::test]
async fn policies_gate_alias_moves_and_name_the_failing_rule() {
    for mut h in harness::all().await {
        let l = h.label.clone();
        let model = h.model().await;
        let good = h.trained_run(0.85, "0.1").await;
        let weak = h.trained_run(0.7, "0.2").await;
        let v1 = h.version_from(&model, &good).await;
        let v2 = h.version_from(&model, &weak).await;
        let policy = pb::ModelPolicy {
            registered_model: model.clone(),
            rules: vec![pb::PolicyRule {
                name: "prod-gate".into(),
                alias: "production".into(),
                require_approved: true,
                metrics: vec![pb::MetricCondition {
                    metric: "auc".into(),
                    op: ">=".into(),
                    value: 0.8,
                }],
                required_tags: vec![],
            }],
            ..Default::default()
        };
        let p = h
            .reg
            .set_model_policy(pb::SetModelPolicyRequest {
                policy: Some(policy.clone()),
                request_id: String::new(),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(p.rules.len(), 1);
        // Not approved yet.
        let e = h
            .reg
            .set_model_version_alias(set(&model, "production", 1))
            .await
            .unwrap_err();
        assert_eq!(
            (e.code(), reason(&e).as_str()),
            (Code::FailedPrecondition, "POLICY_VIOLATION"),
            "{l}"
        );
        assert!(e.message().contains("prod-gate"), "{}", e.message());
        // Other aliases are free.
        h.reg
            .set_model_version_alias(set(&model, "staging", 2))
            .await
            .unwrap();
        // Approve both (bob reviews alice's versions); v2 still fails on auc.
        for v in [&v1, &v2] {
            h.bob
                .review_model_version(pb::ReviewModelVersionRequest {
                    name: v.name.clone(),
                    decision: pb::ApprovalState::Approved as i32,
                    ..Default::default()
                })
                .await
                .unwrap();
        }
        h.reg
            .set_model_version_alias(set(&model, "production", 1))
            .await
            .unwrap();
        let e = h
            .reg
            .set_model_version_alias(set(&model, "production", 2))
            .await
            .unwrap_err();
        assert_eq!(reason(&e), "POLICY_VIOLATION");
        assert!(
            e.message().contains("auc") && e.message().contains("0.7"),
            "{}",
            e.message()
        );
        // The refused move changed nothing.
        assert_eq!(
            resolve(&mut h.reg, &format!("{model}@production"))
                .await
                .unwrap(),
            1
        );
        // Bad rules are refused naming the field.
        let mut bad = policy.clone();
        bad.rules[0].metrics[0].op = "=>".into();
        let e = h
            .reg
            .set_model_policy(pb::SetModelPolicyRequest {
                policy: Some(bad),
                request_id: String::new(),
            })
            .await
            .unwrap_err();
        assert_bad(
            e,
            Code::InvalidArgument,
            Some("policy.rules[0].metrics[0].op"),
        );
        let got = h
            .reg
            .get_model_policy(pb::GetModelPolicyRequest {
                registered_model: model.clone(),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(got.rules, p.rules);
        h.stop().await;
    }
}

#[tokio::test]
async fn only_ready_versions_can_be_aliased() {
    for mut h in harness::all().await {
        let model = h.model().await;
        h.reg
            .create_model_version(pb::CreateModelVersionRequest {
                parent: model.clone(),
                model_version: Some(pb::ModelVersion {
                    source_uri: "s3://b/m".into(),
                    ..Default::default()
                }),
                request_id: String::new(),
            })
            .await
            .unwrap();
        let e = h
            .reg
            .set_model_version_alias(set(&model, "staging", 1))
            .await
            .unwrap_err();
        assert_eq!(reason(&e), "VERSION_NOT_READY");
        h.stop().await;
    }
}
