//! Spans for calls a service makes to its backends (the database, Redis, S3), recorded when the
//! call is over with its real start and end, as children of the span that made the call (or of
//! an explicit parent, e.g. the trace an event belongs to).
//!
//! Recording after the fact lets the hooks sit where only the duration is known (sea-orm's
//! per-statement callback) and keeps the hot path free of span bookkeeping. Nothing is recorded
//! unless traces are exported ([`crate::init`] with an OTLP endpoint) and the parent is part of
//! a trace.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime};

use opentelemetry::trace::{Span as _, SpanKind, Status, TraceContextExt as _, Tracer as _};
use opentelemetry::{Context, KeyValue, global};

static EXPORTING: AtomicBool = AtomicBool::new(false);

/// Turns recording on (called by [`crate::init`] when spans are exported).
pub(crate) fn enable() {
    EXPORTING.store(true, Ordering::Relaxed);
}

/// True when client spans are recorded (traces are exported).
pub fn enabled() -> bool {
    EXPORTING.load(Ordering::Relaxed)
}

/// When a call started, for [`record`].
#[derive(Debug, Clone, Copy)]
pub struct CallTimer {
    wall: SystemTime,
    mono: Instant,
}

impl CallTimer {
    /// Starts timing now.
    pub fn start() -> Self {
        Self {
            wall: SystemTime::now(),
            mono: Instant::now(),
        }
    }

    /// A call that ended now after `elapsed`.
    pub fn ended_after(elapsed: Duration) -> Self {
        Self {
            wall: SystemTime::now() - elapsed,
            mono: Instant::now() - elapsed,
        }
    }
}

/// One finished backend call.
#[derive(Debug)]
pub struct Call {
    /// Span name, e.g. `SELECT` or `S3 GetObject`.
    pub name: String,
    /// `Client` for requests, `Producer` for publishing events.
    pub kind: SpanKind,
    /// Semantic-convention attributes (`db.system`, `db.statement`, `rpc.method`, ...).
    pub attributes: Vec<KeyValue>,
    /// The error message when the call failed.
    pub error: Option<String>,
}

/// Records `call`, begun at `timer` and ending now, as a child of `parent`; does nothing when
/// spans are not exported or `parent` is not part of a trace.
pub fn record(parent: &Context, timer: CallTimer, call: Call) {
    if !enabled() || !parent.span().span_context().is_valid() {
        return;
    }
    let end = timer.wall + timer.mono.elapsed();
    let tracer = global::tracer("steward");
    let mut span = tracer
        .span_builder(call.name)
        .with_kind(call.kind)
        .with_start_time(timer.wall)
        .with_attributes(call.attributes)
        .start_with_context(&tracer, parent);
    if let Some(e) = call.error {
        span.set_status(Status::error(e));
    }
    span.end_with_timestamp(end);
}

/// Records `call` as a child of the current `tracing` span. See [`record`].
pub fn record_in_current(timer: CallTimer, call: Call) {
    if enabled() {
        record(&crate::propagation::current_context(), timer, call);
    }
}

pub use opentelemetry::KeyValue as Attribute;
pub use opentelemetry::trace::SpanKind as Kind;

/// Records a Redis command (or pipeline, named by its first command) begun at `timer` as a
/// child of the current span.
pub fn redis(timer: CallTimer, command: &str, error: Option<String>) {
    record_in_current(
        timer,
        Call {
            name: format!("redis {command}"),
            kind: Kind::Client,
            attributes: vec![
                Attribute::new("db.system", "redis"),
                Attribute::new("db.operation", command.to_owned()),
            ],
            error,
        },
    );
}
