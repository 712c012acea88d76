//! Cross-cutting behaviour of the suite as one server: every control-plane mutation of every
//! service appears exactly once in the audit log (through `AuditService`), the chains verify,
//! and registry changes are published as events.

use std::collections::BTreeMap;
use std::time::Duration;

use steward_proto::audit as apb;
use steward_proto::audit::audit_service_client::AuditServiceClient;
use steward_proto::events::event_envelope::Payload;
use steward_proto::registry as pb;

use crate::harness;

#[tokio::test]
async fn every_mutation_of_every_service_is_audited_exactly_once() {
    for mut h in harness::all().await {
        let l = h.label.clone();
        let model = h.model().await; // 1 registry.models.create
        let run = h.trained_run(0.9, "0.1").await; // tracking: experiment, run, 2 artifacts
        let v = h.version_from(&model, &run).await; // registry.versions.create
        h.reg
            .set_model_version_alias(pb::SetModelVersionAliasRequest {
                registered_model: model.clone(),
                alias: "production".into(),
                version: 1,
                request_id: "alias-1".into(),
            })
            .await
            .unwrap();
        // A retry of the same request is not audited twice; a no-op move is not audited.
        for _ in 0..2 {
            h.reg
                .set_model_version_alias(pb::SetModelVersionAliasRequest {
                    registered_model: model.clone(),
                    alias: "production".into(),
                    version: 1,
                    request_id: "alias-1".into(),
                })
                .await
                .unwrap();
        }
        h.bob
            .review_model_version(pb::ReviewModelVersionRequest {
                name: v.name.clone(),
                decision: pb::ApprovalState::Approved as i32,
                comment: "ok".into(),
                ..Default::default()
            })
            .await
            .unwrap();
        // A refused mutation writes no audit record.
        let _ = h
            .reg
            .review_model_version(pb::ReviewModelVersionRequest {
                name: v.name.clone(),
                decision: pb::ApprovalState::Approved as i32,
                ..Default::default()
            })
            .await
            .unwrap_err();

        let mut audit = AuditServiceClient::new(h.channel.clone());
        let mut events = Vec::new();
        let mut token = String::new();
        loop {
            let r = audit
                .list_audit_events(apb::ListAuditEventsRequest {
                    page_size: 7,
                    page_token: token,
                    ..Default::default()
                })
                .await
                .unwrap()
                .into_inner();
            events.extend(r.events);
            if r.next_page_token.is_empty() {
                break;
            }
            token = r.next_page_token;
        }
        let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
        for e in &events {
            *counts.entry(e.action.as_str()).or_default() += 1;
        }
        let expected: BTreeMap<&str, usize> = [
            ("registry.aliases.set", 1),
            ("registry.models.create", 1),
            ("registry.versions.create", 1),
            ("registry.versions.review", 1),
            ("tracking.artifacts.write", 2),
            ("tracking.experiments.create", 1),
            ("tracking.runs.create", 1),
        ]
        .into();
        assert_eq!(counts, expected, "{l}");
        let review = events
            .iter()
            .find(|e| e.action == "registry.versions.review")
            .unwrap();
        assert_eq!(review.actor, "bob");
        assert_eq!(review.resource, v.name);
        assert!(
            review.has_after && review.after_json.contains("APPROVED")
                || review.after_json.contains("Approved"),
            "{}",
            review.after_json
        );
        let alias = events
            .iter()
            .find(|e| e.action == "registry.aliases.set")
            .unwrap();
        assert_eq!(
            (alias.request_id.as_str(), alias.resource.as_str()),
            ("alias-1", format!("{model}@production").as_str())
        );
        // Filter by service and resource prefix.
        let only = audit
            .list_audit_events(apb::ListAuditEventsRequest {
                service: "registry".into(),
                resource: format!("{model}/*"),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(only.events.len(), 2, "{l}: version create + review");
        let ver = audit
            .verify_audit_chain(apb::VerifyAuditChainRequest::default())
            .await
            .unwrap()
            .into_inner();
        assert!(ver.ok, "{l}: {ver:?}");
        assert_eq!(ver.chains.len(), 2);
        h.stop().await;
    }
}

#[tokio::test]
async fn registry_changes_are_published_through_the_outbox() {
    for mut h in harness::all().await {
        let l = h.label.clone();
        let mut sub = h.bus().subscribe("lifecycle-test", "t").await.unwrap();
        let relay = h.backends.start_relay(steward_registry::app::SERVICE);
        let model = h.model().await;
        let run = h.trained_run(0.9, "0.1").await;
        let v = h.version_from(&model, &run).await;
        h.reg
            .set_model_version_alias(pb::SetModelVersionAliasRequest {
                registered_model: model.clone(),
                alias: "champion".into(),
                version: 1,
                request_id: String::new(),
            })
            .await
            .unwrap();
        h.bob
            .review_model_version(pb::ReviewModelVersionRequest {
                name: v.name.clone(),
                decision: pb::ApprovalState::Approved as i32,
                ..Default::default()
            })
            .await
            .unwrap();
        let mut seen = Vec::new();
        while seen.len() < 3 {
            let d = tokio::time::timeout(Duration::from_secs(10), sub.next())
                .await
                .unwrap_or_else(|_| panic!("{l}: events missing, got {seen:?}"))
                .unwrap();
            let env = d.envelope.clone();
            d.ack().await.unwrap();
            if env.producer != "registry" {
                continue;
            }
            match env.payload.unwrap() {
                Payload::ModelVersionCreated(p) => {
                    assert_eq!(
                        (p.version, p.source_run.as_str(), p.status.as_str()),
                        (1, run.as_str(), "READY")
                    );
                    assert_eq!(p.content_digest, v.content_digest);
                    seen.push(env.r#type);
                }
                Payload::AliasMoved(p) => {
                    assert_eq!(
                        (p.alias.as_str(), p.version, p.previous_version),
                        ("champion", 1, 0)
                    );
                    seen.push(env.r#type);
                }
                Payload::ApprovalChanged(p) => {
                    assert_eq!((p.state.as_str(), p.reviewer.as_str()), ("APPROVED", "bob"));
                    seen.push(env.r#type);
                }
                other => panic!("unexpected {other:?}"),
            }
        }
        assert_eq!(
            seen,
            [
                "registry.version.created",
                "registry.alias.moved",
                "registry.approval.changed"
            ],
            "{l}"
        );
        relay.shutdown().await.unwrap();
        h.stop().await;
    }
}
