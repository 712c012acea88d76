//! Typed, layered configuration for every Steward binary.
//!
//! Layers, later ones win: built-in defaults, a TOML file (`--config FILE`), `STEWARD_*`
//! environment variables, then command-line flags. The environment is passed in as a map so
//! tests stay hermetic. [`Config::validate`] runs at start-up and says what to fix.

mod env;
mod file;

use std::collections::HashMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

pub use file::FileConfig;

/// Default listen address of `steward up` and of each service.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:50051";
/// Default data directory of the embedded mode.
pub const DEFAULT_DATA_DIR: &str = "./steward-data";

/// Object storage settings; S3 when `s3_bucket` is set, else the local data dir.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct S3Settings {
    /// Bucket name.
    pub bucket: String,
    /// Key prefix inside the bucket (may be empty).
    pub prefix: String,
    /// Region, default `us-east-1`.
    pub region: String,
    /// Custom endpoint (MinIO, Ceph, R2, moto); `None` means AWS.
    pub endpoint: Option<String>,
    /// Path-style addressing (needed by most non-AWS servers).
    pub path_style: bool,
    /// Static access key id; `None` uses the AWS default chain.
    pub access_key_id: Option<String>,
    /// Static secret key.
    pub secret_access_key: Option<String>,
    /// Create the bucket at start-up if missing.
    pub create_bucket: bool,
}

impl fmt::Debug for S3Settings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("S3Settings")
            .field("bucket", &self.bucket)
            .field("prefix", &self.prefix)
            .field("region", &self.region)
            .field("endpoint", &self.endpoint)
            .field("path_style", &self.path_style)
            .field(
                "access_key_id",
                &self.access_key_id.as_ref().map(|_| "<set>"),
            )
            .field(
                "secret_access_key",
                &self.secret_access_key.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

/// A secret string whose `Debug` output is redacted.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(pub String);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// Removes the password from a database or Redis URL, for logs and banners.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let userinfo = &url[s + 3..at];
            let user = userinfo.split(':').next().unwrap_or("");
            format!("{}://{}:***@{}", &url[..s], user, &url[at + 1..])
        }
        _ => url.to_string(),
    }
}

pub use steward_common::limits::Limits;

/// The validated configuration of a Steward process.
#[derive(Debug, Clone)]
pub struct Config {
    /// gRPC listen address.
    pub listen: SocketAddr,
    /// Data directory (SQLite file, local artifacts) of the embedded mode.
    pub data_dir: PathBuf,
    /// `sqlite://...` or `postgres://...`; default `sqlite://{data_dir}/steward.db`.
    pub database_url: String,
    /// Redis URL for event fan-out; `None` uses the in-process bus.
    pub redis_url: Option<String>,
    /// Prefix of every Redis key.
    pub redis_key_prefix: String,
    /// S3 settings; `None` stores artifacts under `{data_dir}/artifacts`.
    pub s3: Option<S3Settings>,
    /// Key that signs page tokens; shared by replicas. `None` means random per process.
    pub page_token_key: Option<Secret>,
    /// Peer service URLs (distributed mode).
    pub tracking_url: Option<String>,
    /// Registry service URL.
    pub registry_url: Option<String>,
    /// Deployment service URL.
    pub deployment_url: Option<String>,
    /// Monitoring service URL.
    pub monitoring_url: Option<String>,
    /// Skip migrations at start-up.
    pub no_migrate: bool,
    /// Per-request timeout for unary RPCs, milliseconds.
    pub request_timeout_ms: u64,
    /// Max concurrent requests per process.
    pub concurrency_limit: usize,
    /// Request limits.
    pub limits: Limits,
    /// Share of ModelInfer decisions whose inputs are stored (default 0.01).
    pub decision_sample_rate: f64,
    /// Days sampled decision inputs are kept (default 30).
    pub decision_input_retention_days: u32,
    /// How often the rollout controller runs, ms (default 500).
    pub rollout_tick_ms: u64,
    /// How often monitoring closes due windows and evaluates alert rules, ms (default 1000).
    pub monitor_tick_ms: u64,
    /// Where Prometheus metrics are served over HTTP (`GET /metrics`); `None` (the default)
    /// serves none.
    pub metrics_listen: Option<SocketAddr>,
    /// Whether calls need an API key (`STEWARD_AUTH`, default auto).
    pub auth: AuthSetting,
    /// API key this process sends to its peers (`STEWARD_SERVICE_TOKEN`).
    pub service_token: Option<Secret>,
    /// Server certificate chain, PEM (`STEWARD_TLS_CERT`); with `tls_key`, serve TLS.
    pub tls_cert: Option<PathBuf>,
    /// Server private key, PEM (`STEWARD_TLS_KEY`).
    pub tls_key: Option<PathBuf>,
    /// CA that client certificates must chain to: mutual TLS (`STEWARD_TLS_CLIENT_CA`).
    pub tls_client_ca: Option<PathBuf>,
    /// CA to verify `https://` peers with (`STEWARD_TLS_CA`); the server certificate and key
    /// are also presented to peers as the client identity.
    pub tls_ca: Option<PathBuf>,
    /// Requests per second per caller (principal, else client IP) and method; 0 (the default)
    /// is no limit (`STEWARD_RATE_LIMIT_PER_S`).
    pub rate_limit_per_s: f64,
    /// Requests a caller may make at once after a pause (default twice the rate).
    pub rate_limit_burst: u32,
    /// A client stream silent this long is ended, ms (default 60000).
    pub stream_idle_timeout_ms: u64,
    /// Requests handled at once per connection; more wait (default 256).
    pub concurrency_limit_per_connection: usize,
}

