//! The environment layer: `STEWARD_*` variables.

use std::collections::HashMap;

use crate::{ConfigError, FileConfig};

fn parse_bool(key: &str, v: &str) -> Result<bool, ConfigError> {
    match v.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" | "" => Ok(false),
        _ => Err(ConfigError::new(
            "env",
            key,
            format!("{v:?} is not a boolean (use true or false)"),
        )),
    }
}

fn parse_num<T: std::str::FromStr>(key: &str, v: &str) -> Result<T, ConfigError> {
    v.trim()
        .parse()
        .map_err(|_| ConfigError::new("env", key, format!("{v:?} is not a number")))
}

/// Overlays the `STEWARD_*` variables in `env` onto `cfg`. Unknown `STEWARD_*` variables are
/// rejected so a typo does not silently fall back to a default.
pub(crate) fn apply(
    cfg: &mut FileConfig,
    env: &HashMap<String, String>,
) -> Result<(), ConfigError> {
    for (key, value) in env {
        let Some(name) = key.strip_prefix("STEWARD_") else {
            continue;
        };
        let s = || Some(value.clone());
        match name {
            "LISTEN" => cfg.listen = s(),
            "DATA_DIR" => cfg.data_dir = Some(value.into()),
            "DATABASE_URL" => cfg.database_url = s(),
            "REDIS_URL" => cfg.redis_url = s().filter(|v| !v.is_empty()),
            "REDIS_KEY_PREFIX" => cfg.redis_key_prefix = s(),
            "S3_BUCKET" => cfg.s3_bucket = s().filter(|v| !v.is_empty()),
            "S3_PREFIX" => cfg.s3_prefix = s(),
            "S3_REGION" => cfg.s3_region = s(),
            "S3_ENDPOINT" => cfg.s3_endpoint = s().filter(|v| !v.is_empty()),
            "S3_PATH_STYLE" => cfg.s3_path_style = Some(parse_bool(key, value)?),
            "S3_ACCESS_KEY_ID" => cfg.s3_access_key_id = s(),
            "S3_SECRET_ACCESS_KEY" => cfg.s3_secret_access_key = s(),
            "S3_CREATE_BUCKET" => cfg.s3_create_bucket = Some(parse_bool(key, value)?),
            "PAGE_TOKEN_KEY" => cfg.page_token_key = s(),
            "TRACKING_URL" => cfg.tracking_url = s(),
            "REGISTRY_URL" => cfg.registry_url = s(),
            "DEPLOYMENT_URL" => cfg.deployment_url = s(),
            "MONITORING_URL" => cfg.monitoring_url = s(),
            "NO_MIGRATE" => cfg.no_migrate = Some(parse_bool(key, value)?),
            "REQUEST_TIMEOUT_MS" => cfg.request_timeout_ms = Some(parse_num(key, value)?),
            "CONCURRENCY_LIMIT" => cfg.concurrency_limit = Some(parse_num(key, value)?),
            "MAX_MESSAGE_BYTES" => cfg.max_message_bytes = Some(parse_num(key, value)?),
            "DECISION_SAMPLE_RATE" => cfg.decision_sample_rate = Some(parse_num(key, value)?),
            "DECISION_INPUT_RETENTION_DAYS" => {
                cfg.decision_input_retention_days = Some(parse_num(key, value)?)
            }
            "ROLLOUT_TICK_MS" => cfg.rollout_tick_ms = Some(parse_num(key, value)?),
            "MONITOR_TICK_MS" => cfg.monitor_tick_ms = Some(parse_num(key, value)?),
            "METRICS_LISTEN" => cfg.metrics_listen = s(),
            "AUTH" => cfg.auth = s(),
            "RATE_LIMIT_PER_S" => cfg.rate_limit_per_s = Some(parse_num(key, value)?),
            "RATE_LIMIT_BURST" => cfg.rate_limit_burst = Some(parse_num(key, value)?),
            "STREAM_IDLE_TIMEOUT_MS" => cfg.stream_idle_timeout_ms = Some(parse_num(key, value)?),
            "CONCURRENCY_LIMIT_PER_CONNECTION" => {
                cfg.concurrency_limit_per_connection = Some(parse_num(key, value)?)
            }
            "SERVICE_TOKEN" => cfg.service_token = s(),
            "TLS_CERT" => cfg.tls_cert = s().filter(|v| !v.is_empty()).map(Into::into),
            "TLS_KEY" => cfg.tls_key = s().filter(|v| !v.is_empty()).map(Into::into),
            "TLS_CLIENT_CA" => cfg.tls_client_ca = s().filter(|v| !v.is_empty()).map(Into::into),
            "TLS_CA" => cfg.tls_ca = s().filter(|v| !v.is_empty()).map(Into::into),
            // Read by other layers (CLI, logging, tests), not by the service config.
            "ADDR" | "ACTOR" | "TOKEN" | "LOG" | "LOG_FORMAT" | "CONFIG" => {}
            _ if name.starts_with("TEST_") => {}
            _ => {
                return Err(ConfigError::new(
                    "env",
                    key,
                    "unknown setting; see the configuration reference in README.md",
                ));
            }
        }
    }
    Ok(())
}
