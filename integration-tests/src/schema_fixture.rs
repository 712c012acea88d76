//! The data of the schema-upgrade fixtures (`integration-tests/fixtures/schema/`): what
//! [`populate`] writes through the public API of a server built at an earlier schema version,
//! and what [`verify`] expects to read back after the current binary migrated that database.
//!
//! Schema versions: 1 = tracking (m0001), 2 = + registry (m0002), 3 = + deployment (m0003).
//! `fixtures/schema/generate.sh` builds each earlier release, runs it, calls [`populate`] and
//! keeps the database it wrote (a SQLite file, and a `pg_dump` of a Postgres database).

use anyhow::{Context, bail, ensure};
use steward_proto::deployment as dpb;
use steward_proto::deployment::deployment_service_client::DeploymentServiceClient;
use steward_proto::inference as oip;
use steward_proto::inference::grpc_inference_service_client::GrpcInferenceServiceClient;
use steward_proto::registry as rpb;
use steward_proto::registry::registry_service_client::RegistryServiceClient;
use steward_proto::tracking as pb;
use steward_proto::tracking::tracking_service_client::TrackingServiceClient;
use tonic::transport::Channel;

/// The ONNX model the fixtures log and serve (the deployment service's demo model).
pub const MODEL_BYTES: &[u8] = include_bytes!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../services/deployment/models/fraud_demo.onnx"
));
/// Display name of the fixture experiment.
pub const EXPERIMENT: &str = "upgrade-fixture";
/// The fixture's registered model (schema 2 and later).
pub const MODEL: &str = "upgrade-model";
/// The `loss` values logged at steps 0, 1, 2, 3.
pub const LOSS: [f64; 4] = [1.0, 0.5, 0.25, 0.125];
/// Request ids of the ModelInfer calls recorded at schema 3.
pub const REQUESTS: [&str; 3] = ["fixture-0", "fixture-1", "fixture-2"];
/// The newest schema version with a fixture.
pub const LATEST_FIXTURE: u32 = 3;

fn infer(model: &str, id: &str, i: usize) -> oip::ModelInferRequest {
    oip::ModelInferRequest {
        model_name: model.into(),
        id: id.into(),
        inputs: vec![oip::model_infer_request::InferInputTensor {
            name: "features".into(),
            datatype: "FP32".into(),
            shape: vec![1, 8],
            contents: Some(oip::InferTensorContents {
                fp32_contents: (0..8).map(|j| ((i * 8 + j) % 10) as f32 / 10.0).collect(),
                ..Default::default()
            }),
            ..Default::default()
        }],
        ..Default::default()
    }
}

async fn upload(tc: &mut TrackingServiceClient<Channel>, run: &str) -> anyhow::Result<()> {
    use pb::upload_artifact_request::Part;
    let header = pb::UploadArtifactRequest {
        part: Some(Part::Header(pb::ArtifactHeader {
            run: run.into(),
            path: "model/model.onnx".into(),
            ..Default::default()
        })),
    };
    let chunk = pb::UploadArtifactRequest {
        part: Some(Part::Chunk(MODEL_BYTES.to_vec().into())),
    };
    tc.upload_artifact(futures::stream::iter([header, chunk]))
        .await
        .context("UploadArtifact")?;
    Ok(())
}

