//! The TOML layer: every setting optional, unknown keys rejected (typos are caught).

use std::path::PathBuf;

use serde::Deserialize;

use crate::{Config, ConfigError, DEFAULT_DATA_DIR, DEFAULT_LISTEN, Limits, S3Settings};

/// Settings as read from a TOML file (and overlaid by env and flags). All optional.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// See [`Config::listen`].
    pub listen: Option<String>,
    /// See [`Config::data_dir`].
    pub data_dir: Option<PathBuf>,
    /// See [`Config::database_url`].
    pub database_url: Option<String>,
    /// See [`Config::redis_url`].
    pub redis_url: Option<String>,
    /// See [`Config::redis_key_prefix`].
    pub redis_key_prefix: Option<String>,
    /// S3 bucket; setting it switches artifacts to S3.
    pub s3_bucket: Option<String>,
    /// S3 key prefix.
    pub s3_prefix: Option<String>,
    /// S3 region.
    pub s3_region: Option<String>,
    /// S3 endpoint.
    pub s3_endpoint: Option<String>,
    /// S3 path-style addressing.
    pub s3_path_style: Option<bool>,
    /// S3 access key id.
    pub s3_access_key_id: Option<String>,
    /// S3 secret key.
    pub s3_secret_access_key: Option<String>,
    /// Create the bucket if missing.
    pub s3_create_bucket: Option<bool>,
    /// See [`Config::page_token_key`].
    pub page_token_key: Option<String>,
    /// Peer URL.
    pub tracking_url: Option<String>,
    /// Peer URL.
    pub registry_url: Option<String>,
    /// Peer URL.
    pub deployment_url: Option<String>,
    /// Peer URL.
    pub monitoring_url: Option<String>,
    /// Skip migrations.
    pub no_migrate: Option<bool>,
    /// Unary request timeout in ms.
    pub request_timeout_ms: Option<u64>,
    /// Concurrency limit.
    pub concurrency_limit: Option<usize>,
    /// Max gRPC message bytes.
    pub max_message_bytes: Option<usize>,
    /// Share of ModelInfer decisions whose inputs are stored (0..=1).
    pub decision_sample_rate: Option<f64>,
    /// Days sampled decision inputs are kept.
    pub decision_input_retention_days: Option<u32>,
    /// How often the rollout controller runs, ms.
    pub rollout_tick_ms: Option<u64>,
    /// How often monitoring closes due windows and evaluates rules, ms.
    pub monitor_tick_ms: Option<u64>,
    /// See [`Config::metrics_listen`]; empty turns the endpoint off.
    pub metrics_listen: Option<String>,
    /// See [`Config::auth`]: `auto`, `required` or `disabled`.
    pub auth: Option<String>,
    /// See [`Config::service_token`].
    pub service_token: Option<String>,
    /// See [`Config::tls_cert`].
    pub tls_cert: Option<PathBuf>,
    /// See [`Config::tls_key`].
    pub tls_key: Option<PathBuf>,
    /// See [`Config::tls_client_ca`].
    pub tls_client_ca: Option<PathBuf>,
    /// See [`Config::tls_ca`].
    pub tls_ca: Option<PathBuf>,
    /// See [`Config::rate_limit_per_s`].
    pub rate_limit_per_s: Option<f64>,
    /// See [`Config::rate_limit_burst`].
    pub rate_limit_burst: Option<u32>,
    /// See [`Config::stream_idle_timeout_ms`].
    pub stream_idle_timeout_ms: Option<u64>,
    /// See [`Config::concurrency_limit_per_connection`].
    pub concurrency_limit_per_connection: Option<usize>,
}

impl FileConfig {
    /// Parses TOML text.
    pub fn parse(text: &str) -> Result<Self, ConfigError> {
        toml::from_str(text).map_err(|e| ConfigError::new("file", "toml", e.message().to_string()))
    }

