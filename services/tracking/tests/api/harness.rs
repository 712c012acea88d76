//! Starts the tracking service on real backends and gives tests a client.

use steward_config::{Config, Overrides};
use steward_grpc::GrpcServer;
use steward_proto::tracking as pb;
use steward_proto::tracking::tracking_service_client::TrackingServiceClient;
use steward_storage::testing::TestDb;
use steward_tracking::server::{Backends, STREAMING_METHODS, server_config, service};
use tonic::transport::Channel;

/// A running tracking service.
pub struct Harness {
    pub label: String,
    pub client: TrackingServiceClient<Channel>,
    pub backends: Backends,
    pub s3: bool,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
    db: Option<TestDb>,
    _dir: tempfile::TempDir,
}

/// Every backend combination asked for: the embedded one, and the real one if any real
/// backend is configured.
pub async fn all() -> Vec<Harness> {
    let mut v = vec![start(false).await];
    if steward_runtime::testing::real_tier_asked() {
        v.push(start(true).await);
    }
    v
}

/// Starts the service; `real` uses each configured real backend.
pub async fn start(real: bool) -> Harness {
    steward_runtime::testing::telemetry("steward-tracking-test");
    let dir = tempfile::tempdir().unwrap();
    let t = steward_runtime::testing::open(real, dir.path()).await;
    let (backends, db) = (t.backends, t.db);
    let mut cfg = Config::load(
        None,
        &Default::default(),
        &Overrides {
            listen: Some("127.0.0.1:0".into()),
            ..Default::default()
        },
    )
    .unwrap();
    cfg.database_url = db.url.clone();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = GrpcServer::new(server_config(&cfg))
        .file_descriptor_set(steward_proto::FILE_DESCRIPTOR_SET)
        .add_streaming_methods(STREAMING_METHODS)
        .add_service(service(&backends, &cfg));
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
    let client = TrackingServiceClient::new(channel)
        .max_decoding_message_size(64 << 20)
        .max_encoding_message_size(64 << 20);
    Harness {
        label: t.label,
        client,
        backends,
        s3: t.s3,
        stop: Some(tx),
        task: Some(task),
        db: Some(db),
        _dir: dir,
    }
}

impl Harness {
    /// Stops the server and drops the test database.
    pub async fn stop(mut self) {
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

    /// A fresh experiment with a unique name.
    pub async fn experiment(&mut self) -> pb::Experiment {
        self.client
            .create_experiment(pb::CreateExperimentRequest {
                experiment: Some(pb::Experiment {
                    display_name: format!("exp-{}", uuid::Uuid::new_v4()),
                    ..Default::default()
                }),
                request_id: String::new(),
            })
            .await
            .unwrap()
            .into_inner()
    }

    /// A fresh run in `exp`.
    pub async fn run(&mut self, exp: &str) -> pb::Run {
        self.client
            .create_run(pb::CreateRunRequest {
                parent: exp.into(),
                run: Some(pb::Run::default()),
                request_id: String::new(),
            })
            .await
            .unwrap()
            .into_inner()
    }
}

pub use steward_runtime::testing::{assert_bad, reason};
