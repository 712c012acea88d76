//! The other services this one calls over gRPC: the registry (version resolution, approvals,
//! lineage) and tracking (model files).

use bytes::Bytes;
use futures::StreamExt;
use steward_common::Error;
use steward_grpc::TracedChannel;
use steward_proto::registry as rpb;
use steward_proto::registry::registry_service_client::RegistryServiceClient;
use steward_proto::tracking as tpb;
use steward_proto::tracking::tracking_service_client::TrackingServiceClient;

/// A model version as the registry describes it.
#[derive(Debug, Clone, PartialEq)]
pub struct ResolvedVersion {
    /// Model id.
    pub model: String,
    /// Number.
    pub version: i64,
    /// Status name (READY, ...).
    pub status: String,
    /// Approval name (APPROVED, ...).
    pub approval: String,
    /// Last reviewer and review time (ms).
    pub reviewer: String,
    /// Review time, ms (0 when never reviewed).
    pub review_time: i64,
    /// Where the files are.
    pub artifact_uri: String,
    /// Format.
    pub format: String,
    /// Digest.
    pub content_digest: String,
    /// Source run or "".
    pub source_run: String,
    /// Artifact path or "".
    pub artifact_path: String,
    /// Version creation time, ms.
    pub create_time: i64,
}

/// What ExplainDecision needs of a lineage.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct LineageSummary {
    /// Source run.
    pub source_run: String,
    /// (name, digest, context).
    pub datasets: Vec<(String, String, String)>,
    /// Git commit.
    pub git_commit: String,
    /// Git repository.
    pub git_repo: String,
}

fn ms(t: &Option<prost_types::Timestamp>) -> i64 {
    t.as_ref()
        .map(|t| t.seconds * 1000 + i64::from(t.nanos) / 1_000_000)
        .unwrap_or(0)
}

fn remote(e: tonic::Status, peer: &str) -> Error {
    steward_grpc::from_peer_status(
        &e,
        "PEER_UNAVAILABLE",
        format!("the {peer} service is unavailable; retry later"),
    )
}

/// The peers, over lazily connected channels.
#[derive(Clone)]
pub struct Peers {
    registry: RegistryServiceClient<TracedChannel>,
    tracking: TrackingServiceClient<TracedChannel>,
}

impl Peers {
    /// Channels to the registry and tracking services.
    pub async fn connect(registry_url: &str, tracking_url: &str) -> Result<Self, Error> {
        Ok(Self {
            registry: RegistryServiceClient::new(
                steward_grpc::connect_traced(registry_url)
                    .await
                    .map_err(|e| e.prefixed("registry_url"))?,
            ),
            tracking: TrackingServiceClient::new(
                steward_grpc::connect_traced(tracking_url)
                    .await
                    .map_err(|e| e.prefixed("tracking_url"))?,
            )
            .max_decoding_message_size(256 << 20),
        })
    }

    /// What the registry's reproducibility manifest says is missing for `name` (empty when
    /// complete).
    pub async fn reproducibility_gaps(&self, name: &str) -> Result<Vec<String>, Error> {
        let m = self
            .registry
            .clone()
            .get_reproducibility_manifest(rpb::GetReproducibilityManifestRequest {
                name: name.to_string(),
            })
            .await
            .map_err(|s| remote(s, "registry"))?
            .into_inner();
        Ok(if m.complete { Vec::new() } else { m.missing })
    }

    /// Resolves a version name or alias; `field` names the request field for errors.
    pub async fn resolve(&self, name: &str, field: &str) -> Result<ResolvedVersion, Error> {
        let v = self
            .registry
            .clone()
            .get_model_version(rpb::GetModelVersionRequest {
                name: name.to_string(),
            })
            .await
            .map_err(|s| {
                if matches!(
                    s.code(),
                    tonic::Code::NotFound | tonic::Code::InvalidArgument
                ) {
                    steward_grpc::from_status(&s).with_violation(field, s.message().to_string())
                } else {
                    remote(s, "registry")
                }
            })?
            .into_inner();
        let model = v
            .name
            .strip_prefix("registeredModels/")
            .and_then(|r| r.split('/').next())
            .unwrap_or_default()
            .to_string();
        Ok(ResolvedVersion {
            model,
            version: v.version,
            status: rpb::ModelVersionStatus::try_from(v.status)
                .map(|s| s.as_str_name().to_string())
                .unwrap_or_default(),
            approval: rpb::ApprovalState::try_from(v.approval_state)
                .map(|s| s.as_str_name().to_string())
                .unwrap_or_default(),
            reviewer: v
                .last_review
                .as_ref()
                .map(|r| r.reviewer.clone())
                .unwrap_or_default(),
            review_time: v.last_review.as_ref().map(|r| ms(&r.time)).unwrap_or(0),
            artifact_uri: v.artifact_uri,
            format: v.format,
            content_digest: v.content_digest,
            source_run: v.source_run,
            artifact_path: v.artifact_path,
            create_time: ms(&v.create_time),
        })
    }

    /// The lineage of a version.
    pub async fn lineage(&self, name: &str) -> Result<LineageSummary, Error> {
        let l = self
            .registry
            .clone()
            .get_lineage(rpb::GetLineageRequest {
                name: name.to_string(),
            })
            .await
            .map_err(|s| remote(s, "registry"))?
            .into_inner();
        let code = l.code_version.unwrap_or_default();
        Ok(LineageSummary {
            source_run: l.source_run,
            datasets: l
                .datasets
                .into_iter()
                .map(|d| (d.name, d.digest, d.context))
                .collect(),
            git_commit: code.git_commit,
            git_repo: code.git_repo,
        })
    }

    /// The bytes of the single `.onnx` file of a version (the file itself, or the one `.onnx`
    /// file under the directory), through the tracking API. Files are limited to 256 MiB.
    pub async fn onnx_bytes(&self, run: &str, path: &str) -> Result<Bytes, Error> {
        let mut t = self.tracking.clone();
        let file = if path.ends_with(".onnx") {
            path.to_string()
        } else {
            let list = t
                .list_artifacts(tpb::ListArtifactsRequest {
                    run: run.to_string(),
                    prefix: format!("{}/", path.trim_end_matches('/')),
                    page_size: 1000,
                    page_token: String::new(),
                })
                .await
                .map_err(|s| remote(s, "tracking"))?
                .into_inner();
            let onnx: Vec<_> = list
                .artifacts
                .iter()
                .filter(|a| a.path.ends_with(".onnx"))
                .collect();
            match onnx.as_slice() {
                [one] => one.path.clone(),
                [] => {
                    return Err(Error::failed_precondition(
                        "NO_ONNX_FILE",
                        format!("{run} has no .onnx file under {path:?}"),
                    ));
                }
                _ => {
                    return Err(Error::failed_precondition(
                        "AMBIGUOUS_ONNX_FILE",
                        format!(
                            "{run} has several .onnx files under {path:?}; register the file itself"
                        ),
                    ));
                }
            }
        };
        let mut stream = t
            .download_artifact(tpb::DownloadArtifactRequest {
                run: run.to_string(),
                path: file,
            })
            .await
            .map_err(|s| remote(s, "tracking"))?
            .into_inner();
        let mut buf = Vec::new();
        while let Some(msg) = stream.next().await {
            let msg = msg.map_err(|s| remote(s, "tracking"))?;
            buf.extend_from_slice(&msg.chunk);
            if buf.len() > 256 << 20 {
                return Err(Error::failed_precondition(
                    "MODEL_TOO_LARGE",
                    "model files above 256 MiB are not served in process",
                ));
            }
        }
        Ok(Bytes::from(buf))
    }
}
