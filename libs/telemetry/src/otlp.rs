//! The OpenTelemetry tracer provider, configured from the `OTEL_*` variables in
//! [`TelemetryConfig::env`] (never from the process environment directly).

use std::str::FromStr;
use std::time::Duration;

use opentelemetry::KeyValue;
use opentelemetry_otlp::{WithExportConfig, WithTonicConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::resource::TelemetryResourceDetector;
use opentelemetry_sdk::trace::{
    BatchConfig, BatchConfigBuilder, BatchSpanProcessor, OTEL_BSP_MAX_EXPORT_BATCH_SIZE_DEFAULT,
    OTEL_BSP_MAX_QUEUE_SIZE_DEFAULT, OTEL_BSP_SCHEDULE_DELAY_DEFAULT, Sampler, SdkTracerProvider,
};
use percent_encoding::percent_decode_str;
use steward_common::Error;
use tonic::metadata::{MetadataKey, MetadataMap, MetadataValue};

use crate::config::TelemetryConfig;

const DEFAULT_EXPORT_TIMEOUT: Duration = Duration::from_secs(10);

/// A tracer provider plus the configuration warnings to log once logging is up.
pub(crate) struct Provider {
    pub(crate) provider: SdkTracerProvider,
    pub(crate) exporting_to: Option<String>,
    pub(crate) warnings: Vec<String>,
}

/// Builds the tracer provider. Without an OTLP endpoint it has no processor: spans still get
/// ids (for propagation and logs) but go nowhere.
pub(crate) fn build_provider(cfg: &TelemetryConfig) -> Result<Provider, Error> {
    let mut warnings = Vec::new();
    let mut builder = SdkTracerProvider::builder()
        .with_sampler(sampler(cfg)?)
        .with_resource(resource(cfg)?);
    let endpoint = cfg.otlp_endpoint().map(str::to_owned);
    if let Some(endpoint) = &endpoint {
        check_unsupported(cfg, &mut warnings);
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(Error::failed_precondition(
                "TELEMETRY_NEEDS_RUNTIME",
                "telemetry must be initialised inside a Tokio runtime when OTLP export is on",
            ));
        }
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_tonic()
            .with_endpoint(endpoint.clone())
            .with_timeout(export_timeout(cfg)?)
            .with_metadata(headers(cfg)?)
            .build()
            .map_err(|e| {
                Error::invalid_field(endpoint_var(cfg), format!("cannot export spans: {e}"))
            })?;
        let processor = BatchSpanProcessor::builder(exporter)
            .with_batch_config(batch_config(cfg)?)
            .build();
        builder = builder.with_span_processor(processor);
    }
    Ok(Provider {
        provider: builder.build(),
        exporting_to: endpoint,
        warnings,
    })
}

fn endpoint_var(cfg: &TelemetryConfig) -> &'static str {
    if cfg.var("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT").is_some() {
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"
    } else {
        "OTEL_EXPORTER_OTLP_ENDPOINT"
    }
}

/// The first of `keys` that is set, with its name.
fn first_var<'a>(
    cfg: &'a TelemetryConfig,
    keys: &[&'static str],
) -> Option<(&'static str, &'a str)> {
    keys.iter().find_map(|k| cfg.var(k).map(|v| (*k, v)))
}

fn check_unsupported(cfg: &TelemetryConfig, warnings: &mut Vec<String>) {
    let protocol = first_var(
        cfg,
        &[
            "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
            "OTEL_EXPORTER_OTLP_PROTOCOL",
        ],
    );
    if let Some((var, value)) = protocol.filter(|(_, v)| !v.eq_ignore_ascii_case("grpc")) {
        warnings.push(format!(
            "{var}={value} is not supported; exporting spans over OTLP/gRPC"
        ));
    }
    if let Some(value) = cfg
        .var("OTEL_TRACES_EXPORTER")
        .filter(|v| !v.eq_ignore_ascii_case("otlp"))
    {
        warnings.push(format!(
            "OTEL_TRACES_EXPORTER={value} is not supported; using otlp"
        ));
    }
    let compression = first_var(
        cfg,
        &[
            "OTEL_EXPORTER_OTLP_TRACES_COMPRESSION",
            "OTEL_EXPORTER_OTLP_COMPRESSION",
        ],
    );
    if let Some((var, value)) = compression.filter(|(_, v)| !v.eq_ignore_ascii_case("none")) {
        warnings.push(format!(
            "{var}={value} is not supported; spans are sent uncompressed"
        ));
    }
}

fn parse<T: FromStr>(
    cfg: &TelemetryConfig,
    key: &'static str,
    what: &str,
) -> Result<Option<T>, Error> {
    cfg.var(key)
        .map(|v| {
            v.parse::<T>()
                .map_err(|_| Error::invalid_field(key, format!("must be {what}, got {v:?}")))
        })
        .transpose()
}

