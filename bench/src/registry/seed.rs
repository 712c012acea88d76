//! The registry suite's seed, logged through the tracking API like a training job does: one
//! experiment, one finished-looking run with params, metrics (a few steps each), code-version
//! tags, a dataset input and a few small files under `model/` (plus one outside it). And the
//! registry requests the sections send.

use anyhow::{Context, Result, ensure};
use steward_proto::registry as rpb;
use steward_proto::tracking as tpb;

use super::client::{channel, retry_aborted};
use super::{Registry, Tracking};

/// The directory of the model files in the seeded run.
pub const MODEL_DIR: &str = "model";
/// The alias the resolve sections read.
pub const ALIAS: &str = "champion";

/// What the sections need from the seed.
#[derive(Debug, Clone)]
pub struct Seed {
    /// `experiments/{e}/runs/{r}`.
    pub run: String,
    /// Files under [`MODEL_DIR`].
    pub model_files: usize,
    /// Bytes under [`MODEL_DIR`].
    pub model_bytes: usize,
}

/// `len` bytes of deterministic content.
fn content(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// Uploads `data` as artifact `path` of `run` (one chunk: the files are small).
async fn upload(c: &mut Tracking, run: &str, path: &str, data: Vec<u8>) -> Result<()> {
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
            part: Some(tpb::upload_artifact_request::Part::Chunk(data.into())),
        },
    ];
    c.upload_artifact(futures::stream::iter(msgs))
        .await
        .with_context(|| format!("UploadArtifact {path}"))?;
    Ok(())
}

/// Seeds the experiment and the run; `tag` makes the names unique on a reused server.
pub async fn seed(url: &str, tag: &str) -> Result<Seed> {
    let mut c = Tracking::new(channel(url).await?);
    let exp = c
        .create_experiment(tpb::CreateExperimentRequest {
            experiment: Some(tpb::Experiment {
                display_name: format!("bench-registry-{tag}"),
                ..Default::default()
            }),
            request_id: String::new(),
        })
        .await
        .context("CreateExperiment")?
        .into_inner();
    let run = c
        .create_run(tpb::CreateRunRequest {
            parent: exp.name.clone(),
            run: Some(tpb::Run {
                run_name: "train".into(),
                ..Default::default()
            }),
            request_id: String::new(),
        })
        .await
        .context("CreateRun")?
        .into_inner()
        .name;

    let kv = |k: &str, v: &str| (k.to_string(), v.to_string());
    let params = [
        kv("lr", "0.01"),
        kv("batch_size", "256"),
        kv("optimizer", "adamw"),
        kv("epochs", "20"),
        kv("dropout", "0.10"),
        kv("layers", "12"),
        kv("hidden", "512"),
        kv("seed", "42"),
    ];
    let tags = [
        kv(
            "steward.source.git_commit",
            "9c1d0b7e6a5f4c3b2a1908f7e6d5c4b3a2913f2a",
        ),
        kv(
            "steward.source.git_repo",
            "https://example.com/ml/fraud.git",
        ),
        kv("steward.source.git_dirty", "false"),
        kv("steward.user", "bench"),
        kv("team", "risk"),
    ];
    let mut metrics = Vec::new();
    for step in 0..10i64 {
        let f = step as f64 / 10.0;
        for (key, value) in [
            ("loss", 1.0 - 0.8 * f),
            ("acc", 0.5 + 0.45 * f),
            ("auc", 0.6 + 0.35 * f),
        ] {
            metrics.push(tpb::MetricPoint {
                key: key.into(),
                value,
                timestamp: None,
                step,
            });
        }
    }
    let req = tpb::LogRunDataRequest {
        run: run.clone(),
        metrics,
        params: params
            .into_iter()
            .map(|(key, value)| tpb::Param { key, value })
            .collect(),
        tags: tags
            .into_iter()
            .map(|(key, value)| tpb::Tag { key, value })
            .collect(),
        request_id: String::new(),
        metric_series: Vec::new(),
    };
    retry_aborted("LogRunData (seed)", || {
        let (mut c, req) = (c.clone(), req.clone());
        async move { c.log_run_data(req).await }
    })
    .await?;
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

    let files: [(&str, Vec<u8>); 4] = [
        ("model.onnx", content(64 * 1024, 1)),
        (
            "MLmodel",
            b"flavors:\n  onnx: {onnx_version: 1.17}\n".to_vec(),
        ),
        ("requirements.txt", b"onnxruntime==1.20\nnumpy<3\n".to_vec()),
        (
            "signature.json",
            br#"{"inputs":[{"name":"x","dtype":"float32","shape":[-1,16]}]}"#.to_vec(),
        ),
    ];
    let (model_files, model_bytes) = (files.len(), files.iter().map(|(_, d)| d.len()).sum());
    for (name, data) in files {
        upload(&mut c, &run, &format!("{MODEL_DIR}/{name}"), data).await?;
    }
    upload(
        &mut c,
        &run,
        "environment/requirements.lock",
        b"numpy==2.1\n".to_vec(),
    )
    .await?;
    Ok(Seed {
        run,
        model_files,
        model_bytes,
    })
}

/// Registers model `id`; returns its resource name.
pub async fn create_model(r: &mut Registry, id: &str) -> Result<String> {
    let m = r
        .create_registered_model(rpb::CreateRegisteredModelRequest {
            registered_model: Some(rpb::RegisteredModel {
                name: format!("registeredModels/{id}"),
                description: "steward-bench".into(),
                ..Default::default()
            }),
            request_id: String::new(),
        })
        .await
        .with_context(|| format!("CreateRegisteredModel {id}"))?
        .into_inner();
    Ok(m.name)
}

/// A CreateModelVersion of `model`: from the seeded run's `model/` directory, or (external) from
/// `s3://steward-bench/{tag}/{i}` with a digest unique to `i`. No request id (the bench never
/// retries a call whose outcome it does not know).
pub fn version_request(
    seed: &Seed,
    model: &str,
    tag: &str,
    external: bool,
    i: usize,
) -> rpb::CreateModelVersionRequest {
    let mut v = rpb::ModelVersion {
        format: "onnx".into(),
        ..Default::default()
    };
    if external {
        v.source_uri = format!("s3://steward-bench/{tag}/{i}");
        v.content_digest = format!("sha256:{i:064x}");
    } else {
        v.source_run = seed.run.clone();
        v.artifact_path = MODEL_DIR.into();
    }
    rpb::CreateModelVersionRequest {
        parent: model.to_string(),
        model_version: Some(v),
        request_id: String::new(),
    }
}

/// A model with 3 versions from the seeded run and [`ALIAS`] on version 2 (not the latest, so
/// resolving cannot take a shortcut); returns the name to resolve and the version it names.
pub async fn alias_model(r: &mut Registry, seed: &Seed, id: &str) -> Result<(String, i64)> {
    let model = create_model(r, id).await?;
    for i in 0..3 {
        r.create_model_version(version_request(seed, &model, id, false, i))
            .await
            .context("CreateModelVersion (alias seed)")?;
    }
    let a = r
        .set_model_version_alias(rpb::SetModelVersionAliasRequest {
            registered_model: model.clone(),
            alias: ALIAS.into(),
            version: 2,
            request_id: String::new(),
        })
        .await
        .context("SetModelVersionAlias")?
        .into_inner();
    ensure!(
        a.version == 2,
        "SetModelVersionAlias answered version {}",
        a.version
    );
    Ok((format!("{model}@{ALIAS}"), 2))
}
