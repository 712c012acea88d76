//! Starts tracking, registry and audit on one server (as `steward up` does) over test
//! backends, and gives tests clients.

use std::sync::Arc;

use steward_config::{Config, Overrides};
use steward_events::EventBus;
use steward_grpc::GrpcServer;
use steward_proto::registry as pb;
use steward_proto::registry::registry_service_client::RegistryServiceClient;
use steward_proto::tracking as tpb;
use steward_proto::tracking::tracking_service_client::TrackingServiceClient;
use steward_runtime::Backends;
use steward_storage::testing::TestDb;
use tonic::metadata::MetadataValue;
use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

/// Sends `x-steward-actor`.
#[derive(Clone)]
pub struct As(pub &'static str);

impl Interceptor for As {
    fn call(&mut self, mut r: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        r.metadata_mut()
            .insert("x-steward-actor", MetadataValue::from_static(self.0));
        Ok(r)
    }
}

/// A registry client acting as someone.
pub type Client = RegistryServiceClient<InterceptedService<Channel, As>>;

/// A running server.
pub struct Harness {
    pub label: String,
    /// Acting as `alice` (the creator in most tests).
    pub reg: Client,
    /// Acting as `bob` (a reviewer).
    pub bob: Client,
    pub tracking: TrackingServiceClient<Channel>,
    pub channel: Channel,
    pub backends: Backends,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
    invalidator: Option<tokio::task::JoinHandle<()>>,
    db: Option<TestDb>,
    _dir: tempfile::TempDir,
}

/// Every backend combination asked for.
pub async fn all() -> Vec<Harness> {
    let mut v = vec![start(false).await];
    if steward_runtime::testing::real_tier_asked() {
        v.push(start(true).await);
    }
    v
}

/// Starts the services; `real` uses each configured real backend.
pub async fn start(real: bool) -> Harness {
    steward_runtime::testing::telemetry("steward-registry-test");
    let dir = tempfile::tempdir().unwrap();
    let t = steward_runtime::testing::open(real, dir.path()).await;
    let mut cfg = Config::load(
        None,
        &Default::default(),
        &Overrides {
            listen: Some("127.0.0.1:0".into()),
            ..Default::default()
        },
    )
    .unwrap();
    cfg.database_url = t.db.url.clone();
    if let Some((url, prefix)) = &t.redis {
        cfg.redis_url = Some(url.clone());
        cfg.redis_key_prefix = prefix.clone();
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let reg =
        steward_registry::server::services(&t.backends, &cfg, &format!("http://{addr}"), None)
            .await
            .expect("registry services");
    let server = GrpcServer::new(steward_runtime::server_config(&cfg))
        .file_descriptor_set(steward_proto::FILE_DESCRIPTOR_SET)
        .add_streaming_methods(steward_tracking::server::STREAMING_METHODS)
        .add_service(steward_tracking::server::service(&t.backends, &cfg))
        .add_service(reg.registry)
        .add_service(reg.audit);
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        server
            .serve(listener, async {
                let _ = rx.await;
            })
            .await
            .expect("server");
    });
    let channel = Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    Harness {
        label: t.label,
        reg: RegistryServiceClient::with_interceptor(channel.clone(), As("alice")),
        bob: RegistryServiceClient::with_interceptor(channel.clone(), As("bob")),
        tracking: TrackingServiceClient::new(channel.clone()),
        channel,
        backends: t.backends,
        stop: Some(tx),
        task: Some(task),
        invalidator: Some(reg.invalidator),
        db: Some(t.db),
        _dir: dir,
    }
}

impl Harness {
    /// Stops the server and drops the test database.
    pub async fn stop(mut self) {
        if let Some(i) = self.invalidator.take() {
            i.abort();
        }
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.task.take() {
            let _ = t.await;
        }
        if let Some(db) = self.db.take() {
            db.cleanup().await;
        }
    }