fn export_timeout(cfg: &TelemetryConfig) -> Result<Duration, Error> {
    let key = first_var(
        cfg,
        &[
            "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT",
            "OTEL_EXPORTER_OTLP_TIMEOUT",
        ],
    );
    let Some((key, _)) = key else {
        return Ok(DEFAULT_EXPORT_TIMEOUT);
    };
    let millis: Option<u64> = parse(cfg, key, "a number of milliseconds")?;
    Ok(millis.map_or(DEFAULT_EXPORT_TIMEOUT, Duration::from_millis))
}

fn batch_config(cfg: &TelemetryConfig) -> Result<BatchConfig, Error> {
    let delay: Option<u64> = parse(cfg, "OTEL_BSP_SCHEDULE_DELAY", "a number of milliseconds")?;
    let queue: Option<usize> = parse(cfg, "OTEL_BSP_MAX_QUEUE_SIZE", "a positive integer")?;
    let batch: Option<usize> = parse(cfg, "OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "a positive integer")?;
    Ok(BatchConfigBuilder::default()
        .with_scheduled_delay(delay.map_or(OTEL_BSP_SCHEDULE_DELAY_DEFAULT, Duration::from_millis))
        .with_max_queue_size(queue.unwrap_or(OTEL_BSP_MAX_QUEUE_SIZE_DEFAULT).max(1))
        .with_max_export_batch_size(
            batch
                .unwrap_or(OTEL_BSP_MAX_EXPORT_BATCH_SIZE_DEFAULT)
                .max(1),
        )
        .build())
}

/// `OTEL_TRACES_SAMPLER` (+ `OTEL_TRACES_SAMPLER_ARG`); default `parentbased_always_on`.
fn sampler(cfg: &TelemetryConfig) -> Result<Sampler, Error> {
    let ratio = || -> Result<f64, Error> {
        let r: Option<f64> = parse(cfg, "OTEL_TRACES_SAMPLER_ARG", "a number between 0 and 1")?;
        match r {
            None => Ok(1.0),
            Some(r) if (0.0..=1.0).contains(&r) => Ok(r),
            Some(r) => Err(Error::invalid_field(
                "OTEL_TRACES_SAMPLER_ARG",
                format!("must be between 0 and 1, got {r}"),
            )),
        }
    };
    let name = cfg.var("OTEL_TRACES_SAMPLER").map(str::to_ascii_lowercase);
    Ok(match name.as_deref() {
        None | Some("parentbased_always_on") => Sampler::ParentBased(Box::new(Sampler::AlwaysOn)),
        Some("parentbased_always_off") => Sampler::ParentBased(Box::new(Sampler::AlwaysOff)),
        Some("parentbased_traceidratio") => {
            Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(ratio()?)))
        }
        Some("always_on") => Sampler::AlwaysOn,
        Some("always_off") => Sampler::AlwaysOff,
        Some("traceidratio") => Sampler::TraceIdRatioBased(ratio()?),
        Some(other) => {
            return Err(Error::invalid_field(
                "OTEL_TRACES_SAMPLER",
                format!(
                    "unsupported sampler {other:?}; use always_on, always_off, traceidratio or \
                     their parentbased_ forms"
                ),
            ));
        }
    })
}

/// `key=value` pairs separated by commas, values percent-decoded (W3C baggage octets).
fn key_values(key: &'static str, raw: &str) -> Result<Vec<(String, String)>, Error> {
    raw.split(',')
        .filter(|item| !item.trim().is_empty())
        .map(|item| {
            let (k, v) = item
                .split_once('=')
                .filter(|(k, _)| !k.trim().is_empty())
                .ok_or_else(|| {
                    Error::invalid_field(key, format!("{item:?} is not a key=value pair"))
                })?;
            let v = percent_decode_str(v.trim()).decode_utf8().map_err(|_| {
                Error::invalid_field(
                    key,
                    format!("value of {k:?} is not valid percent-encoded UTF-8"),
                )
            })?;
            Ok((k.trim().to_owned(), v.into_owned()))
        })
        .collect()
}

fn resource(cfg: &TelemetryConfig) -> Result<Resource, Error> {
    let attributes = match cfg.var("OTEL_RESOURCE_ATTRIBUTES") {
        Some(raw) => key_values("OTEL_RESOURCE_ATTRIBUTES", raw)?,
        None => Vec::new(),
    };
    Ok(Resource::builder_empty()
        .with_detector(Box::new(TelemetryResourceDetector))
        .with_attributes(attributes.into_iter().map(|(k, v)| KeyValue::new(k, v)))
        .with_service_name(cfg.effective_service_name().to_owned())
        .build())
}

