//! Telemetry settings, read from the environment or from a map in tests.

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;

use steward_common::Error;

/// Environment variable selecting the log format (`text` or `json`).
pub(crate) const LOG_FORMAT_VAR: &str = "STEWARD_LOG_FORMAT";
/// Environment variable holding the log filter; `RUST_LOG` is the fallback.
pub(crate) const LOG_FILTER_VAR: &str = "STEWARD_LOG";
const RUST_LOG_VAR: &str = "RUST_LOG";
const DEFAULT_LOG_FILTER: &str = "info";

/// How log lines are written to stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    /// Human-readable lines (colours only when stderr is a terminal).
    #[default]
    Text,
    /// One JSON object per line, with the current span's fields.
    Json,
}

impl FromStr for LogFormat {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "text" => Ok(Self::Text),
            "json" => Ok(Self::Json),
            other => Err(Error::invalid_field(
                LOG_FORMAT_VAR,
                format!("unknown log format {other:?}; use \"text\" or \"json\""),
            )),
        }
    }
}

impl fmt::Display for LogFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Text => "text",
            Self::Json => "json",
        })
    }
}

/// Everything [`crate::init`] needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TelemetryConfig {
    /// Default `service.name` of exported spans (`OTEL_SERVICE_NAME` overrides it).
    pub service_name: String,
    /// Log line format.
    pub log_format: LogFormat,
    /// `EnvFilter` directives for logs, e.g. `info,steward_tracking=debug`.
    pub log_filter: String,
    /// The `OTEL_*` variables (only those; passed in so tests stay hermetic).
    pub env: HashMap<String, String>,
}

impl TelemetryConfig {
    /// Defaults: text logs at `info`, no `OTEL_*` variables (so no span export).
    pub fn new(service_name: impl Into<String>) -> Self {
        Self {
            service_name: service_name.into(),
            log_format: LogFormat::Text,
            log_filter: DEFAULT_LOG_FILTER.to_owned(),
            env: HashMap::new(),
        }
    }

