//! The server builder every Steward binary uses: health and reflection always on, one tower
//! stack for every request, graceful shutdown.
//!
//! The stack, outermost first (tonic itself adds `grpc-timeout` handling around it):
//! 1. request id: the client's `x-request-id` or a new UUID, in the request headers and
//!    extensions ([`crate::RequestId`]) and echoed on the response;
//! 2. a `grpc.server` span per RPC (`rpc.system`, `rpc.service`, `rpc.method`, `otel.kind`,
//!    `request_id`, and at the end `rpc.grpc.status_code` / `otel.status_code`), whose
//!    OpenTelemetry parent is the incoming `traceparent`; the handler runs inside it;
//! 3. the unary timeout ([`ServerConfig::request_timeout`]; not for the paths given to
//!    [`GrpcServer::add_streaming_methods`]), which also bounds the wait below;
//! 4. the concurrency limit ([`ServerConfig::concurrency_limit`]): requests over it **wait**
//!    for a slot rather than being shed. Queueing gives back-pressure without retry storms;
//!    the unary timeout and the caller's deadline bound the wait. A slot is held until the
//!    handler returns its response (for server streams: until the stream is handed back).
//!    Health checks are exempt, so probes still answer under overload.

mod config;
mod gate;
mod limits;
mod named;
mod observe;
mod reflection;
mod stack;

use std::collections::HashSet;
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use steward_common::Error;
use tokio::net::TcpListener;
use tokio_stream::StreamExt as _;
use tokio_stream::wrappers::TcpListenerStream;
use tonic::body::Body;
use tonic::server::NamedService;
use tonic::service::RoutesBuilder;
use tonic::transport::Server;
use tonic_health::ServingStatus;
use tonic_health::server::HealthReporter;

pub use config::{MethodLimit, RateLimit, ServerConfig, TlsFiles, read_certificate};
pub use gate::{Admission, Gate, GateCall, ResponseFilter};
use named::{BoxError, Named};
use reflection::{HEALTH_SERVICE, REFLECTION_V1, REFLECTION_V1ALPHA, add_reflection};
use stack::RpcLayer;

/// Built-in streaming methods, exempt from the unary timeout.
const BUILTIN_STREAMING: [&str; 3] = [
    "/grpc.health.v1.Health/Watch",
    "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
    "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
];

/// A gRPC server with health, reflection (v1 and v1alpha), the shared tower stack and
/// graceful shutdown. See the module docs.
pub struct GrpcServer {
    cfg: ServerConfig,
    routes: RoutesBuilder,
    services: Vec<&'static str>,
    registered: HashSet<&'static str>,
    duplicate: Option<&'static str>,
    streaming: HashSet<String>,
    descriptor_sets: Vec<&'static [u8]>,
    health: HealthReporter,
    gate: Option<Arc<dyn Gate>>,
}

impl std::fmt::Debug for GrpcServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GrpcServer")
            .field("cfg", &self.cfg)
            .field("services", &self.services)
            .field("streaming", &self.streaming)
            .finish_non_exhaustive()
    }
}

impl GrpcServer {
    /// A server with only `grpc.health.v1.Health` and reflection.
    pub fn new(cfg: ServerConfig) -> Self {
        let (health, health_service) = tonic_health::server::health_reporter();
        let mut routes = RoutesBuilder::default();
        routes.add_service(crate::with_message_limits!(
            health_service,
            cfg.max_message_bytes
        ));
        Self {
            cfg,
            routes,
            services: Vec::new(),
            registered: HashSet::from([HEALTH_SERVICE, REFLECTION_V1, REFLECTION_V1ALPHA]),
            duplicate: None,
            streaming: BUILTIN_STREAMING.iter().map(|p| (*p).to_owned()).collect(),
            descriptor_sets: Vec::new(),
            health,
            gate: None,
        }
    }

    /// The settings.
    pub fn config(&self) -> &ServerConfig {
        &self.cfg
    }

    /// The health reporter, for services that want to report their own status (e.g.
    /// NOT_SERVING while a backend is down).
    pub fn health_reporter(&self) -> HealthReporter {
        self.health.clone()
    }

    /// Serves `svc` (a generated `FooServiceServer`, ideally wrapped in
    /// [`crate::with_message_limits!`], possibly in a server-side `InterceptedService`) and
    /// reports `S::NAME` SERVING once serving starts. Adding two services of the same name
    /// makes [`GrpcServer::serve`] fail.
    pub fn add_service<S, B>(mut self, svc: S) -> Self
    where
        S: tower_service::Service<
                http::Request<Body>,
                Response = http::Response<B>,
                Error = Infallible,
            > + NamedService
            + Clone
            + Send
            + Sync
            + 'static,
        S::Future: Send + 'static,
        B: http_body::Body<Data = bytes::Bytes> + Send + 'static,
        B::Error: Into<BoxError>,
    {
        if !self.registered.insert(S::NAME) {
            self.duplicate.get_or_insert(S::NAME);
            return self;
        }
        self.routes.add_service(Named(svc));
        self.services.push(S::NAME);
        self
    }

    /// Exempts methods (full paths, e.g. `/steward.tracking.v1.TrackingService/UploadArtifact`)
    /// from the unary request timeout: client-streaming and bidi methods read their input
    /// inside the handler, so the timeout would cut them off.
    pub fn add_streaming_methods(mut self, paths: &[&str]) -> Self {
        self.streaming.extend(paths.iter().map(|p| (*p).to_owned()));
        self
    }