    pub(crate) fn resolve(self) -> Result<Config, ConfigError> {
        let listen_text = self.listen.unwrap_or_else(|| DEFAULT_LISTEN.to_string());
        let listen = listen_text.parse().map_err(|_| {
            ConfigError::new(
                "setting",
                "listen",
                format!("{listen_text:?} is not HOST:PORT, e.g. 127.0.0.1:50051"),
            )
        })?;
        let data_dir = self
            .data_dir
            .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR));
        let database_url = match self.database_url {
            Some(u) => u,
            None => format!("sqlite://{}/steward.db?mode=rwc", data_dir.display()),
        };
        if !(database_url.starts_with("sqlite:")
            || database_url.starts_with("postgres://")
            || database_url.starts_with("postgresql://"))
        {
            return Err(ConfigError::new(
                "setting",
                "database_url",
                "must start with sqlite:// or postgres://",
            ));
        }
        if let Some(r) = &self.redis_url
            && !(r.starts_with("redis://") || r.starts_with("rediss://"))
        {
            return Err(ConfigError::new(
                "setting",
                "redis_url",
                "must start with redis:// or rediss://",
            ));
        }
        let s3 = match self.s3_bucket {
            None => None,
            Some(bucket) => {
                validate_bucket(&bucket)?;
                if self.s3_access_key_id.is_some() != self.s3_secret_access_key.is_some() {
                    return Err(ConfigError::new(
                        "setting",
                        "s3_access_key_id",
                        "set both the access key id and the secret key, or neither (to use the AWS default chain)",
                    ));
                }
                if let Some(e) = &self.s3_endpoint
                    && !(e.starts_with("http://") || e.starts_with("https://"))
                {
                    return Err(ConfigError::new(
                        "setting",
                        "s3_endpoint",
                        "must be an http:// or https:// URL",
                    ));
                }
                Some(S3Settings {
                    bucket,
                    prefix: self
                        .s3_prefix
                        .unwrap_or_default()
                        .trim_matches('/')
                        .to_string(),
                    region: self.s3_region.unwrap_or_else(|| "us-east-1".into()),
                    endpoint: self.s3_endpoint,
                    path_style: self.s3_path_style.unwrap_or(false),
                    access_key_id: self.s3_access_key_id,
                    secret_access_key: self.s3_secret_access_key,
                    create_bucket: self.s3_create_bucket.unwrap_or(false),
                })
            }
        };
        if let Some(k) = &self.page_token_key
            && k.len() < 32
        {
            return Err(ConfigError::new(
                "setting",
                "page_token_key",
                "must be at least 32 characters (e.g. `openssl rand -hex 32`)",
            ));
        }
        let mut limits = Limits::default();
        if let Some(m) = self.max_message_bytes {
            if !(1024 * 1024..=1024 * 1024 * 1024).contains(&m) {
                return Err(ConfigError::new(
                    "setting",
                    "max_message_bytes",
                    "must be between 1 MiB and 1 GiB",
                ));
            }
            limits.max_message_bytes = m;
        }
        let request_timeout_ms = self.request_timeout_ms.unwrap_or(30_000);
        if request_timeout_ms == 0 {
            return Err(ConfigError::new(
                "setting",
                "request_timeout_ms",
                "must be greater than 0",
            ));
        }
        let concurrency_limit = self.concurrency_limit.unwrap_or(1024);
        if concurrency_limit == 0 {
            return Err(ConfigError::new(
                "setting",
                "concurrency_limit",
                "must be greater than 0",
            ));
        }
        let decision_sample_rate = self.decision_sample_rate.unwrap_or(0.01);
        if !(0.0..=1.0).contains(&decision_sample_rate) {
            return Err(ConfigError::new(
                "setting",
                "decision_sample_rate",
                "must be between 0 and 1",
            ));
        }
        let decision_input_retention_days = self.decision_input_retention_days.unwrap_or(30);
        if decision_input_retention_days == 0 {
            return Err(ConfigError::new(
                "setting",
                "decision_input_retention_days",
                "must be at least 1",
            ));
        }
        let monitor_tick_ms = self.monitor_tick_ms.unwrap_or(1000);
        if !(10..=600_000).contains(&monitor_tick_ms) {
            return Err(ConfigError::new(
                "setting",
                "monitor_tick_ms",
                "must be between 10 and 600000",
            ));
        }
        let rollout_tick_ms = self.rollout_tick_ms.unwrap_or(500);
        if !(10..=600_000).contains(&rollout_tick_ms) {
            return Err(ConfigError::new(
                "setting",
                "rollout_tick_ms",
                "must be between 10 and 600000",
            ));
        }
        let metrics_listen = match self.metrics_listen.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(text) => Some(text.parse().map_err(|_| {
                ConfigError::new(
                    "setting",
                    "metrics_listen",
                    format!("{text:?} is not HOST:PORT, e.g. 0.0.0.0:9464"),
                )
            })?),
        };
        let auth = match self.auth.as_deref().map(|a| a.trim().to_ascii_lowercase()) {
            None => crate::AuthSetting::Auto,
            Some(a) => match a.as_str() {
                "" | "auto" => crate::AuthSetting::Auto,
                "required" => crate::AuthSetting::Required,
                "disabled" => crate::AuthSetting::Disabled,
                _ => {
                    return Err(ConfigError::new(
                        "setting",
                        "auth",
                        format!("{a:?} is not auto, required or disabled"),
                    ));
                }
            },
        };
        if self.tls_cert.is_some() != self.tls_key.is_some() {
            return Err(ConfigError::new(
                "setting",
                "tls_cert",
                "tls_cert and tls_key go together: set both or neither",
            ));
        }
        if self.tls_client_ca.is_some() && self.tls_cert.is_none() {
            return Err(ConfigError::new(
                "setting",
                "tls_client_ca",
                "mutual TLS needs the server's own tls_cert and tls_key",
            ));
        }
        let service_token = self
            .service_token
            .map(|t| t.trim().to_owned())
            .filter(|t| !t.is_empty())
            .map(crate::Secret);
        let rate_limit_per_s = self.rate_limit_per_s.unwrap_or(0.0);
        if !rate_limit_per_s.is_finite() || rate_limit_per_s < 0.0 {
            return Err(ConfigError::new(
                "setting",
                "rate_limit_per_s",
                "must be a number >= 0 (0 turns the limit off)",
            ));
        }
        let rate_limit_burst = self
            .rate_limit_burst
            .unwrap_or_else(|| (rate_limit_per_s * 2.0).ceil().clamp(1.0, 1e6) as u32);
        if rate_limit_burst == 0 {
            return Err(ConfigError::new(
                "setting",
                "rate_limit_burst",
                "must be at least 1",
            ));
        }
        let stream_idle_timeout_ms = self.stream_idle_timeout_ms.unwrap_or(60_000);
        if !(100..=86_400_000).contains(&stream_idle_timeout_ms) {
            return Err(ConfigError::new(
                "setting",
                "stream_idle_timeout_ms",
                "must be between 100 and 86400000",
            ));
        }
        let concurrency_limit_per_connection = self.concurrency_limit_per_connection.unwrap_or(256);
        if concurrency_limit_per_connection == 0 {
            return Err(ConfigError::new(
                "setting",
                "concurrency_limit_per_connection",
                "must be at least 1",
            ));
        }
        Ok(Config {
            rate_limit_per_s,
            rate_limit_burst,
            stream_idle_timeout_ms,
            concurrency_limit_per_connection,
            auth,
            service_token,
            tls_cert: self.tls_cert,
            tls_key: self.tls_key,
            tls_client_ca: self.tls_client_ca,
            tls_ca: self.tls_ca,
            metrics_listen,
            decision_sample_rate,
            decision_input_retention_days,
            rollout_tick_ms,
            monitor_tick_ms,
            listen,
            data_dir,
            database_url,
            redis_url: self.redis_url,
            redis_key_prefix: self.redis_key_prefix.unwrap_or_else(|| "steward:".into()),
            s3,
            page_token_key: self.page_token_key.map(crate::Secret),
            tracking_url: self.tracking_url,
            registry_url: self.registry_url,
            deployment_url: self.deployment_url,
            monitoring_url: self.monitoring_url,
            no_migrate: self.no_migrate.unwrap_or(false),
            request_timeout_ms,
            concurrency_limit,
            limits,
        })
    }
}

fn validate_bucket(b: &str) -> Result<(), ConfigError> {
    let ok = (3..=63).contains(&b.len())
        && b.bytes()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-' || c == b'.')
        && !b.starts_with(['-', '.'])
        && !b.ends_with(['-', '.']);
    if ok {
        Ok(())
    } else {
        Err(ConfigError::new(
            "setting",
            "s3_bucket",
            format!(
                "{b:?} is not a valid bucket name (3-63 lowercase letters, digits, '-' or '.')"
            ),
        ))
    }
}
