//! Wiring: the monitoring gRPC service over the process's backends, the background tasks
//! (window closer and rule evaluator, webhook sender, decision consumer), and the stand-alone
//! server (`steward-monitoring`).

use std::sync::Arc;
use std::time::Duration;

use steward_common::Error;
use steward_config::Config;
use steward_events::EventBus;
use steward_proto::events::event_envelope::Payload;
use steward_proto::monitoring::monitoring_service_server::MonitoringServiceServer;
pub use steward_runtime::{Backends, server_config};

use crate::api::MonitoringApi;
use crate::app::peers::Peers;
use crate::app::{Monitoring, SERVICE, Settings};

/// Streaming methods (exempt from the unary time limit).
pub const STREAMING_METHODS: &[&str] =
    &["/steward.monitoring.v1.MonitoringService/StreamPredictions"];

/// Consumer group of decision records.
pub const DECISIONS_GROUP: &str = "monitoring-decisions";

/// The monitoring service and its background tasks.
pub struct MonitoringServices {
    /// `steward.monitoring.v1.MonitoringService`.
    pub monitoring: MonitoringServiceServer<MonitoringApi>,
    /// The app.
    pub app: Monitoring,
    /// Background tasks; abort them at shutdown.
    pub tasks: Vec<tokio::task::JoinHandle<()>>,
}

/// Settings from the configuration.
pub fn settings(cfg: &Config) -> Settings {
    Settings {
        tick: Duration::from_millis(cfg.monitor_tick_ms),
        ..Settings::default()
    }
}

/// Builds the monitoring service over `b`, calling tracking at `tracking_url` (for profile
/// baselines).
pub async fn services(
    b: &Backends,
    cfg: &Config,
    tracking_url: Option<&str>,
) -> Result<MonitoringServices, Error> {
    let peers = Peers::connect(tracking_url).await?;
    let app = Monitoring::new(b.db.clone(), cfg.limits.clone(), peers, settings(cfg));
    let tasks = vec![
        spawn_ticker(app.clone()),
        spawn_sender(app.clone()),
        spawn_decision_consumer(app.clone(), b.bus.clone()),
        spawn_retention(app.clone()),
    ];
    Ok(MonitoringServices {
        monitoring: MonitoringServiceServer::new(MonitoringApi::new(app.clone(), b.tokens.clone()))
            .max_decoding_message_size(cfg.limits.max_message_bytes)
            .max_encoding_message_size(cfg.limits.max_message_bytes),
        app,
        tasks,
    })
}

/// Closes due windows and evaluates time-range rules, every tick.
pub fn spawn_ticker(app: Monitoring) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(app.settings().tick);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            // Each pass is its own task, so a fault in one pass cannot stop the loop.
            let a = app.clone();
            let pass = tokio::spawn(async move {
                let now = steward_common::time::now_ms();
                if let Err(e) = a.close_due(now).await {
                    tracing::warn!(error = %e, "closing windows failed; retrying next tick");
                }
                if let Err(e) = a.evaluate_rules(now).await {
                    tracing::warn!(error = %e, "rule evaluation failed; retrying next tick");
                }
            });
            if let Err(e) = pass.await {
                tracing::error!(error = %e, "monitoring pass failed; retrying next tick");
            }
        }
    })
}

/// Drops predictions, labels and KPI values past their retention, hourly.
pub fn spawn_retention(app: Monitoring) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(3600));
        loop {
            tick.tick().await;
            match app.expire_records().await {
                Ok(0) => {}
                Ok(n) => tracing::info!(rows = n, "monitoring records past retention dropped"),
                Err(e) => tracing::warn!(error = %e, "monitoring retention pass failed"),
            }
        }
    })
}

/// Makes due webhook calls.
pub fn spawn_sender(app: Monitoring) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_millis(250));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if let Err(e) = app.deliver_due(steward_common::time::now_ms()).await {
                tracing::warn!(error = %e, "webhook pass failed; retrying");
            }
        }
    })
}

/// Feeds decision records to monitors (consumer group `monitoring-decisions`: one replica
/// handles each event; an event whose ingest fails is not acknowledged and comes again).
pub fn spawn_decision_consumer(
    app: Monitoring,
    bus: Arc<dyn EventBus>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let consumer = format!("monitoring-{}", uuid::Uuid::new_v4().simple());
        let mut sub = match bus.subscribe(DECISIONS_GROUP, &consumer).await {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(error = %e, "cannot subscribe to decisions; deployments will not feed monitors");
                return;
            }
        };
        loop {
            let d = match sub.next().await {
                Ok(d) => d,
                Err(e) => {
                    tracing::error!(error = %e, "decision subscription stopped");
                    return;
                }
            };
            if let Some(Payload::DecisionsRecorded(batch)) = &d.envelope.payload {
                let span = tracing::info_span!(
                    "monitoring.decisions",
                    events = 1,
                    decisions = batch.decisions.len()
                );
                steward_telemetry::set_parent_from_traceparent(&span, &d.envelope.traceparent);
                let result = {
                    use tracing::Instrument;
                    app.on_decisions(&batch.decisions).instrument(span).await
                };
                if let Err(e) = result {
                    tracing::warn!(error = %e, "decisions not ingested; the event will come again");
                    continue;
                }
            }
            if let Err(e) = d.ack().await {
                tracing::debug!(error = %e, "decision ack failed; the event will come again");
            }
        }
    })
}

/// Runs the monitoring service alone until `shutdown` resolves (`steward-monitoring`).
/// `STEWARD_TRACKING_URL` enables baselines from dataset profiles.
pub async fn run(
    cfg: Config,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), Error> {
    let b = Backends::open(&cfg).await?;
    let relay = b.start_relay(SERVICE);
    let _metrics = steward_runtime::metrics::serve(&cfg, &b, &[SERVICE]).await?;
    let gate = steward_runtime::auth_gate(&cfg, &b, None)?;
    let svc = services(&b, &cfg, cfg.tracking_url.as_deref()).await?;
    let listener = steward_runtime::bind(&cfg).await?;
    tracing::info!(listen = %listener.local_addr().map(|a| a.to_string()).unwrap_or_default(), "steward-monitoring serving");
    let server = steward_runtime::grpc_server(&cfg, gate)
        .add_streaming_methods(STREAMING_METHODS)
        .add_service(svc.monitoring);
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
