//! Wiring: the gRPC service over the process's backends, and the stand-alone server.

use steward_common::Error;
use steward_config::Config;
use steward_proto::tracking::tracking_service_server::TrackingServiceServer;
pub use steward_runtime::{Backends, server_config};

use crate::api::TrackingApi;
use crate::app::{SERVICE, Tracking};

/// Full gRPC method paths of the streaming RPCs (exempt from the unary timeout).
pub const STREAMING_METHODS: &[&str] = &[
    "/steward.tracking.v1.TrackingService/StreamMetrics",
    "/steward.tracking.v1.TrackingService/UploadArtifact",
    "/steward.tracking.v1.TrackingService/DownloadArtifact",
    "/steward.tracking.v1.TrackingService/UploadDatasetFile",
    "/steward.tracking.v1.TrackingService/DownloadDatasetFile",
    // Long by nature: reading an external object to verify it, profiling a version's files at
    // commit, and collecting a deleted version's chunks take as long as the data is big.
    "/steward.tracking.v1.TrackingService/CreateDatasetVersion",
    "/steward.tracking.v1.TrackingService/CommitDatasetVersion",
    "/steward.tracking.v1.TrackingService/DeleteDatasetVersion",
];

/// The tracking gRPC service over `b`.
pub fn service(b: &Backends, cfg: &Config) -> TrackingServiceServer<TrackingApi> {
    let app = Tracking::new(b.db.clone(), b.objects.clone(), cfg.limits.clone());
    TrackingServiceServer::new(TrackingApi::new(app, b.tokens.clone()))
        .max_decoding_message_size(cfg.limits.max_message_bytes)
        .max_encoding_message_size(cfg.limits.max_message_bytes)
}

/// Runs the tracking service alone until `shutdown` resolves (the `steward-tracking` binary).
pub async fn run(
    cfg: Config,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), Error> {
    let b = Backends::open(&cfg).await?;
    let relay = b.start_relay(SERVICE);
    let _metrics = steward_runtime::metrics::serve(&cfg, &b, &[SERVICE]).await?;
    let listener = steward_runtime::bind(&cfg).await?;
    tracing::info!(listen = %listener.local_addr().map(|a| a.to_string()).unwrap_or_default(), "steward-tracking serving");
    let gate = steward_runtime::auth_gate(&cfg, &b, None)?;
    let server = steward_runtime::grpc_server(&cfg, gate)
        .add_streaming_methods(STREAMING_METHODS)
        .add_service(service(&b, &cfg));
    let result = server.serve(listener, shutdown).await;
    if let Err(e) = relay.shutdown().await {
        tracing::warn!(error = %e, "outbox relay did not drain before shutdown; pending events are relayed at the next start");
    }
    b.db.close().await;
    result
}
