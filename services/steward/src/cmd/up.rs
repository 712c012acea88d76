//! `steward up` and `steward migrate`.

use std::collections::HashMap;
use std::net::SocketAddr;

use anyhow::Context;
use steward_config::{Config, Overrides, redact_url};
use steward_tracking::server::{self as tracking, Backends, STREAMING_METHODS};

use crate::cli::ServerArgs;

pub(crate) fn load(
    listen: Option<String>,
    no_migrate: bool,
    s: &ServerArgs,
) -> anyhow::Result<Config> {
    let env: HashMap<String, String> = std::env::vars().collect();
    let o = Overrides {
        listen,
        data_dir: s.data_dir.clone(),
        no_migrate,
    };
    Ok(Config::load(s.config.as_deref(), &env, &o)?)
}

/// Runs all services in one process until Ctrl-C / SIGTERM.
pub async fn up(listen: Option<String>, no_migrate: bool, s: ServerArgs) -> anyhow::Result<()> {
    let cfg = load(listen, no_migrate, &s)?;
    let tcfg = steward_telemetry::TelemetryConfig::from_env("steward")
        .map_err(|e| anyhow::anyhow!("{}", e.message))?;
    let guard =
        steward_telemetry::init(&tcfg).map_err(|e| anyhow::anyhow!("telemetry: {}", e.message))?;
    let result = serve(cfg, banner, steward_grpc::shutdown_signal()).await;
    guard.shutdown();
    result
}

/// What [`serve`] reports once every service is built and the port is bound.
pub(crate) struct Started<'a> {
    /// The configuration it runs with.
    pub cfg: &'a Config,
    /// The bound gRPC address (the real port when `cfg.listen` asked for port 0).
    pub addr: SocketAddr,
    /// Where artifacts are stored.
    pub artifacts: String,
    /// Where Prometheus metrics are served, if anywhere.
    pub metrics: Option<SocketAddr>,
}

/// The start-up banner of `steward up`.
fn banner(s: &Started<'_>) {
    let (cfg, addr) = (s.cfg, s.addr);
    println!("Steward is up: gRPC on {addr} (health and reflection on)");
    println!("  database:  {}", redact_url(&cfg.database_url));
    println!("  artifacts: {}", s.artifacts);
    println!(
        "  events:    {}",
        cfg.redis_url
            .as_deref()
            .map(|u| format!("Redis Streams at {}", redact_url(u)))
            .unwrap_or_else(|| "in-process".into())
    );
    if cfg.is_sqlite() {
        println!("  data dir:  {}", cfg.data_dir.display());
    }
    match cfg.auth {
        _ if !cfg.auth_open() => {
            println!(
                "  auth:      API keys required (bootstrap one: steward keys create --role admin)"
            )
        }
        steward_config::AuthSetting::Disabled => println!(
            "  auth:      DISABLED (STEWARD_AUTH=disabled): anyone who reaches {addr} can do anything"
        ),
        _ => println!(
            "  auth:      OPEN: loopback only, no API key needed (listen elsewhere to require keys)"
        ),
    }
    if cfg.tls_cert.is_some() {
        println!(
            "  tls:       on{}",
            if cfg.tls_client_ca.is_some() {
                ", client certificates required"
            } else {
                ""
            }
        );
    }
    if let Some(m) = &s.metrics {
        println!("  metrics:   http://{m}/metrics");
    }
    println!("Try: steward experiments list --addr http://{addr}    (Ctrl-C to stop)");
}

