//! The deployment suite's seed: two training runs with the demo ONNX model logged through the
//! tracking API, and two registered models (one for Route, one for ModelInfer: a model has one
//! deployment per environment) each with a version from each run, approved by a second
//! person, and deployed in `environments/staging` splitting 90/10 between the versions.

use anyhow::{Context, Result, ensure};
use steward_proto::deployment as dpb;
use steward_proto::deployment::deployment_service_client::DeploymentServiceClient;
use steward_proto::registry as rpb;
use steward_proto::registry::registry_service_client::RegistryServiceClient;
use steward_proto::tracking as tpb;
use steward_proto::tracking::tracking_service_client::TrackingServiceClient;

use super::client::{AsActor, as_actor, channel};

/// The shipped demo model (`services/deployment/models/fraud_demo.onnx`, what
/// `steward_deployment::infer::DEMO_MODEL` holds; read from the file so this crate does not
/// link the ONNX runtime): `score = sigmoid(features @ W + b)`.
pub const DEMO_MODEL: &[u8] = include_bytes!("../../../services/deployment/models/fraud_demo.onnx");
/// Its input: FP32 `[-1, 8]`.
pub const DEMO_INPUT: &str = "features";
/// Features per row.
pub const DEMO_FEATURES: usize = 8;
/// Its output: FP32 `[-1, 1]`.
pub const DEMO_OUTPUT: &str = "score";

/// Who registers the model and deploys it.
const OWNER: &str = "bench";
/// Who approves the versions (not their creator).
const REVIEWER: &str = "bench-reviewer";

/// Name of the 90% variant (version 1).
pub const STABLE: &str = "stable";
/// Name of the 10% variant (version 2).
pub const CANARY: &str = "canary";
/// Basis points of [`CANARY`].
pub const CANARY_BP: i32 = 1_000;

/// A model deployed 90/10 between its versions 1 and 2.
#[derive(Debug, Clone)]
pub struct Deployed {
    /// `registeredModels/{m}`.
    pub model: String,
    /// `deployments/{d}`.
    pub deployment: String,
}

impl Deployed {
    /// `registeredModels/{m}/versions/{v}`.
    pub fn version(&self, v: i64) -> String {
        format!("{}/versions/{v}", self.model)
    }
}

/// What the sections need from the seed.
#[derive(Debug, Clone)]
pub struct Seed {
    /// What Route runs on.
    pub route: Deployed,
    /// What ModelInfer runs on.
    pub infer: Deployed,
}

/// Uploads `data` as artifact `path` of `run` (one chunk: the model is small).
async fn upload(
    c: &mut TrackingServiceClient<tonic::transport::Channel>,
    run: &str,
    path: &str,
    data: &[u8],
) -> Result<()> {
    let msgs = vec![
        tpb::UploadArtifactRequest {
            part: Some(tpb::upload_artifact_request::Part::Header(
                tpb::ArtifactHeader {
                    run: run.to_string(),
                    path: path.to_string(),
                    content_type: "application/octet-stream".into(),
                    request_id: String::new(),
                    expected_sha256: String::new(),
                },
            )),
        },
        tpb::UploadArtifactRequest {
            part: Some(tpb::upload_artifact_request::Part::Chunk(
                data.to_vec().into(),
            )),
        },
    ];
    c.upload_artifact(futures::stream::iter(msgs))
        .await
        .with_context(|| format!("UploadArtifact {path}"))?;
    Ok(())
}

/// One training run with the demo model under `model/`; returns its name.
async fn training_run(
    c: &mut TrackingServiceClient<tonic::transport::Channel>,
    experiment: &str,
    i: usize,
) -> Result<String> {
    let run = c
        .create_run(tpb::CreateRunRequest {
            parent: experiment.to_string(),
            run: Some(tpb::Run {
                run_name: format!("train-{i}"),
                tags: [
                    (
                        "steward.source.git_commit".to_string(),
                        format!("{i:x}c1d0b7e6a5f4c3b2a1908f7e6d5c4b3a2913f2a"),
                    ),
                    (
                        "steward.source.git_repo".to_string(),
                        "https://example.com/ml/fraud.git".to_string(),
                    ),
                ]
                .into(),
                ..Default::default()
            }),
            request_id: String::new(),
        })
        .await
        .context("CreateRun")?
        .into_inner()
        .name;
    c.log_run_inputs(tpb::LogRunInputsRequest {
        run: run.clone(),
        inputs: vec![tpb::DatasetInput {
            dataset: Some(tpb::Dataset {
                name: "transactions".into(),
                digest: format!("sha256:{}", "ab".repeat(32)),
                source_uri: "s3://data/transactions/2026-01.parquet".into(),
                source_type: "s3".into(),
                ..Default::default()
            }),
            context: "training".into(),
        }],
        request_id: String::new(),
    })
    .await
    .context("LogRunInputs")?;
    upload(c, &run, "model/model.onnx", DEMO_MODEL).await?;
    Ok(run)
}

