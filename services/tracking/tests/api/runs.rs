//! Runs: create (tags, nested), get with latest metrics, update status, delete and restore.

use prost_types::FieldMask;
use steward_proto::tracking as pb;
use tonic::Code;

use crate::harness::{self, assert_bad};

#[tokio::test]
async fn run_lifecycle() {
    for mut h in harness::all().await {
        let label = h.label.clone();
        let e = h.experiment().await;
        let mut tags = std::collections::HashMap::new();
        tags.insert(
            "steward.source.git_commit".to_string(),
            "abc123".to_string(),
        );
        let parent = h
            .client
            .create_run(pb::CreateRunRequest {
                parent: e.name.clone(),
                run: Some(pb::Run {
                    run_name: "parent".into(),
                    tags,
                    ..Default::default()
                }),
                request_id: "create-parent".into(),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(parent.status, pb::RunStatus::Running as i32, "{label}");
        assert!(parent.start_time.is_some());
        assert_eq!(
            parent
                .tags
                .get("steward.source.git_commit")
                .map(String::as_str),
            Some("abc123")
        );
        assert!(
            parent.artifact_uri.ends_with("/artifacts"),
            "{}",
            parent.artifact_uri
        );
        let retry = h
            .client
            .create_run(pb::CreateRunRequest {
                parent: e.name.clone(),
                run: Some(pb::Run {
                    run_name: "parent".into(),
                    tags: parent.tags.clone(),
                    ..Default::default()
                }),
                request_id: "create-parent".into(),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(
            retry.name, parent.name,
            "{label}: a retried create returns the same run"
        );

        let child = h
            .client
            .create_run(pb::CreateRunRequest {
                parent: e.name.clone(),
                run: Some(pb::Run {
                    parent_run: parent.name.clone(),
                    ..Default::default()
                }),
                request_id: String::new(),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(child.parent_run, parent.name);
        assert!(!child.run_name.is_empty(), "a name is generated");

        // A parent from another experiment is refused.
        let other = h.experiment().await;
        let err = h
            .client
            .create_run(pb::CreateRunRequest {
                parent: other.name.clone(),
                run: Some(pb::Run {
                    parent_run: parent.name.clone(),
                    ..Default::default()
                }),
                request_id: String::new(),
            })
            .await
            .unwrap_err();
        assert_bad(err, Code::InvalidArgument, Some("run.parent_run"));

        // Log a metric and see its latest value in the run view.
        h.client
            .log_run_data(pb::LogRunDataRequest {
                run: parent.name.clone(),
                metrics: vec![
                    pb::MetricPoint {
                        key: "loss".into(),
                        value: 0.5,
                        timestamp: None,
                        step: 2,
                    },
                    pb::MetricPoint {
                        key: "loss".into(),
                        value: 0.9,
                        timestamp: None,
                        step: 1,
                    },
                ],
                ..Default::default()
            })
            .await
            .unwrap();
        let got = h
            .client
            .get_run(pb::GetRunRequest {
                name: parent.name.clone(),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(got.latest_metrics.len(), 1);
        assert_eq!(
            (got.latest_metrics[0].step, got.latest_metrics[0].value),
            (2, 0.5),
            "{label}: latest = highest step"
        );

        // Finish: end_time is set, etag changes, stale etag is refused.
        let fin = h
            .client
            .update_run(pb::UpdateRunRequest {
                run: Some(pb::Run {
                    name: parent.name.clone(),
                    status: pb::RunStatus::Finished as i32,
                    etag: got.etag.clone(),
                    ..Default::default()
                }),
                update_mask: Some(FieldMask {
                    paths: vec!["status".into()],
                }),
                request_id: String::new(),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(fin.status, pb::RunStatus::Finished as i32);
        assert!(
            fin.end_time.is_some(),
            "{label}: a terminal status sets end_time"
        );
        assert_eq!(
            fin.latest_metrics.len(),
            1,
            "the update returns the full view"
        );
        let stale = h
            .client
            .update_run(pb::UpdateRunRequest {
                run: Some(pb::Run {
                    name: parent.name.clone(),
                    run_name: "x".into(),
                    etag: got.etag.clone(),
                    ..Default::default()
                }),
                update_mask: Some(FieldMask {
                    paths: vec!["run_name".into()],
                }),
                request_id: String::new(),
            })
            .await
            .unwrap_err();
        assert_eq!(stale.code(), Code::Aborted);
        let bad_end = h
            .client
            .update_run(pb::UpdateRunRequest {
                run: Some(pb::Run {
                    name: parent.name.clone(),
                    end_time: Some(prost_types::Timestamp {
                        seconds: 1,
                        nanos: 0,
                    }),
                    ..Default::default()
                }),
                update_mask: Some(FieldMask {
                    paths: vec!["end_time".into()],
                }),
                request_id: String::new(),
            })
            .await
            .unwrap_err();
        assert_bad(bad_end, Code::InvalidArgument, Some("run.end_time"));

        // Delete, then logging is refused; undelete restores.
        h.client
            .delete_run(pb::DeleteRunRequest {
                name: child.name.clone(),
                etag: String::new(),
                request_id: String::new(),
            })
            .await
            .unwrap();
        let err = h
            .client
            .log_run_data(pb::LogRunDataRequest {
                run: child.name.clone(),
                params: vec![pb::Param {
                    key: "a".into(),
                    value: "1".into(),
                }],
                ..Default::default()
            })
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::FailedPrecondition);
        let back = h
            .client
            .undelete_run(pb::UndeleteRunRequest {
                name: child.name.clone(),
                etag: String::new(),
                request_id: String::new(),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(back.state, pb::LifecycleState::Active as i32);

        // Names that do not parse or do not exist.
        let err = h
            .client
            .get_run(pb::GetRunRequest {
                name: "experiments/x/runs/y".into(),
            })
            .await
            .unwrap_err();
        assert_bad(err, Code::InvalidArgument, Some("name"));
        let missing = format!("{}/runs/{}", e.name, "f".repeat(32));
        let err = h
            .client
            .get_run(pb::GetRunRequest { name: missing })
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::NotFound);
        // A run addressed under the wrong experiment is not found.
        let wrong = parent.name.replace(&e.name, &other.name);
        assert_eq!(
            h.client
                .get_run(pb::GetRunRequest { name: wrong })
                .await
                .unwrap_err()
                .code(),
            Code::NotFound
        );
        h.stop().await;
    }
}