/// Opens the backends of `cfg` and serves every service (tracking, registry and audit,
/// deployment and inference, monitoring) on one port until `shutdown` resolves, then stops the
/// background tasks and relays and closes the database. `started` is called once, after the
/// port is bound and before serving (`steward up` prints its banner; `steward demo` learns the
/// port).
pub(crate) async fn serve(
    cfg: Config,
    started: impl FnOnce(&Started<'_>),
    shutdown: impl Future<Output = ()> + Send,
) -> anyhow::Result<()> {
    let b = Backends::open(&cfg)
        .await
        .map_err(|e| anyhow::anyhow!("{}", e.message))?;
    let relay = b.start_relay(steward_tracking::app::SERVICE);
    let registry_relay = b.start_relay(steward_registry::app::SERVICE);
    let deployment_relay = b.start_relay(steward_deployment::app::SERVICE);
    let monitoring_relay = b.start_relay(steward_monitoring::app::SERVICE);
    let metrics = steward_runtime::metrics::serve(
        &cfg,
        &b,
        &[
            steward_tracking::app::SERVICE,
            steward_registry::app::SERVICE,
            steward_deployment::app::SERVICE,
            steward_monitoring::app::SERVICE,
        ],
    )
    .await
    .map_err(|e| anyhow::anyhow!("{}", e.message))?;
    let listener = tokio::net::TcpListener::bind(cfg.listen)
        .await
        .with_context(|| {
            format!(
                "cannot listen on {} (use --listen to pick another address)",
                cfg.listen
            )
        })?;
    let addr = listener.local_addr()?;
    // In one process the registry still checks runs through the tracking API, over loopback.
    let self_url = {
        let ip = if addr.ip().is_unspecified() {
            std::net::IpAddr::from([127, 0, 0, 1])
        } else {
            addr.ip()
        };
        // With TLS on, the services call themselves over TLS too, verified with
        // STEWARD_TLS_CA (the certificate must name the listen address).
        let scheme = if cfg.tls_cert.is_some() {
            "https"
        } else {
            "http"
        };
        format!("{scheme}://{}", SocketAddr::new(ip, addr.port()))
    };
    let tracking_url = cfg.tracking_url.clone().unwrap_or_else(|| self_url.clone());
    let own_url = tracking_url.clone();
    // Before any peer client is made: it sets how they authenticate (the process's own token
    // goes only to this process's own address).
    let gate = steward_runtime::auth_gate(&cfg, &b, Some(&self_url))
        .map_err(|e| anyhow::anyhow!("{}", e.message))?;
    let auth = steward_auth::api::service(
        &b.db,
        steward_registry::app::SERVICE,
        gate.clone(),
        cfg.limits.max_message_bytes,
    );
    let registry = steward_registry::server::services(
        &b,
        &cfg,
        &tracking_url,
        Some(cfg.deployment_url.as_deref().unwrap_or(&own_url)),
    )
    .await
    .map_err(|e| anyhow::anyhow!("{}", e.message))?;
    let registry_url = cfg.registry_url.clone().unwrap_or_else(|| own_url.clone());
    let deployment = steward_deployment::server::services(&b, &cfg, &registry_url, &tracking_url)
        .await
        .map_err(|e| anyhow::anyhow!("{}", e.message))?;
    let monitoring = steward_monitoring::server::services(&b, &cfg, Some(&tracking_url))
        .await
        .map_err(|e| anyhow::anyhow!("{}", e.message))?;
    started(&Started {
        cfg: &cfg,
        addr,
        artifacts: b.objects.describe(),
        metrics: metrics.as_ref().map(|m| m.local_addr()),
    });
    let server = steward_runtime::grpc_server(&cfg, gate)
        .add_streaming_methods(STREAMING_METHODS)
        .add_streaming_methods(steward_monitoring::server::STREAMING_METHODS)
        .add_service(tracking::service(&b, &cfg))
        .add_service(registry.registry)
        .add_service(registry.audit)
        .add_service(auth)
        .add_service(deployment.deployment)
        .add_service(deployment.inference)
        .add_service(monitoring.monitoring);
    let result = server.serve(listener, shutdown).await;
    registry.invalidator.abort();
    for t in deployment.tasks.into_iter().chain(monitoring.tasks) {
        t.abort();
    }
    for relay in [relay, registry_relay, deployment_relay, monitoring_relay] {
        if let Err(e) = relay.shutdown().await {
            tracing::warn!(error = %e, "outbox relay did not drain before shutdown; pending events are relayed at the next start");
        }
    }
    drop(metrics);
    b.db.close().await;
    result.map_err(|e| anyhow::anyhow!("{}", e.message))
}

/// Applies migrations and exits.
pub async fn migrate(s: ServerArgs) -> anyhow::Result<()> {
    let cfg = load(None, false, &s)?;
    if cfg.is_sqlite() {
        std::fs::create_dir_all(&cfg.data_dir)
            .with_context(|| format!("cannot create {}", cfg.data_dir.display()))?;
    }
    let db = steward_storage::Db::connect(&cfg.database_url, &Default::default())
        .await
        .map_err(|e| anyhow::anyhow!("{}", e.message))?;
    steward_storage::migrate::run(&db)
        .await
        .map_err(|e| anyhow::anyhow!("{}", e.message))?;
    let applied = steward_storage::migrate::applied(&db)
        .await
        .map_err(|e| anyhow::anyhow!("{}", e.message))?;
    println!(
        "database {} is at migration {}",
        redact_url(&cfg.database_url),
        applied.last().map(String::as_str).unwrap_or("(none)")
    );
    db.close().await;
    Ok(())
}
