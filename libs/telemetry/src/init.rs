//! Installing the global subscriber and tracer provider, and shutting them down.

use std::io::IsTerminal as _;
use std::sync::atomic::{AtomicBool, Ordering};

use opentelemetry::global;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use steward_common::Error;
use tracing_subscriber::filter::{EnvFilter, LevelFilter, Targets};
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::{Layer, Registry, fmt};

use crate::config::{LOG_FILTER_VAR, LogFormat, TelemetryConfig};
use crate::otlp::{self, Provider};

/// Set once the first [`init`] call has installed (or found) a global subscriber.
static INSTALLED: AtomicBool = AtomicBool::new(false);

/// Instrumentation scope of Steward's spans.
const TRACER_NAME: &str = "steward";

/// Crates whose spans are never exported: the exporter's own transport would otherwise trace
/// itself in a loop.
const NOT_EXPORTED: &[&str] = &[
    "h2",
    "hyper",
    "hyper_util",
    "tonic",
    "tower",
    "opentelemetry",
    "opentelemetry_sdk",
    "opentelemetry_otlp",
];

/// Keeps span export alive; flushes and shuts the tracer provider down on
/// [`TelemetryGuard::shutdown`] or, best effort, on drop.
///
/// Shutting down blocks until pending spans are exported (bounded by the export timeout).
/// Call it from a multi-threaded Tokio runtime (the default of `#[tokio::main]`): the OTLP
/// channel is driven by that runtime.
#[derive(Debug)]
#[must_use = "dropping the guard stops span export"]
pub struct TelemetryGuard {
    provider: Option<SdkTracerProvider>,
}

impl TelemetryGuard {
    /// Whether this guard owns the installed tracer provider (false for the guard of a repeated
    /// [`init`] call, whose shutdown does nothing).
    pub fn is_active(&self) -> bool {
        self.provider.is_some()
    }

    /// Flushes pending spans and shuts the tracer provider down. Failures are logged.
    pub fn shutdown(mut self) {
        self.shutdown_provider();
    }

    fn shutdown_provider(&mut self) {
        let Some(provider) = self.provider.take() else {
            return;
        };
        let result = blocking(|| provider.shutdown());
        if let Err(e) = result {
            tracing::warn!(error = %e, "could not flush spans at shutdown");
        }
    }
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        self.shutdown_provider();
    }
}

/// Runs blocking `f` without stalling other tasks of a multi-threaded Tokio runtime.
fn blocking<R>(f: impl FnOnce() -> R) -> R {
    match tokio::runtime::Handle::try_current() {
        Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(f)
        }
        _ => f(),
    }
}

/// Installs the global `tracing` subscriber (logs on stderr in `cfg.log_format`, filtered by
/// `cfg.log_filter`), the `tracing-opentelemetry` layer, the global tracer provider and the W3C
/// TraceContext propagator. Spans are exported over OTLP/gRPC with a batch processor when
/// [`TelemetryConfig::otlp_endpoint`] is set; otherwise nothing is exported and nothing fails.
///
/// Must run inside a Tokio runtime when export is on. Calling it again (the all-in-one binary
/// and tests may) is a no-op that returns an inactive guard; so is calling it after some other
/// global subscriber was installed (a warning is logged to that subscriber).
///
/// # Errors
/// `INVALID_ARGUMENT` naming the variable when the log filter or an `OTEL_*` setting is
/// malformed; `FAILED_PRECONDITION` when export is on outside a Tokio runtime.
pub fn init(cfg: &TelemetryConfig) -> Result<TelemetryGuard, Error> {
    if INSTALLED.swap(true, Ordering::SeqCst) {
        return Ok(TelemetryGuard { provider: None });
    }
    install(cfg).inspect_err(|_| INSTALLED.store(false, Ordering::SeqCst))
}

fn install(cfg: &TelemetryConfig) -> Result<TelemetryGuard, Error> {
    // OpenTelemetry's own info logs are noise unless asked for by name.
    let directives = if cfg.log_filter.contains("opentelemetry") {
        cfg.log_filter.clone()
    } else {
        format!("{},opentelemetry=warn", cfg.log_filter)
    };
    let log_filter = EnvFilter::try_new(&directives).map_err(|e| {
        Error::invalid_field(
            LOG_FILTER_VAR,
            format!("invalid log filter {:?}: {e}", cfg.log_filter),
        )
    })?;
    let Provider {
        provider,
        exporting_to,
        warnings,
    } = otlp::build_provider(cfg)?;

    let logs: Box<dyn Layer<Registry> + Send + Sync> = match cfg.log_format {
        LogFormat::Text => fmt::layer()
            .with_writer(std::io::stderr)
            .with_ansi(std::io::stderr().is_terminal())
            .with_filter(log_filter)
            .boxed(),
        LogFormat::Json => fmt::layer()
            .json()
            .with_writer(std::io::stderr)
            .with_current_span(true)
            .with_span_list(false)
            .with_filter(log_filter)
            .boxed(),
    };
    let exported = NOT_EXPORTED.iter().fold(
        Targets::new().with_default(LevelFilter::INFO),
        |t, target| t.with_target(*target, LevelFilter::OFF),
    );
    let traces = tracing_opentelemetry::layer()
        .with_tracer(provider.tracer(TRACER_NAME))
        .with_filter(exported)
        .boxed();

    if let Err(e) = tracing_subscriber::registry()
        .with(vec![logs, traces])
        .try_init()
    {
        if let Err(e) = provider.shutdown() {
            tracing::debug!(error = %e, "unused tracer provider did not shut down cleanly");
        }
        tracing::warn!(error = %e, "a global tracing subscriber is already installed; keeping it");
        return Ok(TelemetryGuard { provider: None });
    }
    global::set_text_map_propagator(TraceContextPropagator::new());
    global::set_tracer_provider(provider.clone());

    for warning in warnings {
        tracing::warn!("{warning}");
    }
    if exporting_to.is_some() {
        crate::client_span::enable();
    }
    match exporting_to {
        Some(endpoint) => tracing::info!(
            %endpoint,
            service = cfg.effective_service_name(),
            "exporting traces over OTLP/gRPC"
        ),
        None => tracing::debug!("trace export is off: no OTLP endpoint is set"),
    }
    Ok(TelemetryGuard {
        provider: Some(provider),
    })
}
