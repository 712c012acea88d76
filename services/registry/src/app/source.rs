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

    /// The run's environment lock files ([`ENVIRONMENT_FILES`]) as (path, size, sha256).
    async fn environment_files(&self, run: &RunName) -> Result<Vec<(String, i64, String)>, Error> {
        let _ = run;
        Ok(Vec::new())
    }

    /// Whether `version` (`datasets/{d}/versions/{v}`) is a committed dataset version holding
    /// exactly `digest`.
    async fn dataset_version_holds(&self, version: &str, digest: &str) -> Result<bool, Error> {
        let _ = (version, digest);
        Ok(false)
    }
}

/// File names (anywhere in a run's artifacts) that pin a software environment.
pub const ENVIRONMENT_FILES: &[&str] = &[
    "requirements.txt",
    "constraints.txt",
    "uv.lock",
    "poetry.lock",
    "Pipfile.lock",
    "pylock.toml",
    "conda.yaml",
    "conda.yml",
    "conda-lock.yml",
    "environment.yml",
    "environment.yaml",
    "python_env.yaml",
    "Cargo.lock",
    "package-lock.json",
    "renv.lock",
    "go.sum",
];

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
    steward_grpc::from_peer_status(
        &e,
        "TRACKING_UNAVAILABLE",
        format!("the tracking service is unavailable ({what}); retry later"),
    )
}

#[tonic::async_trait]
impl RunSource for TrackingRunSource {
    async fn environment_files(&self, run: &RunName) -> Result<Vec<(String, i64, String)>, Error> {
        let mut client = self.client.clone();
        let mut out = Vec::new();
        let mut token = String::new();
        loop {
            let resp = list_page(&mut client, &run.to_string(), "", token).await?;
            for a in resp.artifacts {
                let base = a.path.rsplit('/').next().unwrap_or(&a.path);
                if ENVIRONMENT_FILES.contains(&base) {
                    out.push((a.path.clone(), a.size_bytes, a.sha256.clone()));
                }
            }
            if resp.next_page_token.is_empty() {
                break;
            }
            token = resp.next_page_token;
        }
        Ok(out)
    }

