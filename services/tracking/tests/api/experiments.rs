//! Experiments: create, unique names, get by id or name, update with etags, soft delete,
//! restore, list with filters and pagination, retries with request_id.

use prost_types::FieldMask;
use steward_proto::tracking as pb;
use tonic::Code;

use crate::harness::{self, assert_bad, reason};

#[tokio::test]
async fn experiment_lifecycle() {
    for mut h in harness::all().await {
        let label = h.label.clone();
        let name = format!("fraud-{}", uuid::Uuid::new_v4());
        let mut tags = std::collections::HashMap::new();
        tags.insert("team".to_string(), "risk".to_string());
        let e = h
            .client
            .create_experiment(pb::CreateExperimentRequest {
                experiment: Some(pb::Experiment {
                    display_name: name.clone(),
                    description: "d".into(),
                    tags,
                    ..Default::default()
                }),
                request_id: "req-create-1".into(),
            })
            .await
            .unwrap()
            .into_inner();
        assert!(e.name.starts_with("experiments/"), "{label}");
        assert_eq!(e.state, pb::LifecycleState::Active as i32);
        assert!(
            e.artifact_location
                .contains(&e.name["experiments/".len()..]),
            "{label}: {}",
            e.artifact_location
        );

        // A retry with the same request_id returns the original, not a duplicate error.
        let again = h
            .client
            .create_experiment(pb::CreateExperimentRequest {
                experiment: Some(pb::Experiment {
                    display_name: name.clone(),
                    description: "d".into(),
                    tags: e.tags.clone(),
                    ..Default::default()
                }),
                request_id: "req-create-1".into(),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(again, e, "{label}: retry returns the original result");
        // The same request_id with a different request is refused.
        let reused = h
            .client
            .create_experiment(pb::CreateExperimentRequest {
                experiment: Some(pb::Experiment {
                    display_name: "other".into(),
                    ..Default::default()
                }),
                request_id: "req-create-1".into(),
            })
            .await
            .unwrap_err();
        assert_eq!(reused.code(), Code::FailedPrecondition, "{label}");
        // A different request with the same name is ALREADY_EXISTS naming the field.
        let dup = h
            .client
            .create_experiment(pb::CreateExperimentRequest {
                experiment: Some(pb::Experiment {
                    display_name: name.clone(),
                    ..Default::default()
                }),
                request_id: String::new(),
            })
            .await
            .unwrap_err();
        assert_bad(dup, Code::AlreadyExists, Some("experiment.display_name"));

        // Get by id and by name.
        let by_id = h
            .client
            .get_experiment(pb::GetExperimentRequest {
                name: e.name.clone(),
                display_name: String::new(),
            })
            .await
            .unwrap()
            .into_inner();
        let by_name = h
            .client
            .get_experiment(pb::GetExperimentRequest {
                name: String::new(),
                display_name: name.clone(),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(by_id, e);
        assert_eq!(by_name, e);

        // Update with the current etag works; a stale etag is ABORTED and changes nothing.
        let upd = h
            .client
            .update_experiment(pb::UpdateExperimentRequest {
                experiment: Some(pb::Experiment {
                    name: e.name.clone(),
                    description: "new".into(),
                    etag: e.etag.clone(),
                    ..Default::default()
                }),
                update_mask: Some(FieldMask {
                    paths: vec!["description".into()],
                }),
                request_id: String::new(),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(upd.description, "new");
        assert_eq!(upd.display_name, name, "fields outside the mask are kept");
        assert_ne!(upd.etag, e.etag);
        let stale = h
            .client
            .update_experiment(pb::UpdateExperimentRequest {
                experiment: Some(pb::Experiment {
                    name: e.name.clone(),
                    description: "lost".into(),
                    etag: e.etag.clone(),
                    ..Default::default()
                }),
                update_mask: Some(FieldMask {
                    paths: vec!["description".into()],
                }),
                request_id: String::new(),
            })
            .await
            .unwrap_err();
        assert_eq!(stale.code(), Code::Aborted, "{label}");
        assert_eq!(reason(&stale), "ETAG_MISMATCH");
        let bad_mask = h
            .client
            .update_experiment(pb::UpdateExperimentRequest {
                experiment: Some(pb::Experiment {
                    name: e.name.clone(),
                    ..Default::default()
                }),
                update_mask: Some(FieldMask {
                    paths: vec!["state".into()],
                }),
                request_id: String::new(),
            })
            .await
            .unwrap_err();
        assert_bad(bad_mask, Code::InvalidArgument, Some("update_mask"));

        // Delete hides it from lists; undelete restores it.
        let del = h
            .client
            .delete_experiment(pb::DeleteExperimentRequest {
                name: e.name.clone(),
                etag: String::new(),
                request_id: String::new(),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(del.state, pb::LifecycleState::Deleted as i32);
        assert!(del.delete_time.is_some());
        let listed = h
            .client
            .list_experiments(pb::ListExperimentsRequest {
                filter: format!("display_name = '{name}'"),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        assert!(
            listed.experiments.is_empty(),
            "{label}: deleted experiments are hidden"
        );
        let listed = h
            .client
            .list_experiments(pb::ListExperimentsRequest {
                filter: format!("display_name = '{name}'"),
                show_deleted: true,
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(listed.experiments.len(), 1);
        let again = h
            .client
            .delete_experiment(pb::DeleteExperimentRequest {
                name: e.name.clone(),
                etag: String::new(),
                request_id: String::new(),
            })
            .await
            .unwrap_err();
        assert_eq!(again.code(), Code::FailedPrecondition);
        let run = h
            .client
            .create_run(pb::CreateRunRequest {
                parent: e.name.clone(),
                run: None,
                request_id: String::new(),
            })
            .await
            .unwrap_err();
        assert_eq!(
            run.code(),
            Code::FailedPrecondition,
            "no runs in a deleted experiment"
        );
        let back = h
            .client
            .undelete_experiment(pb::UndeleteExperimentRequest {
                name: e.name.clone(),
                etag: String::new(),
                request_id: String::new(),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(back.state, pb::LifecycleState::Active as i32);
        assert!(back.delete_time.is_none());
        h.stop().await;
    }
}

#[tokio::test]
async fn list_filters_and_pages() {
    for mut h in harness::all().await {
        let prefix = format!("page-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
        for i in 0..7 {
            let mut tags = std::collections::HashMap::new();
            tags.insert(
                "parity".to_string(),
                if i % 2 == 0 { "even" } else { "odd" }.to_string(),
            );
            h.client
                .create_experiment(pb::CreateExperimentRequest {
                    experiment: Some(pb::Experiment {
                        display_name: format!("{prefix}-{i}"),
                        tags,
                        ..Default::default()
                    }),
                    request_id: String::new(),
                })
                .await
                .unwrap();
        }
        let mut seen = Vec::new();
        let mut token = String::new();
        loop {
            let page = h
                .client
                .list_experiments(pb::ListExperimentsRequest {
                    page_size: 3,
                    page_token: token.clone(),
                    filter: format!("display_name LIKE '{prefix}%' AND tags.parity = 'even'"),
                    order_by: "display_name".into(),
                    show_deleted: false,
                })
                .await
                .unwrap()
                .into_inner();
            assert!(page.experiments.len() <= 3);
            seen.extend(page.experiments.into_iter().map(|e| e.display_name));
            if page.next_page_token.is_empty() {
                break;
            }
            token = page.next_page_token;
        }
        let want: Vec<String> = [0, 2, 4, 6]
            .iter()
            .map(|i| format!("{prefix}-{i}"))
            .collect();
        assert_eq!(seen, want, "{}", h.label);

        // A token from another query is refused, naming page_token.
        let first = h
            .client
            .list_experiments(pb::ListExperimentsRequest {
                page_size: 1,
                filter: format!("display_name LIKE '{prefix}%'"),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        let err = h
            .client
            .list_experiments(pb::ListExperimentsRequest {
                page_size: 1,
                page_token: first.next_page_token,
                filter: "display_name = 'x'".into(),
                ..Default::default()
            })
            .await
            .unwrap_err();
        assert_bad(err, Code::InvalidArgument, Some("page_token"));
        let err = h
            .client
            .list_experiments(pb::ListExperimentsRequest {
                filter: "display_name ==".into(),
                ..Default::default()
            })
            .await
            .unwrap_err();
        assert_bad(err, Code::InvalidArgument, Some("filter"));
        let err = h
            .client
            .list_experiments(pb::ListExperimentsRequest {
                page_size: -1,
                ..Default::default()
            })
            .await
            .unwrap_err();
        assert_bad(err, Code::InvalidArgument, Some("page_size"));
        h.stop().await;
    }
}

#[tokio::test]
async fn bad_experiment_input_is_refused_and_writes_nothing() {
    for mut h in harness::all().await {
        let cases: Vec<(pb::CreateExperimentRequest, &str)> = vec![
            (
                pb::CreateExperimentRequest {
                    experiment: None,
                    request_id: String::new(),
                },
                "experiment",
            ),
            (
                pb::CreateExperimentRequest {
                    experiment: Some(pb::Experiment::default()),
                    request_id: String::new(),
                },
                "experiment.display_name",
            ),
            (
                pb::CreateExperimentRequest {
                    experiment: Some(pb::Experiment {
                        display_name: "x".repeat(501),
                        ..Default::default()
                    }),
                    request_id: String::new(),
                },
                "experiment.display_name",
            ),
            (
                pb::CreateExperimentRequest {
                    experiment: Some(pb::Experiment {
                        display_name: "a\u{0}b".into(),
                        ..Default::default()
                    }),
                    request_id: String::new(),
                },
                "experiment.display_name",
            ),
            (
                pb::CreateExperimentRequest {
                    experiment: Some(pb::Experiment {
                        display_name: "ok".into(),
                        ..Default::default()
                    }),
                    request_id: "x".repeat(200),
                },
                "request_id",
            ),
        ];
        let before = h
            .client
            .list_experiments(pb::ListExperimentsRequest {
                page_size: 1000,
                show_deleted: true,
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        for (req, field) in cases {
            let err = h.client.create_experiment(req).await.unwrap_err();
            assert_bad(err, Code::InvalidArgument, Some(field));
        }
        let err = h
            .client
            .get_experiment(pb::GetExperimentRequest {
                name: "experiments/../../etc".into(),
                display_name: String::new(),
            })
            .await
            .unwrap_err();
        assert_bad(err, Code::InvalidArgument, Some("name"));
        let err = h
            .client
            .get_experiment(pb::GetExperimentRequest {
                name: format!("experiments/{}", "0".repeat(32)),
                display_name: String::new(),
            })
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::NotFound);
        let after = h
            .client
            .list_experiments(pb::ListExperimentsRequest {
                page_size: 1000,
                show_deleted: true,
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(
            before.experiments.len(),
            after.experiments.len(),
            "bad input writes nothing"
        );
        h.stop().await;
    }
}
