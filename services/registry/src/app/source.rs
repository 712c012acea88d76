//! Where version sources are checked: the tracking service, over gRPC.

use std::collections::BTreeMap;

use sha2::{Digest, Sha256};
use steward_common::Error;
use steward_common::names::RunName;
use steward_grpc::TracedChannel;
use steward_proto::tracking as tpb;
use steward_proto::tracking::tracking_service_client::TrackingServiceClient;

use crate::domain::{CodeVersion, DatasetRef, Lineage};

/// Max depth of a parent-run chain that is followed.
pub const MAX_PARENT_DEPTH: usize = 32;
/// Max files in a model directory.
pub const MAX_MODEL_FILES: usize = 100_000;

/// What the registry needs to know about a run to register a model from it.
#[derive(Debug, Clone, PartialEq)]
pub struct RunSnapshot {
    /// Lineage (params, metrics, datasets, code version, parents, tags).
    pub lineage: Lineage,
    /// Files under the artifact path: (path relative to it, sha256 hex), sorted by path.
    pub files: Vec<(String, String)>,
    /// URI of the model directory (or file) in the artifact store.
    pub artifact_uri: String,
}

impl RunSnapshot {
    /// `sha256:` over the sorted lines `"{path}\t{sha256}\n"`: a digest of the model files that
    /// does not depend on which run holds them.
    pub fn content_digest(&self) -> String {
        content_digest(&self.files)
    }
}

/// See [`RunSnapshot::content_digest`].
pub fn content_digest(files: &[(String, String)]) -> String {
    let mut h = Sha256::new();
    for (p, d) in files {
        h.update(p.as_bytes());
        h.update(b"\t");
        h.update(d.as_bytes());
        h.update(b"\n");
    }
    format!("sha256:{}", hex::encode(h.finalize()))
}

/// Looks up runs and their artifacts.
#[tonic::async_trait]
pub trait RunSource: Send + Sync + 'static {
    /// The snapshot of `run` with the files under `artifact_path`; errors name
    /// `model_version.source_run` or `model_version.artifact_path`.
    async fn snapshot(&self, run: &RunName, artifact_path: &str) -> Result<RunSnapshot, Error>;
}

/// [`RunSource`] over the tracking service's gRPC API.
#[derive(Clone)]
pub struct TrackingRunSource {
    client: TrackingServiceClient<TracedChannel>,
}

impl TrackingRunSource {
    /// A source calling the tracking service at `url` (connects lazily).
    pub async fn connect(url: &str) -> Result<Self, Error> {
        let ch = steward_grpc::connect_traced(url)
            .await
            .map_err(|e| e.prefixed("tracking_url"))?;
        Ok(Self {
            client: TrackingServiceClient::new(ch).max_decoding_message_size(64 * 1024 * 1024),
        })
    }
}

fn remote(e: tonic::Status, what: &str) -> Error {
    let err = steward_grpc::from_status(&e);
    match err.kind {
        steward_common::ErrorKind::Unavailable | steward_common::ErrorKind::DeadlineExceeded => {
            Error::unavailable(
                "TRACKING_UNAVAILABLE",
                format!("the tracking service is unavailable ({what}); retry later"),
            )
        }
        _ => err,
    }
}