    /// The event bus.
    pub fn bus(&self) -> Arc<dyn EventBus> {
        self.backends.bus.clone()
    }

    /// A client acting as `who`.
    pub fn as_(&self, who: &'static str) -> Client {
        RegistryServiceClient::with_interceptor(self.channel.clone(), As(who))
    }

    /// A new registered model with a unique name.
    pub async fn model(&mut self) -> String {
        let name = format!("m-{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
        self.reg
            .create_registered_model(pb::CreateRegisteredModelRequest {
                registered_model: Some(pb::RegisteredModel {
                    name: name.clone(),
                    ..Default::default()
                }),
                request_id: String::new(),
            })
            .await
            .unwrap();
        format!("registeredModels/{name}")
    }

    /// A run with params, metrics, tags (code version), a dataset and model files
    /// `model/model.onnx` and `model/conf.json`; returns its name.
    pub async fn trained_run(&mut self, auc: f64, lr: &str) -> String {
        let exp = self
            .tracking
            .create_experiment(tpb::CreateExperimentRequest {
                experiment: Some(tpb::Experiment {
                    display_name: format!("exp-{}", uuid::Uuid::new_v4()),
                    ..Default::default()
                }),
                request_id: String::new(),
            })
            .await
            .unwrap()
            .into_inner();
        let run = self
            .tracking
            .create_run(tpb::CreateRunRequest {
                parent: exp.name.clone(),
                run: Some(tpb::Run {
                    run_name: "train".into(),
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
        self.tracking
            .log_run_data(tpb::LogRunDataRequest {
                run: run.name.clone(),
                metrics: vec![tpb::MetricPoint {
                    key: "auc".into(),
                    value: auc,
                    step: 10,
                    ..Default::default()
                }],
                params: vec![tpb::Param {
                    key: "lr".into(),
                    value: lr.into(),
                }],
                ..Default::default()
            })
            .await
            .unwrap();
        self.tracking
            .log_run_inputs(tpb::LogRunInputsRequest {
                run: run.name.clone(),
                inputs: vec![tpb::DatasetInput {
                    dataset: Some(tpb::Dataset {
                        name: "transactions".into(),
                        digest: format!("sha256:{}", "d".repeat(64)),
                        source_uri: "s3://data/transactions.parquet".into(),
                        ..Default::default()
                    }),
                    context: "training".into(),
                }],
                request_id: String::new(),
            })
            .await
            .unwrap();
        for (path, body) in [
            ("model/model.onnx", "onnx-bytes"),
            ("model/conf.json", "{}"),
        ] {
            self.upload(&run.name, path, body.as_bytes()).await;
        }
        run.name
    }

    /// Uploads an artifact.
    pub async fn upload(&mut self, run: &str, path: &str, body: &[u8]) {
        let msgs = vec![
            tpb::UploadArtifactRequest {
                part: Some(tpb::upload_artifact_request::Part::Header(
                    tpb::ArtifactHeader {
                        run: run.to_string(),
                        path: path.to_string(),
                        ..Default::default()
                    },
                )),
            },
            tpb::UploadArtifactRequest {
                part: Some(tpb::upload_artifact_request::Part::Chunk(
                    body.to_vec().into(),
                )),
            },
        ];
        self.tracking
            .upload_artifact(tokio_stream::iter(msgs))
            .await
            .unwrap();
    }

    /// Creates a version of `model` from `run`'s `model/` directory.
    pub async fn version_from(&mut self, model: &str, run: &str) -> pb::ModelVersion {
        self.reg
            .create_model_version(pb::CreateModelVersionRequest {
                parent: model.to_string(),
                model_version: Some(pb::ModelVersion {
                    source_run: run.to_string(),
                    artifact_path: "model".into(),
                    format: "onnx".into(),
                    ..Default::default()
                }),
                request_id: String::new(),
            })
            .await
            .unwrap()
            .into_inner()
    }
}

pub use steward_runtime::testing::{assert_bad, reason};