fn headers(cfg: &TelemetryConfig) -> Result<MetadataMap, Error> {
    let mut map = MetadataMap::new();
    let Some((var, raw)) = first_var(
        cfg,
        &[
            "OTEL_EXPORTER_OTLP_TRACES_HEADERS",
            "OTEL_EXPORTER_OTLP_HEADERS",
        ],
    ) else {
        return Ok(map);
    };
    for (k, v) in key_values(var, raw)? {
        let key = MetadataKey::from_bytes(k.to_ascii_lowercase().as_bytes())
            .map_err(|_| Error::invalid_field(var, format!("{k:?} is not a valid header name")))?;
        let value = MetadataValue::try_from(v.as_str()).map_err(|_| {
            Error::invalid_field(var, format!("value of {k:?} is not a valid header value"))
        })?;
        map.insert(key, value);
    }
    Ok(map)
}

#[cfg(test)]
mod tests {
    use super::*;
    use steward_common::ErrorKind;

    fn cfg(pairs: &[(&str, &str)]) -> TelemetryConfig {
        pairs
            .iter()
            .fold(TelemetryConfig::new("svc"), |c, (k, v)| c.with_env(*k, *v))
    }

    #[test]
    fn resource_uses_otel_service_name_and_attributes() {
        let c = cfg(&[
            ("OTEL_SERVICE_NAME", "from-env"),
            (
                "OTEL_RESOURCE_ATTRIBUTES",
                "deployment.environment=prod, team=ml%20ops",
            ),
        ]);
        let r = resource(&c).unwrap();
        let get = |k: &'static str| {
            r.get(&opentelemetry::Key::from_static_str(k))
                .map(|v| v.to_string())
        };
        assert_eq!(get("service.name").as_deref(), Some("from-env"));
        assert_eq!(get("deployment.environment").as_deref(), Some("prod"));
        assert_eq!(get("team").as_deref(), Some("ml ops"));
    }

    #[test]
    fn bad_resource_attributes_are_rejected() {
        let err = resource(&cfg(&[("OTEL_RESOURCE_ATTRIBUTES", "novalue")])).unwrap_err();
        assert_eq!(err.violations[0].field, "OTEL_RESOURCE_ATTRIBUTES");
    }

    #[test]
    fn samplers() {
        assert!(matches!(
            sampler(&cfg(&[])).unwrap(),
            Sampler::ParentBased(_)
        ));
        assert!(matches!(
            sampler(&cfg(&[("OTEL_TRACES_SAMPLER", "always_off")])).unwrap(),
            Sampler::AlwaysOff
        ));
        let s = sampler(&cfg(&[
            ("OTEL_TRACES_SAMPLER", "traceidratio"),
            ("OTEL_TRACES_SAMPLER_ARG", "0.25"),
        ]));
        assert!(
            matches!(s.unwrap(), Sampler::TraceIdRatioBased(r) if (r - 0.25).abs() < f64::EPSILON)
        );
        let err = sampler(&cfg(&[
            ("OTEL_TRACES_SAMPLER", "traceidratio"),
            ("OTEL_TRACES_SAMPLER_ARG", "2"),
        ]));
        assert_eq!(
            err.unwrap_err().violations[0].field,
            "OTEL_TRACES_SAMPLER_ARG"
        );
        let err = sampler(&cfg(&[("OTEL_TRACES_SAMPLER", "jaeger_remote")])).unwrap_err();
        assert_eq!(err.kind, ErrorKind::InvalidArgument);
    }

    #[test]
    fn headers_and_timeouts() {
        let c = cfg(&[
            (
                "OTEL_EXPORTER_OTLP_HEADERS",
                "Authorization=Bearer%20x,x-tenant=a",
            ),
            ("OTEL_EXPORTER_OTLP_TIMEOUT", "2500"),
        ]);
        let h = headers(&c).unwrap();
        assert_eq!(h.get("authorization").unwrap(), "Bearer x");
        assert_eq!(h.get("x-tenant").unwrap(), "a");
        assert_eq!(export_timeout(&c).unwrap(), Duration::from_millis(2500));
        let bad = cfg(&[("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "soon")]);
        assert_eq!(
            export_timeout(&bad).unwrap_err().violations[0].field,
            "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT"
        );
    }

    #[test]
    fn no_endpoint_means_no_exporter_and_no_runtime_needed() {
        let p = build_provider(&cfg(&[("OTEL_SERVICE_NAME", "x")])).unwrap();
        assert!(p.exporting_to.is_none());
        assert!(p.warnings.is_empty());
    }

    #[test]
    fn exporting_outside_a_runtime_is_a_clear_error() {
        let c = cfg(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4317")]);
        let err = build_provider(&c).err().unwrap();
        assert_eq!(err.reason, "TELEMETRY_NEEDS_RUNTIME");
    }

    #[tokio::test]
    async fn unsupported_settings_become_warnings() {
        let c = cfg(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4317"),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"),
        ]);
        let p = build_provider(&c).unwrap();
        assert_eq!(p.exporting_to.as_deref(), Some("http://127.0.0.1:4317"));
        assert!(p.warnings[0].contains("http/protobuf"), "{:?}", p.warnings);
        p.provider
            .shutdown_with_timeout(Duration::from_millis(100))
            .ok();
    }
}
