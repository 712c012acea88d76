//! Small helpers over the generated tracking client.

use futures::StreamExt;
use steward_proto::tracking as pb;
use steward_proto::tracking::tracking_service_client::TrackingServiceClient;
use tonic::transport::Channel;

/// The client type the tests use.
pub type Client = TrackingServiceClient<Channel>;

/// A display name no other test (or earlier run on the same database) uses.
pub fn unique(prefix: &str) -> String {
    format!(
        "{prefix}-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    )
}

/// Creates an experiment; returns it.
pub async fn create_experiment(c: &mut Client, display_name: &str) -> pb::Experiment {
    c.create_experiment(pb::CreateExperimentRequest {
        experiment: Some(pb::Experiment {
            display_name: display_name.to_owned(),
            description: "created by a system test".into(),
            ..Default::default()
        }),
        request_id: uuid::Uuid::new_v4().to_string(),
    })
    .await
    .unwrap_or_else(|s| panic!("CreateExperiment {display_name}: {s:?}"))
    .into_inner()
}

/// Creates a run in `experiment` (a resource name); returns it.
pub async fn create_run(c: &mut Client, experiment: &str, run_name: &str) -> pb::Run {
    c.create_run(pb::CreateRunRequest {
        parent: experiment.to_owned(),
        run: Some(pb::Run {
            run_name: run_name.to_owned(),
            ..Default::default()
        }),
        request_id: uuid::Uuid::new_v4().to_string(),
    })
    .await
    .unwrap_or_else(|s| panic!("CreateRun {run_name} in {experiment}: {s:?}"))
    .into_inner()
}

/// Logs `metrics` (key, value, step) and `params` to `run` in one LogRunData call.
pub async fn log(c: &mut Client, run: &str, metrics: &[(&str, f64, i64)], params: &[(&str, &str)]) {
    c.log_run_data(pb::LogRunDataRequest {
        run: run.to_owned(),
        metrics: metrics
            .iter()
            .map(|&(key, value, step)| pb::MetricPoint {
                key: key.to_owned(),
                value,
                timestamp: None,
                step,
            })
            .collect(),
        params: params
            .iter()
            .map(|&(key, value)| pb::Param {
                key: key.to_owned(),
                value: value.to_owned(),
            })
            .collect(),
        tags: vec![pb::Tag {
            key: "steward.user".into(),
            value: "system-test".into(),
        }],
        request_id: uuid::Uuid::new_v4().to_string(),
        metric_series: Vec::new(),
    })
    .await
    .unwrap_or_else(|s| panic!("LogRunData {run}: {s:?}"));
}

/// The latest value of metric `key` on `run`.
pub fn latest(run: &pb::Run, key: &str) -> Option<f64> {
    run.latest_metrics
        .iter()
        .find(|m| m.key == key)
        .map(|m| m.value)
}

/// Uploads `data` as artifact `path` of `run`, in 1 MiB chunks.
pub async fn upload(c: &mut Client, run: &str, path: &str, data: &[u8]) -> pb::Artifact {
    let mut msgs = vec![pb::UploadArtifactRequest {
        part: Some(pb::upload_artifact_request::Part::Header(
            pb::ArtifactHeader {
                run: run.to_owned(),
                path: path.to_owned(),
                content_type: "application/octet-stream".into(),
                request_id: uuid::Uuid::new_v4().to_string(),
                expected_sha256: String::new(),
            },
        )),
    }];
    msgs.extend(data.chunks(1 << 20).map(|chunk| pb::UploadArtifactRequest {
        part: Some(pb::upload_artifact_request::Part::Chunk(
            chunk.to_vec().into(),
        )),
    }));
    c.upload_artifact(futures::stream::iter(msgs))
        .await
        .unwrap_or_else(|s| panic!("UploadArtifact {run} {path}: {s:?}"))
        .into_inner()
}

/// Downloads artifact `path` of `run`: its metadata and content.
pub async fn download(c: &mut Client, run: &str, path: &str) -> (pb::Artifact, Vec<u8>) {
    let mut stream = c
        .download_artifact(pb::DownloadArtifactRequest {
            run: run.to_owned(),
            path: path.to_owned(),
        })
        .await
        .unwrap_or_else(|s| panic!("DownloadArtifact {run} {path}: {s:?}"))
        .into_inner();
    let mut meta = None;
    let mut data = Vec::new();
    while let Some(msg) = stream.next().await {
        let msg = msg.unwrap_or_else(|s| panic!("DownloadArtifact stream: {s:?}"));
        if let Some(a) = msg.artifact {
            meta = Some(a);
        }
        data.extend_from_slice(&msg.chunk);
    }
    (meta.expect("the first message carries the artifact"), data)
}

/// `len` bytes of deterministic, incompressible-looking content (xorshift).
pub fn content(len: usize, seed: u64) -> Vec<u8> {
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

/// Hex sha256 of `data`.
pub fn sha256(data: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(data))
}
