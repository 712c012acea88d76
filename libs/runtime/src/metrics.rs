//! The operator metrics endpoint of every Steward binary: `GET /metrics` over HTTP/1.1 in the
//! Prometheus text format, on `metrics_listen` (`STEWARD_METRICS_LISTEN`).
//!
//! What a scrape reports:
//! - gRPC requests per method and status code, latency histograms, requests in flight and
//!   concurrency slots in use ([`steward_grpc::metrics`]);
//! - per service, the outbox depth (events committed but not yet on the bus) and the age of
//!   the oldest of them (publish lag);
//! - per consumer group on the event bus, events not yet read and read but not acked
//!   (consumer lag);
//! - database pool connections open, idle and maximum;
//! - whether the database and the event bus answered this scrape, and the process's resident
//!   memory.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use steward_common::Error;
use steward_grpc::metrics::{CONTENT_TYPE, Exposition};
use steward_storage::outbox::SqlOutbox;
use tokio::task::JoinHandle;

use crate::Backends;

/// How long a scrape waits for a backend before reporting it down.
const BACKEND_WAIT: Duration = Duration::from_secs(2);

/// What one process reports: its backends and the services whose outboxes it relays.
struct Sources {
    backends: Backends,
    services: Vec<&'static str>,
}

/// A running metrics endpoint; stops when dropped.
#[derive(Debug)]
pub struct MetricsServer {
    addr: SocketAddr,
    task: JoinHandle<()>,
}