/// Whether calls need an API key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthSetting {
    /// Open on a loopback listen address (and said so loudly at start-up), required on any
    /// other.
    Auto,
    /// Always required.
    Required,
    /// Never required (an explicit choice; warned about at start-up).
    Disabled,
}

impl Config {
    /// Whether calls without a key are let in: `auth = disabled`, or `auto` on a loopback
    /// listen address.
    pub fn auth_open(&self) -> bool {
        match self.auth {
            AuthSetting::Auto => self.listen.ip().is_loopback(),
            AuthSetting::Required => false,
            AuthSetting::Disabled => true,
        }
    }
}

/// Values given on the command line; `None` leaves the lower layers' value.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// `--listen`.
    pub listen: Option<String>,
    /// `--data-dir`.
    pub data_dir: Option<PathBuf>,
    /// `--no-migrate`.
    pub no_migrate: bool,
}

/// A configuration problem, with what to fix.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("configuration error in {source_name} `{key}`: {message}")]
pub struct ConfigError {
    /// Where the bad value came from: `file`, `env` or `flag`.
    pub source_name: String,
    /// The setting, e.g. `STEWARD_DATABASE_URL` or `database_url`.
    pub key: String,
    /// What is wrong and how to fix it.
    pub message: String,
}

impl ConfigError {
    pub(crate) fn new(source: &str, key: &str, message: impl Into<String>) -> Self {
        Self {
            source_name: source.into(),
            key: key.into(),
            message: message.into(),
        }
    }
}

impl Config {
    /// Loads defaults, then `file` (if given), then `env`, then `overrides`, and validates.
    pub fn load(
        file: Option<&Path>,
        env: &HashMap<String, String>,
        overrides: &Overrides,
    ) -> Result<Config, ConfigError> {
        let mut layered = FileConfig::default();
        if let Some(path) = file {
            let text = std::fs::read_to_string(path).map_err(|e| {
                ConfigError::new(
                    "file",
                    &path.display().to_string(),
                    format!("cannot read: {e}"),
                )
            })?;
            layered = FileConfig::parse(&text)?;
        }
        env::apply(&mut layered, env)?;
        if let Some(l) = &overrides.listen {
            layered.listen = Some(l.clone());
        }
        if let Some(d) = &overrides.data_dir {
            layered.data_dir = Some(d.clone());
        }
        if overrides.no_migrate {
            layered.no_migrate = Some(true);
        }
        layered.resolve()
    }

    /// Loads with the process environment.
    pub fn from_process(file: Option<&Path>, overrides: &Overrides) -> Result<Config, ConfigError> {
        let env: HashMap<String, String> = std::env::vars().collect();
        Self::load(file, &env, overrides)
    }

    /// True when the database is SQLite.
    pub fn is_sqlite(&self) -> bool {
        self.database_url.starts_with("sqlite:")
    }

    /// Where local artifacts live when S3 is not configured.
    pub fn local_artifact_root(&self) -> PathBuf {
        self.data_dir.join("artifacts")
    }
}

#[cfg(test)]
mod tests;
