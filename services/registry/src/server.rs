//! Wiring: the registry and audit gRPC services over the process's backends, and the
//! stand-alone server (`steward-registry`).

use std::sync::Arc;

use steward_common::Error;
use steward_config::Config;
use steward_proto::audit::audit_service_server::AuditServiceServer;
use steward_proto::registry::registry_service_server::RegistryServiceServer;
pub use steward_runtime::{Backends, server_config};

use crate::api::RegistryApi;
use crate::app::cache::{self, ResolveCache};
use crate::app::deployments::DeploymentPeer;
use crate::app::source::{Coalescing, TrackingRunSource};
use crate::app::{Registry, SERVICE};
use crate::audit_api::AuditApi;

/// The registry's gRPC services and its background task.
pub struct RegistryServices {
    /// `steward.registry.v1.RegistryService`.
    pub registry: RegistryServiceServer<RegistryApi>,
    /// `steward.audit.v1.AuditService`.
    pub audit: AuditServiceServer<AuditApi>,
    /// The app (for tests and embedding).
    pub app: Registry,
    /// Cache invalidation from events; abort it at shutdown.
    pub invalidator: tokio::task::JoinHandle<()>,
}

/// Builds the registry over `b`, checking run sources against the tracking service at
/// `tracking_url` and deployments against the deployment service at `deployment_url` (without
/// one, models can be deleted regardless of deployments and lineage lists none).
pub async fn services(
    b: &Backends,
    cfg: &Config,
    tracking_url: &str,
    deployment_url: Option<&str>,
) -> Result<RegistryServices, Error> {
    let cache = Arc::new(match &cfg.redis_url {
        Some(url) => ResolveCache::redis(url, &cfg.redis_key_prefix).await?,
        None => ResolveCache::in_process(),
    });
    let source = Arc::new(Coalescing::new(
        TrackingRunSource::connect(tracking_url).await?,
    ));
    let deployments = DeploymentPeer::connect(deployment_url).await?;
    let app = Registry::new(
        b.db.clone(),
        cfg.limits.clone(),
        source,
        cache.clone(),
        deployments,
    );
    let consumer = format!("registry-{}", uuid::Uuid::new_v4().simple());
    let invalidator = cache::spawn_invalidator(b.bus.clone(), cache, consumer);
    Ok(RegistryServices {
        registry: RegistryServiceServer::new(RegistryApi::new(app.clone(), b.tokens.clone()))
            .max_decoding_message_size(cfg.limits.max_message_bytes)
            .max_encoding_message_size(cfg.limits.max_message_bytes),
        audit: AuditServiceServer::new(AuditApi::new(b.db.clone(), b.tokens.clone())),
        app,
        invalidator,
    })
}

/// Runs the registry alone until `shutdown` resolves (the `steward-registry` binary).
/// Needs `STEWARD_TRACKING_URL`.
pub async fn run(
    cfg: Config,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), Error> {
    let tracking_url = cfg.tracking_url.clone().ok_or_else(|| {
        Error::invalid_field(
            "tracking_url",
            "steward-registry needs the tracking service's address: set STEWARD_TRACKING_URL (e.g. http://tracking:50051)",
        )
    })?;
    let b = Backends::open(&cfg).await?;
    let relay = b.start_relay(SERVICE);
    let _metrics = steward_runtime::metrics::serve(&cfg, &b, &[SERVICE]).await?;
    let gate = steward_runtime::auth_gate(&cfg, &b, None)?;
    let auth =
        steward_auth::api::service(&b.db, SERVICE, gate.clone(), cfg.limits.max_message_bytes);
    let svc = services(&b, &cfg, &tracking_url, cfg.deployment_url.as_deref()).await?;
    let listener = steward_runtime::bind(&cfg).await?;
    tracing::info!(listen = %listener.local_addr().map(|a| a.to_string()).unwrap_or_default(), "steward-registry serving");
    let server = steward_runtime::grpc_server(&cfg, gate)
        .add_service(svc.registry)
        .add_service(svc.audit)
        .add_service(auth);
    let result = server.serve(listener, shutdown).await;
    svc.invalidator.abort();
    if let Err(e) = relay.shutdown().await {
        tracing::warn!(error = %e, "outbox relay did not drain before shutdown; pending events are relayed at the next start");
    }
    b.db.close().await;
    result
}
