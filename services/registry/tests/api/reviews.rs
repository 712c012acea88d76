//! Approvals: reviewer is not the creator, history is kept, etags hold.

use steward_proto::registry as pb;
use tonic::Code;

use crate::harness::{self, assert_bad, reason};

fn review(name: &str, d: pb::ApprovalState, comment: &str) -> pb::ReviewModelVersionRequest {
    pb::ReviewModelVersionRequest {
        name: name.into(),
        decision: d as i32,
        comment: comment.into(),
        ..Default::default()
    }
}

#[tokio::test]
async fn reviews_record_state_reviewer_and_history() {
    for mut h in harness::all().await {
        let l = h.label.clone();
        let model = h.model().await;
        let run = h.trained_run(0.9, "0.1").await;
        let v = h.version_from(&model, &run).await;
        // The creator may not review their own version.
        let e = h
            .reg
            .review_model_version(review(&v.name, pb::ApprovalState::Approved, "lgtm"))
            .await
            .unwrap_err();
        assert_eq!(
            (e.code(), reason(&e).as_str()),
            (Code::PermissionDenied, "SELF_REVIEW"),
            "{l}"
        );
        let r = h
            .bob
            .review_model_version(review(
                &v.name,
                pb::ApprovalState::Rejected,
                "auc too low on segment B",
            ))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(r.approval_state, pb::ApprovalState::Rejected as i32);
        let mut carol = h.as_("carol");
        let r = carol
            .review_model_version(review(
                &format!("{model}/versions/1"),
                pb::ApprovalState::Approved,
                "fixed by re-eval",
            ))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(r.approval_state, pb::ApprovalState::Approved as i32);
        let last = r.last_review.unwrap();
        assert_eq!(
            (last.reviewer.as_str(), last.comment.as_str()),
            ("carol", "fixed by re-eval")
        );
        // A stale etag is ABORTED.
        let mut stale = review(&v.name, pb::ApprovalState::Pending, "");
        stale.etag = v.etag.clone();
        assert_eq!(
            h.bob.review_model_version(stale).await.unwrap_err().code(),
            Code::Aborted
        );
        let hist = h
            .reg
            .list_approval_history(pb::ListApprovalHistoryRequest {
                name: v.name.clone(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        let who: Vec<(&str, i32)> = hist
            .reviews
            .iter()
            .map(|r| (r.reviewer.as_str(), r.state))
            .collect();
        assert_eq!(
            who,
            [
                ("carol", pb::ApprovalState::Approved as i32),
                ("bob", pb::ApprovalState::Rejected as i32)
            ],
            "{l}"
        );
        // Bad input.
        let e = h
            .bob
            .review_model_version(review(&v.name, pb::ApprovalState::Unspecified, ""))
            .await
            .unwrap_err();
        assert_bad(e, Code::InvalidArgument, Some("decision"));
        let e = h
            .bob
            .review_model_version(review(
                "registeredModels/x/versions/zero",
                pb::ApprovalState::Approved,
                "",
            ))
            .await
            .unwrap_err();
        assert_bad(e, Code::InvalidArgument, Some("name"));
        h.stop().await;
    }
}

#[tokio::test]
async fn compare_reports_params_metrics_datasets_signature_and_code() {
    for mut h in harness::all().await {
        let model = h.model().await;
        let a = h.trained_run(0.80, "0.1").await;
        let b = h.trained_run(0.86, "0.05").await;
        h.version_from(&model, &a).await;
        h.version_from(&model, &b).await;
        h.reg
            .set_model_version_alias(pb::SetModelVersionAliasRequest {
                registered_model: model.clone(),
                alias: "challenger".into(),
                version: 2,
                request_id: String::new(),
            })
            .await
            .unwrap();
        let c = h
            .reg
            .compare_model_versions(pb::CompareModelVersionsRequest {
                base: format!("{model}/versions/1"),
                other: format!("{model}@challenger"),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(c.params.len(), 1);
        assert_eq!(
            (
                c.params[0].key.as_str(),
                c.params[0].base.as_str(),
                c.params[0].other.as_str()
            ),
            ("lr", "0.1", "0.05")
        );
        let auc = c.metrics.iter().find(|m| m.key == "auc").unwrap();
        assert!((auc.delta - 0.06).abs() < 1e-9, "{auc:?}");
        assert!(c.datasets.is_empty(), "same dataset digest");
        assert!(c.signature.is_empty());
        // Same files, same digest: no code-version difference but the run differs.
        assert!(c.code_version.is_empty(), "{:?}", c.code_version);
        assert_eq!(c.other.unwrap().version, 2);
        let e = h
            .reg
            .compare_model_versions(pb::CompareModelVersionsRequest {
                base: "nope".into(),
                other: format!("{model}/versions/1"),
            })
            .await
            .unwrap_err();
        assert_bad(e, Code::InvalidArgument, Some("base"));
        h.stop().await;
    }
}
