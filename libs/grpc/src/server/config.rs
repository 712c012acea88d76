//! Settings of a [`GrpcServer`](super::GrpcServer).

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use steward_common::{Error, FieldViolation};

/// Settings of a [`GrpcServer`](super::GrpcServer).
#[derive(Debug, Clone, PartialEq)]
pub struct ServerConfig {
    /// Address [`GrpcServer::run`](super::GrpcServer::run) listens on (default `127.0.0.1:50051`).
    pub listen: SocketAddr,
    /// Longest a unary call may take, waiting for a slot included (default 30 s).
    pub request_timeout: Duration,
    /// Most requests handled at once across all connections (default 1024).
    pub concurrency_limit: usize,
    /// Largest message decoded or encoded, in bytes (default 64 MiB). Applied to the built-in
    /// services; apply it to yours with [`crate::with_message_limits!`].
    pub max_message_bytes: usize,
    /// How long shutdown waits for in-flight requests (default 10 s).
    pub shutdown_grace: Duration,
    /// Serve TLS with these files (default: plain HTTP/2).
    pub tls: Option<TlsFiles>,
    /// Most requests handled at once on one connection; more wait (default 256).
    pub concurrency_limit_per_connection: usize,
    /// Request rate per caller (authenticated principal, else client IP) and method; over it,
    /// `RESOURCE_EXHAUSTED` with `RetryInfo` (default: no limit).
    pub rate_limit: Option<RateLimit>,
    /// A streaming call whose client sends nothing for this long fails with
    /// `DEADLINE_EXCEEDED` (default 60 s).
    pub stream_idle_timeout: Duration,
    /// Largest request message of a method not in [`ServerConfig::method_limits`] (default:
    /// `max_message_bytes`); over it, `RESOURCE_EXHAUSTED` as soon as the message header
    /// arrives.
    pub default_request_bytes: Option<usize>,
    /// Limits of single methods (full paths), e.g. bulk ingestion allowed up to
    /// `max_message_bytes`, or expensive reports a few at a time.
    pub method_limits: HashMap<String, MethodLimit>,
}

pub use super::limits::{MethodLimit, RateLimit};

/// PEM files of a TLS server (or of a client's identity for mutual TLS).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// Certificate chain.
    pub cert: PathBuf,
    /// Private key of the certificate.
    pub key: PathBuf,
    /// Servers: CA whose certificates clients must present (mutual TLS); `None` accepts any
    /// client. Clients: CA to verify the server with instead of the system roots.
    pub ca: Option<PathBuf>,
}

impl TlsFiles {
    /// Reads the certificate and key.
    ///
    /// # Errors
    /// `INVALID_ARGUMENT` naming the file that cannot be read.
    pub fn identity(&self) -> Result<tonic::transport::Identity, Error> {
        Ok(tonic::transport::Identity::from_pem(
            read(&self.cert, "tls_cert")?,
            read(&self.key, "tls_key")?,
        ))
    }

    /// Reads the CA certificate, if one is set.
    ///
    /// # Errors
    /// `INVALID_ARGUMENT` naming the file that cannot be read.
    pub fn ca(&self) -> Result<Option<tonic::transport::Certificate>, Error> {
        self.ca
            .as_ref()
            .map(|p| read_certificate(p, "tls_client_ca"))
            .transpose()
    }
}

/// Reads a PEM certificate (a CA), naming `field` when it cannot be read.
///
/// # Errors
/// `INVALID_ARGUMENT` on `field`.
pub fn read_certificate(
    path: &std::path::Path,
    field: &str,
) -> Result<tonic::transport::Certificate, Error> {
    read(path, field).map(tonic::transport::Certificate::from_pem)
}

