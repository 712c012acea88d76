//! Wiring: backends from configuration, the gRPC service, and the stand-alone server.

use std::sync::Arc;
use std::time::Duration;

use steward_artifacts::{ObjectStore, ObjectStoreConfig, S3Config};
use steward_common::Error;
use steward_config::Config;
use steward_events::{EventBus, InProcessBus, RedisBus, Relay, RelayHandle, RelayOptions};
use steward_grpc::{GrpcServer, PageTokenCodec, ServerConfig};
use steward_proto::tracking::tracking_service_server::TrackingServiceServer;
use steward_storage::outbox::SqlOutbox;
use steward_storage::{Db, DbOptions};

use crate::api::TrackingApi;
use crate::app::{SERVICE, Tracking};

/// Full gRPC method paths of the streaming RPCs (exempt from the unary timeout).
pub const STREAMING_METHODS: &[&str] = &[
    "/steward.tracking.v1.TrackingService/StreamMetrics",
    "/steward.tracking.v1.TrackingService/UploadArtifact",
    "/steward.tracking.v1.TrackingService/DownloadArtifact",
];

/// The backends a Steward process runs on, opened from its configuration.
#[derive(Clone)]
pub struct Backends {
    /// Database (SQLite or Postgres).
    pub db: Db,
    /// Artifact store (local or S3).
    pub objects: Arc<dyn ObjectStore>,
    /// Event bus (in-process or Redis Streams).
    pub bus: Arc<dyn EventBus>,
    /// Page-token signer.
    pub tokens: Arc<PageTokenCodec>,
}

impl Backends {
    /// Opens every backend named by `cfg`, checking each is reachable. Migrates the schema
    /// unless `cfg.no_migrate`.
    pub async fn open(cfg: &Config) -> Result<Backends, Error> {
        if cfg.is_sqlite() {
            std::fs::create_dir_all(&cfg.data_dir).map_err(|e| {
                Error::failed_precondition(
                    "DATA_DIR_UNWRITABLE",
                    format!("cannot create {}: {e}", cfg.data_dir.display()),
                )
            })?;
        }
        let db = Db::connect(&cfg.database_url, &DbOptions::default()).await?;
        if cfg.no_migrate {
            steward_storage::migrate::ensure_current(&db).await?;
        } else {
            steward_storage::migrate::run(&db).await?;
        }
        let store_cfg = match &cfg.s3 {
            Some(s) => ObjectStoreConfig::S3(S3Config {
                bucket: s.bucket.clone(),
                prefix: s.prefix.clone(),
                region: s.region.clone(),
                endpoint: s.endpoint.clone(),
                path_style: s.path_style,
                access_key_id: s.access_key_id.clone(),
                secret_access_key: s.secret_access_key.clone(),
                create_bucket: s.create_bucket,
            }),
            None => ObjectStoreConfig::Local {
                root: cfg.local_artifact_root(),
            },
        };
        let objects = steward_artifacts::open(&store_cfg).await?;
        objects.check().await?;
        let bus: Arc<dyn EventBus> = match &cfg.redis_url {
            Some(url) => Arc::new(RedisBus::connect(url, &cfg.redis_key_prefix).await?),
            None => Arc::new(InProcessBus::new()),
        };
        let tokens = Arc::new(match &cfg.page_token_key {
            Some(k) => PageTokenCodec::new(k.0.as_bytes()),
            None => PageTokenCodec::random(),
        });
        Ok(Backends {
            db,
            objects,
            bus,
            tokens,
        })
    }

    /// Starts the outbox relay of `service`, woken after each commit that wrote events.
    pub fn start_relay(&self, service: &str) -> RelayHandle {
        let store = Arc::new(SqlOutbox::new(self.db.clone(), service));
        let handle = Relay::spawn(store, self.bus.clone(), RelayOptions::default());
        let notify = self.db.outbox_notify();
        let wake = handle.notifier();
        tokio::spawn(async move {
            loop {
                notify.notified().await;
                wake.notify();
            }
        });
        handle
    }
}

/// The tracking gRPC service over `b`.
pub fn service(b: &Backends, cfg: &Config) -> TrackingServiceServer<TrackingApi> {
    let app = Tracking::new(b.db.clone(), b.objects.clone(), cfg.limits.clone());
    TrackingServiceServer::new(TrackingApi::new(app, b.tokens.clone()))
        .max_decoding_message_size(cfg.limits.max_message_bytes)
        .max_encoding_message_size(cfg.limits.max_message_bytes)
}

/// Server settings from the configuration.
pub fn server_config(cfg: &Config) -> ServerConfig {
    ServerConfig {
        listen: cfg.listen,
        request_timeout: Duration::from_millis(cfg.request_timeout_ms),
        concurrency_limit: cfg.concurrency_limit,
        max_message_bytes: cfg.limits.max_message_bytes,
        ..ServerConfig::default()
    }
}

/// Runs the tracking service alone until `shutdown` resolves (the `steward-tracking` binary).
pub async fn run(
    cfg: Config,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), Error> {
    let b = Backends::open(&cfg).await?;
    let relay = b.start_relay(SERVICE);
    let listener = tokio::net::TcpListener::bind(cfg.listen)
        .await
        .map_err(|e| {
            Error::unavailable(
                "LISTEN_FAILED",
                format!("cannot listen on {}: {e}", cfg.listen),
            )
        })?;
    tracing::info!(listen = %listener.local_addr().map(|a| a.to_string()).unwrap_or_default(), "steward-tracking serving");
    let server = GrpcServer::new(server_config(&cfg))
        .file_descriptor_set(steward_proto::FILE_DESCRIPTOR_SET)
        .add_streaming_methods(STREAMING_METHODS)
        .add_service(service(&b, &cfg));
    let result = server.serve(listener, shutdown).await;
    if let Err(e) = relay.shutdown().await {
        tracing::warn!(error = %e, "outbox relay did not drain before shutdown; pending events are relayed at the next start");
    }
    b.db.close().await;
    result
}