    async fn dataset_version_holds(&self, version: &str, digest: &str) -> Result<bool, Error> {
        let mut client = self.client.clone();
        match client
            .get_dataset_version(tpb::GetDatasetVersionRequest {
                name: version.to_string(),
            })
            .await
        {
            Ok(v) => {
                let v = v.into_inner();
                Ok(v.state == tpb::DatasetVersionState::Committed as i32 && v.digest == digest)
            }
            Err(s)
                if matches!(
                    s.code(),
                    tonic::Code::NotFound | tonic::Code::InvalidArgument
                ) =>
            {
                Ok(false)
            }
            Err(s) => Err(remote(s, "GetDatasetVersion")),
        }
    }

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

/// One page of the run's artifacts under `prefix`.
async fn list_page(
    client: &mut TrackingServiceClient<TracedChannel>,
    run: &str,
    prefix: &str,
    page_token: String,
) -> Result<tpb::ListArtifactsResponse, Error> {
    Ok(client
        .list_artifacts(tpb::ListArtifactsRequest {
            run: run.to_string(),
            prefix: prefix.to_string(),
            page_size: 1000,
            page_token,
        })
        .await
        .map_err(|s| remote(s, "ListArtifacts"))?
        .into_inner())
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
        let resp = list_page(client, run, &dir, token).await?;
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
            let resp = list_page(client, run, &parent, token).await?;
            if let Some(a) = resp.artifacts.iter().find(|a| a.path == path) {
                out.push((file, a.sha256.clone()));
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

type Waiters = Vec<tokio::sync::oneshot::Sender<Result<RunSnapshot, Error>>>;

#[derive(Default)]
struct Slot {
    running: bool,
    waiters: Waiters,
}

/// A [`RunSource`] that coalesces concurrent snapshots of the same (run, path): while one
/// fetch is in flight, new requests queue, and one fetch that starts after all of them arrived
/// serves them all. Every caller still gets a snapshot taken after its request arrived, so a
/// change to the run that completed before a create started is always in that version's
/// lineage.
pub struct Coalescing<S> {
    inner: std::sync::Arc<S>,
    slots: std::sync::Arc<std::sync::Mutex<std::collections::HashMap<(String, String), Slot>>>,
}

impl<S: RunSource> Coalescing<S> {
    /// Wraps `inner`.
    pub fn new(inner: S) -> Self {
        Self {
            inner: std::sync::Arc::new(inner),
            slots: Default::default(),
        }
    }
}

#[tonic::async_trait]
impl<S: RunSource> RunSource for Coalescing<S> {
    async fn environment_files(&self, run: &RunName) -> Result<Vec<(String, i64, String)>, Error> {
        self.inner.environment_files(run).await
    }

    async fn dataset_version_holds(&self, version: &str, digest: &str) -> Result<bool, Error> {
        self.inner.dataset_version_holds(version, digest).await
    }

    async fn snapshot(&self, run: &RunName, artifact_path: &str) -> Result<RunSnapshot, Error> {
        let key = (run.to_string(), artifact_path.to_string());
        let (tx, rx) = tokio::sync::oneshot::channel();
        let start = {
            let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
            let slot = slots.entry(key.clone()).or_default();
            slot.waiters.push(tx);
            !std::mem::replace(&mut slot.running, true)
        };
        if start {
            let inner = self.inner.clone();
            let slots = self.slots.clone();
            let run = run.clone();
            // The fetch runs in the trace of the request that started it.
            let span = tracing::Span::current();
            tokio::spawn(tracing::Instrument::instrument(
                async move {
                    loop {
                        let waiters = {
                            let mut all = slots.lock().unwrap_or_else(|p| p.into_inner());
                            let slot = all.get_mut(&key).expect("slot of a running fetch");
                            if slot.waiters.is_empty() {
                                all.remove(&key);
                                break;
                            }
                            std::mem::take(&mut slot.waiters)
                        };
                        let result = inner.snapshot(&run, &key.1).await;
                        for w in waiters {
                            let _ = w.send(result.clone());
                        }
                    }
                },
                span,
            ));
        }
        rx.await
            .map_err(|_| Error::internal("run snapshot task stopped"))?
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    struct Counting(Arc<AtomicUsize>);

    #[tonic::async_trait]
    impl RunSource for Counting {
        async fn snapshot(&self, _run: &RunName, _p: &str) -> Result<RunSnapshot, Error> {
            let n = self.0.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            Ok(RunSnapshot {
                lineage: Lineage {
                    run_name: n.to_string(),
                    ..Default::default()
                },
                files: vec![],
                artifact_uri: String::new(),
            })
        }
    }

    #[tokio::test]
    async fn concurrent_snapshots_share_fetches_that_started_after_they_arrived() {
        let calls = Arc::new(AtomicUsize::new(0));
        let src = Arc::new(Coalescing::new(Counting(calls.clone())));
        let run = RunName::parse(
            &format!("experiments/{}/runs/{}", "a".repeat(32), "b".repeat(32)),
            "r",
        )
        .unwrap();
        let first = {
            let (src, run) = (src.clone(), run.clone());
            tokio::spawn(async move { src.snapshot(&run, "model").await })
        };
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        // These arrive while fetch 0 is in flight: they must not get its (older) result.
        let later: Vec<_> = (0..10)
            .map(|_| {
                let (src, run) = (src.clone(), run.clone());
                tokio::spawn(async move { src.snapshot(&run, "model").await })
            })
            .collect();
        assert_eq!(first.await.unwrap().unwrap().lineage.run_name, "0");
        for l in later {
            assert_eq!(l.await.unwrap().unwrap().lineage.run_name, "1");
        }
        assert_eq!(calls.load(Ordering::SeqCst), 2, "11 requests, 2 fetches");
    }
}