fn read(path: &std::path::Path, field: &str) -> Result<Vec<u8>, Error> {
    std::fs::read(path)
        .map_err(|e| Error::invalid_field(field, format!("cannot read {}: {e}", path.display())))
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from((Ipv4Addr::LOCALHOST, 50051)),
            request_timeout: Duration::from_secs(30),
            concurrency_limit: 1024,
            max_message_bytes: 64 * 1024 * 1024,
            shutdown_grace: Duration::from_secs(10),
            tls: None,
            concurrency_limit_per_connection: 256,
            rate_limit: None,
            stream_idle_timeout: Duration::from_secs(60),
            default_request_bytes: None,
            method_limits: HashMap::new(),
        }
    }
}

impl ServerConfig {
    /// Defaults, listening on `listen`.
    pub fn new(listen: SocketAddr) -> Self {
        Self {
            listen,
            ..Self::default()
        }
    }

    /// Checks the limits are usable ([`GrpcServer::serve`](super::GrpcServer::serve) calls it).
    ///
    /// # Errors
    /// `INVALID_ARGUMENT` naming every field that is zero.
    pub fn validate(&self) -> Result<(), Error> {
        let mut violations = Vec::new();
        let mut positive = |field: &str, ok: bool| {
            if !ok {
                violations.push(FieldViolation {
                    field: field.to_owned(),
                    description: "must be greater than zero".to_owned(),
                });
            }
        };
        positive("request_timeout", !self.request_timeout.is_zero());
        positive("concurrency_limit", self.concurrency_limit > 0);
        positive("max_message_bytes", self.max_message_bytes > 0);
        positive(
            "concurrency_limit_per_connection",
            self.concurrency_limit_per_connection > 0,
        );
        positive("stream_idle_timeout", !self.stream_idle_timeout.is_zero());
        positive(
            "default_request_bytes",
            self.default_request_bytes != Some(0),
        );
        positive(
            "method_limits",
            self.method_limits
                .values()
                .all(|l| l.max_request_bytes > 0 && l.max_in_flight != Some(0)),
        );
        positive(
            "rate_limit",
            self.rate_limit
                .is_none_or(|r| r.per_second.is_finite() && r.per_second > 0.0 && r.burst > 0),
        );
        if violations.is_empty() {
            Ok(())
        } else {
            Err(Error::invalid_fields(violations))
        }
    }
}

/// Applies a [`ServerConfig::max_message_bytes`] to a generated tonic server (both
/// directions); generated servers have no common trait, so this is a macro.
///
/// ```
/// use steward_grpc::{GrpcServer, ServerConfig, with_message_limits};
/// // Any generated server, e.g. `TrackingServiceServer::new(api)`:
/// let (_reporter, svc) = tonic_health::server::health_reporter();
/// let cfg = ServerConfig::default();
/// let svc = with_message_limits!(svc, cfg.max_message_bytes);
/// # let _ = (svc, GrpcServer::new(cfg));
/// ```
#[macro_export]
macro_rules! with_message_limits {
    ($service:expr, $max_bytes:expr) => {{
        let max: usize = $max_bytes;
        $service
            .max_decoding_message_size(max)
            .max_encoding_message_size(max)
    }};
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_documented_ones() {
        let cfg = ServerConfig::new("0.0.0.0:6000".parse().unwrap());
        assert_eq!(cfg.listen.port(), 6000);
        assert_eq!(cfg.request_timeout, Duration::from_secs(30));
        assert_eq!(cfg.concurrency_limit, 1024);
        assert_eq!(cfg.max_message_bytes, 64 * 1024 * 1024);
        assert_eq!(cfg.shutdown_grace, Duration::from_secs(10));
        assert_eq!(
            ServerConfig::default().listen.to_string(),
            "127.0.0.1:50051"
        );
        cfg.validate().unwrap();
    }

    #[test]
    fn zero_limits_are_named() {
        let cfg = ServerConfig {
            max_message_bytes: 0,
            ..ServerConfig::default()
        };
        let err = cfg.validate().unwrap_err();
        assert_eq!(err.violations.len(), 1);
        assert_eq!(err.violations[0].field, "max_message_bytes");
    }
}