/// Writes the fixture data of schema `version` through the server on `channel`.
///
/// # Errors
/// Any failed call.
pub async fn populate(channel: Channel, version: u32) -> anyhow::Result<()> {
    let mut tc = TrackingServiceClient::new(channel.clone());
    let exp = tc
        .create_experiment(pb::CreateExperimentRequest {
            experiment: Some(pb::Experiment {
                display_name: EXPERIMENT.into(),
                description: format!("written by schema version {version}"),
                ..Default::default()
            }),
            request_id: String::new(),
        })
        .await
        .context("CreateExperiment")?
        .into_inner();
    let run = tc
        .create_run(pb::CreateRunRequest {
            parent: exp.name.clone(),
            run: Some(pb::Run {
                run_name: "r1".into(),
                ..Default::default()
            }),
            request_id: String::new(),
        })
        .await
        .context("CreateRun")?
        .into_inner();
    tc.log_run_data(pb::LogRunDataRequest {
        run: run.name.clone(),
        params: vec![pb::Param {
            key: "lr".into(),
            value: "0.01".into(),
        }],
        tags: vec![pb::Tag {
            key: "team".into(),
            value: "ml".into(),
        }],
        metrics: LOSS
            .iter()
            .enumerate()
            .map(|(step, v)| pb::MetricPoint {
                key: "loss".into(),
                value: *v,
                step: step as i64,
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    })
    .await
    .context("LogRunData")?;
    upload(&mut tc, &run.name).await?;
    if version < 2 {
        return Ok(());
    }

    let mut rc = RegistryServiceClient::new(channel.clone());
    register(&mut rc, MODEL, &run.name).await?;
    rc.set_model_version_alias(rpb::SetModelVersionAliasRequest {
        registered_model: format!("registeredModels/{MODEL}"),
        alias: "champion".into(),
        version: 1,
        request_id: String::new(),
    })
    .await
    .context("SetModelVersionAlias")?;
    if version < 3 {
        return Ok(());
    }

    let dep = deploy(&channel).await?;
    let mut ic = GrpcInferenceServiceClient::new(channel.clone());
    for (i, id) in REQUESTS.iter().enumerate() {
        ic.model_infer(infer(&dep, id, i))
            .await
            .with_context(|| format!("ModelInfer {id}"))?;
    }
    // Committed before the server is stopped and its database kept.
    for id in REQUESTS {
        explain(&channel, id).await?;
    }
    Ok(())
}

/// The explanation of `request_id`, waiting up to 30 s for its decision record to be committed
/// (decisions are written in groups, after the answer).
async fn explain(channel: &Channel, request_id: &str) -> anyhow::Result<dpb::DecisionExplanation> {
    let mut dc = DeploymentServiceClient::new(channel.clone());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        match dc
            .explain_decision(dpb::ExplainDecisionRequest {
                request_id: request_id.into(),
            })
            .await
        {
            Ok(e) => return Ok(e.into_inner()),
            Err(s) if s.code() == tonic::Code::NotFound && std::time::Instant::now() < deadline => {
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
            Err(s) => bail!("ExplainDecision {request_id}: {s:?}"),
        }
    }
}

/// Creates registered model `model` and its version 1 from `run`'s `model/` artifacts (ONNX).
///
/// # Errors
/// A failed call.
pub async fn register(
    rc: &mut RegistryServiceClient<Channel>,
    model: &str,
    run: &str,
) -> anyhow::Result<()> {
    rc.create_registered_model(rpb::CreateRegisteredModelRequest {
        registered_model: Some(rpb::RegisteredModel {
            name: model.into(),
            ..Default::default()
        }),
        request_id: String::new(),
    })
    .await
    .context("CreateRegisteredModel")?;
    rc.create_model_version(rpb::CreateModelVersionRequest {
        parent: format!("registeredModels/{model}"),
        model_version: Some(rpb::ModelVersion {
            source_run: run.into(),
            artifact_path: "model".into(),
            format: "onnx".into(),
            ..Default::default()
        }),
        request_id: String::new(),
    })
    .await
    .context("CreateModelVersion")?;
    Ok(())
}

/// Deploys version 1 of [`MODEL`] to staging; returns the deployment's name.
async fn deploy(channel: &Channel) -> anyhow::Result<String> {
    deploy_staging(channel, MODEL).await
}

/// Deploys version 1 of `model` to staging, all traffic; returns the deployment's name.
///
/// # Errors
/// A failed call.
pub async fn deploy_staging(channel: &Channel, model: &str) -> anyhow::Result<String> {
    let mut dc = DeploymentServiceClient::new(channel.clone());
    let dep = dc
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
            ..Default::default()
        })
        .await
        .context("CreateDeployment")?
        .into_inner();
    Ok(dep.name)
}

