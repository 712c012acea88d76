//! Step 1: an experiment and its training runs, each with params, metric curves, the training
//! dataset and the model files as artifacts.

use anyhow::Result;
use steward_deployment::infer::{DEMO_FEATURES, DEMO_MODEL};
use steward_proto::tracking as tpb;

use super::data::{self, EPOCHS, RUNS, TRAINING_ROWS};
use super::lifecycle::{DATASET, Demo, TrainedRun, short};
use super::say;
use crate::cmd::output::bytes;
use crate::cmd::status_err;

impl Demo {
    /// Step 1: an experiment and its runs, each with params, metric curves, the dataset and
    /// the model as an artifact.
    pub async fn track(&mut self) -> Result<()> {
        let exp = self
            .tracking
            .create_experiment(tpb::CreateExperimentRequest {
                experiment: Some(tpb::Experiment {
                    display_name: "fraud-detection".into(),
                    description: "Card fraud scoring (steward demo)".into(),
                    ..Default::default()
                }),
                request_id: String::new(),
            })
            .await
            .map_err(status_err)?
            .into_inner();
        self.experiment = exp.name.clone();
        self.digest = data::training_digest();
        say(format!("experiment {} ({})", exp.display_name, exp.name));
        say(format!(
            "dataset {DATASET}: {TRAINING_ROWS} rows x {DEMO_FEATURES} features, {}",
            self.digest
        ));
        let mut model_artifact = None;
        for spec in &RUNS {
            let run = self.train(spec).await?;
            let accuracy = latest(&run, "accuracy")?;
            let params = if spec.max_depth.is_empty() {
                format!("{} lr={}", spec.family, spec.learning_rate)
            } else {
                format!(
                    "{} lr={} max_depth={}",
                    spec.family, spec.learning_rate, spec.max_depth
                )
            };
            say(format!(
                "run {:<10}  {:<38} accuracy {accuracy:.4}  loss {:.4}  {}",
                run.run_name,
                params,
                latest(&run, "loss")?,
                tpb::RunStatus::try_from(run.status)
                    .map(|s| s.as_str_name())
                    .unwrap_or("?"),
            ));
            self.runs.push(TrainedRun {
                name: run.run_name.clone(),
                resource: run.name.clone(),
                accuracy,
            });
            if model_artifact.is_none() {
                model_artifact = Some(self.artifact(&run.name, "model/model.onnx").await?);
            }
        }
        if let Some(a) = model_artifact {
            say(format!(
                "each run logged {EPOCHS} epochs of accuracy and loss, its params, {DATASET} as \
                 training input, and model/model.onnx ({}, sha256 {}) with model/model.json",
                bytes(a.size_bytes),
                short(&a.sha256)
            ));
        }
        Ok(())
    }