impl MetricsServer {
    /// The bound address (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for MetricsServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Serves metrics on `cfg.metrics_listen` when it is set, for the outboxes of `services`.
///
/// # Errors
/// `UNAVAILABLE` (`LISTEN_FAILED`) when the address cannot be bound.
pub async fn serve(
    cfg: &steward_config::Config,
    backends: &Backends,
    services: &[&'static str],
) -> Result<Option<MetricsServer>, Error> {
    let Some(addr) = cfg.metrics_listen else {
        return Ok(None);
    };
    serve_on(addr, backends, services).await.map(Some)
}

/// Serves metrics on `addr`. See [`serve`].
///
/// # Errors
/// As [`serve`].
pub async fn serve_on(
    addr: SocketAddr,
    backends: &Backends,
    services: &[&'static str],
) -> Result<MetricsServer, Error> {
    let listener = tokio::net::TcpListener::bind(addr).await.map_err(|e| {
        Error::unavailable(
            "LISTEN_FAILED",
            format!("cannot serve metrics on {addr}: {e}"),
        )
    })?;
    let addr = listener
        .local_addr()
        .map_err(|e| Error::internal(format!("local_addr: {e}")))?;
    let sources = Arc::new(Sources {
        backends: backends.clone(),
        services: services.to_vec(),
    });
    tracing::info!(%addr, "Prometheus metrics at http://{addr}/metrics");
    let task = tokio::spawn(async move {
        loop {
            let stream = match listener.accept().await {
                Ok((stream, _)) => stream,
                Err(e) => {
                    tracing::warn!(error = %e, "metrics endpoint: accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            let sources = sources.clone();
            tokio::spawn(async move {
                let svc = service_fn(move |req: http::Request<hyper::body::Incoming>| {
                    let sources = sources.clone();
                    async move { Ok::<_, Infallible>(respond(&req, &sources).await) }
                });
                let served = http1::Builder::new()
                    .timer(TokioTimer::new())
                    .header_read_timeout(Duration::from_secs(10))
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
                if let Err(e) = served {
                    tracing::debug!(error = %e, "metrics connection ended with an error");
                }
            });
        }
    });
    Ok(MetricsServer { addr, task })
}

async fn respond<B>(req: &http::Request<B>, sources: &Sources) -> http::Response<Full<Bytes>> {
    let reply = |status: u16, content_type: &str, body: String| {
        http::Response::builder()
            .status(status)
            .header(http::header::CONTENT_TYPE, content_type)
            .body(Full::new(Bytes::from(body)))
            .unwrap_or_default()
    };
    match (req.method(), req.uri().path()) {
        (&http::Method::GET, "/metrics") => reply(200, CONTENT_TYPE, render(sources).await),
        (_, "/metrics") => reply(405, "text/plain", "use GET\n".into()),
        _ => reply(
            404,
            "text/plain",
            "Steward serves Prometheus metrics at /metrics\n".into(),
        ),
    }
}

/// The whole exposition for one scrape.
async fn render(sources: &Sources) -> String {
    let mut e = Exposition::new();
    steward_grpc::metrics::global().render(&mut e);
    let db = &sources.backends.db;

    let now_ms = steward_common::time::now_ms();
    // A scrape answers within a few seconds even while a backend is down (the queries would
    // otherwise wait for the pool's acquire timeout, one service after the other).
    let queries = sources.services.iter().map(|service| async move {
        let backlog =
            tokio::time::timeout(BACKEND_WAIT, SqlOutbox::new(db.clone(), *service).backlog())
                .await;
        (*service, backlog)
    });
    let mut backlogs = Vec::new();
    let mut db_up = true;
    for (service, backlog) in futures::future::join_all(queries).await {
        match backlog {
            Ok(Ok(b)) => backlogs.push((service, b)),
            Ok(Err(err)) => {
                tracing::debug!(error = %err, "metrics: outbox backlog unavailable");
                db_up = false;
            }
            Err(_) => db_up = false,
        }
    }
    e.family(
        "steward_outbox_depth",
        "gauge",
        "Events committed by a service and not yet published to the event bus.",
    );
    for (service, (n, _)) in &backlogs {
        e.sample("steward_outbox_depth", &[("service", service)], *n as f64);
    }
    e.family(
        "steward_outbox_oldest_age_seconds",
        "gauge",
        "Age of the oldest event not yet published (0 when none wait): the publish lag.",
    );
    for (service, (_, oldest)) in &backlogs {
        let age = oldest.map_or(0.0, |t| (now_ms - t).max(0) as f64 / 1e3);
        e.sample(
            "steward_outbox_oldest_age_seconds",
            &[("service", service)],
            age,
        );
    }

    let (lags, bus_up) =
        match tokio::time::timeout(BACKEND_WAIT, sources.backends.bus.group_lags()).await {
            Ok(Ok(lags)) => (lags, true),
            Ok(Err(err)) => {
                tracing::debug!(error = %err, "metrics: event bus lag unavailable");
                (Vec::new(), false)
            }
            Err(_) => (Vec::new(), false),
        };
    e.family(
        "steward_event_group_undelivered",
        "gauge",
        "Events on the bus that no consumer of the group has read yet.",
    );
    for l in &lags {
        if let Some(n) = l.undelivered {
            e.sample(
                "steward_event_group_undelivered",
                &[("group", &l.group)],
                n as f64,
            );
        }
    }
    e.family(
        "steward_event_group_pending",
        "gauge",
        "Events read by a consumer of the group and not acked yet.",
    );
    for l in &lags {
        e.sample(
            "steward_event_group_pending",
            &[("group", &l.group)],
            l.pending as f64,
        );
    }

    let (open, idle, max) = db.pool_usage();
    e.family(
        "steward_db_pool_connections",
        "gauge",
        "Database pool connections, by state.",
    );
    e.sample(
        "steward_db_pool_connections",
        &[("state", "in_use")],
        f64::from(open.saturating_sub(idle)),
    );
    e.sample(
        "steward_db_pool_connections",
        &[("state", "idle")],
        f64::from(idle),
    );
    e.gauge(
        "steward_db_pool_max_connections",
        "Most connections the database pool opens.",
        f64::from(max),
    );
    e.family(
        "steward_backend_up",
        "gauge",
        "1 when the backend answered this scrape, else 0.",
    );
    e.sample(
        "steward_backend_up",
        &[("backend", "database")],
        if db_up { 1.0 } else { 0.0 },
    );
    e.sample(
        "steward_backend_up",
        &[("backend", "event_bus")],
        if bus_up { 1.0 } else { 0.0 },
    );
    if let Some(rss) = resident_bytes() {
        e.gauge(
            "process_resident_memory_bytes",
            "Resident memory size in bytes.",
            rss as f64,
        );
    }
    e.finish()
}

/// Resident set size from `/proc/self/statm` (Linux); `None` elsewhere.
fn resident_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}
