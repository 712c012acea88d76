//! Starts tracking, registry and deployment on one server (as `steward up` does) over test
//! backends, with a fast rollout controller, and gives tests clients and helpers.

use steward_config::{Config, Overrides};
use steward_grpc::GrpcServer;
use steward_proto::deployment as pb;
use steward_proto::deployment::deployment_service_client::DeploymentServiceClient;
use steward_proto::inference::grpc_inference_service_client::GrpcInferenceServiceClient;
use steward_proto::registry as rpb;
use steward_proto::registry::registry_service_client::RegistryServiceClient;
use steward_runtime::Backends;
use steward_storage::testing::TestDb;
use tonic::metadata::MetadataValue;
use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

pub use steward_runtime::testing::{assert_bad, reason};

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

/// A running server.
pub struct Harness {
    pub label: String,
    pub dep: DeploymentServiceClient<InterceptedService<Channel, As>>,
    pub reg: RegistryServiceClient<InterceptedService<Channel, As>>,
    pub bob: RegistryServiceClient<InterceptedService<Channel, As>>,
    pub oip: GrpcInferenceServiceClient<Channel>,
    pub backends: Backends,
    pub channel: Channel,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    relay: Option<steward_events::RelayHandle>,
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
    start_with(real, true).await
}

/// [`start`]; without `relay` the deployment outbox is not relayed (as when the event bus is
/// down) until [`Harness::start_relay`].
pub async fn start_with(real: bool, relay: bool) -> Harness {
    steward_runtime::testing::telemetry("steward-deployment-test");
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
    cfg.rollout_tick_ms = 50;
    cfg.decision_sample_rate = 1.0;
    if let Some((url, prefix)) = &t.redis {
        cfg.redis_url = Some(url.clone());
        cfg.redis_key_prefix = prefix.clone();
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let reg = steward_registry::server::services(&t.backends, &cfg, &url, Some(&url))
        .await
        .expect("registry");
    let dep = steward_deployment::server::services(&t.backends, &cfg, &url, &url)
        .await
        .expect("deployment");
    let relay = relay.then(|| t.backends.start_relay(steward_deployment::app::SERVICE));
    let server = GrpcServer::new(steward_runtime::server_config(&cfg))
        .file_descriptor_set(steward_proto::FILE_DESCRIPTOR_SET)
        .add_streaming_methods(steward_tracking::server::STREAMING_METHODS)
        .add_service(steward_tracking::server::service(&t.backends, &cfg))
        .add_service(reg.registry)
        .add_service(reg.audit)
        .add_service(dep.deployment)
        .add_service(dep.inference);
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        server
            .serve(listener, async {
                let _ = rx.await;
            })
            .await
            .expect("server");
    });
    let channel = Channel::from_shared(url).unwrap().connect().await.unwrap();
    let mut tasks = dep.tasks;
    tasks.push(reg.invalidator);
    Harness {
        label: t.label,
        dep: DeploymentServiceClient::with_interceptor(channel.clone(), As("alice")),
        reg: RegistryServiceClient::with_interceptor(channel.clone(), As("alice")),
        bob: RegistryServiceClient::with_interceptor(channel.clone(), As("bob")),
        oip: GrpcInferenceServiceClient::new(channel.clone()),
        channel,
        backends: t.backends,
        stop: Some(tx),
        task: Some(task),
        tasks,
        relay,
        db: Some(t.db),
        _dir: dir,
    }
}

impl Harness {
    /// Stops everything and drops the test database.
    pub async fn stop(mut self) {
        for t in self.tasks.drain(..) {
            t.abort();
        }
        if let Some(r) = self.relay.take() {
            let _ = r.shutdown().await;
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

    /// Starts relaying the deployment outbox (the bus "comes back").
    pub fn start_relay(&mut self) {
        self.relay = Some(self.backends.start_relay(steward_deployment::app::SERVICE));
    }

    /// A model with `n` READY ONNX versions (the demo model, from runs with a dataset and a
    /// code version); returns the model id.
    pub async fn model_with_versions(&mut self, n: usize) -> String {
        let model = format!("fraud-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
        steward_runtime::testing::onnx_model_with_versions(
            self.channel.clone(),
            &model,
            n,
            steward_deployment::infer::DEMO_MODEL,
        )
        .await;
        model
    }

    /// Bob approves version `v` of `model`.
    pub async fn approve(&mut self, model: &str, v: i64) {
        self.bob
            .review_model_version(rpb::ReviewModelVersionRequest {
                name: format!("registeredModels/{model}/versions/{v}"),
                decision: rpb::ApprovalState::Approved as i32,
                comment: "ok".into(),
                ..Default::default()
            })
            .await
            .unwrap();
    }

    /// Creates a deployment of `model` in `env` with `variants` (name, version, weight).
    pub async fn deploy(
        &mut self,
        model: &str,
        env: &str,
        variants: &[(&str, i64, i32)],
    ) -> Result<pb::Deployment, tonic::Status> {
        self.dep
            .create_deployment(pb::CreateDeploymentRequest {
                deployment: Some(pb::Deployment {
                    registered_model: format!("registeredModels/{model}"),
                    environment: format!("environments/{env}"),
                    ..Default::default()
                }),
                variants: variants
                    .iter()
                    .map(|(n, v, w)| variant(model, n, *v, *w))
                    .collect(),
                shadow: None,
                request_id: String::new(),
            })
            .await
            .map(|r| r.into_inner())
    }
}

/// A variant spec.
pub fn variant(model: &str, name: &str, version: i64, weight_bp: i32) -> pb::Variant {
    pb::Variant {
        name: name.into(),
        model_version: format!("registeredModels/{model}/versions/{version}"),
        weight_bp,
        ..Default::default()
    }
}