/// A deployment of `model` in staging named `id`: stable v1 90%, canary v2 10%.
async fn deploy(d: &mut DeploymentServiceClient<AsActor>, model: &str, id: &str) -> Result<String> {
    let variant = |name: &str, v: i64, weight_bp: i32| dpb::Variant {
        name: name.into(),
        model_version: format!("{model}/versions/{v}"),
        weight_bp,
        ..Default::default()
    };
    let dep = d
        .create_deployment(dpb::CreateDeploymentRequest {
            deployment: Some(dpb::Deployment {
                name: format!("deployments/{id}"),
                registered_model: model.to_string(),
                environment: "environments/staging".into(),
                ..Default::default()
            }),
            variants: vec![
                variant(STABLE, 1, 10_000 - CANARY_BP),
                variant(CANARY, 2, CANARY_BP),
            ],
            shadow: None,
            request_id: String::new(),
        })
        .await
        .with_context(|| format!("CreateDeployment {id}"))?
        .into_inner();
    let rev = dep.current_revision.context("no current revision")?;
    ensure!(
        rev.number == 1 && rev.variants.len() == 2,
        "{} was created with revision {} of {} variants",
        dep.name,
        rev.number,
        rev.variants.len()
    );
    Ok(dep.name)
}

/// Registers model `id` with a version from each of `runs`, approved by [`REVIEWER`], and
/// deploys it as `{id}` in staging, 90/10.
async fn model(ch: &tonic::transport::Channel, id: &str, runs: &[String]) -> Result<Deployed> {
    let mut reg = RegistryServiceClient::new(as_actor(ch.clone(), OWNER));
    let mut reviewer = RegistryServiceClient::new(as_actor(ch.clone(), REVIEWER));
    let mut dep = DeploymentServiceClient::new(as_actor(ch.clone(), OWNER));
    let model = reg
        .create_registered_model(rpb::CreateRegisteredModelRequest {
            registered_model: Some(rpb::RegisteredModel {
                name: format!("registeredModels/{id}"),
                description: "steward-bench: the demo fraud model".into(),
                ..Default::default()
            }),
            request_id: String::new(),
        })
        .await
        .context("CreateRegisteredModel")?
        .into_inner()
        .name;
    for run in runs {
        let v = reg
            .create_model_version(rpb::CreateModelVersionRequest {
                parent: model.clone(),
                model_version: Some(rpb::ModelVersion {
                    source_run: run.clone(),
                    artifact_path: "model".into(),
                    format: "onnx".into(),
                    ..Default::default()
                }),
                request_id: String::new(),
            })
            .await
            .context("CreateModelVersion")?
            .into_inner();
        ensure!(
            v.status == rpb::ModelVersionStatus::Ready as i32,
            "{} is not READY (status {})",
            v.name,
            v.status
        );
        reviewer
            .review_model_version(rpb::ReviewModelVersionRequest {
                name: v.name.clone(),
                decision: rpb::ApprovalState::Approved as i32,
                comment: "steward-bench".into(),
                ..Default::default()
            })
            .await
            .with_context(|| format!("ReviewModelVersion {}", v.name))?;
    }
    let deployment = deploy(&mut dep, &model, id).await?;
    Ok(Deployed { model, deployment })
}

/// Seeds everything; `tag` makes the names unique on a reused server.
pub async fn seed(url: &str, tag: &str) -> Result<Seed> {
    let ch = channel(url).await?;
    let mut t = TrackingServiceClient::new(ch.clone());
    let exp = t
        .create_experiment(tpb::CreateExperimentRequest {
            experiment: Some(tpb::Experiment {
                display_name: format!("bench-deployment-{tag}"),
                ..Default::default()
            }),
            request_id: String::new(),
        })
        .await
        .context("CreateExperiment")?
        .into_inner();
    let mut runs = Vec::new();
    for i in 1..=2 {
        runs.push(training_run(&mut t, &exp.name, i).await?);
    }
    Ok(Seed {
        route: model(&ch, &format!("bench-route-{tag}"), &runs).await?,
        infer: model(&ch, &format!("bench-infer-{tag}"), &runs).await?,
    })
}
