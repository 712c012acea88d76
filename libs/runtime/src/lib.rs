//! What every Steward service process starts with: the backends named by the configuration
//! (database, artifact store, event bus, page-token key), the outbox relay of a service, and the
//! gRPC server settings. Shared by the service binaries and `steward up`, so each service crate
//! stays independent of the others.

pub mod metrics;
pub mod request;
mod service_main;
pub mod testing;

pub use service_main::service_main;

/// Every process that links the runtime (the service binaries, `steward`, the tests) allocates
/// with mimalloc. With glibc's allocator, the memory of a large drift report, computed on
/// short-lived threads, stayed in per-thread arenas after the report was done (server RSS grew
/// by ~0.5 GB per 1M-row report); mimalloc returns it.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use steward_artifacts::{ObjectStore, ObjectStoreConfig, S3Config};
use steward_auth::{AuthGate, AuthMode};
use steward_common::Error;
use steward_config::{AuthSetting, Config};
use steward_events::{EventBus, InProcessBus, RedisBus, Relay, RelayHandle, RelayOptions};
use steward_grpc::{
    GrpcServer, MethodLimit, PageTokenCodec, PeerSettings, RateLimit, ServerConfig, TlsFiles,
};
use steward_storage::outbox::SqlOutbox;
use steward_storage::{Db, DbOptions};

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
        let notify = self.db.outbox_notify(service);
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

/// Largest request message of a control-plane method (every method but [`BULK_METHODS`]).
pub const CONTROL_REQUEST_BYTES: usize = 4 << 20;

/// Methods that carry data in bulk: their messages may be as large as
/// `STEWARD_MAX_MESSAGE_BYTES`.
pub const BULK_METHODS: &[&str] = &[
    "/steward.tracking.v1.TrackingService/LogRunData",
    "/steward.tracking.v1.TrackingService/StreamMetrics",
    "/steward.tracking.v1.TrackingService/LogRunInputs",
    "/steward.tracking.v1.TrackingService/UploadArtifact",
    "/steward.tracking.v1.TrackingService/UploadDatasetFile",
    "/steward.monitoring.v1.MonitoringService/CreateBaseline",
    "/steward.monitoring.v1.MonitoringService/IngestPredictions",
    "/steward.monitoring.v1.MonitoringService/StreamPredictions",
    "/steward.monitoring.v1.MonitoringService/IngestFeedback",
    "/steward.monitoring.v1.MonitoringService/IngestKpis",
    "/inference.GRPCInferenceService/ModelInfer",
];

/// Methods whose calls cost much memory or CPU each, with how many may run at once per process
/// (more wait): drift reports over up to a million rows per feature, performance over a window,
/// dataset profiles and diffs, a full audit chain walk.
pub const HEAVY_METHODS: &[(&str, usize)] = &[
    ("/steward.monitoring.v1.MonitoringService/GetDriftReport", 2),
    ("/steward.monitoring.v1.MonitoringService/GetPerformance", 4),
    (
        "/steward.tracking.v1.TrackingService/CommitDatasetVersion",
        4,
    ),
    (
        "/steward.tracking.v1.TrackingService/DiffDatasetVersions",
        4,
    ),
    ("/steward.audit.v1.AuditService/VerifyAuditChain", 2),
];

fn method_limits(max_message_bytes: usize) -> HashMap<String, MethodLimit> {
    let mut limits: HashMap<String, MethodLimit> = BULK_METHODS
        .iter()
        .map(|m| {
            let limit = MethodLimit {
                max_request_bytes: max_message_bytes,
                max_in_flight: None,
            };
            ((*m).to_owned(), limit)
        })
        .collect();
    for (m, n) in HEAVY_METHODS {
        let e = limits.entry((*m).to_owned()).or_insert(MethodLimit {
            max_request_bytes: CONTROL_REQUEST_BYTES,
            max_in_flight: None,
        });
        e.max_in_flight = Some(*n);
    }
    limits
}