/// Checks, through the server on `channel` (running the current binary on the migrated
/// database), that the data a schema-`version` server wrote is all there and that the features
/// added since work on it.
///
/// # Errors
/// What is missing or wrong.
pub async fn verify(channel: Channel, version: u32) -> anyhow::Result<()> {
    let mut tc = TrackingServiceClient::new(channel.clone());
    let exp = tc
        .get_experiment(pb::GetExperimentRequest {
            display_name: EXPERIMENT.into(),
            ..Default::default()
        })
        .await
        .context("GetExperiment by display name")?
        .into_inner();
    ensure!(
        exp.description == format!("written by schema version {version}"),
        "description {:?}",
        exp.description
    );
    let runs = tc
        .search_runs(pb::SearchRunsRequest {
            experiments: vec![exp.name.clone()],
            filter: "params.lr = '0.01' AND tags.team = 'ml' AND metrics.loss < 0.2".into(),
            ..Default::default()
        })
        .await
        .context("SearchRuns")?
        .into_inner()
        .runs;
    ensure!(runs.len() == 1, "SearchRuns found {} runs", runs.len());
    let run = &runs[0];
    ensure!(run.run_name == "r1", "run {run:?}");
    let latest = run
        .latest_metrics
        .iter()
        .find(|m| m.key == "loss")
        .context("no latest loss")?;
    ensure!(
        latest.step == 3 && latest.value == LOSS[3],
        "latest loss {latest:?}"
    );
    let history = tc
        .get_metric_history(pb::GetMetricHistoryRequest {
            run: run.name.clone(),
            metric_key: "loss".into(),
            ..Default::default()
        })
        .await
        .context("GetMetricHistory")?
        .into_inner();
    let values = history.series.map(|s| s.values).unwrap_or_default();
    ensure!(values == LOSS, "loss history {values:?}");
    let mut stream = tc
        .download_artifact(pb::DownloadArtifactRequest {
            run: run.name.clone(),
            path: "model/model.onnx".into(),
        })
        .await
        .context("DownloadArtifact")?
        .into_inner();
    let mut bytes = Vec::new();
    while let Some(msg) = stream.message().await.context("DownloadArtifact stream")? {
        bytes.extend_from_slice(&msg.chunk);
    }
    ensure!(bytes == MODEL_BYTES, "artifact bytes differ");

    // The registry: the version written at schema 2, or one made now on the old run.
    let mut rc = RegistryServiceClient::new(channel.clone());
    if version < 2 {
        register(&mut rc, MODEL, &run.name)
            .await
            .context("registering a run written at schema 1")?;
    } else {
        let v = rc
            .get_model_version(rpb::GetModelVersionRequest {
                name: format!("registeredModels/{MODEL}@champion"),
            })
            .await
            .context("GetModelVersion @champion")?
            .into_inner();
        ensure!(
            v.name == format!("registeredModels/{MODEL}/versions/1") && v.source_run == run.name,
            "champion {v:?}"
        );
        let lineage = rc
            .get_lineage(rpb::GetLineageRequest {
                name: v.name.clone(),
            })
            .await
            .context("GetLineage")?
            .into_inner();
        ensure!(
            format!("{lineage:?}").contains(&run.name),
            "the lineage names the run: {lineage:?}"
        );
    }

    // Deployment: the decisions recorded at schema 3 explain, or a deployment made now serves.
    if version < 3 {
        let dep = deploy(&channel).await?;
        GrpcInferenceServiceClient::new(channel.clone())
            .model_infer(infer(&dep, REQUESTS[0], 0))
            .await
            .context("ModelInfer on the upgraded database")?;
    }
    for id in REQUESTS
        .iter()
        .take(if version < 3 { 1 } else { REQUESTS.len() })
    {
        let e = explain(&channel, id).await?;
        ensure!(
            e.model_version == format!("registeredModels/{MODEL}/versions/1")
                && e.source_run == run.name,
            "explanation of {id}: {e:?}"
        );
    }
    if version > LATEST_FIXTURE {
        bail!("no fixture for schema version {version}");
    }
    Ok(())
}