    /// Puts `gate` in front of every call except health checks (authentication and
    /// authorization; see [`Gate`]). Without one, every call is let through.
    pub fn gate(mut self, gate: Arc<dyn Gate>) -> Self {
        self.gate = Some(gate);
        self
    }

    /// Registers an encoded `FileDescriptorSet` for reflection (may be called several times;
    /// the same set twice is registered once). Reflection lists exactly the services served.
    pub fn file_descriptor_set(mut self, bytes: &'static [u8]) -> Self {
        if !self.descriptor_sets.contains(&bytes) {
            self.descriptor_sets.push(bytes);
        }
        self
    }

    /// Names of the services added with [`GrpcServer::add_service`].
    pub fn service_names(&self) -> &[&'static str] {
        &self.services
    }

    /// Binds [`ServerConfig::listen`] and [`serves`](GrpcServer::serve) until `shutdown`.
    ///
    /// # Errors
    /// As [`bind`] and [`GrpcServer::serve`].
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send) -> Result<(), Error> {
        let listener = bind(self.cfg.listen).await?;
        self.serve(listener, shutdown).await
    }

    /// Serves connections accepted from `listener` until `shutdown` resolves; then reports
    /// every service (and the server, `""`) NOT_SERVING, stops accepting, waits up to
    /// [`ServerConfig::shutdown_grace`] for in-flight requests and returns. Requests still
    /// running after the grace period are abandoned (their connections close when the
    /// runtime stops).
    ///
    /// # Errors
    /// `INVALID_ARGUMENT` when [`ServerConfig::validate`] fails; `FAILED_PRECONDITION` when a
    /// service was added twice or a descriptor set is invalid; `INTERNAL` when the transport
    /// fails.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send,
    ) -> Result<(), Error> {
        self.cfg.validate()?;
        if let Some(name) = self.duplicate {
            return Err(Error::failed_precondition(
                "DUPLICATE_SERVICE",
                format!("{name} was added to the server twice"),
            ));
        }
        let addr = listener
            .local_addr()
            .map_err(|e| Error::internal(format!("local_addr: {e}")))?;
        let Self {
            cfg,
            mut routes,
            services,
            streaming,
            descriptor_sets,
            health,
            gate,
            ..
        } = self;
        add_reflection(
            &mut routes,
            &descriptor_sets,
            &services,
            cfg.max_message_bytes,
        )?;
        health.set_service_status("", ServingStatus::Serving).await;
        for name in &services {
            health
                .set_service_status(name, ServingStatus::Serving)
                .await;
        }

        let (draining_tx, draining_rx) = tokio::sync::oneshot::channel::<()>();
        let signal = {
            let services = services.clone();
            async move {
                shutdown.await;
                tracing::info!(%addr, "shutting down: NOT_SERVING, then draining in-flight requests");
                health
                    .set_service_status("", ServingStatus::NotServing)
                    .await;
                for name in &services {
                    health
                        .set_service_status(name, ServingStatus::NotServing)
                        .await;
                }
                // The receiver is gone only if serving already ended.
                let _ = draining_tx.send(());
            }
        };
        let grace = cfg.shutdown_grace;
        let grace_over = async move {
            match draining_rx.await {
                Ok(()) => tokio::time::sleep(grace).await,
                Err(_) => std::future::pending().await,
            }
        };
        let incoming = TcpListenerStream::new(listener)
            .map(|conn| conn.and_then(|stream| stream.set_nodelay(true).map(|()| stream)));
        let mut builder = Server::builder();
        if let Some(tls) = &cfg.tls {
            let mut tls_cfg = tonic::transport::ServerTlsConfig::new().identity(tls.identity()?);
            if let Some(ca) = tls.ca()? {
                tls_cfg = tls_cfg.client_ca_root(ca);
            }
            builder = builder.tls_config(tls_cfg).map_err(|e| {
                Error::invalid_field("tls_cert", format!("unusable TLS certificate or key: {e}"))
            })?;
        }
        let server = builder
            .concurrency_limit_per_connection(cfg.concurrency_limit_per_connection)
            .http2_keepalive_interval(Some(Duration::from_secs(30)))
            .http2_keepalive_timeout(Some(Duration::from_secs(20)))
            .layer(RpcLayer::new(&cfg, streaming, gate))
            .add_routes(routes.routes())
            .serve_with_incoming_shutdown(incoming, signal);

        tracing::info!(%addr, services = ?services, "gRPC server listening");
        tokio::select! {
            result = server => {
                result.map_err(|e| Error::internal(format!("gRPC server failed: {e}")))?;
            }
            () = grace_over => {
                tracing::warn!(?grace, "shutdown grace period over; abandoning requests in flight");
            }
        }
        tracing::info!(%addr, "gRPC server stopped");
        Ok(())
    }
}

/// Binds a TCP listener, with a clear error when the address is taken.
///
/// # Errors
/// `UNAVAILABLE` (`LISTEN_FAILED`) when the address cannot be bound.
pub async fn bind(addr: SocketAddr) -> Result<TcpListener, Error> {
    TcpListener::bind(addr)
        .await
        .map_err(|e| Error::unavailable("LISTEN_FAILED", format!("cannot listen on {addr}: {e}")))
}
