//! Dataset versions through the suite: a run trained on a stored version, the model version's
//! frozen lineage and reproducibility manifest, the deployment policy that requires a complete
//! manifest, and a dataset version that cannot be deleted while a model was trained on it.

use steward_proto::deployment as pb;
use steward_proto::registry as rpb;
use steward_proto::tracking as tpb;
use steward_proto::tracking::tracking_service_client::TrackingServiceClient;
use tonic::Code;

use crate::harness::{self, reason};

async fn upload_artifact(
    t: &mut TrackingServiceClient<tonic::transport::Channel>,
    run: &str,
    path: &str,
    body: &[u8],
) {
    t.upload_artifact(futures::stream::iter(vec![
        tpb::UploadArtifactRequest {
            part: Some(tpb::upload_artifact_request::Part::Header(
                tpb::ArtifactHeader {
                    run: run.into(),
                    path: path.into(),
                    ..Default::default()
                },
            )),
        },
        tpb::UploadArtifactRequest {
            part: Some(tpb::upload_artifact_request::Part::Chunk(
                body.to_vec().into(),
            )),
        },
    ]))
    .await
    .unwrap();
}

#[tokio::test]
async fn a_model_trained_on_a_stored_version_is_reproducible_and_pins_it() {
    for mut h in harness::all().await {
        let l = h.label.clone();
        let mut t = TrackingServiceClient::new(h.channel.clone());
        let ds = format!("tx-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
        // A dataset version.
        let v = t
            .create_dataset_version(tpb::CreateDatasetVersionRequest {
                parent: format!("datasets/{ds}"),
                version: None,
                request_id: String::new(),
            })
            .await
            .unwrap()
            .into_inner();
        let data = b"amount,label\n1.5,0\n2.5,1\n".to_vec();
        t.upload_dataset_file(futures::stream::iter(vec![
            tpb::UploadDatasetFileRequest {
                part: Some(tpb::upload_dataset_file_request::Part::Header(
                    tpb::DatasetFileHeader {
                        version: v.name.clone(),
                        path: "train.csv".into(),
                        ..Default::default()
                    },
                )),
            },
            tpb::UploadDatasetFileRequest {
                part: Some(tpb::upload_dataset_file_request::Part::Chunk(
                    data.clone().into(),
                )),
            },
        ]))
        .await
        .unwrap();
        let v = t
            .commit_dataset_version(tpb::CommitDatasetVersionRequest {
                name: v.name.clone(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();

        // A run trained on it, with a code version and the model file.
        let exp = t
            .create_experiment(tpb::CreateExperimentRequest {
                experiment: Some(tpb::Experiment {
                    display_name: format!("e-{ds}"),
                    ..Default::default()
                }),
                request_id: String::new(),
            })
            .await
            .unwrap()
            .into_inner();
        let run = t
            .create_run(tpb::CreateRunRequest {
                parent: exp.name.clone(),
                run: Some(tpb::Run {
                    tags: [
                        (
                            "steward.source.git_commit".to_string(),
                            "0123abcd".to_string(),
                        ),
                        (
                            "steward.source.git_repo".to_string(),
                            "https://git.example/fraud".to_string(),
                        ),
                    ]
                    .into(),
                    ..Default::default()
                }),
                request_id: String::new(),
            })
            .await
            .unwrap()
            .into_inner();
        t.log_run_inputs(tpb::LogRunInputsRequest {
            run: run.name.clone(),
            inputs: vec![tpb::DatasetInput {
                dataset: Some(tpb::Dataset {
                    version: v.name.clone(),
                    ..Default::default()
                }),
                context: "training".into(),
            }],
            request_id: String::new(),
        })
        .await
        .unwrap();
        upload_artifact(
            &mut t,
            &run.name,
            "model/model.onnx",
            steward_deployment::infer::DEMO_MODEL,
        )
        .await;
        let model = format!("m-{ds}");
        h.reg
            .create_registered_model(rpb::CreateRegisteredModelRequest {
                registered_model: Some(rpb::RegisteredModel {
                    name: model.clone(),
                    ..Default::default()
                }),
                request_id: String::new(),
            })
            .await
            .unwrap();
        let create = |run: String| rpb::CreateModelVersionRequest {
            parent: format!("registeredModels/{model}"),
            model_version: Some(rpb::ModelVersion {
                source_run: run,
                artifact_path: "model".into(),
                format: "onnx".into(),
                ..Default::default()
            }),
            request_id: String::new(),
        };
        let mv = h
            .reg
            .create_model_version(create(run.name.clone()))
            .await
            .unwrap()
            .into_inner();

        // The frozen lineage names the stored version and its digest.
        let lin = h
            .reg
            .get_lineage(rpb::GetLineageRequest {
                name: mv.name.clone(),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(lin.datasets.len(), 1, "{l}");
        assert_eq!(lin.datasets[0].digest, v.digest);
        assert_eq!(lin.datasets[0].source_uri, v.name);
        // Models can be searched by the dataset digest.
        let found = h
            .reg
            .list_model_versions(rpb::ListModelVersionsRequest {
                parent: format!("registeredModels/{model}"),
                filter: format!("datasets.digest = '{}'", v.digest),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(found.model_versions.len(), 1, "{l}");
        let models = h
            .reg
            .list_registered_models(rpb::ListRegisteredModelsRequest {
                filter: format!(
                    "datasets.digest = '{}' AND datasets.context = 'training'",
                    v.digest
                ),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        let names: Vec<&str> = models
            .registered_models
            .iter()
            .map(|m| m.name.as_str())
            .collect();
        assert_eq!(
            names,
            vec![format!("registeredModels/{model}").as_str()],
            "{l}"
        );

        // No lock file yet: incomplete, and says so.
        let m = h
            .reg
            .get_reproducibility_manifest(rpb::GetReproducibilityManifestRequest {
                name: mv.name.clone(),
            })
            .await
            .unwrap()
            .into_inner();
        assert!(!m.complete, "{l}");
        assert_eq!(m.missing.len(), 1, "{:?}", m.missing);
        assert!(
            m.missing[0].starts_with("environment_files"),
            "{:?}",
            m.missing
        );
        assert_eq!(m.datasets[0].version, v.name);
        assert_eq!(m.code_version.as_ref().unwrap().git_commit, "0123abcd");
        assert_eq!(m.content_digest, mv.content_digest);

        // A production that requires reproducible versions refuses it.
        let prod = h
            .dep
            .get_environment(pb::GetEnvironmentRequest {
                name: "environments/production".into(),
            })
            .await
            .unwrap()
            .into_inner();
        let mut policy = prod.policy.clone().unwrap_or_default();
        policy.require_reproducible = true;
        policy.require_approved = false;
        policy.require_previous_environment = String::new();
        h.dep
            .update_environment(pb::UpdateEnvironmentRequest {
                environment: Some(pb::Environment {
                    name: prod.name.clone(),
                    policy: Some(policy),
                    ..Default::default()
                }),
                update_mask: vec!["policy".into()],
                ..Default::default()
            })
            .await
            .unwrap();
        let e = h
            .deploy(&model, "production", &[("main", mv.version, 10_000)])
            .await
            .unwrap_err();
        assert_eq!(
            (e.code(), reason(&e).as_str()),
            (Code::FailedPrecondition, "POLICY_VIOLATION"),
            "{l}"
        );
        assert!(e.message().contains("environment_files"), "{}", e.message());

        // With a lock file logged, a new version is complete and deploys.
        upload_artifact(&mut t, &run.name, "requirements.txt", b"numpy==2.1.0\n").await;
        let mv2 = h
            .reg
            .create_model_version(create(run.name.clone()))
            .await
            .unwrap()
            .into_inner();
        let m = h
            .reg
            .get_reproducibility_manifest(rpb::GetReproducibilityManifestRequest {
                name: mv2.name.clone(),
            })
            .await
            .unwrap()
            .into_inner();
        assert!(m.complete, "{l}: {:?}", m.missing);
        assert_eq!(m.environment_files[0].path, "requirements.txt");
        h.deploy(&model, "production", &[("main", mv2.version, 10_000)])
            .await
            .unwrap();

        // The training data of a model version cannot be deleted.
        let e = t
            .delete_dataset_version(tpb::DeleteDatasetVersionRequest {
                name: v.name.clone(),
                request_id: String::new(),
            })
            .await
            .unwrap_err();
        assert_eq!(
            (e.code(), reason(&e).as_str()),
            (Code::FailedPrecondition, "DATASET_VERSION_IN_USE"),
            "{l}"
        );
        assert!(e.message().contains(&mv.name), "{}", e.message());
        h.stop().await;
    }
}