    /// Reads `STEWARD_LOG_FORMAT`, `STEWARD_LOG` (else `RUST_LOG`, else `info`) and every
    /// `OTEL_*` variable from the process environment. Variables that are not valid UTF-8 are
    /// ignored.
    ///
    /// # Errors
    /// `INVALID_ARGUMENT` naming `STEWARD_LOG_FORMAT` when it is neither `text` nor `json`.
    pub fn from_env(service_name: impl Into<String>) -> Result<Self, Error> {
        let vars = std::env::vars_os()
            .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)));
        Self::from_vars(service_name, vars)
    }

    /// Like [`TelemetryConfig::from_env`], but from the given variables.
    ///
    /// # Errors
    /// As [`TelemetryConfig::from_env`].
    pub fn from_vars<I, K, V>(service_name: impl Into<String>, vars: I) -> Result<Self, Error>
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        let mut cfg = Self::new(service_name);
        let mut steward_log = None;
        let mut rust_log = None;
        for (key, value) in vars {
            let (key, value) = (key.into(), value.into());
            match key.as_str() {
                LOG_FORMAT_VAR if !value.trim().is_empty() => cfg.log_format = value.parse()?,
                LOG_FILTER_VAR if !value.trim().is_empty() => steward_log = Some(value),
                RUST_LOG_VAR if !value.trim().is_empty() => rust_log = Some(value),
                k if k.starts_with("OTEL_") => {
                    cfg.env.insert(key, value);
                }
                _ => {}
            }
        }
        if let Some(filter) = steward_log.or(rust_log) {
            cfg.log_filter = filter;
        }
        Ok(cfg)
    }

    /// Sets one `OTEL_*` variable (builder style, for tests and embedding).
    pub fn with_env(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.env.insert(key.into(), value.into());
        self
    }

    /// The value of an `OTEL_*` variable, trimmed; `None` when unset or blank.
    pub(crate) fn var(&self, key: &str) -> Option<&str> {
        self.env
            .get(key)
            .map(|v| v.trim())
            .filter(|v| !v.is_empty())
    }

    /// The OTLP endpoint spans are exported to, or `None` when export is off.
    ///
    /// Export is on when `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` or `OTEL_EXPORTER_OTLP_ENDPOINT`
    /// is set (the former wins), unless `OTEL_SDK_DISABLED=true` or
    /// `OTEL_TRACES_EXPORTER=none`.
    pub fn otlp_endpoint(&self) -> Option<&str> {
        let disabled = self
            .var("OTEL_SDK_DISABLED")
            .is_some_and(|v| v.eq_ignore_ascii_case("true"));
        let no_exporter = self
            .var("OTEL_TRACES_EXPORTER")
            .is_some_and(|v| v.eq_ignore_ascii_case("none"));
        if disabled || no_exporter {
            return None;
        }
        self.var("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
            .or_else(|| self.var("OTEL_EXPORTER_OTLP_ENDPOINT"))
    }

    /// `service.name` of exported spans: `OTEL_SERVICE_NAME`, else [`Self::service_name`].
    pub fn effective_service_name(&self) -> &str {
        self.var("OTEL_SERVICE_NAME").unwrap_or(&self.service_name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_log_settings_and_only_otel_vars() {
        let cfg = TelemetryConfig::from_vars(
            "svc",
            [
                ("STEWARD_LOG_FORMAT", "JSON"),
                ("RUST_LOG", "debug"),
                ("STEWARD_LOG", "warn,steward=trace"),
                ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4317"),
                ("HOME", "/root"),
            ],
        )
        .unwrap();
        assert_eq!(cfg.log_format, LogFormat::Json);
        assert_eq!(cfg.log_filter, "warn,steward=trace");
        assert_eq!(cfg.env.len(), 1);
        assert_eq!(cfg.otlp_endpoint(), Some("http://127.0.0.1:4317"));
    }

    #[test]
    fn rust_log_is_the_fallback_and_info_the_default() {
        let cfg = TelemetryConfig::from_vars("svc", [("RUST_LOG", "debug")]).unwrap();
        assert_eq!(cfg.log_filter, "debug");
        let cfg = TelemetryConfig::from_vars("svc", Vec::<(String, String)>::new()).unwrap();
        assert_eq!(cfg.log_filter, "info");
        assert_eq!(cfg.log_format, LogFormat::Text);
        assert_eq!(cfg.otlp_endpoint(), None);
    }

    #[test]
    fn bad_log_format_names_the_variable() {
        let err = TelemetryConfig::from_vars("svc", [("STEWARD_LOG_FORMAT", "xml")]).unwrap_err();
        assert_eq!(err.violations[0].field, "STEWARD_LOG_FORMAT");
        assert!(err.violations[0].description.contains("xml"));
    }

    #[test]
    fn export_switches() {
        let base = TelemetryConfig::new("svc")
            .with_env("OTEL_EXPORTER_OTLP_ENDPOINT", "http://a:4317")
            .with_env("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://b:4317");
        assert_eq!(base.otlp_endpoint(), Some("http://b:4317"));
        assert_eq!(
            base.clone()
                .with_env("OTEL_SDK_DISABLED", "TRUE")
                .otlp_endpoint(),
            None
        );
        assert_eq!(
            base.clone()
                .with_env("OTEL_TRACES_EXPORTER", "none")
                .otlp_endpoint(),
            None
        );
        assert_eq!(
            base.clone()
                .with_env("OTEL_SDK_DISABLED", "false")
                .otlp_endpoint(),
            Some("http://b:4317")
        );
        let blank = TelemetryConfig::new("svc").with_env("OTEL_EXPORTER_OTLP_ENDPOINT", " ");
        assert_eq!(blank.otlp_endpoint(), None);
    }

    #[test]
    fn otel_service_name_overrides() {
        let cfg = TelemetryConfig::new("svc");
        assert_eq!(cfg.effective_service_name(), "svc");
        let cfg = cfg.with_env("OTEL_SERVICE_NAME", "other");
        assert_eq!(cfg.effective_service_name(), "other");
    }
}