/// Server settings from the configuration.
pub fn server_config(cfg: &Config) -> ServerConfig {
    ServerConfig {
        listen: cfg.listen,
        request_timeout: Duration::from_millis(cfg.request_timeout_ms),
        concurrency_limit: cfg.concurrency_limit,
        max_message_bytes: cfg.limits.max_message_bytes,
        tls: match (&cfg.tls_cert, &cfg.tls_key) {
            (Some(cert), Some(key)) => Some(TlsFiles {
                cert: cert.clone(),
                key: key.clone(),
                ca: cfg.tls_client_ca.clone(),
            }),
            _ => None,
        },
        concurrency_limit_per_connection: cfg.concurrency_limit_per_connection,
        rate_limit: (cfg.rate_limit_per_s > 0.0).then_some(RateLimit {
            per_second: cfg.rate_limit_per_s,
            burst: cfg.rate_limit_burst,
        }),
        stream_idle_timeout: Duration::from_millis(cfg.stream_idle_timeout_ms),
        default_request_bytes: Some(CONTROL_REQUEST_BYTES.min(cfg.limits.max_message_bytes)),
        method_limits: method_limits(cfg.limits.max_message_bytes),
        ..ServerConfig::default()
    }
}

/// The authentication gate of a process over the keys in `b.db`, and how it calls its peers
/// (service key, TLS). `own_url`: the services of this process call each other at this address
/// (`steward up`) with the process's own token, which the gate admits and which is sent nowhere
/// else. Logs loudly when calls need no key.
///
/// # Errors
/// `INVALID_ARGUMENT` when a TLS file cannot be read or the service token is not a header.
pub fn auth_gate(
    cfg: &Config,
    b: &Backends,
    own_url: Option<&str>,
) -> Result<Arc<AuthGate>, Error> {
    let mode = if cfg.auth_open() {
        AuthMode::Open
    } else {
        AuthMode::Required
    };
    match (mode, cfg.auth) {
        (AuthMode::Open, AuthSetting::Disabled) => tracing::warn!(
            listen = %cfg.listen,
            "AUTHENTICATION IS DISABLED (STEWARD_AUTH=disabled): anyone who can reach this address can do anything"
        ),
        (AuthMode::Open, _) => tracing::warn!(
            listen = %cfg.listen,
            "running OPEN on a loopback address: calls without an API key are allowed; listen on any other address (or set STEWARD_AUTH=required) to require keys"
        ),
        (AuthMode::Required, _) => {
            tracing::info!(listen = %cfg.listen, "API keys required (authorization: Bearer ...)")
        }
    }
    let identity = match (&cfg.tls_cert, &cfg.tls_key) {
        (Some(cert), Some(key)) if cfg.tls_ca.is_some() => Some(
            TlsFiles {
                cert: cert.clone(),
                key: key.clone(),
                ca: None,
            }
            .identity()?,
        ),
        _ => None,
    };
    let ca = cfg
        .tls_ca
        .as_ref()
        .map(|ca| steward_grpc::read_certificate(ca, "tls_ca"))
        .transpose()?;
    steward_grpc::configure_peers(PeerSettings {
        token: cfg.service_token.as_ref().map(|t| t.0.clone()),
        internal_url: own_url.map(str::to_owned),
        ca,
        identity,
    });
    Ok(Arc::new(AuthGate::new(
        mode,
        b.db.clone(),
        own_url.is_some(),
    )?))
}

/// A gRPC server for `cfg` behind `gate`, with the API descriptors for reflection.
pub fn grpc_server(cfg: &Config, gate: Arc<AuthGate>) -> GrpcServer {
    GrpcServer::new(server_config(cfg))
        .file_descriptor_set(steward_proto::FILE_DESCRIPTOR_SET)
        .gate(gate)
}

/// Binds the listen address of `cfg`, with an error that names it.
pub async fn bind(cfg: &Config) -> Result<tokio::net::TcpListener, Error> {
    tokio::net::TcpListener::bind(cfg.listen)
        .await
        .map_err(|e| {
            Error::unavailable(
                "LISTEN_FAILED",
                format!("cannot listen on {}: {e}", cfg.listen),
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every limited method is a real method (the authorization rules match the descriptors
    /// exactly, so a rule exists only for a real method).
    #[test]
    fn limited_methods_exist() {
        let methods = BULK_METHODS
            .iter()
            .chain(HEAVY_METHODS.iter().map(|(m, _)| m));
        for m in methods {
            assert!(steward_auth::rules::rule(m).is_some(), "{m}");
        }
        let limits = method_limits(64 << 20);
        assert_eq!(limits.len(), BULK_METHODS.len() + HEAVY_METHODS.len());
        let drift = &limits["/steward.monitoring.v1.MonitoringService/GetDriftReport"];
        assert_eq!(drift.max_in_flight, Some(2));
        assert_eq!(drift.max_request_bytes, CONTROL_REQUEST_BYTES);
    }
}
