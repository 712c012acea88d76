//! Tracing, OpenTelemetry export and W3C trace-context propagation for every Steward binary.
//!
//! - [`TelemetryConfig`] gathers the settings (`STEWARD_LOG_FORMAT`, `STEWARD_LOG` / `RUST_LOG`
//!   and the standard `OTEL_*` variables, passed in as a map so tests stay hermetic).
//! - [`init`] installs the global `tracing` subscriber: text or JSON logs on stderr, filtered by
//!   an `EnvFilter`, plus a `tracing-opentelemetry` layer. Spans always get OpenTelemetry trace
//!   and span ids (so trace ids reach logs, audit records and downstream calls); they are exported
//!   over OTLP/gRPC only when an OTLP endpoint is configured. The returned [`TelemetryGuard`]
//!   flushes pending spans when shut down or dropped.
//! - [`client_span`] records calls to the database, Redis and S3 as child spans.
//! - [`propagation`] moves W3C `traceparent` between `tracing` spans and gRPC metadata, HTTP
//!   headers and event envelopes; [`TraceInterceptor`] does it for every outgoing tonic call.
//!
//! ```no_run
//! # async fn run() -> Result<(), steward_common::Error> {
//! let cfg = steward_telemetry::TelemetryConfig::from_env("steward-tracking")?;
//! let guard = steward_telemetry::init(&cfg)?;
//! // ... serve ...
//! guard.shutdown();
//! # Ok(()) }
//! ```

pub mod client_span;
mod config;
mod init;
mod interceptor;
mod otlp;
pub mod propagation;

pub use config::{LogFormat, TelemetryConfig};
pub use init::{TelemetryGuard, init};
pub use interceptor::TraceInterceptor;
pub use propagation::{
    context_from_traceparent, current_trace_id, current_traceparent, extract_from_headers,
    inject_into_metadata, set_parent_from_headers, set_parent_from_traceparent,
};