    /// One training run: params, curves, dataset, model files, then FINISHED.
    async fn train(&mut self, spec: &data::RunSpec) -> Result<tpb::Run> {
        let run = self
            .tracking
            .create_run(tpb::CreateRunRequest {
                parent: self.experiment.clone(),
                run: Some(tpb::Run {
                    run_name: spec.name.into(),
                    ..Default::default()
                }),
                request_id: String::new(),
            })
            .await
            .map_err(status_err)?
            .into_inner();
        let mut params = vec![
            param("model", spec.family),
            param("learning_rate", spec.learning_rate),
            param("epochs", &EPOCHS.to_string()),
        ];
        if !spec.max_depth.is_empty() {
            params.push(param("max_depth", spec.max_depth));
        }
        let epochs: Vec<i64> = (1..=EPOCHS).collect();
        let series = |key: &str, f: fn(f64, i64) -> f64| tpb::MetricSeries {
            key: key.into(),
            values: epochs.iter().map(|e| f(spec.accuracy, *e)).collect(),
            steps: epochs.clone(),
            timestamps_unix_ms: vec![],
        };
        self.tracking
            .log_run_data(tpb::LogRunDataRequest {
                run: run.name.clone(),
                params,
                metric_series: vec![
                    series("accuracy", data::accuracy),
                    series("loss", data::loss),
                ],
                ..Default::default()
            })
            .await
            .map_err(status_err)?;
        let schema = serde_json::json!({
            "fields": data::FEATURES
                .iter()
                .map(|f| serde_json::json!({"name": f, "type": "float32"}))
                .collect::<Vec<_>>()
        });
        self.tracking
            .log_run_inputs(tpb::LogRunInputsRequest {
                run: run.name.clone(),
                inputs: vec![tpb::DatasetInput {
                    dataset: Some(tpb::Dataset {
                        name: DATASET.into(),
                        digest: self.digest.clone(),
                        source_uri: "demo://transactions".into(),
                        source_type: "local".into(),
                        schema_json: schema.to_string(),
                        profile: None,
                        version: String::new(),
                    }),
                    context: "training".into(),
                }],
                request_id: String::new(),
            })
            .await
            .map_err(status_err)?;
        self.upload(&run.name, "model/model.onnx", DEMO_MODEL.to_vec())
            .await?;
        let card = serde_json::json!({
            "format": "onnx",
            "input": "features FP32 [-1, 8]",
            "output": "score FP32 [-1, 1]",
            "features": data::FEATURES,
            "trained_on": {"dataset": DATASET, "digest": self.digest},
            "run": spec.name,
            "model": spec.family,
            "learning_rate": spec.learning_rate,
            "max_depth": spec.max_depth,
        });
        self.upload(
            &run.name,
            "model/model.json",
            serde_json::to_vec_pretty(&card)?,
        )
        .await?;
        Ok(self
            .tracking
            .update_run(tpb::UpdateRunRequest {
                run: Some(tpb::Run {
                    name: run.name.clone(),
                    status: tpb::RunStatus::Finished as i32,
                    ..Default::default()
                }),
                update_mask: Some(prost_types::FieldMask {
                    paths: vec!["status".into()],
                }),
                request_id: String::new(),
            })
            .await
            .map_err(status_err)?
            .into_inner())
    }

    /// Uploads `content` as artifact `path` of `run`.
    async fn upload(&mut self, run: &str, path: &str, content: Vec<u8>) -> Result<tpb::Artifact> {
        let msgs = vec![
            tpb::UploadArtifactRequest {
                part: Some(tpb::upload_artifact_request::Part::Header(
                    tpb::ArtifactHeader {
                        run: run.into(),
                        path: path.into(),
                        content_type: String::new(),
                        request_id: String::new(),
                        expected_sha256: String::new(),
                    },
                )),
            },
            tpb::UploadArtifactRequest {
                part: Some(tpb::upload_artifact_request::Part::Chunk(content.into())),
            },
        ];
        Ok(self
            .tracking
            .upload_artifact(futures::stream::iter(msgs))
            .await
            .map_err(status_err)?
            .into_inner())
    }

    /// Artifact `path` of `run` as the server lists it.
    async fn artifact(&mut self, run: &str, path: &str) -> Result<tpb::Artifact> {
        let list = self
            .tracking
            .list_artifacts(tpb::ListArtifactsRequest {
                run: run.into(),
                prefix: "model/".into(),
                page_size: 100,
                page_token: String::new(),
            })
            .await
            .map_err(status_err)?
            .into_inner();
        list.artifacts
            .into_iter()
            .find(|a| a.path == path)
            .ok_or_else(|| anyhow::anyhow!("{run} has no artifact {path}"))
    }
}

/// The latest value of `key` on `run`.
pub(super) fn latest(run: &tpb::Run, key: &str) -> Result<f64> {
    run.latest_metrics
        .iter()
        .find(|m| m.key == key)
        .map(|m| m.value)
        .ok_or_else(|| anyhow::anyhow!("{} has no metric {key}", run.name))
}

fn param(key: &str, value: &str) -> tpb::Param {
    tpb::Param {
        key: key.into(),
        value: value.into(),
    }
}
