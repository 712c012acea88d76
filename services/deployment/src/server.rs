//! Wiring: the deployment and inference gRPC services over the process's backends, the
//! background tasks (rollout controller, alert consumer, input retention), and the stand-alone
//! server (`steward-deployment`).

use std::time::Duration;

use steward_common::Error;
use steward_config::Config;
use steward_events::EventBus;
use steward_proto::deployment::deployment_service_server::DeploymentServiceServer;
use steward_proto::events::event_envelope::Payload;
use steward_proto::inference::grpc_inference_service_server::GrpcInferenceServiceServer;
pub use steward_runtime::{Backends, server_config};

use crate::api::{DeploymentApi, InferenceApi};
use crate::app::peers::Peers;
use crate::app::{Deployments, SERVICE, Settings};

/// The deployment service's gRPC services and background tasks.
pub struct DeploymentServices {
    /// `steward.deployment.v1.DeploymentService`.
    pub deployment: DeploymentServiceServer<DeploymentApi>,
    /// `inference.GRPCInferenceService`.
    pub inference: GrpcInferenceServiceServer<InferenceApi>,
    /// The app.
    pub app: Deployments,
    /// Controller, alert consumer and retention tasks; abort them at shutdown.
    pub tasks: Vec<tokio::task::JoinHandle<()>>,
}

/// Settings from the configuration.
pub fn settings(cfg: &Config) -> Settings {
    Settings {
        input_sample_rate: cfg.decision_sample_rate,
        input_retention_ms: i64::from(cfg.decision_input_retention_days) * 24 * 3_600_000,
        controller_tick: Duration::from_millis(cfg.rollout_tick_ms),
    }
}

/// Builds the deployment service over `b`, calling the registry and tracking at the URLs.
pub async fn services(
    b: &Backends,
    cfg: &Config,
    registry_url: &str,
    tracking_url: &str,
) -> Result<DeploymentServices, Error> {
    let peers = Peers::connect(registry_url, tracking_url).await?;
    let app = Deployments::new(b.db.clone(), cfg.limits.clone(), peers, settings(cfg));
    let tasks = vec![
        spawn_controller(app.clone()),
        spawn_alert_consumer(app.clone(), b.bus.clone()),
        spawn_retention(app.clone()),
    ];
    Ok(DeploymentServices {
        deployment: DeploymentServiceServer::new(DeploymentApi::new(app.clone(), b.tokens.clone()))
            .max_decoding_message_size(cfg.limits.max_message_bytes)
            .max_encoding_message_size(cfg.limits.max_message_bytes),
        inference: GrpcInferenceServiceServer::new(InferenceApi::new(app.clone()))
            .max_decoding_message_size(cfg.limits.max_message_bytes)
            .max_encoding_message_size(cfg.limits.max_message_bytes),
        app,
        tasks,
    })
}

/// The rollout controller: one pass every tick.
pub fn spawn_controller(app: Deployments) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(app.settings().controller_tick);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if let Err(e) = app.controller_tick().await {
                tracing::warn!(error = %e, "rollout controller pass failed; retrying next tick");
            }
        }
    })
}

/// Rolls back rollouts when a monitoring alert about their deployment fires (consumer group
/// `deployment-alerts`: one replica handles each alert).
pub fn spawn_alert_consumer(
    app: Deployments,
    bus: std::sync::Arc<dyn EventBus>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let consumer = format!("deployment-{}", uuid::Uuid::new_v4().simple());
        let mut sub = match bus.subscribe("deployment-alerts", &consumer).await {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(error = %e, "cannot subscribe to alerts; rollouts will not roll back on alerts");
                return;
            }
        };
        let mut seen = steward_events::Deduper::new(10_000);
        loop {
            let d = match sub.next().await {
                Ok(d) => d,
                Err(e) => {
                    tracing::error!(error = %e, "alert subscription stopped");
                    return;
                }
            };
            if let Some(Payload::AlertFired(a)) = &d.envelope.payload
                && seen.first_time(&d.envelope.event_id)
                && let Some(dep) = a.deployment.strip_prefix("deployments/")
            {
                match app
                    .on_alert(dep, &a.alert, &a.reason, &d.envelope.traceparent)
                    .await
                {
                    Ok(true) => {
                        tracing::info!(deployment = dep, alert = %a.alert, "rollout rolled back on alert")
                    }
                    Ok(false) => {}
                    Err(e) => {
                        // Not acked: redelivered later.
                        tracing::warn!(error = %e, deployment = dep, "rollback on alert failed; will retry");
                        continue;
                    }
                }
            }
            if let Err(e) = d.ack().await {
                tracing::debug!(error = %e, "alert ack failed; the event will come again");
            }
        }
    })
}

/// Drops sampled inputs past their retention, hourly.
pub fn spawn_retention(app: Deployments) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(3600));
        loop {
            tick.tick().await;
            match app.expire_inputs().await {
                Ok(0) => {}
                Ok(n) => tracing::info!(
                    expired = n,
                    "sampled decision inputs past retention dropped"
                ),
                Err(e) => tracing::warn!(error = %e, "input retention pass failed"),
            }
        }
    })
}

/// Runs the deployment service alone until `shutdown` resolves (`steward-deployment`). Needs
/// `STEWARD_REGISTRY_URL` and `STEWARD_TRACKING_URL`.
pub async fn run(
    cfg: Config,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), Error> {
    let need = |v: &Option<String>, key: &str, var: &str| {
        v.clone().ok_or_else(|| {
            Error::invalid_field(
                key,
                format!("steward-deployment needs {var} (e.g. http://host:50051)"),
            )
        })
    };
    let registry_url = need(&cfg.registry_url, "registry_url", "STEWARD_REGISTRY_URL")?;
    let tracking_url = need(&cfg.tracking_url, "tracking_url", "STEWARD_TRACKING_URL")?;
    let b = Backends::open(&cfg).await?;
    let relay = b.start_relay(SERVICE);
    let _metrics = steward_runtime::metrics::serve(&cfg, &b, &[SERVICE]).await?;
    let gate = steward_runtime::auth_gate(&cfg, &b, None)?;
    let svc = services(&b, &cfg, &registry_url, &tracking_url).await?;
    let listener = steward_runtime::bind(&cfg).await?;
    tracing::info!(listen = %listener.local_addr().map(|a| a.to_string()).unwrap_or_default(), "steward-deployment serving");
    let server = steward_runtime::grpc_server(&cfg, gate)
        .add_service(svc.deployment)
        .add_service(svc.inference);
    let result = server.serve(listener, shutdown).await;
    for t in svc.tasks {
        t.abort();
    }
    if let Err(e) = relay.shutdown().await {
        tracing::warn!(error = %e, "outbox relay did not drain before shutdown; pending events are relayed at the next start");
    }
    b.db.close().await;
    result
}