#[tonic::async_trait]
impl RunSource for TrackingRunSource {
    async fn snapshot(&self, run: &RunName, artifact_path: &str) -> Result<RunSnapshot, Error> {
        let mut client = self.client.clone();
        let name = run.to_string();
        let r = match client
            .get_run(tpb::GetRunRequest { name: name.clone() })
            .await
        {
            Ok(r) => r.into_inner(),
            Err(s) if s.code() == tonic::Code::NotFound => {
                return Err(Error::not_found("RUN_NOT_FOUND", &name).with_violation(
                    "model_version.source_run",
                    "no such run in the tracking service",
                ));
            }
            Err(s) => return Err(remote(s, "GetRun")),
        };
        if r.state == tpb::LifecycleState::Deleted as i32 {
            return Err(Error::failed_precondition(
                "RUN_DELETED",
                format!("{name} is deleted; undelete it to register a model from it"),
            ));
        }
        let files = list_files(&mut client, &name, artifact_path).await?;
        if files.is_empty() {
            return Err(Error::invalid_field(
                "model_version.artifact_path",
                format!("{name} has no artifacts at {artifact_path:?}"),
            ));
        }
        let mut parents = Vec::new();
        let mut parent = r.parent_run.clone();
        while !parent.is_empty() && parents.len() < MAX_PARENT_DEPTH && !parents.contains(&parent) {
            parents.push(parent.clone());
            parent = match client.get_run(tpb::GetRunRequest { name: parent }).await {
                Ok(p) => p.into_inner().parent_run,
                Err(s) if s.code() == tonic::Code::NotFound => String::new(),
                Err(s) => return Err(remote(s, "GetRun")),
            };
        }
        let tags: BTreeMap<String, String> = r.tags.into_iter().collect();
        let lineage = Lineage {
            source_run: name.clone(),
            run_name: r.run_name,
            params: r.params.into_iter().collect(),
            metrics: r
                .latest_metrics
                .iter()
                .filter(|m| m.value.is_finite())
                .map(|m| (m.key.clone(), m.value))
                .collect(),
            datasets: r
                .inputs
                .iter()
                .map(|i| {
                    let d = i.dataset.clone().unwrap_or_default();
                    DatasetRef {
                        name: d.name,
                        digest: d.digest,
                        source_uri: d.source_uri,
                        context: i.context.clone(),
                    }
                })
                .collect(),
            code: CodeVersion::from_tags(&tags),
            parent_runs: parents,
            run_tags: tags,
        };
        let base = r.artifact_uri.trim_end_matches('/');
        Ok(RunSnapshot {
            lineage,
            files,
            artifact_uri: format!("{base}/{artifact_path}"),
        })
    }
}

/// Every file under the directory `path` (relative paths), or the file `path` itself.
async fn list_files(
    client: &mut TrackingServiceClient<TracedChannel>,
    run: &str,
    path: &str,
) -> Result<Vec<(String, String)>, Error> {
    let dir = format!("{}/", path.trim_end_matches('/'));
    let mut out = Vec::new();
    let mut token = String::new();
    loop {
        let resp = client
            .list_artifacts(tpb::ListArtifactsRequest {
                run: run.to_string(),
                prefix: dir.clone(),
                page_size: 1000,
                page_token: token,
            })
            .await
            .map_err(|s| remote(s, "ListArtifacts"))?
            .into_inner();
        for a in resp.artifacts {
            let rel = a.path.strip_prefix(&dir).unwrap_or(&a.path).to_string();
            out.push((rel, a.sha256));
        }
        if out.len() > MAX_MODEL_FILES {
            return Err(Error::limit(
                "model_version.artifact_path",
                format!("a model may hold at most {MAX_MODEL_FILES} files"),
            ));
        }
        if resp.next_page_token.is_empty() {
            break;
        }
        token = resp.next_page_token;
    }
    if out.is_empty() {
        // A single file: list its directory and pick it.
        let (parent, file) = match path.rsplit_once('/') {
            Some((p, f)) => (format!("{p}/"), f.to_string()),
            None => (String::new(), path.to_string()),
        };
        let mut token = String::new();
        loop {
            let resp = client
                .list_artifacts(tpb::ListArtifactsRequest {
                    run: run.to_string(),
                    prefix: parent.clone(),
                    page_size: 1000,
                    page_token: token,
                })
                .await
                .map_err(|s| remote(s, "ListArtifacts"))?
                .into_inner();
            if let Some(a) = resp.artifacts.iter().find(|a| a.path == path) {
                out.push((file.clone(), a.sha256.clone()));
                break;
            }
            if resp.next_page_token.is_empty() {
                break;
            }
            token = resp.next_page_token;
        }
    }
    out.sort();
    Ok(out)
}
