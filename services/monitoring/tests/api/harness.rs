//! Starts tracking, registry, deployment and monitoring on one server (as `steward up` does)
//! over test backends, with fast tickers, and gives tests clients and helpers.

use std::time::Duration;

use steward_config::{Config, Overrides};
use steward_grpc::GrpcServer;
use steward_proto::deployment::deployment_service_client::DeploymentServiceClient;
use steward_proto::inference::grpc_inference_service_client::GrpcInferenceServiceClient;
use steward_proto::monitoring as pb;
use steward_proto::monitoring::monitoring_service_client::MonitoringServiceClient;
use steward_proto::tracking::tracking_service_client::TrackingServiceClient;
use steward_runtime::Backends;
use steward_storage::testing::TestDb;
use tonic::metadata::MetadataValue;
use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

pub use steward_runtime::testing::assert_bad;

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
    pub mon: MonitoringServiceClient<InterceptedService<Channel, As>>,
    pub dep: DeploymentServiceClient<InterceptedService<Channel, As>>,
    pub oip: GrpcInferenceServiceClient<Channel>,
    pub tracking: TrackingServiceClient<Channel>,
    pub backends: Backends,
    channel: Channel,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    relays: Vec<steward_events::RelayHandle>,
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
    steward_runtime::testing::telemetry("steward-monitoring-test");
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
    cfg.monitor_tick_ms = 50;
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
    let mon = steward_monitoring::server::services(&t.backends, &cfg, Some(&url))
        .await
        .expect("monitoring");
    let relays = vec![
        t.backends.start_relay(steward_deployment::app::SERVICE),
        t.backends.start_relay(steward_monitoring::app::SERVICE),
    ];
    let server = GrpcServer::new(steward_runtime::server_config(&cfg))
        .file_descriptor_set(steward_proto::FILE_DESCRIPTOR_SET)
        .add_streaming_methods(steward_tracking::server::STREAMING_METHODS)
        .add_streaming_methods(steward_monitoring::server::STREAMING_METHODS)
        .add_service(steward_tracking::server::service(&t.backends, &cfg))
        .add_service(reg.registry)
        .add_service(reg.audit)
        .add_service(dep.deployment)
        .add_service(dep.inference)
        .add_service(mon.monitoring);
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
    tasks.extend(mon.tasks);
    tasks.push(reg.invalidator);
    Harness {
        label: t.label,
        mon: MonitoringServiceClient::with_interceptor(channel.clone(), As("alice"))
            .max_decoding_message_size(64 << 20)
            .max_encoding_message_size(64 << 20),
        dep: DeploymentServiceClient::with_interceptor(channel.clone(), As("alice")),
        oip: GrpcInferenceServiceClient::new(channel.clone()),
        tracking: TrackingServiceClient::new(channel.clone()),
        channel,
        backends: t.backends,
        stop: Some(tx),
        task: Some(task),
        tasks,
        relays,
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
        for r in self.relays.drain(..) {
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

    /// A model with `n` READY versions of the demo ONNX model; returns the model id.
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

    /// Creates a baseline from numeric columns (name, values) and optional prediction scores.
    pub async fn numeric_baseline(
        &mut self,
        id: &str,
        columns: &[(&str, Vec<f64>)],
        prediction: Option<Vec<f64>>,
    ) -> pb::Baseline {
        let mut cols: Vec<pb::Column> = columns
            .iter()
            .map(|(n, v)| pb::Column {
                name: n.to_string(),
                kind: pb::FeatureKind::Numeric as i32,
                numbers: v.clone(),
                categories: vec![],
            })
            .collect();
        let pred = prediction.is_some();
        if let Some(p) = prediction {
            cols.push(pb::Column {
                name: "score".into(),
                kind: pb::FeatureKind::Numeric as i32,
                numbers: p,
                categories: vec![],
            });
        }
        self.mon
            .create_baseline(pb::CreateBaselineRequest {
                baseline_id: id.into(),
                model_version: String::new(),
                source: Some(pb::create_baseline_request::Source::Sample(
                    pb::ReferenceSample {
                        columns: cols,
                        prediction_column: if pred { "score".into() } else { String::new() },
                    },
                )),
                request_id: String::new(),
            })
            .await
            .unwrap()
            .into_inner()
    }

    /// Creates a monitor with windows of `rows` predictions.
    pub async fn count_monitor(
        &mut self,
        id: &str,
        baseline: &str,
        deployment: &str,
        rows: i64,
    ) -> pb::Monitor {
        self.mon
            .create_monitor(pb::CreateMonitorRequest {
                monitor_id: id.into(),
                monitor: Some(pb::Monitor {
                    baseline: format!("baselines/{baseline}"),
                    deployment: deployment.into(),
                    window: Some(pb::Window {
                        size: Some(pb::window::Size::Count(rows)),
                    }),
                    task: pb::Task::Classification as i32,
                    ..Default::default()
                }),
                request_id: String::new(),
            })
            .await
            .unwrap()
            .into_inner()
    }

    /// Waits until the monitor's window `n` has a report.
    pub async fn report(&mut self, monitor: &str, n: i64) -> pb::DriftReport {
        for _ in 0..400 {
            match self
                .mon
                .get_drift_report(pb::GetDriftReportRequest {
                    monitor: format!("monitors/{monitor}"),
                    window: n,
                })
                .await
            {
                Ok(r) => return r.into_inner(),
                Err(s) if s.code() == tonic::Code::NotFound => {
                    tokio::time::sleep(Duration::from_millis(25)).await
                }
                Err(s) => panic!("{}: {s:?}", self.label),
            }
        }
        panic!("{}: window {n} of {monitor} never closed", self.label);
    }

    /// Alerts of a monitor in `state` ("FIRING"/"RESOLVED"), waiting up to 10 s for one.
    pub async fn wait_alert(&mut self, monitor: &str, state: &str) -> pb::Alert {
        for _ in 0..400 {
            let a = self
                .mon
                .list_alerts(pb::ListAlertsRequest {
                    filter: format!("state = \"{state}\" AND monitor = \"monitors/{monitor}\""),
                    ..Default::default()
                })
                .await
                .unwrap()
                .into_inner();
            if let Some(a) = a.alerts.into_iter().next() {
                return a;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("{}: no {state} alert on {monitor}", self.label);
    }
}

/// A deterministic pseudo-random sequence in [0, 1) (xorshift), so tests need no rand.
pub struct Lcg(pub u64);

impl Lcg {
    /// Next value in [0, 1).
    pub fn next(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }

    /// A standard normal value (Box-Muller).
    pub fn normal(&mut self) -> f64 {
        let u = self.next().max(1e-12);
        let v = self.next();
        (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()
    }
}

/// A prediction record with numeric features.
pub fn record(id: &str, features: &[(&str, f64)], score: f64) -> pb::PredictionRecord {
    pb::PredictionRecord {
        request_id: id.into(),
        time: None,
        features: features
            .iter()
            .map(|(k, v)| {
                (
                    k.to_string(),
                    pb::Value {
                        kind: Some(pb::value::Kind::Number(*v)),
                    },
                )
            })
            .collect(),
        prediction: Some(pb::Value {
            kind: Some(pb::value::Kind::Number(score)),
        }),
        variant: "main".into(),
        model_version: String::new(),
        latency_us: 1000,
        error: false,
    }
}
